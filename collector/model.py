"""The data model every receiver converts to at its edge.

Spans arrive in large volumes, so they travel as a columnar ``SpanBatch``: only what
queries index (ids, parent, times, service, name, kind, status) is decoded at ingest;
everything else stays encoded in the receiver's ``SpanDetailSource`` and is decoded
when a query asks for it. Log records and native events are fewer and richer, so each
is a ``Record`` object.
"""

from __future__ import annotations

import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol

__all__ = [
    "LEVELS",
    "ZERO_SPAN_ID",
    "DropReason",
    "Record",
    "SpanBatch",
    "SpanDetail",
    "SpanDetailDecoder",
    "SpanDetailSource",
    "SpanEvent",
    "SpanKind",
    "StatusCode",
    "hex_id",
    "parse_hex_id",
]

LEVELS = ("debug", "info", "warn", "error", "critical")
ZERO_SPAN_ID = bytes(8)


class DropReason(StrEnum):
    """Why data was not stored, or stopped being stored; every count is keyed by one."""

    QUEUE_FULL = "queue_full"
    SHUTTING_DOWN = "shutting_down"
    INVALID = "invalid"
    TRACE_TOO_LARGE = "trace_too_large"
    EVICTED_SPAN_LIMIT = "evicted_span_limit"
    EVICTED_TRACE_LIMIT = "evicted_trace_limit"
    EVICTED_RECORD_LIMIT = "evicted_record_limit"
    EVICTED_BYTE_LIMIT = "evicted_byte_limit"
    EXPIRED = "expired"
    CLEARED = "cleared"  # removed on request (configure clear)
    WRITE_FAILED = "write_failed"  # history could not be written (disk full, ...)
    CORRUPT = "corrupt"  # a history block failed its checksum and was skipped


class SpanKind(IntEnum):
    """OTel span kinds, with OTLP's numbering."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class StatusCode(IntEnum):
    """OTel status codes, with OTLP's numbering."""

    UNSET = 0
    OK = 1
    ERROR = 2


def hex_id(raw: bytes) -> str:
    """Trace and span ids are shown in lowercase hex, as W3C and OTLP/JSON do."""
    return raw.hex()


def parse_hex_id(text: str, size: int) -> bytes | None:
    """Parse a hex trace (16) or span (8) id; None if malformed or all zeros."""
    if len(text) != size * 2:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return raw if any(raw) else None


@dataclass(slots=True)
class SpanEvent:
    """An event recorded on a span, such as an exception."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(slots=True)
class SpanDetail:
    """What a span carries beyond its index fields; decoded only on demand."""

    attributes: dict[str, Any]
    events: list[SpanEvent]
    links: list[dict[str, Any]]
    status_message: str
    resource: dict[str, Any]
    scope: str
    trace_state: str


class SpanDetailSource(Protocol):
    """The encoded rest of a batch's spans. Must be cheap to keep in memory."""

    def span_detail(self, index: int) -> SpanDetail:
        """Decode span ``index`` of the batch. What it holds was redacted when the
        receiver decoded the request: no secret is kept encoded either."""
        ...

    @property
    def nbytes(self) -> int:
        """Bytes this source keeps in memory, for the store's byte budget."""
        ...

    def encoded(self) -> bytes:
        """The whole source as bytes, for the durable history: the receiver's
        ``SpanDetailDecoder`` makes the same source of them again. Redacted already;
        cheap (no decoding), since every stored batch is written."""
        ...


SpanDetailDecoder = Callable[[bytes], SpanDetailSource]
"""Makes a ``SpanDetailSource`` of what its ``encoded()`` gave (raises ``ValueError`` if
the bytes are not that): the component table hands the store the codec's, so
``collector`` reads back span detail it cannot decode itself."""


@dataclass(slots=True)
class SpanBatch:
    """Valid spans of one request, as columns; index ``i`` of every column is one span.

    Ids are raw bytes: trace 16, span 8, parent 8 (all zeros for a root span).
    ``detail.span_detail(i)`` decodes the rest.
    """

    trace_ids: list[bytes]
    span_ids: list[bytes]
    parent_ids: list[bytes]
    names: list[str]
    services: list[str]
    kinds: bytearray
    statuses: bytearray
    starts: array.array[int]
    ends: array.array[int]
    detail: SpanDetailSource
    correlations: list[tuple[str, bytes]] = field(default_factory=list)
    """(request id, trace id) pairs seen on span attributes such as
    ``http.request.header.x-request-id``: log lines carrying only the request id join
    the trace."""
    redacted: int = 0
    """Values the receiver's redactor replaced in these spans (and their resources)."""

    def __len__(self) -> int:
        return len(self.span_ids)


@dataclass(slots=True)
class Record:
    """A log record or a native event: one line on the timeline.

    ``time_ns`` is when it happened (the source's clock); ``source`` is where it came
    from (otlp, browser, backend, test, git, custom, ...). ``id`` is set by the store.
    """

    time_ns: int
    source: str
    level: str
    message: str
    service: str = ""
    trace_id: bytes | None = None
    span_id: bytes | None = None
    correlation_id: str | None = None
    tags: Sequence[str] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    kind: str = "log"
    id: int = 0
    size: int = 0
    """Estimated bytes the record keeps in memory; set once, when it is capped at ingest
    (``collector.limits.cap_record``), and counted against the store's byte budget."""
