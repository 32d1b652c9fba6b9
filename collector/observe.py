"""The ``observe`` views: what happened, shaped for an agent's context window.

Each view answers ``{<items>: [...], "metadata": {"total_count", "cursor_next"}}`` (an
``ObservePage``) and
is bounded: summaries first (a trace's topology and timings, repeated sibling calls
folded into one line), full detail only for what is asked for by id.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from collector.analysis.changes import tests_view
from collector.analysis.signals import failure_of, http_method, http_status, http_url
from collector.analysis.timing import clock_shifts
from collector.bounded import MAX_ANSWER_BYTES, Metadata, compact
from collector.filters import LEVEL_RANK, TimelineFilter
from collector.model import Record, SpanKind
from collector.query import (
    ObservePage,
    iso_time,
    newest_page,
    recent_trees,
    record_event,
    timeline,
    trace_summaries,
    trace_tree,
)
from collector.store import Store, StoredSpan
from collector.trace_tree import Node, TraceTree

__all__ = ["VIEWS", "ObservePage", "View", "ViewError", "observe"]

_FOLD_AT = 4  # this many same-named sibling calls in a row fold into one line
_MAX_TREE_LINES = 50
_SERVICE_TRACES = 1000  # services and their call edges are derived from the newest traces
_PAGE_BYTES = MAX_ANSWER_BYTES - 4096  # a page of events leaves room for the rest


class View(StrEnum):
    """The views ``observe`` offers; the MCP schema's ``what`` is generated from this."""

    TIMELINE = "timeline"
    LOGS = "logs"
    TRACES = "traces"
    TRACE = "trace"
    ERRORS = "errors"
    NETWORK_WATERFALL = "network_waterfall"
    ACTIONS = "actions"
    WEBSOCKET_EVENTS = "websocket_events"
    SERVICES = "services"
    TESTS = "tests"
    CHANGES = "changes"
    REPORTS = "reports"


class ViewError(ValueError):
    """The request cannot be answered as asked; the message says what to change."""


def _events_view(kinds: frozenset[str] | None) -> Callable[..., ObservePage]:
    def view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
        if kinds is not None:
            f.kinds = kinds
        return timeline(store, f, shape=compact, max_bytes=_PAGE_BYTES)

    return view


def _traces_view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
    offset = int(f.cursor[1]) if f.cursor else 0
    wanted = offset + f.limit + 1
    matched: list[dict[str, Any]] = []
    for summary in trace_summaries(store, limit=max(wanted * 4, 200)):
        if f.service is not None and f.service not in summary["services"]:
            continue
        if f.level in ("error", "critical") and not summary["error_count"]:
            continue
        if f.text is not None and f.text.lower() not in summary["root"].lower():
            continue
        matched.append(summary)
    page = matched[offset : offset + f.limit]
    more = len(matched) > offset + f.limit
    return {
        "traces": page,
        "metadata": {
            "total_count": len(matched),
            "cursor_next": f"0:{offset + f.limit}" if more else None,
        },
    }


def _trace_view(
    store: Store, f: TimelineFilter, *, span_ids: list[str] | None = None, **_: Any
) -> ObservePage:
    if f.trace_id is None:
        raise ViewError(
            "observe trace needs filter.trace_id (32 hex digits, or a unique prefix of 8 or more); "
            "find one with what='traces' or what='errors'"
        )
    tree = trace_tree(store, f.trace_id)
    if tree is None:
        raise ViewError(
            f"trace {f.trace_id.hex()} is not in the store (never received, or evicted)"
        )
    wanted = set(span_ids or ())
    clock = _Clock(tree)
    first = int(f.cursor[1]) if f.cursor else 0
    lines, line_count = _tree_lines(tree, wanted, clock, first, _MAX_TREE_LINES)
    more = first + len(lines) < line_count
    metadata: Metadata = {
        "total_count": len(tree.nodes),
        "cursor_next": f"0:{first + len(lines)}" if more else None,
    }
    if more or first:
        metadata["truncated"] = (
            f"showing lines {first}-{first + len(lines) - 1} of {line_count}"
            + ("; after_cursor=cursor_next shows the next lines" if more else "")
        )
    if tree.cycles:
        metadata["cycles"] = [
            f"parent cycle of {n.cycle} span(s) broken at span {n.span.span_id.hex()} "
            "(its line has cycle set)"
            for n in tree.cycles[:5]
        ]
    records = [
        compact(
            {
                "offset_ms": clock.offset(r.time_ns, service=r.service),
                "level": r.level,
                "service": r.service,
                "span_id": r.span_id.hex() if r.span_id else None,
                "message": r.message,
                "id": str(r.id),
            }
        )
        for r in tree.records[: f.limit]
    ]
    summary = {
        "trace_id": tree.trace_id.hex(),
        "start_time": iso_time(tree.start_ns) if tree.nodes else None,
        "duration_ms": round((tree.end_ns - tree.start_ns) / 1e6, 3),
        "span_count": len(tree.nodes),
        "error_count": sum(1 for n in tree.nodes.values() if n.is_error),
        "orphan_count": tree.orphan_count,
        "cycle_count": len(tree.cycles),
        "services": sorted({n.span.service for n in tree.nodes.values()}),
    }
    return {
        "trace": {**summary, "spans": lines, "records": records},
        "metadata": metadata,
    }


