"""Structured lines: JSON objects and logfmt, reduced by well-known field names.

One table maps every field name that logging libraries use for time, level, message and ids
(OTel, ECS, Bunyan, Pino, structlog, zap, slog, logrus, Serilog CLEF, GCP, Datadog, Docker) to
a role and a rank; the lowest-ranked field that converts cleanly wins its role, and every other
field stays in the attributes untouched.
"""

from __future__ import annotations

import json
import re

from .correlation import (
    request_id_value,
    scan_ids,
    span_id_decimal,
    span_id_value,
    trace_id_decimal,
    trace_id_value,
    traceparent_ids,
)
from .levels import normalize_level, otel_severity_level, python_level
from .record import ParsedLine
from .timestamps import parse_timestamp

__all__ = ["LOGFMT_START_RE", "from_mapping", "parse_json", "parse_logfmt"]

# Roles (the high bits of a field's sort order) and the conversion each field needs.
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
    (_K_LEVEL_STR, 4, ("status",)),
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

# Field name -> (sort order = role * 16 + rank, kind).
_KEYS: dict[str, tuple[int, int]] = {}
for _kind, _rank, _names in _FIELDS:
    for _name in _names:
        _KEYS[_name] = (_ROLE_OF_KIND[_kind] * 16 + _rank, _kind)
del _kind, _rank, _names, _name

# Nested objects: ECS {"log":{"level":..}}, {"trace":{"id":..}}, Pino {"req":{"id":..}}, ...
_NESTED: dict[str, dict[str, tuple[int, int]]] = {
    "log": {"level": (_R_LEVEL * 16 + 1, _K_LEVEL)},
    "trace": {"id": (_R_TRACE * 16 + 0, _K_TRACE)},
    "span": {"id": (_R_SPAN * 16 + 0, _K_SPAN)},
    "req": {"id": (_R_REQ * 16 + 1, _K_REQ)},
    "request": {"id": (_R_REQ * 16 + 1, _K_REQ)},
    "dd": {
        "trace_id": (_R_TRACE * 16 + 2, _K_TRACE_DEC),
        "span_id": (_R_SPAN * 16 + 2, _K_SPAN_DEC),
    },
}
_ANY_VALUE_KEYS = frozenset(
    ("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue", "arrayValue")
)

_decode = json.JSONDecoder().decode
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=repr).encode

LOGFMT_START_RE = re.compile(r"[A-Za-z_@][\w.@/-]*=", re.ASCII)
_LOGFMT_PAIR_RE = re.compile(r'([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)', re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)


def _time_of(value: object) -> int | None:
    if isinstance(value, str | int | float):
        return parse_timestamp(value)
    return None


def _level_of(kind: int, value: object) -> str | None:
    if kind == _K_LEVEL:
        if isinstance(value, str | int | float):
            return normalize_level(value)
        return None
    if kind == _K_LEVEL_STR:
        return normalize_level(value) if isinstance(value, str) else None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return otel_severity_level(value) if kind == _K_LEVEL_OTEL else python_level(value)


def _message_of(kind: int, value: object) -> str | None:
    if isinstance(value, str):
        return value
    if kind == _K_MSG_STR or value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        # OTLP/JSON AnyValue: {"stringValue": "..."}
        (key, inner), = value.items()
        if key in _ANY_VALUE_KEYS:
            return inner if isinstance(inner, str) else _encode(inner)
    return _encode(value)


def _otlp_value(value: object) -> object:
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "kvlistValue" and isinstance(inner, dict):
            return _otlp_attributes(inner.get("values"))
        if key == "arrayValue" and isinstance(inner, dict):
            values = inner.get("values")
            return [_otlp_value(v) for v in values] if isinstance(values, list) else []
        if key in _ANY_VALUE_KEYS:
            return inner
    return value


def _otlp_attributes(items: object) -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("key"), str):
                out[item["key"]] = _otlp_value(item.get("value"))
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


def from_mapping(obj: dict[str, object], line: str) -> ParsedLine:
    """ParsedLine from a decoded JSON object or logfmt pairs; ``obj`` becomes the attributes."""
    candidates: list[tuple[int, str, str, int]] = []
    keys = _KEYS
    for key in obj:
        spec = keys.get(key)
        if spec is not None:
            candidates.append((spec[0], key, "", spec[1]))
        else:
            nested = _NESTED.get(key)
            if nested is not None:
                inner = obj[key]
                if isinstance(inner, dict):
                    for sub, sub_spec in nested.items():
                        if sub in inner:
                            candidates.append((sub_spec[0], key, sub, sub_spec[1]))
    time_ns: int | None = None
    level: str | None = None
    message: str | None = None
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    if candidates:
        if len(candidates) > 1:
            candidates.sort()
        consumed: list[tuple[str, str]] = []
        for order, key, sub, kind in candidates:
            role = order >> 4
            holder = obj[key]
            if sub:
                if not isinstance(holder, dict):
                    continue
                value = holder.get(sub)
            else:
                value = holder
            if role == _R_TIME:
                if time_ns is not None:
                    continue
                time_ns = _time_of(value)
                if time_ns is None:
                    continue
            elif role == _R_LEVEL:
                if level is not None:
                    continue
                level = _level_of(kind, value)
                if level is None:
                    continue
            elif role == _R_MSG:
                if message is not None:
                    continue
                message = _message_of(kind, value)
                if message is None:
                    continue
            elif role == _R_TRACE:
                if trace is not None:
                    continue
                trace = trace_id_value(value) if kind == _K_TRACE else trace_id_decimal(value)
                if trace is None:
                    continue
            elif role == _R_SPAN:
                if span is not None:
                    continue
                span = span_id_value(value) if kind == _K_SPAN else span_id_decimal(value)
                if span is None:
                    continue
            elif role == _R_REQ:
                if request is not None:
                    continue
                request = request_id_value(value)
                if request is None:
                    continue
            else:  # traceparent: fills whatever the dedicated fields left empty
                if not isinstance(value, str):
                    continue
                tp_trace, tp_span = traceparent_ids(value)
                if tp_trace is None or (trace is not None and span is not None):
                    continue
                if trace is None:
                    trace = tp_trace
                if span is None:
                    span = tp_span
            consumed.append((key, sub))
        for key, sub in consumed:
            if sub:
                holder = obj[key]
                if isinstance(holder, dict):
                    del holder[sub]
                    if not holder:
                        del obj[key]
            else:
                del obj[key]
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
        obj = _decode(line)
    except (ValueError, RecursionError):
        return None
    if type(obj) is not dict:
        return None
    return from_mapping(obj, line)


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return _ESCAPES.get(char, "\\" + char)


def parse_logfmt(line: str) -> ParsedLine | None:
    """ParsedLine for ``key=value key2="quoted value"`` lines; None unless two pairs are found."""
    pairs = _LOGFMT_PAIR_RE.findall(line)
    if len(pairs) < 2:
        return None
    obj: dict[str, object] = {}
    for key, value in pairs:
        if value[:1] == '"':
            value = value[1:-1]
            if "\\" in value:
                value = _ESCAPE_RE.sub(_unescape, value)
        obj[key] = value
    return from_mapping(obj, line)
