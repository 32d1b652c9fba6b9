"""OTLP/gRPC status codes: bad data, oversized messages, shedding load."""

from __future__ import annotations

import os

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.conftest import Running

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def request(
    n: int, *, trace_id: bytes | None = None, name: str = "op"
) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    trace_id = trace_id or os.urandom(16)
    for _ in range(n):
        s = spans.add()
        s.trace_id = trace_id
        s.span_id = os.urandom(8)
        s.name = name
        s.start_time_unix_nano = 1
        s.end_time_unix_nano = 2
    return req


async def call_raw(target: str, body: bytes) -> grpc.aio.AioRpcError | bytes:
    async with grpc.aio.insecure_channel(target) as channel:
        export = channel.unary_unary(EXPORT)
        try:
            result: bytes = await export(body, timeout=10)
            return result
        except grpc.aio.AioRpcError as exc:
            return exc


async def test_valid_request_and_partial_success(gasoline: Running) -> None:
    req = request(2)
    req.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01"
    async with grpc.aio.insecure_channel(gasoline.grpc) as channel:
        response = await TraceServiceStub(channel).Export(req, timeout=10)
    assert isinstance(response, ExportTraceServiceResponse)
    assert response.partial_success.rejected_spans == 1
    assert "span id" in response.partial_success.error_message


@pytest.mark.parametrize(
    "body",
    [b"\x0a\xff\xff\xff\x0f", b"\xff" * 64, bytes(range(256))],
    ids=["truncated", "ff", "bytes"],
)
async def test_garbage_is_invalid_argument_and_daemon_keeps_serving(
    gasoline: Running, body: bytes
) -> None:
    trace_id = os.urandom(16)
    assert isinstance(
        await call_raw(gasoline.grpc, request(1, trace_id=trace_id).SerializeToString()), bytes
    )
    error = await call_raw(gasoline.grpc, body)
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP ExportTraceServiceRequest" in (error.details() or "")
    await gasoline.settled()
    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id.hex()}")
    assert status == 200 and doc["span_count"] == 1


async def test_message_over_the_limit_is_refused(start_daemon) -> None:  # type: ignore[no-untyped-def]
    gasoline = await start_daemon(
        "receivers: {otlp: {protocols: {grpc: {max_recv_msg_size_mib: 1}}}}"
    )
    big = request(1, name="x" * (1024 * 1024 + 10)).SerializeToString()
    error = await call_raw(gasoline.grpc, big)
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert isinstance(await call_raw(gasoline.grpc, request(3).SerializeToString()), bytes)


async def test_shedding_load_is_unavailable(start_daemon) -> None:  # type: ignore[no-untyped-def]
    gasoline = await start_daemon("service: {queue: {max_items: 4}}")
    error = await call_raw(gasoline.grpc, request(5).SerializeToString())
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "queue is full" in (error.details() or "")
    _, status = await gasoline.get_json("/daemon/status")
    assert status["receivers"]["otlp/grpc"]["counts"]["unavailable"] == 1


async def test_logs_service_garbage(gasoline: Running) -> None:
    async with grpc.aio.insecure_channel(gasoline.grpc) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.logs.v1.LogsService/Export")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await export(b"\x0a\x05abc", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