class _Clock:
    """Offsets from the trace's start on the root's clock: a service whose clock is skewed
    is moved to sit inside its caller (``collector.analysis.timing.clock_shifts``)."""

    def __init__(self, tree: TraceTree) -> None:
        self.shifts, self._by_service, _ = clock_shifts(tree)
        self.origin = min(
            (n.span.start_ns + self.shifts.get(id(n), 0) for n in tree.nodes.values()),
            default=tree.start_ns,
        )

    def offset(self, time_ns: int, *, shift: int = 0, service: str | None = None) -> float:
        if service is not None:
            shift = self._by_service.get(service, 0)
        return round((time_ns + shift - self.origin) / 1e6, 3)


def _tree_lines(
    tree: TraceTree, detail_for: set[str], clock: _Clock, first: int, count: int
) -> tuple[list[dict[str, Any]], int]:
    """Lines ``first`` to ``first + count`` of the tree, one per span or per folded run
    of same-named siblings, and how many lines the tree has. Only the lines returned are
    built; a line moved onto the root's clock says by how much. Walks with a stack.
    """
    lines: list[dict[str, Any]] = []
    total = 0

    def line(node: Node, depth: int) -> dict[str, Any]:
        span = node.span
        shift = clock.shifts.get(id(node), 0)
        item: dict[str, Any] = {
            "depth": depth,
            "span_id": span.span_id.hex(),
            "service": span.service,
            "name": span.name,
            "kind": _kind(span),
            "offset_ms": clock.offset(span.start_ns, shift=shift),
            "duration_ms": round(span.duration_ns / 1e6, 3),
        }
        if shift:
            item["clock_adjusted_ms"] = round(shift / 1e6, 3)
        if node.orphan:
            item["orphan"] = True
        if node.cycle:
            item["cycle"] = node.cycle
        failure = failure_of(node) if node.is_error or node.records else None
        if node.is_error:
            item["status"] = "ERROR"
        if failure is not None:
            item["error"] = failure.message
        code = http_status(node.detail().attributes) if span.kind in (2, 3) else None
        if code is not None:
            item["http_status"] = code
        if span.span_id.hex() in detail_for:
            d = node.detail()
            item["attributes"] = d.attributes
            item["events"] = [
                {
                    "name": e.name,
                    "offset_ms": clock.offset(e.time_ns, shift=shift),
                    "attributes": e.attributes,
                }
                for e in d.events
            ]
            item["resource"] = d.resource
        compacted: dict[str, Any] = compact(item)
        return compacted

    def folded(group: list[Node], depth: int) -> dict[str, Any]:
        durations = [n.span.duration_ns / 1e6 for n in group]
        return {
            "depth": depth,
            "repeated": len(group),
            "service": group[0].span.service,
            "name": group[0].span.name,
            "kind": _kind(group[0].span),
            "offset_ms": clock.offset(
                group[0].span.start_ns, shift=clock.shifts.get(id(group[0]), 0)
            ),
            "total_ms": round(sum(durations), 3),
            "avg_ms": round(sum(durations) / len(group), 3),
            "span_ids": [n.span.span_id.hex() for n in group[:3]],
        }

    def wanted() -> bool:
        return first <= total < first + count

    # (siblings, next index, end of an unfolded run being listed or -1, depth)
    stack: list[tuple[list[Node], int, int, int]] = [(tree.roots, 0, -1, 0)]
    while stack:
        nodes, i, end, depth = stack.pop()
        if i >= len(nodes):
            continue
        if end < 0:
            run = 1
            while i + run < len(nodes) and (
                nodes[i + run].span.service,
                nodes[i + run].span.name,
            ) == (nodes[i].span.service, nodes[i].span.name):
                run += 1
            group = nodes[i : i + run]
            if (
                run >= _FOLD_AT
                and not any(n.is_error or n.children for n in group)
                and not any(n.span.span_id.hex() in detail_for for n in group)
            ):
                if wanted():
                    lines.append(folded(group, depth))
                total += 1
                stack.append((nodes, i + run, -1, depth))
                continue
            end = i + run
        node = nodes[i]
        if wanted():
            lines.append(line(node, depth))
        total += 1
        stack.append((nodes, i + 1, end if i + 1 < end else -1, depth))
        stack.append((node.children, 0, -1, depth + 1))
    return lines, total


