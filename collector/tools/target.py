"""What a tool's arguments point at: the trace named by ``trace_id``, ``span_id`` or
``event_id``, and the error a tool raises when its arguments cannot be acted on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import CollectorError
from collector.model import Record, parse_hex_id
from collector.query import trace_tree
from collector.store import Store
from collector.trace_tree import TraceTree

__all__ = ["ToolInputError", "record_of", "tree_for"]


class ToolInputError(CollectorError):
    """The arguments cannot be acted on; the message says what to change."""


def tree_for(store: Store, args: Mapping[str, Any]) -> TraceTree:
    """The trace named by ``trace_id``, or the one holding ``span_id`` or ``event_id``."""
    trace_id = None
    if "trace_id" in args:
        try:
            trace_id = store.resolve_trace_id(str(args["trace_id"]))
        except ValueError as exc:
            raise ToolInputError(f"trace_id: {exc}") from None
    elif "span_id" in args:
        trace_id = _trace_of_span(store, str(args["span_id"]))
    elif "event_id" in args:
        trace_id = _trace_of_event(store, str(args["event_id"]))
    else:
        raise ToolInputError(
            "give trace_id, or span_id / event_id of the symptom (observe what='errors' lists them)"
        )
    tree = trace_tree(store, trace_id)
    if tree is None:
        raise ToolInputError(
            f"trace {trace_id.hex()} is not in the store (never received, or evicted)"
        )
    return tree


def record_of(store: Store, text: str) -> Record:
    """The stored log record or event with id ``text``."""
    record = store.records.get(int(text)) if text.isdigit() else None
    if record is None:
        raise ToolInputError(f"event_id: {text!r} is not a stored event or log record id")
    return record


def _trace_of_span(store: Store, text: str) -> bytes:
    span_id = parse_hex_id(text.strip().lower().removeprefix("span:"), 8)
    if span_id is None:
        raise ToolInputError(f"span_id: {text!r} is not a span id (16 hex digits)")
    span = store.spans.find_span(span_id)
    if span is None:
        raise ToolInputError(f"span {text} is not in the store (never received, or evicted)")
    return span.trace_id


def _trace_of_event(store: Store, text: str) -> bytes:
    if text.startswith("span:"):
        return _trace_of_span(store, text)
    record = record_of(store, text)
    if record.trace_id is None:
        raise ToolInputError(
            f"event {text} is not linked to a trace; analyze it with type='correlate' "
            "and its correlation_id"
        )
    return record.trace_id
