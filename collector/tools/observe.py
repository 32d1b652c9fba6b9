"""The ``observe`` tool: a view of what happened (``collector.observe`` draws the views),
or log records and events by id, in full."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from collector.bounded import Metadata
from collector.filters import NoiseRule, build_filter
from collector.observe import VIEWS, ObservePage, View
from collector.observe import observe as draw_view
from collector.pulse.engine import ReportSummary
from collector.query import record_event
from collector.store import Store
from collector.tools.target import ToolInputError

__all__ = ["MAX_EVENT_IDS", "ObserveAnswer", "ObservePage", "View", "observe"]

MAX_EVENT_IDS = 20


class ObserveAnswer(ObservePage, total=False):
    """``observe``: the view's page (``ObservePage``), named by ``view``; ``events`` when
    asked by ``event_ids``."""

    view: str  # the view drawn, or "events" for event_ids
    reports: list[ReportSummary]  # reports: TracePulse's (``Pulse.reports``), newest first


def observe(store: Store, noise: Sequence[NoiseRule], args: Mapping[str, Any]) -> ObserveAnswer:
    """The view ``what`` (default ``timeline``) through ``filter``, with ``noise`` hidden."""
    if args.get("event_ids"):
        return _events_in_full(store, args["event_ids"])
    what = args.get("what", View.TIMELINE)
    if not isinstance(what, str) or what not in VIEWS:
        raise ToolInputError(f"what: {what!r:.100} is not a view (one of: {', '.join(View)})")
    f = build_filter(
        args.get("filter") or {},
        limit=args.get("limit"),
        cursor=args.get("after_cursor"),
        default_limit=20,
        noise=noise,
        resolve_trace=store.resolve_trace_id,
    )
    page = draw_view(store, what, f, span_ids=args.get("span_ids"))
    return cast(ObserveAnswer, {"view": str(what), **page})  # an ObservePage, named


def _events_in_full(store: Store, ids: Any) -> ObserveAnswer:
    """Log records and events by id, uncut: a traceback with every line. The answer cap
    still applies, so one record of a megabyte is cut there, with a note."""
    if not isinstance(ids, list) or len(ids) > MAX_EVENT_IDS:
        raise ToolInputError(f"event_ids: expected a list of up to {MAX_EVENT_IDS} ids")
    events, missing = [], []
    for raw in ids:
        text = str(raw)
        if text.startswith("span:"):
            raise ToolInputError(
                f"event_ids: {text!r:.40} is a span; observe what='trace' with span_ids "
                "shows a span in full"
            )
        record = store.records.get(int(text)) if text.isdigit() else None
        if record is None:
            missing.append(text[:40])
        else:
            events.append(record_event(record))
    metadata: Metadata = {"total_count": len(events)}
    if missing:
        metadata["not_stored"] = missing
    return {"view": "events", "events": events, "metadata": metadata}
