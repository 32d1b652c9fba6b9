"""Trace, span and request ids: field-value converters and a whole-line scanner.

Ids are what join a log line to the trace that caused it, so they are looked for everywhere:
W3C traceparent, ``trace_id=``-style keys, B3, Jaeger, AWS X-Ray, and UUIDs as a last resort
for request ids. The scanner costs one lower() and a few substring tests on lines without
id-like keys, plus one regex pass keyed on '-' for hex-and-dash shapes.
"""

from __future__ import annotations

import re

__all__ = [
    "request_id_value",
    "scan_ids",
    "span_id_decimal",
    "span_id_value",
    "trace_id_decimal",
    "trace_id_value",
    "traceparent_ids",
    "xray_trace_id",
]

_ZERO16 = bytes(16)
_ZERO8 = bytes(8)
_PAD16 = "0" * 16
_MAX_REQUEST_ID = 256

# Keys are matched on the lowercased line, one regex per keyword: each starts with a literal,
# which the regex engine finds with a fast substring search instead of trying every position.
# Lookbehinds placed after the literal require the key to start a word ("subtrace_id" is no
# trace id; otelTraceID is) and reject parent span ids.
_VALUE = r"[\"']?\s*[=:]\s*[\"']?([^\s\"',;&\]\)}>]+)"
_TRACE_KEY_RE = re.compile(
    r"trace(?:(?<![a-z0-9]trace)|(?<=oteltrace))(parent|[_.-]?id)" + _VALUE, re.ASCII
)
_SPAN_KEY_RE = re.compile(
    r"span(?:(?<![a-z0-9]span)|(?<=otelspan))"
    r"(?<!parent_span)(?<!parent-span)(?<!parent\.span)[_.-]?id" + _VALUE,
    re.ASCII,
)
_REQUEST_KEY_RE = re.compile(r"req(?<![a-z0-9]req)(?:uest)?[_.-]?id" + _VALUE, re.ASCII)
_CORRELATION_KEY_RE = re.compile(r"correlation(?<![a-z0-9]correlation)[_.-]?id" + _VALUE, re.ASCII)
_B3_KEY_RE = re.compile(r"b3(?<![a-z0-9-]b3)" + _VALUE, re.ASCII)

