"""Terminal views of API answers: a span tree with a waterfall, and the daemon status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["render_status", "render_timeline", "render_trace", "render_traces"]

_RED = "\x1b[31m"
_DIM = "\x1b[2m"
_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"
_MAX_INDENT = 16  # deeper levels keep this indentation and show their depth
_ORIGIN_WIDTH = 14  # the timeline's service/source column


def render_trace(doc: dict[str, Any], *, width: int = 120, color: bool = False) -> str:
    """A tree (indentation by depth, service, name, duration), a bar showing where each
    span sits in the trace's time, errors marked; then the trace's log records."""
    paint = _painter(color)
    start = int(doc.get("start_ns") or 0)
    total_ns = max(1, int(float(doc.get("duration_ms") or 0) * 1e6))
    bar_width = max(10, min(40, width // 4))
    label_width = max(20, width - bar_width - 14)
    lines = [
        paint(_BOLD, f"trace {doc['trace_id']}")
        + f"  {len(doc.get('services', {}))} service(s), {doc['span_count']} span(s), "
        f"{doc['error_count']} error(s), {_ms(doc['duration_ms'])}"
    ]
    if doc.get("orphan_count"):
        lines.append(
            paint(_DIM, f"{doc['orphan_count']} span(s) whose parent has not arrived are marked ~")
        )

    # (span, prefix, last sibling, level in the document); popped in tree order
    stack = [(root, "", True, 0) for root in reversed(doc.get("spans", []))]
    while stack:
        span, prefix, last, level = stack.pop()
        branch = "" if level == 0 else ("└─ " if last else "├─ ")
        error = span["status"] == "ERROR"
        mark = "✗ " if error else ("~ " if span.get("orphan") else "")
        if span.get("continued"):
            mark += f"↳ (under {str(span.get('parent_span_id'))[:8]}) "
        if level >= _MAX_INDENT:
            mark += f"[depth {span.get('depth', level)}] "
        label = f"{prefix}{branch}{mark}{span['service']}  {span['name']}"
        if len(label) > label_width:
            label = label[: label_width - 1] + "…"
        offset = (int(span["start_ns"]) - start) / total_ns
        length = span["duration_ms"] * 1e6 / total_ns
        bar = _bar(offset, length, bar_width)
        line = f"{label:<{label_width}} {_ms(span['duration_ms']):>10} |{bar}|"
        lines.append(paint(_RED, line) if error else line)
        if error and span.get("status_message"):
            lines.append(
                paint(_RED, f"{prefix}{'   ' if level else ''}   {span['status_message']}")
            )
        children = span.get("children", [])
        child_prefix = prefix
        if 0 < level < _MAX_INDENT:
            child_prefix += "   " if last else "│  "
        for i in reversed(range(len(children))):
            stack.append((children[i], child_prefix, i == len(children) - 1, level + 1))
    meta = doc.get("metadata", {})
    if meta.get("cursor_next"):
        lines.append(
            paint(
                _DIM,
                f"{meta.get('count')} of {doc['span_count']} spans shown; "
                f"the next ones: --cursor {meta['cursor_next']}",
            )
        )
    for note in doc.get("notes", []):
        lines.append(paint(_DIM, note))
    records = doc.get("records", [])
    if records:
        lines.append("")
        lines.append(paint(_BOLD, f"{len(records)} log record(s) and event(s)"))
        for r in records:
            when = datetime.fromtimestamp(r["timestamp"] / 1000, UTC).isoformat(
                timespec="milliseconds"
            )
            line = f"{when}  {r['level']:<8} {r['service'] or r['source']}: {r['message']}"
            lines.append(paint(_RED, line) if r["level"] in ("error", "critical") else line)
    return "\n".join(lines)


def render_timeline(answer: dict[str, Any]) -> str:
    """One line per item: time, level, where it came from, message, and its trace."""
    events = answer["events"]
    if not events:
        return "nothing matches"
    lines = []
    for e in events:
        when = datetime.fromtimestamp(e["timestamp"] / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]
        origin = e["service"] or e["source"]
        message = e["message"].removeprefix(f"{e['service']}: ") if e["service"] else e["message"]
        if why := e["metadata"].get("status_message") if e["kind"] == "span" else None:
            message += f" -- {why}"
        trace = f"  [{e['trace_id'][:8]}]" if e.get("trace_id") else ""
        lines.append(f"{when}  {e['level']:<8} {_fit(origin, _ORIGIN_WIDTH)}  {message}{trace}")
    meta = answer["metadata"]
    # An inexact total is where counting stopped, not how many match: say only that more do.
    footer = f"{len(events)} shown"
    if meta.get("total_count_exact", True):
        footer += f" of {meta['total_count']}"
    if meta.get("cursor_next"):
        footer += f"; older ones: --cursor {meta['cursor_next']}"
    return "\n".join([*lines, footer])


def render_traces(traces: list[dict[str, Any]]) -> str:
    if not traces:
        return "no traces stored yet"
    lines = [f"{'TRACE ID':<32}  {'DURATION':>10}  {'SPANS':>5}  {'ERR':>3}  ROOT"]
    for t in traces:
        lines.append(
            f"{t['trace_id']}  {_ms(t['duration_ms']):>10}  {t['span_count']:>5}  "
            f"{t['error_count']:>3}  {t['root_service']}: {t['root']}"
        )
    return "\n".join(lines)


def render_status(status: dict[str, Any]) -> str:
    store = status["store"]
    pipeline = status["pipeline"]
    skew = status["clock_skew"]
    ports = ", ".join(f"{k} {v}" for k, v in status["ports"].items())
    lines = [
        f"gasoline {status['version']}  pid {status['pid']}  up {status['uptime_s']} s",
        f"ports:     {ports}",
        f"config:    {status['config']}",
        f"stored:    {_plural(store['spans'], 'span')} in {_plural(store['traces'], 'trace')}, "
        f"{_plural(store['records'], 'record')}",
        f"queue:     {pipeline['queue']['depth']} of {pipeline['queue']['capacity']}",
        *_accounting(status["accounting"]),
        f"memory:    {status['memory']['rss_bytes'] / 2**20:.1f} MiB RSS; the store keeps "
        f"{store['bytes']['used'] / 2**20:.1f} of {store['bytes']['budget'] / 2**20:.0f} MiB",
        f"clock skew: {skew['status']} ({skew['samples_collected']} samples, "
        f"median {skew['median_skew_ms']} ms)",
    ]
    lines += _history(store.get("history"))
    if points := pipeline["accepted"].get("metric_points"):
        lines.append(f"metrics:   {points} data points accepted (counted, not stored)")
    for name, receiver in status["receivers"].items():
        counts = _counts(receiver["counts"]) if receiver["counts"] else "nothing received yet"
        lines.append(f"receiver {name}: {receiver['status']}  {counts}")
    return "\n".join(lines)


def _history(doc: dict[str, Any] | None) -> list[str]:
    """Retention: tiers, disk use, oldest record, evictions; absent keys read as none."""
    if not doc:
        return []
    if doc.get("state") != "ok":
        return [f"history:   {doc.get('state', 'unknown')}"]
    tiers = doc["tiers"]
    disk = tiers["disk"]
    oldest = doc.get("oldest_record_ns")
    per = disk.get("bytes_per_record")
    lines = [
        f"history:   {doc['dir']}  {doc['disk_bytes'] / 2**20:.1f} MiB on disk of "
        f"{doc['limits']['max_bytes'] / 2**20:.0f} MiB, kept up to "
        f"{doc['limits']['max_age_s'] / 3600:g} h; oldest record "
        f"{_iso(oldest) if oldest else 'none'}",
        f"  tiers:   memory {_plural(tiers['memory']['records'], 'record')}; disk "
        f"{_plural(disk['records'], 'record')} in {_plural(disk['blocks'], 'block')} "
        f"({disk['bytes'] / 2**20:.1f} MiB, {per if per is not None else '-'} B/record), "
        f"{disk['pending']} pending",
        f"  evicted: {_counts(doc['evicted'])}; corrupt blocks skipped "
        f"{doc['corrupt_blocks']}; write errors {doc['write_errors']}",
    ]
    if doc.get("error"):
        lines.append(f"  error:   {doc['error']}")
    return lines + _span_history(doc.get("spans"))


def _span_history(doc: dict[str, Any] | None) -> list[str]:
    """The span tier's line (its blocks, share of the bytes, evictions); absent, none."""
    if not doc:
        return []
    if doc.get("state") != "ok":
        return [f"  spans:   {doc.get('state', 'unknown')}"]
    per = doc.get("bytes_per_span")
    lines = [
        f"  spans:   {_plural(doc['spans'], 'span')} in {_plural(doc['blocks'], 'block')} "
        f"({doc['bytes'] / 2**20:.1f} MiB of {doc['max_bytes'] / 2**20:.0f} MiB, "
        f"{per if per is not None else '-'} B/span), {doc['pending']} pending, "
        f"{doc['restored_spans']} restored; evicted: {_counts(doc['evicted'])}; corrupt "
        f"blocks skipped {doc['corrupt_blocks']}; write errors {doc['write_errors']}"
    ]
    if doc.get("error"):
        lines.append(f"  error:   {doc['error']}")
    return lines