def _errors_view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
    """Error spans (with their exception), error logs and events, newest first."""
    if f.level is None or LEVEL_RANK[f.level] < LEVEL_RANK["error"]:
        f.level = "error"
    return _page(store, f, _error_item)


def _error_item(item: StoredSpan | Record) -> dict[str, Any]:
    if isinstance(item, Record):
        return _record_item(item)
    detail = item.detail()
    exception = next((e.attributes for e in detail.events if e.name == "exception"), None)
    return {
        "kind": "span",
        "timestamp": item.start_ns // 1_000_000,
        "service": item.service,
        "name": item.name,
        "message": detail.status_message or None,
        "exception": (
            {"type": exception.get("exception.type"), "message": exception.get("exception.message")}
            if exception
            else None
        ),
        "trace_id": item.trace_id.hex(),
        "span_id": item.span_id.hex(),
    }


def _record_item(record: Record) -> dict[str, Any]:
    event = record_event(record)
    return {k: event[k] for k in _RECORD_FIELDS}


_RECORD_FIELDS = (
    "id",
    "kind",
    "timestamp",
    "source",
    "level",
    "service",
    "message",
    "trace_id",
    "span_id",
    "tags",
    "metadata",
)


def _page(
    store: Store, f: TimelineFilter, render: Callable[[StoredSpan | Record], dict[str, Any]]
) -> ObservePage:
    """A page of matches, newest first, each rendered and compacted, within ``_PAGE_BYTES``."""
    return newest_page(store, f, lambda item: compact(render(item)), _PAGE_BYTES)


def _waterfall_view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
    """HTTP calls in start order: browser fetches and backend client calls, with the
    server span that answered each one (its share is the server, the rest the network)."""
    trees = (
        [t]
        if f.trace_id is not None and (t := trace_tree(store, f.trace_id)) is not None
        else recent_trees(store, limit=20)
    )
    rows: list[dict[str, Any]] = []
    for tree in trees:
        origin = tree.start_ns
        for node in tree.nodes.values():
            if node.kind != SpanKind.CLIENT or not f.keeps_span(node.span):
                continue
            attributes = node.detail().attributes
            url = http_url(attributes)
            if url is None:
                continue
            server = next((c for c in node.children if c.kind == SpanKind.SERVER), None)
            rows.append(
                compact(
                    {
                        "trace_id": tree.trace_id.hex(),
                        "span_id": node.span.span_id.hex(),
                        "service": node.span.service,
                        "method": http_method(attributes),
                        "url": url,
                        "status": http_status(attributes),
                        "start_offset_ms": round((node.span.start_ns - origin) / 1e6, 3),
                        "duration_ms": round(node.span.duration_ns / 1e6, 3),
                        "server": (
                            {
                                "service": server.span.service,
                                "name": server.span.name,
                                "duration_ms": round(server.span.duration_ns / 1e6, 3),
                            }
                            if server
                            else None
                        ),
                        "error": node.is_error or None,
                    }
                )
            )
    # Requests the browser reported as events; one whose CLIENT span is listed already is
    # that span's event (the extension reports failed requests both ways), and events that
    # carry a URL but no method (actions, navigations, page timings) are not requests.
    listed = {row["span_id"] for row in rows}
    for chunk in store.records.chunks_newest_first():
        # whole chunks (on disk, whole blocks) are passed over on their summaries
        if f.since_ns is not None and chunk.prefix_max_ns < f.since_ns:
            break
        if "browser" not in chunk.sources or (f.until_ns is not None and chunk.min_ns > f.until_ns):
            continue
        rows += _browser_rows(chunk.of_source("browser"), f, listed)
    total = len(rows)
    return {"requests": rows[: f.limit], "metadata": {"total_count": total, "cursor_next": None}}


