"""OTLP/HTTP by hand: the JSON mapping, gzip, partial success, CORS, and bad input."""

from __future__ import annotations

import gzip
import json
import os
import random
import zlib

import aiohttp
import pytest
from multidict import CIMultiDictProxy
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import Running

TRACE = "5b8efff798038103d269b633813fc60c"
NOW_NS = 1_700_000_000_000_000_000


def otlp_json(spans: list[dict], service: str = "checkout") -> dict:  # type: ignore[type-arg]
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "manual"}, "spans": spans}],
                "someFutureField": {"ignored": True},
            }
        ]
    }


def span(span_id: str, name: str, parent: str = "", trace: str = TRACE, **extra: object) -> dict:  # type: ignore[type-arg]
    doc: dict[str, object] = {
        "traceId": trace,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": str(NOW_NS),
        "endTimeUnixNano": NOW_NS + 5_000_000,
        "attributes": [{"key": "http.route", "value": {"stringValue": "/orders"}}],
    }
    doc.update(extra)
    return doc


async def post(
    url: str, body: bytes, content_type: str = "application/json", **headers: str
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=body, headers={"Content-Type": content_type, **headers}) as resp,
    ):
        return resp.status, await resp.read(), resp.headers


async def test_json_mapping_hex_ids_camel_case_int_enums_string_int64(gasoline: Running) -> None:
    body = otlp_json(
        [
            span("eee19b7ec3c1b174", "root", status={"code": 2, "message": "boom"}),
            span("eee19b7ec3c1b175", "child", parent="eee19b7ec3c1b174", kind=3),
        ]
    )
    status, raw, headers = await post(f"{gasoline.http}/v1/traces", json.dumps(body).encode())
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(raw) == {}
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    [root] = doc["spans"]
    assert (root["name"], root["status"], root["status_message"]) == ("root", "ERROR", "boom")
    assert root["start_ns"] == NOW_NS and root["duration_ms"] == 5.0
    assert root["attributes"] == {"http.route": "/orders"}
    assert [(c["name"], c["kind"]) for c in root["children"]] == [("child", "CLIENT")]
    assert doc["services"]["checkout"]["service.name"] == "checkout"


async def test_gzip_protobuf_answered_in_protobuf(gasoline: Running) -> None:
    request = ExportTraceServiceRequest()
    s = request.resource_spans.add().scope_spans.add().spans.add()
    s.trace_id = bytes.fromhex(TRACE)
    s.span_id = os.urandom(8)
    s.name = "gzipped"
    s.start_time_unix_nano = NOW_NS
    s.end_time_unix_nano = NOW_NS + 1
    status, raw, headers = await post(
        f"{gasoline.http}/v1/traces",
        gzip.compress(request.SerializeToString()),
        "application/x-protobuf",
        **{"Content-Encoding": "gzip"},
    )
    assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(raw).HasField("partial_success")
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    assert doc["spans"][0]["name"] == "gzipped"


async def test_partial_success_keeps_valid_spans_and_reports_rejected(gasoline: Running) -> None:
    body = otlp_json(
        [
            span("eee19b7ec3c1b174", "good"),
            span("eee19b7ec3c1b1", "short span id"),
            span("eee19b7ec3c1b176", "zero trace", trace="0" * 32),
            span("eee19b7ec3c1b177", "not hex", trace="zz" * 16),
        ]
    )
    status, raw, _ = await post(f"{gasoline.http}/v1/traces", json.dumps(body).encode())
    assert status == 200
    partial = json.loads(raw)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 3
    assert "span #1" in partial["errorMessage"] and "span id" in partial["errorMessage"]
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    assert [s["name"] for s in doc["spans"]] == ["good"]
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["pipeline"]["dropped"]["spans"]["invalid"] == 3


async def test_logs_partial_success_in_protobuf(gasoline: Running) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )

    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    ok = records.add()
    ok.body.string_value = "kept"
    ok.trace_id = bytes.fromhex(TRACE)
    bad = records.add()
    bad.body.string_value = "bad trace id"
    bad.trace_id = b"\x01\x02"
    status, raw, _ = await post(
        f"{gasoline.http}/v1/logs", request.SerializeToString(), "application/x-protobuf"
    )
    assert status == 200
    partial = ExportLogsServiceResponse.FromString(raw).partial_success
    assert partial.rejected_log_records == 1 and "log record #1" in partial.error_message
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    assert [r["message"] for r in doc["records"]] == ["kept"]


