"""The edge of every HTTP port: Host, token, Origin, then CORS, in one aiohttp middleware.

In order, for each request:

1. **Host** (``EdgePolicy.host_allowed``): a foreign name gets 421, so a page that rebinds
   its DNS name to 127.0.0.1 reaches nothing (DNS rebinding).
2. **Token**, when one is set: 401 without ``Authorization: Bearer <token>`` or the token
   cookie. Preflights are exempt (browsers never send credentials on them; they change and
   reveal nothing). A GET carrying the right ``?token=`` (the link a person opens the web
   page with) is answered with a redirect to the same address without it, setting the
   cookie: ``HttpOnly`` (no script reads it) and ``SameSite=Strict`` (no other site's page
   sends it); the Origin checks below still hold for requests that carry it.
3. **Origin**, on every request that can change state (anything but GET, HEAD, OPTIONS):
   an ``Origin`` header outside the port's CORS allowlist -- ``null`` included -- gets 403
   (the daemon's own page, whose Origin is ``http://`` + the Host just checked, is always
   let through: its report view posts feedback whatever the allowlist says)
   whatever the content type, since a "simple" cross-site POST (text/plain, form) is sent
   by browsers without a preflight. Requests without Origin (CLI, SDKs, curl, tailers)
   are not browser requests and pass. ``Sec-Fetch-Site`` adds nothing here: every browser
   that sends it also sends Origin on a POST, and an allowed dev page on ``localhost:3000``
   posting to ``127.0.0.1:4318`` is "cross-site" by its definition.
4. **CORS**: preflights from allowed origins are answered; a response is shared
   (``Access-Control-Allow-Origin``) only with the origins ``shares`` names, by default
   the allowlist.

Allowlist patterns may use ``*`` for any run of characters (``http://localhost:*``).
Every refusal is counted on the ``EdgePolicy``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from collector.config import CorsConfig
from collector.edge import TOKEN_COOKIE, EdgePolicy, Refusal, same_origin

__all__ = ["Shares", "guard_middleware", "origin_matcher"]

_BASE_HEADERS = (
    "authorization",
    "content-type",
    "content-encoding",
    "traceparent",
    "tracestate",
    "x-client-time",
)
_SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Whether the response to this request may be read by a script of this origin.
Shares = Callable[[web.Request, str], bool]


def origin_matcher(patterns: Sequence[str]) -> Callable[[str], bool]:
    """A test of an Origin against ``*``-patterns. ``null`` (sandboxed frames, local files,
    some redirects) never matches: it names no one."""
    compiled = [
        re.compile("^" + ".*".join(re.escape(part) for part in origin.split("*")) + r"\Z")
        for origin in patterns
    ]

    def matches(origin: str) -> bool:
        return origin != "null" and any(p.match(origin) for p in compiled)

    return matches


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status, headers=headers)


def _sign_in(edge: EdgePolicy, request: web.Request) -> web.Response:
    """``?token=`` on a page link: the token becomes a cookie, and leaves the address (and
    so the history and any screenshot of it)."""
    token = request.query["token"]
    if not edge.is_token(token):
        edge.refuse(Refusal.TOKEN)
        return _refusal(401, edge.token_message(), {"WWW-Authenticate": "Bearer"})
    query = [(k, v) for k, v in request.query.items() if k != "token"]
    location = str(request.rel_url.with_query(query))
    response = web.Response(status=303, headers={"Location": location})
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


def guard_middleware(
    edge: EdgePolicy,
    cors: CorsConfig,
    *,
    where: str,
    shares: Shares | None = None,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware for one port. ``where`` is the CORS config key (e.g.
    ``service.api.cors``), so a refused origin's message says what to change."""
    allowed = origin_matcher(cors.allowed_origins)
    allowed_headers = ", ".join(
        dict.fromkeys([*_BASE_HEADERS, *(h.lower() for h in cors.allowed_headers)])
    )

    def shared(request: web.Request, origin: str) -> bool:
        return shares(request, origin) if shares is not None else allowed(origin)

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        host = request.headers.get("Host")
        if not edge.host_allowed(host):
            edge.refuse(Refusal.HOST)
            return _refusal(421, edge.host_message(str(host)))
        origin = request.headers.get("Origin")
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if edge.token_required and request.method == "GET" and "token" in request.query:
            return _sign_in(edge, request)
        if not preflight and not edge.authorized(
            request.headers.get("Authorization"), request.cookies.get(TOKEN_COOKIE)
        ):
            edge.refuse(Refusal.TOKEN)
            return _refusal(401, edge.token_message(), {"WWW-Authenticate": "Bearer"})
        if origin is None:
            return await handler(request)
        if preflight:
            if not (allowed(origin) or shared(request, origin)):
                edge.refuse(Refusal.ORIGIN)
                return _refusal(
                    403, f"origin {origin} is not allowed; add it to {where}.allowed_origins"
                )
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": allowed_headers,
                    "Access-Control-Max-Age": str(cors.max_age),
                    "Vary": "Origin",
                },
            )
        own_page = same_origin(origin, host)  # served by this daemon, after the Host check
        if request.method not in _SAFE_METHODS and not (allowed(origin) or own_page):
            edge.refuse(Refusal.ORIGIN)
            return _refusal(
                403,
                f"origin {origin} may not send {request.method} {request.path}; a browser page "
                f"must be on an allowed origin ({where}.allowed_origins)",
            )
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        if shared(request, origin):
            response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return middleware
