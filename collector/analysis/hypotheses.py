"""Candidate causes of a trace's failure or slowness, each with its evidence and a
confidence, from every signal the store holds.

Where a candidate comes from, and the confidence it starts with:

| signal | linked by | confidence |
|---|---|---|
| a span's exception or error log | the span | 0.90 |
| a span's status message, a failed call to a peer without spans | the span | 0.80 |
| a bare error status, a relayed 5xx, a generic message ("internal error") | the span | 0.45-0.60 |
| an error log or browser error on the trace, on no failing span | trace id | 0.75 |
| a warning or error log explaining a client error (4xx) | trace id | 0.85 |
| a callee still running after its caller's deadline passed | the tree | 0.92 |
| the failure of a trace reached through a span link, either way | span link | 0.85 |
| an earlier failure of the peer (or same) service, shortly before | service + time | 0.85 |
| a process that died (OOM, kill, panic, exit) the failing call needed | service + time | 0.90 |
| an untraced error log of the failing service just before a generic error | service + time | 0.75 |
| a change (config reload, deploy) touching the exhausted resource | service + time | 0.88 |
| the span whose duration over its recent p50 explains the slowness | baseline | 0.55-0.95 |

A consequence (a breaker open, a deadline exceeded, a pool exhausted, an upstream 5xx
relayed) starts at 0.55 at most: when something explains it, that wins; when nothing
does, it is still named. Confidences are fixed points of a scale, not probabilities
fitted to data; the ranking is what matters, and the evidence says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from collector.analysis.context import StoreContext
from collector.analysis.propagation import (
    Consequence,
    consequence_of,
    is_change,
    is_connection_failure,
    is_generic,
    is_process_death,
    shares_resource,
)
from collector.analysis.signals import Failure, http_status, peer_of
from collector.analysis.timing import aligned, critical_path, self_time_ns
from collector.model import Record, SpanKind
from collector.trace_tree import Node, TraceTree

__all__ = [
    "Hypothesis",
    "HypothesisDoc",
    "change_hypotheses",
    "client_error_status",
    "code_changes",
    "death_hypothesis",
    "failure_text",
    "latency_hypotheses",
    "other_trace_hypothesis",
    "process_deaths",
    "record_ref",
    "resolve_peer",
    "span_hypothesis",
    "span_ref",
    "still_running",
    "untraced_log",
]

S = 1_000_000_000
MS = 1_000_000
_LOG_BEFORE_NS = 10 * S  # how far back an untraced log explains a generic error
_CHANGE_BEFORE_NS = 15 * 60 * S
_MAX_GIT_EVENTS = 50  # the newest commits and uncommitted-change reports looked at
_CODE_PATH_KEYS = ("code.filepath", "code.file.path")
_BURST_NS = 5 * S
_MAX_PATH = 64
_MIN_EXCESS_NS = 100 * MS
_STRENGTH_CONFIDENCE = {3: 0.9, 2: 0.8, 1: 0.6}


class HypothesisDoc(TypedDict):
    """A hypothesis as answers show it: what failed (``cause``: a span or record ref),
    how sure (0-1), the evidence, why, and the service to blame."""

    cause: dict[str, Any]
    confidence: float
    evidence: list[dict[str, Any]]
    reasoning: str
    service: str | None


@dataclass(slots=True)
class Hypothesis:
    """A candidate cause: ``cause`` references a span (maybe of another trace) or a
    record; ``node`` is the span of this trace it is, or where it surfaced."""

    cause: dict[str, Any]
    confidence: float
    evidence: list[dict[str, Any]]
    reasoning: str
    service: str
    node: Node | None = None
    order: tuple[int, int, int] = (0, 0, 0)
    linked_by: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return str(self.cause.get("record_id") or self.cause.get("span_id"))

    def doc(self) -> HypothesisDoc:
        return {
            "cause": self.cause,
            "confidence": round(self.confidence, 2),
            "evidence": self.evidence[:4],
            "reasoning": self.reasoning,
            "service": self.service,
        }


def span_ref(span_node: Node) -> dict[str, Any]:
    return {
        "type": "span",
        "span_id": span_node.span.span_id.hex(),
        "service": span_node.span.service,
        "name": span_node.span.name,
        "kind": span_node.kind.name,
    }


def record_ref(record: Record) -> dict[str, Any]:
    return {
        "type": "event" if record.kind == "event" else "log",
        "record_id": str(record.id),
        "span_id": record.span_id.hex() if record.span_id else None,
        "service": record.service,
        "name": None,
        "message": record.message,
        "source": record.source,
    }


def _record_evidence(record: Record, linked_by: str) -> dict[str, Any]:
    return {
        "type": "log" if record.kind != "event" else "event",
        "record_id": str(record.id),
        "level": record.level,
        "message": record.message,
        "linked_by": linked_by,
    }


def resolve_peer(node: Node, ctx: StoreContext | None, services: set[str]) -> str | None:
    """The service a CLIENT span called: ``peer.service`` as given; else its address
    (``server.address``, ``net.peer.name``, the URL's host) when it names a service the
    trace or the store knows, also by its first DNS label (``cart-svc.ns.svc`` ->
    ``cart-svc``). None when the peer is unknown (an IP, a third party)."""
    attributes = node.detail().attributes
    explicit = attributes.get("peer.service")
    if isinstance(explicit, str) and explicit:
        return explicit
    address = peer_of(attributes)
    if not address:
        return None
    known = services | (ctx.known_services() if ctx is not None else set())
    for name in (address, address.split(".")[0]):
        if name in known:
            return name
    return None


def failure_text(failure: Failure) -> str:
    types = " ".join(str(e.get("exception_type", "")) for e in failure.evidence)
    return f"{types} {failure.message}"


def span_hypothesis(
    node: Node, failure: Failure, ctx: StoreContext | None, services: set[str], repeats: int
) -> tuple[Hypothesis, Consequence | None]:
    """The failing span itself as a candidate, with what its words say."""
    text = failure_text(failure)
    consequence = consequence_of(text)
    generic = failure.strength < 2 or is_generic(failure.message)
    confidence = 0.45 if generic else _STRENGTH_CONFIDENCE[failure.strength]
    if consequence is not None:
        confidence = min(confidence, 0.55)
    blamed = node.span.service
    connection = is_connection_failure(text) and node.kind == SpanKind.CLIENT
    if connection:
        blamed = resolve_peer(node, ctx, services) or blamed
    cause = {**span_ref(node), "message": failure.message}
    logs = [e for e in failure.evidence if e["type"] == "log"]
    if (
        logs
        and failure.strength == 3
        and not any(e["type"] == "exception" for e in failure.evidence)
    ):
        cause["type"] = "log"  # the span's own error log says what failed
        cause["record_id"] = logs[0]["record_id"]
    if repeats > 1:
        cause["repeated"] = repeats
    if connection and blamed != node.span.service:
        reasoning = f"{node.span.service} could not reach {blamed}: {failure.message}"
    elif consequence is not None:
        reasoning = (
            f"{failure.message} is a {consequence.value.replace('_', ' ')} "
            "and nothing deeper explained it"
        )
    elif generic:
        reasoning = f"{node.span.service} {node.span.name} failed without saying why"
    else:
        reasoning = f"the deepest failure in the trace: {failure.message}"
    hypothesis = Hypothesis(
        cause,
        confidence,
        list(failure.evidence),
        reasoning,
        blamed,
        node,
        (failure.strength, node.depth, -node.span.start_ns),
        "span",
    )
    hypothesis.extra["connection"] = connection
    hypothesis.extra["generic"] = generic
    return hypothesis, consequence


def still_running(node: Node) -> Hypothesis | None:
    """For a caller that gave up (deadline, timeout): the span below it that was still
    running after it gave up, the one with the most self time in that subtree."""
    gave_up = node.span.end_ns
    late = [c for c in node.children if aligned(c)[1] > gave_up]
    if not late:
        return None
    best: Node | None = None
    stack = list(late)
    while stack:
        current = stack.pop()
        if best is None or self_time_ns(current) > self_time_ns(best):
            best = current
        stack.extend(current.children)
    assert best is not None
    over_ms = round((max(aligned(c)[1] for c in late) - gave_up) / MS, 1)
    return Hypothesis(
        {**span_ref(best), "message": f"still running {over_ms} ms after the caller gave up"},
        0.92,
        [
            {
                "type": "still_running",
                "caller_span_id": node.span.span_id.hex(),
                "caller": f"{node.span.service} {node.span.name}",
                "ran_past_caller_ms": over_ms,
                "self_ms": round(self_time_ns(best) / MS, 1),
            }
        ],
        f"{best.span.service} {best.span.name} was still running {over_ms} ms after "
        f"{node.span.service} {node.span.name} gave up, so its slowness caused the timeout",
        best.span.service,
        best,
        (3, best.depth, -best.span.start_ns),
        "tree",
    )


def other_trace_hypothesis(
    tree: TraceTree,
    best: tuple[Node, Failure],
    via: Node,
    linked_by: str,
    confidence: float,
    how: str,
) -> Hypothesis:
    """A failure in another trace (through a link, or of a service shortly before)."""
    other, failure = best
    cause = {**span_ref(other), "trace_id": tree.trace_id.hex(), "message": failure.message}
    return Hypothesis(
        cause,
        confidence,
        [
            *failure.evidence[:3],
            {
                "type": linked_by,
                "trace_id": tree.trace_id.hex(),
                "via_span_id": via.span.span_id.hex(),
            },
        ],
        f"{how}: {other.span.service} {other.span.name} failed with {failure.message}",
        other.span.service,
        via,
        (failure.strength, other.depth, -other.span.start_ns),
        linked_by,
    )


def process_deaths(
    ctx: StoreContext, services: set[str] | None, since_ns: int, until_ns: int
) -> list[Record]:
    """For each service (of ``services``, or any), the first line of its last burst of
    process-death lines: the one that says why, before the exit lines that follow it."""
    found: dict[str, list[Record]] = {}
    for record in ctx.records_between(since_ns, until_ns, services=services):
        if record.trace_id is None and is_process_death(record.message):
            found.setdefault(record.service, []).append(record)
    firsts = []
    for lines in found.values():
        i = len(lines) - 1
        while i > 0 and lines[i].time_ns - lines[i - 1].time_ns <= _BURST_NS:
            i -= 1
        firsts.append(lines[i])
    return firsts


def death_hypothesis(record: Record, via: Node | None, confidence: float) -> Hypothesis:
    return Hypothesis(
        record_ref(record),
        confidence,
        [{**_record_evidence(record, "service_and_time"), "process_signal": True}],
        f"the {record.service} process died ({record.message[:80]})"
        + (f" while {via.span.service} {via.span.name} needed it" if via is not None else ""),
        record.service,
        via,
        (3, 0, -record.time_ns),
        "service_and_time",
    )


def untraced_log(ctx: StoreContext, node: Node) -> Hypothesis | None:
    """The last untraced error log of the failing span's service just before it ended."""
    records = ctx.records_between(
        node.span.start_ns - _LOG_BEFORE_NS,
        node.span.end_ns + S,
        services={node.span.service},
        untraced=True,
    )
    errors = [r for r in records if r.level in ("error", "critical")]
    if not errors:
        return None
    record = errors[-1]
    gap_ms = round((node.span.end_ns - record.time_ns) / MS, 1)
    return Hypothesis(
        record_ref(record),
        0.75,
        [_record_evidence(record, "service_and_time")],
        f"{record.service} logged this without a trace id {gap_ms} ms before "
        f"{node.span.name} failed with a message that says nothing more",
        record.service,
        node,
        (3, node.depth, -record.time_ns),
        "service_and_time",
    )


def change_hypotheses(
    ctx: StoreContext, node: Node, failure: Failure, consequence: Consequence | None
) -> list[Hypothesis]:
    """Changes (config reloads, deploys) to the failing span's service shortly before."""
    records = ctx.records_between(
        node.span.start_ns - _CHANGE_BEFORE_NS,
        node.span.end_ns,
        services={node.span.service, ""},
    )
    found = []
    text = failure_text(failure)
    for record in records:
        if not is_change(record):
            continue
        related = consequence is not None and shares_resource(record.message, text)
        ago_s = round((node.span.start_ns - record.time_ns) / S, 1)
        found.append(
            Hypothesis(
                record_ref(record),
                0.88 if related else 0.35,
                [
                    {
                        **_record_evidence(record, "service_and_time"),
                        "change": True,
                        "seconds_before": ago_s,
                    }
                ],
                f"{record.message[:80]} {ago_s} s before "
                + ("touched what ran out" if related else "may be related"),
                record.service or node.span.service,
                node,
                (2, 0, -record.time_ns),
                "service_and_time",
            )
        )
    return found


def latency_hypotheses(
    tree: TraceTree, ctx: StoreContext
) -> tuple[list[Hypothesis], dict[str, Any] | None]:
    """Spans of the critical path whose time over their operation's recent p50 explains
    a slow trace; and how slow the trace was against its root's baseline (None when it
    was not slow)."""
    path = critical_path(tree)[:_MAX_PATH]
    if not path:
        return [], None
    ops = {(n.span.service, n.span.name) for n in path}
    base = ctx.baselines(ops, before_ns=tree.end_ns)
    excess: dict[int, int | None] = {}
    for n in path:
        b = base.get((n.span.service, n.span.name))
        excess[id(n)] = None if b is None else max(0, n.span.duration_ns - b.p50_ns)
    on_path = {id(n) for n in path}
    own: dict[int, int] = {}
    for n in path:
        mine = excess[id(n)]
        if mine is None:
            continue
        below = sum(excess[id(c)] or 0 for c in n.children if id(c) in on_path)
        own[id(n)] = max(0, mine - below)
    root = path[0]
    root_base = base.get((root.span.service, root.span.name))
    if root_base is not None:
        total = excess[id(root)] or 0
        slow = root.span.duration_ns >= 2 * root_base.p50_ns and total >= _MIN_EXCESS_NS
    else:
        total = max(own.values(), default=0)
        slow = total >= _MIN_EXCESS_NS and total >= root.span.duration_ns // 2
    if not slow or not own:
        return [], None
    verdict = {
        "duration_ms": round(root.span.duration_ns / MS, 1),
        "baseline_p50_ms": round(root_base.p50_ns / MS, 1) if root_base else None,
        "excess_ms": round(total / MS, 1),
    }
    found = []
    for n in path:
        mine = own.get(id(n), 0)
        if mine < _MIN_EXCESS_NS // 2:
            continue
        b = base[(n.span.service, n.span.name)]
        share = min(1.0, mine / max(1, total))
        found.append(
            Hypothesis(
                {
                    **span_ref(n),
                    "message": (
                        f"took {n.span.duration_ns / MS:.1f} ms, {mine / MS:.1f} ms over its "
                        f"recent p50 of {b.p50_ns / MS:.1f} ms"
                    ),
                },
                0.55 + 0.4 * share,
                [
                    {
                        "type": "latency",
                        "duration_ms": round(n.span.duration_ns / MS, 1),
                        "baseline_p50_ms": round(b.p50_ns / MS, 1),
                        "baseline_samples": b.samples,
                        "excess_ms": round(mine / MS, 1),
                        "share_of_excess": round(share, 2),
                    }
                ],
                f"{n.span.service} {n.span.name} explains {share:.0%} of the "
                f"{total / MS:.0f} ms the request took over its usual time",
                n.span.service,
                n,
                (1, n.depth, -n.span.start_ns),
                "baseline",
            )
        )
    return found, verdict


def client_error_status(node: Node) -> int | None:
    code = http_status(node.detail().attributes)
    return code if code is not None and 400 <= code < 500 else None


def code_changes(ctx: StoreContext, h: Hypothesis) -> list[Hypothesis]:
    """Git changes (commits, uncommitted edits: ``git.files``) to a file the failing code
    ran in: a path of the cause's stack trace or its ``code.filepath``; among the newest
    ``_MAX_GIT_EVENTS`` git events before the failure."""
    node = h.node
    if node is None or h.cause.get("type") != "span":
        return []
    where = " ".join(str(e.get("stacktrace", "")) for e in h.evidence)
    attributes = node.detail().attributes
    where += " " + " ".join(str(attributes.get(k, "")) for k in _CODE_PATH_KEYS)
    if not where.strip():
        return []
    found = []
    for record in reversed(ctx.newest_records("git", node.span.end_ns, _MAX_GIT_EVENTS)):
        files = record.attributes.get("git.files") if isinstance(record.attributes, dict) else None
        touched = [
            f["path"]
            for f in files or ()
            if isinstance(f, dict) and isinstance(f.get("path"), str) and f["path"] in where
        ]
        if not touched:
            continue
        found.append(
            Hypothesis(
                record_ref(record),
                0.7,
                [{**_record_evidence(record, "code_path"), "change": True, "files": touched[:5]}],
                f"{record.message[:80]} changed {touched[0]}, where "
                f"{node.span.service} {node.span.name} failed",
                h.service,
                node,
                (2, 0, -record.time_ns),
                "code_path",
            )
        )
    return found[-3:]
