"""Root cause of a trace, from every signal: ranked hypotheses with their evidence.

The tree decides first, not the timestamps, so skewed clocks between services do not
mislead it. A span fails through its status, exception events, HTTP/gRPC codes, or
error logs attached to it; among failing spans with no failing descendant, the one
with the strongest evidence wins (an exception or error log over a bare status), then
the deepest, then the earliest of a run of retries.

Then the words of the failure are read (``collector.analysis.propagation``): a breaker
open, a deadline exceeded, a pool exhausted, an upstream 5xx relayed are consequences,
explained when the evidence allows by a callee still running after its caller gave up,
an earlier failure in the trace, a failure of the peer service shortly before (another
trace), a change (config reload, deploy) touching the exhausted resource. A connection
refused or reset blames the peer (``peer.service``, or its address resolved to a
service the store knows), and a process of that service that died (OOM, kill, panic)
explains it. A generic error ("internal error") is explained by an untraced error log of
the same service just before. A span link, either way, leads to the failure of another
trace. A client error (4xx) is explained by the warning or error the server logged.
With no failure, the critical path's durations are compared with each operation's
recent p50 in the store: the span whose excess explains most of the slowness is named.
``collector.analysis.hypotheses`` has the table of signals and confidences.

A failure below a span that answered successfully (``answered_ok``: a 2xx/3xx, status
OK, a SERVER span without error status) was handled there, by a fallback or a retry
that worked: it is listed under ``handled`` with the span that handled it, and is
never the root cause nor a reason to call the trace failed (``status`` says
``degraded``).

The answer (keys are stable; consumers should treat a missing key as absent):

- ``status``: ``failed`` | ``slow`` | ``degraded`` | ``ok``; ``status_reason``: why.
- ``hypotheses``: up to ``_MAX_HYPOTHESES``, best first, each ``{cause, confidence,
  evidence, reasoning, service}``; ``cause`` references a span (``type: span``,
  ``span_id``, ``service``, ``name``, ``kind``, ``message``; ``trace_id`` when it is in
  another trace) or a record (``type: log|event``, ``record_id``, ``service``,
  ``message``, ``source``); ``service`` is the service to blame.
- ``root_cause``: the first hypothesis' cause with its ``evidence``, ``confidence``,
  ``reasoning`` and ``blamed_service``; None when nothing is to blame. ``service``: the
  blamed service (top level too).
- ``chain``: from the symptom (a browser event asked about, the browser span or the
  root span) to the cause: spans with ``role`` (caller, propagated, root_cause,
  symptom), then the cause when it is not a span of this trace.
- ``handled``, ``other_failures``, ``critical_path``, ``latency_breakdown``, ``summary``;
  ``slow`` (duration against the root's baseline) when the trace was slow.

The answer is bounded whatever the trace: the chain keeps the spans nearest the symptom
and nearest the cause (``chain_spans`` counts them all), evidence is cut to
``_MAX_EVIDENCE`` items, and ``collector.bounded.fit`` holds it under
``MAX_CAUSALITY_BYTES``. With a ``store`` every lookup outside the trace is bounded by
time and by chunks visited (``collector.analysis.context``); without one (reports built
from a tree alone) only the trace's own spans and records are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Required, TypedDict

from collector.analysis.context import StoreContext
from collector.analysis.hypotheses import (
    Hypothesis,
    HypothesisDoc,
    change_hypotheses,
    client_error_status,
    code_changes,
    death_hypothesis,
    latency_hypotheses,
    other_trace_hypothesis,
    process_deaths,
    record_ref,
    resolve_peer,
    span_hypothesis,
    still_running,
    untraced_log,
)
from collector.analysis.propagation import Consequence, is_process_death
from collector.analysis.signals import Failure, answered_ok, failure_of, http_status
from collector.analysis.timing import latency_breakdown, self_time_ns, short_critical_path
from collector.bounded import Answer, fit, note_truncated
from collector.model import Record, SpanKind, StatusCode
from collector.store import Store
from collector.trace_tree import Node, TraceTree, build_tree

__all__ = [
    "MAX_CAUSALITY_BYTES",
    "CausalityAnswer",
    "CausalityWindow",
    "HypothesisDoc",
    "Verdict",
    "analyze_causality",
    "analyze_window",
    "judge",
]

MAX_CAUSALITY_BYTES = 10_240
"""Compact JSON bytes of one causality answer."""
_MAX_OTHER_FAILURES = 5
_MAX_HANDLED = 5
_MAX_HYPOTHESES = 5
_CHAIN_ENDS = 10  # chain links kept at each end of a longer chain
_MAX_EVIDENCE = 10
_MAX_HANDLED_EVIDENCE = 3
_MAX_WINDOW_TRACES = 5
S = 1_000_000_000
_BEFORE_NS = 5 * 60 * S  # earlier failures of a service that may have opened a breaker
_PEER_DEATH_NS = 2 * 60 * S  # a peer's process death that may explain a refused connection
_OWN_DEATH_NS = 30 * S  # a sibling process of the failing service that just died
_LINK_AFTER_NS = 60 * S


class CausalityWindow(TypedDict):
    """The window a causality question by time covered, and its failing traces."""

    since_ms: int
    until_ms: int
    failing_traces: int
    trace_ids: list[str]  # the first 10


class CausalityAnswer(Answer, total=False):
    """``analyze type=causality``: the keys listed at the top of this module. Span and
    record refs (``root_cause``, ``chain``, ...) stay mappings: their keys depend on what
    they refer to."""

    trace_id: Required[str | None]  # None when answered from a window's records
    status: str  # failed | slow | degraded | ok
    status_reason: str
    root_cause: Any  # the top cause's ref with its evidence (a mapping), or None
    service: str | None
    hypotheses: list[HypothesisDoc]
    slow: dict[str, Any]
    chain: list[dict[str, Any]]
    chain_spans: int
    other_failures: list[dict[str, Any]]
    handled: list[dict[str, Any]]
    handled_count: int  # when more were handled than listed
    critical_path: list[dict[str, Any]]
    critical_path_spans: int
    latency_breakdown: dict[str, Any] | None
    summary: str
    window: CausalityWindow  # when asked by time (``since``/``until``)


@dataclass(slots=True)
class Verdict:
    """Every failing span of a trace (by ``id(node)``), and for those below a span that
    answered successfully, that span: the failure was handled there."""

    failures: dict[int, Failure]
    handled_by: dict[int, Node]


def judge(tree: TraceTree) -> Verdict:
    """Which spans failed, and which of those failures a span above them handled.

    A span that answered explicitly well (status OK, HTTP < 400, gRPC 0) and shows only
    error logs handled what it logged: the logs say what went wrong on the way."""
    failures: dict[int, Failure] = {}
    handled_by: dict[int, Node] = {}
    handler: dict[int, Node | None] = {}  # the nearest span at or above that answered well
    for node in tree.walk():  # parents before children
        parent = node.parent
        above = handler[id(parent)] if parent is not None else None
        failure = failure_of(node)
        if failure is not None:
            failures[id(node)] = failure
            if above is None and _only_logs(failure) and _answered_explicitly(node):
                above = node
            if above is not None:
                handled_by[id(node)] = above
            handler[id(node)] = above
        else:
            caller_failed = parent is not None and id(parent) in failures
            handler[id(node)] = node if answered_ok(node, caller_failed=caller_failed) else above
    return Verdict(failures, handled_by)


def _only_logs(failure: Failure) -> bool:
    return all(e["type"] == "log" for e in failure.evidence)


def _answered_explicitly(node: Node) -> bool:
    if node.span.status == StatusCode.OK:
        return True
    attributes = node.detail().attributes
    code = http_status(attributes)
    if code is not None:
        return code < 400
    return attributes.get("rpc.grpc.status_code") == 0


def analyze_causality(
    tree: TraceTree, store: Store | None = None, *, symptom: Record | None = None
) -> CausalityAnswer:
    """Status, ranked hypotheses, root cause, blamed service, the chain from the symptom
    to the cause, handled errors, critical path, latency breakdown. ``store`` lets the
    analysis look outside the trace; ``symptom`` is the event the question started from."""
    ctx = StoreContext(store, exclude=tree.trace_id) if store is not None else None
    found = _Analysis(tree, ctx)
    return found.answer(symptom)


def analyze_window(
    store: Store, since_ns: int, until_ns: int, *, symptom: Record | None = None
) -> CausalityAnswer:
    """What broke between ``since_ns`` and ``until_ns``: the failing traces of the window
    (up to ``_MAX_WINDOW_TRACES``, oldest first) are analysed and the one whose root
    cause is surest is answered, with ``window`` listing the others; with no failing
    trace, the window's untraced error records are the candidates, a process that died
    first."""
    ctx = StoreContext(store)
    trace_ids = ctx.failing_trace_ids(since_ns, until_ns)
    window: CausalityWindow = {
        "since_ms": since_ns // 1_000_000,
        "until_ms": until_ns // 1_000_000,
        "failing_traces": len(trace_ids),
        "trace_ids": [t.hex() for t in trace_ids[:10]],
    }
    best: CausalityAnswer | None = None
    for trace_id in trace_ids[:_MAX_WINDOW_TRACES]:
        tree = _tree(store, trace_id)
        if tree is None:
            continue
        trace_answer = analyze_causality(tree, store, symptom=symptom)
        confidence = (trace_answer.get("root_cause") or {}).get("confidence", 0.0)
        if best is None or confidence > (best.get("root_cause") or {}).get("confidence", 0.0):
            best = trace_answer
    if best is not None and best.get("root_cause") is not None:
        best["window"] = window
        return fit(best, MAX_CAUSALITY_BYTES)
    records = [
        r
        for r in ctx.records_between(since_ns, until_ns, untraced=True)
        if r.level in ("error", "critical")
    ]
    hypotheses = [
        death_hypothesis(r, None, 0.85) for r in process_deaths(ctx, None, since_ns, until_ns)
    ]
    seen = {h.key for h in hypotheses}
    for record in reversed(records):
        if str(record.id) not in seen and not is_process_death(record.message):
            hypotheses.append(
                Hypothesis(
                    record_ref(record),
                    0.6,
                    [
                        {
                            "type": "log",
                            "record_id": str(record.id),
                            "level": record.level,
                            "message": record.message,
                            "linked_by": "time_window",
                        }
                    ],
                    f"{record.service or 'a source'} logged an error in the window",
                    record.service,
                    None,
                    (3, 0, -record.time_ns),
                    "time_window",
                )
            )
    hypotheses.sort(key=_rank, reverse=True)
    answer: CausalityAnswer = {"trace_id": None}
    if hypotheses:
        top = hypotheses[0]
        answer["status"] = "failed"
        answer["status_reason"] = (
            f"no trace failed in the window, but {len(records)} error record(s) were logged"
        )
        answer["root_cause"] = _root_doc(top)
        answer["service"] = top.service
        answer["chain"] = [_outside_link(top)]
    else:
        answer["status"] = "ok"
        answer["status_reason"] = "no trace failed and no error was logged in the window"
        answer["root_cause"] = None
        answer["service"] = None
        answer["chain"] = []
    answer["hypotheses"] = [h.doc() for h in hypotheses[:_MAX_HYPOTHESES]]
    answer.update({"chain_spans": 0, "handled": [], "other_failures": [], "critical_path": []})
    answer.update({"critical_path_spans": 0, "latency_breakdown": None, "window": window})
    answer["summary"] = (
        f"Nothing in this trace's spans; {answer['status_reason']}."
        if answer["root_cause"] is None
        else f"Root cause: {top.service} — {top.cause['message']} ({top.reasoning})."
    )
    return fit(answer, MAX_CAUSALITY_BYTES)


def _tree(store: Store, trace_id: bytes) -> TraceTree | None:
    spans = store.spans.trace(trace_id)
    if not spans:
        return None
    return build_tree(trace_id, spans, store.records.by_trace(trace_id))


def _best_failure(tree: TraceTree) -> tuple[Node, Failure] | None:
    """The deepest, strongest unhandled failure of another trace."""
    verdict = judge(tree)
    failures = {k: f for k, f in verdict.failures.items() if k not in verdict.handled_by}
    below = _failing_descendants(tree, failures)
    leaves = [n for n in tree.nodes.values() if id(n) in failures and not below[id(n)]]
    if not leaves:
        return None
    best = max(leaves, key=lambda n: (failures[id(n)].strength, n.depth, -n.span.start_ns))
    return best, failures[id(best)]


def _rank(h: Hypothesis) -> tuple[float, tuple[int, int, int]]:
    return (round(h.confidence, 3), h.order)


class _Analysis:
    """One trace's candidates, gathered once, answered once."""

    def __init__(self, tree: TraceTree, ctx: StoreContext | None) -> None:
        self.tree = tree
        self.ctx = ctx
        self.verdict = judge(tree)
        self.failures = {
            k: f for k, f in self.verdict.failures.items() if k not in self.verdict.handled_by
        }
        below = _failing_descendants(tree, self.failures)
        self.leaves = sorted(
            (n for n in tree.nodes.values() if id(n) in self.failures and not below[id(n)]),
            key=lambda n: n.span.start_ns,
        )
        self.services = {n.span.service for n in tree.nodes.values()}
        self.hypotheses: list[Hypothesis] = []
        self.slow: dict[str, Any] | None = None

    # -- gathering ----------------------------------------------------------------------

    def gather(self) -> None:
        groups: dict[tuple[str, str], list[Node]] = {}
        for node in self.leaves:
            groups.setdefault((node.span.service, node.span.name), []).append(node)
        span_hyps: list[tuple[Hypothesis, Consequence | None]] = []
        for calls in groups.values():
            first = calls[0]
            span_hyps.append(
                span_hypothesis(
                    first, self.failures[id(first)], self.ctx, self.services, len(calls)
                )
            )
        for hypothesis, _ in span_hyps:
            self.hypotheses.append(hypothesis)
        for hypothesis, consequence in span_hyps:
            self._explain(hypothesis, consequence, [h for h, _ in span_hyps])
        self._records()
        if self.ctx is not None and not self.hypotheses:
            found, self.slow = latency_hypotheses(self.tree, self.ctx)
            self.hypotheses += found

    def _explain(
        self, h: Hypothesis, consequence: Consequence | None, spans: list[Hypothesis]
    ) -> None:
        node = h.node
        assert node is not None
        failure = self.failures[id(node)]
        if consequence in (Consequence.DEADLINE, Consequence.UPSTREAM):
            running = still_running(node)
            if running is not None:
                self.hypotheses.append(running)
                return
        if consequence is not None:
            earlier = [
                o
                for o in spans
                if o is not h and o.node is not None and o.node.span.start_ns < node.span.start_ns
            ]
            for other in earlier:
                other.confidence = max(other.confidence, 0.85)
                other.evidence.append(
                    {
                        "type": "explains",
                        "span_id": node.span.span_id.hex(),
                        "consequence": consequence.value,
                    }
                )
            if earlier:
                return
        ctx = self.ctx
        if ctx is None:
            return
        if consequence is not None:
            if consequence == Consequence.POOL:
                self.hypotheses += change_hypotheses(ctx, node, failure, consequence)
            services = {h.service} if h.service != node.span.service else set()
            if not services and consequence == Consequence.BREAKER:
                peer = resolve_peer(node, ctx, self.services)
                services = {peer} if peer else {node.span.service}
            if services:
                self._earlier_failure(node, services)
        if h.extra.get("connection") and h.service != node.span.service:
            for record in process_deaths(
                ctx, {h.service}, node.span.start_ns - _PEER_DEATH_NS, node.span.end_ns + 5 * S
            ):
                self.hypotheses.append(death_hypothesis(record, node, 0.9))
                h.confidence = min(h.confidence, 0.7)  # the death explains the lost peer
                h.evidence.append({"type": "explained_by", "record_id": str(record.id)})
        weak = h.extra.get("generic") or failure.strength < 3
        if h.extra.get("generic"):
            log = untraced_log(ctx, node)
            if log is not None:
                self.hypotheses.append(log)
            for record in process_deaths(
                ctx, {node.span.service}, node.span.start_ns - _OWN_DEATH_NS, node.span.end_ns
            ):
                self.hypotheses.append(death_hypothesis(record, node, 0.8))
        if weak:
            self._links(node, h)

    def _earlier_failure(self, node: Node, services: set[str]) -> None:
        """The first failure of ``services`` in the minutes before: what opened the
        breaker or is still failing."""
        assert self.ctx is not None
        spans = self.ctx.failed_spans(services, node.span.start_ns - _BEFORE_NS, node.span.start_ns)
        for span in spans[:3]:
            other = _tree(self.ctx.store, span.trace_id)
            best = _best_failure(other) if other is not None else None
            if other is not None and best is not None:
                ago = round((node.span.start_ns - best[0].span.start_ns) / S, 1)
                self.hypotheses.append(
                    other_trace_hypothesis(
                        other,
                        best,
                        node,
                        "same_service_earlier",
                        0.85,
                        f"{ago} s before, in another trace",
                    )
                )
                return

    def _links(self, node: Node, h: Hypothesis) -> None:
        """Failures of traces linked to this one, either way."""
        assert self.ctx is not None
        targets: dict[bytes, Node] = {}
        for n in node.path_from_root():
            for link in n.detail().links:
                trace_hex = link.get("trace_id")
                if isinstance(trace_hex, str) and len(trace_hex) == 32:
                    targets.setdefault(bytes.fromhex(trace_hex), n)
        producers = {
            n.span.span_id for n in self.tree.nodes.values() if n.kind == SpanKind.PRODUCER
        }  # what this trace handed on: consumers link back to these
        if producers and (h.extra.get("generic") or h.confidence <= 0.8):
            for span in self.ctx.linking_spans(
                producers, self.tree.start_ns, self.tree.end_ns + _LINK_AFTER_NS
            ):
                targets.setdefault(span.trace_id, node)
        for trace_id, via in list(targets.items())[:5]:
            if trace_id == self.tree.trace_id:
                continue
            other = _tree(self.ctx.store, trace_id)
            best = _best_failure(other) if other is not None else None
            if other is not None and best is not None:
                self.hypotheses.append(
                    other_trace_hypothesis(
                        other, best, via, "span_link", 0.85, "in a trace linked to this one"
                    )
                )

    def _records(self) -> None:
        """Records on the trace that no failing span carries: browser errors, logs with
        only the trace id; and for a client error (4xx), what the server logged."""
        nodes = self.tree.nodes
        client_error = any(client_error_status(n) for n in self.leaves) or any(
            client_error_status(n) for n in self.tree.roots if id(n) in self.failures
        )
        failing_ends = [n.span.end_ns for n in self.leaves]
        for record in self.tree.records:
            node = nodes.get(record.span_id) if record.span_id is not None else None
            attached = node is not None
            if client_error and record.level in ("warn", "error", "critical"):
                confidence, why = 0.85, "the server said why it refused the request"
            elif record.level in ("error", "critical"):
                if node is not None and (
                    id(node) in self.failures  # the span's own failure carries it
                    or id(node) in self.verdict.handled_by
                    or _answered_explicitly(node)
                ):
                    continue
                after = bool(failing_ends) and record.time_ns > max(failing_ends)
                confidence = 0.5 if after else 0.75
                why = (
                    "reported after the failure, so more likely its symptom"
                    if after
                    else "an error on the trace that no failing span carries"
                )
            else:
                continue
            self.hypotheses.append(
                Hypothesis(
                    record_ref(record),
                    confidence,
                    [
                        {
                            "type": "event" if record.kind == "event" else "log",
                            "record_id": str(record.id),
                            "level": record.level,
                            "message": record.message,
                            "linked_by": "span_id" if attached else "trace_id",
                        }
                    ],
                    f"{record.service or record.source} logged it on this trace: {why}",
                    record.service or record.source,
                    node,
                    (3, node.depth if node else 0, -record.time_ns),
                    "span_id" if attached else "trace_id",
                )
            )

    # -- answering ----------------------------------------------------------------------

    def ranked(self) -> list[Hypothesis]:
        best: dict[str, Hypothesis] = {}
        for h in self.hypotheses:
            kept = best.get(h.key)
            if kept is None or _rank(h) > _rank(kept):
                if kept is not None:
                    h.evidence += [e for e in kept.evidence if e not in h.evidence]
                best[h.key] = h
        return sorted(best.values(), key=_rank, reverse=True)

    def answer(self, symptom: Record | None) -> CausalityAnswer:
        self.gather()
        ranked = self.ranked()
        if ranked and self.ctx is not None and self.failures:
            changes = code_changes(self.ctx, ranked[0])
            for change in changes:  # cited beside the failure they touched, not over it
                ranked[0].evidence.append({**change.evidence[0], "type": "code_change"})
            ranked[1:1] = changes
        tree = self.tree
        handled = _handled_docs(tree, self.verdict)
        answer: CausalityAnswer = {"trace_id": tree.trace_id.hex()}
        failed = bool(self.failures) or any(h.linked_by in ("trace_id", "span_id") for h in ranked)
        if failed:
            status = "failed"
            reason = f"{len(self.leaves)} unhandled failure(s) in the trace"
            if not self.failures:
                reason = "an error was reported on the trace"
        elif self.slow is not None:
            status = "slow"
            reason = (
                f"took {self.slow['duration_ms']} ms, {self.slow['excess_ms']} ms over the usual"
                + (
                    f" p50 of {self.slow['baseline_p50_ms']} ms"
                    if self.slow["baseline_p50_ms"]
                    else ""
                )
            )
        elif handled:
            status = "degraded"
            reason = f"answered successfully after {len(handled)} handled error(s)"
        else:
            status = "ok"
            reason = "nothing failed" + (
                " and no operation was slower than its recent baseline" if self.ctx else ""
            )
        answer["status"] = status
        answer["status_reason"] = reason
        top = ranked[0] if ranked and status in ("failed", "slow") else None
        answer["root_cause"] = _root_doc(top) if top is not None else None
        answer["service"] = top.service if top is not None else None
        answer["hypotheses"] = [h.doc() for h in ranked[:_MAX_HYPOTHESES]] if top else []
        if self.slow is not None:
            answer["slow"] = self.slow
        chain, chain_spans = self._chain(top, symptom)
        answer["chain"] = chain
        answer["chain_spans"] = chain_spans
        if len(chain) < chain_spans:
            note_truncated(
                answer,
                f"chain: the {_CHAIN_ENDS} spans nearest the symptom and the {_CHAIN_ENDS} "
                f"nearest the cause of {chain_spans}; observe what='trace' shows them all",
            )
        others = [
            n
            for n in self.leaves
            if top is None
            or top.node is None
            or (n is not top.node and not _same_call(n, top.node))
        ]
        answer["other_failures"] = [
            {**_span_ref(n), "message": self.failures[id(n)].message}
            for n in (others if top is not None else [])[:_MAX_OTHER_FAILURES]
        ]
        answer["handled"] = handled[:_MAX_HANDLED]
        if len(handled) > _MAX_HANDLED:
            answer["handled_count"] = len(handled)
        path, path_length = short_critical_path(tree)
        answer["critical_path"] = [
            {
                **_span_ref(n),
                "duration_ms": _ms(n.span.duration_ns),
                "self_ms": _ms(self_time_ns(n)),
            }
            for n in path
        ]
        answer["critical_path_spans"] = path_length
        answer["latency_breakdown"] = latency_breakdown(tree)
        answer["summary"] = _summary(tree, answer, len(handled))
        return fit(answer, MAX_CAUSALITY_BYTES)

    def _chain(
        self, top: Hypothesis | None, symptom: Record | None
    ) -> tuple[list[dict[str, Any]], int]:
        if top is None:
            return [], 0
        links: list[dict[str, Any]] = []
        node = top.node
        inside = top.linked_by in ("span", "tree", "baseline") or (
            top.linked_by == "span_id" and node is not None
        )
        path = node.path_from_root() if node is not None else []
        count = len(path)
        if len(path) > 2 * _CHAIN_ENDS:
            path = path[:_CHAIN_ENDS] + path[-_CHAIN_ENDS:]
        cause_node = node if inside else None
        links += [_chain_doc(n, self.verdict.failures.get(id(n)), cause_node) for n in path]
        if not inside:
            links.append(_outside_link(top))
        if symptom is not None and str(symptom.id) != top.key:
            links.insert(0, {**_record_link(symptom), "role": "symptom"})
        return links, count


