"""The ``analyze`` tool: why a trace failed or was slow, what is linked to it, and what
regressed against a saved baseline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from collector.analysis.causality import CausalityAnswer, analyze_causality, analyze_window
from collector.analysis.changes import ChangesAnswer, analyze_changes
from collector.analysis.compare import CompareAnswer, compare_to_baseline, compare_traces
from collector.analysis.latency import LatencyAnswer, analyze_latency
from collector.baselines import BASELINE, RegressionAnswer, compare, load_baseline, snapshot
from collector.bounded import Answer
from collector.filters import build_filter, parse_time_ns
from collector.model import Record
from collector.query import record_event, timeline
from collector.scan import newest_matches
from collector.store import Store
from collector.tools.target import ToolInputError, record_of, tree_for
from collector.trace_tree import TraceTree

__all__ = [
    "ANALYSES",
    "Analysis",
    "AnalyzeAnswer",
    "CausalityAnswer",
    "ChangesAnswer",
    "CompareAnswer",
    "CorrelateAnswer",
    "LatencyAnswer",
    "RegressionAnswer",
    "analyze",
]


class Analysis(StrEnum):
    """What ``analyze`` can do; the MCP schema's ``type`` is generated from this."""

    CAUSALITY = "causality"
    LATENCY = "latency"
    CORRELATE = "correlate"
    REGRESSION = "regression"
    CHANGES = "changes"
    COMPARE = "compare"
    REPORT = "report"


class CorrelateAnswer(Answer):
    """``analyze type=correlate``: timeline items linked to the trace or correlation id,
    each with ``linked_by`` and ``confidence`` (``inferred`` when linked by time)."""

    linked: list[dict[str, Any]]
    trace_ids: list[str]


AnalyzeAnswer = (
    CausalityAnswer
    | LatencyAnswer
    | CorrelateAnswer
    | RegressionAnswer
    | ChangesAnswer
    | CompareAnswer
)
"""What ``analyze`` answers, by ``type``; ``report`` is TracePulse's report (the daemon's)."""

ANALYSES = tuple(Analysis)
_WINDOW_NS = 50_000_000  # records this close to a trace's span are inferred to belong
_MAX_INFERRED = 20
_SYMPTOM_BEFORE_NS = 60_000_000_000  # an untraced symptom: what failed in the minute before
_SYMPTOM_AFTER_NS = 5_000_000_000
_DEFAULT_WINDOW_NS = 5 * 60_000_000_000  # "what broke in the last 5 minutes"


async def analyze(store: Store, baselines: Path, args: Mapping[str, Any]) -> AnalyzeAnswer:
    """Run analysis ``type``; ``regression`` reads saved baselines from ``baselines``."""
    kind = args.get("type")
    if kind not in ANALYSES:
        raise ToolInputError(f"type: {kind!r} is not an analysis (one of: {', '.join(ANALYSES)})")
    if kind == Analysis.CORRELATE:
        return _correlate(store, args)
    if kind == Analysis.REGRESSION:
        return await _regression(store, baselines, args)
    if kind == Analysis.CHANGES:
        return analyze_changes(store, dict(args))
    if kind == Analysis.COMPARE:
        return await _compare(store, baselines, tree_for(store, args), args)
    if kind == Analysis.REPORT:
        raise ToolInputError("type: report needs the daemon's TracePulse; ask the daemon")
    if kind == Analysis.CAUSALITY:
        return _causality(store, args)
    return analyze_latency(tree_for(store, args))


