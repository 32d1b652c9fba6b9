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
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")

# Keys are matched on the lowercased line; the alternation order makes the longest names win
# at a position (x-b3-traceid before a bare traceid, parent_span_id before span_id).
_KEY_SOURCE = (
    r"(traceparent|uber-trace-id|x-amzn-trace-id|x-b3-traceid|x-b3-spanid|x-b3-parentspanid|b3"
    r"|dd\.trace_id|dd\.span_id|otel(?:trace|span)id|parent[_.-]?span[_.-]?id|parent[_.-]?id"
    r"|trace[_.-]?id|span[_.-]?id|aws[_-]?request[_-]?id"
    r"|(?:x-)?(?:request|req|correlation)[_.-]?id)"
    r"[\"']?\s*[=:]\s*[\"']?([^\s\"',;&\]\)}>]+)"
)
_KEY_SCAN = re.compile(_KEY_SOURCE, re.ASCII)
_KEY_SCAN_ANYCASE = re.compile(_KEY_SOURCE, re.ASCII | re.IGNORECASE)

# Hex-and-dash shapes, found by scanning for '-' (a literal prefix the regex engine skips to
# quickly); the characters before the dash are checked in Python for the rare candidates.
_DASH_SCAN = re.compile(
    r"-(?:([0-9a-fA-F]{32})-([0-9a-fA-F]{16})-[0-9a-fA-F]{2}"  # traceparent after "00"
    r"|([0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"  # UUID after 8 hex
    r"|([0-9a-fA-F]{8})-([0-9a-fA-F]{24}))"  # X-Ray after "1"
    r"(?![0-9A-Za-z])",
    re.ASCII,
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


def _key_ids(
    line: str, low: str
) -> tuple[bytes | None, bytes | None, str | None]:
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    same = len(low) == len(line)
    matches = _KEY_SCAN.finditer(low) if same else _KEY_SCAN_ANYCASE.finditer(line)
    for match in matches:
        start = match.start()
        if start and (low if same else line)[start - 1].isalnum():
            continue
        key = match.group(1).lower()
        value = match.group(2)
        first = key[0]
        if first == "t" and key == "traceparent":
            t, s = traceparent_ids(value)
        elif first == "u":
            t, s = _jaeger_ids(value)
        elif key == "b3":
            t, s = _b3_ids(value)
        elif key == "x-amzn-trace-id":
            t, s = trace_id_value(value), None
        elif first == "p":
            continue
        elif key.startswith("dd."):
            if key[3] == "t":
                t, s = trace_id_decimal(value), None
            else:
                t, s = None, span_id_decimal(value)
        elif "trace" in key:
            t, s = trace_id_value(value), None
        elif "span" in key:
            t, s = None, span_id_value(value)
        else:
            if request is None:
                request = request_id_value(line[match.start(2) : match.end(2)])
            continue
        if trace is None:
            trace = t
        if span is None:
            span = s
    return trace, span, request


def scan_ids(
    line: str, need_trace: bool = True, need_span: bool = True, need_request: bool = True
) -> tuple[bytes | None, bytes | None, str | None]:
    """(trace id, span id, request id) found anywhere in ``line``; explicit keys win.

    X-Ray ids give a trace id and, failing an explicit request id, the request id too; a UUID
    is a request id only when nothing better is present.
    """
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    low = line.lower()
    if (
        "trace" in low
        or "span" in low
        or "req" in low
        or "correl" in low
        or "b3" in low
    ):
        trace, span, request = _key_ids(line, low)
    if (need_trace and trace is None) or (need_request and request is None):
        if "-" in line:
            xray: str | None = None
            uuid: str | None = None
            for match in _DASH_SCAN.finditer(line):
                start = match.start()
                tp_trace, tp_span, uuid_tail, xr_epoch, xr_rest = match.groups()
                if tp_trace is not None:
                    if (
                        start >= 2
                        and line[start - 2 : start] == "00"
                        and (start == 2 or line[start - 3] not in _ALNUM)
                    ):
                        if trace is None:
                            trace = _hex_id(tp_trace, 16, _ZERO16)
                        if span is None:
                            span = _hex_id(tp_span, 8, _ZERO8)
                elif uuid_tail is not None:
                    head = line[start - 8 : start] if start >= 8 else ""
                    if (
                        uuid is None
                        and len(head) == 8
                        and all(c in _HEX for c in head)
                        and (start == 8 or line[start - 9] not in _ALNUM)
                    ):
                        uuid = head + "-" + uuid_tail
                elif (
                    xray is None
                    and start >= 1
                    and line[start - 1] == "1"
                    and (start == 1 or line[start - 2] not in _ALNUM)
                ):
                    xray = "1-" + xr_epoch + "-" + xr_rest
            if xray is not None and trace is None:
                trace = xray_trace_id(xray)
            if request is None:
                request = xray if xray is not None else uuid
    if not need_trace:
        trace = None
    if not need_span:
        span = None
    if not need_request:
        request = None
    return trace, span, request
