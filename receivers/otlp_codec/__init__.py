"""OTLP decoding, shared by the gRPC and HTTP receivers: protobuf and JSON in, model out.

Nothing past the receivers sees protobuf messages or OTLP JSON. For spans only the
indexed fields are read at ingest; the request bytes are kept with each span's byte
range, and a span's attributes and events are decoded from that range on demand.
Invalid items (ids of the wrong length, all-zero ids) are rejected one by one and
reported as partial success, while the valid items of the same request are kept.
"""

from __future__ import annotations

from receivers.otlp_codec.delivery import Decoded, decode, encode_response, offer
from receivers.otlp_codec.logs import DecodedLogs, decode_logs, decode_metrics, level_from_severity
from receivers.otlp_codec.spans import DecodedTraces, decode_traces, restore_span_detail
from receivers.otlp_codec.values import attributes_to_dict

__all__ = [
    "Decoded",
    "DecodedLogs",
    "DecodedTraces",
    "attributes_to_dict",
    "decode",
    "decode_logs",
    "decode_metrics",
    "decode_traces",
    "encode_response",
    "level_from_severity",
    "offer",
    "restore_span_detail",
]