def _iso(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, UTC).isoformat(timespec="seconds")


def _accounting(doc: dict[str, Any]) -> list[str]:
    """One line per kind, each a sum that holds: where everything accepted went."""
    spans, records, lines = doc["spans"], doc["records"], doc["lines"]
    made = records["from_lines"]

    def restored(kind: dict[str, Any]) -> str:
        return f" + {kind['restored']} restored" if kind.get("restored") else ""

    return [
        f"spans:     {spans['accepted']} accepted{restored(spans)} = {spans['stored']} stored + "
        f"{spans['queued']} queued + {_why(spans['dropped'], 'dropped')} + "
        f"{_why(spans['evicted'], 'evicted')}",
        f"records:   {records['accepted']} accepted + {made} made from lines{restored(records)} = "
        f"{records['stored']} stored + {records['queued']} queued + "
        f"{_why(records['dropped'], 'dropped')} + {_why(records['evicted'], 'evicted')}",
        f"lines:     {lines['accepted']} accepted = {lines['parsed']} parsed + "
        f"{lines['queued']} queued + {_why(lines['dropped'], 'dropped')}; "
        f"parsed into {_plural(made, 'record')} (multi-line ones grouped)",
        f"refused:   {_nested(doc['refused'])} (never accepted; the senders were told)"
        if any(doc["refused"].values())
        else "refused:   none",
    ]


def _why(reasons: dict[str, int], what: str) -> str:
    """``N what``, and by reason when there are any: ``3 dropped (queue_full 3)``."""
    total = sum(reasons.values())
    return f"{total} {what} ({_counts(reasons)})" if total else f"0 {what}"


def _fit(text: str, width: int) -> str:
    """``text`` in exactly ``width`` columns: padded, or cut with an ellipsis."""
    return f"{text:<{width}}" if len(text) <= width else text[: width - 1] + "…"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"


def _nested(groups: dict[str, dict[str, int]]) -> str:
    parts = [f"{group} {_counts(c)}" for group, c in groups.items() if c]
    return "; ".join(parts) or "none"


def _bar(offset: float, length: float, width: int) -> str:
    begin = min(width - 1, max(0, int(offset * width)))
    cells = max(1, round(length * width))
    cells = min(cells, width - begin)
    return " " * begin + "█" * cells + " " * (width - begin - cells)


def _ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    return f"{value:.1f} ms" if value >= 1 else f"{value * 1000:.0f} µs"


def _painter(color: bool) -> Any:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if color else text

    return paint
