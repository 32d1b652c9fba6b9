"""CORS for Gasoline's HTTP endpoints, so a page on another localhost origin can post.

Origins are matched against configured patterns where ``*`` matches any run of
characters (``http://localhost:*``). Preflights allow the headers browsers send with
OTLP and native exports, including ``traceparent`` and ``tracestate``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from collector.config import CorsConfig

__all__ = ["cors_middleware"]

_BASE_HEADERS = ("content-type", "content-encoding", "traceparent", "tracestate", "x-client-time")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cors_middleware(
    config: CorsConfig, *, where: str
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Middleware answering preflights and tagging responses for allowed origins.

    ``where`` names the config key, so a refused origin's message says what to change.
    """
    patterns = [
        re.compile("^" + ".*".join(re.escape(part) for part in origin.split("*")) + "$")
        for origin in config.allowed_origins
    ]
    allowed_headers = ", ".join(
        dict.fromkeys([*_BASE_HEADERS, *(h.lower() for h in config.allowed_headers)])
    )

    def allowed(origin: str) -> bool:
        return any(p.match(origin) for p in patterns)

    @web.middleware
    async def middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed(origin):
                return web.json_response(
                    {"error": f"origin {origin} is not allowed; add it to {where}.allowed_origins"},
                    status=403,
                )
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": allowed_headers,
                    "Access-Control-Max-Age": str(config.max_age),
                    "Vary": "Origin",
                },
            )
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        if allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return middleware
