"""The agent's five tools over the daemon's data, one module each: ``observe``,
``analyze``, ``configure``, ``generate``, ``interact``.

Transport-free: the MCP server calls ``Toolbox.run`` in process, or forwards the same
arguments to the daemon's ``POST /v1/tools/{name}``, so every client sees one answer.
Arguments arrive already shaped by the tool schemas, which the MCP server generates from
the vocabularies declared here (``View``, ``Analysis``, ``ConfigureAction``, ...); each
tool module checks what its arguments mean and raises ``ToolInputError`` with a message
saying what was wrong and what is allowed.

Each answer has a declared shape, a ``TypedDict`` next to the code that builds it (all
derive from ``collector.bounded.Answer``, whose ``metadata`` is ``Metadata``):

- observe: ``ObserveAnswer`` (``collector.tools.observe``), the view's ``ObservePage``
  (``collector.query``); what='reports' is TracePulse's (``Pulse.reports``), one
  ``ReportSummary`` (``collector.pulse.engine``) a report.
- analyze: ``AnalyzeAnswer`` (``collector.tools.analyze``), one of ``CausalityAnswer``
  (``collector.analysis.causality``, hypotheses ``HypothesisDoc``), ``LatencyAnswer``
  (``collector.analysis.latency``), ``CorrelateAnswer`` (``collector.tools.analyze``),
  ``RegressionAnswer`` (``collector.baselines``), ``ChangesAnswer``
  (``collector.analysis.changes``), ``CompareAnswer`` (``collector.analysis.compare``);
  type=report answers TracePulse's ``PulseReport`` (``collector.pulse.analysis``).
- configure: ``ConfigureAnswer`` (``collector.tools.configure``); action=feedback
  answers TracePulse's ``FeedbackAnswer`` (``collector.pulse.engine``).
- generate: ``GenerateAnswer`` (``collector.generate``).
- interact: ``InteractAnswer`` (``collector.interact``).

``Toolbox.run`` answers them as JSON mappings, the transport's shape; tests/test_answers.py
checks each tool's answer on real data carries only keys its type declares.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector.bounded import MAX_ANSWER_BYTES, fit
from collector.interact import Interactor
from collector.observe import ViewError
from collector.pipeline import Pipeline
from collector.store import Store
from collector.tools.analyze import ANALYSES, Analysis, AnalyzeAnswer, analyze
from collector.tools.configure import (
    CONFIGURE_ACTIONS,
    Buffer,
    Configurator,
    ConfigureAction,
    ConfigureAnswer,
    Op,
)
from collector.tools.generate import Format, GenerateAnswer, Generator, generate
from collector.tools.interact import InteractAction, InteractAnswer, interact
from collector.tools.observe import ObserveAnswer, View, observe
from collector.tools.target import ToolInputError

if TYPE_CHECKING:
    from collector.pulse import Pulse
    from collector.pulse.engine import FeedbackAnswer, PulseReport

__all__ = [
    "ANALYSES",
    "CONFIGURE_ACTIONS",
    "TOOLS",
    "Analysis",
    "AnalyzeAnswer",
    "Buffer",
    "ConfigureAction",
    "ConfigureAnswer",
    "Format",
    "GenerateAnswer",
    "Generator",
    "InteractAction",
    "InteractAnswer",
    "ObserveAnswer",
    "Op",
    "Tool",
    "ToolInputError",
    "Toolbox",
    "View",
]


class Tool(StrEnum):
    """The tools, by the names the MCP server and ``POST /v1/tools/{name}`` use."""

    OBSERVE = "observe"
    ANALYZE = "analyze"
    CONFIGURE = "configure"
    GENERATE = "generate"
    INTERACT = "interact"


TOOLS = tuple(Tool)


class Toolbox:
    """Runs tools against one daemon's store and pipeline. Not thread-safe: loop only."""

    def __init__(
        self,
        store: Store,
        pipeline: Pipeline,
        *,
        interactor: Interactor | None = None,
        baselines: Path | None = None,
    ) -> None:
        self.store = store
        self.pipeline = pipeline
        self._baselines = baselines or Path(".gasoline") / "checkpoints"
        self._configurator = Configurator(store, pipeline, self._baselines)
        self.pulse: Pulse | None = None  # TracePulse's reports, once the daemon attaches it
        self._handlers: dict[Tool, Callable[[dict[str, Any]], Any]] = {
            Tool.OBSERVE: self._observe,
            Tool.ANALYZE: self._analyze,
            Tool.CONFIGURE: self._configure,
            Tool.GENERATE: lambda args: generate(store, args),
            Tool.INTERACT: lambda args: interact(interactor, args),
        }

    def _observe(self, args: dict[str, Any]) -> ObserveAnswer:
        if args.get("what") == View.REPORTS and self.pulse is not None:
            limit = args.get("limit", 20)
            if not isinstance(limit, int) or not 1 <= limit <= 1000:
                raise ToolInputError("limit: expected a number of reports, 1-1000")
            page = self.pulse.reports(limit)
            return {"view": "reports", "reports": page["reports"], "metadata": page["metadata"]}
        return observe(self.store, self._configurator.noise, args)

    async def _analyze(self, args: dict[str, Any]) -> AnalyzeAnswer | PulseReport:
        if args.get("type") == Analysis.REPORT and self.pulse is not None:
            report_id = args.get("report_id")
            if not isinstance(report_id, str):
                raise ToolInputError("report_id: required for type report (observe what='reports')")
            return self.pulse.report(report_id).copy()
        return await analyze(self.store, self._baselines, args)

    async def _configure(self, args: dict[str, Any]) -> ConfigureAnswer | FeedbackAnswer:
        if args.get("action") == ConfigureAction.FEEDBACK and self.pulse is not None:
            return await self.pulse.feedback(args)
        return await self._configurator.configure(args)

    async def run(self, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Run tool ``name``; the answer carries ``metadata.query_time_ms``, and is cut to
        ``MAX_ANSWER_BYTES`` of JSON with ``metadata.truncated`` saying what was cut."""
        if name not in TOOLS:
            raise ToolInputError(f"unknown tool {name!r} (one of: {', '.join(TOOLS)})")
        handler = self._handlers[Tool(name)]
        started = time.perf_counter()
        try:
            result = handler({k: v for k, v in args.items() if v is not None})
            answer: dict[str, Any] = await result if inspect.isawaitable(result) else result
        except (ValueError, ViewError) as exc:  # ViewError, BaselineError, InteractError
            raise ToolInputError(str(exc)) from None
        answer = fit(answer, MAX_ANSWER_BYTES)
        answer.setdefault("metadata", {})["query_time_ms"] = round(
            (time.perf_counter() - started) * 1000, 3
        )
        return answer
