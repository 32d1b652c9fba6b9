"""Trace requests: index fields decoded at ingest, the rest kept compressed and decoded
per span on demand; request ids on span attributes collected for correlation."""

from __future__ import annotations

import array
import re
import struct
import sys
import zlib
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.model import ZERO_SPAN_ID, SpanBatch, SpanDetail, SpanEvent
from collector.redact import Redactor
from receivers.otlp_codec.json_mapping import parse_request
from receivers.otlp_codec.values import (
    _MAX_TIME_NS,
    _ZERO_TRACE_ID,
    _any_value,
    _bad_ids_message,
    _bad_time_message,
    _service_name,
    attributes_to_dict,
)

__all__ = ["DecodedTraces", "decode_traces", "restore_span_detail"]


@dataclass(slots=True)
class DecodedTraces:
    batch: SpanBatch
    rejected: int
    error: str


# -- traces ---------------------------------------------------------------------------


def decode_traces(
    body: bytes, *, is_json: bool = False, redactor: Redactor | None = None
) -> DecodedTraces:
    """Decode an ``ExportTraceServiceRequest``; raise ``DecodeError`` if it is not one.

    With a ``redactor``, secrets are replaced before anything of the request is kept."""
    raw, request = parse_request(body, ExportTraceServiceRequest, "resourceSpans", is_json=is_json)

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
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if start >= _MAX_TIME_NS or end >= _MAX_TIME_NS:
                    rejected += 1
                    if not error:
                        error = _bad_time_message(
                            "span",
                            position,
                            ("start_time_unix_nano", start),
                            ("end_time_unix_nano", end),
                        )
                    continue
                kept.append(position)
                trace_ids.append(trace_id)
                span_ids.append(span_id)
                parent_ids.append(parent_id or ZERO_SPAN_ID)
                names.append(span.name)
                services.append(service)
                kinds.append(span.kind if 0 <= span.kind < 256 else 0)
                statuses.append(span.status.code if 0 <= span.status.code < 256 else 0)
                starts.append(start)
                ends.append(end)
                owners.append(group)
    if rejected:
        error = f"{rejected} span(s) rejected; first: {error}"
    detail = _EncodedSpans(raw, request, kept, owners, groups, position + 1, names, redactor)
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
        detail.redacted,
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

    Secrets are replaced before the bytes are kept: the redactor's scan points at the
    spans that may hold one; only those are redacted and encoded again, with the
    request's resources. The bytes as received are not referenced afterwards.
    """

    __slots__ = (
        "_groups",
        "_kept",
        "_owners",
        "_packed",
        "_plain",
        "_ranges",
        "_resources",
        "_total",
        "redacted",
    )

    def __init__(
        self,
        raw: bytes,
        request: ExportTraceServiceRequest,
        kept: array.array[int],
        owners: array.array[int],
        groups: list[tuple[bytes, str]],
        total: int,
        names: list[str],
        redactor: Redactor | None,
    ) -> None:
        self.redacted = 0
        # Kept spans' wire positions; turned into byte ranges on the first read, which
        # spares ingest a walk of the bytes for requests never read.
        self._kept: array.array[int] | None = kept
        self._ranges: array.array[int] = array.array("I")
        self._total = total
        self._owners = owners
        self._groups = groups
        self._resources: dict[int, dict[str, Any]] = {}
        if redactor is not None:
            hints = redactor.hints(raw)
            if hints:
                raw = self._redact(raw, request, hints, names, redactor)
        self._packed = zlib.compress(raw, 1)
        self._plain: bytes | None = None

    def _redact(
        self,
        raw: bytes,
        request: ExportTraceServiceRequest,
        hints: list[tuple[int, int]],
        names: list[str],
        redactor: Redactor,
    ) -> bytes:
        """Redact the resources, the scopes and the spans the hints point at (all, for
        an unusual encoding); return the bytes to keep. If anything was replaced, those
        are the kept spans back to back, as received or encoded again if they changed,
        with their byte ranges set here: nothing outside them (the resources are kept
        redacted in ``groups``) and nothing as it was before redaction."""
        kept = self._kept
        assert kept is not None
        ranges = _span_ranges(raw)
        usual = len(ranges) == 2 * self._total
        spans: list[Span] = []
        groups: list[tuple[bytes, str]] = []
        count = 0
        for resource_spans in request.resource_spans:
            count += _redact_key_values(resource_spans.resource.attributes, redactor)
            resource = resource_spans.resource.SerializeToString()
            for scope_spans in resource_spans.scope_spans:
                count += _redact_key_values(scope_spans.scope.attributes, redactor)
                groups.append((resource, scope_spans.scope.name))
                spans.extend(scope_spans.spans)
        changed: set[int] = set()
        for position in _touched(hints, ranges) if usual else range(len(spans)):
            replaced = _redact_span(spans[position], redactor)
            if replaced:
                count += replaced
                changed.add(position)
        self.redacted = count
        if not count:
            return raw
        parts: list[bytes] = []
        offset = 0
        for index, position in enumerate(kept):
            if position in changed or not usual:
                part = spans[position].SerializeToString()
                names[index] = spans[position].name
            else:
                part = raw[ranges[2 * position] : ranges[2 * position + 1]]
            parts.append(part)
            self._ranges.append(offset)
            offset += len(part)
            self._ranges.append(offset)
        self._kept = None
        self._groups = groups
        return b"".join(parts)

    @property
    def nbytes(self) -> int:
        """The compressed request, the span positions or ranges and the per-group
        resources."""
        return (
            sys.getsizeof(self)
            + sys.getsizeof(self._packed)
            + sys.getsizeof(self._ranges)
            + (sys.getsizeof(self._kept) if self._kept is not None else 0)
            + sys.getsizeof(self._owners)
            + sys.getsizeof(self._groups)
            + sum(sys.getsizeof(r) + sys.getsizeof(scope) for r, scope in self._groups)
        )

    def encoded(self) -> bytes:
        """Version, the compressed bytes as kept (redacted), the spans' positions or
        byte ranges, their groups and the groups' resources and scopes, each
        length-prefixed; ``restore_span_detail`` reads it back."""
        located = self._kept is None
        positions = self._ranges if located else self._kept
        assert positions is not None
        parts = [
            _HEAD.pack(_FORMAT, located, self._total, len(self._groups)),
            *_framed(self._packed, positions.tobytes(), self._owners.tobytes()),
        ]
        for resource, scope in self._groups:
            parts += _framed(resource, scope.encode())
        return b"".join(parts)

    @classmethod
    def restore(cls, data: bytes) -> _EncodedSpans:
        """The source ``encoded()`` gave ``data`` of; ``ValueError`` if it is not that."""
        try:
            version, located, total, count = _HEAD.unpack_from(data)
            if version != _FORMAT:
                raise ValueError(f"span detail format {version}, expected {_FORMAT}")
            fields = _unframed(data, _HEAD.size, 3 + 2 * count)
        except struct.error as e:
            raise ValueError(f"truncated span detail: {e}") from None
        self = cls.__new__(cls)
        self.redacted = 0
        self._total = total
        self._packed = fields[0]
        positions: array.array[int] = array.array("I", fields[1])
        self._kept, self._ranges = (None, positions) if located else (positions, array.array("I"))
        self._owners = array.array("I", fields[2])
        self._groups = [(fields[3 + 2 * g], fields[4 + 2 * g].decode()) for g in range(count)]
        self._resources = {}
        self._plain = None
        return self

    def _bytes(self) -> bytes:
        if self._plain is None:
            self._plain = zlib.decompress(self._packed)
            _recently_read.append(self)
            if len(_recently_read) > _DECOMPRESSED_REQUESTS:
                _recently_read.popleft()._plain = None
        if self._kept is not None:
            self._plain = self._locate(self._kept, self._plain)
        return self._plain

    def _locate(self, kept: array.array[int], raw: bytes) -> bytes:
        """Find the kept spans' byte ranges in ``raw``; return the bytes they refer to."""
        ranges = _span_ranges(raw)
        if len(ranges) != 2 * self._total:
            # An unusual encoding (e.g. a field repeated out of order): re-encode each span.
            raw, ranges = _reencode_spans(ExportTraceServiceRequest.FromString(raw))
            self._packed = zlib.compress(raw, 1)
        for position in kept:
            self._ranges.append(ranges[2 * position])
            self._ranges.append(ranges[2 * position + 1])
        self._kept = None
        return raw

    def _resource(self, group: int) -> dict[str, Any]:
        resource = self._resources.get(group)
        if resource is None:
            resource = attributes_to_dict(Resource.FromString(self._groups[group][0]).attributes)
            self._resources[group] = resource
        return dict(resource)

    def span_detail(self, index: int) -> SpanDetail:
        raw = self._bytes()
        start, end = self._ranges[2 * index], self._ranges[2 * index + 1]
        span = Span.FromString(raw[start:end])
        group = self._owners[index]
        return SpanDetail(
            attributes=attributes_to_dict(span.attributes),
            events=[
                SpanEvent(e.name, e.time_unix_nano, attributes_to_dict(e.attributes))
                for e in span.events
            ],
            links=[
                {
                    "trace_id": link.trace_id.hex(),
                    "span_id": link.span_id.hex(),
                    "attributes": attributes_to_dict(link.attributes),
                }
                for link in span.links
            ],
            status_message=span.status.message,
            resource=self._resource(group),
            scope=self._groups[group][1],
            trace_state=span.trace_state,
        )


