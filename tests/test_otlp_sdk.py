"""The official OpenTelemetry Python SDK exporters, gRPC and HTTP, against a real daemon."""

from __future__ import annotations

import asyncio
import time

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.conftest import Running


def _provider(service: str, exporter: object) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    return provider


def _flat(spans: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    out: dict[str, dict] = {}  # type: ignore[type-arg]
    stack = list(spans)
    while stack:
        span = stack.pop()
        out[span["name"]] = span
        stack.extend(span["children"])
    return out


async def test_spans_from_grpc_and_http_exporters_form_one_tree(gasoline: Running) -> None:
    """A browser-ish service exports over HTTP, the API over gRPC; one trace, one tree."""
    frontend = _provider("frontend", HttpSpanExporter(endpoint=f"{gasoline.http}/v1/traces"))
    api = _provider("api", GrpcSpanExporter(endpoint=gasoline.grpc, insecure=True))

    def run() -> str:
        with frontend.get_tracer("web").start_as_current_span(
            "GET /checkout", kind=SpanKind.CLIENT
        ) as root:
            tracer = api.get_tracer("api")
            with tracer.start_as_current_span("POST /api/orders", kind=SpanKind.SERVER) as server:
                server.set_attribute("http.response.status_code", 500)
                server.set_attribute("http.request.header.authorization", "Bearer s3cret")
                with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as db:
                    db.set_attribute("db.system", "postgresql")
                    db.set_status(Status(StatusCode.ERROR, "statement timeout"))
                    db.record_exception(TimeoutError("statement timeout"))
        frontend.shutdown()
        api.shutdown()
        return format(root.get_span_context().trace_id, "032x")

    trace_id = await asyncio.to_thread(run)
    await gasoline.settled()
    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert status == 200
    assert doc["span_count"] == 3 and doc["error_count"] == 1 and doc["orphan_count"] == 0
    assert set(doc["services"]) == {"frontend", "api"}
    [root] = doc["spans"]
    assert (root["name"], root["service"], root["kind"]) == ("GET /checkout", "frontend", "CLIENT")
    [server] = root["children"]
    assert (server["name"], server["service"], server["kind"]) == (
        "POST /api/orders",
        "api",
        "SERVER",
    )
    assert server["attributes"]["http.response.status_code"] == 500
    assert server["attributes"]["http.request.header.authorization"] == "[REDACTED]"
    [db] = server["children"]
    assert db["status"] == "ERROR" and db["status_message"] == "statement timeout"
    assert db["events"][0]["name"] == "exception"
    assert db["events"][0]["attributes"]["exception.type"] == "TimeoutError"
    assert db["parent_span_id"] == server["span_id"]
    assert server["parent_span_id"] == root["span_id"]


async def test_child_arriving_before_its_parent_attaches_when_the_parent_arrives(
    gasoline: Running,
) -> None:
    memory = InMemorySpanExporter()
    provider = _provider("api", memory)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("parent") as parent, tracer.start_as_current_span("child"):
        pass
    child_span, parent_span = memory.get_finished_spans()  # the child ends first
    exporter = GrpcSpanExporter(endpoint=gasoline.grpc, insecure=True)
    trace_id = format(parent.get_span_context().trace_id, "032x")

    await asyncio.to_thread(exporter.export, [child_span])
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert doc["orphan_count"] == 1
    assert doc["spans"][0]["name"] == "child" and doc["spans"][0]["orphan"] is True

    await asyncio.to_thread(exporter.export, [parent_span])
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert doc["orphan_count"] == 0
    [root] = doc["spans"]
    assert root["name"] == "parent" and [c["name"] for c in root["children"]] == ["child"]
    exporter.shutdown()


async def test_logs_from_both_exporters_attach_to_their_trace(gasoline: Running) -> None:
    tracer_provider = _provider("api", GrpcSpanExporter(endpoint=gasoline.grpc, insecure=True))
    resource = Resource.create({"service.name": "api"})
    log_providers = []
    for exporter in (
        GrpcLogExporter(endpoint=gasoline.grpc, insecure=True),
        HttpLogExporter(endpoint=f"{gasoline.http}/v1/logs"),
    ):
        log_provider = LoggerProvider(resource=resource)
        log_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        log_providers.append(log_provider)
    loggers = [p.get_logger("app") for p in log_providers]

    def run() -> str:
        tracer = tracer_provider.get_tracer("t")
        with tracer.start_as_current_span("POST /api/pay") as span:
            for logger in loggers:
                logger.emit(
                    severity_number=SeverityNumber.ERROR,
                    severity_text="ERROR",
                    body="card declined for order 42",
                    attributes={"order.id": 42},
                )
        for logger in loggers:
            logger.emit(severity_number=SeverityNumber.WARN, body="outside any trace")
        tracer_provider.shutdown()
        for p in log_providers:
            p.shutdown()
        return format(span.get_span_context().trace_id, "032x")

    trace_id = await asyncio.to_thread(run)
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    records = doc["records"]
    assert len(records) == 2  # one per exporter
    for record in records:
        assert record["message"] == "card declined for order 42"
        assert record["level"] == "error" and record["service"] == "api"
        assert record["span_id"] == doc["spans"][0]["span_id"]
        assert record["metadata"] == {"order.id": 42}
    _, timeline = await gasoline.get_json("/buffers/timeline?text=outside")
    assert [e["level"] for e in timeline["events"]] == ["warn", "warn"]
    assert timeline["events"][0]["trace_id"] is None


async def test_metrics_are_accepted_and_counted(gasoline: Running) -> None:
    reader = PeriodicExportingMetricReader(
        GrpcMetricExporter(endpoint=gasoline.grpc, insecure=True), export_interval_millis=60_000
    )
    provider = MeterProvider(metric_readers=[reader])
    counter = provider.get_meter("m").create_counter("requests")
    counter.add(3, {"route": "/a"})
    counter.add(1, {"route": "/b"})
    await asyncio.to_thread(provider.force_flush)
    await asyncio.to_thread(provider.shutdown)
    _, status = await gasoline.get_json("/daemon/status")
    assert status["pipeline"]["accepted"]["metric_points"] >= 2


async def test_sdk_default_env_endpoint_works(start_daemon, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """OTEL_EXPORTER_OTLP_ENDPOINT alone points the HTTP exporter at us."""
    gasoline = await start_daemon()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", gasoline.http)
    provider = _provider("env-service", HttpSpanExporter())
    tracer = provider.get_tracer("t")

    def run() -> None:
        with tracer.start_as_current_span("from-env"):
            time.sleep(0)
        provider.shutdown()

    await asyncio.to_thread(run)
    await gasoline.settled()
    _, answer = await gasoline.get_json("/v1/traces")
    assert [t["root"] for t in answer["traces"]] == ["from-env"]
