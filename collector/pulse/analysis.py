"""What TracePulse reads for one incident, and the report it makes of it.

Everything linked to the trigger (its trace, and what its correlation id links) goes
through the daemon's tools -- ``analyze`` correlate and causality, ``observe`` services
and errors -- and the store's query functions; every key of their answers is optional
(missing or malformed: shown as absent, never a crash). ``ranking.rank`` weighs the
facts gathered here."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from collector.analysis.timing import self_time_ns
from collector.bounded import Answer
from collector.config.sections import PulseServiceConfig
from collector.errors import CollectorError
from collector.filters import build_filter
from collector.model import Record
from collector.pulse.ranking import Change, ServiceFacts, rank
from collector.pulse.reports import markdown
from collector.pulse.sysmap import SystemMap
from collector.pulse.trigger import Trigger
from collector.query import iso_time, trace_tree
from collector.scan import newest_matches
from collector.store import Store

__all__ = ["Analyst", "PulseReport", "Tools"]


class PulseReport(Answer, total=False):
    """A TracePulse report, as ``analyze type=report`` answers it and the report book
    keeps it (a JSON document on disk). ``Analyst.report`` builds it; the engine adds
    ``delivery`` and ``feedback``. Hypotheses are ``collector.pulse.ranking``'s."""

    id: str
    created: str
    created_ms: int
    signature: str
    incident: dict[str, Any]  # event_type, service, error_code, correlation ids, via, ...
    hypotheses: list[dict[str, Any]]
    root_cause: dict[str, Any] | None  # the first hypothesis
    status: str
    chain: list[dict[str, Any]]
    handled: list[dict[str, Any]]
    trace_ids: list[str]
    relevant_changes: list[Any]
    system_map: dict[str, Any]
    next_checks: list[str]
    feedback_applied: list[str]
    feedback: list[dict[str, Any]]  # verdicts and notes (``configure action=feedback``)
    markdown: str
    delivery: dict[str, Any]  # per notifier: how sending went


_MAX_TRACES = 10  # linked traces analysed per incident
_MAX_WINDOW_ERRORS = 200
_MAX_CHANGES = 50
_CHANGE_KINDS = frozenset(("change", "deploy", "config", "commit"))
_GRAPH_TTL_S = 10.0

