"""The web page on the API port: traces, a trace's waterfall, the live timeline, the
service map, two traces compared, and TracePulse's reports with their feedback chat.

Pages (``/``, ``/traces/{trace_id}``, ``/timeline``, ``/services``, ``/compare``,
``/reports``, ``/reports/{id}``) are one HTML shell; plain ES modules under
``exporters/web/`` draw them from the daemon's JSON.
The files are read once, at construction, and served from memory; nothing is fetched
from elsewhere (the Content-Security-Policy says so to the browser too: scripts, styles
and connections to this origin only, no framing).

Read endpoints the page needs beyond the query API:

- ``GET /v1/trace_list`` -- traces newest first, filtered and paged
  (``collector.trace_list``).
- ``GET /v1/traces/{trace_id}/rows`` -- the trace as the waterfall draws it, flat and
  compact (``collector.waterfall``).
- ``GET /v1/service_map`` -- services and call edges with rates, errors, p50/p99; with
  TracePulse's system map configured, also ``system_map``: the declared map merged with
  these edges (``declared_unseen``, ``seen_undeclared``).
- ``GET /v1/compare?a=&b=`` -- trace ``b`` against trace ``a``, span by span.
- ``GET /v1/timeline/stream`` -- the live timeline as server-sent events, with the
  ``observe`` filters: one ``data:`` message of ``{"events": [...], "dropped": n}`` per
  poll that found something. At most ``service.api.max_live_streams`` streams are open at
  once (503 past that) and each looks at ``service.api.max_live_events_per_s`` events a
  second; what arrives faster is counted as dropped for that stream. A reader that does
  not take a message within ``_WRITE_TIMEOUT_S`` is cut.

Like every answer with data, these are shared only with the daemon's own page and
``service.api.read_origins``. They go further: a request carrying any other ``Origin``
gets 403 (counted as an ``origin`` refusal), so a foreign page cannot even hold a stream
open. Counts are in ``/daemon/status`` under ``web``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from collector.analysis.compare import compare_traces
from collector.analysis.service_map import newest_trees, service_map
from collector.config import ApiConfig
from collector.config.sections import PulseServiceConfig
from collector.edge import EdgePolicy, Refusal, same_origin
from collector.filters import FILTER_KEYS, build_filter
from collector.live import LiveTail
from collector.pulse import SystemMap
from collector.query import trace_tree
from collector.store import Store
from collector.trace_list import SummaryCache, parse_trace_query, trace_list
from collector.waterfall import waterfall_rows

__all__ = ["PAGE_PATHS", "WebPage"]

STATIC = Path(__file__).resolve().parent / "web"
PAGE_PATHS = (
    "/",
    "/timeline",
    "/services",
    "/compare",
    "/traces/{trace_id}",
    "/reports",
    "/reports/{report_id}",
)
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_SECURITY = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_POLL_S = 0.25
_HEARTBEAT_S = 15.0
_WRITE_TIMEOUT_S = 5.0


class PageSite(Protocol):
    """Where the page is served: the API port's site (``receivers.http_site.HttpSite``)."""

    def mount(self, routes: Iterable[web.AbstractRouteDef]) -> None: ...


