"""Decode an Export request, offer it to the sink, and answer with partial success."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collector.component import Sink
from collector.model import DropReason
from receivers.otlp_codec.logs import decode_logs, decode_metrics
from receivers.otlp_codec.spans import decode_traces

__all__ = ["deliver", "encode_response"]

# -- delivery -------------------------------------------------------------------------


def deliver(
    sink: Sink | None, signal: str, body: bytes, *, is_json: bool = False
) -> tuple[int, str]:
    """Decode an Export request for ``signal`` and offer it to ``sink``.

    Returns (rejected items, error message) for the partial-success answer. Raises
    ``DecodeError`` for a bad body and ``QueueFullError`` when the pipeline sheds load.
    """
    if sink is None:
        raise RuntimeError("receiver used before start()")
    if signal == "traces":
        traces = decode_traces(body, is_json=is_json, redactor=sink.redactor)
        sink.count_dropped("spans", DropReason.INVALID, traces.rejected)
        if len(traces.batch):
            sink.offer_spans(traces.batch)
        return traces.rejected, traces.error
    if signal == "logs":
        logs = decode_logs(body, is_json=is_json)
        sink.count_dropped("records", DropReason.INVALID, logs.rejected)
        if logs.records:
            sink.offer_records(logs.records)
        return logs.rejected, logs.error
    sink.offer_metrics(decode_metrics(body, is_json=is_json))
    return 0, ""


# -- responses ------------------------------------------------------------------------

_RESPONSES: dict[str, tuple[type[Message], type[Message], str]] = {
    "traces": (ExportTraceServiceResponse, ExportTracePartialSuccess, "rejected_spans"),
    "logs": (ExportLogsServiceResponse, ExportLogsPartialSuccess, "rejected_log_records"),
    "metrics": (
        ExportMetricsServiceResponse,
        ExportMetricsPartialSuccess,
        "rejected_data_points",
    ),
}


def encode_response(signal: str, rejected: int = 0, error: str = "", *, as_json: bool) -> bytes:
    """The Export response for ``signal`` (traces, logs, metrics), with partial success."""
    response_type, partial_type, field = _RESPONSES[signal]
    response: Any = response_type()
    if rejected or error:
        response.partial_success.CopyFrom(partial_type(**{field: rejected, "error_message": error}))
    if as_json:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return bytes(response.SerializeToString())
