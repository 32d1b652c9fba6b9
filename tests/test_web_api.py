"""The web page's read endpoints over HTTP: the trace list, the service map, compare (also
as ``analyze`` type ``compare``), the live stream, and who may read them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from tests.conftest import Running
from tests.scenarios import MS, T0
from tests.test_otlp_http import otlp_json, span
from tests.web_scenarios import XSS, send_checkout, send_checkouts

FOREIGN = "http://evil.example"


async def test_trace_list_filters_and_pages(gasoline: Running) -> None:
    c = await send_checkouts(gasoline)
    status, answer = await gasoline.get_json("/v1/trace_list")
    assert status == 200
    assert [t["trace_id"] for t in answer["traces"]] == [c.slow, c.fast]  # newest first
    slow = answer["traces"][0]
    assert slow["root"] == "fetch POST /api/checkout"
    assert slow["services"] == ["api", "browser", "payments"]
    assert slow["span_count"] == 7 and slow["error_count"] == 4
    assert slow["duration_ms"] == 240.0
    for query, expected in (
        ("errors=1", [c.slow]),
        ("service=payments", [c.slow, c.fast]),
        ("service=nobody", []),
        ("text=coupons", [c.slow]),
        ("text=CACHE", [c.fast]),
        ("min_duration_ms=100", [c.slow]),
        ("errors=1&text=cache", []),
        (f"since={T0 // MS + 106}", [c.slow]),  # only the slow one has spans this late
        (f"until={T0 // MS - 1}", []),
        (f"since={T0 // MS}&until={T0 // MS + 30}&service=payments", [c.fast]),
    ):
        status, answer = await gasoline.get_json(f"/v1/trace_list?{query}")
        assert status == 200, answer
        assert [t["trace_id"] for t in answer["traces"]] == expected, query
    status, first = await gasoline.get_json("/v1/trace_list?limit=1")
    assert [t["trace_id"] for t in first["traces"]] == [c.slow]
    cursor = first["metadata"]["cursor_next"]
    status, second = await gasoline.get_json(f"/v1/trace_list?limit=1&cursor={cursor}")
    assert [t["trace_id"] for t in second["traces"]] == [c.fast]
    assert second["metadata"]["cursor_next"] is None
    # A late span (whose parent never came) changes the line of a trace listed already.
    late = span("00000000000000aa", "late retry", parent="00000000000000ab", trace=c.fast)
    async with (
        aiohttp.ClientSession() as http,
        http.post(gasoline.http + "/v1/traces", json=otlp_json([late])) as resp,
    ):
        assert resp.status == 200
    await gasoline.settled()
    status, answer = await gasoline.get_json("/v1/trace_list")
    fast = answer["traces"][1]
    assert (fast["trace_id"], fast["span_count"], fast["orphan_count"]) == (c.fast, 7, 1)
    status, bad = await gasoline.get_json("/v1/trace_list?min_duration_ms=slow")
    assert status == 400 and "min_duration_ms" in bad["error"]
    status, bad = await gasoline.get_json("/v1/trace_list?colour=red")
    assert status == 400 and "colour" in bad["error"]


async def test_rows_are_the_tree_flat_and_compact(gasoline: Running) -> None:
    c = await send_checkouts(gasoline)
    status, answer = await gasoline.get_json(f"/v1/traces/{c.slow[:10]}/rows")
    assert status == 200, answer
    rows = [dict(zip(answer["fields"], row, strict=True)) for row in answer["rows"]]
    names = [r["name"] for r in rows]
    assert names == [
        "fetch POST /api/checkout",
        "POST /api/checkout",
        "SELECT cart",
        "SELECT coupons",
        f"render {XSS}",
        "POST payments/charge",
        "POST /charge",
    ]
    charge = rows[-1]
    assert (charge["span_id"], charge["depth"], charge["error"]) == (c.cause_span, 3, 1)
    assert answer["services"][charge["service"]] == "payments"
    assert charge["start_offset_ns"] == 125 * MS and charge["duration_ns"] == 100 * MS
    assert answer["span_count"] == 7 and answer["error_count"] == 4
    assert [r["message"] for r in answer["records"]][-1].startswith("charge failed")
    status, missing = await gasoline.get_json(f"/v1/traces/{'ab' * 16}/rows")
    assert status == 404 and "not in the store" in missing["error"]


async def test_service_map_has_edges_with_rates_errors_and_percentiles(gasoline: Running) -> None:
    await send_checkouts(gasoline)
    status, answer = await gasoline.get_json("/v1/service_map")
    assert status == 200
    edges = {(e["from"], e["to"]): e for e in answer["edges"]}
    assert set(edges) == {("browser", "api"), ("api", "payments")}
    pay = edges[("api", "payments")]
    assert pay["calls"] == 2 and pay["errors"] == 1 and pay["error_rate"] == 0.5
    assert pay["p50_ms"] == 100.0 and pay["p99_ms"] == 100.0 and pay["rate_per_s"] > 0
    services = {s["service"]: s for s in answer["services"]}
    assert services["payments"]["traces"] == 2


async def test_compare_finds_slower_added_missing_and_new_errors(gasoline: Running) -> None:
    c = await send_checkouts(gasoline)
    status, answer = await gasoline.get_json(f"/v1/compare?a={c.fast}&b={c.slow}")
    assert status == 200, answer
    slower = {s["name"]: s for s in answer["slower"]}
    assert slower["SELECT cart"]["delta_ms"] == 90.0
    assert slower["SELECT cart"]["span_id"] == c.slow_db_span
    assert answer["slower"][0]["name"] == "fetch POST /api/checkout"  # biggest delta first
    assert {a["name"] for a in answer["added"]} == {"SELECT coupons", f"render {XSS}"}
    assert [m["name"] for m in answer["missing"]] == ["cache get"]
    assert "POST /charge" in {e["name"] for e in answer["new_errors"]}
    assert answer["delta_ms"] == 180.0
    # The same answer from the agent's tool, over HTTP.
    status, tool = await gasoline.post_json(
        "/v1/tools/analyze", {"type": "compare", "trace_id": c.slow, "compare_to": c.fast}
    )
    assert status == 200, tool
    assert tool["slower_count"] == answer["slower_count"]
    assert {m["name"] for m in tool["missing"]} == {"cache get"}
    status, error = await gasoline.post_json(
        "/v1/tools/analyze", {"type": "compare", "trace_id": c.slow}
    )
    assert status == 400 and "compare_to" in error["error"]
    status, error = await gasoline.get_json(f"/v1/compare?a={c.fast}&b=zz")
    assert status == 400 and error["error"].startswith("b: ")


async def _get(url: str, **headers: str) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers


async def test_foreign_pages_cannot_read_the_new_endpoints(start_daemon: Any) -> None:
    gasoline: Running = await start_daemon(
        "service: {api: {read_origins: ['chrome-extension://abcdefghijklmnop']}}"
    )
    c = await send_checkouts(gasoline)
    paths = (
        "/v1/trace_list",
        f"/v1/traces/{c.slow}/rows",
        "/v1/service_map",
        f"/v1/compare?a={c.fast}&b={c.slow}",
        "/v1/timeline/stream",
    )
    for path in paths:
        for origin in (FOREIGN, "http://localhost:5173", "null"):
            status, body, headers = await _get(gasoline.api + path, Origin=origin)
            assert status == 403, (path, origin)
            assert "Access-Control-Allow-Origin" not in headers
            assert b"payments" not in body and b"checkout" not in body
    for path in paths[:4]:
        for origin in (gasoline.api, "chrome-extension://abcdefghijklmnop"):
            status, _, headers = await _get(gasoline.api + path, Origin=origin)
            assert status == 200 and headers["Access-Control-Allow-Origin"] == origin
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["edge"]["refused"]["origin"] >= 15
    # The page itself is harmless to load, and says it may not be framed or fed elsewhere.
    status, body, headers = await _get(gasoline.api + "/")
    assert status == 200 and b'type="module"' in body
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    status, _, _ = await _get(gasoline.api + "/static/..%2fweb_page.py")
    assert status == 404


async def _read_stream(resp: aiohttp.ClientResponse, want: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async for line in resp.content:
        if line.startswith(b"data: "):
            events += json.loads(line[6:])["events"]
            if len(events) >= want:
                return events
    return events


async def test_live_stream_sends_what_arrives_after_it_opened(start_daemon: Any) -> None:
    gasoline: Running = await start_daemon("service: {api: {max_live_streams: 1}}")
    await gasoline.post_json("/events", {"events": [{"message": "before", "level": "info"}]})
    await gasoline.settled()
    url = gasoline.api + "/v1/timeline/stream?level=warn"
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        status, body, _ = await _get(url)
        assert status == 503 and b"max_live_streams" in body
        batch = [
            {"message": "quiet", "level": "info"},
            {"message": "loud", "level": "error", "source": "browser"},
        ]
        await gasoline.post_json("/events", {"events": batch})
        async with asyncio.timeout(10):
            events = await _read_stream(resp, 1)
        assert [e["message"] for e in events] == ["loud"]
    _, doc = await gasoline.get_json("/daemon/status")
    assert (
        doc["services"]["web"]["streams_opened"] == 1
        and doc["services"]["web"]["streams_refused"] == 1
    )


async def test_a_stream_open_at_shutdown_does_not_hold_the_daemon(start_daemon: Any) -> None:
    gasoline: Running = await start_daemon()
    async with (
        aiohttp.ClientSession() as http,
        http.get(gasoline.api + "/v1/timeline/stream") as resp,
    ):
        assert resp.status == 200
        async with asyncio.timeout(5):
            await gasoline.daemon.stop()


async def test_compare_against_a_saved_baseline(
    gasoline: Running, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # checkpoints are written under the working directory
    await send_checkout(gasoline, slow=False)
    status, _ = await gasoline.post_json("/v1/tools/configure", {"action": "set_baseline"})
    assert status == 200
    slow, ids = await send_checkout(gasoline, slow=True)
    status, answer = await gasoline.post_json(
        "/v1/tools/analyze", {"type": "compare", "trace_id": slow, "baseline": "baseline"}
    )
    assert status == 200, answer
    slower = {s["name"]: s for s in answer["slower"]}
    assert set(slower) == {"fetch POST /api/checkout", "POST /api/checkout", "POST /charge"}
    charge = slower["POST /charge"]
    assert charge["span_id"] == ids["charge"]
    assert (charge["baseline_p95_ms"], charge["duration_ms"], charge["delta_ms"]) == (20, 100, 80)
    assert "POST /charge" in {e["name"] for e in answer["new_errors"]}
    assert answer["added"] == [] and answer["matched"] == 3


async def test_service_map_builds_only_the_newest_traces_that_fit(
    gasoline: Running, monkeypatch: Any
) -> None:
    c = await send_checkouts(gasoline)
    monkeypatch.setattr("collector.analysis.service_map.MAX_SPANS", 10)
    status, answer = await gasoline.get_json("/v1/service_map")
    assert status == 200
    assert answer["metadata"]["traces"] == 1 and answer["metadata"]["spans"] == 7  # c.slow
    edges = {(e["from"], e["to"]): e for e in answer["edges"]}
    assert edges[("api", "payments")]["errors"] == 1 and c.slow
