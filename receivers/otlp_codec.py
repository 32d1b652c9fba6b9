"""OTLP decoding, shared by the gRPC and HTTP receivers: protobuf and JSON in, model out.

Nothing past the receivers sees protobuf messages or OTLP JSON. For spans only the
indexed fields are read at ingest; the request bytes are kept with each span's byte
range, and a span's attributes and events are decoded from that range on demand.
Invalid items (ids of the wrong length, all-zero ids) are rejected one by one and
reported as partial success, while the valid items of the same request are kept.
"""

from __future__ import annotations

import array
import base64
import json
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import Sink
from collector.errors import DecodeError
from collector.model import ZERO_SPAN_ID, DropReason, Record, SpanBatch, SpanDetail, SpanEvent

__all__ = [
    "DecodedLogs",
    "DecodedTraces",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
    "deliver",
    "encode_response",
    "level_from_severity",
]

_ZERO_TRACE_ID = bytes(16)
_UNKNOWN_SERVICE = "unknown_service"


@dataclass(slots=True)
class DecodedTraces:
    batch: SpanBatch
    rejected: int
    error: str


@dataclass(slots=True)
class DecodedLogs:
    records: list[Record]
    rejected: int
    error: str


# -- traces ---------------------------------------------------------------------------


def decode_traces(body: bytes, *, is_json: bool = False) -> DecodedTraces:
    """Decode an ``ExportTraceServiceRequest``; raise ``DecodeError`` if it is not one."""
    raw = _json_to_protobuf(body, ExportTraceServiceRequest, "resourceSpans") if is_json else body
    try:
        request = ExportTraceServiceRequest.FromString(raw)
    except (ProtobufDecodeError, RuntimeError) as exc:
        raise DecodeError(f"body is not a valid OTLP ExportTraceServiceRequest: {exc}") from exc

    trace_ids: list[bytes] = []
    span_ids: list[bytes] = []
    parent_ids: list[bytes] = []
    names: list[str] = []
    services: list[str] = []
    kinds = bytearray()
    statuses = bytearray()
    starts: array.array[int] = array.array("q")
    ends: array.array[int] = array.array("q")
    groups: list[tuple[bytes, str]] = []
    owners: array.array[int] = array.array("I")
    kept: array.array[int] = array.array("I")
    rejected = 0
    error = ""
    position = -1
    for resource_spans in request.resource_spans:
        resource = resource_spans.resource
        service = _service_name(resource)
        resource_bytes = resource.SerializeToString()
        for scope_spans in resource_spans.scope_spans:
            group = len(groups)
            groups.append((resource_bytes, scope_spans.scope.name))
            for span in scope_spans.spans:
                position += 1
                trace_id = span.trace_id
                span_id = span.span_id
                parent_id = span.parent_span_id
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or trace_id == _ZERO_TRACE_ID
                    or span_id == ZERO_SPAN_ID
                    or (parent_id and len(parent_id) != 8)
                ):
                    rejected += 1
                    if not error:
                        error = _bad_ids_message("span", position, trace_id, span_id, parent_id)
                    continue
                kept.append(position)
                trace_ids.append(trace_id)
                span_ids.append(span_id)
                parent_ids.append(parent_id or ZERO_SPAN_ID)
                names.append(span.name)
                services.append(service)
                kinds.append(span.kind if 0 <= span.kind < 256 else 0)
                statuses.append(span.status.code if 0 <= span.status.code < 256 else 0)
                starts.append(span.start_time_unix_nano)
                ends.append(span.end_time_unix_nano)
                owners.append(group)
    if rejected:
        error = f"{rejected} span(s) rejected; first: {error}"
    detail = _EncodedSpans(raw, request, kept, owners, groups, position + 1)
    batch = SpanBatch(
        trace_ids,
        span_ids,
        parent_ids,
        names,
        services,
        kinds,
        statuses,
        starts,
        ends,
        detail,
        _request_ids(raw, request),
    )
    return DecodedTraces(batch, rejected, error)


_REQUEST_ID_BYTES = re.compile(rb"equest[-_.]?[iI][dD]")  # literal prefix: a fast scan
_REQUEST_ID_KEY = re.compile(r"(?:^|[._-])(?:x-)?(?:request|correlation)[-_]?id$", re.IGNORECASE)


