"""Memory bounded by bytes, values capped at ingest, out-of-range items rejected one by one."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from collector.config import Duration, StoreConfig
from collector.limits import DEEP_MARKER, MAX_DEPTH
from collector.model import DropReason, Record
from collector.store import Store
from collector.store.records import RecordChunk
from receivers.otlp_codec import decode_traces
from tests.conftest import GASOLINE, Running, serve_process
from tests.test_otlp_grpc import request
from tests.test_otlp_http import TRACE, otlp_json, post, span

MIB = 1024 * 1024
BUDGET = 32 * MIB
SMALL_BUDGET = f"""
service:
  store:
    max_bytes: {BUDGET}
    max_value_chars: {2 * MIB}
    max_record_bytes: {2 * MIB}
    max_spans_per_trace: 100
    history: {{enabled: false}}  # the memory tier alone: what leaves it is evicted
"""
PROTOBUF = "application/x-protobuf"
OUT_OF_RANGE_NS = 2**63


def big_spans(n: int, *, trace_id: bytes | None = None, value_bytes: int = 0) -> bytes:
    """An OTLP request of ``n`` spans, each with an attribute of random (incompressible) hex."""
    req = request(n, trace_id=trace_id)
    for s in req.resource_spans[0].scope_spans[0].spans:
        attribute = s.attributes.add()
        attribute.key = "payload"
        attribute.value.string_value = os.urandom(value_bytes // 2).hex()
    return req.SerializeToString()


async def send(
    http: aiohttp.ClientSession, url: str, body: bytes, content_type: str = "application/json"
) -> int:
    """POST a body of any size (aiohttp wants large ones as a stream)."""
    headers = {"Content-Type": content_type}
    async with http.post(url, data=io.BytesIO(body), headers=headers) as resp:
        await resp.read()
        return resp.status


async def status_of(gasoline: Running) -> dict[str, Any]:
    status, doc = await gasoline.get_json("/daemon/status")
    assert status == 200
    return doc


async def test_large_events_then_large_spans_are_evicted_oldest_first_within_the_budget(
    start_daemon: Any,
) -> None:
    gasoline: Running = await start_daemon(SMALL_BUDGET)
    async with aiohttp.ClientSession() as http:
        for i in range(64):
            event = {"message": f"{i:04}" + "x" * MIB, "source": "custom"}
            assert await send(http, f"{gasoline.api}/event", json.dumps(event).encode()) == 200
    await gasoline.settled()
    store = (await status_of(gasoline))["store"]
    assert store["bytes"]["budget"] == BUDGET
    assert MIB * store["records"] < store["bytes"]["used"] <= BUDGET
    assert store["records"] + store["evicted"]["records"]["evicted_byte_limit"] == 64
    _, timeline = await gasoline.get_json("/buffers/timeline?source=custom&limit=1")
    assert timeline["events"][0]["message"].startswith("0063")  # the newest stays

    async with aiohttp.ClientSession() as http:
        for _ in range(72):  # ~0.5 MiB of detail each (hex), new traces: older events go first
            body = big_spans(1, value_bytes=MIB)
            assert await send(http, f"{gasoline.http}/v1/traces", body, PROTOBUF) == 200
    await gasoline.settled()
    store = (await status_of(gasoline))["store"]
    assert store["records"] == 0 and store["bytes"]["records"] == 0
    assert MIB // 2 * store["spans"] < store["bytes"]["used"] <= BUDGET
    assert store["spans"] + store["evicted"]["spans"]["evicted_byte_limit"] == 72
    assert store["evicted"]["traces"]["evicted_byte_limit"] == 72 - store["traces"]


async def test_spans_dropped_for_an_over_full_trace_keep_nothing(start_daemon: Any) -> None:
    gasoline: Running = await start_daemon(SMALL_BUDGET)
    trace_id = os.urandom(16)
    body = big_spans(100, trace_id=trace_id, value_bytes=1024)
    status, _, _ = await post(f"{gasoline.http}/v1/traces", body, PROTOBUF)
    assert status == 200
    await gasoline.settled()
    full = (await status_of(gasoline))["store"]
    assert full["spans"] == 100
    for _ in range(50):
        body = big_spans(100, trace_id=trace_id, value_bytes=1024)
        status, _, _ = await post(f"{gasoline.http}/v1/traces", body, PROTOBUF)
        assert status == 200
    await gasoline.settled()
    store = (await status_of(gasoline))["store"]
    assert store["dropped"]["spans"]["trace_too_large"] == 5000
    assert store["spans"] == 100 and store["bytes"] == full["bytes"]

    # A batch that keeps only some of its spans is counted in full: all its columns stay.
    mixed = request(3, trace_id=trace_id)
    mixed.resource_spans[0].scope_spans[0].spans[2].trace_id = os.urandom(16)
    status, _, _ = await post(f"{gasoline.http}/v1/traces", mixed.SerializeToString(), PROTOBUF)
    await gasoline.settled()
    store = (await status_of(gasoline))["store"]
    assert store["spans"] == 101 and store["dropped"]["spans"]["trace_too_large"] == 5002
    assert store["bytes"]["spans"] > full["bytes"]["spans"] + 3 * 58  # 3 spans of columns


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "bottom"}
    for _ in range(depth - 1):
        value = {"next": value}
    return value


def depth_of(value: Any) -> tuple[int, Any]:
    """How deep ``value`` nests along ``next``, and what it ends in."""
    depth = 0
    while isinstance(value, dict) and "next" in value:
        value, depth = value["next"], depth + 1
    return depth, value


async def test_deep_metadata_is_capped_and_every_view_answers(gasoline: Running) -> None:
    event = {"message": "deep", "level": "error", "metadata": nested(600)}
    status, raw, _ = await post(f"{gasoline.api}/event", json.dumps(event).encode())
    assert status == 200, raw
    await gasoline.settled()
    [stored] = gasoline.daemon.store.records.iter_newest_first()
    assert depth_of(stored.attributes) == (MAX_DEPTH, DEEP_MARKER)
    async with aiohttp.ClientSession() as http:
        for what in ("timeline", "logs", "errors"):
            url = f"{gasoline.api}/v1/tools/observe"
            async with http.post(url, json={"what": what}) as resp:
                assert resp.status == 200, what
                answer = await resp.json()
            assert [e["message"] for e in answer["events"]] == ["deep"], what
    status, timeline = await gasoline.get_json("/buffers/timeline")
    assert status == 200 and [e["message"] for e in timeline["events"]] == ["deep"]
    assert (await status_of(gasoline))["store"]["truncated_values"] == 1


async def test_long_strings_and_oversized_events_are_cut_with_a_marker(
    gasoline: Running,
) -> None:
    event = {
        "message": "m" * 70_000,
        "tags": ["t" * 70_000],
        "metadata": {"k" * 70_000: "v", "many": ["x" * 60_000] * 40},
    }
    async with aiohttp.ClientSession() as http:
        assert await send(http, f"{gasoline.api}/event", json.dumps(event).encode()) == 200
    await gasoline.settled()
    _, timeline = await gasoline.get_json("/buffers/timeline")
    [stored] = timeline["events"]
    assert stored["message"] == "m" * 65_536 + "…[truncated 4464 characters]"
    assert stored["tags"] == ["t" * 65_536 + "…[truncated 4464 characters]"]
    assert "k" * 65_536 + "…[truncated 4464 characters]" in stored["metadata"]
    many = stored["metadata"]["many"]
    assert 10 < len(many) < 40 and re.fullmatch(
        r"…\[\d+ more value\(s\) cut: the record is over 1048576 bytes\]", many[-1]
    )
    store = (await status_of(gasoline))["store"]
    assert store["truncated_values"] == 4 and store["bytes"]["used"] < 1.2 * MIB


async def test_otlp_log_records_are_capped_like_events(gasoline: Running) -> None:
    req = ExportLogsServiceRequest()
    record = req.resource_logs.add().scope_logs.add().log_records.add()
    record.body.string_value = "b" * 100_000
    attribute = record.attributes.add()
    attribute.key, attribute.value.string_value = "payload", "p" * 100_000
    status, _, _ = await post(f"{gasoline.http}/v1/logs", req.SerializeToString(), PROTOBUF)
    assert status == 200
    await gasoline.settled()
    _, timeline = await gasoline.get_json("/buffers/timeline?source=otlp")
    [stored] = timeline["events"]
    assert stored["message"].endswith("b…[truncated 34464 characters]")
    assert stored["metadata"]["payload"].endswith("p…[truncated 34464 characters]")
    assert (await status_of(gasoline))["store"]["truncated_values"] == 2


DEEP_SERVICE = json.dumps({"metadata": {"service": nested(900)}}).encode()
DEEP_LEVEL = json.dumps({"level": nested(900)}).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "x", "timestamp": 1e300}', "event.timestamp: 1e+300 is not a time"),
        (b'{"message": "x", "timestamp": 9223372036855}', "event.timestamp: 9223372036855"),
        (b'{"message": "x", "timestamp": -1}', "event.timestamp: -1 is not a time"),
        (b'{"message": "x", "timestamp": Infinity}', "event.timestamp: inf is not a time"),
        (b'{"message": "x", "timestamp": NaN}', "event.timestamp: nan is not a time"),
        (b'{"timestamp": "9999-12-31T00:00:00Z"}', "event.timestamp: '9999-12-31T00:00:00Z'"),
        (b'{"metadata": ' * 5000 + b"{}" + b"}" * 5000, "nests too deep"),
        (b'{"message": "x", "n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (DEEP_SERVICE, "event.service: expected a string, got an object"),
        (DEEP_LEVEL, "event.level: an object is not a level"),
        (b'{"level": "' + b"x" * 100_000 + b'"}', "event.level: 'xxxxxxx"),
    ],
    ids=[
        "1e300",
        "2^63ns",
        "negative",
        "inf",
        "nan",
        "year 9999",
        "5000 deep",
        "huge int",
        "deep service",
        "deep level",
        "long level",
    ],
)
async def test_out_of_range_events_get_400_naming_the_field(
    gasoline: Running, body: bytes, message: str
) -> None:
    status, raw, _ = await post(f"{gasoline.api}/event", body)
    error = json.loads(raw)["error"]
    assert status == 400 and message in error and len(error) < 300
    assert (await status_of(gasoline))["store"]["records"] == 0


async def test_lines_with_an_out_of_range_observed_time_get_400(gasoline: Running) -> None:
    for observed in (2**63 // 1_000_000, "9" * 5000):
        url = f"{gasoline.api}/v1/lines?observed_time_ms={observed}"
        status, raw, _ = await post(url, b"a line\n", "text/plain")
        assert status == 400 and "observed_time_ms" in json.loads(raw)["error"]


def three_spans_one_out_of_range() -> bytes:
    req = request(3, trace_id=bytes.fromhex(TRACE))
    req.resource_spans[0].scope_spans[0].spans[1].start_time_unix_nano = OUT_OF_RANGE_NS
    return req.SerializeToString()


async def assert_two_of_three_kept(gasoline: Running, trace_id: str = TRACE) -> None:
    await gasoline.settled()
    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert status == 200 and doc["span_count"] == 2
    dropped = (await status_of(gasoline))["pipeline"]["dropped"]
    assert dropped["spans"]["invalid"] == 1


async def test_out_of_range_span_time_rejects_one_span_over_grpc(gasoline: Running) -> None:
    async with grpc.aio.insecure_channel(gasoline.grpc) as channel:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        req = ExportTraceServiceRequest.FromString(three_spans_one_out_of_range())
        response = await TraceServiceStub(channel).Export(req, timeout=10)
    partial = response.partial_success
    assert partial.rejected_spans == 1
    assert f"span #1: start_time_unix_nano {OUT_OF_RANGE_NS} is out of range" in (
        partial.error_message
    )
    await assert_two_of_three_kept(gasoline)


async def test_out_of_range_span_time_rejects_one_span_over_http_protobuf(
    gasoline: Running,
) -> None:
    status, raw, _ = await post(
        f"{gasoline.http}/v1/traces", three_spans_one_out_of_range(), PROTOBUF
    )
    assert status == 200
    partial = ExportTraceServiceResponse.FromString(raw).partial_success
    assert partial.rejected_spans == 1 and "start_time_unix_nano" in partial.error_message
    await assert_two_of_three_kept(gasoline)


async def test_out_of_range_span_time_rejects_one_span_over_http_json(gasoline: Running) -> None:
    body = otlp_json(
        [
            span("eee19b7ec3c1b174", "good"),
            span("eee19b7ec3c1b175", "late end", endTimeUnixNano=str(2**64 - 1)),
            span("eee19b7ec3c1b176", "also good"),
        ]
    )
    status, raw, _ = await post(f"{gasoline.http}/v1/traces", json.dumps(body).encode())
    assert status == 200
    partial = json.loads(raw)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1
    assert (
        "span #1: end_time_unix_nano 18446744073709551615 is out of range"
        in (partial["errorMessage"])
    )
    await assert_two_of_three_kept(gasoline)


async def test_out_of_range_log_time_rejects_one_record_over_grpc(gasoline: Running) -> None:
    req = ExportLogsServiceRequest()
    records = req.resource_logs.add().scope_logs.add().log_records
    for text, time_ns in (("kept", 1), ("too late", OUT_OF_RANGE_NS), ("kept too", 2)):
        record = records.add()
        record.body.string_value = text
        record.time_unix_nano = time_ns
        record.trace_id = bytes.fromhex(TRACE)
    async with grpc.aio.insecure_channel(gasoline.grpc) as channel:
        response = await LogsServiceStub(channel).Export(req, timeout=10)
    assert isinstance(response, ExportLogsServiceResponse)
    partial = response.partial_success
    assert partial.rejected_log_records == 1
    assert "log record #1: time_unix_nano" in partial.error_message
    await gasoline.settled()
    _, doc = await gasoline.get_json(f"/v1/traces/{TRACE}")
    assert [r["message"] for r in doc["records"]] == ["kept", "kept too"]


# -- a real `gasoline serve` process ---------------------------------------------------

# What the process holds beside the store: the interpreter and libraries (~55 MiB), a
# request or two being read and decoded, and allocator slack.
RSS_ALLOWANCE = 128 * MIB


def vm_kib(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory figure (VmRSS, VmHWM), in KiB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    assert match is not None, text
    return int(match.group(1))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's /proc")
async def test_serve_process_stays_within_its_budget_under_large_events_and_spans(
    tmp_path: Path,
) -> None:
    with serve_process(tmp_path, SMALL_BUDGET) as (proc, urls):
        trace_id = os.urandom(16)
        async with aiohttp.ClientSession() as http:
            for i in range(200):
                event = {"message": f"{i}" + "x" * MIB}
                assert await send(http, f"{urls['API']}/event", json.dumps(event).encode()) == 200
            for _ in range(200):  # ~0.5 MiB of incompressible detail each, all dropped
                body = big_spans(100, trace_id=trace_id, value_bytes=5000)
                url = f"{urls['OTLP/HTTP']}/v1/traces"
                headers = {"Content-Type": PROTOBUF}
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 200
            async with asyncio.timeout(30):  # the queue drains; the timeout guards failure
                while True:
                    async with http.get(f"{urls['API']}/daemon/status") as resp:
                        doc = await resp.json()
                    if doc["pipeline"]["queue"]["depth"] == 0:
                        break
                    await asyncio.sleep(0.05)
        store = doc["store"]
        peak = vm_kib(proc.pid, "VmHWM") * 1024
        assert store["bytes"]["used"] <= BUDGET
        assert store["evicted"]["records"]["evicted_byte_limit"] > 150
        assert store["dropped"]["spans"]["trace_too_large"] == 19_900
        assert peak < BUDGET + RSS_ALLOWANCE, f"peak RSS {peak / MIB:.0f} MiB"
        cli = subprocess.run(
            [GASOLINE, "status", "--url", urls["API"]], capture_output=True, text=True, timeout=60
        )
        assert re.search(r"the store keeps \d+\.\d of 32 MiB", cli.stdout), cli.stdout


def test_expiry_and_clear_give_the_bytes_back() -> None:
    store = Store(StoreConfig(ttl=Duration(1)))
    first = Record(time_ns=1, source="custom", level="info", message="x" * 10_000)
    store.records.add([first], now_ns=0)
    store.spans.add(decode_traces(big_spans(3, value_bytes=10_000)).batch, now_ns=0)
    assert first.size > 10_000 and store.budget.used > 25_000
    store.evict_expired(now_ns=2_000_000_000)
    assert store.budget.used == 0 and len(store.records) == 0 and store.spans.span_count == 0
    store.records.add([Record(time_ns=1, source="custom", level="info", message="y")], 3)
    store.spans.add(decode_traces(big_spans(3)).batch, now_ns=3)
    store.records.clear()
    store.spans.clear()
    assert store.budget.used == 0


def test_records_evicted_for_bytes_leave_their_chunk_at_once() -> None:
    store = Store(StoreConfig(max_bytes=3 * MIB, max_value_chars=MIB, max_record_bytes=2 * MIB))
    batch = [Record(time_ns=i, source="custom", level="info", message="x" * MIB) for i in range(5)]
    store.records.add(batch, now_ns=0)  # one chunk: arrived together
    [chunk] = store.records.chunks_newest_first()
    assert isinstance(chunk, RecordChunk)  # in memory
    assert store.records.evicted[DropReason.EVICTED_BYTE_LIMIT] == 3 == chunk.first
    assert [len(r.message) for r in chunk.records] == [0, 0, 0, MIB, MIB]
    assert store.budget.used <= 3 * MIB
