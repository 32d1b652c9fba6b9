"""The native event API: ``POST /event`` and ``POST /events`` (also under ``/v1/``), and
``POST /v1/lines`` for plain log lines and raw output blocks, parsed by the pipeline, and
``POST /v1/tests`` for a ``gasoline test`` run's spans, and ``POST /webhook/event`` for
TracePulse's triggers (``receivers.pulse_webhook``).

This is how the browser extension, the log tailers and custom scripts report events.
``NativeReceiver`` is a receiver like the others (``start``/``stop``/``stats``); it binds
no port of its own: its routes are mounted on the API server's site, by the component
table (``gasoline/components.py``), and answer 503 while it is not started.
An event links to a trace by ``trace_id``/``span_id``, a W3C ``traceparent``, or a
``correlation_id``, each either top-level or in ``metadata``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from collector.component import LineSource, Sink
from collector.config import Endpoint
from collector.errors import CollectorError, DecodeError
from collector.events import parse_event
from collector.limits import json_int
from collector.model import DropReason, Record
from receivers.log_records import LogLines
from receivers.pulse_webhook import WEBHOOK_PATH, webhook_record
from receivers.stream_groups import OutputLines, StreamGroups
from receivers.test_run import TESTS_PATH
from receivers.test_run.intake import decode_test_run
from receivers.wire_errors import http_status, retry_after

__all__ = ["NativeReceiver"]

_MAX_LINE_SOURCES = 256
# Batch ids of the latest accepted /v1/lines posts: a sender that lost an answer and sends
# the batch again (gasoline-run replaying its spool) is told it was already stored.
_MAX_BATCH_IDS = 65_536
# Bodies taken as raw output, with the other fields in the query string.
_RAW_TYPES = frozenset(("text/plain", "application/octet-stream"))
_FLAGS = {"1": True, "true": True, "0": False, "false": False}
# Times are kept as signed 64-bit nanoseconds, as OTLP's are.
_MAX_OBSERVED_MS = (1 << 63) // 1_000_000
_MAX_MS_DIGITS = len(str(_MAX_OBSERVED_MS))


class _Reject(Exception):
    def __init__(self, status: int, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after_s = retry_after_s


async def _read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise _Reject(413, f"request body is too large: {exc.text}") from exc


async def _read_json(request: web.Request) -> Any:
    body = await _read_body(request)
    try:
        return json.loads(body, parse_int=json_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Reject(400, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise _Reject(400, "body is not valid JSON: it nests too deep to parse") from exc


async def _read_raw(request: web.Request) -> dict[str, Any]:
    """A text/plain post: the body is ``text`` (one trailing newline is the last line's
    end), every other field is a query parameter (``tag`` repeated)."""
    text = await _read_body(request)  # decoded and split by the pipeline (OutputLines)
    query = request.query
    data: dict[str, Any] = {
        "text": text[:-1] if text.endswith(b"\n") else text,
        "tags": query.getall("tag", []),
        **{k: query[k] for k in ("service", "source", "stream", "batch") if k in query},
    }
    if "end" in query:
        data["end"] = _FLAGS.get(query["end"], query["end"])
    if "observed_time_ms" in query:
        observed = query["observed_time_ms"]
        is_ms = observed.isdigit() and len(observed) <= _MAX_MS_DIGITS
        data["observed_time_ms"] = int(observed) if is_ms else observed
    return data


class NativeReceiver:
    """The native intake. ``stats()`` counts requests and the refused ones by HTTP status
    (what was accepted is counted by the pipeline's ``native`` lane)."""

    def __init__(self, *, max_batch_events: int, name: str = "native") -> None:
        self.name = name
        self._max_batch_events = max_batch_events
        self._sink: Sink | None = None
        self._sources: dict[tuple[str, str, tuple[str, ...]], LogLines] = {}
        self._streams = StreamGroups()
        self._accepted_batches: dict[str, int] = {}
        self._requests = 0
        self._refused: Counter[int] = Counter()

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return []  # served on the API server's port

    def bound(self) -> dict[str, int]:
        return {}

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            self.name: {
                "status": "running" if self._sink is not None else "stopped",
                "counts": {"requests": self._requests, "refused": self._refused.total()},
                "refused": {str(status): n for status, n in sorted(self._refused.items())},
            }
        }

    async def start(self, sink: Sink) -> None:
        self._sink = sink

    async def stop(self) -> None:
        self._sink = None

    def routes(self) -> list[web.RouteDef]:
        """The intake routes, for the API server's site."""
        return [
            *(
                web.post(path, self._answering_errors(handler))
                for prefix in ("", "/v1")
                for path, handler in (
                    (f"{prefix}/event", self._post_event),
                    (f"{prefix}/events", self._post_events),
                )
            ),
            web.post("/v1/lines", self._answering_errors(self._post_lines)),
            web.post(TESTS_PATH, self._answering_errors(self._post_tests)),
            web.post(WEBHOOK_PATH, self._answering_errors(self._post_webhook)),
        ]

    async def _post_tests(self, request: web.Request) -> web.Response:
        """A ``gasoline test`` run: its spans as an OTLP request (protobuf, or JSON with
        ``Content-Type: application/json``); the run's events are derived from them
        (``receivers.test_run.intake``)."""
        sink = self._sink_or_refuse()
        body = await _read_body(request)
        is_json = request.content_type == "application/json"
        try:  # off the loop: a run of thousands of tests decodes for tens of milliseconds
            batch, records, rejected, error = await asyncio.to_thread(
                decode_test_run, body, sink.redactor, is_json=is_json
            )
        except DecodeError as exc:
            raise _Reject(400, str(exc)) from exc
        try:
            sink.count_dropped("spans", DropReason.INVALID, rejected)
            if len(batch):
                sink.offer_spans(batch)
            if records:
                sink.offer_records(records)
        except CollectorError as exc:
            raise _Reject(http_status(exc), str(exc), retry_after(exc)) from exc
        answer: dict[str, Any] = {"status": "ok", "spans": len(batch), "events": len(records)}
        if rejected:
            answer["rejected_spans"], answer["error"] = rejected, error
        return web.json_response(answer)

    def _sink_or_refuse(self) -> Sink:
        if self._sink is None:
            raise _Reject(503, f"{self.name}: the intake is not running", 1)
        return self._sink

    def _parse(self, events: list[Any], paths: list[str]) -> list[Record]:
        sink = self._sink_or_refuse()
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

    async def _post_event(self, request: web.Request) -> web.Response:
        [record] = self._parse([await _read_json(request)], ["event"])
        return web.json_response({"status": "ok", "event_id": str(record.id)})

    async def _post_webhook(self, request: web.Request) -> web.Response:
        """A TracePulse trigger. It makes the daemon act (analyse, send reports), so no
        browser page may send it, whatever its origin: DebugQueue posts from backends."""
        if "Origin" in request.headers:
            raise _Reject(403, f"{WEBHOOK_PATH} is not accepted from a browser page")
        data = await _read_json(request)
        sink = self._sink_or_refuse()
        try:
            record = webhook_record(data)
        except DecodeError as exc:
            raise _Reject(400, str(exc)) from exc
        try:
            sink.offer_records([record])
        except CollectorError as exc:
            raise _Reject(http_status(exc), str(exc), retry_after(exc)) from exc
        return web.json_response(
            {"status": "ok", "event_id": str(record.id), "correlation_id": record.correlation_id}
        )

    async def _post_events(self, request: web.Request) -> web.Response:
        data = await _read_json(request)
        events = data.get("events") if isinstance(data, dict) else data
        if not isinstance(events, list):
            raise _Reject(400, 'body must be {"events": [...]} or a list of events')
        if len(events) > self._max_batch_events:
            raise _Reject(
                413, f"{len(events)} events in one batch; the limit is {self._max_batch_events}"
            )
        paths = [f"events[{i}]" for i in range(len(events))]
        records = self._parse(events, paths) if events else []
        return web.json_response(
            {"status": "ok", "count": len(records), "event_ids": [str(r.id) for r in records]}
        )

    def _answering_errors(
        self, handler: Callable[[web.Request], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def wrapped(request: web.Request) -> web.Response:
            self._requests += 1
            try:
                return await handler(request)
            except _Reject as exc:
                self._refused[exc.status] += 1
                headers = None
                if exc.retry_after_s is not None:
                    headers = {"Retry-After": str(exc.retry_after_s)}
                return web.json_response(
                    {"status": "error", "error": str(exc)}, status=exc.status, headers=headers
                )

        return wrapped

    def _offer(self, source: LineSource, lines: Sequence[str], observed_ns: int | None) -> None:
        try:
            self._sink_or_refuse().offer_lines(source, lines, observed_ns=observed_ns)
        except CollectorError as exc:
            raise _Reject(http_status(exc), str(exc), retry_after(exc)) from exc

    async def _post_lines(self, request: web.Request) -> web.Response:
        """Plain log lines from gasoline-run or a script, parsed into log records by the
        pipeline (so a large batch never holds up other requests).

        Either ``lines`` (each one record, already grouped) or ``text`` (raw output:
        complete lines joined by "\n"), as JSON or as a text/plain body. A text's
        multi-line records are grouped: within the text alone, or with ``stream`` across
        the posts of that stream, its last record completed by ``end`` (the stream went
        quiet). ``observed_time_ms`` (optional) is when the lines were captured: the time
        of lines that carry none of their own. ``batch`` (optional) names the batch: one
        sent again after it was stored is answered ``"duplicate": true`` and not stored
        twice."""
        if request.content_type in _RAW_TYPES:
            data = await _read_raw(request)
        else:
            data = await _read_json(request)
        if not isinstance(data, dict) or not (
            isinstance(data.get("lines"), list) or isinstance(data.get("text"), str | bytes)
        ):
            raise _Reject(
                400,
                'body must be {"lines": [...]} or {"text": "..."} (optionally with '
                '"stream" and "end"), with "service" and "tags"; or text/plain output with '
                "those in the query string",
            )
        batch = data.get("batch")
        if batch is not None:
            if not isinstance(batch, str) or not 0 < len(batch) <= 128:
                raise _Reject(400, "batch: expected an id of 1-128 characters")
            if batch in self._accepted_batches:
                return web.json_response(
                    {"status": "ok", "count": self._accepted_batches[batch], "duplicate": True}
                )
        stream: str | None = None
        if "text" in data:
            text, stream, end = data["text"], data.get("stream"), data.get("end", False)
            if stream is not None and (not isinstance(stream, str) or not 0 < len(stream) <= 128):
                raise _Reject(400, "stream: expected an id of 1-128 characters")
            if not isinstance(end, bool):
                raise _Reject(400, "end: expected true or false")
            lines = OutputLines(text)
        else:  # a block is bounded by the request size only; a list, like events, by count
            lines = data["lines"]
            if len(lines) > self._max_batch_events:
                raise _Reject(
                    413, f"{len(lines)} lines in one batch; the limit is {self._max_batch_events}"
                )
            if not all(isinstance(line, str) for line in lines):
                raise _Reject(400, "lines: expected a list of strings")
        service, source, tags = (
            data.get("service", ""),
            data.get("source", "backend"),
            data.get("tags", []),
        )
        if not isinstance(service, str) or not isinstance(source, str) or not source:
            raise _Reject(400, "service and source: expected strings")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _Reject(400, "tags: expected a list of strings")
        key = (service, source, tuple(tags))
        parser = self._sources.get(key)
        if parser is None:
            if len(self._sources) >= _MAX_LINE_SOURCES:
                self._sources.clear()
            parser = self._sources[key] = LogLines(service=service, source=source, tags=tags)
        observed = data.get("observed_time_ms")
        if observed is not None and (
            not isinstance(observed, int) or not 0 <= observed < _MAX_OBSERVED_MS
        ):
            raise _Reject(
                400, "observed_time_ms: expected milliseconds since the epoch (1970 to 2262)"
            )
        observed_ns = observed * 1_000_000 if observed else None
        if stream is not None:
            block, closing = self._streams.block((*key, stream), parser, end=end)
            for evicted in closing:  # first: they are gone from the table either way
                with contextlib.suppress(_Reject):  # refused: the pipeline counted the drop
                    self._offer(evicted, [], None)
            self._offer(block, lines, observed_ns)
        elif "text" in data:
            if lines:
                self._offer(self._streams.single(parser), lines, observed_ns)
        elif lines:
            self._offer(parser, lines, observed_ns)
        if batch is not None:
            if len(self._accepted_batches) >= _MAX_BATCH_IDS:
                del self._accepted_batches[next(iter(self._accepted_batches))]
            self._accepted_batches[batch] = len(lines)
        return web.json_response({"status": "ok", "count": len(lines)})
