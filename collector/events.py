"""The native event schema (the seeds' fields) to a ``Record``.

Used by the ``/event(s)`` intake and by the ``configure custom_event`` tool, so both
accept exactly the same events and reject bad ones with the same messages.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from collector.errors import DecodeError
from collector.levels import normalize_level
from collector.model import Record, parse_hex_id

__all__ = ["parse_event"]

_MAX_SOURCE_LEN = 64
_MAX_TIME_NS = 1 << 63
_SHOWN_CHARS = 80


def _event_level(value: Any) -> str | None:
    """A level name, any case or common spelling (``wrn``, ``FATAL``), through the one level
    map; None if unknown. Only strings: a number means different things in different
    ecosystems, and an event says which level it means."""
    return normalize_level(value) if isinstance(value, str) else None


def parse_event(data: Any, path: str, now_ns: int) -> Record:
    """One event object to a ``Record``; ``DecodeError`` names the bad field by path."""
    if not isinstance(data, Mapping):
        raise DecodeError(f"{path}: expected an object")
    metadata = data.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise DecodeError(f"{path}.metadata: expected an object")
    metadata = dict(metadata)

    def field(name: str) -> Any:
        return data[name] if name in data else metadata.get(name)

    message = data.get("message", "")
    if not isinstance(message, str):
        raise DecodeError(f"{path}.message: expected a string")
    level = _event_level(data.get("level", "info"))
    if level is None:
        raise DecodeError(
            f"{path}.level: {_shown(data.get('level'))} is not a level "
            "(expected debug, info, warn, error or critical)"
        )
    source = data.get("source", "custom")
    if not isinstance(source, str) or not 0 < len(source) <= _MAX_SOURCE_LEN:
        raise DecodeError(f"{path}.source: expected a name of 1-{_MAX_SOURCE_LEN} characters")
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise DecodeError(f"{path}.tags: expected a list of strings")
    trace_id, span_id = _trace_context(field, path)
    correlation_id = _text(field("correlation_id"), f"{path}.correlation_id")
    service = _text(field("service"), f"{path}.service")
    if service is None:
        service = next((t[8:] for t in tags if t.startswith("service:")), "")
    return Record(
        time_ns=_timestamp_ns(data.get("timestamp"), f"{path}.timestamp", now_ns),
        source=source,
        level=level,
        message=message,
        service=service,
        trace_id=trace_id,
        span_id=span_id,
        correlation_id=correlation_id or None,
        tags=tuple(tags),
        attributes=metadata,
        kind="event",
    )


def _trace_context(field: Any, path: str) -> tuple[bytes | None, bytes | None]:
    trace_id = span_id = None
    traceparent = _text(field("traceparent"), f"{path}.traceparent")
    if traceparent is not None:
        parts = traceparent.strip().split("-")
        if len(parts) < 4 or len(parts[0]) != 2:
            raise DecodeError(f"{path}.traceparent: {_shown(traceparent)} is not a W3C traceparent")
        trace_id = parse_hex_id(parts[1], 16)
        span_id = parse_hex_id(parts[2], 8)
        if trace_id is None or span_id is None:
            raise DecodeError(f"{path}.traceparent: {_shown(traceparent)} has invalid ids")
    for name, size in (("trace_id", 16), ("span_id", 8)):
        value = field(name)
        if value is None or value == "":
            continue
        parsed = parse_hex_id(str(value), size) if isinstance(value, str) else None
        if parsed is None:
            raise DecodeError(
                f"{path}.{name}: {_shown(value)} is not an id ({size * 2} hex digits, not all zero)"
            )
        if name == "trace_id":
            trace_id = parsed
        else:
            span_id = parsed
    return trace_id, span_id


def _timestamp_ns(value: Any, path: str, now_ns: int) -> int:
    """Milliseconds (or an ISO 8601 string) to nanoseconds, which must fit a signed 64-bit
    integer as OTLP's do: from 1970 to 2262."""
    if value is None:
        return now_ns
    time_ns: int | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value):
            time_ns = int(value * 1_000_000)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError, OverflowError):
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            time_ns = int(stamp * 1e9)
    if time_ns is not None and 0 <= time_ns < _MAX_TIME_NS:
        return time_ns
    raise DecodeError(
        f"{path}: {_shown(value)} is not a time (expected milliseconds since the epoch, "
        "from 1970 to 2262)"
    )


def _text(value: Any, path: str) -> str | None:
    """A field that names something (service, correlation id): a string, or a number
    written as one; None if absent."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise DecodeError(f"{path}: expected a string, got {_shown(value)}")


def _shown(value: Any) -> str:
    """A value for an error message: scalars as written (cut at 80 characters), containers
    by kind (they may nest deeper than ``repr`` can go)."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value[:_SHOWN_CHARS] if isinstance(value, str) else value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
