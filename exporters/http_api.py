"""The HTTP API on :7890: queries, status and health, plus the native event intake.

``GET /v1/traces`` (newest traces), ``GET /v1/traces/{trace_id}`` (the tree),
``GET /buffers/timeline`` (the merged timeline), ``GET /daemon/status``, ``GET /health``.
Errors are JSON ``{"status": "error", "error": "..."}`` with a 4xx code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from collector.analysis.causality import analyze_causality
from collector.config import ApiConfig
from collector.errors import ReceiverStartError
from collector.model import LEVELS, parse_hex_id
from collector.query import (
    TimelineFilter,
    parse_cursor,
    timeline,
    trace_document,
    trace_summaries,
    trace_tree,
)
from collector.store import Store
from receivers.cors import cors_middleware

__all__ = ["HttpApi"]

_MAX_LIMIT = 1000


class _BadQuery(Exception):
    pass


class HttpApi:
    """One aiohttp site serving the query routes and any extra (intake) routes."""

    name = "api"

    def __init__(
        self,
        config: ApiConfig,
        *,
        store: Store,
        status: Callable[[], dict[str, Any]],
        extra_routes: list[web.RouteDef],
    ) -> None:
        self.config = config
        self._store = store
        self._status = status
        self._extra_routes = extra_routes
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(
            client_max_size=self.config.max_request_body_size,
            middlewares=[cors_middleware(self.config.cors, where="service.api.cors")],
        )
        app.add_routes(
            [
                web.get("/health", self._health),
                web.get("/daemon/status", self._daemon_status),
                web.get("/v1/traces", self._traces),
                web.get("/v1/traces/{trace_id}", self._trace),
                web.get("/v1/traces/{trace_id}/causality", self._causality),
                web.get("/buffers/timeline", self._timeline),
                *self._extra_routes,
            ]
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        endpoint = self.config.endpoint
        try:
            await web.TCPSite(runner, endpoint.host, endpoint.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ReceiverStartError(f"api: cannot bind {endpoint}: {exc.strerror or exc}") from exc
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self.port = None
        if runner is not None:
            await runner.cleanup()

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
        trace_id = _trace_id(request)
        document = trace_document(self._store, trace_id, detail=request.query.get("detail") != "0")
        if document is None:
            raise _not_stored(trace_id)
        return web.json_response(document)

    async def _causality(self, request: web.Request) -> web.Response:
        trace_id = _trace_id(request)
        tree = trace_tree(self._store, trace_id)
        if tree is None:
            raise _not_stored(trace_id)
        return web.json_response(analyze_causality(tree))

    async def _timeline(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            query = _timeline_filter(request.query)
        except _BadQuery as exc:
            return _error(400, str(exc))
        answer = timeline(self._store, query)
        answer["metadata"]["query_time_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return web.json_response(answer)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)


def _trace_id(request: web.Request) -> bytes:
    text = request.match_info["trace_id"].strip().lower()
    trace_id = parse_hex_id(text, 16)
    if trace_id is None:
        raise web.HTTPBadRequest(
            text=json.dumps(
                {
                    "status": "error",
                    "error": f"{text!r} is not a trace id (32 hex digits, not all zero)",
                }
            ),
            content_type="application/json",
        )
    return trace_id


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
    text = query.get("limit")
    if text is None:
        return default
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise _BadQuery(f"limit: {text!r} must be an integer from 1 to {_MAX_LIMIT}")
    return limit


def _time_ns(name: str, text: str | None) -> int | None:
    """Milliseconds since the epoch, or an ISO 8601 time."""
    if text is None:
        return None
    try:
        return int(float(text) * 1_000_000)
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        raise _BadQuery(
            f"{name}: {text!r} is not a time (milliseconds since the epoch or ISO 8601)"
        ) from None


_TIMELINE_PARAMS = frozenset(
    {
        "trace_id",
        "correlation_id",
        "source",
        "service",
        "level",
        "since",
        "until",
        "text",
        "limit",
        "cursor",
    }
)


def _timeline_filter(query: Mapping[str, str]) -> TimelineFilter:
    unknown = sorted(set(query) - _TIMELINE_PARAMS)
    if unknown:
        raise _BadQuery(
            f"unknown parameter {unknown[0]!r} (allowed: {', '.join(sorted(_TIMELINE_PARAMS))})"
        )
    trace_id = None
    if "trace_id" in query:
        trace_id = parse_hex_id(query["trace_id"].strip().lower(), 16)
        if trace_id is None:
            raise _BadQuery(f"trace_id: {query['trace_id']!r} is not a trace id (32 hex digits)")
    level = query.get("level")
    if level is not None and level not in LEVELS:
        raise _BadQuery(f"level: {level!r} must be one of {', '.join(LEVELS)}")
    cursor = None
    if "cursor" in query:
        try:
            cursor = parse_cursor(query["cursor"])
        except ValueError as exc:
            raise _BadQuery(f"cursor: {exc}") from None
    return TimelineFilter(
        trace_id=trace_id,
        correlation_id=query.get("correlation_id"),
        source=query.get("source"),
        service=query.get("service"),
        level=level,
        since_ns=_time_ns("since", query.get("since")),
        until_ns=_time_ns("until", query.get("until")),
        text=query.get("text"),
        limit=_limit(query, default=100),
        cursor=cursor,
    )
