"""The browser extension end to end, in a real headless Chromium with the extension loaded:
a click in an app whose backend runs the OTel Python SDK becomes one trace, click ->
fetch (CLIENT) -> backend (SERVER) -> database, with the page's console, errors, actions,
WebSocket traffic and custom events linked to it; and the extension's queue survives a
daemon that is down and a service worker that Chrome stopped.

With ``GASOLINE_SCREENSHOTS`` set to a directory, the popup and the trace (as ``gasoline
trace`` prints it) are also saved there as PNGs for the README.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Page

from collector.model import Record, SpanKind
from collector.query import trace_document
from collector.render import render_trace
from collector.store import StoredSpan
from tests.browser import EXTENSION, chromium, needs_chromium
from tests.conftest import Running, wait_for
from tests.shop_app import OWN_TRACEPARENT, shop_app

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")
PASSWORD = "hunter2-must-never-leave"
ZERO_SPAN = bytes(8)


async def extension_page(context: BrowserContext) -> Page:
    """An extension page (the options page): it has chrome.storage and outlives any
    service worker, so the test reads and sets the extension's state through it."""
    worker = context.service_workers[0] if context.service_workers else None
    if worker is None:
        worker = await context.wait_for_event("serviceworker")
    extension_id = worker.url.split("/")[2]
    page = await context.new_page()
    await page.goto(f"chrome-extension://{extension_id}/options.html")
    return page


async def point_at(ext: Page, daemon: Running, **more: Any) -> None:
    """The extension learns the test daemon's (random) ports from its options."""
    options = {"daemonUrl": daemon.api, "otlpUrl": daemon.http, **more}
    await ext.evaluate("o => chrome.storage.local.set({options: o})", options)


async def queued(ext: Page) -> int:
    state = await ext.evaluate("async () => (await chrome.storage.local.get('queue')).queue")
    return int(state["items"]) if state else 0


def records_of(daemon: Running, trace_id: bytes) -> list[Record]:
    return daemon.daemon.store.records.by_trace(trace_id)


def by_type(records: list[Record], kind: str) -> list[Record]:
    return [r for r in records if r.attributes.get("type") == kind]


