"""Root cause of a failed trace: the deepest failure that the others only propagate.

The tree decides, not the timestamps, so skewed clocks between services do not
mislead it. A span fails through its status, exception events, HTTP/gRPC codes, or
error logs attached to it; among failing spans with no failing descendant, the one
with the strongest evidence wins (an exception or error log over a bare status),
then the deepest, then the earliest of a run of retries.

A failure below a span that answered successfully (``answered_ok``: a 2xx/3xx, status
OK, a SERVER span without error status) was handled there, by a fallback or a retry
that worked: it is listed under ``handled`` with the span that handled it, and is
never the root cause nor a reason to call the trace failed.

The answer is bounded whatever the trace: the chain keeps the spans nearest the symptom
and nearest the cause (``chain_spans`` counts them all), evidence is cut to
``_MAX_EVIDENCE`` items, and ``collector.bounded.fit`` caps the whole answer's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.analysis.signals import Failure, answered_ok, failure_of, http_status
from collector.analysis.timing import latency_breakdown, self_time_ns, short_critical_path
from collector.bounded import note_truncated
from collector.model import Record
from collector.trace_tree import Node, TraceTree

__all__ = ["Verdict", "analyze_causality", "judge"]

_MAX_OTHER_FAILURES = 5
_MAX_HANDLED = 5
_CHAIN_ENDS = 10  # chain links kept at each end of a longer chain
_MAX_EVIDENCE = 10
_MAX_HANDLED_EVIDENCE = 3


@dataclass(slots=True)
class Verdict:
    """Every failing span of a trace (by ``id(node)``), and for those below a span that
    answered successfully, that span: the failure was handled there."""

    failures: dict[int, Failure]
    handled_by: dict[int, Node]


def judge(tree: TraceTree) -> Verdict:
    """Which spans failed, and which of those failures a span above them handled."""
    failures: dict[int, Failure] = {}
    handled_by: dict[int, Node] = {}
    handler: dict[int, Node | None] = {}  # the nearest span at or above that answered well
    for node in tree.walk():  # parents before children
        parent = node.parent
        above = handler[id(parent)] if parent is not None else None
        failure = failure_of(node)
        if failure is not None:
            failures[id(node)] = failure
            if above is not None:
                handled_by[id(node)] = above
            handler[id(node)] = above
        else:
            caller_failed = parent is not None and id(parent) in failures
            handler[id(node)] = node if answered_ok(node, caller_failed=caller_failed) else above
    return Verdict(failures, handled_by)


def analyze_causality(tree: TraceTree) -> dict[str, Any]:
    """Root cause, the chain from the symptom to it, handled errors, critical path,
    latency breakdown."""
    verdict = judge(tree)
    failures = {k: f for k, f in verdict.failures.items() if k not in verdict.handled_by}
    failing_below = _failing_descendants(tree, failures)
    candidates = [n for n in tree.nodes.values() if id(n) in failures and not failing_below[id(n)]]
    loose_errors = [
        r
        for r in tree.records
        if r.level in ("error", "critical") and (r.span_id is None or r.span_id not in tree.nodes)
    ]

    answer: dict[str, Any] = {"trace_id": tree.trace_id.hex()}
    cause = max(candidates, key=lambda n: _rank(n, failures[id(n)]), default=None)
    if cause is not None:
        failure = failures[id(cause)]
        repeats = [n for n in candidates if _same_call(n, cause)]
        answer["status"] = "failed"
        answer["root_cause"] = _cause_doc(cause, failure, len(repeats))
        path = cause.path_from_root()
        answer["chain_spans"] = len(path)
        if len(path) > 2 * _CHAIN_ENDS:
            note_truncated(
                answer,
                f"chain: the {_CHAIN_ENDS} spans nearest the symptom and the {_CHAIN_ENDS} "
                f"nearest the cause of {len(path)}; observe what='trace' shows them all",
            )
            path = path[:_CHAIN_ENDS] + path[-_CHAIN_ENDS:]
        answer["chain"] = [_chain_doc(n, failures.get(id(n)), cause) for n in path]
        others = [n for n in candidates if n is not cause and not _same_call(n, cause)]
        answer["other_failures"] = [
            {**_span_ref(n), "message": failures[id(n)].message}
            for n in others[:_MAX_OTHER_FAILURES]
        ]
    elif loose_errors:
        record = loose_errors[0]
        answer["status"] = "failed"
        answer["root_cause"] = _record_doc(record)
        answer["chain"] = []
        answer["chain_spans"] = 0
        answer["other_failures"] = []
    else:
        answer["status"] = "ok"
        answer["root_cause"] = None
        answer["chain"] = []
        answer["chain_spans"] = 0
        answer["other_failures"] = []
    handled = _handled_docs(tree, verdict)
    answer["handled"] = handled[:_MAX_HANDLED]
    if len(handled) > _MAX_HANDLED:
        answer["handled_count"] = len(handled)
    path, path_length = short_critical_path(tree)
    answer["critical_path"] = [
        {**_span_ref(n), "duration_ms": _ms(n.span.duration_ns), "self_ms": _ms(self_time_ns(n))}
        for n in path
    ]
    answer["critical_path_spans"] = path_length
    answer["latency_breakdown"] = latency_breakdown(tree)
    answer["summary"] = _summary(tree, answer, len(handled))
    return answer


def _failing_descendants(tree: TraceTree, failures: dict[int, Failure]) -> dict[int, bool]:
    """For each node, whether any node below it failed (post-order, no recursion)."""
    below: dict[int, bool] = {}
    order = list(tree.walk())
    for node in reversed(order):
        below[id(node)] = any(id(c) in failures or below[id(c)] for c in node.children)
    return below


def _handled_docs(tree: TraceTree, verdict: Verdict) -> list[dict[str, Any]]:
    """The deepest handled failures, one per operation (repeats counted), in start order."""
    if not verdict.handled_by:
        return []
    handled = {k: f for k, f in verdict.failures.items() if k in verdict.handled_by}
    below = _failing_descendants(tree, handled)
    docs: dict[tuple[str, str], dict[str, Any]] = {}
    for node in sorted(
        (n for n in tree.nodes.values() if id(n) in handled and not below[id(n)]),
        key=lambda n: n.span.start_ns,
    ):
        key = (node.span.service, node.span.name)
        if key in docs:
            docs[key]["repeated"] = docs[key].get("repeated", 1) + 1
            continue
        failure = handled[id(node)]
        by = verdict.handled_by[id(node)]
        answered = _span_ref(by)
        code = http_status(by.detail().attributes)
        if code is not None:
            answered["http_status"] = code
        docs[key] = {
            **_span_ref(node),
            "kind": node.kind.name,
            "message": failure.message,
            "evidence": failure.evidence[:_MAX_HANDLED_EVIDENCE],
            "handled_by": answered,
        }
    return list(docs.values())


def _rank(node: Node, failure: Failure) -> tuple[int, int, int]:
    return (failure.strength, node.depth, -node.span.start_ns)


def _same_call(a: Node, b: Node) -> bool:
    """Two failures of the same operation, e.g. retries of one downstream call."""
    return (a.span.service, a.span.name) == (b.span.service, b.span.name)


def _span_ref(node: Node) -> dict[str, Any]:
    return {
        "span_id": node.span.span_id.hex(),
        "service": node.span.service,
        "name": node.span.name,
    }


def _cause_doc(node: Node, failure: Failure, repeats: int) -> dict[str, Any]:
    logs = [e for e in failure.evidence if e["type"] == "log"]
    doc: dict[str, Any] = {
        "type": "log" if logs and failure.strength == 3 and not _has_exception(failure) else "span",
        **_span_ref(node),
        "kind": node.kind.name,
        "message": failure.message,
        "evidence": failure.evidence[:_MAX_EVIDENCE],
    }
    if len(failure.evidence) > _MAX_EVIDENCE:
        doc["evidence_count"] = len(failure.evidence)
    if repeats > 1:
        doc["repeated"] = repeats
    if doc["type"] == "log":
        doc["record_id"] = logs[0]["record_id"]
    return doc


def _has_exception(failure: Failure) -> bool:
    return any(e["type"] == "exception" for e in failure.evidence)


def _record_doc(record: Record) -> dict[str, Any]:
    return {
        "type": "log",
        "record_id": str(record.id),
        "span_id": record.span_id.hex() if record.span_id else None,
        "service": record.service,
        "name": None,
        "message": record.message,
        "evidence": [
            {
                "type": "log",
                "record_id": str(record.id),
                "level": record.level,
                "message": record.message,
            }
        ],
    }


def _chain_doc(node: Node, failure: Failure | None, cause: Node) -> dict[str, Any]:
    if node is cause:
        role = "root_cause"
    elif failure is not None:
        role = "propagated"
    else:
        role = "caller"
    doc = {
        **_span_ref(node),
        "kind": node.kind.name,
        "status": "ERROR" if node.is_error else ("FAILED" if failure else "OK"),
        "duration_ms": _ms(node.span.duration_ns),
        "role": role,
    }
    code = http_status(node.detail().attributes)
    if code is not None:
        doc["http_status"] = code
    return doc


def _summary(tree: TraceTree, answer: dict[str, Any], handled: int) -> str:
    breakdown = answer["latency_breakdown"]
    layers = sorted(
        ((k[:-3], v) for k, v in breakdown.items() if k.endswith("_ms") and k != "total_ms"),
        key=lambda kv: kv[1],
        reverse=True,
    )
    total = breakdown["total_ms"]
    timing = ", ".join(f"{name} {value:.1f} ms" for name, value in layers if value > 0)
    one = handled == 1
    if answer["root_cause"] is None:
        if not handled:
            return f"No failure in this trace ({len(tree.nodes)} spans, {total:.1f} ms: {timing})."
        first = answer["handled"][0]
        by = first["handled_by"]
        code = f", HTTP {by['http_status']}" if "http_status" in by else ""
        return (
            f"No failure in this trace: {'1 error was' if one else f'{handled} errors were'}"
            f" handled{':' if one else ', the first:'} {first['service']}"
            f" {first['name']} — {first['message']} (handled by {by['service']} {by['name']}"
            f"{code}). {len(tree.nodes)} spans, {total:.1f} ms: {timing}."
        )
    cause = answer["root_cause"]
    chain = answer["chain"]
    links = answer["chain_spans"]
    where = f"{cause['service']} {cause['name']}" if cause.get("name") else cause["service"]
    text = f"Root cause: {where} — {cause['message']}"
    if cause.get("repeated"):
        text += f" (failed {cause['repeated']} times: retries did not help)"
    text += "."
    if links > 1:
        symptom = chain[0]
        text += (
            f" It surfaced as {symptom['service']} {symptom['name']}"
            + (f" (HTTP {symptom['http_status']})" if "http_status" in symptom else "")
            + f" through {links - 2} propagating span(s)."
            if links > 2
            else f" It surfaced as {symptom['service']} {symptom['name']}."
        )
    if handled:
        text += (
            f" {'1 error elsewhere was' if one else f'{handled} errors elsewhere were'}"
            " handled and did not cause it."
        )
    if total:
        text += f" The trace took {total:.1f} ms: {timing}."
    return text


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)
