"""The web page's speed, as the browser measures it: Debian's headless Chromium (through
Playwright) reads the page's own ``performance`` timings.

A child process runs a daemon on 127.0.0.1 (all ports 0) whose store it fills directly
(``otlp_load.build_pool`` / ``payload`` -> ``decode_traces`` -> ``SpanStore.add``, as
``tools_bench`` does) with ``--spans`` (1,000,000) spans of realistic requests, plus one
trace of ``--big-spans`` (5,000) spans; the daemon has its process and event loop to
itself, as ``gasoline serve`` does. Then, from this process:

1. **Trace list** (``/``): from navigation start to the list rendered (the page's
   ``gasoline:rendered`` mark) and to its largest contentful paint; when the page asked
   for ``/v1/trace_list`` and had it; the daemon's own query time. ``--runs`` loads,
   median and worst.
2. **Waterfall** of the 5,000-span trace: navigation start to rendered, to the largest
   paint, and to the causality answer shown (each load waits for it before the next);
   then the rows are scrolled top to bottom over ``--scroll-s`` seconds, one step a
   frame, and the frame intervals (p50, p99, max) and long tasks are read.
3. **Live timeline** (``/timeline``) while ``--rate`` (1,000) events a second are posted
   to ``/events`` in batches of a tenth of a second for ``--live-s`` (10) seconds: events
   the page showed against events sent, the daemon's counted drops, and the page's frame
   intervals and long tasks meanwhile (is the tab frozen?).

Nothing is asserted; figures print as text, or JSON with ``--json``.

    python bench/web_bench.py
    python bench/web_bench.py --spans 200000 --runs 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
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
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import (  # noqa: E402
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
)
from playwright.async_api import Page, async_playwright  # noqa: E402

from collector.config import load_config  # noqa: E402
from collector.daemon import Daemon  # noqa: E402
from gasoline.components import COMPONENTS  # noqa: E402
from receivers.otlp_codec import decode_traces  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
MS = 1_000_000

# Frame intervals and long tasks, recorded in the page from the moment it is injected.
_WATCH = """() => {
  window.__frames = []; window.__long = [];
  let last = performance.now();
  const tick = (t) => { window.__frames.push(t - last); last = t; requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) window.__long.push(e.duration);
  }).observe({ type: "longtask", buffered: false });
}"""
_TIMINGS = """async () => {
  await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  const lcp = await new Promise((r) => {
    new PerformanceObserver((l) => { const e = l.getEntries(); r(e[e.length - 1].startTime); })
      .observe({ type: "largest-contentful-paint", buffered: true });
    setTimeout(() => r(null), 1000);
  });
  const mark = performance.getEntriesByName("gasoline:rendered")[0];
  const api = performance.getEntriesByType("resource").filter((e) => e.name.includes("/v1/"));
  const nav = performance.getEntriesByType("navigation")[0];
  return { rendered_ms: mark ? mark.startTime : null, lcp_ms: lcp, html_ms: nav.responseEnd,
           api: api.map((e) => [new URL(e.name).pathname, e.startTime, e.responseEnd]) };
}"""


def fill(daemon: Daemon, spans: int, big_spans: int, log: Any) -> bytes:
    """Fill the daemon's store; return the big trace's id."""
    pool = otlp_load.build_pool(256, seed=1)
    n_requests = pool.requests_for(spans)
    t0 = time.perf_counter()
    store = daemon.store
    for seq in range(n_requests):
        raw = otlp_load.payload(pool, seq)
        store.spans.add(decode_traces(bytes(bytearray(raw)), redactor=None).batch, time.time_ns())
    trace_id = random.Random(5).randbytes(16)
    store.spans.add(decode_traces(big_trace(trace_id, big_spans)).batch, time.time_ns())
    log(
        f"{store.spans.span_count:,} spans in {store.spans.trace_count:,} traces stored in "
        f"{time.perf_counter() - t0:.1f} s"
    )
    return trace_id


def big_trace(trace_id: bytes, n: int) -> bytes:
    """One request of an ``n``-span trace: a SERVER root, 50 steps, each with queries."""
    rng = random.Random(7)
    start = time.time_ns() - 5_000 * MS
    spans: list[Span] = []
    ids = iter(rng.randbytes(8) for _ in range(n + 1))
    root_id = next(ids)
    spans.append(
        Span(
            trace_id=trace_id,
            span_id=root_id,
            name="GET /api/report",
            kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=start,
            end_time_unix_nano=start + 4_000 * MS,
        )
    )
    steps = 50
    per_step = (n - 1 - steps) // steps
    at = start + MS
    for s in range(steps):
        step_id = next(ids)
        step_start = at
        children = []
        for q in range(per_step if s < steps - 1 else n - 1 - steps - per_step * (steps - 1)):
            d = rng.randint(50_000, 1_000_000)
            failed = rng.random() < 0.01
            children.append(
                Span(
                    trace_id=trace_id,
                    span_id=next(ids),
                    parent_span_id=step_id,
                    name=f"SELECT rows {q % 7}",
                    kind=Span.SPAN_KIND_CLIENT,
                    start_time_unix_nano=at,
                    end_time_unix_nano=at + d,
                    attributes=otlp_load.attributes({"db.system": "postgresql"}),
                    status=Status(code=Status.STATUS_CODE_ERROR if failed else 0),
                )
            )
            at += d
        spans.append(
            Span(
                trace_id=trace_id,
                span_id=step_id,
                parent_span_id=root_id,
                name=f"step {s}",
                start_time_unix_nano=step_start,
                end_time_unix_nano=at,
            )
        )
        spans += children
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=otlp_load.attributes({"service.name": "reports"})),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    return request.SerializeToString()


def _frames(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values[1:])  # the first interval spans the injection
    if not ordered:
        return {}
    return {
        "frames": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def _median(values: Any) -> float:
    return round(statistics.median(list(values)), 1)


async def _query_ms(api: str, path: str, runs: int) -> float:
    """The daemon's own handling time of ``path`` (its ``metadata.query_time_ms``)."""
    times = []
    async with aiohttp.ClientSession() as http:
        for _ in range(runs):
            async with http.get(api + path) as resp:
                times.append((await resp.json())["metadata"]["query_time_ms"])
    return _median(times)


