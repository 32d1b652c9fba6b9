"""The agent's tools over the daemon's data: ``observe``, ``analyze``, ``configure``.

Transport-free: the MCP server calls ``Toolbox.run`` in process, or forwards the same
arguments to the daemon's ``POST /v1/tools/{name}``, so every client sees one answer.
Arguments arrive already shaped by the tool schemas; this module checks their meaning
and raises ``ToolInputError`` with a message saying what was wrong and what is allowed.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from collector.analysis.causality import analyze_causality
from collector.analysis.latency import analyze_latency
from collector.bounded import MAX_ANSWER_BYTES, fit
from collector.checkpoints import BASELINE, compare, load_checkpoint, save_checkpoint, snapshot
from collector.errors import CollectorError, DecodeError
from collector.events import parse_event
from collector.filters import NoiseRule, build_filter
from collector.generate import GENERATORS, generate
from collector.interact import Interactor
from collector.model import LEVELS, Record, parse_hex_id
from collector.observe import VIEWS, ViewError, observe
from collector.pipeline import Pipeline
from collector.query import record_event, timeline, trace_tree
from collector.redact import PatternError
from collector.scan import newest_matches
from collector.store import Store
from collector.trace_tree import TraceTree

__all__ = ["ANALYSES", "CONFIGURE_ACTIONS", "TOOLS", "ToolInputError", "Toolbox"]

ANALYSES = ("causality", "latency", "correlate", "regression")
CONFIGURE_ACTIONS = (
    "clear",
    "noise_rule",
    "custom_event",
    "save_checkpoint",
    "set_baseline",
    "redaction",
)
TOOLS = ("observe", "analyze", "configure", "generate", "interact")
_WINDOW_NS = 50_000_000  # records this close to a trace's span are inferred to belong
_MAX_INFERRED = 20


_MAX_EVENT_IDS = 20


class ToolInputError(CollectorError):
    """The arguments cannot be acted on; the message says what to change."""


class Toolbox:
    """Runs tools against one daemon's store and pipeline. Not thread-safe: loop only."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        *,
        interactor: Interactor | None = None,
        checkpoints: Path | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self.noise: list[NoiseRule] = []
        self._next_rule = 1
        self._interactor = interactor
        self._checkpoints = checkpoints or Path(".gasoline") / "checkpoints"
        self._handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "observe": self.observe,
            "analyze": self.analyze,
            "configure": self.configure,
            "generate": self.generate,
            "interact": self.interact,
        }

    async def run(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run tool ``name``; the answer carries ``metadata.query_time_ms``, and is cut to
        ``MAX_ANSWER_BYTES`` of JSON with ``metadata.truncated`` saying what was cut."""
        handler = self._handlers.get(name)
        if handler is None:
            raise ToolInputError(f"unknown tool {name!r} (one of: {', '.join(TOOLS)})")
        started = time.perf_counter()
        try:
            result = handler({k: v for k, v in args.items() if v is not None})
            answer: dict[str, Any] = await result if inspect.isawaitable(result) else result
        except (ValueError, ViewError) as exc:  # ViewError, CheckpointError, InteractError
            raise ToolInputError(str(exc)) from None
        answer = fit(answer, MAX_ANSWER_BYTES)
        answer.setdefault("metadata", {})["query_time_ms"] = round(
            (time.perf_counter() - started) * 1000, 3
        )
        return answer

    # -- observe ----------------------------------------------------------------------

    def observe(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("event_ids"):
            return self._events_in_full(args["event_ids"])
        what = args.get("what", "timeline")
        if not isinstance(what, str) or what not in VIEWS:
            raise ToolInputError(f"what: {what!r:.100} is not a view (one of: {', '.join(VIEWS)})")
        f = build_filter(
            args.get("filter") or {},
            limit=args.get("limit"),
            cursor=args.get("after_cursor"),
            default_limit=20,
            noise=self.noise,
            resolve_trace=self.store.resolve_trace_id,
        )
        return {"view": what, **observe(self.store, what, f, span_ids=args.get("span_ids"))}

    def _events_in_full(self, ids: Any) -> dict[str, Any]:
        """Log records and events by id, uncut: a traceback with every line. The answer cap
        still applies, so one record of a megabyte is cut there, with a note."""
        if not isinstance(ids, list) or len(ids) > _MAX_EVENT_IDS:
            raise ToolInputError(f"event_ids: expected a list of up to {_MAX_EVENT_IDS} ids")
        events, missing = [], []
        for raw in ids:
            text = str(raw)
            if text.startswith("span:"):
                raise ToolInputError(
                    f"event_ids: {text!r:.40} is a span; observe what='trace' with span_ids "
                    "shows a span in full"
                )
            record = self.store.records.get(int(text)) if text.isdigit() else None
            if record is None:
                missing.append(text[:40])
            else:
                events.append(record_event(record))
        metadata: dict[str, Any] = {"total_count": len(events)}
        if missing:
            metadata["not_stored"] = missing
        return {"view": "events", "events": events, "metadata": metadata}

    # -- analyze ----------------------------------------------------------------------

    async def analyze(self, args: dict[str, Any]) -> dict[str, Any]:
        kind = args.get("type")
        if kind not in ANALYSES:
            raise ToolInputError(
                f"type: {kind!r} is not an analysis (one of: {', '.join(ANALYSES)})"
            )
        if kind == "correlate":
            return self._correlate(args)
        if kind == "regression":
            return await self._regression(args)
        tree = self._tree_for(args)
        if kind == "causality":
            return analyze_causality(tree)
        return analyze_latency(tree)

    def _tree_for(self, args: dict[str, Any]) -> TraceTree:
        """The trace named by ``trace_id``, or the one holding ``span_id`` or ``event_id``."""
        trace_id = None
        if "trace_id" in args:
            try:
                trace_id = self.store.resolve_trace_id(str(args["trace_id"]))
            except ValueError as exc:
                raise ToolInputError(f"trace_id: {exc}") from None
        elif "span_id" in args:
            trace_id = self._trace_of_span(str(args["span_id"]))
        elif "event_id" in args:
            trace_id = self._trace_of_event(str(args["event_id"]))
        else:
            raise ToolInputError(
                "give trace_id, or span_id / event_id of the symptom "
                "(observe what='errors' lists them)"
            )
        tree = trace_tree(self.store, trace_id)
        if tree is None:
            raise ToolInputError(
                f"trace {trace_id.hex()} is not in the store (never received, or evicted)"
            )
        return tree

    def _trace_of_span(self, text: str) -> bytes:
        span_id = parse_hex_id(text.strip().lower().removeprefix("span:"), 8)
        if span_id is None:
            raise ToolInputError(f"span_id: {text!r} is not a span id (16 hex digits)")
        span = self.store.spans.find_span(span_id)
        if span is None:
            raise ToolInputError(f"span {text} is not in the store (never received, or evicted)")
        return span.trace_id

    def _trace_of_event(self, text: str) -> bytes:
        if text.startswith("span:"):
            return self._trace_of_span(text)
        record = self._record(text)
        if record.trace_id is None:
            raise ToolInputError(
                f"event {text} is not linked to a trace; analyze it with type='correlate' "
                "and its correlation_id"
            )
        return record.trace_id

    def _record(self, text: str) -> Record:
        record = self.store.records.get(int(text)) if text.isdigit() else None
        if record is None:
            raise ToolInputError(f"event_id: {text!r} is not a stored event or log record id")
        return record

    def _correlate(self, args: dict[str, Any]) -> dict[str, Any]:
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
            tree = self._tree_for(args)
            f = build_filter({"trace_id": tree.trace_id.hex()}, limit=1000)
            trace_ids = {tree.trace_id}
        answer = timeline(self.store, f)
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
            items += self._inferred(tree)
        return {
            "linked": items,
            "trace_ids": sorted(t.hex() for t in trace_ids),
            "metadata": {"total_count": len(items), "cursor_next": None},
        }

    def _inferred(self, tree: TraceTree) -> list[dict[str, Any]]:
        services = {n.span.service for n in tree.nodes.values()}
        f = build_filter({}, limit=_MAX_INFERRED)
        f.since_ns = tree.start_ns - _WINDOW_NS
        f.until_ns = tree.end_ns + _WINDOW_NS
        f.kinds = frozenset({"log", "event"})
        f.record_match = lambda r: r.trace_id is None
        found = newest_matches(self.store, f, _MAX_INFERRED)
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

    async def _regression(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args.get("baseline", BASELINE))
        baseline = await asyncio.to_thread(load_checkpoint, self._checkpoints, name)
        answer: dict[str, Any] = compare(baseline, snapshot(self.store))
        return answer

    # -- generate ---------------------------------------------------------------------

    def generate(self, args: dict[str, Any]) -> dict[str, Any]:
        """A reproduction script, a failing test, a PR summary or a timeline report."""
        kind = args.get("type")
        if kind not in GENERATORS:
            raise ToolInputError(
                f"type: {kind!r} is not a generator (one of: {', '.join(GENERATORS)})"
            )
        return generate(
            str(kind),
            self._tree_for(args),
            format=args.get("format"),
            base_url=args.get("base_url"),
        )

    # -- interact ---------------------------------------------------------------------

    async def interact(self, args: dict[str, Any]) -> dict[str, Any]:
        if self._interactor is None:
            raise ToolInputError("interact is not available in this process")
        return await self._interactor.run(str(args.get("action")), args.get("name"))

    # -- configure --------------------------------------------------------------------

    async def configure(self, args: dict[str, Any]) -> dict[str, Any]:
        action = args.get("action")
        if action == "clear":
            return self._clear(args.get("buffer", "all"))
        if action == "noise_rule":
            return self._noise_rule(args)
        if action == "custom_event":
            return self._custom_event(args)
        if action in ("save_checkpoint", "set_baseline"):
            return await self._save(action, args)
        if action == "redaction":
            return self._redaction(args)
        raise ToolInputError(
            f"action: {action!r} is not a configure action (one of: {', '.join(CONFIGURE_ACTIONS)})"
        )

    async def _save(self, action: str, args: dict[str, Any]) -> dict[str, Any]:
        """save_checkpoint NAME: the current figures. set_baseline: the current figures, or
        those of checkpoint NAME, become what ``analyze regression`` compares against."""
        name = args.get("name")
        if action == "save_checkpoint":
            if not name:
                raise ToolInputError("name: required for save_checkpoint, e.g. 'before-fix'")
            data = snapshot(self.store)
        else:
            data = (
                await asyncio.to_thread(load_checkpoint, self._checkpoints, str(name))
                if name
                else snapshot(self.store)
            )
        target = str(name) if action == "save_checkpoint" else BASELINE
        path = await asyncio.to_thread(save_checkpoint, self._checkpoints, target, data)
        return {"status": "ok", "path": str(path.resolve()), "operations": len(data["operations"])}

    def _redaction(self, args: dict[str, Any]) -> dict[str, Any]:
        """Key patterns may be added at run time; only those added so can be removed."""
        redactor = self.pipeline.redactor
        if redactor is None:
            raise ToolInputError(
                "redaction is off; add `processors: {redaction: {}}` to the "
                "config and list it in the pipelines"
            )
        op = args.get("op", "list")
        pattern = args.get("pattern")
        if op in ("add", "remove") and not pattern:
            raise ToolInputError(f"pattern: required for op={op}")
        try:
            if op == "add":
                redactor.add_pattern(str(pattern))
            elif op == "remove":
                redactor.remove_pattern(str(pattern))
            elif op != "list":
                raise ToolInputError(f"op: {op!r} must be add, remove or list")
        except PatternError as exc:
            raise ToolInputError(f"pattern: {exc}") from None
        return {
            "status": "ok",
            "key_patterns": redactor.patterns,
            "added_at_runtime": redactor.added_patterns,
        }

    def _clear(self, buffer: str) -> dict[str, Any]:
        if buffer not in ("all", "spans", "records"):
            raise ToolInputError(f"buffer: {buffer!r} must be all, spans or records")
        cleared = {}
        if buffer in ("all", "spans"):
            cleared["spans"] = self.store.spans.span_count
            self.store.spans.clear()
        if buffer in ("all", "records"):
            cleared["records"] = len(self.store.records)
            self.store.records.clear()
        return {"status": "ok", "cleared": cleared}

    def _noise_rule(self, args: dict[str, Any]) -> dict[str, Any]:
        op = args.get("op", "add")
        if op == "list":
            return {"rules": [_rule_doc(r) for r in self.noise]}
        if op == "remove":
            rule_id = str(args.get("rule_id", ""))
            before = len(self.noise)
            self.noise = [r for r in self.noise if r.id != rule_id]
            if len(self.noise) == before:
                raise ToolInputError(
                    f"rule_id: no noise rule {rule_id!r} (op='list' shows the rules)"
                )
            return {"status": "ok", "removed": rule_id}
        if op != "add":
            raise ToolInputError(f"op: {op!r} must be add, remove or list")
        rule_args = args.get("rule") or {}
        pattern = rule_args.get("pattern")
        try:
            compiled = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise ToolInputError(f"rule.pattern: {pattern!r} is not a regex ({exc})") from None
        level = rule_args.get("level")
        if level is not None and level not in LEVELS:
            raise ToolInputError(f"rule.level: {level!r} must be one of {', '.join(LEVELS)}")
        if compiled is None and not any(rule_args.get(k) for k in ("source", "service", "level")):
            raise ToolInputError("rule: give at least one of pattern, source, service, level")
        rule = NoiseRule(
            f"noise-{self._next_rule}",
            compiled,
            rule_args.get("source"),
            rule_args.get("service"),
            level,
        )
        self._next_rule += 1
        self.noise.append(rule)
        return {"status": "ok", "rule": _rule_doc(rule)}

    def _custom_event(self, args: dict[str, Any]) -> dict[str, Any]:
        """Insert an event on the timeline (optionally on a trace), as POST /event would."""
        event = dict(args.get("event") or {})
        event.setdefault("source", "custom")
        try:
            record = parse_event(event, "event", time.time_ns())
        except DecodeError as exc:
            raise ToolInputError(str(exc)) from None
        self.pipeline.offer_records([record])
        return {"status": "ok", "event_id": str(record.id)}


def _rule_doc(rule: NoiseRule) -> dict[str, Any]:
    return {
        k: v
        for k, v in {
            "rule_id": rule.id,
            "pattern": rule.pattern.pattern if rule.pattern else None,
            "source": rule.source,
            "service": rule.service,
            "level": rule.level,
        }.items()
        if v is not None
    }
