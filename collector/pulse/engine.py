"""TracePulse: triggers in, a ranked report out, delivered and kept.

The pipeline hands every stored batch to ``Pulse.watch`` (never blocking: a trigger
only schedules work). One incident makes one report: a trigger whose signature
(event type, service, error code) was reported less than ``pulse.rate_limit`` ago is
folded into that report (``folded_duplicates`` when it carries a correlation id already
seen, ``rate_limited`` otherwise). The analysis reads through the daemon's tools
(``analyze`` correlate and causality, ``observe`` services and errors) and the store's
query functions, and treats every key of their answers as optional. Delivery runs off
the ingest path: one bounded queue and worker per notifier, retried with exponential
backoff, every attempt counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from collector.analysis.timing import self_time_ns
from collector.config.sections import PulseConfig
from collector.errors import CollectorError
from collector.filters import build_filter
from collector.model import Record, SpanBatch
from collector.pulse.ranking import Change, ServiceFacts, rank
from collector.pulse.reports import VERDICTS, ReportBook, markdown
from collector.pulse.sysmap import SystemMap, load_map_file
from collector.pulse.trigger import Trigger, rule_matches_spans, trigger_of
from collector.query import iso_time, trace_tree
from collector.scan import newest_matches
from collector.store import Store

__all__ = ["Notifier", "Pulse"]

_log = logging.getLogger(__name__)

_MAX_TRACES = 10  # linked traces analysed per incident
_MAX_WINDOW_ERRORS = 200
_MAX_CHANGES = 50
_QUEUE = 100  # reports waiting per notifier
_MAX_BACKOFF_S = 30.0
_CHANGE_KINDS = frozenset(("change", "deploy", "config", "commit"))
_GRAPH_TTL_S = 10.0
_MAX_INCIDENTS = 4096  # signatures remembered for folding
_REDELIVER_S = 3600  # at start, reports younger than this not yet delivered are sent

Tools = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class Notifier(Protocol):
    """Where reports go (Slack, e-mail: ``exporters.pulse_delivery``)."""

    name: str

    async def send(self, report: dict[str, Any]) -> None:
        """Deliver one report; raise any exception to have it retried."""
        ...


@dataclass(slots=True)
class _Incident:
    trigger: Trigger
    at: float  # monotonic
    correlation_ids: list[str] = field(default_factory=list)
    occurrences: int = 1
    report_id: str | None = None
    refolding: bool = False  # a rewrite of its report is scheduled: folds join it


@dataclass(slots=True)
class _Delivery:
    queue: asyncio.Queue[dict[str, Any]]
    counts: Counter[str] = field(default_factory=Counter)
    last_error: str | None = None
    task: asyncio.Task[None] | None = None


class Pulse:
    """The TracePulse service. ``start`` loads kept reports; ``stop`` cancels analyses
    and deliveries still running (a report is written before it is queued for delivery)."""

    name = "pulse"

    def __init__(
        self,
        config: PulseConfig,
        store: Store,
        tools: Tools,
        notifiers: list[Notifier],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Raises ``ConfigError`` when ``pulse.map_file`` cannot be read."""
        self.config = config
        self.store = store
        self._tools = tools
        self._monotonic = monotonic
        declared = load_map_file(config.map_file) if config.map_file else dict(config.services)
        self.declared = declared
        self.book = ReportBook(
            Path(config.reports_dir).expanduser(), max_reports=config.max_reports
        )
        self.counts: Counter[str] = Counter()
        self._incidents: dict[str, _Incident] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._writes: set[asyncio.Future[None]] = set()
        self._graph: tuple[float, set[tuple[str, str]]] | None = None  # (read at, edges)
        self._write_turn = asyncio.Lock()
        self._deliveries = {
            n.name: (n, _Delivery(asyncio.Queue(maxsize=_QUEUE))) for n in notifiers
        }
        self._running = False

    # -- Service ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._running:
            return
        await asyncio.to_thread(self.book.load)
        young = time.time() * 1000 - _REDELIVER_S * 1000
        for report in self.book.reports.values():  # cut off by a stop: sent now
            status = report.get("delivery")
            if isinstance(status, dict) and report.get("created_ms", 0) >= young:
                pending = [
                    name
                    for name, state in status.items()
                    if name in self._deliveries
                    and isinstance(state, dict)
                    and state.get("status") == "pending"
                ]
                self._queue(report, pending)
        for notifier, delivery in self._deliveries.values():
            delivery.task = asyncio.create_task(
                self._deliver(notifier, delivery), name=f"pulse-{notifier.name}"
            )
        self._running = True

    async def stop(self) -> None:
        self._running = False
        tasks = list(self._tasks) + [
            d.task for _, d in self._deliveries.values() if d.task is not None
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task
        await asyncio.gather(*self._writes, return_exceptions=True)
        for _, delivery in self._deliveries.values():
            delivery.task = None

    def stats(self) -> dict[str, Any]:
        return {
            "status": "running" if self._running else "stopped",
            "counts": {
                key: self.counts[key]
                for key in (
                    "triggers",
                    "reports",
                    "folded_duplicates",
                    "rate_limited",
                    "analysis_failed",
                    "write_failed",
                    "feedback",
                )
            },
            "reports_kept": len(self.book.reports),
            "unreadable_reports": self.book.unreadable,
            "delivery": {
                name: {
                    **{
                        key: delivery.counts[key]
                        for key in ("sent", "failed_attempts", "gave_up", "dropped_queue_full")
                    },
                    "queued": delivery.queue.qsize(),
                    "last_error": delivery.last_error,
                }
                for name, (_, delivery) in self._deliveries.items()
            },
        }

    # -- triggers ---------------------------------------------------------------------

    def watch(self, item: SpanBatch | list[Record]) -> None:
        """The pipeline's watcher: find triggers in a stored batch; never blocks."""
        if not self._running or not self.config.enabled:
            return
        if isinstance(item, SpanBatch):
            for found in rule_matches_spans(item, self.config.rules):
                self.trigger(found)
            return
        for record in item:
            found_one = trigger_of(record, self.config.rules)
            if found_one is not None:
                self.trigger(found_one)

    def trigger(self, trigger: Trigger) -> None:
        """Open an incident for ``trigger``, or fold it into the open one."""
        self.counts["triggers"] += 1
        now = self._monotonic()
        open_one = self._incidents.get(trigger.signature)
        if open_one is not None and now - open_one.at < self.config.rate_limit:
            cid = trigger.correlation_id
            duplicate = cid is None or cid in open_one.correlation_ids
            self.counts["folded_duplicates" if duplicate else "rate_limited"] += 1
            open_one.occurrences += 1
            if cid is not None and not duplicate:
                open_one.correlation_ids.append(cid)
            if open_one.report_id is not None and not open_one.refolding:
                open_one.refolding = True
                self._spawn(self._refold(open_one))
            return
        if len(self._incidents) >= _MAX_INCIDENTS:
            self._forget(now)
        incident = _Incident(trigger, now)
        if trigger.correlation_id:
            incident.correlation_ids.append(trigger.correlation_id)
        self._incidents[trigger.signature] = incident
        self._spawn(self._report(incident))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report(self, incident: _Incident) -> None:
        await asyncio.sleep(float(self.config.settle))
        try:
            report = await self.build(incident)
        except Exception:
            self.counts["analysis_failed"] += 1
            _log.exception("pulse: analysis of %s failed", incident.trigger.signature)
            return
        incident.report_id = report["id"]
        self.counts["reports"] += 1
        report["delivery"] = {
            name: {"status": "pending", "attempts": 0} for name in self._deliveries
        }
        await self._keep(report)
        self._queue(report, list(self._deliveries))

    def _queue(self, report: dict[str, Any], names: list[str]) -> None:
        for name in names:
            delivery = self._deliveries[name][1]
            try:
                delivery.queue.put_nowait(report)
            except asyncio.QueueFull:
                delivery.counts["dropped_queue_full"] += 1
                report["delivery"][name]["status"] = "dropped_queue_full"

    def _forget(self, now: float) -> None:
        """Bound the open incidents: those past ``rate_limit`` go, then the oldest."""
        for signature, incident in list(self._incidents.items()):
            if now - incident.at >= self.config.rate_limit:
                del self._incidents[signature]
        while len(self._incidents) >= _MAX_INCIDENTS:
            del self._incidents[next(iter(self._incidents))]

    async def _refold(self, incident: _Incident) -> None:
        incident.refolding = False
        report = self.book.get(incident.report_id or "")
        if report is None:
            return
        report["incident"]["occurrences"] = incident.occurrences
        report["incident"]["correlation_ids"] = list(incident.correlation_ids)
        report["markdown"] = markdown(report)
        await self._keep(report)

    async def _keep(self, report: dict[str, Any]) -> None:
        """Keep ``report`` and write it. Writes run one at a time, each serializing the
        report when its turn comes, so an older state never lands after a newer one; a
        write outlives the task that asked for it (``stop`` waits for it)."""
        dropped = self.book.put(report)
        async with self._write_turn:
            text = json.dumps(report, indent=1, default=str)
            write = asyncio.ensure_future(
                asyncio.to_thread(self.book.write, report["id"], text, dropped)
            )
            self._writes.add(write)
            write.add_done_callback(self._wrote)
            with contextlib.suppress(OSError):  # counted by _wrote; kept in memory still
                await asyncio.shield(write)

    def _wrote(self, write: asyncio.Future[None]) -> None:
        self._writes.discard(write)
        if not write.cancelled() and write.exception() is not None:
            self.counts["write_failed"] += 1
            _log.warning("pulse: cannot write a report (%s)", write.exception())

    # -- analysis ---------------------------------------------------------------------

    async def build(self, incident: _Incident) -> dict[str, Any]:
        """The report for ``incident``: read what is linked, rank, render."""
        trigger = incident.trigger
        window_ns = int(self.config.window * 1e9)
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
        signature = trigger.signature
        votes = self.book.votes(signature)
        hypotheses = rank(trigger, system, facts, changes, votes)
        now_ns = time.time_ns()
        report_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)
        relevant = _relevant_changes(hypotheses, changes)
        report: dict[str, Any] = {
            "id": report_id,
            "created": iso_time(now_ns),
            "created_ms": now_ns // 1_000_000,
            "signature": signature,
            "incident": {
                "event_type": trigger.event_type,
                "service": trigger.service,
                "error_code": trigger.error_code,
                "correlation_id": trigger.correlation_id,
                "correlation_ids": list(incident.correlation_ids),
                "priority": trigger.priority,
                "via": trigger.via,
                "details": trigger.details,
                "time": iso_time(trigger.time_ns),
                "occurrences": incident.occurrences,
            },
            "hypotheses": hypotheses,
            "root_cause": hypotheses[0] if hypotheses else None,
            "status": primary.get("status") or "unknown",
            "chain": _dicts(primary.get("chain")),
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
            fact.error_refs.append(f"{'span' if item.get('kind') == 'span' else 'record'}:{key}")
            if fact.first_error is None and isinstance(item.get("message"), str):
                fact.first_error = item["message"][:200]

    def _changes(self, trigger: Trigger) -> list[Change]:
        """Changes (git events; change, deploy or config events) before the trigger,
        within ``changes_lookback``, newest first."""
        f = build_filter({}, limit=_MAX_CHANGES)
        f.since_ns = trigger.time_ns - int(self.config.changes_lookback * 1e9)
        f.until_ns = trigger.time_ns + int(self.config.window * 1e9)
        f.kinds = frozenset({"log", "event"})
        f.record_match = _is_change
        changes = []
        for _, _, item in newest_matches(self.store, f, _MAX_CHANGES).items:
            if isinstance(item, Record):
                changes.append(
                    Change(
                        id=str(
                            item.attributes.get("git.commit")
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

    # -- feedback and reads -----------------------------------------------------------

    async def feedback(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """Record a verdict on a hypothesis of a report, and/or a note. ``ValueError``
        names the field that is wrong."""
        report_id = args.get("report_id")
        report = self.book.get(report_id) if isinstance(report_id, str) else None
        if report is None:
            raise ValueError(f"report_id: {str(report_id)[:80]!r} is not a kept report")
        verdict = args.get("verdict")
        hypothesis = args.get("hypothesis")
        note = args.get("note")
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict: {verdict!r:.40} must be one of {', '.join(VERDICTS)}")
        keys = [h.get("key") for h in _dicts(report.get("hypotheses"))]
        if verdict is not None and hypothesis not in keys:
            raise ValueError(
                f"hypothesis: {str(hypothesis)[:80]!r} is not a hypothesis key of this "
                f"report (one of: {', '.join(str(k) for k in keys)})"
            )
        if note is not None and (not isinstance(note, str) or len(note) > 4000):
            raise ValueError("note: expected text of up to 4000 characters")
        if verdict is None and not note:
            raise ValueError("verdict or note: give a verdict on a hypothesis, a note, or both")
        author = args.get("author")
        item = {
            "time": iso_time(time.time_ns()),
            "verdict": verdict,
            "hypothesis": hypothesis if verdict is not None else None,
            "note": note,
            "author": author[:100] if isinstance(author, str) else None,
        }
        report.setdefault("feedback", []).append(item)
        await self._keep(report)
        self.counts["feedback"] += 1
        return {"status": "ok", "report_id": report["id"], "feedback": report["feedback"]}

    def reports(self, limit: int = 20) -> dict[str, Any]:
        """Summaries of the newest reports."""
        items = [
            {
                "id": r.get("id"),
                "created": r.get("created"),
                "signature": r.get("signature"),
                "incident": r.get("incident"),
                "top": (r.get("hypotheses") or [None])[0],
                "feedback": len(r.get("feedback", [])),
            }
            for r in self.book.newest(limit)
        ]
        return {"reports": items, "metadata": {"total_count": len(self.book.reports)}}

    def report(self, report_id: str) -> dict[str, Any]:
        report = self.book.get(report_id)
        if report is None:
            raise ValueError(f"report_id: {report_id[:80]!r} is not a kept report")
        return report

    # -- delivery ---------------------------------------------------------------------

    async def _deliver(self, notifier: Notifier, delivery: _Delivery) -> None:
        """Send each queued report, retried with exponential backoff; its ``delivery``
        entry (kept on disk) says how it went, so a stop mid-way is resumed at start."""
        while True:
            report = await delivery.queue.get()
            state = report.setdefault("delivery", {}).setdefault(notifier.name, {})
            for attempt in range(self.config.retries + 1):
                state["attempts"] = state.get("attempts", 0) + 1
                try:
                    await notifier.send(report)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    delivery.counts["failed_attempts"] += 1
                    delivery.last_error = state["error"] = f"{type(exc).__name__}: {exc}"[:300]
                    if attempt == self.config.retries:
                        delivery.counts["gave_up"] += 1
                        state["status"] = "gave_up"
                        _log.warning("pulse: %s gave up on report %s", notifier.name, report["id"])
                        break
                    backoff = float(self.config.retry_backoff) * 2**attempt
                    await asyncio.sleep(min(_MAX_BACKOFF_S, backoff))
                else:
                    delivery.counts["sent"] += 1
                    state["status"] = "sent"
                    break
            await self._keep(report)


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
