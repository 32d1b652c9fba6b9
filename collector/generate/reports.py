"""Readable artifacts: the PR summary and the timeline report, in Markdown."""

from __future__ import annotations

from typing import Any

from collector.analysis.causality import CausalityAnswer, judge
from collector.analysis.timing import LAYERS
from collector.generate.facts import (
    Facts,
    Request,
    capped,
    display,
    observed_line,
    one_line,
    root_cause_line,
)
from collector.model import Record

__all__ = ["pr_summary", "timeline_report"]

# -- pr_summary ---------------------------------------------------------------------


def _md(text: str) -> str:
    """Inline code that survives backticks in the text; redacted parts of URLs show as
    the environment variables the scripts read them from."""
    text = one_line(display(text))
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def pr_summary(facts: Facts) -> str:
    answer = facts.causality
    cause = answer["root_cause"]
    chain = answer["chain"]
    handled = answer["handled"]
    failing = facts.failing()
    symptom = failing[0] if failing else None
    if cause is None:
        title = f"# Trace {facts.trace_hex[:8]}: no failure"
        if handled:
            count = _handled_count(answer)
            title += f", {count} handled error{'' if count == 1 else 's'}"
    elif symptom is not None:
        title = (
            f"# Fix {symptom.method} {symptom.route} returning {observed_line(symptom)}:"
            f" {root_cause_line(facts)}"
        )
    else:
        title = f"# Fix {root_cause_line(facts)}"
    lines = [one_line(title, 160), ""]
    if cause is None and symptom is None:
        lines += ["## What happened", "", *_what_happened(facts, answer)]
    else:
        lines += ["## What failed", "", *_what_failed(facts, answer, failing)]
        lines += ["", "## Root cause", "", *_root_cause_lines(facts, cause)]
        lines += ["", "## Chain", "", *_chain_lines(facts, chain)]
    if handled:
        lines += ["", "## Handled errors", "", *_handled_lines(facts, answer)]
    breakdown = answer["latency_breakdown"]
    assert breakdown is not None  # a trace's answer always has one
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


def _handled_count(answer: CausalityAnswer) -> int:
    """Handled errors, one per operation (a retried call counts once)."""
    return int(answer.get("handled_count", len(answer["handled"])))


def _what_happened(facts: Facts, answer: CausalityAnswer) -> list[str]:
    """Nothing failed: what each request answered, and the errors handled on the way."""
    lines: list[str] = []
    requests, more = capped(facts.requests, facts, "requests")
    for request in requests:
        lines.append(
            f"{_md(f'{request.method} {request.url}')} returned **{observed_line(request)}**"
            f" ({_md(request.label)}, {request.node.span.duration_ns / 1e6:.1f} ms)."
        )
    if more:
        lines.append(f"... {more} more requests")
    if not lines:
        lines.append("Nothing failed in this trace.")
    if answer["handled"]:
        count = _handled_count(answer)
        errors = "1 error" if count == 1 else f"{count} errors"
        below = " below it" if len(requests) == 1 else ""
        verb = "was" if count == 1 else "were"
        lines.append(f"{errors}{below} {verb} handled (see Handled errors).")
    return lines


def _what_failed(facts: Facts, answer: CausalityAnswer, failing: list[Request]) -> list[str]:
    cause = answer["root_cause"]
    chain = answer["chain"]
    if failing:
        symptom = failing[0]
        lines = [
            f"{_md(f'{symptom.method} {symptom.url}')} returned **{observed_line(symptom)}**"
            f" ({_md(symptom.label)}, {symptom.node.span.duration_ns / 1e6:.1f} ms)."
        ]
        if failing[1:]:
            lines.append(f"{len(failing) - 1} more request(s) failed as well.")
        return lines
    if chain and cause is not None:  # a chain leads to a cause
        first = chain[0]
        status = f" (HTTP {first['http_status']})" if "http_status" in first else ""
        if first["role"] != "caller":
            return [f"{_md(first['service'] + ' ' + first['name'])} failed{status}."]
        return [
            f"{_md(cause['service'] + ' ' + cause['name'])} failed under"
            f" {_md(first['service'] + ' ' + first['name'])}{status}, which recorded no"
            " error of its own."
        ]
    if cause is not None:
        return ["An error was logged; no request of this trace failed."]
    return ["Nothing failed in this trace."]


