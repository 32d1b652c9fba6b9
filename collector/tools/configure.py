"""The ``configure`` tool: what Gasoline keeps and shows (buffers, noise rules, custom
events, redaction patterns) and the saved baselines ``analyze regression`` compares to."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from collector.baselines import BASELINE, load_baseline, save_baseline, snapshot
from collector.bounded import Answer
from collector.errors import DecodeError
from collector.events import parse_event
from collector.filters import NoiseRule
from collector.model import LEVELS
from collector.pipeline import Pipeline
from collector.redact import PatternError
from collector.store import Store
from collector.tools.target import ToolInputError

__all__ = [
    "CONFIGURE_ACTIONS",
    "Buffer",
    "Configurator",
    "ConfigureAction",
    "ConfigureAnswer",
    "Op",
]


class ConfigureAction(StrEnum):
    """What ``configure`` can do; the MCP schema's ``action`` is generated from this.
    ``save_checkpoint`` saves a named baseline, ``set_baseline`` the default one."""

    CLEAR = "clear"
    NOISE_RULE = "noise_rule"
    CUSTOM_EVENT = "custom_event"
    SAVE_CHECKPOINT = "save_checkpoint"
    SET_BASELINE = "set_baseline"
    REDACTION = "redaction"
    FEEDBACK = "feedback"


class Buffer(StrEnum):
    """What ``clear`` empties."""

    ALL = "all"
    SPANS = "spans"
    RECORDS = "records"


class Op(StrEnum):
    """What ``noise_rule`` and ``redaction`` do with their list."""

    ADD = "add"
    REMOVE = "remove"
    LIST = "list"


CONFIGURE_ACTIONS = tuple(ConfigureAction)


class ConfigureAnswer(Answer, total=False):
    """``configure``: ``status`` and what changed, by action (``noise_rule op=list``
    answers ``rules`` alone; ``feedback`` is TracePulse's ``FeedbackAnswer``)."""

    status: str  # ok
    cleared: dict[str, int]  # clear: spans/records emptied
    rules: list[dict[str, Any]]  # noise_rule list
    rule: dict[str, Any]  # noise_rule add
    removed: str  # noise_rule remove: the rule id
    event_id: str  # custom_event
    path: str  # save_checkpoint, set_baseline: the file written
    operations: int
    key_patterns: list[str]  # redaction
    added_at_runtime: list[str]


class Configurator:
    """Holds the noise rules (``observe`` hides what they match) and acts on the store,
    the pipeline's redactor and the baselines saved under ``baselines``. Loop only."""

    def __init__(self, store: Store, pipeline: Pipeline, baselines: Path) -> None:
        self.store = store
        self.pipeline = pipeline
        self.baselines = baselines
        self.noise: list[NoiseRule] = []
        self._next_rule = 1

    async def configure(self, args: Mapping[str, Any]) -> ConfigureAnswer:
        """Run ``action``; the answer says what changed."""
        action = args.get("action")
        if action == ConfigureAction.CLEAR:
            return self._clear(args.get("buffer", Buffer.ALL))
        if action == ConfigureAction.NOISE_RULE:
            return self._noise_rule(args)
        if action == ConfigureAction.CUSTOM_EVENT:
            return self._custom_event(args)
        if action == ConfigureAction.FEEDBACK:
            raise ToolInputError("action: feedback needs the daemon's TracePulse; ask the daemon")
        if action in (ConfigureAction.SAVE_CHECKPOINT, ConfigureAction.SET_BASELINE):
            return await self._save(str(action), args)
        if action == ConfigureAction.REDACTION:
            return self._redaction(args)
        raise ToolInputError(
            f"action: {action!r} is not a configure action (one of: {', '.join(CONFIGURE_ACTIONS)})"
        )

    async def _save(self, action: str, args: Mapping[str, Any]) -> ConfigureAnswer:
        """save_checkpoint NAME: the current figures. set_baseline: the current figures, or
        those of checkpoint NAME, become what ``analyze regression`` compares against."""
        name = args.get("name")
        if action == ConfigureAction.SAVE_CHECKPOINT:
            if not name:
                raise ToolInputError("name: required for save_checkpoint, e.g. 'before-fix'")
            data = snapshot(self.store)
        else:
            data = (
                await asyncio.to_thread(load_baseline, self.baselines, str(name))
                if name
                else snapshot(self.store)
            )
        target = str(name) if action == ConfigureAction.SAVE_CHECKPOINT else BASELINE
        path = await asyncio.to_thread(save_baseline, self.baselines, target, data)
        return {"status": "ok", "path": str(path.resolve()), "operations": len(data["operations"])}

    def _redaction(self, args: Mapping[str, Any]) -> ConfigureAnswer:
        """Key patterns may be added at run time; only those added so can be removed."""
        redactor = self.pipeline.redactor
        if redactor is None:
            raise ToolInputError(
                "redaction is off; add `processors: {redaction: {}}` to the "
                "config and list it in the pipelines"
            )
        op = args.get("op", Op.LIST)
        pattern = args.get("pattern")
        if op in (Op.ADD, Op.REMOVE) and not pattern:
            raise ToolInputError(f"pattern: required for op={op}")
        try:
            if op == Op.ADD:
                redactor.add_pattern(str(pattern))
            elif op == Op.REMOVE:
                redactor.remove_pattern(str(pattern))
            elif op != Op.LIST:
                raise ToolInputError(f"op: {op!r} must be add, remove or list")
        except PatternError as exc:
            raise ToolInputError(f"pattern: {exc}") from None
        return {
            "status": "ok",
            "key_patterns": redactor.patterns,
            "added_at_runtime": redactor.added_patterns,
        }

    def _clear(self, buffer: str) -> ConfigureAnswer:
        if buffer not in tuple(Buffer):
            raise ToolInputError(f"buffer: {buffer!r} must be all, spans or records")
        cleared: dict[str, int] = {}
        if buffer in (Buffer.ALL, Buffer.SPANS):
            cleared["spans"] = self.store.spans.span_count
            self.store.spans.clear()
        if buffer in (Buffer.ALL, Buffer.RECORDS):
            cleared["records"] = len(self.store.records)
            self.store.records.clear()
        return {"status": "ok", "cleared": cleared}

    def _noise_rule(self, args: Mapping[str, Any]) -> ConfigureAnswer:
        op = args.get("op", Op.ADD)
        if op == Op.LIST:
            return {"rules": [_rule_doc(r) for r in self.noise]}
        if op == Op.REMOVE:
            rule_id = str(args.get("rule_id", ""))
            before = len(self.noise)
            self.noise[:] = [r for r in self.noise if r.id != rule_id]
            if len(self.noise) == before:
                raise ToolInputError(
                    f"rule_id: no noise rule {rule_id!r} (op='list' shows the rules)"
                )
            return {"status": "ok", "removed": rule_id}
        if op != Op.ADD:
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

    def _custom_event(self, args: Mapping[str, Any]) -> ConfigureAnswer:
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
