"""OTLP values to Python: attributes, log bodies, service names, id problems."""

from __future__ import annotations

import base64
import json
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector.model import ZERO_SPAN_ID

__all__ = ["attributes_to_dict"]

_ZERO_TRACE_ID = bytes(16)
_UNKNOWN_SERVICE = "unknown_service"
# Times are kept as signed 64-bit nanoseconds (array "q"): up to the year 2262.
_MAX_TIME_NS = 1 << 63


def attributes_to_dict(attributes: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` list to a plain dict (later duplicates win, as in the SDKs)."""
    return {kv.key: _any_value(kv.value) for kv in attributes}


def _any_value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes_to_dict(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def _body_text(value: AnyValue) -> str:
    body = _any_value(value)
    if isinstance(body, str):
        return body
    return json.dumps(body, separators=(",", ":"), default=str)


def _service_name(resource: Resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value or _UNKNOWN_SERVICE
    return _UNKNOWN_SERVICE


def _bad_ids_message(
    what: str, position: int, trace_id: bytes, span_id: bytes, parent_id: bytes
) -> str:

    problems = []
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID:
        problems.append(f"trace id {trace_id.hex()!r} must be 16 non-zero bytes")
    if what == "span" and (len(span_id) != 8 or span_id == ZERO_SPAN_ID):
        problems.append(f"span id {span_id.hex()!r} must be 8 non-zero bytes")
    if what != "span" and span_id and len(span_id) != 8:
        problems.append(f"span id {span_id.hex()!r} must be 8 bytes")
    if parent_id and len(parent_id) != 8:
        problems.append(f"parent span id {parent_id.hex()!r} must be 8 bytes")
    return f"{what} #{position}: " + "; ".join(problems)


def _bad_time_message(what: str, position: int, *fields: tuple[str, int]) -> str:
    problems = [
        f"{name} {value} is out of range" for name, value in fields if value >= _MAX_TIME_NS
    ]
    return f"{what} #{position}: " + "; ".join(problems) + " (must be below 2^63 ns, year 2262)"