Tools = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class Analyst:
    """Makes reports from the daemon's data. Loop-only."""

    def __init__(
        self,
        store: Store,
        tools: Tools,
        declared: dict[str, PulseServiceConfig],
        *,
        window: float,
        changes_lookback: float,
        monotonic: Callable[[], float],
    ) -> None:
        """``window``: seconds read around the trigger; ``changes_lookback``: how far
        back changes count."""
        self.store = store
        self.declared = declared
        self.window = window
        self.changes_lookback = changes_lookback
        self._tools = tools
        self._monotonic = monotonic
        self._graph: tuple[float, set[tuple[str, str]]] | None = None  # (read at, edges)

    async def report(
        self,
        trigger: Trigger,
        *,
        correlation_ids: list[str],
        occurrences: int,
        votes: Mapping[str, Mapping[str, int]],
    ) -> PulseReport:
        """The report on ``trigger`` (seen ``occurrences`` times, under
        ``correlation_ids``), ranked with ``votes`` (``ReportBook.votes`` of its
        signature): read what is linked, rank, render."""
        window_ns = int(self.window * 1e9)
        trace_ids: list[str] = [trigger.trace_id.hex()] if trigger.trace_id else []
        if trigger.correlation_id:
            linked = await self._tool(
                "analyze", {"type": "correlate", "correlation_id": trigger.correlation_id}
            )
            trace_ids += [t for t in _strings(linked.get("trace_ids")) if t not in trace_ids]
        system = SystemMap(self.declared, await self._observed_edges())
        facts: dict[str, ServiceFacts] = {}
        counted: set[str] = set()
        primary: dict[str, Any] = {}
        for trace_id in trace_ids[:_MAX_TRACES]:
            answer = await self._tool("analyze", {"type": "causality", "trace_id": trace_id})
            if not primary or (answer.get("status") == "failed" != primary.get("status")):
                primary = answer  # the first failed trace, else the first one
            self._blame(answer, facts)
            self._trace_facts(trace_id, answer, facts, counted)
        await self._window_errors(trigger, window_ns, facts, counted)
        changes = self._changes(trigger)
        hypotheses = rank(trigger, system, facts, changes, votes)
        now_ns = time.time_ns()
        report_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
        relevant = _relevant_changes(hypotheses, changes)
        report: PulseReport = {
            "id": report_id,
            "created": iso_time(now_ns),
            "created_ms": now_ns // 1_000_000,
            "signature": trigger.signature,
            "incident": {
                "event_type": trigger.event_type,
                "service": trigger.service,
                "error_code": trigger.error_code,
                "correlation_id": trigger.correlation_id,
                "correlation_ids": list(correlation_ids),
                "priority": trigger.priority,
                "via": trigger.via,
                "details": trigger.details,
                "time": iso_time(trigger.time_ns),
                "occurrences": occurrences,
            },
            "hypotheses": hypotheses,
            "root_cause": hypotheses[0] if hypotheses else None,
            "status": primary.get("status") or "unknown",
            "chain": _chain(primary),
            "handled": _dicts(primary.get("handled")),
            "trace_ids": trace_ids,
            "relevant_changes": relevant,
            "system_map": system.document(),
            "next_checks": _next_checks(hypotheses, trace_ids, relevant, system),
            "feedback_applied": [
                f"{key}: {', '.join(f'{n} {v}' for v, n in sorted(counts.items()))} "
                "on earlier reports of this signature"
                for key, counts in sorted(votes.items())
            ],
            "feedback": [],
        }
        report["markdown"] = markdown(report)
        return report

    async def _observed_edges(self) -> set[tuple[str, str]]:
        """Who calls whom in the newest traces (``observe services``), read at most every
        ``_GRAPH_TTL_S``: the graph changes slowly, and reading it takes ~100 ms at a
        million spans."""
        now = self._monotonic()
        if self._graph is None or now - self._graph[0] >= _GRAPH_TTL_S:
            services = await self._tool("observe", {"what": "services"})
            edges = {
                (e["from"], e["to"])
                for e in _dicts(services.get("edges"))
                if isinstance(e.get("from"), str) and isinstance(e.get("to"), str)
            }
            self._graph = (now, edges)
        return set(self._graph[1])

    async def _tool(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """A tool's answer, or ``{}`` when it cannot answer (a trace evicted meanwhile)."""
        try:
            answer = await self._tools(name, args)
        except (ValueError, CollectorError):  # ToolInputError: evicted, malformed
            return {}
        return answer if isinstance(answer, dict) else {}

    def _blame(self, answer: Mapping[str, Any], facts: dict[str, ServiceFacts]) -> None:
        """Services the causality answer names: its ranked ``hypotheses`` when it has
        them (each with a confidence), else its ``root_cause`` (confidence 1)."""
        blamed: list[tuple[str, float, str]] = []
        top = answer.get("service")  # the blamed service, which the first hypothesis names
        for i, h in enumerate(_dicts(answer.get("hypotheses"))):
            cause = h.get("cause")
            service = h.get("service") or (
                cause.get("service") if isinstance(cause, dict) else None
            )
            if service is None and i == 0:
                service = top
            confidence = h.get("confidence")
            if isinstance(service, str) and isinstance(confidence, int | float):
                text = cause if isinstance(cause, str) else str(h.get("reasoning") or service)
                blamed.append((service, float(confidence), text[:200]))
        root = answer.get("root_cause")
        if not blamed and isinstance(root, dict) and isinstance(root.get("service"), str):
            what = root.get("message") or root.get("name") or "root cause"
            blamed.append((root["service"], 1.0, f"root cause: {str(what)[:200]}"))
        for service, confidence, text in blamed:
            fact = facts.setdefault(service, ServiceFacts())
            if confidence > fact.blamed:
                fact.blamed, fact.blamed_by = min(confidence, 1.0), text

    def _trace_facts(
        self,
        trace_id: str,
        answer: Mapping[str, Any],
        facts: dict[str, ServiceFacts],
        counted: set[str],
    ) -> None:
        """Own errors (not handled below a span that answered well) and time per service."""
        try:
            tree = trace_tree(self.store, bytes.fromhex(trace_id))
        except ValueError:
            return
        if tree is None or not tree.nodes:
            return
        handled = {h.get("span_id") for h in _dicts(answer.get("handled"))}
        counted.update(h for h in handled if isinstance(h, str))  # recovered: no evidence
        start = min(n.span.start_ns for n in tree.nodes.values())
        end = max(n.span.end_ns for n in tree.nodes.values())
        spent: Counter[str] = Counter()
        for node in tree.nodes.values():
            span_id = node.span.span_id.hex()
            service = node.span.service
            spent[service] += self_time_ns(node)
            logs = [r for r in node.error_logs if not _is_trigger(r.attributes)]
            if (node.is_error or logs) and span_id not in handled:
                fact = facts.setdefault(service, ServiceFacts())
                fact.errors += 1
                fact.error_refs.append(f"span:{span_id}")
                fact.ref_traces[f"span:{span_id}"] = trace_id
                counted.add(span_id)
                counted.update(str(r.id) for r in logs)
                if fact.first_error is None:
                    detail = node.detail().status_message
                    fact.first_error = (logs[0].message if logs else detail or node.span.name)[:200]
        if end > start:
            for service, ns in spent.items():
                fact = facts.setdefault(service, ServiceFacts())
                fact.self_share = max(fact.self_share, ns / (end - start))

    async def _window_errors(
        self, trigger: Trigger, window_ns: int, facts: dict[str, ServiceFacts], counted: set[str]
    ) -> None:
        """Errors of every service within the window around the trigger."""
        answer = await self._tool(
            "observe",
            {
                "what": "errors",
                "filter": {
                    "since": (trigger.time_ns - window_ns) // 1_000_000,
                    "until": (trigger.time_ns + window_ns) // 1_000_000,
                },
                "limit": _MAX_WINDOW_ERRORS,
            },
        )
        for item in _dicts(answer.get("events")):
            key = str(item.get("span_id") if item.get("kind") == "span" else item.get("id"))
            service = item.get("service")
            if key in counted or not isinstance(service, str) or not service:
                continue
            if item.get("kind") != "span" and _is_trigger(item.get("metadata")):
                continue  # triggers (this one, others) are symptoms, not evidence
            counted.add(key)
            fact = facts.setdefault(service, ServiceFacts())
            fact.errors += 1
            ref = f"{'span' if item.get('kind') == 'span' else 'record'}:{key}"
            fact.error_refs.append(ref)
            if isinstance(item.get("trace_id"), str):
                fact.ref_traces[ref] = item["trace_id"]
            if fact.first_error is None and isinstance(item.get("message"), str):
                fact.first_error = item["message"][:200]

    def _changes(self, trigger: Trigger) -> list[Change]:
        """Changes (git events; change, deploy or config events) before the trigger,
        within ``changes_lookback``, newest first."""
        f = build_filter({}, limit=_MAX_CHANGES)
        f.since_ns = trigger.time_ns - int(self.changes_lookback * 1e9)
        f.until_ns = trigger.time_ns + int(self.window * 1e9)
        f.kinds = frozenset({"log", "event"})
        f.record_match = _is_change
        changes = []
        for _, _, item in newest_matches(self.store, f, _MAX_CHANGES).items:
            if isinstance(item, Record):
                changes.append(
                    Change(
                        id=str(
                            item.attributes.get("vcs.ref.head.revision")  # git events
                            or item.attributes.get("commit")
                            or item.attributes.get("sha")
                            or item.id
                        )[:40],
                        time_ms=item.time_ns // 1_000_000,
                        message=item.message[:300],
                        text=" ".join([item.message, *_texts(item.attributes)]),
                    )
                )
        return changes


def _is_trigger(attributes: Any) -> bool:
    """A DebugQueue event: it reports a symptom, so it is no evidence of a cause."""
    return isinstance(attributes, Mapping) and "eventType" in attributes


def _is_change(record: Record) -> bool:
    return (
        record.source == "git"
        or record.kind in _CHANGE_KINDS
        or any(tag in _CHANGE_KINDS for tag in record.tags)
    )


def _texts(value: Any, depth: int = 0) -> list[str]:
    """Every string inside attribute values (file lists, diffs), for matching."""
    if depth > 4:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _texts(v, depth + 1)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _texts(v, depth + 1)]
    return []


