"""The trace list of the web page: stored traces, newest first, filtered and paged.

Traces are listed in the order they were first seen, newest first. The filters on spans
(service, errors only, text in a span name, time range) are answered by a scan of the
span columns, chunk by chunk, that never builds a span object for a span that does not
match; a chunk without the service, an error or a matching name is skipped whole. What
needs each trace's spans (its duration) is checked while the page is built, for at most
``MAX_EXAMINED`` traces per request: past that the page ends early, says so
(``metadata.partial``) and its cursor goes on from where the search stopped. A page
without span filters costs about the same with 1,000 spans stored or 1,000,000 (it reads
the spans of the traces it shows); the span filters scan the columns once per request,
about 20-250 ms at 1,000,000 spans on the reference machine.

The cursor is the id of the last trace a page looked at; a cursor whose trace has since
been evicted is refused with a message (start again from the newest).

A ``SummaryCache`` keeps the lines already made, each valid while its trace holds the
same number of spans (a late span or an eviction changes it), so listing the same
traces again reads no span.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.filters import parse_time_ns
from collector.model import StatusCode, parse_hex_id
from collector.query import iso_time
from collector.scan import chunk_filter
from collector.store import Store

__all__ = [
    "MAX_EXAMINED",
    "SummaryCache",
    "TraceQuery",
    "parse_trace_query",
    "trace_list",
    "trace_summary",
]

MAX_EXAMINED = 5_000
"""Traces whose spans one request reads while filtering by duration."""
_MAX_LIMIT = 200
_KEYS = ("service", "errors", "text", "min_duration_ms", "since", "until", "limit", "cursor")


@dataclass(slots=True)
class TraceQuery:
    """Which traces a page lists. ``text`` is a case-insensitive substring of any span's
    name; ``since``/``until`` bound the start of any of its spans."""

    service: str | None = None
    errors: bool = False
    text: str | None = None
    min_duration_ms: float | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int = 50
    cursor: bytes | None = None

    @property
    def scans_spans(self) -> bool:
        return bool(self.service or self.errors or self.text or self.since_ns or self.until_ns)


def parse_trace_query(params: Mapping[str, str]) -> TraceQuery:
    """A query from URL parameters; ValueError names the key that is wrong."""
    unknown = sorted(set(params) - set(_KEYS))
    if unknown:
        raise ValueError(f"unknown parameter {unknown[0]!r} (allowed: {', '.join(_KEYS)})")
    q = TraceQuery(
        service=params.get("service") or None,
        text=params.get("text") or None,
        since_ns=parse_time_ns("since", params.get("since")),
        until_ns=parse_time_ns("until", params.get("until")),
    )
    errors = params.get("errors", "")
    if errors not in ("", "0", "1", "true", "false"):
        raise ValueError(f"errors: {errors!r} must be 1 or 0")
    q.errors = errors in ("1", "true")
    if text := params.get("min_duration_ms"):
        try:
            q.min_duration_ms = float(text)
        except ValueError:
            raise ValueError(f"min_duration_ms: {text!r} is not a number of ms") from None
    if text := params.get("limit"):
        if not text.isdigit() or not 1 <= int(text) <= _MAX_LIMIT:
            raise ValueError(f"limit: {text!r} must be a number of traces, 1-{_MAX_LIMIT}")
        q.limit = int(text)
    if text := params.get("cursor"):
        q.cursor = parse_hex_id(text.lower(), 16)
        if q.cursor is None:
            raise ValueError(f"cursor: {text!r:.40} must be metadata.cursor_next of a page")
    return q


class SummaryCache:
    """The newest ``size`` trace lines made, by trace id and span count. Loop only."""

    __slots__ = ("_lines", "size")

    def __init__(self, size: int = 5_000) -> None:
        self.size = size
        self._lines: OrderedDict[bytes, tuple[int, dict[str, Any]]] = OrderedDict()

    def summary(self, store: Store, trace_id: bytes) -> dict[str, Any] | None:
        count = store.spans.trace_span_count(trace_id)
        kept = self._lines.get(trace_id)
        if kept is not None and kept[0] == count:
            self._lines.move_to_end(trace_id)
            return kept[1]
        line = trace_summary(store, trace_id)
        if line is None:
            self._lines.pop(trace_id, None)
            return None
        self._lines[trace_id] = (count, line)
        self._lines.move_to_end(trace_id)
        if len(self._lines) > self.size:
            self._lines.popitem(last=False)
        return line


def trace_summary(store: Store, trace_id: bytes) -> dict[str, Any] | None:
    """One line of the list: root, services, duration, counts; None if not stored."""
    spans = store.spans.trace(trace_id)
    if not spans:
        return None
    ids = {s.span_id for s in spans}
    roots = [s for s in spans if s.is_root] or [s for s in spans if s.parent_id not in ids]
    root = min(roots or spans, key=lambda s: s.start_ns)
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    return {
        "trace_id": trace_id.hex(),
        "root": root.name,
        "root_service": root.service,
        "services": sorted({s.service for s in spans}),
        "start_time": iso_time(start),
        "start_ms": start // 1_000_000,
        "duration_ms": (end - start) / 1e6,
        "span_count": len(ids),
        "error_count": sum(1 for s in spans if s.status == StatusCode.ERROR),
        "orphan_count": sum(1 for s in spans if not s.is_root and s.parent_id not in ids),
    }


def trace_list(store: Store, q: TraceQuery, cache: SummaryCache | None = None) -> dict[str, Any]:
    """A page of traces, newest first, with ``metadata`` (``total_count``, exact unless
    ``total_count_exact`` is false; ``cursor_next``; ``partial`` when the search stopped
    at ``MAX_EXAMINED``)."""
    ids = store.spans.newest_trace_ids(store.spans.trace_count)
    start = 0
    if q.cursor is not None:
        try:
            start = ids.index(q.cursor) + 1
        except ValueError:
            raise ValueError(
                f"cursor: trace {q.cursor.hex()} is no longer stored (evicted); "
                "start again from the newest"
            ) from None
    matching = _matching_traces(store, q) if q.scans_spans else None
    traces: list[dict[str, Any]] = []
    examined = 0
    cursor_next: bytes | None = None
    partial = False
    position = start
    while position < len(ids):
        trace_id = ids[position]
        position += 1
        if matching is not None and trace_id not in matching:
            continue
        if examined == MAX_EXAMINED:
            cursor_next, partial = ids[position - 2], True
            break
        examined += 1
        summary = (
            cache.summary(store, trace_id) if cache is not None else trace_summary(store, trace_id)
        )
        if summary is None:
            continue
        if q.min_duration_ms is not None and summary["duration_ms"] < q.min_duration_ms:
            continue
        traces.append(summary)
        if len(traces) == q.limit:
            rest = ids[position:]
            if any(t in matching for t in rest) if matching is not None else rest:
                cursor_next = trace_id
            break
    total = len(matching) if matching is not None else len(ids)
    metadata: dict[str, Any] = {
        "total_count": total,
        "total_count_exact": q.min_duration_ms is None,
        "cursor_next": cursor_next.hex() if cursor_next is not None else None,
        "examined": examined,
    }
    if partial:
        metadata["partial"] = (
            f"searched {examined} traces for this page without filling it; cursor_next searches on"
        )
    return {"traces": traces, "metadata": metadata}


def _matching_traces(store: Store, q: TraceQuery) -> set[bytes]:
    """Ids of traces with a span that passes the span filters, from the columns."""
    found: set[bytes] = set()
    text = q.text.lower() if q.text else None
    since, until = q.since_ns, q.until_ns
    spans = store.spans
    for chunk in spans.chunks_newest_first():
        if since is not None and chunk.prefix_max_start < since:
            break
        if (since is not None and chunk.max_start < since) or (
            until is not None and chunk.min_start > until
        ):
            continue
        passes = chunk_filter(chunk, q.service, q.errors, text)
        if passes is None:
            continue
        service, names = passes.service_index, passes.names
        tids, starts, statuses = chunk.trace_ids, chunk.starts, chunk.statuses
        service_index, name_index = chunk.service_index, chunk.name_index
        for i in range(chunk.n):
            if q.errors and statuses[i] != StatusCode.ERROR:
                continue
            if service is not None and service_index[i] != service:
                continue
            if names is not None and name_index[i] not in names:
                continue
            t = starts[i]
            if (since is not None and t < since) or (until is not None and t > until):
                continue
            trace_id = tids[i * 16 : i * 16 + 16]
            if trace_id not in found and spans.holds(chunk, i):
                found.add(trace_id)
    return found
