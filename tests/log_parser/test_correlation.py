"""Trace, span and request ids found anywhere in a line, in every common spelling."""

from __future__ import annotations

import pytest

from receivers.log_parser import LineParser

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
ZERO_TRACE = "0" * 32


def ids(line: str) -> tuple[str | None, str | None, str | None]:
    parsed = LineParser().parse(line)
    assert parsed.trace_id is None or len(parsed.trace_id) == 16
    assert parsed.span_id is None or len(parsed.span_id) == 8
    return (
        parsed.trace_id.hex() if parsed.trace_id is not None else None,
        parsed.span_id.hex() if parsed.span_id is not None else None,
        parsed.request_id,
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # W3C traceparent, with and without a key
        (f"calling upstream traceparent: 00-{TRACE}-{SPAN}-01", (TRACE, SPAN, None)),
        (f"hdr traceparent=00-{TRACE}-{SPAN}-00 done", (TRACE, SPAN, None)),
        (f"propagating 00-{TRACE}-{SPAN}-01 downstream", (TRACE, SPAN, None)),
        (f"x100-{TRACE}-{SPAN}-01 is not a traceparent", (None, None, None)),
        # key forms: = or :, quotes, case and separator variants
        (f"trace_id={TRACE} span_id={SPAN}", (TRACE, SPAN, None)),
        (f'traceId: "{TRACE}", spanId: "{SPAN}"', (TRACE, SPAN, None)),
        (f"Trace-Id: {TRACE} Span-Id: {SPAN}", (TRACE, SPAN, None)),
        (f"TRACE_ID='{TRACE}'", (TRACE, None, None)),
        (f"otelTraceID={TRACE} otelSpanID={SPAN}", (TRACE, SPAN, None)),
        (f"trace_id={TRACE[16:]}", ("0" * 16 + TRACE[16:], None, None)),  # 64-bit id
        (f"subtrace_id={TRACE}", (None, None, None)),
        (f"parent_span_id={SPAN}", (None, None, None)),
        (f"trace_id={ZERO_TRACE} span_id={'0' * 16}", (None, None, None)),
        ("trace_id=not-hex-at-all", (None, None, None)),
        # request ids
        ("request_id=abc-123 done", (None, None, "abc-123")),
        ("req_id: Req42", (None, None, "Req42")),
        ("X-Request-ID: 9f1c2e77 forwarded", (None, None, "9f1c2e77")),
        ("requestId=AbCd", (None, None, "AbCd")),
        ('"correlation_id":"corr-9"', (None, None, "corr-9")),
        ("correlationId=XyZ", (None, None, "XyZ")),
        # AWS X-Ray: trace id as the AWS OTel propagator maps it, and the request id
        (
            "X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            ("5759e988bd862e3fe1be46a994272793", None, "1-5759e988-bd862e3fe1be46a994272793"),
        ),
        (
            "segment 1-5759e988-bd862e3fe1be46a994272793 closed request_id=r1",
            ("5759e988bd862e3fe1be46a994272793", None, "r1"),
        ),
        # Jaeger: trace id 16 or 32 hex, left-padded
        (f"uber-trace-id: {TRACE}:{SPAN}:0:1", (TRACE, SPAN, None)),
        ("uber-trace-id=abc123:def456:0:1", ("0" * 26 + "abc123", "0" * 10 + "def456", None)),
        # B3 multi and single header
        (
            "X-B3-TraceId: 463ac35c9f6413ad48485a3953bb6124 X-B3-SpanId: a2fb4a1d1a96d312 "
            "X-B3-ParentSpanId: 0020000000000001",
            ("463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", None),
        ),
        (
            "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90",
            ("80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1", None),
        ),
        ("b3=0", (None, None, None)),
        # Datadog decimal ids
        (
            "dd.trace_id=1234567890123456789 dd.span_id=42",
            ("0000000000000000112210f47de98115", "000000000000002a", None),
        ),
        # UUID only as a last resort request id
        (
            "worker picked up job 550e8400-e29b-41d4-a716-446655440000",
            (None, None, "550e8400-e29b-41d4-a716-446655440000"),
        ),
        (
            "job 550e8400-e29b-41d4-a716-446655440000 request_id=r2",
            (None, None, "r2"),
        ),
        ("g550e8400-e29b-41d4-a716-446655440000", (None, None, None)),
        # nothing
        ("a perfectly ordinary line - with dashes - 2024-01-02", (None, None, None)),
    ],
)
def test_ids_in_text(line: str, expected: tuple[str | None, str | None, str | None]) -> None:
    assert ids(line) == expected


def test_request_id_keeps_case_and_ids_are_consumed_from_pairs() -> None:
    parsed = LineParser().parse(f"2024-01-02T15:04:05Z INFO done request_id=AbC trace_id={TRACE}")
    assert parsed.request_id == "AbC"
    assert parsed.trace_id is not None and parsed.trace_id.hex() == TRACE
    assert "request_id" not in parsed.attributes
    assert "trace_id" not in parsed.attributes


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f'{{"msg":"x","traceId":"{TRACE}","spanId":"{SPAN}"}}', (TRACE, SPAN, None)),
        (f'{{"msg":"x","traceparent":"00-{TRACE}-{SPAN}-01"}}', (TRACE, SPAN, None)),
        (
            '{"msg":"x","dd":{"trace_id":"1234567890123456789","span_id":"42"}}',
            ("0000000000000000112210f47de98115", "000000000000002a", None),
        ),
        ('{"msg":"x","requestId":17}', (None, None, "17")),
        ('{"msg":"x","x-request-id":"abc"}', (None, None, "abc")),
        ('{"msg":"x","correlationId":"c-1"}', (None, None, "c-1")),
        # ids nested in other fields are still found by the line scan
        (f'{{"msg":"x","headers":{{"traceparent":"00-{TRACE}-{SPAN}-01"}}}}', (TRACE, SPAN, None)),
        (f'{{"msg":"calling with trace_id={TRACE}"}}', (TRACE, None, None)),
        # an invalid id field is kept as an attribute and does not win
        (f'{{"msg":"x","trace_id":"{ZERO_TRACE}"}}', (None, None, None)),
    ],
)
def test_ids_in_json(line: str, expected: tuple[str | None, str | None, str | None]) -> None:
    assert ids(line) == expected


def test_invalid_id_fields_stay_attributes() -> None:
    parsed = LineParser().parse(f'{{"msg":"x","trace_id":"{ZERO_TRACE}","span_id":"nope"}}')
    assert parsed.trace_id is None and parsed.span_id is None
    assert parsed.attributes == {"trace_id": ZERO_TRACE, "span_id": "nope"}