async def trace_list(page: Page, api: str, runs: int) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        await page.goto(api + "/")
        await page.wait_for_selector("tr[data-trace-id]")
        results.append(await page.evaluate(_TIMINGS))
    rendered = sorted(r["rendered_ms"] for r in results)
    fetches = [next(a for a in r["api"] if a[0] == "/v1/trace_list") for r in results]
    return {
        "runs": runs,
        "rendered_median_ms": _median(rendered),
        "rendered_max_ms": round(rendered[-1], 1),
        "lcp_median_ms": _median(r["lcp_ms"] or 0 for r in results),
        "html_received_median_ms": _median(r["html_ms"] for r in results),
        "list_requested_median_ms": _median(f[1] for f in fetches),
        "list_received_median_ms": _median(f[2] for f in fetches),
        "daemon_query_median_ms": await _query_ms(api, "/v1/trace_list?limit=50", runs),
        "rows": await page.locator("tr[data-trace-id]").count(),
    }


async def waterfall(
    page: Page, api: str, trace_id: str, runs: int, scroll_s: float
) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        await page.goto(f"{api}/traces/{trace_id}")
        await page.wait_for_selector(".wf-row[data-span-id]")
        results.append(await page.evaluate(_TIMINGS))
        await page.wait_for_selector(".causality h2", timeout=60_000)  # all answers in
        results[-1]["causality_ms"] = await page.evaluate(
            "performance.getEntriesByName('gasoline:causality')[0].startTime"
        )
    rendered = sorted(r["rendered_ms"] for r in results)
    await page.evaluate(_WATCH)
    steps = max(1, int(scroll_s * 60))
    await page.evaluate(
        """async (steps) => {
          const box = document.querySelector(".wf-scroll");
          const end = box.scrollHeight - box.clientHeight;
          for (let i = 1; i <= steps; i++) {
            box.scrollTop = (end * i) / steps;
            await new Promise((r) => requestAnimationFrame(r));
          }
        }""",
        steps,
    )
    frames = await page.evaluate("window.__frames")
    longs = await page.evaluate("window.__long")
    return {
        "spans": await page.evaluate("document.querySelector('.wf-spacer').offsetHeight / 24"),
        "rows_in_dom": await page.locator(".wf-row").count(),
        "rendered_median_ms": _median(rendered),
        "rendered_max_ms": round(rendered[-1], 1),
        "lcp_median_ms": _median(r["lcp_ms"] or 0 for r in results),
        "causality_shown_median_ms": _median(r["causality_ms"] for r in results),
        "tree_received_median_ms": _median(
            min(a[2] for a in r["api"] if "causality" not in a[0]) for r in results
        ),
        "scroll": {
            **_frames(frames),
            "long_tasks": len(longs),
            "longest_task_ms": max(longs, default=0),
        },
    }


