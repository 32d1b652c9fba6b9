"""Queries over the stores: trace trees, the merged timeline, trace summaries.

Answers are plain JSON-ready dicts; the HTTP API, the CLI and MCP share them. Every
timeline item has the one Event shape (``id, timestamp, source, level, message, ...``)
whether it came from a span, a log record or a native event.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.model import LEVELS, Record, SpanKind, StatusCode
from collector.store import Store, StoredSpan
from collector.trace_tree import Node, TraceTree, build_tree

__all__ = [
    "TimelineFilter",
    "recent_trees",
    "record_event",
    "span_event",
    "timeline",
    "trace_document",
    "trace_summaries",
    "trace_tree",
]

_LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}


def iso_time(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="milliseconds")


# -- trace trees ----------------------------------------------------------------------


def trace_tree(store: Store, trace_id: bytes) -> TraceTree | None:
    """The assembled tree of one trace with its records; None if nothing is stored."""
    spans = store.spans.trace(trace_id)
    records = store.records.by_trace(trace_id)
    if not spans and not records:
        return None
    return build_tree(trace_id, spans, records)


def trace_document(store: Store, trace_id: bytes, *, detail: bool = True) -> dict[str, Any] | None:
    """The trace as a tree of spans with its log records and events; None if unknown."""
    tree = trace_tree(store, trace_id)
    if tree is None:
        return None
    services: dict[str, dict[str, Any]] = {}

    def render(node: Node) -> dict[str, Any]:
        span = node.span
        doc = _span_fields(span)
        if node.orphan:
            doc["orphan"] = True
        if detail:
            d = node.detail()
            services.setdefault(span.service, d.resource)
            doc["status_message"] = d.status_message
            doc["attributes"] = d.attributes
            doc["events"] = [
                {"name": e.name, "time": iso_time(e.time_ns), "attributes": e.attributes}
                for e in d.events
            ]
            if d.links:
                doc["links"] = d.links
        else:
            services.setdefault(span.service, {})
        doc["children"] = [render(child) for child in node.children]
        return doc

    has_spans = bool(tree.nodes)
    start, end = tree.start_ns, tree.end_ns
    return {
        "trace_id": trace_id.hex(),
        "span_count": len(tree.nodes),
        "error_count": sum(1 for n in tree.nodes.values() if n.is_error),
        "orphan_count": tree.orphan_count,
        "start_time": iso_time(start) if has_spans else None,
        "start_ns": start,
        "duration_ms": (end - start) / 1e6 if has_spans else 0.0,
        "spans": [render(root) for root in tree.roots],
        "services": services,
        "records": [record_event(r) for r in tree.records],
    }


def _span_fields(span: StoredSpan) -> dict[str, Any]:
    return {
        "span_id": span.span_id.hex(),
        "parent_span_id": None if span.is_root else span.parent_id.hex(),
        "service": span.service,
        "name": span.name,
        "kind": _kind_name(span.kind),
        "start_time": iso_time(span.start_ns),
        "start_ns": span.start_ns,
        "duration_ms": span.duration_ns / 1e6,
        "status": _status_name(span.status),
    }


def _kind_name(kind: int) -> str:
    try:
        return SpanKind(kind).name
    except ValueError:
        return "UNSPECIFIED"


def _status_name(status: int) -> str:
    try:
        return StatusCode(status).name
    except ValueError:
        return "UNSET"


def recent_trees(store: Store, *, limit: int, with_records: bool = True) -> list[TraceTree]:
    """The newest ``limit`` traces that have spans, assembled."""
    return [
        build_tree(t, store.spans.trace(t), store.records.by_trace(t) if with_records else [])
        for t in store.spans.newest_trace_ids(limit)
    ]


def trace_summaries(store: Store, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest traces, one line each: root, services, duration, counts."""
    out: list[dict[str, Any]] = []
    for tree in recent_trees(store, limit=limit, with_records=False):
        root = tree.roots[0].span
        spans = [n.span for n in tree.nodes.values()]
        out.append(
            {
                "trace_id": tree.trace_id.hex(),
                "root": root.name,
                "root_service": root.service,
                "services": sorted({s.service for s in spans}),
                "start_time": iso_time(tree.start_ns),
                "duration_ms": (tree.end_ns - tree.start_ns) / 1e6,
                "span_count": len(spans),
                "error_count": sum(1 for s in spans if s.status == StatusCode.ERROR),
            }
        )
    return out


# -- timeline -------------------------------------------------------------------------


