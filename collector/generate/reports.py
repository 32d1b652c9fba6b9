"""Readable artifacts: the PR summary and the timeline report, in Markdown."""

from __future__ import annotations

from typing import Any

from collector.analysis.signals import failure_of
from collector.analysis.timing import LAYERS
from collector.generate.facts import (
    _capped,
    _display,
    _Facts,
    _observed,
    _one_line,
    _Request,
    _root_cause_line,
)
from collector.model import Record

# -- pr_summary ---------------------------------------------------------------------


def _md(text: str) -> str:
    """Inline code that survives backticks in the text; redacted parts of URLs show as
    the environment variables the scripts read them from."""
    text = _one_line(_display(text))
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _pr_summary(facts: _Facts) -> str:
    answer = facts.causality
    cause = answer["root_cause"]
    chain = answer["chain"]
    failing = facts.failing()
    symptom = failing[0] if failing else None
    if cause is None:
        title = f"# Trace {facts.trace_hex[:8]}: no failure"
    elif symptom is not None:
        title = (
            f"# Fix {symptom.method} {symptom.route} returning {_observed(symptom)}:"
            f" {_root_cause_line(facts)}"
        )
    else:
        title = f"# Fix {_root_cause_line(facts)}"
    lines = [_one_line(title, 160), "", "## What failed", ""]
    if symptom is not None:
        lines.append(
            f"{_md(f'{symptom.method} {symptom.url}')} returned **{_observed(symptom)}**"
            f" ({_md(symptom.label)}, {symptom.node.span.duration_ns / 1e6:.1f} ms)."
        )
        others = failing[1:]
        if others:
            lines.append(f"{len(others)} more request(s) failed as well.")
    elif chain:
        first = chain[0]
        status = f" (HTTP {first['http_status']})" if "http_status" in first else ""
        lines.append(f"{_md(first['service'] + ' ' + first['name'])} failed{status}.")
    elif cause is not None:
        lines.append("An error was logged; no request of this trace failed.")
    else:
        lines.append("Nothing failed in this trace.")
    lines += ["", "## Root cause", ""]
    if cause is None:
        lines.append("None found.")
    else:
        lines.append(f"- Service: {_md(cause['service'])}")
        if cause.get("name"):
            lines.append(f"- Span: {_md(cause['name'])} ({cause.get('kind', 'log')})")
        lines.append(f"- Message: {_one_line(cause['message'], 500)}")
        if cause.get("repeated"):
            lines.append(f"- Failed {cause['repeated']} times: retries did not help")
        evidence, more = _capped(list(cause.get("evidence", [])), facts, "evidence items")
        if evidence:
            lines.append("- Evidence:")
        for item in evidence:
            lines.extend(_evidence_lines(item))
        if more:
            lines.append(f"  - ... {more} more")
    lines += ["", "## Chain", ""]
    if chain:
        steps, more = _capped(chain, facts, "chain links")
        for i, link in enumerate(steps, 1):
            status = f", HTTP {link['http_status']}" if "http_status" in link else ""
            role = link["role"].replace("_", " ")
            lines.append(
                f"{i}. {_md(link['service'] + ' ' + link['name'])}"
                f" ({link['kind']}) — {link['duration_ms']:.1f} ms{status}, {role}"
            )
        if more:
            lines.append(f"... {more} more")
    else:
        lines.append("No chain of spans: nothing failed, or only a log line did.")
    breakdown = answer["latency_breakdown"]
    head = [*LAYERS, "total"]
    lines += [
        "",
        "## Latency breakdown",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---:|" * len(head),
        "| " + " | ".join(f"{breakdown[f'{k}_ms']:.1f} ms" for k in head) + " |",
        "",
        "## How to reproduce",
        "",
    ]
    lines.extend(_how_to_reproduce(facts))
    lines += ["", f"Trace id: `{facts.trace_hex}`", ""]
    return "\n".join(lines)