# Hex-and-dash shapes, found by scanning for '-' (a literal prefix the regex engine skips to
# quickly); lookbehinds check what precedes the dash, so only real candidates match.
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_TRACEPARENT_BRANCH = (
    rf"(?<={_NOT_ALNUM_BEFORE}00-)([0-9a-fA-F]{{32}})-([0-9a-fA-F]{{16}})-[0-9a-fA-F]{{2}}"
)
_UUID_BRANCH = (
    rf"(?<={_NOT_ALNUM_BEFORE}[0-9a-fA-F]{{8}}-)"
    r"([0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_XRAY_BRANCH = rf"(?<={_NOT_ALNUM_BEFORE}1-)([0-9a-fA-F]{{8}}-[0-9a-fA-F]{{24}})"
_DASH_SCAN = re.compile(
    rf"-(?:{_TRACEPARENT_BRANCH}|{_UUID_BRANCH}|{_XRAY_BRANCH})(?![0-9A-Za-z])", re.ASCII
)
# The same without UUIDs (same group numbers, UUID group never set), for lines whose request
# id is already known: a UUID inside that id need not be looked at again.
_DASH_TRACE_SCAN = re.compile(
    rf"-(?:{_TRACEPARENT_BRANCH}|(?!)()|{_XRAY_BRANCH})(?![0-9A-Za-z])", re.ASCII
)
_DEC_RE = re.compile(r"\d{1,39}", re.ASCII)


def _hex_id(text: str, size: int, zero: bytes) -> bytes | None:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    if len(raw) != size or raw == zero:
        return None
    return raw


def xray_trace_id(text: str) -> bytes | None:
    """W3C trace id for an X-Ray id ``1-<8 hex epoch>-<24 hex>``, as the AWS propagator maps it."""
    if len(text) != 35 or not text.startswith("1-") or text[10] != "-":
        return None
    return _hex_id(text[2:10] + text[11:], 16, _ZERO16)


def trace_id_value(value: object) -> bytes | None:
    """Trace id from a field value: 32 hex, 16 hex (left-padded), X-Ray, GCP trace path."""
    if type(value) is not str:
        return None
    size = len(value)
    if size == 32:
        return _hex_id(value, 16, _ZERO16)
    if size == 16:
        return _hex_id(_PAD16 + value, 16, _ZERO16)
    if size == 35:
        return xray_trace_id(value)
    if size == 55:
        return traceparent_ids(value)[0]
    if "/traces/" in value:  # logging.googleapis.com/trace: projects/P/traces/<32 hex>
        return trace_id_value(value.rpartition("/")[2])
    if value.startswith(("Root=", "root=")):
        return xray_trace_id(value[5:].partition(";")[0])
    return None


def span_id_value(value: object) -> bytes | None:
    """Span id from a field value: 16 hex."""
    if type(value) is not str or len(value) != 16:
        return None
    return _hex_id(value, 8, _ZERO8)


def _decimal(value: object, bits: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DEC_RE.fullmatch(value):
        number = int(value)
    else:
        return None
    if number <= 0 or number >= 1 << bits:
        return None
    return number


def trace_id_decimal(value: object) -> bytes | None:
    """Datadog ``dd.trace_id``: decimal, the low 64 (or all 128) bits of the trace id."""
    number = _decimal(value, 128)
    return None if number is None else number.to_bytes(16, "big")


def span_id_decimal(value: object) -> bytes | None:
    """Datadog ``dd.span_id``: a decimal 64-bit span id."""
    number = _decimal(value, 64)
    return None if number is None else number.to_bytes(8, "big")


def request_id_value(value: object) -> str | None:
    """Request id from a field value: a short non-empty string, or an integer."""
    if isinstance(value, str):
        text = value.strip()
        if text and len(text) <= _MAX_REQUEST_ID:
            return text
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def traceparent_ids(value: str) -> tuple[bytes | None, bytes | None]:
    """(trace id, span id) from a W3C traceparent ``00-<32 hex>-<16 hex>-<2 hex>``."""
    parts = value.split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0].lower() == "ff":
        return None, None
    if len(parts[1]) != 32 or len(parts[2]) != 16 or len(parts[3]) != 2:
        return None, None
    trace = _hex_id(parts[1], 16, _ZERO16)
    span = _hex_id(parts[2], 8, _ZERO8)
    if trace is None or span is None or _hex_id(parts[0] + parts[3], 2, b"") is None:
        return None, None
    return trace, span


def _jaeger_ids(value: str) -> tuple[bytes | None, bytes | None]:
    # uber-trace-id: {trace}:{span}:{parent}:{flags}; Jaeger drops leading zeros.
    parts = value.split(":")
    if len(parts) != 4 or not 0 < len(parts[0]) <= 32 or not 0 < len(parts[1]) <= 16:
        return None, None
    trace = _hex_id(parts[0].rjust(32, "0"), 16, _ZERO16)
    span = _hex_id(parts[1].rjust(16, "0"), 8, _ZERO8)
    return trace, span


def _b3_ids(value: str) -> tuple[bytes | None, bytes | None]:
    # b3: {trace}-{span}[-{sampled}[-{parent}]]; a lone "0"/"1"/"d" carries no ids.
    parts = value.split("-")
    if len(parts) < 2:
        return None, None
    trace = trace_id_value(parts[0]) if len(parts[0]) in (16, 32) else None
    return trace, span_id_value(parts[1])


def _trace_keys(low: str, match: re.Match[str] | None) -> tuple[bytes | None, bytes | None]:
    trace: bytes | None = None
    span: bytes | None = None
    while match is not None:
        kind, value = match.groups()
        if kind == "parent":
            found_trace, found_span = traceparent_ids(value)
            span = span or found_span
        elif len(value) == 32:  # trace_id, traceId, x-b3-traceid, ...
            found_trace = _hex_id(value, 16, _ZERO16)
        elif ":" in value:  # uber-trace-id
            found_trace, found_span = _jaeger_ids(value)
            span = span or found_span
        elif value.isdigit() and low.endswith("dd.", 0, match.start()):
            found_trace = trace_id_decimal(value)
        else:  # 16 hex, x-amzn-trace-id Root=..., GCP trace path
            found_trace = trace_id_value(value)
        trace = trace or found_trace
        if trace is not None and (span is not None or kind != "parent"):
            break
        match = _TRACE_KEY_RE.search(low, match.end())
    return trace, span


def _span_key(low: str, match: re.Match[str] | None) -> bytes | None:
    while match is not None:
        value = match.group(1)
        span: bytes | None = None
        if len(value) == 16:
            span = _hex_id(value, 8, _ZERO8)
        elif value.isdigit() and low.endswith("dd.", 0, match.start()):
            span = span_id_decimal(value)
        if span is not None:
            return span
        match = _SPAN_KEY_RE.search(low, match.end())
    return None


def _request_key(
    line: str, low: str, pattern: re.Pattern[str], match: re.Match[str] | None
) -> str | None:
    while match is not None:
        # Values keep their case: slice the original line (same length unless lower()
        # changed the length of some non-ASCII character, then the lowered value it is).
        raw = line[match.start(1) : match.end(1)] if len(line) == len(low) else match.group(1)
        if len(raw) <= _MAX_REQUEST_ID:
            return raw
        match = pattern.search(low, match.end())
    return None


def _dash_ids(
    line: str,
    pattern: re.Pattern[str],
    match: re.Match[str] | None,
    trace: bytes | None,
    span: bytes | None,
    request: str | None,
) -> tuple[bytes | None, bytes | None, str | None]:
    xray: str | None = None
    uuid: str | None = None
    while match is not None:
        tp_trace, tp_span, uuid_tail, xray_tail = match.groups()
        if tp_trace is not None:
            if trace is None:
                trace = _hex_id(tp_trace, 16, _ZERO16)
            if span is None:
                span = _hex_id(tp_span, 8, _ZERO8)
        elif uuid_tail is not None:
            if uuid is None:
                start = match.start()
                uuid = line[start - 8 : start] + "-" + uuid_tail
        elif xray is None:
            xray = "1-" + xray_tail
        if trace is not None and span is not None and (request is not None or xray is not None):
            break
        match = pattern.search(line, match.end())
    if xray is not None and trace is None:
        trace = xray_trace_id(xray)
    if request is None:
        request = xray if xray is not None else uuid
    return trace, span, request


def scan_ids(
    line: str, need_trace: bool = True, need_span: bool = True, need_request: bool = True
) -> tuple[bytes | None, bytes | None, str | None]:
    """(trace id, span id, request id) found anywhere in ``line``; explicit keys win.

    X-Ray ids give a trace id and, failing an explicit request id, the request id too; a UUID
    is a request id only when nothing better is present. The ``need_*`` flags skip work for
    ids the caller already has (what is returned for those is unspecified).
    """
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    low = line.lower()
    if need_trace or need_span:
        # Trace keys yield a span id only through traceparent/uber-trace-id.
        if "trace" in low and (need_trace or "parent" in low or "uber" in low):
            match = _TRACE_KEY_RE.search(low)
            if match is not None:
                trace, span = _trace_keys(low, match)
        if span is None and need_span and "span" in low:
            match = _SPAN_KEY_RE.search(low)
            if match is not None:
                span = _span_key(low, match)
        if (trace is None or span is None) and "b3" in low:
            match = _B3_KEY_RE.search(low)
            if match is not None:
                b3_trace, b3_span = _b3_ids(match.group(1))
                trace = trace or b3_trace
                span = span or b3_span
    if need_request:
        if "req" in low:
            match = _REQUEST_KEY_RE.search(low)
            if match is not None:
                request = _request_key(line, low, _REQUEST_KEY_RE, match)
        if request is None and "correl" in low:
            match = _CORRELATION_KEY_RE.search(low)
            if match is not None:
                request = _request_key(line, low, _CORRELATION_KEY_RE, match)
    if (
        (need_trace and trace is None)
        or (need_span and span is None)
        or (need_request and request is None)
    ):
        pattern = _DASH_SCAN if request is None else _DASH_TRACE_SCAN
        match = pattern.search(line)
        if match is not None:
            return _dash_ids(line, pattern, match, trace, span, request)
    return trace, span, request
