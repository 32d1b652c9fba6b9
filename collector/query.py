"""Queries over the stores: trace trees, the merged timeline, trace summaries.

Filters live in ``collector.filters``; the newest-first scans under the timeline in
``collector.scan``.

Answers are plain JSON-ready dicts; the HTTP API, the CLI and MCP share them. Every
timeline item has the one Event shape (``id, timestamp, source, level, message, ...``)
whether it came from a span, a log record or a native event.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from collector.filters import TimelineFilter
from collector.model import Record, SpanKind, StatusCode
from collector.scan import newest_matches
from collector.store import Store, StoredSpan
from collector.trace_tree import Node, TraceTree, build_tree

__all__ = [
    "iso_time",
    "recent_trees",
    "record_event",
    "span_event",
    "timeline",
    "trace_document",
    "trace_summaries",
    "trace_tree",
]


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


def span_event(span: StoredSpan) -> dict[str, Any]:
    """A span as a timeline event."""
    error = span.status == StatusCode.ERROR
    return {
        "id": f"span:{span.span_id.hex()}",
        "timestamp": span.start_ns // 1_000_000,
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

    ``cursor_next`` pages further back in time. ``total_count`` is exact unless
    ``total_count_exact`` is false, when the scan stopped early and it is a lower bound.
    """
    found = newest_matches(store, f, f.limit + 1)
    page = found.items[: f.limit]
    more = len(found.items) > f.limit
    page.reverse()
    events = [span_event(o) if isinstance(o, StoredSpan) else record_event(o) for _, _, o in page]
    cursor_next = f"{page[0][0]}:{page[0][1]}" if more and page else None
    return {
        "events": events,
        "metadata": {
            "total_count": found.total,
            "total_count_exact": found.exact,
            "cursor_next": cursor_next,
        },
    }
