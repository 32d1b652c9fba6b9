"""Multi-service traces with known answers, built with the real OTel SDK and exported
to a daemon over OTLP, for the causality and latency tests."""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, set_span_in_context

from tests.conftest import Running

T0 = 1_790_000_000_000_000_000  # ns
MS = 1_000_000


class Scenario:
    """Spans placed by hand in time (ms from T0), each service with its own clock offset."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.logs = InMemoryLogRecordExporter()
        self._tracers: dict[str, Any] = {}
        self._loggers: dict[str, Any] = {}
        self.skew_ms: dict[str, float] = {}
        self.trace_id = ""

    def _tracer(self, service: str) -> Any:
        if service not in self._tracers:
            attrs = {"service.name": service}
            if service == "browser":
                attrs["telemetry.sdk.language"] = "webjs"
            provider = TracerProvider(resource=Resource.create(attrs))
            provider.add_span_processor(SimpleSpanProcessor(self.spans))
            self._tracers[service] = provider.get_tracer("scenario")
            logs = LoggerProvider(resource=Resource.create(attrs))
            logs.add_log_record_processor(SimpleLogRecordProcessor(self.logs))
            self._loggers[service] = logs.get_logger("scenario")
        return self._tracers[service]

    def _ns(self, service: str, ms: float) -> int:
        return T0 + int((ms + self.skew_ms.get(service, 0.0)) * MS)

    def span(
        self,
        service: str,
        name: str,
        start_ms: float,
        end_ms: float,
        *,
        parent: Span | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attrs: dict[str, Any] | None = None,
        error: str | None = None,
        exception: BaseException | None = None,
        links: list[Span] | None = None,
    ) -> Span:
        span = self._tracer(service).start_span(
            name,
            context=set_span_in_context(parent) if parent is not None else None,
            kind=kind,
            attributes=attrs or {},
            start_time=self._ns(service, start_ms),
            links=[Link(other.get_span_context()) for other in links or ()],
        )
        if exception is not None:
            span.record_exception(exception, timestamp=self._ns(service, end_ms))
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error or None))
        span.end(end_time=self._ns(service, end_ms))
        if parent is None:
            self.trace_id = format(span.get_span_context().trace_id, "032x")
        return span

    def log(self, service: str, span: Span, message: str, *, error: bool = True) -> None:
        self._tracer(service)
        self._loggers[service].emit(
            body=message,
            severity_number=SeverityNumber.ERROR if error else SeverityNumber.INFO,
            severity_text="ERROR" if error else "INFO",
            context=set_span_in_context(span),
        )

    async def send(self, gasoline: Running, *, reverse: bool = False) -> str:
        """Export everything over OTLP/gRPC (optionally newest first) and wait until stored."""
        spans = list(self.spans.get_finished_spans())
        if reverse:
            spans.reverse()
        logs = list(self.logs.get_finished_logs())

        def export() -> None:
            span_exporter = OTLPSpanExporter(endpoint=gasoline.grpc, insecure=True)
            for span in spans:  # one request per span: arrival order is the test's choice
                span_exporter.export([span])
            span_exporter.shutdown()
            if logs:
                log_exporter = OTLPLogExporter(endpoint=gasoline.grpc, insecure=True)
                log_exporter.export(logs)
                log_exporter.shutdown()

        await asyncio.to_thread(export)
        await gasoline.settled()
        return self.trace_id


def http_server(method: str, route: str, status: int) -> dict[str, Any]:
    return {"http.request.method": method, "http.route": route, "http.response.status_code": status}


def http_client(method: str, url: str, status: int) -> dict[str, Any]:
    return {"http.request.method": method, "url.full": url, "http.response.status_code": status}


def db(statement: str) -> dict[str, Any]:
    return {"db.system": "postgresql", "db.statement": statement, "server.address": "db"}
