"""TracePulse: trigger -> report delivered, with a full store.

In one process, as the other benches fill the store: a ``Daemon`` (all ports 0, on
127.0.0.1) whose store gets ``--spans`` (1,000,000) spans of realistic requests
(``otlp_load.build_pool`` / ``payload`` -> ``decode_traces`` -> ``SpanStore.add``), a
``pulse:`` config with the brief's map (EdgeDevice -> SessionManager -> ServiceA ->
ServiceB) and a Slack-shaped HTTP peer on 127.0.0.1. Then, ``--incidents`` times: an
EV-charging failure trace (ServiceB's database call fails; OTLP/JSON over HTTP, linked
by a correlation id) and a change event to ``src/service_b.py``, then the clock starts
and ``POST /webhook/event`` is sent; the clock stops when the Slack peer has the report
for that correlation id. Each incident has its own error code, so none is folded.

``--settle`` is how long the analysis waits for late spans (the product's default is
500 ms); with ``--settle 0`` the figure is the analysis and delivery alone. Also prints
whether the top hypothesis was ServiceB each time. Nothing is asserted.

    python bench/pulse_bench.py
    python bench/pulse_bench.py --spans 200000 --incidents 50 --settle 0 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import aiohttp  # noqa: E402
import otlp_load  # noqa: E402
from aiohttp import web  # noqa: E402

from collector.config import load_config  # noqa: E402
from collector.daemon import Daemon, rss_bytes  # noqa: E402
from gasoline.components import COMPONENTS  # noqa: E402
from receivers.otlp_codec import decode_traces  # noqa: E402

MS = 1_000_000

MAP = """
pulse:
  settle: {settle}
  slack: {{webhook_url: "{slack}"}}
  services:
    EdgeDevice: {{depends_on: [SessionManager], file: src/edge.js}}
    SessionManager: {{depends_on: [ServiceA], file: src/session.js}}
    ServiceA: {{depends_on: [ServiceB], file: src/service_a.py}}
    ServiceB: {{file: src/service_b.py, functions: [meterReading]}}
service:
  store:
    max_spans: {max_spans}
    max_traces: {max_traces}
    max_bytes: 8589934592
