"""Root cause of a failed trace: the deepest failure that the others only propagate.

The tree decides, not the timestamps, so skewed clocks between services do not
mislead it. A span fails through its status, exception events, HTTP/gRPC codes, or
error logs attached to it; among failing spans with no failing descendant, the one
with the strongest evidence wins (an exception or error log over a bare status),
then the deepest, then the earliest of a run of retries.

The answer is bounded whatever the trace: the chain keeps the spans nearest the symptom
and nearest the cause (``chain_spans`` counts them all), evidence is cut to
``_MAX_EVIDENCE`` items, and ``collector.bounded.fit`` caps the whole answer's size.
"""

from __future__ import annotations

from typing import Any

from collector.analysis.signals import Failure, failure_of, http_status
from collector.analysis.timing import latency_breakdown, self_time_ns, short_critical_path
from collector.bounded import note_truncated
from collector.model import Record
from collector.trace_tree import Node, TraceTree

__all__ = ["analyze_causality"]

_MAX_OTHER_FAILURES = 5
_CHAIN_ENDS = 10  # chain links kept at each end of a longer chain
_MAX_EVIDENCE = 10


def analyze_causality(tree: TraceTree) -> dict[str, Any]:
    """Root cause, the chain from the symptom to it, critical path, latency breakdown."""
    failures: dict[int, Failure] = {}
    for node in tree.nodes.values():
        failure = failure_of(node)
        if failure is not None:
            failures[id(node)] = failure
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
    path, path_length = short_critical_path(tree)
    answer["critical_path"] = [
        {**_span_ref(n), "duration_ms": _ms(n.span.duration_ns), "self_ms": _ms(self_time_ns(n))}
        for n in path
    ]
    answer["critical_path_spans"] = path_length
    answer["latency_breakdown"] = latency_breakdown(tree)
    answer["summary"] = _summary(tree, answer)
    return answer


def _failing_descendants(tree: TraceTree, failures: dict[int, Failure]) -> dict[int, bool]:
    """For each node, whether any node below it failed (post-order, no recursion)."""
    below: dict[int, bool] = {}
    order = list(tree.walk())
    for node in reversed(order):
        below[id(node)] = any(id(c) in failures or below[id(c)] for c in node.children)
    return below


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


def _summary(tree: TraceTree, answer: dict[str, Any]) -> str:
    breakdown = answer["latency_breakdown"]
    layers = sorted(
        ((k[:-3], v) for k, v in breakdown.items() if k.endswith("_ms") and k != "total_ms"),
        key=lambda kv: kv[1],
        reverse=True,
    )
    total = breakdown["total_ms"]
    timing = ", ".join(f"{name} {value:.1f} ms" for name, value in layers if value > 0)
    if answer["root_cause"] is None:
        return f"No failure in this trace ({len(tree.nodes)} spans, {total:.1f} ms: {timing})."
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
    if total:
        text += f" The trace took {total:.1f} ms: {timing}."
    return text


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)