async def screenshot(page: Page, name: str, tmp_path: Path) -> None:
    """Always taken (so the code path is tested); copied out when GASOLINE_SCREENSHOTS is set."""
    path = tmp_path / name
    await page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    if target := os.environ.get("GASOLINE_SCREENSHOTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / name)


@needs_chromium
async def test_a_click_is_the_root_of_one_trace_down_to_the_database(
    gasoline: Running, tmp_path: Path
) -> None:
    store = gasoline.daemon.store
    async with (
        shop_app(gasoline.http) as shop,
        chromium(tmp_path / "profile", extension=EXTENSION) as context,
    ):
        ext = await extension_page(context)
        await point_at(ext, gasoline, capture={"inputValues": True}, actionWindowMs=10_000)
        page = await context.new_page()
        await page.goto(shop.url)
        await page.fill("#email", "ann@example.com")
        await page.fill("#password", PASSWORD)
        await page.click("#checkout")
        await page.wait_for_selector("#status:has-text('done 500')")
        await page.click("#third")
        await page.wait_for_selector("#status:has-text('third 200')")
        await page.click("#own")
        await page.wait_for_selector("#status:has-text('own 200')")
        await page.click("#xhr")
        await page.wait_for_selector("#status:has-text('xhr 200')")
        await page.evaluate("() => history.pushState({}, '', '/checkout/done')")

        # The backend got a valid traceparent (extracted by the OTel SDK's propagator).
        [sent] = shop.checkout_traceparents
        match = TRACEPARENT.match(sent or "")
        assert match is not None, sent
        trace_id, client_id = bytes.fromhex(match[1]), bytes.fromhex(match[2])
        # A third-party origin never gets one; a page's own is kept as it was.
        assert shop.third_traceparents == [None]
        # XMLHttpRequest is wrapped too.
        assert shop.echo_traceparents[0] == OWN_TRACEPARENT and len(shop.echo_traceparents) == 2
        xhr = TRACEPARENT.match(shop.echo_traceparents[1] or "")
        assert xhr is not None, shop.echo_traceparents

        await asyncio.to_thread(shop.provider.force_flush)

        def spans() -> dict[str, StoredSpan]:
            return {s.name: s for s in store.spans.trace(trace_id)}

        wanted = {'click [data-testid="checkout"]', "POST", "POST /api/checkout", "SELECT orders"}
        await wait_for(lambda: wanted <= set(spans()), timeout=20)
        tree = spans()
        click, fetch = tree['click [data-testid="checkout"]'], tree["POST"]
        server, db = tree["POST /api/checkout"], tree["SELECT orders"]
        assert click.parent_id == ZERO_SPAN and click.service == "browser"
        assert fetch.span_id == client_id and fetch.parent_id == click.span_id
        assert fetch.kind == SpanKind.CLIENT and fetch.service == "browser"
        assert server.parent_id == fetch.span_id and server.kind == SpanKind.SERVER
        assert db.parent_id == server.span_id and db.service == "shop" and db.status == 2
        attributes = fetch.detail().attributes
        assert attributes["http.request.method"] == "POST"
        assert attributes["http.response.status_code"] == 500
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["error.type"] == "500"
        assert attributes["gasoline.link"] in ("continuation", "time_window")
        assert "token=[REDACTED]&cart=7" in attributes["url.full"]
        assert "s3cr3t" not in json.dumps(attributes)

        # The page's events are stored and linked to the click's trace.
        kinds = {"action", "console", "error", "websocket", "custom", "network"}
        await wait_for(
            lambda: kinds <= {r.attributes.get("type") for r in records_of(gasoline, trace_id)},
            timeout=20,
        )
        linked = records_of(gasoline, trace_id)
        assert all(r.source == "browser" for r in linked)
        [action] = by_type(linked, "action")
        assert action.attributes["action"] == "click"
        assert action.attributes["selector"] == '[data-testid="checkout"]'
        assert action.attributes["text"] == "Checkout" and action.span_id == click.span_id
        [console] = by_type(linked, "console")
        assert console.level == "error" and console.message == 'checkout failed 500 {"cart": 7}'
        [uncaught] = by_type(linked, "error")
        assert "boom after checkout" in uncaught.message and "stack" in uncaught.attributes
        sockets = by_type(linked, "websocket")
        assert {r.attributes["event"] for r in sockets} >= {"open", "message"}
        out = next(r for r in sockets if r.attributes.get("direction") == "out")
        assert out.attributes["preview"] == "hello over ws"
        [custom] = by_type(linked, "custom")
        assert custom.message == "cart state" and custom.attributes["items"] == 2
        [network] = by_type(linked, "network")
        assert network.correlation_id == "req-checkout-1" and network.span_id == client_id

        await wait_for(lambda: len(store.spans.trace(bytes.fromhex(xhr[1]))) == 2, timeout=20)
        xhr_spans = store.spans.trace(bytes.fromhex(xhr[1]))
        assert {s.name for s in xhr_spans} == {"click #xhr", "GET"}
        # A SPA navigation opens a trace of its own; the page load reported its timings.
        await wait_for(
            lambda: any(
                s.name == "navigation /checkout/done" for s in store.spans.iter_newest_first()
            ),
            timeout=20,
        )
        [timings] = [
            r for r in store.records.iter_newest_first() if r.attributes.get("type") == "timings"
        ]
        assert timings.attributes["ttfb_ms"] >= 0 and timings.attributes["load_ms"] > 0

        # Field values were captured (the option is on), but never the password's.
        fills = [
            r for r in store.records.iter_newest_first() if r.attributes.get("action") == "fill"
        ]
        assert {r.attributes["selector"]: r.attributes.get("value") for r in fills} == {
            "#email": "ann@example.com",
            "#password": "[REDACTED]",
        }
        everything = [
            f"{r.message} {json.dumps(r.attributes)}" for r in store.records.iter_newest_first()
        ]
        everything += [json.dumps(s.detail().attributes) for s in store.spans.iter_newest_first()]
        assert everything and not [text for text in everything if PASSWORD in text]

        # The observe views answer from this browser data.
        await observe_views(gasoline, trace_id, shop.url)
        await pictures(context, ext, gasoline, trace_id, tmp_path)


async def observe_views(gasoline: Running, trace_id: bytes, page_url: str) -> None:
    tools = gasoline.daemon.tools
    hex_id = trace_id.hex()

    async def view(what: str, **f: Any) -> dict[str, Any]:
        return await tools.run("observe", {"what": what, "filter": f, "limit": 50})

    waterfall = (await view("network_waterfall", trace_id=hex_id))["requests"]
    [request] = waterfall
    assert request["method"] == "POST" and request["status"] == 500
    assert request["server"]["name"] == "POST /api/checkout"
    actions = (await view("actions"))["events"]
    assert {a["metadata"]["action"] for a in actions} >= {"click", "fill", "navigate"}
    sockets = (await view("websocket_events", trace_id=hex_id))["events"]
    assert len(sockets) >= 3 and all(s["source"] == "browser" for s in sockets)
    errors = (await view("errors", trace_id=hex_id))["events"]
    messages = " | ".join(str(e.get("message")) for e in errors)
    assert "boom after checkout" in messages and "checkout failed" in messages
    assert "connection to orders-db refused" in messages
    timeline = (await view("timeline", trace_id=hex_id))["events"]
    assert {e["source"] for e in timeline} >= {"browser", "otlp"} or len(timeline) >= 10
    causality = await tools.run("analyze", {"type": "causality", "trace_id": hex_id})
    cause = causality.get("root_cause") or {}
    assert "SELECT orders" in json.dumps(cause) or "orders-db" in json.dumps(cause)
    # The breakdown splits the click's time using the CLIENT span against its SERVER child.
    breakdown = causality["latency_breakdown"]
    assert breakdown["browser_ms"] >= 0 and breakdown["network_ms"] > 0
    assert breakdown["server_ms"] > 0 and breakdown["database_ms"] > 0
    chain = causality.get("chain") or []
    assert chain and chain[0].get("name") == 'click [data-testid="checkout"]'
    assert chain[0].get("service") == "browser"
    # The recorded actions replay as a Playwright script: open the page, click, expect 500.
    repro = await tools.run("generate", {"type": "reproduction", "trace_id": hex_id})
    assert repro["format"] == "playwright"
    script = repro["content"]
    assert f'page.goto("{page_url}/")' in script
    assert 'page.click("[data-testid=\\"checkout\\"]")' in script
    assert "toBe(500)" in script and "s3cr3t" not in script


async def pictures(
    context: BrowserContext, ext: Page, gasoline: Running, trace_id: bytes, tmp_path: Path
) -> None:
    """The popup (daemon reachable, counts) and the trace as ``gasoline trace`` prints it."""
    popup = await context.new_page()
    await popup.set_viewport_size({"width": 320, "height": 260})
    await popup.goto(ext.url.replace("options.html", "popup.html"))
    await popup.wait_for_selector("#reachable[data-state=up]")
    assert "spans" in (await popup.inner_text("#sent"))
    await screenshot(popup, "extension-popup.png", tmp_path)
    doc = trace_document(gasoline.daemon.store, trace_id)
    assert doc is not None
    text = render_trace(doc, width=110)
    shown = await context.new_page()
    await shown.set_viewport_size({"width": 980, "height": 200})
    await shown.set_content(
        "<body style='margin:0;background:#1e1e1e'><pre style='color:#ddd;font:13px monospace;"
        f"padding:12px;margin:0'>{html.escape(text)}</pre></body>"
    )
    await screenshot(shown, "extension-trace.png", tmp_path)


@needs_chromium
async def test_a_loopback_api_whose_cors_allows_traceparent_gets_it(
    gasoline: Running, tmp_path: Path
) -> None:
    """A frontend on one port calling its API on another (cross-origin): the extension asks
    once, with a preflighted HEAD of its own, and sends the header when the API's CORS
    allows it; a loopback server whose CORS does not is listed in the popup, never sent it."""
    async with (
        shop_app(gasoline.http) as shop,
        chromium(tmp_path / "profile", extension=EXTENSION) as context,
    ):
        ext = await extension_page(context)
        await point_at(ext, gasoline)
        page = await context.new_page()
        await page.goto(shop.url)
        for button in ("#api", "#third"):
            await page.click(button)
            await page.wait_for_selector(f"#status:has-text('{button[1:]} 200')")

        async def answers() -> int:
            probes = await ext.evaluate(
                "async () => (await chrome.storage.local.get('probes')).probes"
            )
            return len(probes or {})

        await wait_for_async(answers, 2)
        await page.click("#api")
        await wait_for(lambda: len(shop.api_traceparents) == 2)
        first, second = shop.api_traceparents
        assert first is None  # sent before the API's answer was known
        match = TRACEPARENT.match(second or "")
        assert match is not None, second
        trace_id = bytes.fromhex(match[1])
        await wait_for(
            lambda: (
                {s.name for s in gasoline.daemon.store.spans.trace(trace_id)}
                >= {"click #api", "GET"}
            ),
            timeout=20,
        )
        assert shop.third_traceparents == [None]
        popup = await context.new_page()
        await popup.goto(ext.url.replace("options.html", "popup.html"))
        await popup.wait_for_selector("#refusing:not([hidden])")
        refusing = await popup.inner_text("#refusing")
        assert shop.third_url in refusing and shop.api_url not in refusing


@needs_chromium
async def test_queued_data_survives_a_daemon_outage_and_a_worker_restart(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    first: Running = await start_daemon()
    ports = first.daemon.ports
    same_ports = f"""
        service:
          api:
            endpoint: 127.0.0.1:{ports["api"]}
        receivers:
          otlp:
            protocols:
              http:
                endpoint: 127.0.0.1:{ports["http"]}
        """
    async with (
        shop_app(first.http) as shop,
        chromium(tmp_path / "profile", extension=EXTENSION) as context,
    ):
        ext = await extension_page(context)
        await point_at(ext, first)
        page = await context.new_page()
        await page.goto(shop.url)
        await wait_for(lambda: bool(_messages(first, "navigate ")), timeout=20)

        # Down: the worker keeps what the page says, and delivers it when the daemon is back.
        await first.daemon.stop()
        await page.evaluate("() => { for (let i = 0; i < 20; i++) console.warn(`down a ${i}`); }")
        await wait_for_async(lambda: queued(ext), 20)
        second: Running = await start_daemon(same_ports)
        await wait_for(lambda: len(_messages(second, "down a ")) == 20, timeout=30)
        assert _messages(second, "down a ") == [f"down a {i}" for i in range(20)]

        # Down, and Chrome stops the worker: what it queued is in chrome.storage, not lost.
        await second.daemon.stop()
        await page.evaluate("() => { for (let i = 0; i < 20; i++) console.warn(`down b ${i}`); }")
        await wait_for_async(lambda: queued(ext), 20)
        cdp = await context.new_cdp_session(page)
        await cdp.send("ServiceWorker.enable")
        await cdp.send("ServiceWorker.stopAllWorkers")
        await wait_for_async(lambda: _worker_count(cdp, want_zero=True), 1)
        third: Running = await start_daemon(same_ports)
        await page.evaluate("() => console.warn('wakes the worker')")
        await wait_for(lambda: len(_messages(third, "down b ")) == 20, timeout=30)
        assert _messages(third, "down b ") == [f"down b {i}" for i in range(20)]
        await wait_for(lambda: bool(_messages(third, "wakes the worker")), timeout=30)
        await wait_for_async(lambda: _zero(queued(ext)), 1)


async def _zero(count: Any) -> int:
    return 1 if await count == 0 else 0


async def _worker_count(cdp: Any, *, want_zero: bool) -> int:
    targets = (await cdp.send("Target.getTargets"))["targetInfos"]
    workers = [t for t in targets if t["type"] == "service_worker"]
    return int(not workers) if want_zero else len(workers)


async def wait_for_async(probe: Callable[[], Any], at_least: int, *, timeout: float = 20) -> None:
    """Polls an async probe (a count read from the browser) until it reaches ``at_least``."""
    async with asyncio.timeout(timeout):
        while await probe() < at_least:
            await asyncio.sleep(0.05)


def _messages(daemon: Running, prefix: str) -> list[str]:
    """Browser messages starting with ``prefix``, oldest first (as the store received them)."""
    found = [
        r
        for r in daemon.daemon.store.records.iter_newest_first()
        if r.source == "browser" and r.message.startswith(prefix)
    ]
    return [r.message for r in sorted(found, key=lambda r: r.id)]


@needs_chromium
async def test_beyond_its_bound_the_queue_drops_the_oldest_and_says_so(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    first: Running = await start_daemon()
    ports = first.daemon.ports
    same_ports = f"""
        service:
          api:
            endpoint: 127.0.0.1:{ports["api"]}
        receivers:
          otlp:
            protocols:
              http:
                endpoint: 127.0.0.1:{ports["http"]}
        """
    async with (
        shop_app(first.http) as shop,
        chromium(tmp_path / "profile", extension=EXTENSION) as context,
    ):
        ext = await extension_page(context)
        await point_at(ext, first, queueMaxItems=50)
        page = await context.new_page()
        await page.goto(shop.url)
        await wait_for(lambda: bool(_messages(first, "navigate ")), timeout=20)
        await first.daemon.stop()
        # One batch a message: 300 lines in separate tasks, so the page hands them over in
        # several batches and the queue's bound (50 items) is crossed many times.
        await page.evaluate(
            """async () => { for (let i = 0; i < 300; i++) {
                console.warn(`flood ${i}`);
                if (i % 20 === 19) await new Promise((r) => setTimeout(r, 60));
            } }"""
        )

        async def dropped() -> int:
            state = await ext.evaluate(
                "async () => (await chrome.storage.local.get('queue')).queue"
            )
            return int(state["dropped"])

        await wait_for_async(dropped, 250)
        assert await queued(ext) <= 50
        second: Running = await start_daemon(same_ports)
        await wait_for(
            lambda: bool(_messages(second, "the Gasoline extension dropped")), timeout=30
        )
        kept = _messages(second, "flood ")
        assert kept and kept == [f"flood {i}" for i in range(300 - len(kept), 300)], kept
        [report] = [
            r
            for r in second.daemon.store.records.iter_newest_first()
            if r.attributes.get("type") == "extension_drops"
        ]
        # Every flood line not kept was dropped (the page-load span may have been too).
        assert report.level == "warn" and report.attributes["dropped"] >= 300 - len(kept)
        assert report.attributes["dropped_total"] == await dropped()


@needs_chromium
async def test_options_page_and_pause_work_as_a_user_uses_them(
    gasoline: Running, tmp_path: Path
) -> None:
    """The daemon's URLs set in the options form; Pause in the popup stops capture (what a
    paused page says never reaches the daemon), Resume starts it again."""
    async with (
        shop_app(gasoline.http) as shop,
        chromium(tmp_path / "profile", extension=EXTENSION) as context,
    ):
        options = await extension_page(context)
        await options.fill("input[name=daemonUrl]", gasoline.api)
        await options.fill("input[name=otlpUrl]", gasoline.http)
        await options.fill("input[name=serviceName]", "storefront")
        await options.uncheck("input[name=websocket]")
        await options.click("button[type=submit]")
        await options.wait_for_selector("#saved:has-text('Saved')")
        stored = await options.evaluate(
            "async () => (await chrome.storage.local.get('options')).options"
        )
        assert stored["daemonUrl"] == gasoline.api and stored["capture"]["websocket"] is False
        assert stored["capture"]["console"] is True

        page = await context.new_page()
        await page.goto(shop.url)
        await page.click("#checkout")
        await page.wait_for_selector("#status:has-text('done 500')")
        await wait_for(lambda: bool(_messages(gasoline, "checkout failed")), timeout=20)

        def clicks() -> set[str]:
            spans = gasoline.daemon.store.spans.iter_newest_first()
            return {s.service for s in spans if s.name.startswith("click")}

        await wait_for(lambda: bool(clicks()), timeout=20)
        assert clicks() == {"storefront"}
        assert not [
            r
            for r in gasoline.daemon.store.records.iter_newest_first()
            if r.attributes.get("type") == "websocket"
        ]

        popup = await context.new_page()
        await popup.goto(options.url.replace("options.html", "popup.html"))
        await popup.click("#pause:has-text('Pause')")
        await popup.wait_for_selector("#pause:has-text('Resume')")
        await page.reload()
        await page.evaluate("() => console.warn('said while paused')")
        await popup.click("#pause:has-text('Resume')")
        await popup.wait_for_selector("#pause:has-text('Pause')")
        # Resumed pages pick the change up from chrome.storage; say something until it lands.
        async with asyncio.timeout(20):
            n = 0
            while not _messages(gasoline, "said after resuming"):
                await page.evaluate("(n) => console.warn(`said after resuming ${n}`)", n)
                n += 1
                await asyncio.sleep(0.1)
        assert not _messages(gasoline, "said while paused")


@needs_chromium
async def test_a_daemon_that_requires_a_token_gets_it_from_the_options(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    token = "extension-test-token-0123456789"
    daemon: Running = await start_daemon(
        f"""
        service:
          api:
            auth:
              token: {token}
        """
    )
    async with (
        shop_app(daemon.http) as shop,
        chromium(tmp_path / "profile", extension=EXTENSION) as context,
    ):
        ext = await extension_page(context)
        await point_at(ext, daemon)
        popup = await context.new_page()
        await popup.goto(ext.url.replace("options.html", "popup.html"))
        await popup.wait_for_selector("#error:has-text('requires a token')")
        await point_at(ext, daemon, token=token)
        page = await context.new_page()
        await page.goto(shop.url)
        await page.click("#own")
        await page.wait_for_selector("#status:has-text('own 200')")
        await wait_for(lambda: bool(_messages(daemon, "click ")), timeout=20)
        await popup.reload()
        await popup.wait_for_selector("#reachable[data-state=up]")
