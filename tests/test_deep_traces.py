"""No input, however deep or odd, crashes an answer, and every answer is capped.

A 10,000-deep parent chain and a 2,000-span parent cycle, made with the real OTel SDK
and exported over OTLP/gRPC, answered by every view: ``GET /v1/traces/{id}`` (paged),
``/causality``, the ``gasoline trace`` CLI, and ``gasoline mcp``'s observe and analyze.
Event metadata nested 600 deep, answered by observe timeline, logs and errors. A 17 MiB
line and lines that are not JSON-RPC on ``gasoline mcp``'s stdin, answered with
JSON-RPC errors while the server goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from mcp import ClientSession
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from collector.bounded import MAX_ANSWER_BYTES, cap_depth, compact, fit, json_size
from collector.model import Record
from collector.query import NEST_LEVELS
from tests.conftest import Running
from tests.test_mcp import mcp_session

GASOLINE = str(Path(sys.executable).parent / "gasoline")
DEPTH = 10_000
CYCLE = 2_000
T0 = 1_790_000_000_000_000_000


class _Ids(IdGenerator):
    """Span ids chosen by the test, so parent links can close a cycle."""

    def __init__(self, span_ids: Iterator[int]) -> None:
        self._span_ids = span_ids

    def generate_span_id(self) -> int:
        return next(self._span_ids)

    def generate_trace_id(self) -> int:
        return 0x5B8EFFF798038103D269B633813FC60C


def _provider(spans: InMemorySpanExporter, ids: IdGenerator | None = None) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "deep"}), id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return provider


def deep_chain() -> tuple[str, list[ReadableSpan]]:
    """A chain of ``DEPTH`` spans, each the child of the one before; the deepest fails."""
    spans = InMemorySpanExporter()
    tracer = _provider(spans).get_tracer("deep")
    parent = None
    for i in range(DEPTH):
        span = tracer.start_span(
            f"level {i}",
            context=set_span_in_context(parent) if parent is not None else None,
            start_time=T0 + i * 1000,
        )
        if i == DEPTH - 1:
            span.record_exception(RuntimeError("the bottom gave way"))
            span.set_status(Status(StatusCode.ERROR, "the bottom gave way"))
        span.end(end_time=T0 + 2 * DEPTH * 1000 - i * 1000)
        parent = span
    assert parent is not None
    return format(parent.get_span_context().trace_id, "032x"), list(spans.get_finished_spans())


def parent_cycle() -> tuple[str, list[ReadableSpan]]:
    """``CYCLE`` spans where span i's parent is span i+1 and the last one's is the first."""
    first = 0x1000
    spans = InMemorySpanExporter()
    tracer = _provider(spans, _Ids(iter(range(first, first + CYCLE)))).get_tracer("cycle")
    trace_id = _Ids(iter(())).generate_trace_id()
    for i in range(CYCLE):
        parent = SpanContext(
            trace_id, first + (i + 1) % CYCLE, is_remote=True, trace_flags=TraceFlags(1)
        )
        span = tracer.start_span(
            f"loop {i}",
            context=set_span_in_context(NonRecordingSpan(parent)),
            start_time=T0 + i * 1000,
        )
        span.end(end_time=T0 + i * 1000 + 500)
    return format(trace_id, "032x"), list(spans.get_finished_spans())


async def send(gasoline: Running, spans: list[ReadableSpan]) -> None:
    def export() -> None:
        exporter = OTLPSpanExporter(endpoint=gasoline.grpc, insecure=True)
        for i in range(0, len(spans), 2000):
            exporter.export(spans[i : i + 2000])
        exporter.shutdown()

    await asyncio.to_thread(export)
    await gasoline.settled()


def json_depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend(
                (c, depth + 1) for c in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


async def get(gasoline: Running, path: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http, http.get(gasoline.api + path) as resp:
        return resp.status, await resp.read()


async def all_pages(gasoline: Running, trace_id: str, limit: int) -> list[dict[str, Any]]:
    """Every span of the trace document, page by page through ``cursor_next``."""
    spans: list[dict[str, Any]] = []
    cursor: str | None = "0"
    while cursor is not None:
        status, body = await get(gasoline, f"/v1/traces/{trace_id}?limit={limit}&cursor={cursor}")
        assert status == 200, body[:300]
        doc = json.loads(body)
        assert json_depth(doc) <= 2 * NEST_LEVELS + 4
        stack = list(doc["spans"])
        while stack:
            span = stack.pop()
            spans.append(span)
            stack.extend(span["children"])
        cursor = doc["metadata"]["cursor_next"]
    return spans


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's answer, which must be a success under ``MAX_ANSWER_BYTES``."""
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    assert len(text.encode()) <= MAX_ANSWER_BYTES
    answer: dict[str, Any] = json.loads(text)
    return answer