def _request_ids(raw: bytes, request: ExportTraceServiceRequest) -> list[tuple[str, bytes]]:
    """(request id, trace id) from span attributes like ``http.request.header.x-request-id``.

    A byte search skips the attribute walk for requests that carry no such key.
    """
    if _REQUEST_ID_BYTES.search(raw) is None and b"orrelation" not in raw:
        return []
    found = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if len(span.trace_id) != 16:
                    continue
                for kv in span.attributes:
                    if _REQUEST_ID_KEY.search(kv.key):
                        value = _any_value(kv.value)
                        for item in value if isinstance(value, list) else [value]:
                            if isinstance(item, str) and item:
                                found.append((item, span.trace_id))
    return found


class _EncodedSpans:
    """The request's bytes, zlib-compressed, plus each kept span's byte range in them.

    Implements SpanDetailSource. Compression keeps a stored span near 40 bytes of encoded
    detail instead of ~350; the few most recently read requests stay decompressed, since
    reads cluster (one trace's spans, a page of a timeline).
    """

    __slots__ = ("_groups", "_owners", "_packed", "_plain", "_ranges", "_redact", "_resources")

    def __init__(
        self,
        raw: bytes,
        request: ExportTraceServiceRequest,
        kept: array.array[int],
        owners: array.array[int],
        groups: list[tuple[bytes, str]],
        total: int,
    ) -> None:
        ranges = _span_ranges(raw)
        if len(ranges) != 2 * total:
            # An unusual encoding (e.g. a field repeated out of order): re-encode each span.
            raw, ranges = _reencode_spans(request)
        self._ranges: array.array[int] = array.array("I")
        for position in kept:
            self._ranges.append(ranges[2 * position])
            self._ranges.append(ranges[2 * position + 1])
        self._packed = zlib.compress(raw, 1)
        self._plain: bytes | None = None
        self._owners = owners
        self._groups = groups
        self._resources: dict[int, dict[str, Any]] = {}
        self._redact: Callable[[dict[str, Any]], int] | None = None

    def redact_with(self, redact: Callable[[dict[str, Any]], int]) -> None:
        self._redact = redact
        self._resources.clear()

    def _bytes(self) -> bytes:
        if self._plain is None:
            self._plain = zlib.decompress(self._packed)
            _recently_read.append(self)
            if len(_recently_read) > _DECOMPRESSED_REQUESTS:
                _recently_read.popleft()._plain = None
        return self._plain

    def _resource(self, group: int) -> dict[str, Any]:
        resource = self._resources.get(group)
        if resource is None:
            resource = attributes_to_dict(Resource.FromString(self._groups[group][0]).attributes)
            if self._redact is not None:
                self._redact(resource)
            self._resources[group] = resource
        return dict(resource)

    def span_detail(self, index: int) -> SpanDetail:
        start, end = self._ranges[2 * index], self._ranges[2 * index + 1]
        span = Span.FromString(self._bytes()[start:end])
        group = self._owners[index]
        attributes = attributes_to_dict(span.attributes)
        events = [
            SpanEvent(e.name, e.time_unix_nano, attributes_to_dict(e.attributes))
            for e in span.events
        ]
        links = [
            {
                "trace_id": link.trace_id.hex(),
                "span_id": link.span_id.hex(),
                "attributes": attributes_to_dict(link.attributes),
            }
            for link in span.links
        ]
        if self._redact is not None:
            for mapping in (attributes, *(e.attributes for e in events)):
                self._redact(mapping)
            for link in links:
                self._redact(link["attributes"])
        return SpanDetail(
            attributes=attributes,
            events=events,
            links=links,
            status_message=span.status.message,
            resource=self._resource(group),
            scope=self._groups[group][1],
            trace_state=span.trace_state,
        )


# Requests whose bytes are currently kept decompressed, oldest first.
_DECOMPRESSED_REQUESTS = 16
_recently_read: deque[_EncodedSpans] = deque()


def _span_ranges(raw: bytes) -> array.array[int]:
    """Byte ranges (start, end pairs) of every Span in an encoded request, in wire order.

    Walks only the three enclosing levels: request.resource_spans(1) ->
    scope_spans(2) -> spans(2).
    """
    ranges: array.array[int] = array.array("I")
    for field, start, end in _fields(raw, 0, len(raw)):
        if field != 1:
            continue
        for field2, start2, end2 in _fields(raw, start, end):
            if field2 != 2:
                continue
            for field3, start3, end3 in _fields(raw, start2, end2):
                if field3 == 2:
                    ranges.append(start3)
                    ranges.append(end3)
    return ranges


