"""Queries over the stores: trace trees, the merged timeline, trace summaries.

Filters live in ``collector.filters``; the newest-first scans under the timeline in
``collector.scan``.

Answers are plain JSON-ready dicts; the HTTP API, the CLI and MCP share them. Every
timeline item has the one Event shape (``id, timestamp, source, level, message, ...``)
whether it came from a span, a log record or a native event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collector.bounded import Answer, cap_depth, json_size, note_truncated, take_within
from collector.filters import TimelineFilter
from collector.model import Record, SpanDetail, SpanKind, StatusCode
from collector.scan import newest_matches
from collector.store import Store, StoredSpan
from collector.trace_tree import Node, TraceTree, build_tree

__all__ = [
    "DEFAULT_SPAN_LIMIT",
    "MAX_PAGE_BYTES",
    "MAX_SPAN_LIMIT",
    "NEST_LEVELS",
    "ObservePage",
    "iso_time",
    "newest_page",
    "recent_trees",
    "record_event",
    "span_event",
    "timeline",
    "trace_document",
    "trace_summaries",
    "trace_tree",
]


class ObservePage(Answer, total=False):
    """What an ``observe`` view answers: its items under the view's key, and
    ``metadata`` (``total_count``, ``cursor_next``). Items are compacted, so their empty
    fields are absent."""

    events: list[dict[str, Any]]  # timeline, logs, errors, actions, websocket_events, changes
    traces: list[dict[str, Any]]  # traces: one summary each
    trace: dict[str, Any]  # trace: the summary, its span lines and records
    requests: list[dict[str, Any]]  # network_waterfall
    services: list[dict[str, Any]]  # services, with ``edges``: who calls whom
    edges: list[dict[str, Any]]
    runs: list[dict[str, Any]]  # tests: the newest runs and their failures


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


DEFAULT_SPAN_LIMIT = 1000
"""Spans in one page of a trace document unless ``limit`` asks for more."""
MAX_SPAN_LIMIT = 10_000
NEST_LEVELS = 32
"""Span levels nested through ``children`` in a trace document; a span deeper than that
starts a new entry of ``spans`` (``continued``), so any JSON parser can read a document
of a 10,000-deep chain."""
_MAX_DOCUMENT_BYTES = 8 * 2**20
MAX_PAGE_BYTES = 4 * 2**20
"""JSON bytes of one timeline page over HTTP; past it, the page stops and pages on."""


def trace_document(
    store: Store,
    trace_id: bytes,
    *,
    detail: bool = True,
    limit: int = DEFAULT_SPAN_LIMIT,
    cursor: int = 0,
    span_ids: set[bytes] | None = None,
) -> dict[str, Any] | None:
    """One page of the trace as a tree of spans, with its log records; None if unknown.

    Spans come depth first, children in start order; a page holds the ``limit`` spans
    after ``cursor`` (a position in that order), fewer if their attributes pass
    ``_MAX_DOCUMENT_BYTES``; ``metadata.cursor_next`` asks for the next page. With
    ``span_ids``, just those spans. A span whose parent is not nested on the page (an
    earlier page, or deeper than ``NEST_LEVELS``) is an entry of ``spans`` marked
    ``continued``; its ``parent_span_id`` says where it hangs. Log records are listed
    on the first page, up to ``limit``.
    """
    tree = trace_tree(store, trace_id)
    if tree is None:
        return None
    limit = max(1, min(limit, MAX_SPAN_LIMIT))
    services: dict[str, dict[str, Any]] = {n.span.service: {} for n in tree.nodes.values()}
    top: list[dict[str, Any]] = []
    placed: dict[int, tuple[dict[str, Any], int]] = {}
    notes: list[str] = []
    used = 0
    cursor_next: str | None = None
    for position, node in enumerate(tree.walk()):
        if span_ids is not None:
            if node.span.span_id not in span_ids:
                continue
        elif position < cursor:
            continue
        if len(placed) == limit or used > _MAX_DOCUMENT_BYTES:
            cursor_next = str(position) if span_ids is None else None
            break
        doc = _span_document(node, services if detail else None)
        if detail:
            used += json_size(doc)
        parent = placed.get(id(node.parent)) if node.parent is not None else None
        if parent is not None and parent[1] + 1 < NEST_LEVELS:
            parent[0]["children"].append(doc)
            placed[id(node)] = (doc, parent[1] + 1)
        else:
            if node.parent is not None:
                doc["continued"] = True
            top.append(doc)
            placed[id(node)] = (doc, 0)
    if any(d.get("continued") for d in top):
        notes.append(
            "spans marked continued have their parent elsewhere (an earlier page, or "
            f"nesting deeper than {NEST_LEVELS} levels): follow parent_span_id"
        )
    for cut in tree.cycles:
        notes.append(
            f"parent cycle of {cut.cycle} span(s) broken at span {cut.span.span_id.hex()} "
            "(shown as an orphan with cycle set)"
        )
    has_spans = bool(tree.nodes)
    start, end = tree.start_ns, tree.end_ns
    records = tree.records if cursor == 0 and span_ids is None else []
    document: dict[str, Any] = {
        "trace_id": trace_id.hex(),
        "span_count": len(tree.nodes),
        "error_count": sum(1 for n in tree.nodes.values() if n.is_error),
        "orphan_count": tree.orphan_count,
        "cycle_count": len(tree.cycles),
        "start_time": iso_time(start) if has_spans else None,
        "start_ns": start,
        "duration_ms": (end - start) / 1e6 if has_spans else 0.0,
        "spans": top,
        "services": services,
        "records": [record_event(r) for r in records[:limit]],
        "metadata": {
            "total_count": len(tree.nodes),
            "count": len(placed),
            "first": cursor if span_ids is None else None,
            "cursor_next": cursor_next,
        },
    }
    if notes:
        document["notes"] = notes
    if cursor_next is not None:
        note_truncated(
            document,
            f"spans {cursor}-{cursor + len(placed) - 1} of {len(tree.nodes)} shown; "
            f"ask with cursor={cursor_next} for the next page (limit up to {MAX_SPAN_LIMIT}, "
            "detail=0 for smaller pages, span_ids=ID,ID for chosen spans)",
        )
    if span_ids is not None and len(placed) < len(span_ids):
        note_truncated(
            document,
            f"{len(placed)} of the {len(span_ids)} span_ids asked for are shown "
            "(the others are not in this trace, or passed the size budget)",
        )
    if len(records) > limit:
        note_truncated(
            document,
            f"{limit} of {len(records)} log records shown; "
            "/buffers/timeline?trace_id=... pages through all",
        )
    return document


def _span_document(node: Node, services: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """One span of a trace document; ``services`` collects resources when detailed."""
    span = node.span
    doc = _span_fields(span)
    doc["depth"] = node.depth
    if node.orphan:
        doc["orphan"] = True
    if node.cycle:
        doc["cycle"] = node.cycle
    if services is not None:
        d = node.detail()
        if not services.get(span.service):
            services[span.service] = cap_depth(d.resource)
        doc["status_message"] = d.status_message
        doc["attributes"] = cap_depth(d.attributes)
        doc["events"] = [
            {"name": e.name, "time": iso_time(e.time_ns), "attributes": cap_depth(e.attributes)}
            for e in d.events
        ]
        if d.links:
            doc["links"] = cap_depth(d.links)
    doc["children"] = []
    return doc


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
    """A span as a timeline event; an error span's says why it failed (its status message,
    or its exception's), the one line of it worth seeing in a list."""
    error = span.status == StatusCode.ERROR
    metadata: dict[str, Any] = {
        "name": span.name,
        "span_kind": _kind_name(span.kind),
        "status": _status_name(span.status),
        "duration_ms": span.duration_ns / 1e6,
    }
    if error and (why := _failure(span.detail())):
        metadata["status_message"] = why
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
        "metadata": metadata,
    }