def _browser_rows(
    records: list[Record], f: TimelineFilter, listed: set[str]
) -> list[dict[str, Any]]:
    rows = []
    for record in reversed(records):
        if (
            record.source == "browser"
            and http_url(record.attributes)
            and http_method(record.attributes) is not None
            and (record.span_id is None or record.span_id.hex() not in listed)
            and f.keeps_record(record)
        ):
            rows.append(
                compact(
                    {
                        "timestamp": record.time_ns // 1_000_000,
                        "source": "browser",
                        "method": http_method(record.attributes),
                        "url": http_url(record.attributes),
                        "status": http_status(record.attributes),
                        "duration_ms": record.attributes.get("duration_ms"),
                        "trace_id": record.trace_id.hex() if record.trace_id else None,
                    }
                )
            )
    return rows


def _records_view(match: Callable[[Record], bool]) -> Callable[..., ObservePage]:
    def view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
        f.kinds = frozenset({"log", "event"})
        f.record_match = match
        return _page(store, f, _as_record_item)

    return view


def _as_record_item(item: StoredSpan | Record) -> dict[str, Any]:
    assert isinstance(item, Record)
    return _record_item(item)


def _is_action(record: Record) -> bool:
    return record.source == "browser" and (
        "action" in record.attributes or record.kind == "action" or "action" in record.tags
    )


def _is_websocket(record: Record) -> bool:
    return record.source == "websocket" or record.attributes.get("type") == "websocket"


def _services_view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
    """Services seen in the newest traces, and who calls whom (CLIENT/parent -> child
    across services), with counts, errors and server latency."""
    spans: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    edges: dict[tuple[str, str], list[float]] = defaultdict(list)
    edge_errors: dict[tuple[str, str], int] = defaultdict(int)
    for tree in recent_trees(store, limit=_SERVICE_TRACES, with_records=False):
        for node in tree.nodes.values():
            service = node.span.service
            counts[service][0] += 1
            counts[service][1] += node.is_error
            if node.kind == SpanKind.SERVER:
                spans[service].append(node.span.duration_ns / 1e6)
            parent = node.parent
            if parent is not None and parent.span.service != service:
                edge = (parent.span.service, service)
                edges[edge].append(node.span.duration_ns / 1e6)
                edge_errors[edge] += node.is_error
    services = [
        compact(
            {
                "service": name,
                "spans": n,
                "errors": errors,
                "server_p50_ms": _pct(spans[name], 0.5),
                "server_p99_ms": _pct(spans[name], 0.99),
            }
        )
        for name, (n, errors) in sorted(counts.items())
        if f.service is None or f.service == name
    ]
    edge_list = [
        {"from": a, "to": b, "calls": len(d), "errors": edge_errors[(a, b)], "p50_ms": _pct(d, 0.5)}
        for (a, b), d in sorted(edges.items())
        if f.service is None or f.service in (a, b)
    ]
    return {
        "services": services,
        "edges": edge_list,
        "metadata": {"total_count": len(services), "cursor_next": None},
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if q == 0.5:
        return round(statistics.median(values), 3)
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _kind(span: StoredSpan) -> str:
    try:
        return SpanKind(span.kind).name
    except ValueError:
        return "UNSPECIFIED"


def _no_reports(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
    """Reports are TracePulse's (``collector.pulse``): the daemon's toolbox answers them."""
    raise ViewError("what: reports are kept by the daemon's TracePulse; ask the daemon")


VIEWS: dict[View, Callable[..., ObservePage]] = {
    View.TIMELINE: _events_view(None),
    View.LOGS: _events_view(frozenset({"log", "event"})),
    View.TRACES: _traces_view,
    View.TRACE: _trace_view,
    View.ERRORS: _errors_view,
    View.NETWORK_WATERFALL: _waterfall_view,
    View.ACTIONS: _records_view(_is_action),
    View.WEBSOCKET_EVENTS: _records_view(_is_websocket),
    View.SERVICES: _services_view,
    View.TESTS: tests_view,
    View.CHANGES: _records_view(lambda record: record.source == "git"),
    View.REPORTS: _no_reports,
}


def observe(
    store: Store, what: str, f: TimelineFilter, *, span_ids: list[str] | None = None
) -> ObservePage:
    if what not in VIEWS:
        raise ViewError(f"what: {what!r} is not a view (one of: {', '.join(VIEWS)})")
    return VIEWS[View(what)](store, f, span_ids=span_ids)
