"""Queries over the stores: trace trees, the merged timeline, trace summaries.

Answers are plain JSON-ready dicts; the HTTP API, the CLI and MCP share them. Every
timeline item has the one Event shape (``id, timestamp, source, level, message, ...``)
whether it came from a span, a log record or a native event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from collector.analysis.signals import http_method, http_status, http_url
from collector.model import LEVELS, Record, SpanKind, StatusCode, parse_hex_id
from collector.store import Store, StoredSpan
from collector.trace_tree import Node, TraceTree, build_tree

__all__ = [
    "FILTER_KEYS",
    "LEVEL_RANK",
    "NoiseRule",
    "TimelineFilter",
    "build_filter",
    "candidates",
    "parse_status_range",
    "parse_time_ns",
    "recent_trees",
    "record_event",
    "span_event",
    "timeline",
    "trace_document",
    "trace_summaries",
    "trace_tree",
]

LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}


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
class NoiseRule:
    """Hides matching items from answers (never from the store). Unset fields match all."""

    id: str
    pattern: re.Pattern[str] | None = None
    source: str | None = None
    service: str | None = None
    level: str | None = None

    def hides(self, source: str, service: str, level: str, message: str) -> bool:
        return (
            (self.source is None or self.source == source)
            and (self.service is None or self.service == service)
            and (self.level is None or self.level == level)
            and (self.pattern is None or self.pattern.search(message) is not None)
        )


@dataclass(slots=True)
class TimelineFilter:
    """Which items an answer covers. ``level`` is a minimum; ``text`` a case-insensitive
    substring of the message; ``url`` a substring; ``status`` an inclusive range of
    HTTP codes; every tag in ``tags`` must be present; ``kinds`` limits to span, log
    or event items."""

    trace_id: bytes | None = None
    correlation_id: str | None = None
    source: str | None = None
    service: str | None = None
    level: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    text: str | None = None
    url: str | None = None
    method: str | None = None
    status: tuple[int, int] | None = None
    tags: tuple[str, ...] = ()
    kinds: frozenset[str] | None = None
    noise: Sequence[NoiseRule] = ()
    record_match: Callable[[Record], bool] | None = None
    limit: int = 100
    cursor: tuple[int, str] | None = None

    def _common(self, time_ns: int, level: str, source: str, service: str, message: str) -> bool:
        return (
            (self.since_ns is None or time_ns >= self.since_ns)
            and (self.until_ns is None or time_ns <= self.until_ns)
            and (self.source is None or source == self.source)
            and (self.service is None or service == self.service)
            and (self.level is None or LEVEL_RANK.get(level, 1) >= LEVEL_RANK[self.level])
            and (self.text is None or self.text.lower() in message.lower())
            and not any(rule.hides(source, service, level, message) for rule in self.noise)
        )

    def _http(self, attributes: dict[str, Any]) -> bool:
        if self.url is not None and self.url not in (http_url(attributes) or ""):
            return False
        if self.method is not None and http_method(attributes) != self.method.upper():
            return False
        if self.status is not None:
            code = http_status(attributes)
            return code is not None and self.status[0] <= code <= self.status[1]
        return True

    @property
    def needs_http(self) -> bool:
        return self.url is not None or self.method is not None or self.status is not None

    def may_match_spans(self) -> bool:
        """Spans have source ``otlp`` and no tags."""
        return (
            (self.kinds is None or "span" in self.kinds)
            and not self.tags
            and self.source in (None, "otlp")
            and self.record_match is None
        )

    def may_match_records(self) -> bool:
        return self.kinds is None or bool(self.kinds - {"span"})

    def keeps_span(self, span: StoredSpan) -> bool:
        if self.kinds is not None and "span" not in self.kinds:
            return False
        if self.tags:  # spans carry no tags
            return False
        level = "error" if span.status == StatusCode.ERROR else "info"
        if not self._common(span.start_ns, level, "otlp", span.service, span.name):
            return False
        return not self.needs_http or self._http(span.detail().attributes)

    def keeps_record(self, record: Record) -> bool:
        if self.kinds is not None and record.kind not in self.kinds:
            return False
        if self.record_match is not None and not self.record_match(record):
            return False
        if self.tags and not set(self.tags) <= set(record.tags):
            return False
        if not self._common(
            record.time_ns, record.level, record.source, record.service, record.message
        ):
            return False
        return not self.needs_http or self._http(record.attributes)


def parse_status_range(text: str) -> tuple[int, int]:
    """``500``, ``5xx`` or ``400-599`` to an inclusive range; ValueError otherwise."""
    text = text.strip().lower()
    if len(text) == 3 and text.endswith("xx") and text[0].isdigit():
        return int(text[0]) * 100, int(text[0]) * 100 + 99
    low, sep, high = text.partition("-")
    if sep:
        return int(low), int(high)
    return int(text), int(text)


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
    from collector.scan import newest_matches

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


def candidates(store: Store, f: TimelineFilter) -> tuple[Iterable[StoredSpan], Iterable[Record]]:
    """The items worth filtering: one trace's, one correlation's, or everything."""
    if f.trace_id is not None:
        spans: Iterable[StoredSpan] = store.spans.trace(f.trace_id)
        records: Iterable[Record] = store.records.by_trace(f.trace_id)
    elif f.correlation_id is not None:
        correlated = store.records.by_correlation(f.correlation_id)
        trace_ids = {r.trace_id for r in correlated if r.trace_id is not None}
        spans = [s for t in trace_ids for s in store.spans.trace(t)]
        linked = [r for t in trace_ids for r in store.records.by_trace(t)]
        records = list({id(r): r for r in [*correlated, *linked]}.values())
    else:
        spans, records = store.spans.iter_newest_first(), store.records.iter_newest_first()
    if f.kinds is not None and "span" not in f.kinds:
        spans = ()
    return spans, records


_MAX_LIMIT = 1000
FILTER_KEYS = (
    "trace_id",
    "correlation_id",
    "source",
    "service",
    "level",
    "url",
    "method",
    "status",
    "tags",
    "since",
    "until",
    "text",
)


def build_filter(
    params: Mapping[str, Any],
    *,
    limit: Any = None,
    cursor: Any = None,
    default_limit: int = 100,
    noise: Sequence[NoiseRule] = (),
) -> TimelineFilter:
    """A filter from query parameters (strings) or tool arguments (JSON values).

    Raises ValueError naming the key, e.g. ``level: 'loud' must be one of debug, ...``.
    """
    unknown = sorted(set(params) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter {unknown[0]!r} (allowed: {', '.join(FILTER_KEYS)})")

    def text(key: str) -> str | None:
        value = params.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str | int):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return str(value)

    trace_id = None
    if (raw := text("trace_id")) is not None:
        trace_id = parse_hex_id(raw.strip().lower(), 16)
        if trace_id is None:
            raise ValueError(f"trace_id: {raw!r} is not a trace id (32 hex digits, not all zero)")
    level = text("level")
    if level is not None and level not in LEVELS:
        raise ValueError(f"level: {level!r} must be one of {', '.join(LEVELS)}")
    status = None
    if (raw := text("status")) is not None:
        try:
            status = parse_status_range(raw)
        except ValueError:
            raise ValueError(
                f"status: {raw!r} is not an HTTP status (500, 5xx or 400-599)"
            ) from None
    tags = params.get("tags") or ()
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"tags: expected a list of strings, got {tags!r}")
    limit_value = default_limit if limit is None or limit == "" else limit
    try:
        limit_int = int(limit_value)
    except (TypeError, ValueError):
        limit_int = 0
    if not 1 <= limit_int <= _MAX_LIMIT:
        raise ValueError(f"limit: {limit_value!r} must be an integer from 1 to {_MAX_LIMIT}")
    parsed_cursor = None
    if cursor:
        try:
            parsed_cursor = parse_cursor(str(cursor))
        except ValueError as exc:
            raise ValueError(f"cursor: {exc}") from None
    return TimelineFilter(
        trace_id=trace_id,
        correlation_id=text("correlation_id"),
        source=text("source"),
        service=text("service"),
        level=level,
        since_ns=parse_time_ns("since", params.get("since")),
        until_ns=parse_time_ns("until", params.get("until")),
        text=text("text"),
        url=text("url"),
        method=text("method"),
        status=status,
        tags=tuple(tags),
        noise=noise,
        limit=limit_int,
        cursor=parsed_cursor,
    )


def parse_time_ns(name: str, value: Any) -> int | None:
    """Milliseconds since the epoch (number or numeric string), or an ISO 8601 time."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            return int(float(value) * 1_000_000)
        except ValueError:
            pass
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
        except ValueError:
            pass
    raise ValueError(f"{name}: {value!r} is not a time (milliseconds since the epoch or ISO 8601)")


def parse_cursor(text: str) -> tuple[int, str]:
    """Inverse of ``cursor_next``; ValueError if malformed."""
    time_part, _, key = text.partition(":")
    if not key:
        raise ValueError(f"{text!r} is not a cursor")
    return int(time_part), key