def _failure(detail: SpanDetail) -> str:
    if detail.status_message:
        return detail.status_message
    for event in detail.events:
        if event.name == "exception":
            return str(event.attributes.get("exception.message", ""))
    return ""


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
        "metadata": cap_depth(record.attributes),
    }


def timeline(
    store: Store,
    f: TimelineFilter,
    *,
    shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    max_bytes: int = MAX_PAGE_BYTES,
) -> ObservePage:
    """The newest ``limit`` matching items before the cursor, oldest first.

    ``cursor_next`` pages further back in time. ``total_count`` is exact unless
    ``total_count_exact`` is false, when the scan stopped early and it is a lower bound.
    Each event goes through ``shape`` (``compact`` for an agent).
    """

    def render(item: StoredSpan | Record) -> dict[str, Any]:
        event = span_event(item) if isinstance(item, StoredSpan) else record_event(item)
        return shape(event) if shape is not None else event

    answer = newest_page(store, f, render, max_bytes)
    answer["events"].reverse()
    return answer


def newest_page(
    store: Store,
    f: TimelineFilter,
    render: Callable[[StoredSpan | Record], dict[str, Any]],
    max_bytes: int,
) -> ObservePage:
    """The newest ``limit`` matches before the cursor, newest first, each ``render``-ed.
    A page stops early when its events pass ``max_bytes`` of JSON, and ``cursor_next``
    goes on from there."""
    found = newest_matches(store, f, f.limit + 1)
    page = found.items[: f.limit]
    more = len(found.items) > f.limit
    events = take_within((render(obj) for _, _, obj in page), max_bytes)
    answer: ObservePage = {"events": events, "metadata": {}}
    if len(events) < len(page):
        note_truncated(
            answer,
            f"{len(events)} of {len(page)} events fit in {max_bytes} bytes; "
            "cursor_next pages on from there",
        )
        page, more = page[: len(events)], True
    cursor_next = f"{page[-1][0]}:{page[-1][1]}" if more and page else None
    answer["metadata"].update(
        {"total_count": found.total, "total_count_exact": found.exact, "cursor_next": cursor_next}
    )
    return answer