def _root_cause_lines(facts: Facts, cause: dict[str, Any] | None) -> list[str]:
    if cause is None:
        return ["None found."]
    lines = [f"- Service: {_md(cause['service'])}"]
    if cause.get("name"):
        lines.append(f"- Span: {_md(cause['name'])} ({cause.get('kind', 'log')})")
    lines.append(f"- Message: {one_line(cause['message'], 500)}")
    if cause.get("repeated"):
        lines.append(f"- Failed {cause['repeated']} times: retries did not help")
    evidence, more = capped(list(cause.get("evidence", [])), facts, "evidence items")
    if evidence:
        lines.append("- Evidence:")
    for item in evidence:
        lines.extend(_evidence_lines(item))
    if more:
        lines.append(f"  - ... {more} more")
    return lines


def _chain_lines(facts: Facts, chain: list[dict[str, Any]]) -> list[str]:
    if not chain:
        return ["No chain of spans: nothing failed, or only a log line did."]
    lines: list[str] = []
    steps, more = capped(chain, facts, "chain links")
    for i, link in enumerate(steps, 1):
        status = f", HTTP {link['http_status']}" if "http_status" in link else ""
        role = link["role"].replace("_", " ")
        lines.append(
            f"{i}. {_md(link['service'] + ' ' + link['name'])}"
            f" ({link['kind']}) — {link['duration_ms']:.1f} ms{status}, {role}"
        )
    if more:
        lines.append(f"... {more} more")
    return lines


def _handled_lines(facts: Facts, answer: CausalityAnswer) -> list[str]:
    """Errors a span above them recovered from: listed apart, never as the cause."""
    lines: list[str] = []
    for item in answer["handled"]:
        by = item["handled_by"]
        code = f" (HTTP {by['http_status']})" if "http_status" in by else ""
        times = f", {item['repeated']} times" if item.get("repeated") else ""
        lines.append(
            f"- {_md(item['service'] + ' ' + item['name'])} ({item['kind']}):"
            f" {one_line(item['message'], 500)} — handled by"
            f" {_md(by['service'] + ' ' + by['name'])}{code}{times}"
        )
        for evidence in item["evidence"]:
            lines.extend(_evidence_lines(evidence))
    shown = len(answer["handled"])
    if answer.get("handled_count", shown) > shown:
        lines.append(f"- ... {answer['handled_count'] - shown} more")
    return lines


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
    return [f"  - Status: {one_line(str(message))}"]


def _how_to_reproduce(facts: Facts) -> list[str]:
    if not facts.requests and not facts.actions:
        return ["The trace holds no HTTP request or browser action to replay."]
    kind = "playwright" if facts.actions else "curl"
    script = {"playwright": "spec.js", "curl": "sh"}[kind]
    lines = [
        f"Gasoline's `reproduction` generator ({kind}) writes"
        f" `repro_{facts.trace_hex[:8]}.{script}`, which replays:",
        "",
    ]
    steps, more = capped(facts.steps(), facts, "steps")
    for i, step in enumerate(steps, 1):
        if isinstance(step, Request):
            lines.append(
                f"{i}. {_md(f'{step.method} {step.url}')} — observed {observed_line(step)}"
            )
        else:
            target = step.selector or step.url or ""
            lines.append(f"{i}. browser {step.action} {_md(target) if target else ''}".rstrip())
    if more:
        lines.append(f"... {more} more")
    if facts.failing():
        lines += ["", "The `test` generator writes a test that fails until this is fixed."]
    return lines


# -- timeline_report ----------------------------------------------------------------


def timeline_report(facts: Facts) -> str:
    tree = facts.tree
    verdict = judge(tree)
    items: list[tuple[int, int, str]] = []  # (corrected time, depth, text)
    for node in tree.walk():
        failure = verdict.failures.get(id(node))
        mark = "HANDLED ERROR" if id(node) in verdict.handled_by else "ERROR"
        text = f"{node.span.service}  {node.span.name}  ({node.span.duration_ns / 1e6:.1f} ms)" + (
            f"  [{mark}: {one_line(failure.message)}]" if failure is not None else ""
        )
        items.append((facts.corrected(node), node.depth, text))
        for record in node.records:
            items.append((facts.corrected(record), node.depth + 1, _record_text(record)))
    for record in tree.records:
        if record.span_id is None or record.span_id not in tree.nodes:
            items.append((facts.corrected(record), 0, _record_text(record)))
    items.sort(key=lambda item: item[0])  # stable: parents stay before children at ties
    shown, more = capped(items, facts, "timeline items")
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
        text = f"{who}  {record.kind}: {one_line(record.message)}"
    if record.level in ("error", "critical"):
        text += f"  [{record.level.upper()}]"
    return text
