"""What an answer covers: filters, noise rules, cursors, parsed from query parameters
(strings) or tool arguments (JSON values) with errors that name the key."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector.analysis.signals import http_method, http_status, http_url
from collector.model import LEVELS, Record, StatusCode, parse_hex_id
from collector.store import StoredSpan

__all__ = [
    "FILTER_KEYS",
    "LEVEL_RANK",
    "NoiseRule",
    "TimelineFilter",
    "build_filter",
    "parse_cursor",
    "parse_status_range",
    "parse_time_ns",
]

LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}


@dataclass(slots=True)
class NoiseRule:
    """Hides matching items from answers (never from the store). Unset fields match all."""

    id: str
    pattern: re.Pattern[str] | None = None
    source: str | None = None
    service: str | None = None
    level: str | None = None

    def hides(self, source: str, service: str, level: str, message: str) -> bool:
        return (
            (self.source is None or self.source == source)
            and (self.service is None or self.service == service)
            and (self.level is None or self.level == level)
            and (self.pattern is None or self.pattern.search(message) is not None)
        )


@dataclass(slots=True)
class TimelineFilter:
    """Which items an answer covers. ``level`` is a minimum; ``text`` a case-insensitive
    substring of the message; ``url`` a substring; ``status`` an inclusive range of
    HTTP codes; every tag in ``tags`` must be present; ``kinds`` limits to span, log
    or event items."""

    trace_id: bytes | None = None
    correlation_id: str | None = None
    source: str | None = None
    service: str | None = None
    level: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    text: str | None = None
    url: str | None = None
    method: str | None = None
    status: tuple[int, int] | None = None
    tags: tuple[str, ...] = ()
    kinds: frozenset[str] | None = None
    noise: Sequence[NoiseRule] = ()
    record_match: Callable[[Record], bool] | None = None
    limit: int = 100
    cursor: tuple[int, str] | None = None

    def _common(self, time_ns: int, level: str, source: str, service: str, message: str) -> bool:
        return (
            (self.since_ns is None or time_ns >= self.since_ns)
            and (self.until_ns is None or time_ns <= self.until_ns)
            and (self.source is None or source == self.source)
            and (self.service is None or service == self.service)
            and (self.level is None or LEVEL_RANK.get(level, 1) >= LEVEL_RANK[self.level])
            and (self.text is None or self.text.lower() in message.lower())
            and not any(rule.hides(source, service, level, message) for rule in self.noise)
        )

    def _http(self, attributes: dict[str, Any]) -> bool:
        if self.url is not None and self.url not in (http_url(attributes) or ""):
            return False
        if self.method is not None and http_method(attributes) != self.method.upper():
            return False
        if self.status is not None:
            code = http_status(attributes)
            return code is not None and self.status[0] <= code <= self.status[1]
        return True

    @property
    def needs_http(self) -> bool:
        return self.url is not None or self.method is not None or self.status is not None

    def may_match_spans(self) -> bool:
        """Spans have source ``otlp`` and no tags."""
        return (
            (self.kinds is None or "span" in self.kinds)
            and not self.tags
            and self.source in (None, "otlp")
            and self.record_match is None
        )

    def may_match_records(self) -> bool:
        return self.kinds is None or bool(self.kinds - {"span"})

    def keeps_span(self, span: StoredSpan) -> bool:
        if self.kinds is not None and "span" not in self.kinds:
            return False
        if self.tags:  # spans carry no tags
            return False
        level = "error" if span.status == StatusCode.ERROR else "info"
        if not self._common(span.start_ns, level, "otlp", span.service, span.name):
            return False
        return not self.needs_http or self._http(span.detail().attributes)

    def keeps_record(self, record: Record) -> bool:
        if self.kinds is not None and record.kind not in self.kinds:
            return False
        if self.record_match is not None and not self.record_match(record):
            return False
        if self.tags and not set(self.tags) <= set(record.tags):
            return False
        if not self._common(
            record.time_ns, record.level, record.source, record.service, record.message
        ):
            return False
        return not self.needs_http or self._http(record.attributes)


def parse_status_range(text: str) -> tuple[int, int]:
    """``500``, ``5xx`` or ``400-599`` to an inclusive range; ValueError otherwise."""
    text = text.strip().lower()
    if len(text) == 3 and text.endswith("xx") and text[0].isdigit():
        return int(text[0]) * 100, int(text[0]) * 100 + 99
    low, sep, high = text.partition("-")
    if sep:
        return int(low), int(high)
    return int(text), int(text)


_MAX_LIMIT = 1000
FILTER_KEYS = (
    "trace_id",
    "correlation_id",
    "source",
    "service",
    "level",
    "url",
    "method",
    "status",
    "tags",
    "since",
    "until",
    "text",
)


def build_filter(
    params: Mapping[str, Any],
    *,
    limit: Any = None,
    cursor: Any = None,
    default_limit: int = 100,
    noise: Sequence[NoiseRule] = (),
    resolve_trace: Callable[[str], bytes] | None = None,
) -> TimelineFilter:
    """A filter from query parameters (strings) or tool arguments (JSON values).
    ``resolve_trace`` turns the ``trace_id`` typed into a stored one (a short id's unique
    prefix, e.g. ``Store.resolve_trace_id``); without it 32 hex digits are required.

    Raises ValueError naming the key, e.g. ``level: 'loud' must be one of debug, ...``.
    """
    unknown = sorted(set(params) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f"unknown filter {unknown[0]!r} (allowed: {', '.join(FILTER_KEYS)})")

    def text(key: str) -> str | None:
        value = params.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str | int):
            raise ValueError(f"{key}: expected a string, got {value!r}")
        return str(value)

    trace_id = None
    if (raw := text("trace_id")) is not None:
        if resolve_trace is not None:
            try:
                trace_id = resolve_trace(raw)
            except ValueError as exc:
                raise ValueError(f"trace_id: {exc}") from None
        else:
            trace_id = parse_hex_id(raw.strip().lower(), 16)
            if trace_id is None:
                raise ValueError(f"trace_id: {raw!r} is not a trace id (32 hex digits)")
    level = text("level")
    if level is not None and level not in LEVELS:
        raise ValueError(f"level: {level!r} must be one of {', '.join(LEVELS)}")
    status = None
    if (raw := text("status")) is not None:
        try:
            status = parse_status_range(raw)
        except ValueError:
            raise ValueError(
                f"status: {raw!r} is not an HTTP status (500, 5xx or 400-599)"
            ) from None
    tags = params.get("tags") or ()
    if isinstance(tags, str):
        tags = [t for t in tags.split(",") if t]
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"tags: expected a list of strings, got {tags!r}")
    limit_value = default_limit if limit is None or limit == "" else limit
    try:
        limit_int = int(limit_value)
    except (TypeError, ValueError):
        limit_int = 0
    if not 1 <= limit_int <= _MAX_LIMIT:
        raise ValueError(f"limit: {limit_value!r} must be an integer from 1 to {_MAX_LIMIT}")
    parsed_cursor = None
    if cursor:
        try:
            parsed_cursor = parse_cursor(str(cursor))
        except ValueError as exc:
            raise ValueError(f"cursor: {exc}") from None
    return TimelineFilter(
        trace_id=trace_id,
        correlation_id=text("correlation_id"),
        source=text("source"),
        service=text("service"),
        level=level,
        since_ns=parse_time_ns("since", params.get("since")),
        until_ns=parse_time_ns("until", params.get("until")),
        text=text("text"),
        url=text("url"),
        method=text("method"),
        status=status,
        tags=tuple(tags),
        noise=noise,
        limit=limit_int,
        cursor=parsed_cursor,
    )


def parse_time_ns(name: str, value: Any) -> int | None:
    """Milliseconds since the epoch (number or numeric string), or an ISO 8601 time."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            return int(float(value) * 1_000_000)
        except ValueError:
            pass
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1e9)
        except ValueError:
            pass
    raise ValueError(f"{name}: {value!r} is not a time (milliseconds since the epoch or ISO 8601)")


def parse_cursor(text: str) -> tuple[int, str]:
    """Inverse of ``cursor_next``; ValueError if malformed."""
    time_part, _, key = text.partition(":")
    if not key:
        raise ValueError(f"{text!r} is not a cursor")
    return int(time_part), key