_FORMAT = 1
_HEAD = struct.Struct("<BBII")
_LENGTH = struct.Struct("<I")


def restore_span_detail(data: bytes) -> _EncodedSpans:
    """A ``SpanDetailDecoder``: span detail the durable history kept, as a source again."""
    return _EncodedSpans.restore(data)


def _framed(*fields: bytes) -> list[bytes]:
    out: list[bytes] = []
    for field in fields:
        out += (_LENGTH.pack(len(field)), field)
    return out


def _unframed(data: bytes, offset: int, count: int) -> list[bytes]:
    fields = []
    for _ in range(count):
        (length,) = _LENGTH.unpack_from(data, offset)
        offset += _LENGTH.size
        if offset + length > len(data):
            raise ValueError("truncated span detail")
        fields.append(data[offset : offset + length])
        offset += length
    return fields


def _touched(hints: list[tuple[int, int]], ranges: array.array[int]) -> set[int]:
    """Wire positions of the spans whose bytes overlap a hint."""
    starts = ranges[0::2]
    touched: set[int] = set()
    for start, end in hints:
        position = max(0, bisect_right(starts, start) - 1)
        while position < len(starts) and starts[position] < end:
            if ranges[2 * position + 1] > start:
                touched.add(position)
            position += 1
    return touched


