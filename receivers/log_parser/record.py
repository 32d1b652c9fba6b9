"""The parse result shared by every line shape, kept in one small module to avoid import cycles."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ParsedLine"]


@dataclass(slots=True)
class ParsedLine:
    """One log line reduced to the fields an OTel log record needs; slots keep it cheap per line."""

    time_ns: int | None
    """Absolute UTC epoch nanoseconds if the line carried a timestamp, else None."""
    level: str | None
    """One of "debug", "info", "warn", "error", "critical", or None when unknown."""
    message: str
    """The human message; the whole line when no message part could be told apart."""
    trace_id: bytes | None
    """16 bytes, never all zeros."""
    span_id: bytes | None
    """8 bytes, never all zeros."""
    request_id: str | None
    """Request or correlation id as written in the line."""
    attributes: dict[str, object]
    """Every field that was recognised but not consumed into the fields above."""
