"""TracePulse on the web page, in a real headless Chromium: reports made from the real
webhook and spans sent by the real OTel SDK show on ``/reports`` and ``/reports/{id}``
(ranked hypotheses, evidence leading to traces, the system map with its flagged edges),
rejecting the top hypothesis in the feedback chat posts to ``/chat/feedback``, shows in
the conversation and ranks the next report of the same signature differently; hostile
names stay text; ``/services`` draws the declared map over the observed one. A page on
another origin still cannot post feedback.

With ``GASOLINE_SCREENSHOTS=DIR`` set, the report page's picture is saved there too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from playwright.async_api import Page, expect

from collector.edge import Refusal
from tests.browser import chromium, needs_chromium
from tests.conftest import Running, wait_for
from tests.test_pulse import (
    Chain,
    NowScenario,
    SlackPeer,
    reports_of,
    trigger_body,
    webhook,
)
from tests.test_web_page import opened
from tests.web_scenarios import XSS

pytestmark = needs_chromium

# The brief's map, one declared dependency never called (ServiceB -> Ledger); the spans
# add one call never declared (ServiceB -> Redis).
MAP = """
pulse:
  settle: 100ms
  rate_limit: 1ms
  services:
    EdgeDevice: {depends_on: [SessionManager], file: src/edge.js}
    SessionManager: {depends_on: [ServiceA], file: src/session.js}
    ServiceA: {depends_on: [ServiceB], file: src/service_a.py}
    ServiceB: {depends_on: [Ledger], file: src/service_b.py}
    Ledger: {file: src/ledger.py}
