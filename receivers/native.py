"""The native event API: ``POST /event`` and ``POST /events`` (also under ``/v1/``).

This is how the browser extension, the log tailers and custom scripts report events.
An event links to a trace by ``trace_id``/``span_id``, a W3C ``traceparent``, or a
``correlation_id``, each either top-level or in ``metadata``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from collector.component import Sink
from collector.errors import CollectorError, DecodeError
from collector.model import Record, parse_hex_id
from receivers.wire_errors import http_status, retry_after

__all__ = ["normalize_level", "parse_event", "routes"]

_LEVEL_ALIASES = {
    "debug": "debug",
    "trace": "debug",
    "verbose": "debug",
    "info": "info",
    "log": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "error": "error",
    "err": "error",
    "critical": "critical",
    "fatal": "critical",
    "crit": "critical",
    "panic": "critical",
}
_MAX_SOURCE_LEN = 64


def normalize_level(value: Any) -> str | None:
    """A level name or alias, any case, to debug/info/warn/error/critical; None if unknown."""
    return _LEVEL_ALIASES.get(value.strip().lower()) if isinstance(value, str) else None


def parse_event(data: Any, path: str, now_ns: int) -> Record:
    """One event object to a ``Record``; ``DecodeError`` names the bad field by path."""
    if not isinstance(data, Mapping):
        raise DecodeError(f"{path}: expected an object")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise DecodeError(f"{path}.metadata: expected an object")
    metadata = dict(metadata)

    def field(name: str) -> Any:
        return data[name] if name in data else metadata.get(name)

    message = data.get("message", "")
    if not isinstance(message, str):
        raise DecodeError(f"{path}.message: expected a string")
    level = normalize_level(data.get("level", "info"))
    if level is None:
        raise DecodeError(
            f"{path}.level: {data.get('level')!r} is not a level "
            "(expected debug, info, warn, error or critical)"
        )
    source = data.get("source", "custom")
    if not isinstance(source, str) or not 0 < len(source) <= _MAX_SOURCE_LEN:
        raise DecodeError(f"{path}.source: expected a name of 1-{_MAX_SOURCE_LEN} characters")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DecodeError(f"{path}.tags: expected a list of strings")
    trace_id, span_id = _trace_context(field, path)
    correlation_id = field("correlation_id")
    if correlation_id is not None and not isinstance(correlation_id, str):
        correlation_id = str(correlation_id)
    service = field("service")
    if service is None:
        service = next((t[8:] for t in tags if t.startswith("service:")), "")
    return Record(
        time_ns=_timestamp_ns(data.get("timestamp"), f"{path}.timestamp", now_ns),
        source=source,
        level=level,
        message=message,
        service=str(service),
        trace_id=trace_id,
        span_id=span_id,
        correlation_id=correlation_id or None,
        tags=tuple(tags),
        attributes=metadata,
        kind="event",
    )


def _trace_context(field: Any, path: str) -> tuple[bytes | None, bytes | None]:
    trace_id = span_id = None
    traceparent = field("traceparent")
    if traceparent is not None:
        parts = str(traceparent).strip().split("-")
        if len(parts) < 4 or len(parts[0]) != 2:
            raise DecodeError(f"{path}.traceparent: {traceparent!r} is not a W3C traceparent")
        trace_id = parse_hex_id(parts[1], 16)
        span_id = parse_hex_id(parts[2], 8)
        if trace_id is None or span_id is None:
            raise DecodeError(f"{path}.traceparent: {traceparent!r} has invalid ids")
    for name, size in (("trace_id", 16), ("span_id", 8)):
        value = field(name)
        if value is None or value == "":
            continue
        parsed = parse_hex_id(str(value), size) if isinstance(value, str) else None
        if parsed is None:
            raise DecodeError(
                f"{path}.{name}: {value!r} is not an id ({size * 2} hex digits, not all zero)"
            )
        if name == "trace_id":
            trace_id = parsed
        else:
            span_id = parsed
    return trace_id, span_id


def _timestamp_ns(value: Any, path: str, now_ns: int) -> int:
    if value is None:
        return now_ns
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
        except ValueError:
            pass
    raise DecodeError(f"{path}: {value!r} is not a time (expected milliseconds since the epoch)")


class _Reject(Exception):
    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


def routes(sink: Sink, *, max_batch_events: int) -> list[web.RouteDef]:
    """The intake routes, for the API server to mount."""

    async def read_json(request: web.Request) -> Any:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise _Reject(413, f"request body is too large: {exc.text}") from exc
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _Reject(400, f"body is not valid JSON: {exc}") from exc

    def parse(events: list[Any], paths: list[str]) -> list[Record]:
        now = time.time_ns()
        try:
            records = [parse_event(e, p, now) for e, p in zip(events, paths, strict=True)]
        except DecodeError as exc:
            raise _Reject(400, str(exc)) from exc
        try:
            sink.offer_records(records)
        except CollectorError as exc:
            raise _Reject(http_status(exc), str(exc), retry_after(exc)) from exc
        return records

    async def post_event(request: web.Request) -> web.Response:
        [record] = parse([await read_json(request)], ["event"])
        return web.json_response({"status": "ok", "event_id": str(record.id)})

    async def post_events(request: web.Request) -> web.Response:
        data = await read_json(request)
        events = data.get("events") if isinstance(data, dict) else data
        if not isinstance(events, list):
            raise _Reject(400, 'body must be {"events": [...]} or a list of events')
        if len(events) > max_batch_events:
            raise _Reject(
                413, f"{len(events)} events in one batch; the limit is {max_batch_events}"
            )
        records = parse(events, [f"events[{i}]" for i in range(len(events))]) if events else []
        return web.json_response(
            {"status": "ok", "count": len(records), "event_ids": [str(r.id) for r in records]}
        )

    def answering_errors(
        handler: Callable[[web.Request], Awaitable[web.Response]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            try:
                return await handler(request)
            except _Reject as exc:
                headers = None
                if exc.retry_after_s is not None:
                    headers = {"Retry-After": str(exc.retry_after_s)}
                return web.json_response(
                    {"status": "error", "error": str(exc)}, status=exc.status, headers=headers
                )

        return wrapped

    return [
        web.post(path, answering_errors(handler))
        for prefix in ("", "/v1")
        for path, handler in ((f"{prefix}/event", post_event), (f"{prefix}/events", post_events))
    ]
