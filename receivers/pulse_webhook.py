"""``POST /webhook/event``: the DebugQueue shape, checked strictly, as a stored event.

Body: ``{"eventType": str, "correlationId": str, "details": {"service": str,
"errorCode": str, ...free fields}, "priority": "low"|"normal"|"high"|"critical"}``
(``priority`` optional). The event is stored like any other (it shows on the timeline,
linked by its correlation id) and TracePulse finds it there, as it finds the same fields
on an OTel log record: one way in for every trigger.
"""

from __future__ import annotations

import re
import time
from typing import Any

from collector.errors import DecodeError
from collector.model import Record
from collector.pulse import PRIORITIES

__all__ = ["WEBHOOK_PATH", "webhook_record"]

WEBHOOK_PATH = "/webhook/event"
_FIELDS = ("eventType", "correlationId", "details", "priority")
_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
_MAX_ID = 256


def webhook_record(data: Any, now_ns: int | None = None) -> Record:
    """The stored event for a webhook body; ``DecodeError`` names the field that is wrong."""
    if not isinstance(data, dict):
        raise DecodeError("body: expected a JSON object with eventType, correlationId, details")
    for key in data:
        if key not in _FIELDS:
            raise DecodeError(f"{str(key)[:40]}: unknown field (allowed: {', '.join(_FIELDS)})")
    event_type = _required_text(data, "eventType", "")
    if not _NAME.match(event_type):
        raise DecodeError(
            "eventType: expected 1-128 letters, digits or _ . : / - (e.g. SESSION_DROP)"
        )
    correlation_id = _required_text(data, "correlationId", "")
    if len(correlation_id) > _MAX_ID:
        raise DecodeError(f"correlationId: longer than {_MAX_ID} characters")
    details = data.get("details")
    if not isinstance(details, dict):
        raise DecodeError("details: required, an object with service and errorCode")
    service = _required_text(details, "service", "details.")
    error_code = _required_text(details, "errorCode", "details.")
    priority = data.get("priority", "normal")
    if priority not in PRIORITIES:
        raise DecodeError(
            f"priority: {str(priority)[:40]!r} must be one of {', '.join(PRIORITIES)}"
        )
    return Record(
        time_ns=now_ns or time.time_ns(),
        source="custom",
        level="critical" if priority == "critical" else "error",
        message=f"{event_type} in {service}: {error_code}",
        service=service,
        correlation_id=correlation_id,
        tags=("debugqueue", "webhook"),
        attributes={
            "eventType": event_type,
            "correlationId": correlation_id,
            "priority": priority,
            "details": details,
        },
        kind="event",
    )


def _required_text(data: dict[str, Any], key: str, prefix: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        state = "required" if value is None else f"expected a non-empty string, got {value!r:.40}"
        raise DecodeError(f"{prefix}{key}: {state}")
    return value
