"""LineParser: user patterns first, then JSON, logfmt and plain-text shapes, never raising.

Every plain-log source (process wrapper, file tailer, SSH tailer) funnels each line through
:meth:`LineParser.parse`, so the dispatch is ordered by cheap first-character tests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .correlation import request_id_value, scan_ids, span_id_value, trace_id_value
from .levels import normalize_level
from .record import ParsedLine
from .shapes import parse_text
from .structured import LOGFMT_START_RE, parse_json, parse_logfmt
from .timestamps import parse_timestamp

__all__ = ["LineParser"]

_TIME_GROUPS = frozenset(("time", "timestamp", "ts", "datetime", "date", "asctime"))
_LEVEL_GROUPS = frozenset(("level", "lvl", "severity", "levelname", "loglevel"))
_MESSAGE_GROUPS = frozenset(("message", "msg"))
_TRACE_GROUPS = frozenset(("trace_id", "traceid", "trace"))
_SPAN_GROUPS = frozenset(("span_id", "spanid", "span"))
_REQUEST_GROUPS = frozenset(
    ("request_id", "requestid", "req_id", "reqid", "correlation_id", "correlationid")
)


def _fallback(line: object) -> ParsedLine:
    if isinstance(line, bytes | bytearray):
        text = bytes(line).decode("utf-8", "replace")
    else:
        try:
            text = line if isinstance(line, str) else str(line)
        except Exception:
            text = ""
    return ParsedLine(None, None, text, None, None, None, {})


class LineParser:
    """Turns one log line (or one grouped multi-line record) into a :class:`ParsedLine`."""

    __slots__ = ("_patterns",)

    def __init__(self, *, patterns: Sequence[str] = ()) -> None:
        """patterns: user regexes with named groups (time/timestamp, level, message/msg,
        trace_id, span_id, request_id, any other name -> attribute); tried first, in order.
        Invalid regex -> ValueError naming the pattern."""
        compiled: list[re.Pattern[str]] = []
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise ValueError(f"log pattern {pattern!r} is not a string")
            try:
                compiled.append(re.compile(pattern))
            except re.error as exc:
                raise ValueError(f"invalid log pattern {pattern!r}: {exc}") from None
        self._patterns = tuple(compiled)

    def parse(self, line: object) -> ParsedLine:
        """Never raises, whatever the input (anything but a str is read as its text)."""
        if not isinstance(line, str):
            return _fallback(line)
        try:
            last = line[-1:]
            if last == "\n" or last == "\r":
                line = line.rstrip("\r\n")
            if self._patterns:
                for pattern in self._patterns:
                    match = pattern.search(line)
                    if match is not None:
                        return _from_user_match(match, line)
            first = line[:1]
            if first == "{":
                if line[-1] == "}" or line.rstrip()[-1:] == "}":
                    parsed = parse_json(line)
                    if parsed is not None:
                        return parsed
            elif (
                ("a" <= first <= "z" or "A" <= first <= "Z" or first == "_")
                and "=" in line
                and LOGFMT_START_RE.match(line) is not None
            ):
                parsed = parse_logfmt(line)
                if parsed is not None:
                    return parsed
            elif first == " " or first == "\t":
                stripped = line.strip()
                if stripped[:1] == "{" and stripped[-1:] == "}":
                    parsed = parse_json(stripped)
                    if parsed is not None:
                        return parsed
            return parse_text(line)
        except Exception:
            return _fallback(line)


def _from_user_match(match: re.Match[str], line: str) -> ParsedLine:
    time_ns: int | None = None
    level: str | None = None
    message: str | None = None
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    attrs: dict[str, object] = {}
    for name, value in match.groupdict().items():
        if value is None:
            continue
        key = name.lower()
        if key in _TIME_GROUPS and time_ns is None:
            time_ns = parse_timestamp(value)
            if time_ns is not None:
                continue
        elif key in _LEVEL_GROUPS and level is None:
            level = normalize_level(value)
            if level is not None:
                continue
        elif key in _MESSAGE_GROUPS and message is None:
            message = value
            continue
        elif key in _TRACE_GROUPS and trace is None:
            trace = trace_id_value(value)
            if trace is not None:
                continue
        elif key in _SPAN_GROUPS and span is None:
            span = span_id_value(value)
            if span is not None:
                continue
        elif key in _REQUEST_GROUPS and request is None:
            request = request_id_value(value)
            if request is not None:
                continue
        attrs[name] = value
    if trace is None or span is None or request is None:
        found_trace, found_span, found_request = scan_ids(
            line, trace is None, span is None, request is None
        )
        trace = trace or found_trace
        span = span or found_span
        request = request or found_request
    return ParsedLine(
        time_ns, level, line if message is None else message, trace, span, request, attrs
    )