async def live(page: Page, api: str, rate: int, seconds: float) -> dict[str, Any]:
    await page.goto(api + "/timeline?source=bench")
    await page.wait_for_selector(".live-state.on")
    await page.evaluate(_WATCH)
    tick = 0.1
    per_tick = max(1, int(rate * tick))
    sent = 0
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        n = 0
        while time.perf_counter() - started < seconds:
            batch = [
                {"message": f"bench event {sent + i}", "level": "info", "source": "bench"}
                for i in range(per_tick)
            ]
            async with http.post(api + "/events", json={"events": batch}) as resp:
                assert resp.status == 200, await resp.text()
            sent += per_tick
            n += 1
            await asyncio.sleep(max(0.0, started + n * tick - time.perf_counter()))
    elapsed = time.perf_counter() - started
    shown = 0
    for _ in range(50):  # let the last polls arrive
        text = await page.locator(".toolbar .muted").text_content() or ""
        shown = int(text.split(" ")[0]) if text[:1].isdigit() else 0
        if shown >= sent:
            break
        await page.wait_for_timeout(100)
    frames = await page.evaluate("window.__frames")
    longs = await page.evaluate("window.__long")
    async with aiohttp.ClientSession() as http, http.get(api + "/daemon/status") as resp:
        status = (await resp.json())["web"]
    return {
        "rate_sent_per_s": round(sent / elapsed),
        "sent": sent,
        "shown": shown,
        "daemon_dropped": status["dropped"],
        "rows_in_dom": await page.locator(".tl-row").count(),
        "frames": _frames(frames),
        "long_tasks": len(longs),
        "longest_task_ms": max(longs, default=0),
    }


async def serve(args: argparse.Namespace) -> None:
    """The child: fill, serve, print ``ready PORT TRACE_ID``, stop when stdin closes."""
    tmp = Path(tempfile.mkdtemp(prefix="web-bench-"))
    config = tmp / "gasoline.yaml"
    store = {
        "max_spans": int(args.spans * 1.2) + args.big_spans,
        "max_traces": args.spans + 10,
        "max_bytes": 1 << 40,
    }
    config.write_text(json.dumps({"service": {"store": store}}))
    os.environ["HOME"] = str(tmp)
    daemon = Daemon(
        load_config(config, components=COMPONENTS, ports={"grpc": 0, "http": 0, "api": 0}),
        COMPONENTS,
    )
    await daemon.start()
    try:
        big = fill(daemon, args.spans, args.big_spans, lambda text: print(text, flush=True))
        print(
            f"ready {daemon.ports['api']} {big.hex()} {daemon.store.spans.span_count}", flush=True
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await daemon.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    def log(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--serve",
        "--spans",
        str(args.spans),
        "--big-spans",
        str(args.big_spans),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    try:
        while not (line := (await child.stdout.readline()).decode()).startswith("ready"):
            if not line:
                raise SystemExit("the daemon process ended before it was ready")
            log(line.rstrip())
        _, port, big, stored = line.split()
        api = f"http://127.0.0.1:{port}"
        result: dict[str, Any] = {"spans_stored": int(stored)}
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                result["trace_list"] = await trace_list(page, api, args.runs)
                log(f"trace list: {result['trace_list']}")
                result["waterfall"] = await waterfall(page, api, big, args.runs, args.scroll_s)
                log(f"waterfall: {result['waterfall']}")
                result["live"] = await live(page, api, args.rate, args.live_s)
                log(f"live timeline: {result['live']}")
            finally:
                await browser.close()
    finally:
        child.stdin.close()
        await child.wait()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--big-spans", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scroll-s", type=float, default=3.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--live-s", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args))
        return
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