async def test_cors_preflight_allows_localhost_origins_and_trace_headers(gasoline: Running) -> None:
    headers = {
        "Origin": "http://localhost:5173",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,traceparent",
    }
    async with aiohttp.ClientSession() as http:
        async with http.options(f"{gasoline.http}/v1/traces", headers=headers) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
            allowed = resp.headers["Access-Control-Allow-Headers"]
            assert {"content-type", "traceparent", "tracestate"} <= set(allowed.split(", "))
        async with http.post(
            f"{gasoline.http}/v1/traces",
            data=json.dumps(otlp_json([span("eee19b7ec3c1b174", "from the page")])),
            headers={"Origin": "http://localhost:5173", "Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
        headers["Origin"] = "https://evil.example"
        async with http.options(f"{gasoline.http}/v1/traces", headers=headers) as resp:
            assert resp.status == 403
            assert (
                "receivers.otlp.protocols.http.cors.allowed_origins" in (await resp.json())["error"]
            )


async def test_cors_origins_are_configurable(start_daemon) -> None:  # type: ignore[no-untyped-def]
    gasoline = await start_daemon(
        """
        receivers:
          otlp:
            protocols:
              http:
                cors:
                  allowed_origins: ["https://*.example.test"]
        """
    )
    headers = {"Origin": "https://app.example.test", "Access-Control-Request-Method": "POST"}
    async with (
        aiohttp.ClientSession() as http,
        http.options(f"{gasoline.http}/v1/traces", headers=headers) as resp,
    ):
        assert resp.status == 204


BAD_BODIES = [
    pytest.param(
        b"\x0a\xff\xff\xff\x0f",
        "application/x-protobuf",
        400,
        "not a valid OTLP",
        id="truncated-protobuf",
    ),
    pytest.param(
        bytes(random.Random(7).randbytes(4096)),
        "application/x-protobuf",
        400,
        "not a valid OTLP",
        id="random-protobuf",
    ),
    pytest.param(
        b'{"hello": "world"}', "application/json", 400, "resourceSpans", id="non-otlp-json"
    ),
    pytest.param(b"[1, 2, 3]", "application/json", 400, "resourceSpans", id="json-array"),
    pytest.param(b"{not json", "application/json", 400, "not valid JSON", id="broken-json"),
    pytest.param(
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "kind": "WRONG"}]}]}]}',
        "application/json",
        400,
        "not a valid OTLP/JSON",
        id="wrong-types",
    ),
    pytest.param(b"hello", "text/plain", 415, "unsupported content type", id="text-plain"),
]


@pytest.mark.parametrize(("body", "content_type", "code", "message"), BAD_BODIES)
async def test_bad_input_gets_4xx_with_message_and_stored_data_survives(
    gasoline: Running, body: bytes, content_type: str, code: int, message: str
) -> None:
    good = otlp_json([span("eee19b7ec3c1b174", "stored before")])
    assert (await post(f"{gasoline.http}/v1/traces", json.dumps(good).encode()))[0] == 200
    status, raw, _ = await post(f"{gasoline.http}/v1/traces", body, content_type)
    assert status == code
    error = (
        json.loads(raw)["message"]
        if content_type != "application/x-protobuf"
        else raw.decode(errors="replace")
    )
    assert message in error
    await gasoline.settled()
    status, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    assert status == 200 and doc["spans"][0]["name"] == "stored before"


async def test_oversized_and_gzip_bomb_bodies_get_413(start_daemon) -> None:  # type: ignore[no-untyped-def]
    gasoline = await start_daemon(
        """
        receivers:
          otlp:
            protocols:
              http:
                max_request_body_size: 65536
        """
    )
    big = json.dumps(otlp_json([span("eee19b7ec3c1b174", "x" * 70_000)])).encode()
    status, raw, _ = await post(f"{gasoline.http}/v1/traces", big)
    assert status == 413 and "65536 bytes" in json.loads(raw)["message"]
    bomb = gzip.compress(b"\0" * 50_000_000)  # ~50 KB on the wire, 50 MB inflated
    assert len(bomb) < 65536
    status, raw, _ = await post(
        f"{gasoline.http}/v1/traces", bomb, "application/json", **{"Content-Encoding": "gzip"}
    )
    assert status == 413 and "after decompression" in json.loads(raw)["message"]
    status, raw, _ = await post(
        f"{gasoline.http}/v1/traces",
        b"\x1f\x8b garbage",
        "application/json",
        **{"Content-Encoding": "gzip"},
    )
    assert status == 400 and "not valid gzip" in json.loads(raw)["message"]
    status, _, _ = await post(
        f"{gasoline.http}/v1/traces",
        zlib.compress(big)[:100],
        "application/json",
        **{"Content-Encoding": "br"},
    )
    assert status == 415


async def test_shedding_load_answers_503_with_retry_after(start_daemon) -> None:  # type: ignore[no-untyped-def]
    gasoline = await start_daemon("service: {queue: {max_items: 2}}")
    body = otlp_json([span(f"eee19b7ec3c1b17{i}", f"s{i}") for i in range(3)])
    status, raw, headers = await post(f"{gasoline.http}/v1/traces", json.dumps(body).encode())
    assert status == 503 and headers["Retry-After"] == "1"
    assert "queue is full" in json.loads(raw)["message"]
    _, doc = await gasoline.get_json("/daemon/status")
    assert doc["pipeline"]["dropped"]["spans"]["queue_full"] == 3