def _causality(store: Store, args: Mapping[str, Any]) -> CausalityAnswer:
    """By trace or span id; by an event or log id (its trace, or without one the minute
    before it); or by a time window (``since``/``until``, default until now)."""
    if "event_id" in args and "trace_id" not in args and "span_id" not in args:
        record = (
            record_of(store, str(args["event_id"])) if str(args["event_id"]).isdigit() else None
        )
        if record is not None and record.trace_id is None:
            return analyze_window(
                store, record.time_ns - _SYMPTOM_BEFORE_NS, record.time_ns + _SYMPTOM_AFTER_NS,
                symptom=record,
            )  # fmt: skip
        if record is not None:
            tree = tree_for(store, {"trace_id": record.trace_id.hex()})  # type: ignore[union-attr]
            return analyze_causality(tree, store, symptom=record)
    if not any(k in args for k in ("trace_id", "span_id", "event_id")) and (
        "since" in args or "until" in args
    ):
        try:
            since = parse_time_ns("since", args.get("since"))
            until = parse_time_ns("until", args.get("until"))
        except ValueError as exc:
            raise ToolInputError(str(exc)) from None
        until = until if until is not None else time.time_ns()
        since = since if since is not None else until - _DEFAULT_WINDOW_NS
        if since > until:
            raise ToolInputError("since: must not be after until")
        return analyze_window(store, since, until)
    return analyze_causality(tree_for(store, args), store)


def _correlate(store: Store, args: Mapping[str, Any]) -> CorrelateAnswer:
    """Everything linked to a trace or correlation id, and how each item was linked.

    Besides items linked by id, records with no trace that happened while the trace
    ran (within ``_WINDOW_NS``) are included as ``inferred``, with a confidence that
    is higher when their service took part in the trace.
    """
    tree = None
    if "correlation_id" in args:
        f = build_filter({"correlation_id": args["correlation_id"]}, limit=1000)
        trace_ids: set[bytes] = set()
    else:
        tree = tree_for(store, args)
        f = build_filter({"trace_id": tree.trace_id.hex()}, limit=1000)
        trace_ids = {tree.trace_id}
    answer = timeline(store, f)
    items = []
    for event in answer["events"]:
        by_correlation = event["kind"] != "span" and event["correlation_id"] == args.get(
            "correlation_id"
        )
        if event["trace_id"]:
            trace_ids.add(bytes.fromhex(event["trace_id"]))
        items.append(
            {
                "linked_by": "correlation_id" if by_correlation else "trace_id",
                "confidence": 1.0,
                **event,
            }
        )
    if tree is not None and tree.nodes:
        items += _inferred(store, tree)
    return {
        "linked": items,
        "trace_ids": sorted(t.hex() for t in trace_ids),
        "metadata": {"total_count": len(items), "cursor_next": None},
    }


def _inferred(store: Store, tree: TraceTree) -> list[dict[str, Any]]:
    services = {n.span.service for n in tree.nodes.values()}
    f = build_filter({}, limit=_MAX_INFERRED)
    f.since_ns = tree.start_ns - _WINDOW_NS
    f.until_ns = tree.end_ns + _WINDOW_NS
    f.kinds = frozenset({"log", "event"})
    f.record_match = lambda r: r.trace_id is None
    found = newest_matches(store, f, _MAX_INFERRED)
    inferred = []
    for _, _, record in reversed(found.items):
        assert isinstance(record, Record)
        confidence = 0.6 if record.service in services else 0.3
        inferred.append(
            {
                "linked_by": "time_window",
                "inferred": True,
                "confidence": confidence,
                **record_event(record),
            }
        )
    return inferred


async def _compare(
    store: Store, baselines: Path, tree: TraceTree, args: Mapping[str, Any]
) -> CompareAnswer:
    """The trace named against the one ``compare_to`` names (a good run, say), or against
    the saved ``baseline``."""
    if "compare_to" in args:
        reference = tree_for(store, {"trace_id": args["compare_to"]})
        return compare_traces(reference, tree)
    if "baseline" in args:
        saved = await asyncio.to_thread(load_baseline, baselines, str(args["baseline"]))
        return compare_to_baseline(tree, saved)
    raise ToolInputError(
        "compare needs compare_to (the trace id of a good run of the same operation) or "
        "baseline (a checkpoint name); trace_id (or span_id / event_id) names the trace "
        "in question"
    )


async def _regression(store: Store, baselines: Path, args: Mapping[str, Any]) -> RegressionAnswer:
    name = str(args.get("baseline", BASELINE))
    baseline = await asyncio.to_thread(load_baseline, baselines, name)
    return compare(baseline, snapshot(store))