def _root_doc(h: Hypothesis) -> dict[str, Any]:
    doc = {**h.cause}
    evidence = h.evidence
    doc["evidence"] = evidence[:_MAX_EVIDENCE]
    if len(evidence) > _MAX_EVIDENCE:
        doc["evidence_count"] = len(evidence)
    doc["confidence"] = round(h.confidence, 2)
    doc["reasoning"] = h.reasoning
    doc["blamed_service"] = h.service
    doc["linked_by"] = h.linked_by
    return doc


def _record_link(record: Record) -> dict[str, Any]:
    return {
        "type": "event" if record.kind == "event" else "log",
        "record_id": str(record.id),
        "service": record.service,
        "name": record.source,
        "kind": record.kind.upper(),
        "message": record.message,
        "status": record.level.upper(),
        "duration_ms": 0.0,
    }


def _outside_link(h: Hypothesis) -> dict[str, Any]:
    cause = h.cause
    if cause["type"] == "span":
        link = {
            "type": "span",
            "trace_id": cause.get("trace_id"),
            "span_id": cause["span_id"],
            "service": cause["service"],
            "name": cause["name"],
            "kind": cause.get("kind", ""),
            "status": "ERROR",
            "duration_ms": 0.0,
        }
    else:
        link = {
            "type": cause["type"],
            "record_id": cause["record_id"],
            "service": cause["service"],
            "name": cause.get("source") or cause["type"],
            "kind": cause["type"].upper(),
            "message": cause["message"],
            "status": "ERROR",
            "duration_ms": 0.0,
        }
    link["role"] = "root_cause"
    link["linked_by"] = h.linked_by
    return link


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


def _same_call(a: Node, b: Node) -> bool:
    """Two failures of the same operation, e.g. retries of one downstream call."""
    return (a.span.service, a.span.name) == (b.span.service, b.span.name)


def _span_ref(node: Node) -> dict[str, Any]:
    return {
        "span_id": node.span.span_id.hex(),
        "service": node.span.service,
        "name": node.span.name,
    }


def _chain_doc(node: Node, failure: Failure | None, cause: Node | None) -> dict[str, Any]:
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


def _summary(tree: TraceTree, answer: CausalityAnswer, handled: int) -> str:
    breakdown = answer["latency_breakdown"]
    assert breakdown is not None  # a trace's answer always has one
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
    text += (
        f". Blamed: {cause['blamed_service']} ({cause['confidence']:.0%} sure):"
        f" {cause['reasoning']}."
    )
    if answer["status"] == "slow":
        text = f"Slow: {answer['status_reason']}. {text}"
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