def _redact_span(span: Span, redactor: Redactor) -> int:
    count = 0
    for holder in (span, *span.events):
        name, replaced = redactor.redact_text(holder.name)
        if replaced:
            holder.name = name
            count += replaced
        count += _redact_key_values(holder.attributes, redactor)
    for link in span.links:
        count += _redact_key_values(link.attributes, redactor)
    message, replaced = redactor.redact_text(span.status.message)
    if replaced:
        span.status.message = message
        count += replaced
    return count


def _redact_key_values(key_values: Any, redactor: Redactor) -> int:
    """Redact an OTLP ``KeyValue`` list in place, nested values too (iteratively)."""
    count = 0
    lists = [key_values]
    values: list[AnyValue] = []
    while lists or values:
        if lists:
            for kv in lists.pop():
                if not redactor.is_secret_key(kv.key):
                    values.append(kv.value)
                elif (
                    kv.value.WhichOneof("value") != "string_value"
                    or kv.value.string_value != redactor.replacement
                ):
                    kv.value.string_value = redactor.replacement
                    count += 1
            continue
        value = values.pop()
        kind = value.WhichOneof("value")
        if kind == "string_value":
            text, replaced = redactor.redact_text(value.string_value)
            if replaced:
                value.string_value = text
                count += replaced
        elif kind == "array_value":
            values.extend(value.array_value.values)
        elif kind == "kvlist_value":
            lists.append(value.kvlist_value.values)
    return count


# Requests whose bytes are currently kept decompressed, oldest first.
_DECOMPRESSED_REQUESTS = 16
_recently_read: deque[_EncodedSpans] = deque()


def _span_ranges(raw: bytes) -> array.array[int]:
    """Byte ranges (start, end pairs) of every Span in an encoded request, in wire order.

    Walks only the three enclosing levels: request.resource_spans(1) ->
    scope_spans(2) -> spans(2). Spans, nearly every field at the third level, are
    read inline (tag 0x12, then the length) rather than through ``_fields``.
    """
    ranges: array.array[int] = array.array("I")
    append = ranges.append
    for field, start, end in _fields(raw, 0, len(raw)):
        if field != 1:
            continue
        for field2, start2, end2 in _fields(raw, start, end):
            if field2 != 2:
                continue
            pos = start2
            while pos < end2:
                if raw[pos] == 0x12:
                    b = raw[pos + 1]
                    pos += 2
                    length = b & 0x7F
                    shift = 7
                    while b >= 0x80:
                        b = raw[pos]
                        pos += 1
                        length |= (b & 0x7F) << shift
                        shift += 7
                    append(pos)
                    pos += length
                    append(pos)
                    continue
                for field3, start3, end3 in _fields(raw, pos, end2):  # one field, any kind
                    if field3 == 2:
                        append(start3)
                        append(end3)
                    pos = end3
                    break
                else:
                    break
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
