"""TracePulse: triggers in, a ranked report out, delivered and kept.

The pipeline hands every stored batch to ``Pulse.watch`` (never blocking: a trigger
only schedules work). One incident makes one report: a trigger whose signature
(event type, service, error code) was reported less than ``pulse.rate_limit`` ago is
folded into that report (``folded_duplicates`` when it carries a correlation id already
seen, ``rate_limited`` otherwise). ``analysis.Analyst`` makes the report. Delivery runs
off the ingest path: one bounded queue and worker per notifier, retried with exponential
backoff, every attempt counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypedDict, cast

from collector.bounded import Answer
from collector.config.sections import PulseConfig
from collector.model import Record, SpanBatch
from collector.pulse.analysis import Analyst, PulseReport, Tools
from collector.pulse.reports import VERDICTS, ReportBook, markdown
from collector.pulse.sysmap import load_map_file
from collector.pulse.trigger import Trigger, rule_matches_spans, trigger_of
from collector.query import iso_time
from collector.store import Store

__all__ = [
    "FeedbackAnswer",
    "IncidentSummary",
    "Notifier",
    "Pulse",
    "PulseReport",
    "ReportSummary",
    "ReportsPage",
    "TopHypothesis",
]


class FeedbackAnswer(Answer):
    """``configure action=feedback``: the report's feedback so far, the new item last."""

    status: str
    report_id: str
    feedback: list[dict[str, Any]]


class TopHypothesis(TypedDict):
    """A report's first hypothesis as the report list shows it; its ``evidence`` and
    ``reasoning`` are in the report (``analyze type=report``, ``/v1/reports/{id}``)."""

    key: str  # the hypothesis to give feedback on, e.g. "service:ServiceB"
    cause: str
    service: str
    confidence: float


class IncidentSummary(TypedDict, total=False):
    """The scalars of a report's ``incident``; its ``correlation_ids`` and ``details``
    are in the report."""

    event_type: str
    service: str
    error_code: str
    correlation_id: str | None
    priority: str
    via: str
    time: str
    occurrences: int


class ReportSummary(TypedDict):
    """One item of ``observe what=reports`` (``GET /v1/reports``, the ``/reports`` page):
    a few hundred bytes whatever the report holds, so a full list fits in one answer."""

    id: str
    created: str
    signature: str
    incident: IncidentSummary
    top: TopHypothesis | None
    feedback: int  # how many verdicts and notes
    delivery: dict[str, Any]  # per notifier: status, attempts, last error


class ReportsPage(Answer):
    """``Pulse.reports``: the newest summaries; ``metadata.total_count`` counts all kept."""

    reports: list[ReportSummary]


_log = logging.getLogger(__name__)

_QUEUE = 100  # reports waiting per notifier
_MAX_BACKOFF_S = 30.0
_MAX_INCIDENTS = 4096  # signatures remembered for folding
_REDELIVER_S = 3600  # at start, reports younger than this not yet delivered are sent


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
        self._monotonic = monotonic
        declared = load_map_file(config.map_file) if config.map_file else dict(config.services)
        self.declared = declared
        self.analyst = Analyst(
            store,
            tools,
            declared,
            window=float(config.window),
            changes_lookback=float(config.changes_lookback),
            monotonic=monotonic,
        )
        self.book = ReportBook(
            Path(config.reports_dir).expanduser(), max_reports=config.max_reports
        )
        self.counts: Counter[str] = Counter()
        self._incidents: dict[str, _Incident] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._writes: set[asyncio.Future[None]] = set()
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
            built = await self.analyst.report(
                incident.trigger,
                correlation_ids=incident.correlation_ids,
                occurrences=incident.occurrences,
                votes=self.book.votes(incident.trigger.signature),
            )
        except Exception:
            self.counts["analysis_failed"] += 1
            _log.exception("pulse: analysis of %s failed", incident.trigger.signature)
            return
        report = cast(dict[str, Any], built)  # from here on, a document the book keeps
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

    # -- feedback and reads -----------------------------------------------------------

    async def feedback(self, args: Mapping[str, Any]) -> FeedbackAnswer:
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
        keys = [h.get("key") for h in report.get("hypotheses", []) if isinstance(h, dict)]
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

    def reports(self, limit: int = 20) -> ReportsPage:
        """Summaries of the newest ``limit`` reports, newest first."""
        items = [_summary(r) for r in self.book.newest(limit)]
        return {"reports": items, "metadata": {"total_count": len(self.book.reports)}}

    def report(self, report_id: str) -> PulseReport:
        report = self.book.get(report_id)
        if report is None:
            raise ValueError(f"report_id: {report_id[:80]!r} is not a kept report")
        return cast(PulseReport, report)  # the book keeps the documents Analyst built

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


_INCIDENT_SUMMARY = frozenset(IncidentSummary.__annotations__)
_TOP_HYPOTHESIS = tuple(TopHypothesis.__annotations__)


def _summary(report: Mapping[str, Any]) -> ReportSummary:
    """``report`` as the list shows it. A kept document may lack keys (an older or
    hand-edited file): they come out empty, never as a crash."""
    incident = report.get("incident")
    first = (report.get("hypotheses") or [None])[0]
    top = (
        cast(TopHypothesis, {k: first.get(k) for k in _TOP_HYPOTHESIS})
        if isinstance(first, dict)
        else None
    )
    return {
        "id": report.get("id", ""),
        "created": report.get("created", ""),
        "signature": report.get("signature", ""),
        "incident": cast(
            IncidentSummary,
            {k: v for k, v in incident.items() if k in _INCIDENT_SUMMARY}
            if isinstance(incident, dict)
            else {},
        ),
        "top": top,
        "feedback": len(report.get("feedback") or []),
        "delivery": report.get("delivery") or {},
    }
