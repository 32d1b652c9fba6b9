"""A trace as the waterfall draws it: flat rows in tree order, nothing else.

The trace document (``collector.query.trace_document``) nests spans and spells every
field out for readers of JSON; a page that draws 5,000 rows needs less: one array per
span, service names and kinds by index, times as integer nanoseconds from the trace's
start. That is a quarter of the bytes and a third of the work, so the rows are on screen
before the heavier answers (causality, attributes) arrive. Attributes and events are
read per span from the trace document (``span_ids``).
"""

from __future__ import annotations

from typing import Any

from collector.bounded import note_truncated
from collector.model import StatusCode
from collector.query import iso_time, record_event
from collector.trace_tree import TraceTree

__all__ = ["MAX_RECORDS", "MAX_ROWS", "ROW_FIELDS", "waterfall_rows"]

MAX_ROWS = 50_000
MAX_RECORDS = 2_000
ROW_FIELDS = (
    "span_id",
    "parent_span_id",
    "service",
    "name",
    "kind",
    "start_offset_ns",
    "duration_ns",
    "error",
    "depth",
    "orphan",
    "cycle",
)
"""What each row holds, in order; ``service`` indexes ``services``, ``kind`` is the
OTLP span kind number, ``error`` is 1 for status ERROR."""


def waterfall_rows(tree: TraceTree) -> dict[str, Any]:
    """Rows depth first, children in start order, with the trace's log records."""
    start = tree.start_ns
    services: dict[str, int] = {}
    rows: list[list[Any]] = []
    for node in tree.walk():
        if len(rows) == MAX_ROWS:
            break
        span = node.span
        rows.append(
            [
                span.span_id.hex(),
                None if span.is_root else span.parent_id.hex(),
                services.setdefault(span.service, len(services)),
                span.name,
                span.kind,
                span.start_ns - start,
                span.duration_ns,
                int(span.status == StatusCode.ERROR),
                node.depth,
                int(node.orphan),
                node.cycle,
            ]
        )
    answer: dict[str, Any] = {
        "trace_id": tree.trace_id.hex(),
        "start_ns": start,
        "start_time": iso_time(start) if tree.nodes else None,
        "duration_ms": (tree.end_ns - start) / 1e6 if tree.nodes else 0.0,
        "span_count": len(tree.nodes),
        "error_count": sum(1 for n in tree.nodes.values() if n.is_error),
        "orphan_count": tree.orphan_count,
        "cycle_count": len(tree.cycles),
        "fields": list(ROW_FIELDS),
        "services": list(services),
        "rows": rows,
        "records": [record_event(r) for r in tree.records[:MAX_RECORDS]],
    }
    if len(rows) < len(tree.nodes):
        note_truncated(answer, f"the first {MAX_ROWS} of {len(tree.nodes)} spans")
    if len(tree.records) > MAX_RECORDS:
        note_truncated(
            answer,
            f"{MAX_RECORDS} of {len(tree.records)} log records; "
            "/buffers/timeline?trace_id=... pages through all",
        )
    return answer