def _chain(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The causality answer's chain, each link naming its trace (for links to it)."""
    trace_id = answer.get("trace_id")
    extra = {"trace_id": trace_id} if isinstance(trace_id, str) else {}
    return [{**link, **extra} for link in _dicts(answer.get("chain"))]


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _relevant_changes(hypotheses: list[dict[str, Any]], changes: list[Change]) -> list[Any]:
    by_id: dict[str, dict[str, Any]] = {}
    for h in hypotheses:
        for e in h.get("evidence", []):
            if e.get("type") == "change":
                entry = by_id.setdefault(
                    e["id"],
                    {
                        "id": e["id"],
                        "message": e["message"],
                        "timestamp": e["timestamp"],
                        "touches": e["touches"],
                        "services": [],
                    },
                )
                entry["services"].append(h["service"])
    return list(by_id.values())


def _next_checks(
    hypotheses: list[dict[str, Any]],
    trace_ids: list[str],
    changes: list[dict[str, Any]],
    system: SystemMap,
) -> list[str]:
    checks = []
    for h in hypotheses[:3]:
        checks.append(
            f"{h['service']}: observe what='errors' filter service={h['service']} "
            f"(confidence {h['confidence']})"
        )
    for change in changes[:3]:
        checks.append(f"Read change {change['id']} ({change['touches']}): {change['message']}")
    for trace_id in trace_ids[:3]:
        checks.append(f"Open trace {trace_id}: /traces/{trace_id} or `gasoline trace {trace_id}`")
    declared = {(a, b) for a, s in system.declared.items() for b in s.depends_on}
    for a, b in sorted(declared - system.observed)[:3]:
        checks.append(f"{a} → {b} is declared but never seen in spans: is it instrumented?")
    return checks
