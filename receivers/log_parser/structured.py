"""Structured lines: JSON objects and logfmt, reduced by well-known field names.

One table maps every field name that logging libraries use for time, level, message and ids
(OTel, ECS, Bunyan, Pino, structlog, zap, slog, logrus, Serilog CLEF, GCP, Datadog, Docker) to
a role and a rank; the lowest-ranked field that converts cleanly wins its role, and every other
field stays in the attributes untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import cast

from .correlation import (
    request_id_value,
    scan_ids,
    span_id_decimal,
    span_id_value,
    trace_id_decimal,
    trace_id_value,
    traceparent_ids,
)
from .levels import EXACT_LEVELS as _EXACT_LEVELS
from .levels import normalize_level, otel_severity_level, python_level
from .record import ParsedLine
from .timestamps import parse_timestamp, rfc3339_to_ns

__all__ = ["LOGFMT_START_RE", "from_mapping", "parse_json", "parse_logfmt"]

# Roles, and the conversion each field name needs.
_R_TIME, _R_LEVEL, _R_MSG, _R_TRACE, _R_SPAN, _R_REQ, _R_TRACEPARENT = range(7)
(
    _K_TIME,
    _K_LEVEL,
    _K_LEVEL_OTEL,
    _K_LEVEL_PY,
    _K_LEVEL_STR,
    _K_MSG,
    _K_MSG_STR,
    _K_TRACE,
    _K_TRACE_DEC,
    _K_SPAN,
    _K_SPAN_DEC,
    _K_REQ,
    _K_TRACEPARENT,
) = range(13)
_ROLE_OF_KIND = (
    _R_TIME,
    _R_LEVEL,
    _R_LEVEL,
    _R_LEVEL,
    _R_LEVEL,
    _R_MSG,
    _R_MSG,
    _R_TRACE,
    _R_TRACE,
    _R_SPAN,
    _R_SPAN,
    _R_REQ,
    _R_TRACEPARENT,
)

_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    # (kind, rank, names): lower rank wins when a record carries several names for a role.
    (_K_TIME, 0, ("time_unix_nano", "timeUnixNano", "timestamp", "@timestamp", "time")),
    (_K_TIME, 1, ("ts", "@t", "datetime", "date", "asctime", "eventTime", "timeMillis")),
    (_K_TIME, 2, ("t", "Timestamp", "Time", "logged_at")),
    (_K_TIME, 3, ("observed_time_unix_nano", "observedTimeUnixNano")),
    (_K_LEVEL, 0, ("severity_text", "severityText")),
    (_K_LEVEL, 1, ("level", "lvl", "levelname", "log.level", "severity", "Level", "Severity")),
    (_K_LEVEL, 2, ("loglevel", "log_level", "logLevel", "level_name", "@l", "levelName")),
    (_K_LEVEL_OTEL, 3, ("severity_number", "severityNumber")),
    (_K_LEVEL_PY, 3, ("levelno",)),
    (_K_LEVEL_STR, 4, ("status", "at")),  # Datadog "status", Heroku router "at"
    (_K_MSG, 0, ("msg", "message", "Message", "@m")),
    (_K_MSG_STR, 1, ("event",)),
    (_K_MSG, 1, ("body", "short_message", "@mt", "MessageTemplate")),
    (_K_MSG_STR, 2, ("log", "text")),
    (
        _K_TRACE,
        0,
        ("trace_id", "traceId", "traceid", "traceID", "TraceId", "trace.id", "trace-id"),
    ),
    (_K_TRACE, 1, ("otelTraceID", "@tr", "logging.googleapis.com/trace", "x-amzn-trace-id")),
    (_K_TRACE_DEC, 2, ("dd.trace_id",)),
    (_K_SPAN, 0, ("span_id", "spanId", "spanid", "spanID", "SpanId", "span.id", "span-id")),
    (_K_SPAN, 1, ("otelSpanID", "@sp", "logging.googleapis.com/spanId")),
    (_K_SPAN_DEC, 2, ("dd.span_id",)),
    (
        _K_REQ,
        0,
        (
            "request_id",
            "requestId",
            "requestID",
            "RequestId",
            "req_id",
            "reqId",
            "reqID",
            "x-request-id",
            "X-Request-ID",
            "X-Request-Id",
            "x_request_id",
            "request.id",
            "req.id",
            "http.request.id",
        ),
    ),
    (
        _K_REQ,
        1,
        (
            "correlation_id",
            "correlationId",
            "correlationID",
            "CorrelationId",
            "x-correlation-id",
            "X-Correlation-ID",
            "aws_request_id",
            "awsRequestId",
        ),
    ),
    (_K_TRACEPARENT, 0, ("traceparent",)),
)

# Field name -> (role, rank, kind). Ranks follow table order and are unique, so the winner
# never depends on the order fields are visited in.
_KEYS: dict[str, tuple[int, int, int]] = {}
for _kind, _rank, _names in _FIELDS:
    for _name in _names:
        _KEYS[_name] = (_ROLE_OF_KIND[_kind], len(_KEYS), _kind)
del _kind, _rank, _names, _name

# Nested objects whose fields have a role: ECS {"log":{"level":..}}, {"trace":{"id":..}},
# Pino {"req":{"id":..}}, Datadog {"dd":{"trace_id":..}}. They are hoisted to the dotted name
# ECS treats as equivalent ("log.level"), so one table and one loop serve both spellings.
_NESTED: dict[str, tuple[str, ...]] = {
    "log": ("level",),
    "trace": ("id",),
    "span": ("id",),
    "req": ("id",),
    "request": ("id",),
    "dd": ("trace_id", "span_id"),
}
_NESTED_KEYS = frozenset(_NESTED)
_MAX_OTLP_DEPTH = 16
_ANY_VALUE_KEYS = frozenset(
    ("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue", "arrayValue")
)

# The C scanner directly: JSONDecoder.decode adds two Python-level calls and a regex per line.
# (scan_once is an instance attribute the type stubs do not declare.)
_scan_once = cast("Callable[[str, int], tuple[object, int]]", vars(json.JSONDecoder())["scan_once"])
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr).encode

LOGFMT_START_RE = re.compile(r"[A-Za-z_@][\w.@/-]*=", re.ASCII)
# Applied to " " + line: the leading \s lets the regex engine skip straight to whitespace,
# and keys starting a token means a long value is never rescanned (linear on hostile lines).
# Groups: key, quoted value (unescaped later), bare value.
_LOGFMT_PAIR_RE = re.compile(r'\s([^\s="]++)=(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^\s"]*+))', re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def _level_of(kind: int, value: object) -> str | None:
    if kind == _K_LEVEL:
        if type(value) is str:
            return _EXACT_LEVELS.get(value) or normalize_level(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return normalize_level(value) if isinstance(value, int) else None
    if kind == _K_LEVEL_STR:
        return normalize_level(value) if isinstance(value, str) else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return otel_severity_level(value) if kind == _K_LEVEL_OTEL else python_level(value)


def _render(value: object) -> str | None:
    try:
        return _encode(value)
    except (RecursionError, ValueError, TypeError):  # nesting the decoder allowed but too deep
        return None


def _message_of(kind: int, value: object) -> str | None:
    if isinstance(value, str):
        return value
    if kind == _K_MSG_STR or value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        # OTLP/JSON AnyValue: {"stringValue": "..."}
        ((key, inner),) = value.items()
        if key in _ANY_VALUE_KEYS:
            return inner if isinstance(inner, str) else _render(inner)
    return _render(value)


def _otlp_value(value: object, depth: int) -> object:
    if isinstance(value, dict) and len(value) == 1 and depth < _MAX_OTLP_DEPTH:
        ((key, inner),) = value.items()
        if key == "kvlistValue" and isinstance(inner, dict):
            return _otlp_attributes(inner.get("values"), depth + 1)
        if key == "arrayValue" and isinstance(inner, dict):
            values = inner.get("values")
            if isinstance(values, list):
                return [_otlp_value(v, depth + 1) for v in values]
            return []
        if key in _ANY_VALUE_KEYS:
            return inner
    return value


def _otlp_attributes(items: object, depth: int = 0) -> dict[str, object]:
    """OTLP/JSON ``[{"key": k, "value": {"stringValue": v}}]`` as ``{k: v}`` (bounded depth)."""
    out: dict[str, object] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                out[item["key"]] = _otlp_value(item.get("value"), depth)
    return out


def _merge_attributes(obj: dict[str, object]) -> None:
    # OTel-shaped records nest their attributes; hoist them so every shape looks alike.
    inner = obj.pop("attributes")
    if isinstance(inner, list):
        inner = _otlp_attributes(inner)
    if isinstance(inner, dict):
        for key, value in inner.items():
            if key not in obj:
                obj[key] = value
    else:
        obj["attributes"] = inner


def _hoist_nested(obj: dict[str, object]) -> list[tuple[str, str, str]]:
    hoisted: list[tuple[str, str, str]] = []
    for outer, subs in _NESTED.items():
        inner = obj.get(outer)
        if type(inner) is dict:
            for sub in subs:
                if sub in inner:
                    dotted = outer + "." + sub
                    if dotted not in obj:
                        obj[dotted] = inner.pop(sub)
                        hoisted.append((dotted, outer, sub))
    return hoisted


def _restore_nested(obj: dict[str, object], hoisted: list[tuple[str, str, str]]) -> None:
    # Hoisted fields that did not win their role go back where the record had them.
    for dotted, outer, sub in hoisted:
        if dotted in obj:
            inner = obj.get(outer)
            if type(inner) is dict:
                inner[sub] = obj.pop(dotted)
        else:
            inner = obj.get(outer)
            if type(inner) is dict and not inner:
                del obj[outer]


def from_mapping(obj: dict[str, object], line: str, nested: bool = True) -> ParsedLine:
    """ParsedLine from a decoded JSON object or logfmt pairs; ``obj`` becomes the attributes.

    ``nested`` says values may be objects (JSON), so ECS-style nested fields are looked at.

    One pass over the fields: a field is converted only if it outranks the current holder of
    its role, and winners are removed from ``obj`` afterwards.
    """
    hoisted = _hoist_nested(obj) if nested and not _NESTED_KEYS.isdisjoint(obj) else None
    time_ns: int | None = None
    level: str | None = None
    message: str | None = None
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    tp_trace: bytes | None = None
    tp_span: bytes | None = None
    time_rank = level_rank = message_rank = trace_rank = span_rank = request_rank = 1 << 30
    time_key = level_key = message_key = trace_key = span_key = request_key = tp_key = ""
    keys_get = _KEYS.get
    for key, value in obj.items():
        spec = keys_get(key)
        if spec is None:
            continue
        role, rank, kind = spec
        if role == _R_TIME:
            if rank < time_rank:
                if type(value) is str:
                    ns = rfc3339_to_ns(value) if value[10:11] == "T" else None
                    if ns is None:
                        ns = parse_timestamp(value)
                elif type(value) is int or type(value) is float:
                    ns = parse_timestamp(value)
                else:
                    continue
                if ns is not None:
                    time_ns, time_rank, time_key = ns, rank, key
        elif role == _R_MSG:
            if rank < message_rank:
                found_message = value if type(value) is str else _message_of(kind, value)
                if found_message is not None:
                    message, message_rank, message_key = found_message, rank, key
        elif role == _R_LEVEL:
            if rank < level_rank:
                found_level = _level_of(kind, value)
                if found_level is not None:
                    level, level_rank, level_key = found_level, rank, key
        elif role == _R_TRACE:
            if rank < trace_rank:
                found_id = trace_id_value(value) if kind == _K_TRACE else trace_id_decimal(value)
                if found_id is not None:
                    trace, trace_rank, trace_key = found_id, rank, key
        elif role == _R_SPAN:
            if rank < span_rank:
                found_id = span_id_value(value) if kind == _K_SPAN else span_id_decimal(value)
                if found_id is not None:
                    span, span_rank, span_key = found_id, rank, key
        elif role == _R_REQ:
            if rank < request_rank:
                found_request = request_id_value(value)
                if found_request is not None:
                    request, request_rank, request_key = found_request, rank, key
        elif type(value) is str and not tp_key:
            tp_trace, tp_span = traceparent_ids(value)
            if tp_trace is not None:
                tp_key = key
    if time_key:
        del obj[time_key]
    if level_key:
        del obj[level_key]
    if message_key:
        del obj[message_key]
    if trace_key:
        del obj[trace_key]
    if span_key:
        del obj[span_key]
    if request_key:
        del obj[request_key]
    if tp_key and (trace is None or span is None):
        # traceparent fills what the dedicated fields left empty; kept if it added nothing.
        trace = trace or tp_trace
        span = span or tp_span
        del obj[tp_key]
    if hoisted:
        _restore_nested(obj, hoisted)
    if "attributes" in obj:
        _merge_attributes(obj)
    if trace is None or span is None or request is None:
        found_trace, found_span, found_request = scan_ids(
            line, trace is None, span is None, request is None
        )
        if trace is None:
            trace = found_trace
        if span is None:
            span = found_span
        if request is None:
            request = found_request
    return ParsedLine(
        time_ns, level, line if message is None else message, trace, span, request, obj
    )


def parse_json(line: str) -> ParsedLine | None:
    """ParsedLine for a line holding one JSON object, else None (so text parsing takes over)."""
    try:
        obj, end = _scan_once(line, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    if type(obj) is not dict or (end != len(line) and line[end:].strip()):
        return None
    return from_mapping(obj, line)


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return _ESCAPES.get(char, "\\" + char)


def parse_logfmt(line: str) -> ParsedLine | None:
    """ParsedLine for ``key=value key2="quoted value"`` lines; None unless two pairs are found."""
    pairs = _LOGFMT_PAIR_RE.findall(" " + line)
    if len(pairs) < 2:
        return None
    if "\\" in line:
        obj: dict[str, object] = {
            key: (_ESCAPE_RE.sub(_unescape, quoted) if "\\" in quoted else quoted)
            if quoted
            else bare
            for key, quoted, bare in pairs
        }
    else:
        obj = {key: quoted or bare for key, quoted, bare in pairs}
    return from_mapping(obj, line, nested=False)