"""


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def incident_trace(cid: str, now_ns: int) -> dict[str, Any]:
    """OTLP/JSON: SessionManager -> ServiceA -> ServiceB, whose db call fails."""
    trace_id = secrets.token_hex(16)
    ids = [secrets.token_hex(8) for _ in range(4)]
    spans = [
        ("SessionManager", "POST /sessions", 2, ids[0], None, 0, 300, "session failed"),
        ("ServiceA", "POST /charge", 2, ids[1], ids[0], 20, 280, "upstream failed"),
        ("ServiceB", "POST /meter", 2, ids[2], ids[1], 40, 260, "db error"),
        ("ServiceB", "SELECT meter", 3, ids[3], ids[2], 50, 250, "deadlock detected"),
    ]
    start = now_ns - 2000 * MS
    resource_spans = []
    for service, name, kind, span_id, parent, t0, t1, error in spans:
        span = {
            "traceId": trace_id,
            "spanId": span_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start + t0 * MS),
            "endTimeUnixNano": str(start + t1 * MS),
            "attributes": [_attr("http.request.header.x-correlation-id", cid)],
            "status": {"code": 2, "message": error},
        }
        if parent:
            span["parentSpanId"] = parent
        resource_spans.append(
            {
                "resource": {"attributes": [_attr("service.name", service)]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": [span]}],
            }
        )
    return {"resourceSpans": resource_spans}


class SlackPeer:
    def __init__(self) -> None:
        self.arrived: dict[str, tuple[float, dict[str, Any]]] = {}
        self.waiters: dict[str, asyncio.Event] = {}

    async def post(self, request: web.Request) -> web.Response:
        body = await request.json()
        header = body["blocks"][1]["fields"][0]["text"]  # *Correlation id*\n`cid`
        cid = header.split("`")[1]
        self.arrived[cid] = (time.perf_counter(), body)
        self.waiters.setdefault(cid, asyncio.Event()).set()
        return web.Response(text="ok")


def fill(daemon: Daemon, spans: int, log: Any) -> None:
    pool = otlp_load.build_pool(256, seed=1)
    n_requests = pool.requests_for(spans)
    redactor = daemon.pipeline.redactor
    t0 = time.perf_counter()
    for seq in range(n_requests):
        raw = otlp_load.payload(pool, seq)
        batch = decode_traces(raw, redactor=redactor).batch
        daemon.store.spans.add(batch, time.time_ns())
    log(
        f"{daemon.store.spans.span_count:,} spans in {daemon.store.spans.trace_count:,} traces "
        f"stored in {time.perf_counter() - t0:.1f} s; RSS {rss_bytes() / 1e6:,.0f} MB"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    def log(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    peer = SlackPeer()
    app = web.Application()
    app.router.add_post("/hook", peer.post)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    slack = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    home = tempfile.mkdtemp(prefix="pulse-bench-")
    os.environ["HOME"] = home  # reports go to a scratch ~/.gasoline/data/reports
    config_path = Path(home) / "config.yaml"
    config_path.write_text(
        MAP.format(
            settle=f"{args.settle}ms",
            slack=slack,
            max_spans=int(args.spans * 1.2) + 10_000,
            max_traces=args.spans + 10_000,
        )
    )
    config = load_config(config_path, components=COMPONENTS, ports={"grpc": 0, "http": 0, "api": 0})
    daemon = Daemon(config, COMPONENTS)
    await daemon.start()
    latencies: list[float] = []
    right = 0
    try:
        fill(daemon, args.spans, log)
        ports = daemon.ports
        api, otlp = f"http://127.0.0.1:{ports['api']}", f"http://127.0.0.1:{ports['http']}"
        async with aiohttp.ClientSession() as http:
            for i in range(args.incidents):
                cid = f"bench-{i}-{secrets.token_hex(4)}"
                now = time.time_ns()
                async with http.post(otlp + "/v1/traces", json=incident_trace(cid, now)) as r:
                    assert r.status == 200, await r.text()
                event = {
                    "source": "git",
                    "message": f"commit c{i:06d}: tune meter reads",
                    "metadata": {"commit": f"c{i:06d}", "files": ["src/service_b.py"]},
                }
                async with http.post(api + "/event", json=event) as r:
                    assert r.status == 200, await r.text()
                await daemon.pipeline.drained()
                waiter = peer.waiters.setdefault(cid, asyncio.Event())
                trigger = {
                    "eventType": "SESSION_DROP",
                    "correlationId": cid,
                    "details": {"service": "SessionManager", "errorCode": f"E{i}"},
                }
                started = time.perf_counter()
                async with http.post(api + "/webhook/event", json=trigger) as r:
                    assert r.status == 200, await r.text()
                await asyncio.wait_for(waiter.wait(), timeout=60)
                arrived, body = peer.arrived[cid]
                latencies.append((arrived - started) * 1000)
                right += "ServiceB" in body["blocks"][2]["text"]["text"].split("(")[0]
    finally:
        await daemon.stop()
        await runner.cleanup()
    ordered = sorted(latencies)
    result = {
        "spans_stored": args.spans,
        "incidents": len(latencies),
        "settle_ms": args.settle,
        "trigger_to_slack_ms": {
            "p50": round(statistics.median(ordered), 1),
            "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
            "max": round(ordered[-1], 1),
        },
        "top_hypothesis_right": f"{right}/{len(latencies)}",
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=100)
    parser.add_argument("--settle", type=int, default=500, help="pulse.settle in ms")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return
    t = result["trigger_to_slack_ms"]
    print(
        f"trigger -> report at Slack, {result['spans_stored']:,} spans stored, "
        f"settle {result['settle_ms']} ms, {result['incidents']} incidents: "
        f"p50 {t['p50']} ms, p99 {t['p99']} ms, max {t['max']} ms; top hypothesis right "
        f"{result['top_hypothesis_right']}"
    )


if __name__ == "__main__":
    main()
