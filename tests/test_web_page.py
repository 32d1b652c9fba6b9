"""The web page in a real headless Chromium, on traces sent by the real OTel SDK: every
page shows the right rows, the waterfall marks the root cause, attacker-shaped names and
log lines stay text, the live timeline shows what arrives, and the page logs no console
error and asks nothing of any host but the daemon.

With ``GASOLINE_SCREENSHOTS=DIR`` set, each test also saves its page's picture there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import Page, expect

from tests.browser import chromium, needs_chromium
from tests.conftest import Running
from tests.test_otlp_http import NOW_NS, otlp_json, span
from tests.web_scenarios import XSS, send_checkout, send_checkouts

pytestmark = needs_chromium


class Watched:
    """A page whose console errors, uncaught errors and requests are recorded."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    def check(self) -> None:
        assert self.errors == [], self.errors
        hosts = {urlsplit(url).hostname for url in self.requests}
        assert hosts == {"127.0.0.1"}, self.requests
        assert all(url.startswith(self.origin + "/") for url in self.requests), self.requests

    async def no_script_ran(self) -> None:
        assert await self.page.evaluate("window.__xss") is None
        assert await self.page.locator("img[src='x']").count() == 0


@asynccontextmanager
async def opened(gasoline: Running, tmp_path: Path) -> AsyncIterator[Watched]:
    async with chromium(tmp_path / "profile", viewport=(1400, 1000)) as context:
        watched = Watched(await context.new_page(), gasoline.api)
        yield watched
        watched.check()


