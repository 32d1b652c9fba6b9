"""OTLP/gRPC and OTLP/HTTP share the ingest queue: a flood of one leaves the other its share."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable

import aiohttp
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collector.pipeline import Pipeline
from tests.conftest import Running, wait_for

FLOOD_SPANS = 100


def _flood_body() -> bytes:
    """An Export request of FLOOD_SPANS spans in one new trace."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = "flood"
    spans = resource_spans.scope_spans.add().spans
    trace_id = os.urandom(16)
    for i in range(FLOOD_SPANS):
        span = spans.add()
        span.trace_id, span.span_id, span.name = trace_id, os.urandom(8), f"flood {i}"
        span.start_time_unix_nano, span.end_time_unix_nano = 1_000 + i, 2_000 + i
    return request.SerializeToString()


async def _flood(url: str, statuses: Counter[str], stop: asyncio.Event) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    async with aiohttp.ClientSession() as http:
        while not stop.is_set():
            async with http.post(url, data=_flood_body(), headers=headers) as response:
                await response.read()
                retry = response.headers.get("Retry-After")
                statuses[
                    f"{response.status} retry-after {retry}" if retry else f"{response.status}"
                ] += 1


async def test_a_grpc_export_succeeds_while_an_http_flood_holds_the_queue_full(
    start_daemon: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer is held back, so the flood keeps the queue full for as long as it runs;
    the gRPC export still gets into the share kept for it, on the first try."""
    pipeline_start = Pipeline.start

    async def held_back(self: Pipeline) -> None:
        pass

    monkeypatch.setattr(Pipeline, "start", held_back)
    gasoline = await start_daemon("service:\n  queue: {max_items: 3000}\n")  # type: ignore[misc]
    assert isinstance(gasoline, Running)
    pipeline = gasoline.daemon.pipeline
    assert pipeline.reserve == 500  # otlp/grpc, otlp/http, native: a sixth each

    statuses: Counter[str] = Counter()
    stop = asyncio.Event()
    url = f"{gasoline.http}/v1/traces"
    flood = [asyncio.create_task(_flood(url, statuses, stop)) for _ in range(4)]
    try:
        await wait_for(lambda: statuses["503 retry-after 1"] >= 20, timeout=30)
        provider = TracerProvider(resource=Resource.create({"service.name": "api"}))
        finished = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(finished))
        tracer = provider.get_tracer("api")
        with tracer.start_as_current_span("POST /api/orders") as root:
            for name in ("SELECT orders", "INSERT order_items", "POST payments"):
                with tracer.start_as_current_span(name):
                    pass
        exporter = GrpcSpanExporter(endpoint=gasoline.grpc, insecure=True, timeout=10)
        result = await asyncio.to_thread(exporter.export, finished.get_finished_spans())
        await asyncio.to_thread(exporter.shutdown)
        flooded = statuses["503 retry-after 1"]
        await wait_for(lambda: statuses["503 retry-after 1"] > flooded, timeout=30)
    finally:
        stop.set()
        await asyncio.gather(*flood)

    assert result is SpanExportResult.SUCCESS
    assert set(statuses) == {"200", "503 retry-after 1"}
    receivers = (await gasoline.get_json("/daemon/status"))[1]["pipeline"]["receivers"]
    assert receivers["otlp/grpc"] == {"queued": 4, "accepted": {"spans": 4}, "dropped": {}}
    http = receivers["otlp/http"]
    assert http["accepted"] == {"spans": statuses["200"] * FLOOD_SPANS}
    assert http["dropped"] == {"spans": {"queue_full": statuses["503 retry-after 1"] * FLOOD_SPANS}}
    # The flood filled all it may: everything but the reserves of gRPC and the native API.
    assert http["queued"] == 3000 - 2 * pipeline.reserve

    await pipeline_start(pipeline)  # the consumer catches up: the gRPC spans are stored
    await gasoline.settled()
    trace_id = format(root.get_span_context().trace_id, "032x")
    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert status == 200 and doc["span_count"] == 4
