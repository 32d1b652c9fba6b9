"""One aiohttp site on one port, behind the edge guard, shared by the components served
there: on the API port, the HTTP API (an exporter) and the native intake (a receiver).

Components ``mount()`` their routes before ``start()``; neither needs to know the other.
``start()`` returns once bound (``ReceiverStartError`` naming the site otherwise);
``stop()`` is idempotent and safe without ``start()``; a stopped site starts again.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from collector.config import ApiConfig, CorsConfig, Endpoint
from collector.edge import EdgePolicy, same_origin
from collector.errors import cannot_bind
from receivers.http_guard import Shares, guard_middleware, origin_matcher

__all__ = ["HttpSite", "api_site"]


class HttpSite:
    """``where`` is the CORS config key (e.g. ``service.api.cors``) and ``shares`` who may
    read answers (see ``guard_middleware``). ``auto_decompress=False`` hands handlers the
    body as sent (OTLP/HTTP decompresses itself, with a size cap)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        name: str,
        edge: EdgePolicy,
        cors: CorsConfig,
        where: str,
        max_body_size: int,
        shares: Shares | None = None,
        auto_decompress: bool = True,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self._edge = edge
        self._cors = cors
        self._where = where
        self._max_body_size = max_body_size
        self._shares = shares
        self._auto_decompress = auto_decompress
        self._routes: list[web.AbstractRouteDef] = []
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def mount(self, routes: Iterable[web.AbstractRouteDef]) -> None:
        """Serve ``routes`` here from the next ``start()``."""
        if self._runner is not None:
            raise RuntimeError(f"{self.name}: mount routes before start()")
        self._routes.extend(routes)

    async def start(self) -> None:
        if self._runner is not None:
            return
        guard = guard_middleware(self._edge, self._cors, where=self._where, shares=self._shares)
        app = web.Application(client_max_size=self._max_body_size, middlewares=[guard])
        app.add_routes(self._routes)
        # keepalive_timeout also bounds how long a request head may take to arrive.
        runner = web.AppRunner(
            app,
            auto_decompress=self._auto_decompress,
            access_log=None,
            keepalive_timeout=self._edge.header_timeout_s,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.endpoint.host, self.endpoint.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise cannot_bind(self.name, self.endpoint, exc) from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self.port = None
        if runner is not None:
            await runner.cleanup()


def api_site(config: ApiConfig, edge: EdgePolicy) -> HttpSite:
    """The API port's site. Answers with data (GETs, tool answers) are shared with the
    daemon's own page and ``read_origins`` only; the rest with the CORS allowlist."""
    readers = origin_matcher(config.read_origins)
    writers = origin_matcher(config.cors.allowed_origins)

    def shares(request: web.Request, origin: str) -> bool:
        if request.method in ("GET", "HEAD") or request.path.startswith("/v1/tools/"):
            return same_origin(origin, request.headers.get("Host")) or readers(origin)
        return writers(origin)

    return HttpSite(
        config.endpoint,
        name="api",
        edge=edge,
        cors=config.cors,
        where="service.api.cors",
        max_body_size=config.max_request_body_size,
        shares=shares,
    )