async def shoot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 0
    if target := os.environ.get("GASOLINE_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


async def test_trace_list_leads_to_the_waterfall_with_the_root_cause_marked(
    gasoline: Running, tmp_path: Path
) -> None:
    c = await send_checkouts(gasoline)
    async with opened(gasoline, tmp_path) as w:
        page = w.page
        await page.goto(gasoline.api + "/")
        rows = page.locator("tr[data-trace-id]")
        await expect(rows).to_have_count(2)
        assert [await r.get_attribute("data-trace-id") for r in await rows.all()] == [
            c.slow,
            c.fast,
        ]
        await shoot(page, tmp_path, "web-traces")
        await page.click(f"tr[data-trace-id='{c.slow}'] a")
        await page.wait_for_url(f"**/traces/{c.slow}")
        cause = page.locator("[data-root-cause]")
        await expect(cause).to_have_count(1)
        assert await cause.get_attribute("data-span-id") == c.cause_span
        await expect(page.locator(".wf-row[data-span-id]")).to_have_count(7)
        await expect(page.locator(".causality .root-cause")).to_contain_text(
            "card processor unreachable"
        )
        await expect(page.locator(".chain li")).to_have_count(4)
        await expect(page.locator(".wf-detail h2")).to_contain_text("POST /charge")
        await expect(page.locator(".wf-detail")).to_contain_text("card processor unreachable")
        await shoot(page, tmp_path, "web-waterfall")
        # The injected span name is text; its log line too, at its span.
        evil = page.locator(f"[data-span-id='{c.xss_span}'] .name")
        assert await evil.text_content() == f"render {XSS}"
        await page.click(".wf-row:has-text('SELECT coupons')")
        await expect(page.locator(".wf-detail li[data-event-id]")).to_contain_text(XSS)
        # Keyboard: up from SELECT coupons is SELECT cart; left goes to the parent.
        await page.keyboard.press("ArrowUp")
        await expect(page.locator(".wf-row.selected .name")).to_have_text("SELECT cart")
        await page.keyboard.press("ArrowLeft")
        await expect(page.locator(".wf-row.selected .name")).to_have_text("POST /api/checkout")
        await page.keyboard.press("ArrowLeft")  # collapse it
        await expect(page.locator(".wf-row[data-span-id]")).to_have_count(2)
        await page.keyboard.press("ArrowRight")
        await expect(page.locator(".wf-row[data-span-id]")).to_have_count(7)
        # A generated output is one click away.
        await page.click("[data-generate='reproduction']")
        await expect(page.locator(".generated pre")).to_contain_text("/api/checkout")
        await w.no_script_ran()


async def test_live_timeline_shows_an_event_posted_after_it_opened(
    gasoline: Running, tmp_path: Path
) -> None:
    c = await send_checkouts(gasoline)
    async with opened(gasoline, tmp_path) as w:
        page = w.page
        await page.goto(gasoline.api + "/timeline")
        await expect(page.locator(f".tl-row[data-span-id='{c.cause_span}']")).to_have_count(1)
        await expect(page.locator(".live-state")).to_have_text("live")
        event = {
            "message": f"late click {XSS}",
            "level": "error",
            "source": "browser",
            "trace_id": c.slow,
        }
        status, answer = await gasoline.post_json("/event", event)
        assert status == 200
        row = page.locator(f".tl-row[data-event-id='{answer['event_id']}']")
        await expect(row).to_contain_text(f"late click {XSS}")
        assert await row.locator("a").get_attribute("href") == f"/traces/{c.slow}"
        # Paused, new events wait; resumed, they show.
        await page.click("text=Pause")
        status, held = await gasoline.post_json("/event", {"message": "while paused"})
        await expect(page.locator(".toolbar")).to_contain_text("1 waiting")
        assert await page.locator(f"[data-event-id='{held['event_id']}']").count() == 0
        await page.click("text=Resume")
        await expect(page.locator(f"[data-event-id='{held['event_id']}']")).to_have_count(1)
        await shoot(page, tmp_path, "web-timeline")
        await w.no_script_ran()
        await page.goto(gasoline.api + "/timeline?level=error")
        await expect(page.locator(".tl-row").first).to_be_visible()
        levels = await page.locator(".tl-row .level").all_text_contents()
        assert levels and set(levels) == {"error"}
    async with asyncio.timeout(5):  # the stream ends once the daemon sees the page gone
        while (await gasoline.get_json("/daemon/status"))[1]["services"]["web"]["live_streams"]:
            await asyncio.sleep(0.02)
    _, doc = await gasoline.get_json("/daemon/status")
    assert doc["services"]["web"]["streams_opened"] == 2


async def test_service_map_leads_to_a_services_traces(gasoline: Running, tmp_path: Path) -> None:
    await send_checkouts(gasoline)
    async with opened(gasoline, tmp_path) as w:
        page = w.page
        await page.goto(gasoline.api + "/services")
        edge = page.locator("svg g[data-edge='api→payments']")
        await expect(edge).to_contain_text("50.0% err")
        await expect(edge).to_contain_text("p99 100 ms")
        await expect(page.locator("svg a.node")).to_have_count(3)
        await shoot(page, tmp_path, "web-services")
        await page.click("svg a.node[data-service='payments']")
        await page.wait_for_url("**/?service=payments")
        await expect(page.locator("tr[data-trace-id]")).to_have_count(2)


async def test_compare_shows_the_slower_span_with_its_delta(
    gasoline: Running, tmp_path: Path
) -> None:
    c = await send_checkouts(gasoline)
    async with opened(gasoline, tmp_path) as w:
        page = w.page
        await page.goto(f"{gasoline.api}/compare?a={c.fast}&b={c.slow}")
        slower = page.locator(f"tr[data-span-id='{c.slow_db_span}']")
        await expect(slower).to_contain_text("SELECT cart")
        await expect(slower).to_contain_text("+90 ms")
        side = page.locator(f".cmp-span.slower[data-side='b'][data-span-id='{c.slow_db_span}']")
        await expect(side).to_contain_text("+90 ms")
        await expect(page.locator(".cmp-span.missing")).to_contain_text("cache get")
        await expect(page.locator(".cmp-span.added").first).to_be_visible()
        await shoot(page, tmp_path, "web-compare")
        await w.no_script_ran()


async def test_compare_against_the_baseline(
    gasoline: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # checkpoints are written under the working directory
    await send_checkout(gasoline, slow=False)
    status, _ = await gasoline.post_json("/v1/tools/configure", {"action": "set_baseline"})
    assert status == 200
    slow, ids = await send_checkout(gasoline, slow=True)
    async with opened(gasoline, tmp_path) as w:
        page = w.page
        await page.goto(f"{gasoline.api}/compare?b={slow}&baseline=baseline")
        charge = page.locator(f"tr[data-span-id='{ids['charge']}']").first
        await expect(charge).to_contain_text("p95 20 ms")
        await expect(charge).to_contain_text("+80 ms")


async def test_a_big_trace_keeps_only_the_rows_in_view_in_the_page(
    gasoline: Running, tmp_path: Path
) -> None:
    trace = "0af7651916cd43dd8448eb211c80319c"
    spans = [span("1000000000000000", "GET /report", trace=trace)]
    for i in range(1, 2000):
        start = NOW_NS + i * 1_000_000
        spans.append(
            span(
                f"{0x2000000000000000 + i:016x}",
                f"SELECT part {i}",
                parent="1000000000000000",
                trace=trace,
                startTimeUnixNano=str(start),
                endTimeUnixNano=str(start + 500_000),
            )
        )
    async with (
        aiohttp.ClientSession() as http,
        http.post(gasoline.http + "/v1/traces", json=otlp_json(spans)) as resp,
    ):
        assert resp.status == 200
    await gasoline.settled()
    last = f"{0x2000000000000000 + 1999:016x}"
    async with opened(gasoline, tmp_path) as w:
        page = w.page
        await page.goto(f"{gasoline.api}/traces/{trace}")
        await expect(page.locator(".wf-row[data-span-id]").first).to_be_visible()
        assert await page.locator(".wf-row").count() < 100  # of 2,000
        await page.locator(".wf-scroll").focus()
        await page.keyboard.press("End")
        await expect(page.locator(f".wf-row.selected[data-span-id='{last}']")).to_be_visible()
        await expect(page.locator(".wf-detail h2")).to_contain_text("SELECT part 1999")
        assert await page.locator(".wf-row").count() < 100


async def test_with_a_token_the_page_signs_in_once_through_its_link(
    start_daemon: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GASOLINE_TOKEN", raising=False)
    token = "page-token-for-tests-0123"
    gasoline: Running = await start_daemon(f"service:\n  api:\n    auth: {{token: {token}}}\n")
    event = {"message": "seen after signing in", "level": "error", "source": "browser"}
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        http.post(gasoline.api + "/event", json=event) as resp,
    ):
        assert resp.status == 200
        event_id = (await resp.json())["event_id"]
    async with chromium(tmp_path / "profile") as context:
        page = await context.new_page()
        refused = await page.goto(gasoline.api + "/timeline")
        assert refused is not None and refused.status == 401
        wrong = await page.goto(gasoline.api + "/timeline?token=not-the-token-at-all")
        assert wrong is not None and wrong.status == 401
        await page.goto(gasoline.api + f"/timeline?level=error&token={token}")
        assert page.url == gasoline.api + "/timeline?level=error"  # the token left the address
        await expect(page.locator(f".tl-row[data-event-id='{event_id}']")).to_contain_text(
            "seen after signing in"
        )
        await expect(page.locator(".live-state")).to_have_text("live")  # the stream too
        [cookie] = await context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict", cookie
        assert await page.evaluate("document.cookie") == ""  # no script on any page reads it
