"""Decode an Export request, offer it to the sink, and answer with partial success.

Decoding and offering are two steps: a receiver may decode on a thread of its own, while
offers are made on the daemon's event loop, where the pipeline lives."""

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
from collector.redact import Redactor
from receivers.otlp_codec.logs import DecodedLogs, decode_logs, decode_metrics
from receivers.otlp_codec.spans import DecodedTraces, decode_traces

__all__ = ["Decoded", "decode", "encode_response", "offer"]

# -- delivery -------------------------------------------------------------------------

Decoded = DecodedTraces | DecodedLogs | int  # an int: metric data points


def decode(
    signal: str, body: bytes, *, is_json: bool = False, redactor: Redactor | None = None
) -> Decoded:
    """Decode an Export request for ``signal``; raise ``DecodeError`` for a bad body.
    Touches no shared state (the redactor may be used from any thread), so a receiver
    may decode on a thread of its own. Span requests are redacted as they are decoded."""
    if signal == "traces":
        return decode_traces(body, is_json=is_json, redactor=redactor)
    if signal == "logs":
        return decode_logs(body, is_json=is_json)
    return decode_metrics(body, is_json=is_json)


def offer(sink: Sink | None, decoded: Decoded) -> tuple[int, str]:
    """Offer what ``decode`` made to ``sink``, on the sink's event loop. Returns (rejected
    items, error message) for the partial-success answer; raises ``QueueFullError`` when
    the pipeline sheds load."""
    if sink is None:
        raise RuntimeError("receiver used before start()")
    if isinstance(decoded, DecodedTraces):
        sink.count_dropped("spans", DropReason.INVALID, decoded.rejected)
        if len(decoded.batch):
            sink.offer_spans(decoded.batch)
        return decoded.rejected, decoded.error
    if isinstance(decoded, DecodedLogs):
        sink.count_dropped("records", DropReason.INVALID, decoded.rejected)
        if decoded.records:
            sink.offer_records(decoded.records)
        return decoded.rejected, decoded.error
    sink.offer_metrics(decoded)
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
