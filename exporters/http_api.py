"""The HTTP API on :7890: queries, status and health; the native event intake shares its
site (``receivers.http_site``).

``GET /v1/traces`` (newest traces), ``GET /v1/traces/{trace_id}`` (the tree, a page of
``limit`` spans at a time), ``GET /v1/traces/{trace_id}/causality`` (size-capped),
``GET /buffers/timeline`` (the merged timeline), ``GET /daemon/status``, ``GET /health``,
``GET /v1/reports`` and ``GET /v1/reports/{id}`` (TracePulse's reports), ``POST
/chat/feedback`` (a verdict or note on a report),
and MCP over HTTP at ``/mcp`` (``exporters.mcp_http``).
Errors are JSON ``{"status": "error", "error": "..."}`` with a 4xx code.

Who may read and act, beyond the edge every port has (``receivers.http_guard``):

- Answers with data (every GET, every tool answer) are shared with browser scripts of the
  daemon's own page and of ``service.api.read_origins`` (e.g. the extension's
  ``chrome-extension://ID``) only. Any ``http://localhost:*`` page may send events (it is
  on the CORS allowlist), but pages on other loopback ports are whatever the developer
  happens to run -- a dev server, a notebook, a third-party script in them -- and traces
  are not theirs to read.
- ``POST /v1/tools/*`` needs ``Content-Type: application/json`` (415 otherwise), so no
  browser can send one without a preflight. ``interact`` (runs commands) is refused from
  any request carrying a browser Origin; ``configure`` (clears, rules, checkpoints,
  redaction) is accepted from a browser only on the daemon's own page. An agent reaches
  both through ``gasoline mcp`` or ``/mcp``, which sends no Origin; ``/mcp`` refuses
  every request that carries one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol

from aiohttp import web

from collector.analysis.causality import analyze_causality
from collector.bounded import fit
from collector.config import ApiConfig
from collector.edge import EdgePolicy, Refusal, same_origin
from collector.filters import TimelineFilter, build_filter
from collector.model import parse_hex_id
from collector.query import (
    MAX_SPAN_LIMIT,
    timeline,
    trace_document,
    trace_summaries,
    trace_tree,
)
from collector.store import Store
from collector.tools import ToolInputError
from exporters.mcp_http import MCP_PATH, McpHttp

__all__ = ["HttpApi"]


class RouteSite(Protocol):
    """The aiohttp site this API is served on, shared with the native intake (built by the
    component table: ``receivers.http_site.api_site``); exporters do not import receivers."""

    port: int | None

    def mount(self, routes: Iterable[web.AbstractRouteDef]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class _BadQuery(Exception):
    pass


class HttpApi:
    """The query routes, status, tools and MCP over HTTP, mounted on ``site`` (shared
    with the native intake; see ``receivers.http_site``), which it starts and stops."""

    name = "api"

    def __init__(
        self,
        config: ApiConfig,
        *,
        site: RouteSite,
        store: Store,
        status: Callable[[], dict[str, Any]],
        tools: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
        edge: EdgePolicy,
    ) -> None:
        self.config = config
        self.edge = edge
        self.site = site
        self._store = store
        self._status = status
        self._tools = tools
        self._mcp: McpHttp | None = None  # one per start: its SDK session lives that long
        self.port: int | None = None
        site.mount(
            [
                web.get("/health", self._health),
                web.get("/daemon/status", self._daemon_status),
                web.get("/v1/traces", self._traces),
                web.get("/v1/traces/{trace_id}", self._trace),
                web.get("/v1/traces/{trace_id}/causality", self._causality),
                web.get("/buffers/timeline", self._timeline),
                web.post("/v1/tools/{name}", self._tool),
                web.get("/v1/reports", self._reports),
                web.get("/v1/reports/{report_id}", self._report),
                web.post("/chat/feedback", self._feedback),
                web.route("*", MCP_PATH, self._mcp_request),
            ]
        )

    async def start(self) -> None:
        if self._mcp is not None:
            return
        mcp = McpHttp(self._tools, edge=self.edge, max_body_size=self.config.max_request_body_size)
        self._mcp = mcp
        try:
            await self.site.start()
        except BaseException:
            self._mcp = None
            raise
        await mcp.start()
        self.port = self.site.port

    async def stop(self) -> None:
        mcp, self._mcp = self._mcp, None
        self.port = None
        await self.site.stop()
        if mcp is not None:
            await mcp.stop()

    def stats(self) -> dict[str, Any]:
        return {"status": "stopped" if self.port is None else "running", "port": self.port}

    async def _mcp_request(self, request: web.Request) -> web.StreamResponse:
        mcp = self._mcp
        if mcp is None:  # the site is up only between start() and stop()
            raise web.HTTPServiceUnavailable(text="api: not started")
        return await mcp.handle(request)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _daemon_status(self, request: web.Request) -> web.Response:
        return web.json_response(self._status())

    async def _traces(self, request: web.Request) -> web.Response:
        try:
            limit = _limit(request.query, default=20)
        except _BadQuery as exc:
            return _error(400, str(exc))
        return web.json_response({"traces": trace_summaries(self._store, limit=limit)})

    async def _trace(self, request: web.Request) -> web.Response:
        """One page of the tree: ``limit`` spans (1000) from ``cursor``, or ``span_ids``."""
        trace_id = _trace_id(request, self._store)
        try:
            page = _trace_page(request.query)
        except _BadQuery as exc:
            return _error(400, str(exc))
        document = trace_document(
            self._store, trace_id, detail=request.query.get("detail") != "0", **page
        )
        if document is None:
            raise _not_stored(trace_id)
        return web.json_response(document)

    async def _causality(self, request: web.Request) -> web.Response:
        trace_id = _trace_id(request, self._store)
        tree = trace_tree(self._store, trace_id)
        if tree is None:
            raise _not_stored(trace_id)
        return web.json_response(fit(analyze_causality(tree, self._store)))

    async def _timeline(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            query = _timeline_filter(request.query, self._store)
        except _BadQuery as exc:
            return _error(400, str(exc))
        answer = timeline(self._store, query)
        answer["metadata"]["query_time_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return web.json_response(answer)

    async def _reports(self, request: web.Request) -> web.Response:
        """TracePulse's newest reports (summaries), for the web page."""
        try:
            limit = _limit(request.query, default=20)
        except _BadQuery as exc:
            return _error(400, str(exc))
        return web.json_response(await self._tools("observe", {"what": "reports", "limit": limit}))

    async def _report(self, request: web.Request) -> web.Response:
        args = {"type": "report", "report_id": request.match_info["report_id"]}
        try:
            return web.json_response(await self._tools("analyze", args))
        except ToolInputError as exc:
            return _error(404, str(exc))

    async def _feedback(self, request: web.Request) -> web.Response:
        """A verdict on a report's hypothesis and/or a note: from the daemon's own page
        (the report view) or a client without Origin, never from another page."""
        if request.content_type != "application/json":
            self.edge.refuse(Refusal.CONTENT_TYPE)
            return _error(415, f"feedback takes application/json, not {request.content_type!r}")
        origin = request.headers.get("Origin")
        if origin is not None and not same_origin(origin, request.headers.get("Host")):
            self.edge.refuse(Refusal.BROWSER_TOOL)
            return _error(403, "feedback is accepted from the daemon's own page only")
        try:
            body = await request.json()
        except (ValueError, RecursionError):
            return _error(400, "body is not valid JSON")
        if not isinstance(body, dict):
            return _error(400, "body must be a JSON object: report_id, hypothesis, verdict, note")
        unknown = sorted(set(body) - {"report_id", "hypothesis", "verdict", "note", "author"})
        if unknown:
            return _error(400, f"{unknown[0][:40]}: unknown field")
        try:
            return web.json_response(await self._tools("configure", {**body, "action": "feedback"}))
        except ToolInputError as exc:
            return _error(400, str(exc))

    async def _tool(self, request: web.Request) -> web.Response:
        """Run an agent tool with JSON arguments; what ``gasoline mcp`` forwards to."""
        name = request.match_info["name"]
        if request.content_type != "application/json":
            self.edge.refuse(Refusal.CONTENT_TYPE)
            return _error(
                415, f"tool calls take Content-Type application/json, not {request.content_type!r}"
            )
        if "Origin" in request.headers and (
            name == "interact"
            or (
                name == "configure"
                and not same_origin(request.headers.get("Origin"), request.headers.get("Host"))
            )
        ):
            self.edge.refuse(Refusal.BROWSER_TOOL)
            return _error(
                403,
                f"{name} is not accepted from a browser page"
                + (" other than the daemon's own" if name == "configure" else "")
                + "; an agent calls it through `gasoline mcp`",
            )
        try:
            args = await request.json()
        except ValueError as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        except RecursionError:
            return _error(400, "body is not valid JSON: it nests too deep to parse")
        if not isinstance(args, dict):
            return _error(400, "body must be a JSON object of tool arguments")
        try:
            return web.json_response(await self._tools(name, args))
        except ToolInputError as exc:
            return _error(400, str(exc))


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)


