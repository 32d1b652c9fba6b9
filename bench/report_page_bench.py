"""TracePulse's pages, as the browser measures them: Debian's headless Chromium (through
Playwright) reads the page's own ``performance`` timings.

A daemon on 127.0.0.1 (all ports 0, its data in a temporary HOME) gets ``--reports``
(200) incidents through the real webhook, each of its own signature over a failing
four-service trace, and makes a report of each. Then:

1. ``/reports``: navigation start to the list rendered (the ``gasoline:rendered`` mark).
2. ``/reports/{id}``: navigation start to the report rendered (hypotheses, chain, the
   system map's SVG, the conversation).
3. The feedback round trip: a click on "Reject" to the refreshed report showing it in
   the conversation (POST ``/chat/feedback``, the report written to disk, read again,
   drawn again).

``--runs`` of each, median and worst. The daemon shares this process's event loop with
the Playwright client (which only relays to its driver process). Nothing is asserted.

    python bench/report_page_bench.py
    python bench/report_page_bench.py --reports 500 --runs 20 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

import aiohttp  # noqa: E402
from playwright.async_api import Page, async_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
MAP = """
pulse:
  settle: 0ms
  max_reports: {keep}
  services:
    EdgeDevice: {{depends_on: [SessionManager], file: src/edge.js}}
    SessionManager: {{depends_on: [ServiceA], file: src/session.js}}
    ServiceA: {{depends_on: [ServiceB], file: src/service_a.py}}
    ServiceB: {{depends_on: [Ledger], file: src/service_b.py}}
    Ledger: {{file: src/ledger.py}}
"""


def _stats(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1)}


async def _rendered(page: Page, url: str) -> float:
    await page.goto(url)
    await page.wait_for_function(
        "() => performance.getEntriesByName('gasoline:rendered').length > 0"
    )
    mark: float = await page.evaluate(
        "() => performance.getEntriesByName('gasoline:rendered')[0].startTime"
    )
    return mark


async def run(n_reports: int, runs: int) -> dict[str, Any]:
    from collector.config import load_config
    from collector.daemon import Daemon
    from gasoline.components import COMPONENTS
    from tests.test_pulse import Chain, NowScenario

    tmp = Path(tempfile.mkdtemp(prefix="gasoline-report-bench-"))
    os.environ["HOME"] = str(tmp)
    config_path = tmp / "gasoline.yaml"
    config_path.write_text(MAP.format(keep=max(n_reports, 1)))
    ports = {"grpc": 0, "http": 0, "api": 0}
    daemon = Daemon(load_config(config_path, components=COMPONENTS, ports=ports), COMPONENTS)
    await daemon.start()
    try:
        api = f"http://127.0.0.1:{daemon.ports['api']}"

        class _Running:  # what tests.scenarios.Scenario.send needs
            grpc = f"127.0.0.1:{daemon.ports['grpc']}"

            async def settled(self) -> None:
                await daemon.pipeline.drained()

        started = time.perf_counter()
        async with aiohttp.ClientSession() as http:
            for i in range(n_reports):
                cid = f"cid-bench-{i}"
                sc = NowScenario()
                Chain(cid, fail={"ServiceB": "db pool exhausted"}, extra_below_b="Redis").build(sc)
                await sc.send(_Running())  # type: ignore[arg-type]
                body = {
                    "eventType": "SESSION_DROP",
                    "correlationId": cid,
                    "details": {"service": "SessionManager", "errorCode": f"E{i}"},
                    "priority": "high",
                }
                async with http.post(api + "/webhook/event", json=body) as resp:
                    assert resp.status == 200, await resp.text()
        while len(daemon.pulse.book.reports) < n_reports:
            await asyncio.sleep(0.05)
        made_s = time.perf_counter() - started
        newest = daemon.pulse.book.newest(1)[0]
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
            )
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            listing = [await _rendered(page, api + "/reports") for _ in range(runs)]
            rows = await page.locator("tr[data-report-id]").count()
            report = [await _rendered(page, f"{api}/reports/{newest['id']}") for _ in range(runs)]
            round_trips = []
            for i in range(runs):
                said = page.locator(".conversation li[data-feedback]")
                t0 = time.perf_counter()
                await page.locator("li[data-rank='1'] button[data-verdict='reject']").click()
                await said.nth(i).wait_for()
                round_trips.append((time.perf_counter() - t0) * 1000)
            await browser.close()
    finally:
        await daemon.stop()
    return {
        "reports": n_reports,
        "reports_made_s": round(made_s, 2),
        "list_rows_shown": rows,
        "list_rendered": _stats(listing),
        "report_rendered": _stats(report),
        "feedback_round_trip": _stats(round_trips),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.reports, args.runs))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['reports']} reports made in {result['reports_made_s']} s")
    print(f"/reports ({result['list_rows_shown']} rows): rendered {result['list_rendered']}")
    print(f"/reports/{{id}}: rendered {result['report_rendered']}")
    print(f"reject -> shown in the conversation: {result['feedback_round_trip']}")


if __name__ == "__main__":
    main()