async def cli_trace(
    gasoline: Running, trace_id: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [GASOLINE, "trace", trace_id, "--url", gasoline.api, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GASOLINE_URL": ""},
    )


async def test_a_10000_deep_chain_is_answered_by_every_view(
    gasoline: Running, tmp_path: Path
) -> None:
    trace_id, spans = deep_chain()
    await send(gasoline, spans)

    status, body = await get(gasoline, f"/v1/traces/{trace_id}")
    assert status == 200
    doc = json.loads(body)
    assert doc["span_count"] == DEPTH and doc["metadata"]["count"] == 1000
    assert (
        doc["metadata"]["cursor_next"] == "1000" and "cursor=1000" in doc["metadata"]["truncated"]
    )
    assert json_depth(doc) <= 2 * NEST_LEVELS + 4
    continued = [s for s in doc["spans"] if s.get("continued")]
    assert len(continued) == 1000 // NEST_LEVELS and continued[0]["depth"] == NEST_LEVELS
    assert any("continued" in note for note in doc["notes"])
    paged = await all_pages(gasoline, trace_id, limit=3000)
    assert sorted(s["depth"] for s in paged) == list(range(DEPTH))
    assert len({s["span_id"] for s in paged}) == DEPTH

    status, body = await get(gasoline, f"/v1/traces/{trace_id}/causality")
    assert status == 200 and len(body) <= MAX_ANSWER_BYTES
    causality = json.loads(body)
    assert causality["root_cause"]["name"] == f"level {DEPTH - 1}"
    assert causality["chain_spans"] == DEPTH and len(causality["chain"]) == 20
    assert [c["name"] for c in causality["chain"]][9:11] == ["level 9", f"level {DEPTH - 10}"]
    assert "chain:" in causality["metadata"]["truncated"]

    shown = await cli_trace(gasoline, trace_id)
    assert shown.returncode == 0, shown.stderr
    assert "level 999 " in shown.stdout and "level 1000 " not in shown.stdout
    assert "1000 of 10000 spans shown; the next ones: --cursor 1000" in shown.stdout
    assert "[depth 16]" in shown.stdout
    last = await cli_trace(gasoline, trace_id, "--cursor", "9000")
    assert last.returncode == 0, last.stderr
    assert f"✗ deep  level {DEPTH - 1}" in last.stdout and "--cursor" not in last.stdout

    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        tree = await call(session, "observe", what="trace", filter={"trace_id": trace_id})
        assert tree["trace"]["span_count"] == DEPTH and len(tree["trace"]["spans"]) == 50
        assert tree["metadata"]["cursor_next"] == "0:50"
        later = await call(
            session,
            "observe",
            what="trace",
            filter={"trace_id": trace_id},
            after_cursor="0:9990",
        )
        assert [s["depth"] for s in later["trace"]["spans"]] == list(range(9990, DEPTH))
        assert later["trace"]["spans"][-1]["error"].startswith("RuntimeError")
        answer = await call(session, "analyze", type="causality", trace_id=trace_id)
        assert answer["chain_spans"] == DEPTH and len(json.dumps(answer)) <= MAX_ANSWER_BYTES
        latency = await call(session, "analyze", type="latency", trace_id=trace_id)
        assert latency["critical_path_spans"] == DEPTH
        timeline = await call(
            session, "observe", what="timeline", filter={"trace_id": trace_id}, limit=1000
        )
        assert 20 < len(timeline["events"]) < 1000 and timeline["metadata"]["cursor_next"]
        assert "cursor_next pages on" in timeline["metadata"]["truncated"]
        summary = await call(session, "generate", type="pr_summary", trace_id=trace_id)
        assert f"level {DEPTH - 1}" in summary["content"]


async def test_a_2000_span_parent_cycle_is_broken_and_reported(
    gasoline: Running, tmp_path: Path
) -> None:
    trace_id, spans = parent_cycle()
    await send(gasoline, spans)

    status, body = await get(gasoline, f"/v1/traces/{trace_id}?limit=10000")
    assert status == 200
    doc = json.loads(body)
    assert doc["span_count"] == CYCLE and doc["cycle_count"] == 1 and doc["orphan_count"] == 1
    [root] = [s for s in doc["spans"] if not s.get("continued")]
    assert root["name"] == "loop 0" and root["cycle"] == CYCLE and root["orphan"] is True
    assert any(f"parent cycle of {CYCLE} span(s)" in note for note in doc["notes"])
    assert len(await all_pages(gasoline, trace_id, limit=700)) == CYCLE

    status, body = await get(gasoline, f"/v1/traces/{trace_id}/causality")
    assert status == 200 and len(body) <= MAX_ANSWER_BYTES
    assert json.loads(body)["status"] == "ok"

    shown = await cli_trace(gasoline, trace_id)
    assert shown.returncode == 0, shown.stderr
    assert f"parent cycle of {CYCLE} span(s) broken at span" in shown.stdout

    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        tree = await call(session, "observe", what="trace", filter={"trace_id": trace_id})
        assert tree["trace"]["cycle_count"] == 1 and tree["trace"]["spans"][0]["cycle"] == CYCLE
        assert "parent cycle of 2000 span(s)" in tree["metadata"]["cycles"][0]
        answer = await call(session, "analyze", type="causality", trace_id=trace_id)
        assert answer["status"] == "ok"
        timeline = await call(session, "observe", what="timeline", filter={"trace_id": trace_id})
        assert len(timeline["events"]) == 20


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": "bottom"}
    for i in range(depth):
        value = {f"level{depth - i}": value, "n": i}
    return value


async def test_metadata_nested_600_deep_is_answered_by_the_event_views(
    gasoline: Running, tmp_path: Path
) -> None:
    """Stored as it came (ingest limits are not what is tested here): answers cut it."""
    now = time.time_ns()
    records = [
        Record(now, "browser", "error", "deep error", attributes=nested(600)),
        Record(now + 1, "backend", "info", "deep log", attributes={"a": [nested(600)]}),
    ]
    assert gasoline.daemon.pipeline.offer_records(records) == 2
    await gasoline.settled()
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        for what in ("timeline", "logs", "errors"):
            answer = await call(session, "observe", what=what)
            messages = {e["message"] for e in answer["events"]}
            assert "deep error" in messages, what
            assert json_depth(answer) < 20
    status, body = await get(gasoline, "/buffers/timeline")
    assert status == 200 and json_depth(json.loads(body)) <= 40


async def test_a_17_mib_line_and_bad_lines_get_json_rpc_errors_and_the_server_goes_on(
    gasoline: Running, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        GASOLINE,
        "mcp",
        "--url",
        gasoline.api,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "HOME": str(tmp_path)},
        limit=2**20,
    )
    assert proc.stdin is not None and proc.stdout is not None

    async def send_line(data: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(data + b"\n")
        await proc.stdin.drain()

    async def reply() -> dict[str, Any]:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line, "gasoline mcp closed stdout"
        answer: dict[str, Any] = json.loads(line)
        return answer

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    try:
        await send_line(json.dumps(initialize).encode())
        assert (await reply())["id"] == 1
        await send_line(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}')

        huge = b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"x": "'
        await send_line(huge + b"a" * (17 * 2**20) + b'"}}')
        too_long = await reply()
        assert too_long["id"] is None and too_long["error"]["code"] == -32700
        assert "over the 16777216 byte limit" in too_long["error"]["message"]

        await send_line(b"{not json")
        not_json = await reply()
        assert not_json["id"] is None and not_json["error"]["code"] == -32700

        await send_line(b'{"id": 7, "hello": "world"}')
        not_rpc = await reply()
        assert not_rpc["id"] == 7 and not_rpc["error"]["code"] == -32600

        await send_line(b'{"jsonrpc": "2.0", "id": 3, "method": "tools/list"}')
        listed = await reply()
        assert listed["id"] == 3
        assert {t["name"] for t in listed["result"]["tools"]} >= {"observe", "analyze"}
    finally:
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0


def test_nesting_beyond_any_recursion_limit_is_cut_not_crashed() -> None:
    value: Any = "bottom"
    for _ in range(100_000):
        value = {"k": [value]}
    capped = cap_depth(value)
    assert json_depth(capped) == 32 and "nested deeper than 32 levels" in json.dumps(capped)
    shown = compact({"metadata": value})
    assert json_depth(shown) == 8
    flat = {"a": 1, "b": [1, 2]}
    assert cap_depth(flat) is flat


def test_fit_cuts_the_biggest_parts_and_says_what_it_cut() -> None:
    answer: dict[str, Any] = {
        "chain": [{"span_id": f"{i:016x}", "name": "x" * 50} for i in range(10_000)],
        "summary": "short",
        "message": "m" * 200_000,
        "metadata": {"total_count": 10_000},
    }
    fit(answer, 10_000)
    assert json_size(answer) <= 10_000
    assert answer["summary"] == "short" and answer["metadata"]["total_count"] == 10_000
    assert "message: cut to" in answer["metadata"]["truncated"]
    assert "chain: kept" in answer["metadata"]["truncated"]
    small = {"a": [1, 2, 3]}
    assert fit(small, 10_000) == {"a": [1, 2, 3]}


def kvlist(depth: int) -> dict[str, Any]:
    """An OTLP/JSON AnyValue: kvlists nested ``depth`` deep."""
    value: dict[str, Any] = {"stringValue": "bottom"}
    for i in range(depth):
        value = {"kvlistValue": {"values": [{"key": f"k{i}", "value": value}]}}
    return value


async def test_nested_otlp_attributes_are_cut_in_answers_and_pages_are_chosen_by_query(
    gasoline: Running, tmp_path: Path
) -> None:
    """Protobuf's parser stops OTLP values near 30 kvlist levels: a trace document keeps
    them whole (it cuts at 32), observe cuts them at 8; the page parameters are checked."""
    trace_id, span_id = "ab" * 16, "cd" * 8
    spans = [
        {
            "traceId": trace_id,
            "spanId": span_id if i == 0 else f"{i:016x}",
            "parentSpanId": "" if i == 0 else span_id,
            "name": f"s{i}",
            "startTimeUnixNano": str(T0 + i),
            "endTimeUnixNano": str(T0 + 1000),
            "attributes": [{"key": "deep", "value": kvlist(30)}],
        }
        for i in range(3)
    ]
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    async with (
        aiohttp.ClientSession() as http,
        http.post(gasoline.http + "/v1/traces", json=body) as resp,
    ):
        assert resp.status == 200, await resp.text()
    await gasoline.settled()

    status, raw = await get(gasoline, f"/v1/traces/{trace_id}?span_ids={span_id},{2:016x}")
    assert status == 200
    doc = json.loads(raw)
    assert [s["name"] for s in doc["spans"]] == ["s0"] and doc["metadata"]["count"] == 2
    assert [c["name"] for c in doc["spans"][0]["children"]] == ["s2"]
    assert raw.decode().count('"bottom"') == 2  # 30 levels: under the cap, kept whole
    status, raw = await get(gasoline, f"/v1/traces/{trace_id}?limit=2&detail=0")
    doc = json.loads(raw)
    assert (
        status == 200 and doc["metadata"]["cursor_next"] == "2" and "attributes" not in raw.decode()
    )
    for bad in ("limit=0", "limit=10001", "cursor=x", "span_ids=zz"):
        status, raw = await get(gasoline, f"/v1/traces/{trace_id}?{bad}")
        assert status == 400 and bad.split("=")[0] in json.loads(raw)["error"], bad

    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        tree = await call(
            session, "observe", what="trace", filter={"trace_id": trace_id}, span_ids=[span_id]
        )
        assert "nested deeper than 8 levels" in json.dumps(tree["trace"]["spans"][0]["attributes"])
        assert json_depth(tree) < 20


def test_fit_cuts_nesting_that_reached_an_answer_uncut() -> None:
    value: Any = "bottom"
    for _ in range(5_000):
        value = {"k": value}
    answer = fit({"linked": [value], "metadata": {}}, 10_000)
    assert json_depth(answer) <= 34 and "nested deeper than 32" in answer["metadata"]["truncated"]


async def test_bodies_nested_past_the_json_parser_are_refused_with_400(gasoline: Running) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    posts = [
        (gasoline.http + "/v1/traces", '{"resourceSpans": ' + deep + "}"),
        (gasoline.api + "/event", '{"message": "x", "metadata": ' + deep + "}"),
        (gasoline.api + "/v1/tools/observe", '{"what": ' + deep + "}"),
        (gasoline.api + "/v1/tools/observe", '{"what": ' + "[" * 900 + "]" * 900 + "}"),
    ]
    async with aiohttp.ClientSession() as http:
        for url, body in posts:
            headers = {"Content-Type": "application/json"}
            async with http.post(url, data=body, headers=headers) as resp:
                text = await resp.text()
                assert resp.status == 400, (url, text[:200])
                assert "nests too deep" in text or "is not a view" in text
