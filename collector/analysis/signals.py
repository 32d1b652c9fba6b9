"""What a span says about failure and about its role: errors, HTTP codes, peers, databases.

Attribute names follow the OTel semantic conventions, current and older
(``http.response.status_code`` and ``http.status_code``, ``server.address`` and
``net.peer.name``), since real services send both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from collector.model import SpanKind, StatusCode
from collector.trace_tree import Node

__all__ = [
    "Failure",
    "answered_ok",
    "failure_of",
    "http_method",
    "http_status",
    "http_url",
    "is_browser",
    "is_database",
    "peer_of",
]

_HTTP_STATUS_KEYS = ("http.response.status_code", "http.status_code", "status")
_HTTP_METHOD_KEYS = ("http.request.method", "http.method", "method")
_PEER_KEYS = ("peer.service", "server.address", "net.peer.name", "db.name", "rpc.service")
_URL_KEYS = ("url.full", "http.url", "url")
_PATH_KEYS = ("http.route", "url.path", "http.target")


@dataclass(slots=True)
class Failure:
    """Why a span counts as failed. ``strength``: 3 says where it started (an exception,
    an error log), 2 says what failed (a status message, a failed call to a peer with no
    spans of its own), 1 only that it failed (a bare error status or a 5xx)."""

    strength: int
    message: str
    evidence: list[dict[str, Any]] = field(default_factory=list)


def http_status(attributes: dict[str, Any]) -> int | None:
    for key in _HTTP_STATUS_KEYS:
        value = attributes.get(key)
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def http_method(attributes: dict[str, Any]) -> str | None:
    for key in _HTTP_METHOD_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value.upper()
    return None


def http_url(attributes: dict[str, Any]) -> str | None:
    """The full URL if known, else the route or path."""
    for key in (*_URL_KEYS, *_PATH_KEYS):
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def peer_of(attributes: dict[str, Any]) -> str | None:
    for key in _PEER_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return value
    for key in _URL_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return urlsplit(value).hostname or value
    return None


def is_database(node: Node) -> bool:
    return "db.system" in node.detail().attributes or "db.system.name" in node.detail().attributes


def is_browser(node: Node) -> bool:
    resource = node.detail().resource
    return resource.get("telemetry.sdk.language") == "webjs" or "browser.platform" in resource


def failure_of(node: Node) -> Failure | None:
    """The failure a span shows by itself and through the error logs attached to it."""
    detail = node.detail()
    attributes = detail.attributes
    evidence: list[dict[str, Any]] = []
    best: tuple[int, str] | None = None

    def note(strength: int, message: str, item: dict[str, Any]) -> None:
        nonlocal best
        evidence.append(item)
        if best is None or strength > best[0]:
            best = (strength, message)

    for event in detail.events:
        if event.name == "exception":
            kind = str(event.attributes.get("exception.type", "exception"))
            text = str(event.attributes.get("exception.message", ""))
            item: dict[str, Any] = {"type": "exception", "exception_type": kind, "message": text}
            stack = event.attributes.get("exception.stacktrace")
            if isinstance(stack, str) and stack:
                item["stacktrace"] = _stack_tail(stack)
            note(3, f"{kind}: {text}" if text else kind, item)
    for record in node.error_logs:
        note(
            3,
            record.message,
            {
                "type": "log",
                "record_id": str(record.id),
                "level": record.level,
                "message": record.message,
            },
        )
    status = http_status(attributes)
    leaf_call = node.kind == SpanKind.CLIENT and not node.children
    if node.is_error and detail.status_message:
        note(2, detail.status_message, {"type": "status", "message": detail.status_message})
    if status is not None and (status >= 500 or (status >= 400 and node.kind == SpanKind.CLIENT)):
        peer = peer_of(attributes)
        if leaf_call:
            note(
                2,
                f"{peer or 'the peer'} answered HTTP {status}",
                {"type": "http_status", "status_code": status, "peer": peer},
            )
        else:
            note(1, f"HTTP {status}", {"type": "http_status", "status_code": status})
    grpc_code = attributes.get("rpc.grpc.status_code")
    if isinstance(grpc_code, int) and grpc_code != 0:
        note(
            2 if leaf_call else 1,
            f"gRPC status {grpc_code}",
            {"type": "grpc_status", "status_code": grpc_code},
        )
    if node.is_error and best is None:
        note(1, "error status", {"type": "status", "message": ""})
    if best is None:
        return None
    strength, message = best
    if leaf_call and strength < 2:
        peer = peer_of(attributes)
        strength, message = 2, f"call to {peer or node.span.name} failed"
    return Failure(strength, message, evidence)


def answered_ok(node: Node, *, caller_failed: bool = False) -> bool:
    """Whether a span that did not fail itself says it answered successfully, so that an
    error below it was handled (a fallback, a retry that worked) rather than propagated.

    Success is explicit: status OK, an HTTP 1xx-3xx, or gRPC status 0; or a SERVER span
    with no error status and no code (server instrumentations set ERROR on a failed
    request), unless its caller failed: then its silence is no evidence. A 4xx is not a
    success: the error below it is why the caller got it. An INTERNAL or CLIENT span with
    neither status nor code says nothing about its answer. Call only for spans
    ``failure_of`` found no failure in.
    """
    if node.span.status == StatusCode.OK:
        return True
    attributes = node.detail().attributes
    status = http_status(attributes)
    if status is not None:
        return status < 400
    grpc_code = attributes.get("rpc.grpc.status_code")
    if isinstance(grpc_code, int):
        return grpc_code == 0
    return node.kind == SpanKind.SERVER and not caller_failed


_STACK_LINES = 6
_FRAME_HEADS = ("File ", "at ")  # Python's and JavaScript/Java's first line of a frame


def _stack_tail(stack: str) -> str:
    """The last lines of a stack trace (the failing frames and the exception), starting at a
    frame's first line and saying how many lines came before."""
    lines = stack.strip().splitlines()
    if len(lines) <= _STACK_LINES:
        return "\n".join(lines)
    start = len(lines) - _STACK_LINES
    while start > 0 and not lines[start].lstrip().startswith(_FRAME_HEADS):
        start -= 1
        if len(lines) - start > 2 * _STACK_LINES:  # no frame heads: keep the plain tail
            start = len(lines) - _STACK_LINES
            break
    return "\n".join([f"… ({start} earlier lines)", *lines[start:]])