def _evidence_lines(item: dict[str, Any]) -> list[str]:
    kind = item.get("type")
    if kind == "exception":
        lines = [f"  - Exception {_md(str(item.get('exception_type')))}: {item.get('message', '')}"]
        stack = item.get("stacktrace")
        if isinstance(stack, str) and stack:
            lines += ["", "    ```", *(f"    {line}" for line in stack.splitlines()), "    ```"]
        return lines
    if kind == "log":
        return [f"  - Log line ({item.get('level')}): {_md(str(item.get('message', '')))}"]
    if kind == "http_status":
        peer = f" from {_md(str(item['peer']))}" if item.get("peer") else ""
        return [f"  - HTTP {item.get('status_code')}{peer}"]
    if kind == "grpc_status":
        return [f"  - gRPC status {item.get('status_code')}"]
    message = item.get("message") or "error status"
    return [f"  - Status: {_one_line(str(message))}"]


def _how_to_reproduce(facts: _Facts) -> list[str]:
    if not facts.requests and not facts.actions:
        return ["The trace holds no HTTP request or browser action to replay."]
    kind = "playwright" if facts.actions else "curl"
    script = {"playwright": "spec.js", "curl": "sh"}[kind]
    lines = [
        f"Gasoline's `reproduction` generator ({kind}) writes"
        f" `repro_{facts.trace_hex[:8]}.{script}`, which replays:",
        "",
    ]
    steps, more = _capped(facts.steps(), facts, "steps")
    for i, step in enumerate(steps, 1):
        if isinstance(step, _Request):
            lines.append(f"{i}. {_md(f'{step.method} {step.url}')} — observed {_observed(step)}")
        else:
            target = step.selector or step.url or ""
            lines.append(f"{i}. browser {step.action} {_md(target) if target else ''}".rstrip())
    if more:
        lines.append(f"... {more} more")
    if facts.failing():
        lines += ["", "The `test` generator writes a test that fails until this is fixed."]
    return lines


# -- timeline_report ----------------------------------------------------------------


def _timeline_report(facts: _Facts) -> str:
    tree = facts.tree
    items: list[tuple[int, int, str]] = []  # (corrected time, depth, text)
    for node in tree.walk():
        failure = failure_of(node)
        text = f"{node.span.service}  {node.span.name}  ({node.span.duration_ns / 1e6:.1f} ms)" + (
            f"  [ERROR: {_one_line(failure.message)}]" if failure is not None else ""
        )
        items.append((facts.corrected(node), node.depth, text))
        for record in node.records:
            items.append((facts.corrected(record), node.depth + 1, _record_text(record)))
    for record in tree.records:
        if record.span_id is None or record.span_id not in tree.nodes:
            items.append((facts.corrected(record), 0, _record_text(record)))
    items.sort(key=lambda item: item[0])  # stable: parents stay before children at ties
    shown, more = _capped(items, facts, "timeline items")
    if facts.moved:
        facts.note(
            f"clock skew: span times of {', '.join(facts.moved)} were moved to fit inside"
            " their callers (the span tree decides the order, not the raw timestamps)"
        )
    starts = [facts.corrected(n) for n in tree.nodes.values()]
    ends = [facts.corrected(n) + n.span.duration_ns for n in tree.nodes.values()]
    span_ms = (max(ends) - min(starts)) / 1e6 if starts else 0.0
    lines = [
        f"# Timeline of trace {facts.trace_hex}",
        "",
        f"{len(tree.nodes)} span(s) over {span_ms:.1f} ms, {len(tree.records)} record(s)."
        " Times are offsets from the trace start, corrected for clock skew along the span"
        " tree; indentation follows the tree.",
        "",
        "```text",
    ]
    for time_ns, depth, text in shown:
        offset = f"+{(time_ns - facts.start_ns) / 1e6:.1f} ms"
        lines.append(f"{offset:>12}  {'  ' * depth}{text}")
    if more:
        lines.append(f"... {more} more")
    lines += ["```", "", "## Summary", "", facts.causality["summary"], ""]
    return "\n".join(lines)


def _record_text(record: Record) -> str:
    who = record.service or record.source
    action = record.attributes.get("action")
    if record.source == "browser" and isinstance(action, str) and action:
        target = record.attributes.get("selector") or record.attributes.get("url") or ""
        text = f"{who}  action: {action} {target}".rstrip()
    else:
        text = f"{who}  {record.kind}: {_one_line(record.message)}"
    if record.level in ("error", "critical"):
        text += f"  [{record.level.upper()}]"
    return text
