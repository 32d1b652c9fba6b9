"""What the browser extension costs a page, and how much it carries into the daemon.

Headless Debian Chromium (Playwright) with the extension loaded, a small aiohttp page on
127.0.0.1, and ``gasoline serve`` in its own process (all ports 0). In the page, each
figure compares the wrapped function with the browser's own one, taken from a same-origin
``about:blank`` iframe (where the extension's scripts do not run), in alternating rounds
(median of ``--rounds``), waiting before each until the extension has delivered what the
previous round recorded, so its worker and the daemon do not compete for the CPU:

0. The wrapper's own decisions per request (``page/core.js`` alone, 20,000 times): URL,
   traceparent decision, span id, header. The figures below include the browser's noise.
1. ``fetch`` call: the synchronous cost of ``N`` calls to ``fetch('/ping')`` (what the
   page's main thread pays before the request is on its way: URL parsing, the traceparent
   decision and header, the span's start), and ``N`` fetches awaited one after another.
2. ``console.log``: ``N`` calls (arguments serialized and bounded, batched to the relay).
3. Events per second into the daemon: ``--events`` console messages made in one burst,
   from the first call until the daemon has stored the last (page -> relay -> service
   worker -> chrome.storage queue -> ``POST /events``).

Nothing is asserted. ``python bench/extension_bench.py [--fetches 500] [--events 5000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from playwright.async_api import Page  # noqa: E402

from tests.browser import EXTENSION, chromium  # noqa: E402

GASOLINE = str(Path(sys.executable).parent / "gasoline")

PAGE = "<!doctype html><title>bench</title><p>bench</p>"

# ``which`` is "wrapped" (the page's own, as the extension left it), "real" (the browser's,
# from an iframe the extension does not touch) or "header" (the browser's, given a
# traceparent: what the header alone costs the browser).
SETUP = """() => {
  const frame = document.createElement('iframe');
  document.body.appendChild(frame);
  const fetch = frame.contentWindow.fetch.bind(window);
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const header = (url) => fetch(url, { headers: { traceparent } });
  window.__real = { fetch, header, console: frame.contentWindow.console };
}"""
FETCH_SYNC = """async ([n, which]) => {
  const f = which === 'wrapped' ? fetch : window.__real[which === 'real' ? 'fetch' : 'header'];
  const url = location.origin + '/ping?' + which + '=';
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) pending.push(f(url + i));
  const t1 = performance.now();
  await Promise.all(pending);
  return (t1 - t0) * 1000 / n;
}"""
FETCH_SEQ = """async ([n, which]) => {
  const f = which === 'wrapped' ? fetch : window.__real[which === 'real' ? 'fetch' : 'header'];
  const url = location.origin + '/ping?seq-' + which + '=';
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await f(url + i);
  return (performance.now() - t0) * 1000 / n;
}"""
CONSOLE = """([n, which]) => {
  const c = which === 'wrapped' ? console : window.__real.console;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) c.log('bench line', i, {i, ok: true});
  return (performance.now() - t0) * 1000 / n;
}"""
# The decisions the wrapper makes per request (page/core.js, loaded into the page on its
# own): parse the URL, decide and probe-check, a span id, the traceparent header.
LOGIC = """(n) => {
  const core = window.__gasolineCore;
  const config = { targets: ['http://localhost:8000'], daemon: ['loopback:7890'], probed: {} };
  const trace = core.newTraceId();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const url = new URL('/ping?i=' + i, location.href);
    const decision = core.decide(url, location.origin, config);
    if (decision === 'inject' && !core.needsProbe(url, location.origin, config)) {
      const headers = new Headers(undefined);
      headers.set('traceparent', core.formatTraceparent(trace, core.newSpanId()));
    }
  }
  return (performance.now() - t0) * 1000 / n;
}"""
BURST = """(n) => { for (let i = 0; i < n; i++) console.info('burst ' + i); }"""


async def page_figures(
    page: Page, args: argparse.Namespace, settle: Callable[[], Awaitable[None]]
) -> dict[str, dict[str, float]]:
    """Median microseconds per call, wrapped and real, over alternating rounds."""
    await page.evaluate(SETUP)
    await page.add_script_tag(path=str(EXTENSION / "page" / "core.js"))
    logic = [await page.evaluate(LOGIC, 20_000) for _ in range(args.rounds)]
    for which in ("real", "header", "wrapped"):
        await page.evaluate(FETCH_SYNC, [50, which])  # warm-up: connections, JIT
    runs: dict[str, dict[str, list[float]]] = {"real": {}, "header": {}, "wrapped": {}}
    for _ in range(args.rounds):
        for key, script, n in (
            ("fetch_call_us", FETCH_SYNC, args.fetches),
            ("fetch_awaited_us", FETCH_SEQ, args.fetches),
            ("console_log_us", CONSOLE, args.logs),
        ):
            for which in ("real", "header", "wrapped"):
                if which == "header" and script is CONSOLE:
                    continue
                await settle()
                runs[which].setdefault(key, []).append(await page.evaluate(script, [n, which]))
    return {
        "logic_us": round(statistics.median(logic), 2),
        **{
            which: {k: round(statistics.median(v), 2) for k, v in figures.items()}
            for which, figures in runs.items()
        },
    }


def serve(tmp: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``gasoline serve`` on ports 0, and the URLs it printed."""
    history = {"dir": str(tmp / "data")}
    (tmp / "gasoline.yaml").write_text(json.dumps({"service": {"store": {"history": history}}}))
    proc = subprocess.Popen(
        [
            GASOLINE,
            "serve",
            "--config",
            str(tmp / "gasoline.yaml"),
            "--grpc-port",
            "0",
            "--http-port",
            "0",
            "--api-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    for line in proc.stdout:
        if match := re.match(r"\s+(OTLP/HTTP|API)\s+(\S+)", line):
            urls[match.group(1)] = match.group(2)
        if line.startswith("ready"):
            return proc, urls
    raise RuntimeError("gasoline serve exited before it was ready")


async def stored(api: str) -> int:
    """Records the daemon has stored (its status accounting)."""
    async with aiohttp.ClientSession() as http, http.get(f"{api}/daemon/status") as resp:
        return int((await resp.json())["accounting"]["records"]["stored"])


async def main(args: argparse.Namespace) -> dict[str, Any]:
    app = web.Application()
    app.add_routes(
        [
            web.get("/", lambda _: web.Response(text=PAGE, content_type="text/html")),
            web.get("/ping", lambda _: web.Response(status=204)),
        ]
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    tmp = Path(tempfile.mkdtemp(prefix="gasoline-ext-bench-"))
    daemon, urls = serve(tmp)
    results: dict[str, Any] = {}
    try:
        async with chromium(tmp / "profile", extension=EXTENSION) as context:
            worker = context.service_workers[0] if context.service_workers else None
            worker = worker or await context.wait_for_event("serviceworker")
            await worker.evaluate(
                "o => chrome.storage.local.set({options: o})",
                {"daemonUrl": urls["API"], "otlpUrl": urls["OTLP/HTTP"]},
            )

            async def settle() -> None:
                """Until the page's last batch is handed over and the worker's queue is empty."""
                await asyncio.sleep(0.2)
                script = "async () => ((await chrome.storage.local.get('queue')).queue || {}).items"
                while await worker.evaluate(script):
                    await asyncio.sleep(0.05)

            page = await context.new_page()
            await page.goto(url)
            results.update(await page_figures(page, args, settle))
            await settle()
            before = await stored(urls["API"])
            started = time.perf_counter()
            await page.evaluate(BURST, args.events)
            count = 0
            while count < args.events and time.perf_counter() - started < 120:
                await asyncio.sleep(0.02)
                count = await stored(urls["API"]) - before
            elapsed = time.perf_counter() - started
            results["events"] = {
                "sent": args.events,
                "stored": count,
                "seconds": round(elapsed, 3),
                "events_per_s": round(count / elapsed),
            }
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.communicate(timeout=30)
        await runner.cleanup()
    real, wrapped = results["real"], results["wrapped"]
    results["wrapper_cost_us"] = {k: round(wrapped[k] - real[k], 2) for k in real}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fetches", type=int, default=500, help="fetches per run (500)")
    parser.add_argument("--logs", type=int, default=1000, help="console.log calls (1000)")
    parser.add_argument("--events", type=int, default=5000, help="events in the burst (5000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per page figure (5)")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    result = asyncio.run(main(parser.parse_args()))
    if parser.parse_args().json:
        print(json.dumps(result))
    else:
        labels = {
            "real": "browser's own",
            "header": "own + traceparent",
            "wrapped": "wrapped",
            "wrapper_cost_us": "wrapped - own",
        }
        for key, label in labels.items():
            f = result[key]
            console = f"   console.log {f['console_log_us']:>7} us" if "console_log_us" in f else ""
            print(
                f"{label:<18} fetch call {f['fetch_call_us']:>7} us   "
                f"fetch awaited {f['fetch_awaited_us']:>8} us{console}"
            )
        print(f"the wrapper's own decisions per fetch (page/core.js): {result['logic_us']} us")
        e = result["events"]
        print(
            f"events into the daemon: {e['stored']}/{e['sent']} in {e['seconds']} s "
            f"= {e['events_per_s']} events/s"
        )