"""


async def shoot(page: Page, tmp_path: Path, name: str) -> None:
    """The whole page's picture; copied to ``GASOLINE_SCREENSHOTS`` when set."""
    path = tmp_path / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    if target := os.environ.get("GASOLINE_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


async def db_down(running: Running, cid: str) -> dict[str, Any]:
    """ServiceB fails below SessionManager; the webhook reports it; the newest report."""
    before = len(running.daemon.pulse.book.reports)
    sc = NowScenario()
    Chain(cid, fail={"ServiceB": "db connection pool exhausted"}, extra_below_b="Redis").build(sc)
    await sc.send(running)
    status, answer = await webhook(running, trigger_body(cid, "DB"))
    assert status == 200, answer
    [report, *_] = await reports_of(running, before + 1)
    return report


async def test_report_page_and_feedback_chat_rerank_the_next_report(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    running: Running = await start_daemon(MAP)
    first = await db_down(running, "cid-web-1")
    assert first["hypotheses"][0]["service"] == "ServiceB"
    async with opened(running, tmp_path) as w:
        page = w.page
        await page.goto(running.api + "/reports")
        await expect(page.locator("nav a.active")).to_have_text("Reports")
        row = page.locator(f"tr[data-report-id='{first['id']}']")
        await expect(row).to_contain_text("SESSION_DROP")
        await expect(row).to_contain_text("SessionManager")
        await expect(row).to_contain_text("high")
        await expect(row.locator("td.top-hypothesis")).to_contain_text("ServiceB")
        await expect(row.locator(".confidence")).to_have_text(
            f"{round(first['hypotheses'][0]['confidence'] * 100)}%"
        )
        await row.locator("a").click()
        await page.wait_for_url(f"**/reports/{first['id']}")

        ranked = page.locator("ol.hypotheses li[data-hypothesis]")
        await expect(ranked).to_have_count(len(first["hypotheses"]))
        keys = [await h.get_attribute("data-hypothesis") for h in await ranked.all()]
        assert keys == [h["key"] for h in first["hypotheses"]]
        top = ranked.first
        # Its evidence leads to the failing span in its trace's waterfall.
        link = top.locator("[data-evidence='errors'] a[data-trace-link]").first
        href = await link.get_attribute("href")
        assert href is not None and href.startswith(f"/traces/{first['trace_ids'][0]}#span-")
        cause = first["chain"][-1]
        chained = page.locator(f"ol.chain li[data-span-id='{cause['span_id']}'] a")
        await expect(chained).to_have_attribute(
            "href", f"/traces/{first['trace_ids'][0]}#span-{cause['span_id']}"
        )
        # The merged system map, flagged edges drawn differently and listed.
        system = page.locator("svg[aria-label='system map']")
        await expect(system.locator("g[data-edge='ServiceB→Ledger']")).to_have_attribute(
            "data-edge-state", "declared_unseen"
        )
        await expect(system.locator("g[data-edge='ServiceB→Redis']")).to_have_attribute(
            "data-edge-state", "seen_undeclared"
        )
        await expect(system.locator("g[data-edge='ServiceA→ServiceB']")).to_have_attribute(
            "data-edge-state", "both"
        )
        unseen = system.locator("g[data-edge='ServiceB→Ledger'] path")
        undeclared = system.locator("g[data-edge='ServiceB→Redis'] path")
        dash = "getComputedStyle(el).strokeDasharray"
        assert await unseen.evaluate(f"el => {dash}") != await undeclared.evaluate(f"el => {dash}")
        await expect(page.locator(".map-legend li")).to_have_count(3)

        # Reject the top hypothesis, with a note that tries to inject HTML.
        await page.fill("textarea[name='note']", f"B was in maintenance {XSS}")
        async with page.expect_response("**/chat/feedback") as posted:
            await top.locator("button[data-verdict='reject']").click()
        assert (await posted.value).status == 200
        said = page.locator(".conversation li[data-feedback]")
        await expect(said).to_have_count(1)
        await expect(said).to_contain_text("Rejected service:ServiceB")
        assert await said.locator(".note-text").text_content() == f"B was in maintenance {XSS}"
        await w.no_script_ran()
        await shoot(page, tmp_path, "web-report")
        kept = running.daemon.pulse.book.get(first["id"])
        assert kept is not None and kept["feedback"][0]["verdict"] == "reject"

        # The next report of the same signature ranks differently, and says why.
        second = await db_down(running, "cid-web-2")
        assert second["id"] != first["id"]
        assert second["hypotheses"][0]["service"] != "ServiceB", second["markdown"]
        await page.goto(running.api + "/reports")
        await expect(page.locator("tr[data-report-id]")).to_have_count(2)
        ids = [
            await r.get_attribute("data-report-id")
            for r in await page.locator("tr[data-report-id]").all()
        ]
        assert ids == [second["id"], first["id"]]
        await shoot(page, tmp_path, "web-reports")
        await page.goto(f"{running.api}/reports/{second['id']}")
        rejected = page.locator("li[data-hypothesis='service:ServiceB']")
        await expect(rejected.locator("[data-votes]")).to_have_text("1 rejected")
        assert await rejected.get_attribute("data-rank") != "1"
        await expect(page.locator(".applied")).to_contain_text("service:ServiceB: 1 rejected")
        # A note alone joins the conversation too.
        await page.fill("textarea[name='note']", "looking at A's retries")
        await page.click("button[data-send-note]")
        await expect(page.locator(".conversation li[data-feedback]")).to_contain_text(
            "looking at A's retries"
        )
        await w.no_script_ran()
        # Evidence leads to the span, selected in its trace's waterfall.
        await page.click("li[data-hypothesis='service:ServiceB'] [data-evidence='errors'] a")
        await page.wait_for_url("**/traces/**")
        span_id = page.url.rpartition("#span-")[2]
        await expect(page.locator(f".wf-row.selected[data-span-id='{span_id}']")).to_have_count(1)


def emit_log_trigger(running: Running, event_type: str, service: str) -> None:
    """A DebugQueue event as an OTel log record (the real SDK over OTLP/gRPC): its fields
    are not checked like the webhook's, so any text can come this way."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("debugqueue").emit(
        body=event_type,
        severity_number=SeverityNumber.ERROR,
        attributes={
            "eventType": event_type,
            "correlationId": "cid-hostile-log",
            "details.service": service,
            "details.errorCode": f"E1 {XSS}",
        },
    )
    otlp = OTLPLogExporter(endpoint=running.grpc, insecure=True)
    otlp.export(list(exporter.get_finished_logs()))
    otlp.shutdown()


async def test_hostile_event_type_and_service_render_as_text(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    async with SlackPeer() as slack:
        running: Running = await start_daemon(MAP + f'  slack: {{webhook_url: "{slack.url}"}}\n')
        body = trigger_body("cid-hostile", code="E2", service=f"svc {XSS}")
        status, answer = await webhook(running, body)
        assert status == 200, answer
        await asyncio.to_thread(emit_log_trigger, running, f"DROP {XSS}", f"api {XSS}")
        reports = await reports_of(running, 2)
        await wait_for(lambda: len(slack.messages) == 2)
        book = running.daemon.pulse.book
        await wait_for(
            lambda: all(r["delivery"]["slack"]["status"] == "sent" for r in book.newest(2))
        )
    async with opened(running, tmp_path) as w:
        page = w.page
        await page.goto(running.api + "/reports")
        await expect(page.locator("tr[data-report-id]")).to_have_count(2)
        await expect(page.locator("tr[data-report-id] [data-channel='slack']")).to_have_text(
            ["slack: sent", "slack: sent"]
        )
        services = await page.locator("tr[data-report-id] td.service").all_text_contents()
        assert sorted(services) == sorted([f"svc {XSS}", f"api {XSS}"])
        events = await page.locator("tr[data-report-id] .event-type").all_text_contents()
        assert f"DROP {XSS}" in events
        await w.no_script_ran()
        for report in reports:
            await page.goto(f"{running.api}/reports/{report['id']}")
            head = page.locator(".report-head h1")
            await expect(head).to_contain_text(str(report["incident"]["service"]))
            assert await head.locator(".service").text_content() == report["incident"]["service"]
            await expect(page.locator("svg[aria-label='system map']")).to_be_visible()
            await w.no_script_ran()


async def test_services_page_draws_the_declared_map_over_the_observed_one(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    running: Running = await start_daemon(MAP)
    sc = NowScenario()
    Chain("cid-map", extra_below_b="Redis").build(sc)
    await sc.send(running)
    await running.settled()
    async with opened(running, tmp_path) as w:
        page = w.page
        await page.goto(running.api + "/services")
        graph = page.locator("svg[aria-label='service map']")
        await expect(graph.locator("g[data-edge='ServiceA→ServiceB']")).to_have_attribute(
            "data-edge-state", "both"
        )
        await expect(graph.locator("g[data-edge='ServiceA→ServiceB']")).to_contain_text("% err")
        await expect(graph.locator("g[data-edge='ServiceB→Redis']")).to_have_attribute(
            "data-edge-state", "seen_undeclared"
        )
        await expect(graph.locator("g[data-edge='ServiceB→Ledger']")).to_have_attribute(
            "data-edge-state", "declared_unseen"
        )
        await expect(graph.locator(".node.ghost[data-service='Ledger']")).to_have_count(1)
        await expect(page.locator(".map-legend li")).to_have_count(3)
        await expect(page.locator("li[data-flagged='declared_unseen']")).to_contain_text(
            "ServiceB → Ledger"
        )
        await shoot(page, tmp_path, "web-services-system-map")


async def test_a_page_on_another_origin_cannot_post_feedback(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    running: Running = await start_daemon(MAP)
    report = await db_down(running, "cid-foreign")
    # A page on another loopback port (on the CORS allowlist, so its preflight passes):
    # the daemon's feedback handler still refuses it, and nothing is stored.
    script = f"""
      fetch("{running.api}/chat/feedback", {{method: "POST",
        headers: {{"Content-Type": "application/json"}},
        body: JSON.stringify({{report_id: "{report["id"]}", note: "from elsewhere"}})}})
        .then((r) => {{ document.title = "status " + r.status; }},
              (e) => {{ document.title = "failed " + e; }});
    """

    async def foreign_page(request: web.Request) -> web.Response:
        return web.Response(
            text=f"<!doctype html><title>x</title><script>{script}</script>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", foreign_page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        port = runner.addresses[0][1]
        async with chromium(tmp_path / "profile") as context:
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            await expect(page).to_have_title("status 403")
    finally:
        await runner.cleanup()
    await wait_for(lambda: running.daemon.edge.refused[Refusal.BROWSER_TOOL] == 1)
    kept = running.daemon.pulse.book.get(report["id"])
    assert kept is not None and kept["feedback"] == []
    # Without a preflight (a text/plain "simple" POST) or from a foreign site: refused too.
    for origin, content_type, code in (
        ("https://evil.example", "application/json", 403),
        (f"http://127.0.0.1:{port}", "text/plain", 415),
    ):
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                running.api + "/chat/feedback",
                data=f'{{"report_id": "{report["id"]}", "note": "x"}}',
                headers={"Origin": origin, "Content-Type": content_type},
            ) as resp,
        ):
            assert resp.status == code, await resp.text()
    assert running.daemon.pulse.book.get(report["id"])["feedback"] == []  # type: ignore[index]


async def test_the_own_page_may_post_feedback_whatever_the_cors_allowlist(
    start_daemon: Callable[..., Any],
) -> None:
    running: Running = await start_daemon(
        MAP + "service:\n  api:\n    cors: {allowed_origins: ['http://localhost:3000']}\n"
    )
    report = await db_down(running, "cid-own")
    host = running.api.removeprefix("http://")
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            running.api + "/chat/feedback",
            json={"report_id": report["id"], "note": "from the report view"},
            headers={"Origin": f"http://{host}"},
        ) as resp,
    ):
        assert resp.status == 200, await resp.text()
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            running.api + "/chat/feedback",
            json={"report_id": report["id"], "note": "from another port"},
            headers={"Origin": "http://127.0.0.1:1"},
        ) as resp,
    ):
        assert resp.status == 403
    kept = running.daemon.pulse.book.get(report["id"])
    assert kept is not None and [f["note"] for f in kept["feedback"]] == ["from the report view"]
