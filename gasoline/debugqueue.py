"""DebugQueue: tag a critical event from application code, for TracePulse to report.

Standard library only, so any Python service can import it without Gasoline's
dependencies::

    from gasoline import debugqueue
    debugqueue.log("SESSION_DROP", {"service": "SessionManager", "errorCode": "TIMEOUT"},
                   "high", correlation_id=request_id)

It posts to the daemon's ``POST /webhook/event`` (``GASOLINE_URL``, default
``http://127.0.0.1:7890``; ``GASOLINE_TOKEN`` when the daemon requires one) and never
raises into the caller: a daemon that is down, slow or refuses the event makes ``log``
return False, after at most ``timeout`` seconds.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["log"]

_DEFAULT_URL = "http://127.0.0.1:7890"


def log(
    event_type: str,
    details: Mapping[str, Any],
    priority: str = "normal",
    *,
    correlation_id: str | None = None,
    url: str | None = None,
    timeout: float = 2.0,
) -> bool:
    """Send one event; True when the daemon accepted it. ``details`` needs ``service``
    (default: ``$OTEL_SERVICE_NAME``) and ``errorCode``; ``correlation_id`` defaults to
    ``details["correlationId"]``, else a new id. Never raises."""
    try:
        fields = dict(details)
        cid = correlation_id or fields.pop("correlationId", None) or uuid.uuid4().hex
        if "service" not in fields and os.environ.get("OTEL_SERVICE_NAME"):
            fields["service"] = os.environ["OTEL_SERVICE_NAME"]
        body = {
            "eventType": event_type,
            "correlationId": str(cid),
            "details": fields,
            "priority": priority,
        }
        base = (url or os.environ.get("GASOLINE_URL") or _DEFAULT_URL).rstrip("/")
        headers = {"Content-Type": "application/json"}
        token = os.environ.get("GASOLINE_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            base + "/webhook/event",
            data=json.dumps(body, default=str).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except Exception:  # the caller's failure path must never fail because of this
        return False