@dataclass(slots=True)
class TimelineFilter:
    """``level`` is a minimum; ``text`` is a case-insensitive substring of the message."""

    trace_id: bytes | None = None
    correlation_id: str | None = None
    source: str | None = None
    service: str | None = None
    level: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    text: str | None = None
    limit: int = 100
    cursor: tuple[int, str] | None = None


def span_event(span: StoredSpan) -> dict[str, Any]:
    """A span as a timeline event."""
    error = span.status == StatusCode.ERROR
    return {
        "id": f"span:{span.span_id.hex()}",
        "timestamp": span.start_ns // 1_000_000,
        "time": iso_time(span.start_ns),
        "source": "otlp",
        "kind": "span",
        "level": "error" if error else "info",
        "message": f"{span.service}: {span.name}" if span.service else span.name,
        "service": span.service,
        "correlation_id": None,
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": None if span.is_root else span.parent_id.hex(),
        "tags": [],
        "metadata": {
            "name": span.name,
            "span_kind": _kind_name(span.kind),
            "status": _status_name(span.status),
            "duration_ms": span.duration_ns / 1e6,
        },
    }


def record_event(record: Record) -> dict[str, Any]:
    """A log record or native event as a timeline event."""
    return {
        "id": str(record.id),
        "timestamp": record.time_ns // 1_000_000,
        "time": iso_time(record.time_ns),
        "source": record.source,
        "kind": record.kind,
        "level": record.level,
        "message": record.message,
        "service": record.service,
        "correlation_id": record.correlation_id,
        "trace_id": record.trace_id.hex() if record.trace_id else None,
        "span_id": record.span_id.hex() if record.span_id else None,
        "parent_span_id": None,
        "tags": list(record.tags),
        "metadata": record.attributes,
    }


def timeline(store: Store, f: TimelineFilter) -> dict[str, Any]:
    """The newest ``limit`` matching items before the cursor, oldest first.

    ``cursor_next`` pages further back in time.
    """
    min_rank = _LEVEL_RANK.get(f.level, 0) if f.level else 0
    text = f.text.lower() if f.text else None
    total = 0

    def keep(time_ns: int, level: str, source: str, service: str, message: str) -> bool:
        return (
            (f.since_ns is None or time_ns >= f.since_ns)
            and (f.until_ns is None or time_ns <= f.until_ns)
            and (f.source is None or source == f.source)
            and (f.service is None or service == f.service)
            and (not min_rank or _LEVEL_RANK.get(level, 1) >= min_rank)
            and (text is None or text in message.lower())
        )

    def matches() -> Iterator[tuple[int, str, StoredSpan | Record]]:
        nonlocal total
        spans, records = _candidates(store, f)
        for span in spans:
            level = "error" if span.status == StatusCode.ERROR else "info"
            if keep(span.start_ns, level, "otlp", span.service, span.name):
                total += 1
                key = (span.start_ns, f"span:{span.span_id.hex()}")
                if f.cursor is None or key < f.cursor:
                    yield key[0], key[1], span
        for record in records:
            if keep(record.time_ns, record.level, record.source, record.service, record.message):
                total += 1
                key = (record.time_ns, f"{record.id:012d}")
                if f.cursor is None or key < f.cursor:
                    yield key[0], key[1], record

    page = heapq.nlargest(f.limit + 1, matches(), key=lambda m: (m[0], m[1]))
    more = len(page) > f.limit
    page = page[: f.limit]
    page.reverse()
    events = [span_event(o) if isinstance(o, StoredSpan) else record_event(o) for _, _, o in page]
    cursor_next = f"{page[0][0]}:{page[0][1]}" if more and page else None
    return {"events": events, "metadata": {"total_count": total, "cursor_next": cursor_next}}


def _candidates(store: Store, f: TimelineFilter) -> tuple[Iterable[StoredSpan], Iterable[Record]]:
    if f.trace_id is not None:
        return store.spans.trace(f.trace_id), store.records.by_trace(f.trace_id)
    if f.correlation_id is not None:
        records = store.records.by_correlation(f.correlation_id)
        trace_ids = {r.trace_id for r in records if r.trace_id is not None}
        spans = [s for t in trace_ids for s in store.spans.trace(t)]
        linked = [r for t in trace_ids for r in store.records.by_trace(t)]
        return spans, list({id(r): r for r in [*records, *linked]}.values())
    return store.spans.iter_newest_first(), store.records.iter_newest_first()


def parse_cursor(text: str) -> tuple[int, str]:
    """Inverse of ``cursor_next``; ValueError if malformed."""
    time_part, _, key = text.partition(":")
    if not key:
        raise ValueError(f"{text!r} is not a cursor")
    return int(time_part), key
