"""Collector errors onto wire codes, in one place, as the OTLP spec says.

Decode errors are permanent (HTTP 400 / gRPC INVALID_ARGUMENT): the sender must not
retry. A full queue or a shutdown is transient (HTTP 503 with ``Retry-After`` / gRPC
UNAVAILABLE): the sender keeps the data and retries.
"""

from __future__ import annotations

import json

import grpc

from collector.errors import CollectorError, DecodeError, QueueFullError

__all__ = ["encode_status", "grpc_code", "http_status", "retry_after"]

# google.rpc.Status code numbers, for error bodies.
_RPC_INVALID_ARGUMENT = 3
_RPC_RESOURCE_EXHAUSTED = 8
_RPC_UNAVAILABLE = 14
_RPC_INTERNAL = 13


def http_status(exc: CollectorError) -> int:
    if isinstance(exc, DecodeError):
        return 400
    if isinstance(exc, QueueFullError):
        return 503
    return 500


def grpc_code(exc: CollectorError) -> grpc.StatusCode:
    if isinstance(exc, DecodeError):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(exc, QueueFullError):
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def retry_after(exc: CollectorError) -> int | None:
    """Seconds the sender should wait before retrying, or None if it must not retry."""
    return exc.retry_after_s if isinstance(exc, QueueFullError) else None


def encode_status(http_code: int, message: str, *, as_json: bool) -> bytes:
    """A ``google.rpc.Status`` body, the error payload OTLP/HTTP specifies."""
    code = {
        400: _RPC_INVALID_ARGUMENT,
        413: _RPC_RESOURCE_EXHAUSTED,
        415: _RPC_INVALID_ARGUMENT,
        503: _RPC_UNAVAILABLE,
    }.get(http_code, _RPC_INTERNAL)
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()
    text = message.encode()
    return bytes([0x08, code, 0x12]) + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
