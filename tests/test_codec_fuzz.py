"""Whatever bytes arrive, decoding either succeeds or raises DecodeError (a 400), never more."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.errors import DecodeError
from receivers.otlp_codec import decode_logs, decode_metrics, decode_traces

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_request() -> bytes:
    request = ExportTraceServiceRequest()
    for service in ("a", "b"):
        rs = request.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = service
        spans = rs.scope_spans.add().spans
        for i in range(4):
            s = spans.add()
            s.trace_id, s.span_id, s.name = os.urandom(16), os.urandom(8), f"op{i}"
            s.attributes.add(key="k").value.int_value = i
            s.events.add(name="exception").attributes.add(
                key="exception.message"
            ).value.string_value = "x"
    return request.SerializeToString()


VALID = _valid_request()


def _decode_all(body: bytes, is_json: bool) -> None:
    for decode in (decode_traces, decode_logs, decode_metrics):
        try:
            result = decode(body, is_json=is_json)
        except DecodeError:
            continue
        if decode is decode_traces:
            batch = result.batch  # type: ignore[union-attr]
            for i in range(len(batch)):
                detail = batch.detail.span_detail(i)
                assert isinstance(detail.attributes, dict)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(body: bytes) -> None:
    _decode_all(body, is_json=False)
    _decode_all(body, is_json=True)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=8))
def test_mutated_valid_protobuf(flips: list[tuple[int, int]]) -> None:
    body = bytearray(VALID)
    for position, value in flips:
        body[position] = value
    _decode_all(bytes(body), is_json=False)


@FUZZ
@given(st.integers(0, len(VALID)))
def test_truncated_valid_protobuf(cut: int) -> None:
    _decode_all(VALID[:cut], is_json=False)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "resourceSpans",
                    "scopeSpans",
                    "spans",
                    "traceId",
                    "spanId",
                    "name",
                    "kind",
                    "attributes",
                    "resourceLogs",
                    "scopeLogs",
                    "logRecords",
                    "body",
                    "key",
                    "value",
                    "stringValue",
                    "startTimeUnixNano",
                    "x",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@FUZZ
@given(JSON_VALUES)
def test_otlp_shaped_json(value: object) -> None:
    _decode_all(json.dumps(value).encode(), is_json=True)
