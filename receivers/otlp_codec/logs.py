"""Log and metric requests: log records decoded eagerly into records; metric data
points counted."""

from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from collector.levels import INFO, normalize_level, otel_severity_level
from collector.model import ZERO_SPAN_ID, Record
from receivers.otlp_codec.json_mapping import parse_request
from receivers.otlp_codec.values import (
    _MAX_TIME_NS,
    _ZERO_TRACE_ID,
    _bad_ids_message,
    _bad_time_message,
    _body_text,
    _service_name,
    attributes_to_dict,
)

__all__ = ["DecodedLogs", "decode_logs", "decode_metrics", "level_from_severity"]


@dataclass(slots=True)
class DecodedLogs:
    records: list[Record]
    rejected: int
    error: str


# -- logs -----------------------------------------------------------------------------


def decode_logs(body: bytes, *, is_json: bool = False) -> DecodedLogs:
    """Decode an ``ExportLogsServiceRequest`` into records; raise ``DecodeError`` if invalid."""
    _, request = parse_request(body, ExportLogsServiceRequest, "resourceLogs", is_json=is_json)
    records: list[Record] = []
    rejected = 0
    error = ""
    position = -1
    now = time.time_ns()
    for resource_logs in request.resource_logs:
        service = _service_name(resource_logs.resource)
        for scope_logs in resource_logs.scope_logs:
            for log in scope_logs.log_records:
                position += 1
                trace_id = log.trace_id
                span_id = log.span_id
                if (trace_id and len(trace_id) != 16) or (span_id and len(span_id) != 8):
                    rejected += 1
                    if not error:
                        error = _bad_ids_message("log record", position, trace_id, span_id, b"")
                    continue
                if (
                    log.time_unix_nano >= _MAX_TIME_NS
                    or log.observed_time_unix_nano >= _MAX_TIME_NS
                ):
                    rejected += 1
                    if not error:
                        error = _bad_time_message(
                            "log record",
                            position,
                            ("time_unix_nano", log.time_unix_nano),
                            ("observed_time_unix_nano", log.observed_time_unix_nano),
                        )
                    continue
                attributes = attributes_to_dict(log.attributes)
                if log.event_name:
                    attributes.setdefault("event.name", log.event_name)
                records.append(
                    Record(
                        time_ns=log.time_unix_nano or log.observed_time_unix_nano or now,
                        source="otlp",
                        level=level_from_severity(log.severity_number, log.severity_text),
                        message=_body_text(log.body) if log.HasField("body") else "",
                        service=service,
                        trace_id=trace_id if trace_id and trace_id != _ZERO_TRACE_ID else None,
                        span_id=span_id if span_id and span_id != ZERO_SPAN_ID else None,
                        attributes=attributes,
                    )
                )
    if rejected:
        error = f"{rejected} log record(s) rejected; first: {error}"
    return DecodedLogs(records, rejected, error)


def level_from_severity(number: int, text: str) -> str:
    """OTel severity numbers to debug/info/warn/error/critical; the text (through the one
    level map) if no number; info if neither says. Numbers past 24 count as FATAL4, below 1
    as TRACE, since a sender that set a number meant some severity."""
    if number:
        return otel_severity_level(min(max(number, 1), 24)) or INFO
    return normalize_level(text) or INFO


# -- metrics --------------------------------------------------------------------------


def decode_metrics(body: bytes, *, is_json: bool = False) -> int:
    """Count the data points of an ``ExportMetricsServiceRequest``."""
    _, request = parse_request(
        body, ExportMetricsServiceRequest, "resourceMetrics", is_json=is_json
    )
    points = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                if kind is not None:
                    points += len(getattr(metric, kind).data_points)
    return points