def _fields(buf: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (field number, start, end) of each length-delimited field in buf[pos:end]."""
    while pos < end:
        tag = 0
        shift = 0
        while True:
            b = buf[pos]
            pos += 1
            tag |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        wire_type = tag & 7
        if wire_type == 2:
            length = 0
            shift = 0
            while True:
                b = buf[pos]
                pos += 1
                length |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
            yield tag >> 3, pos, pos + length
            pos += length
        elif wire_type == 0:
            while buf[pos] & 0x80:
                pos += 1
            pos += 1
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:  # groups never occur in OTLP and the parser accepted the bytes
            return


def _reencode_spans(request: ExportTraceServiceRequest) -> tuple[bytes, array.array[int]]:
    parts: list[bytes] = []
    ranges: array.array[int] = array.array("I")
    offset = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                encoded = span.SerializeToString()
                parts.append(encoded)
                ranges.append(offset)
                offset += len(encoded)
                ranges.append(offset)
    return b"".join(parts), ranges


# -- logs -----------------------------------------------------------------------------


def decode_logs(body: bytes, *, is_json: bool = False) -> DecodedLogs:
    """Decode an ``ExportLogsServiceRequest`` into records; raise ``DecodeError`` if invalid."""
    raw = _json_to_protobuf(body, ExportLogsServiceRequest, "resourceLogs") if is_json else body
    try:
        request = ExportLogsServiceRequest.FromString(raw)
    except (ProtobufDecodeError, RuntimeError) as exc:
        raise DecodeError(f"body is not a valid OTLP ExportLogsServiceRequest: {exc}") from exc
    records: list[Record] = []
    rejected = 0
    error = ""
    position = -1
    now = time.time_ns()
    for resource_logs in request.resource_logs:
        service = _service_name(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                position += 1
                trace_id = log.trace_id
                span_id = log.span_id
                if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
                    rejected += 1
                    if not error:
                        error = _bad_ids_message("log record", position, trace_id, span_id, b"")
                    continue
                attributes = attributes_to_dict(log.attributes)
                if log.event_name:
                    attributes.setdefault("event.name", log.event_name)
                records.append(
                    Record(
                        time_ns=log.time_unix_nano or log.observed_time_unix_nano or now,
                        source="otlp",
                        level=level_from_severity(log.severity_number, log.severity_text),
                        message=_body_text(log.body) if log.HasField("body") else "",
                        service=service,
                        trace_id=trace_id if trace_id and trace_id != _ZERO_TRACE_ID else None,
                        span_id=span_id if span_id and span_id != ZERO_SPAN_ID else None,
                        attributes=attributes,
                    )
                )
    if rejected:
        error = f"{rejected} log record(s) rejected; first: {error}"
    return DecodedLogs(records, rejected, error)


def level_from_severity(number: int, text: str) -> str:
    """OTel severity numbers 1-24 to debug/info/warn/error/critical; text if no number."""
    if number:
        if number <= 8:
            return "debug"
        if number <= 12:
            return "info"
        if number <= 16:
            return "warn"
        if number <= 20:
            return "error"
        return "critical"
    lowered = text.strip().lower()
    if lowered.startswith(("warn",)):
        return "warn"
    if lowered.startswith(("err",)):
        return "error"
    if lowered.startswith(("fatal", "crit", "emerg", "alert", "panic")):
        return "critical"
    if lowered.startswith(("debug", "trace")):
        return "debug"
    return "info"


# -- metrics --------------------------------------------------------------------------


def decode_metrics(body: bytes, *, is_json: bool = False) -> int:
    """Count the data points of an ``ExportMetricsServiceRequest``."""
    raw = (
        _json_to_protobuf(body, ExportMetricsServiceRequest, "resourceMetrics") if is_json else body
    )
    try:
        request = ExportMetricsServiceRequest.FromString(raw)
    except (ProtobufDecodeError, RuntimeError) as exc:
        raise DecodeError(f"body is not a valid OTLP ExportMetricsServiceRequest: {exc}") from exc
    points = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return points


# -- delivery -------------------------------------------------------------------------


def deliver(
    sink: Sink | None, signal: str, body: bytes, *, is_json: bool = False
) -> tuple[int, str]:
    """Decode an Export request for ``signal`` and offer it to ``sink``.

    Returns (rejected items, error message) for the partial-success answer. Raises
    ``DecodeError`` for a bad body and ``QueueFullError`` when the pipeline sheds load.
    """
    if sink is None:
        raise RuntimeError("receiver used before start()")
    if signal == "traces":
        traces = decode_traces(body, is_json=is_json)
        sink.count_dropped("spans", DropReason.INVALID, traces.rejected)
        if len(traces.batch):
            sink.offer_spans(traces.batch)
        return traces.rejected, traces.error
    if signal == "logs":
        logs = decode_logs(body, is_json=is_json)
        sink.count_dropped("records", DropReason.INVALID, logs.rejected)
        if logs.records:
            sink.offer_records(logs.records)
        return logs.rejected, logs.error
    sink.offer_metrics(decode_metrics(body, is_json=is_json))
    return 0, ""


# -- responses ------------------------------------------------------------------------

_RESPONSES: dict[str, tuple[type[Message], type[Message], str]] = {
    "traces": (ExportTraceServiceResponse, ExportTracePartialSuccess, "rejected_spans"),
    "logs": (ExportLogsServiceResponse, ExportLogsPartialSuccess, "rejected_log_records"),
    "metrics": (
        ExportMetricsServiceResponse,
        ExportMetricsPartialSuccess,
        "rejected_data_points",
    ),
}


def encode_response(signal: str, rejected: int = 0, error: str = "", *, as_json: bool) -> bytes:
    """The Export response for ``signal`` (traces, logs, metrics), with partial success."""
    response_type, partial_type, field = _RESPONSES[signal]
    response: Any = response_type()
    if rejected or error:
        response.partial_success.CopyFrom(partial_type(**{field: rejected, "error_message": error}))
    if as_json:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return bytes(response.SerializeToString())


# -- shared ---------------------------------------------------------------------------


def attributes_to_dict(attributes: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list to a plain dict (later duplicates win, as in the SDKs)."""
    return {kv.key: _any_value(kv.value) for kv in attributes}


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _body_text(value: AnyValue) -> str:
    body = _any_value(value)
    if isinstance(body, str):
        return body
    return json.dumps(body, separators=(",", ":"), default=str)


def _service_name(resource: Resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value or _UNKNOWN_SERVICE
    return _UNKNOWN_SERVICE


def _bad_ids_message(
    what: str, position: int, trace_id: bytes, span_id: bytes, parent_id: bytes
) -> str:
    problems = []
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        problems.append(f"trace id {trace_id.hex()!r} must be 16 non-zero bytes")
    if what == "span" and (len(span_id) != 8 or span_id == ZERO_SPAN_ID):
        problems.append(f"span id {span_id.hex()!r} must be 8 non-zero bytes")
    if what != "span" and span_id and len(span_id) != 8:
        problems.append(f"span id {span_id.hex()!r} must be 8 bytes")
    if parent_id and len(parent_id) != 8:
        problems.append(f"parent span id {parent_id.hex()!r} must be 8 bytes")
    return f"{what} #{position}: " + "; ".join(problems)


# OTLP/JSON writes ids as hex, where protobuf's JSON mapping expects base64.
_ID_FIELDS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
_NESTED = {
    "resourceSpans": ("scopeSpans", "scope_spans"),
    "resource_spans": ("scopeSpans", "scope_spans"),
    "scopeSpans": ("spans",),
    "scope_spans": ("spans",),
    "spans": ("links",),
    "resourceLogs": ("scopeLogs", "scope_logs"),
    "resource_logs": ("scopeLogs", "scope_logs"),
    "scopeLogs": ("logRecords", "log_records"),
    "scope_logs": ("logRecords", "log_records"),
}


def _json_to_protobuf(body: bytes, message_type: type[Message], top_key: str) -> bytes:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"body is not an OTLP/JSON request: expected an object with {top_key!r}")
    snake = "".join("_" + c.lower() if c.isupper() else c for c in top_key)
    if data and top_key not in data and snake not in data:
        raise DecodeError(
            f"body is not an OTLP/JSON request: expected an object with {top_key!r}, "
            f"got keys {sorted(data)[:5]}"
        )
    for key in (top_key, snake):
        if key in data:
            _hex_ids_to_base64(data[key], key)
    try:
        message = json_format.ParseDict(data, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP/JSON request: {exc}") from exc
    return bytes(message.SerializeToString())


def _hex_ids_to_base64(items: Any, key: str) -> None:
    """Rewrite hex ids in place. A malformed id is left as is (not base64 of anything
    meaningful), so the item decodes with an id of the wrong length and is rejected."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        for field, value in item.items():
            if field in _ID_FIELDS and isinstance(value, str):
                item[field] = _hex_to_base64(value)
        for child in _NESTED.get(key, ()):
            if child in item:
                _hex_ids_to_base64(item[child], child)


def _hex_to_base64(value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b"\xff"  # one byte: wrong length for any id, so the item is rejected
    return base64.b64encode(raw).decode()