def _trace_id(request: web.Request, store: Store) -> bytes:
    try:
        return store.resolve_trace_id(request.match_info["trace_id"])
    except ValueError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"status": "error", "error": str(exc)}),
            content_type="application/json",
        ) from None


def _not_stored(trace_id: bytes) -> web.HTTPNotFound:
    return web.HTTPNotFound(
        text=json.dumps(
            {
                "status": "error",
                "error": f"trace {trace_id.hex()} is not in the store (never received, or evicted)",
            }
        ),
        content_type="application/json",
    )


def _limit(query: Mapping[str, str], *, default: int) -> int:
    try:
        return build_filter({}, limit=query.get("limit"), default_limit=default).limit
    except ValueError as exc:
        raise _BadQuery(str(exc)) from None


def _trace_page(query: Mapping[str, str]) -> dict[str, Any]:
    """``limit``, ``cursor`` and ``span_ids`` of a trace document request."""
    page: dict[str, Any] = {}
    text = query.get("limit")
    if text is not None:
        if not text.isdigit() or not 1 <= int(text) <= MAX_SPAN_LIMIT:
            raise _BadQuery(f"limit: {text!r} must be a number of spans, 1-{MAX_SPAN_LIMIT}")
        page["limit"] = int(text)
    text = query.get("cursor")
    if text is not None:
        if not text.isdigit():
            raise _BadQuery(f"cursor: {text!r} must be metadata.cursor_next of the last page")
        page["cursor"] = int(text)
    text = query.get("span_ids")
    if text is not None:
        ids = [t.strip().lower() for t in text.split(",") if t.strip()]
        parsed = {parse_hex_id(t, 8) for t in ids}
        if not ids or None in parsed or len(ids) > MAX_SPAN_LIMIT:
            raise _BadQuery(
                f"span_ids: {text[:100]!r} must be up to {MAX_SPAN_LIMIT} span ids "
                "(16 hex digits each), separated by commas"
            )
        page["span_ids"] = {p for p in parsed if p is not None}
        page["limit"] = MAX_SPAN_LIMIT
    return page


def _timeline_filter(query: Mapping[str, str], store: Store) -> TimelineFilter:
    params = {k: v for k, v in query.items() if k not in ("limit", "cursor")}
    try:
        return build_filter(
            params,
            limit=query.get("limit"),
            cursor=query.get("cursor"),
            resolve_trace=store.resolve_trace_id,
        )
    except ValueError as exc:
        raise _BadQuery(str(exc)) from None