class WebPage:
    """The page's files and read endpoints, mounted on ``site``. ``readers`` says which
    browser origins besides the page's own may read (``service.api.read_origins``);
    ``declared`` is TracePulse's system map (``pulse.services`` or ``pulse.map_file``)."""

    name = "web"

    def __init__(
        self,
        config: ApiConfig,
        *,
        site: PageSite,
        store: Store,
        edge: EdgePolicy,
        readers: Callable[[str], bool],
        declared: Mapping[str, PulseServiceConfig] | None = None,
    ) -> None:
        self._config = config
        self._declared = dict(declared or {})
        self._store = store
        self._edge = edge
        self._readers = readers
        self._files = {
            path.name: (path.read_bytes(), _TYPES[path.suffix])
            for path in sorted(STATIC.iterdir())
            if path.suffix in _TYPES
        }
        self._summaries = SummaryCache()
        self._closing = asyncio.Event()
        self._running = False
        self._streams = 0
        self.counts = {"streams_opened": 0, "streams_refused": 0, "dropped": 0, "slow_cut": 0}
        site.mount(
            [
                *(web.get(path, self._shell) for path in PAGE_PATHS),
                web.get("/static/{name}", self._static),
                web.get("/v1/trace_list", self._trace_list),
                web.get("/v1/traces/{trace_id}/rows", self._rows),
                web.get("/v1/service_map", self._service_map),
                web.get("/v1/compare", self._compare),
                web.get("/v1/timeline/stream", self._stream),
            ]
        )

    async def start(self) -> None:
        """The routes serve once the API's site is bound (the daemon starts it first)."""
        self._running = True

    async def stop(self) -> None:
        """End the open live streams, so the site stops without waiting on them."""
        self._running = False
        self._closing.set()
        self._closing = asyncio.Event()  # for the streams of the next start()

    def stats(self) -> dict[str, Any]:
        """For ``/daemon/status``: live streams open, and what was refused or dropped."""
        status = "running" if self._running else "stopped"
        return {"status": status, "live_streams": self._streams, **self.counts}

    def _foreign(self, request: web.Request) -> web.Response | None:
        """403 for a browser page that may not read: the request says who sent it."""
        origin = request.headers.get("Origin")
        if origin is None or same_origin(origin, request.headers.get("Host")):
            return None
        if self._readers(origin):
            return None
        self._edge.refuse(Refusal.ORIGIN)
        return _error(
            403,
            f"origin {origin} may not read {request.path}; only the daemon's own page and "
            "service.api.read_origins may",
        )

    async def _shell(self, request: web.Request) -> web.Response:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.Response:
        return self._file(request.match_info["name"])

    def _file(self, name: str) -> web.Response:
        found = self._files.get(name)
        if found is None:
            raise web.HTTPNotFound(text=f"no file {name!r:.80} in the page")
        body, content_type = found
        return web.Response(body=body, headers={"Content-Type": content_type, **_SECURITY})

    async def _trace_list(self, request: web.Request) -> web.Response:
        if (refused := self._foreign(request)) is not None:
            return refused
        started = time.perf_counter()
        try:
            query = parse_trace_query(request.query)
            answer = trace_list(self._store, query, self._summaries)
        except ValueError as exc:
            return _error(400, str(exc))
        answer["metadata"]["query_time_ms"] = _since(started)
        return web.json_response(answer)

    async def _rows(self, request: web.Request) -> web.Response:
        if (refused := self._foreign(request)) is not None:
            return refused
        text = request.match_info["trace_id"]
        try:
            trace_id = self._store.resolve_trace_id(text)
        except ValueError as exc:
            return _error(400, str(exc))
        tree = trace_tree(self._store, trace_id)
        if tree is None:
            return _error(
                404, f"trace {trace_id.hex()} is not in the store (never received, or evicted)"
            )
        return web.json_response(waterfall_rows(tree))

    async def _service_map(self, request: web.Request) -> web.Response:
        if (refused := self._foreign(request)) is not None:
            return refused
        started = time.perf_counter()
        answer = service_map(newest_trees(self._store))
        if self._declared:
            observed = {(e["from"], e["to"]) for e in answer["edges"]}
            answer["system_map"] = SystemMap(self._declared, observed).document()
        answer["metadata"]["query_time_ms"] = _since(started)
        return web.json_response(answer)

    async def _compare(self, request: web.Request) -> web.Response:
        if (refused := self._foreign(request)) is not None:
            return refused
        trees = []
        for key in ("a", "b"):
            text = request.query.get(key, "")
            try:
                trace_id = self._store.resolve_trace_id(text)
            except ValueError as exc:
                return _error(400, f"{key}: {exc}")
            tree = trace_tree(self._store, trace_id)
            if tree is None:
                return _error(404, f"{key}: trace {trace_id.hex()} is not in the store")
            trees.append(tree)
        return web.json_response(compare_traces(trees[0], trees[1]))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._foreign(request)) is not None:
            return refused
        if self._streams >= self._config.max_live_streams:
            self.counts["streams_refused"] += 1
            return _error(
                503,
                f"{self._streams} live timelines are open already; close one or raise "
                "service.api.max_live_streams",
                headers={"Retry-After": "5"},
            )
        params = {k: v for k, v in request.query.items() if k in FILTER_KEYS}
        try:
            f = build_filter(params, resolve_trace=self._store.resolve_trace_id)
        except ValueError as exc:
            return _error(400, str(exc))
        per_poll = max(1, int(self._config.max_live_events_per_s * _POLL_S))
        closing = self._closing
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            }
        )
        tail = LiveTail(self._store)
        self._streams += 1
        self.counts["streams_opened"] += 1
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            quiet = 0.0
            while not closing.is_set():
                try:
                    await asyncio.wait_for(closing.wait(), _POLL_S)
                    break
                except TimeoutError:
                    pass
                transport = request.transport
                if transport is None or transport.is_closing():  # the reader went away
                    break
                dropped = tail.dropped
                events = tail.poll(self._store, f, per_poll)
                if events or tail.dropped != dropped:
                    self.counts["dropped"] += tail.dropped - dropped
                    body = json.dumps({"events": events, "dropped": tail.dropped})
                    message = b"data: " + body.encode() + b"\n\n"
                    quiet = 0.0
                else:
                    quiet += _POLL_S
                    if quiet < _HEARTBEAT_S:
                        continue
                    message, quiet = b": still here\n\n", 0.0
                try:
                    async with asyncio.timeout(_WRITE_TIMEOUT_S):
                        await response.write(message)
                except TimeoutError:
                    self.counts["slow_cut"] += 1
                    break
        except ConnectionResetError:
            pass
        finally:
            self._streams -= 1
        return response


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status, headers=headers)
