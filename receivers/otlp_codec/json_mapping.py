"""OTLP/JSON to protobuf: hex ids to the base64 protobuf's JSON mapping expects,
unknown fields ignored, anything else a DecodeError naming the problem."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message

from collector.errors import DecodeError
from collector.limits import json_int

# OTLP/JSON writes ids as hex, where protobuf's JSON mapping expects base64.
_ID_FIELDS = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
_NESTED = {
    "resourceSpans": ("scopeSpans", "scope_spans"),
    "resource_spans": ("scopeSpans", "scope_spans"),
    "scopeSpans": ("spans",),
    "scope_spans": ("spans",),
    "spans": ("links",),
    "resourceLogs": ("scopeLogs", "scope_logs"),
    "resource_logs": ("scopeLogs", "scope_logs"),
    "scopeLogs": ("logRecords", "log_records"),
    "scope_logs": ("logRecords", "log_records"),
}


M = TypeVar("M", bound=Message)


def parse_request(
    body: bytes, message_type: type[M], top_key: str, *, is_json: bool
) -> tuple[bytes, M]:
    """The request's protobuf bytes and message, from a protobuf or an OTLP/JSON body.

    Raises ``DecodeError`` naming the message type expected.
    """
    raw = _json_to_protobuf(body, message_type, top_key) if is_json else body
    try:
        return raw, message_type.FromString(raw)
    except (ProtobufDecodeError, RuntimeError) as exc:
        raise DecodeError(f"body is not a valid OTLP {message_type.__name__}: {exc}") from exc


def _json_to_protobuf(body: bytes, message_type: type[Message], top_key: str) -> bytes:
    try:
        data = json.loads(body, parse_int=json_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise DecodeError("body is not valid JSON: it nests too deep to parse") from exc
    if not isinstance(data, dict):
        raise DecodeError(f"body is not an OTLP/JSON request: expected an object with {top_key!r}")
    snake = "".join("_" + c.lower() if c.isupper() else c for c in top_key)
    if data and top_key not in data and snake not in data:
        raise DecodeError(
            f"body is not an OTLP/JSON request: expected an object with {top_key!r}, "
            f"got keys {sorted(data)[:5]}"
        )
    try:
        for key in (top_key, snake):
            if key in data:
                _hex_ids_to_base64(data[key], key)
        message = json_format.ParseDict(data, message_type(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise DecodeError(f"body is not a valid OTLP/JSON request: {exc}") from exc
    return bytes(message.SerializeToString())


def _hex_ids_to_base64(items: Any, key: str) -> None:
    """Rewrite hex ids in place. A malformed id is left as is (not base64 of anything
    meaningful), so the item decodes with an id of the wrong length and is rejected."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, dict):
            continue
        for field, value in item.items():
            if field in _ID_FIELDS and isinstance(value, str):
                item[field] = _hex_to_base64(value)
        for child in _NESTED.get(key, ()):
            if child in item:
                _hex_ids_to_base64(item[child], child)


def _hex_to_base64(value: str) -> str:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b"\xff"  # one byte: wrong length for any id, so the item is rejected
    return base64.b64encode(raw).decode()
