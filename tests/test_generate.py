"""Generated artifacts from real traces: reproductions that run, tests that fail on the
bug and pass on the fix, PR summaries and timelines with the right facts."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.trace import SpanKind

from collector.generate import FORMATS, GENERATORS, GenerateError, generate
from collector.query import trace_tree
from collector.trace_tree import TraceTree
from tests.conftest import Running
from tests.scenarios import MS, T0, Scenario, db, http_client, http_server

CLIENT, SERVER = SpanKind.CLIENT, SpanKind.SERVER
SHOP = "http://shop.local:8000"


def tree_of(gasoline: Running, trace_id: str) -> TraceTree:
    tree = trace_tree(gasoline.daemon.store, bytes.fromhex(trace_id))
    assert tree is not None
    return tree


async def failing_order(gasoline: Running, *, api_skew_ms: float = 0.0) -> TraceTree:
    """Browser POST /api/orders -> api 500 -> INSERT orders times out (with an error log)."""
    s = Scenario()
    s.skew_ms["api"] = api_skew_ms
    fetch = s.span(
        "browser",
        "fetch POST /api/orders",
        0,
        130,
        kind=CLIENT,
        attrs={
            **http_client("POST", f"{SHOP}/api/orders?src=cart", 500),
            "http.request.header.content-type": ["application/json"],
            "http.request.header.authorization": ["Bearer s3cr3t-token"],
            "http.request.body": '{"sku": "A1", "qty": 2}',
        },
        error="",
    )
    server = s.span(
        "api",
        "POST /api/orders",
        10,
        120,
        parent=fetch,
        kind=SERVER,
        attrs=http_server("POST", "/api/orders", 500),
        error="",
    )
    s.span("api", "SELECT inventory", 12, 20, parent=server, kind=CLIENT, attrs=db("SELECT 1"))
    insert = s.span(
        "api",
        "INSERT orders",
        20,
        115,
        parent=server,
        kind=CLIENT,
        attrs=db("INSERT INTO orders ..."),
        error="canceling statement due to statement timeout",
        exception=TimeoutError("canceling statement due to statement timeout"),
    )
    s.log("api", insert, "orders insert failed: statement timeout")
    return tree_of(gasoline, await s.send(gasoline))


async def post_events(gasoline: Running, events: list[dict[str, Any]]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gasoline.api}/events", json={"events": events}) as resp,
    ):
        assert resp.status == 200, await resp.text()
    await gasoline.settled()


async def with_browser_actions(gasoline: Running, tree: TraceTree) -> TraceTree:
    trace = tree.trace_id.hex()
    t0_ms = T0 // MS

    def action(at_ms: int, **metadata: Any) -> dict[str, Any]:
        return {
            "timestamp": t0_ms + at_ms,
            "source": "browser",
            "message": f"{metadata['action']}",
            "trace_id": trace,
            "metadata": metadata,
        }

    await post_events(
        gasoline,
        [  # sent out of order on purpose: the generator orders by time
            action(-10, action="click", selector="#pay"),
            action(-900, action="navigate", url=f"{SHOP}/cart"),
            action(-600, action="input", selector="#sku", value="A1"),
            action(-400, action="input", selector="#card", value="[REDACTED]"),
        ],
    )
    return tree_of(gasoline, trace)


@asynccontextmanager
async def serving(status: int) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A server on 127.0.0.1 answering every request with ``status``; records what it saw."""
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": await request.text(),
            }
        )
        return web.Response(status=status, text=f"answered {status}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}", seen
    finally:
        await runner.cleanup()


async def run(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A subprocess that does not block the loop serving its requests."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


# -- reproduction -------------------------------------------------------------------


async def test_curl_reproduction_is_valid_bash_and_sends_the_failing_request(
    gasoline: Running, tmp_path: Path
) -> None:
    tree = await failing_order(gasoline)
    out = generate("reproduction", tree)
    assert (out["type"], out["format"]) == ("reproduction", "curl")
    assert out["filename"] == f"repro_{tree.trace_id.hex()[:8]}.sh"
    script = out["content"]
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert f"-X POST '{SHOP}/api/orders?src=cart'" in script
    assert "-H 'content-type: application/json'" in script
    assert """--data-raw '{"sku": "A1", "qty": 2}'""" in script
    assert "%{http_code}" in script
    assert tree.trace_id.hex() in script and "traceparent" not in script
    # the daemon redacted the token: neither it nor the marker is sent as a value
    assert "s3cr3t" not in script and "[REDACTED]" not in script
    assert "${GASOLINE_AUTHORIZATION:-REPLACE_ME}" in script
    assert any("authorization" in n and "GASOLINE_AUTHORIZATION" in n for n in out["notes"])
    path = tmp_path / out["filename"]
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0

    async with serving(500) as (base, seen):
        local = generate("reproduction", tree, base_url=base)["content"]
        path.write_text(local)
        code, output = await run(
            "bash", str(path), cwd=tmp_path, env={"GASOLINE_AUTHORIZATION": "Bearer local"}
        )
    assert code == 0, output
    assert "POST /api/orders?src=cart -> HTTP 500" in output
    [request] = seen
    assert (request["method"], request["path"]) == ("POST", "/api/orders?src=cart")
    assert request["body"] == '{"sku": "A1", "qty": 2}'
    assert request["headers"]["authorization"] == "Bearer local"


async def test_python_reproduction_compiles_and_performs_the_request(
    gasoline: Running, tmp_path: Path
) -> None:
    tree = await failing_order(gasoline)
    async with serving(500) as (base, seen):
        out = generate("reproduction", tree, format="python", base_url=base)
        assert out["format"] == "python" and out["filename"].endswith(".py")
        script = out["content"]
        compile(script, out["filename"], "exec")
        assert "import urllib.request" in script and "import requests" not in script
        assert f"'{base}/api/orders?src=cart'" in script and SHOP not in script
        assert "os.environ.get('GASOLINE_AUTHORIZATION', 'REPLACE_ME')" in script
        path = tmp_path / out["filename"]
        path.write_text(script)
        code, output = await run(sys.executable, str(path), cwd=tmp_path)
    assert code == 0, output
    assert "HTTP 500 (observed in the trace: 500)" in output
    [request] = seen
    assert (request["method"], request["path"]) == ("POST", "/api/orders?src=cart")
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["authorization"] == "REPLACE_ME"
    assert request["body"] == '{"sku": "A1", "qty": 2}'


async def test_playwright_reproduction_replays_actions_in_order(gasoline: Running) -> None:
    tree = await with_browser_actions(gasoline, await failing_order(gasoline))
    out = generate("reproduction", tree)
    assert out["format"] == "playwright" and out["filename"].endswith(".spec.js")
    js = out["content"]
    assert js.startswith("import { test, expect } from '@playwright/test';")
    steps = [
        f'await page.goto("{SHOP}/cart");',
        'await page.fill("#sku", "A1");',
        'await page.fill("#card", (process.env.GASOLINE_VALUE_CARD ?? "REPLACE_ME"));',
        'response.url().includes("/api/orders?src=cart")',
        'await page.click("#pay");',
        "const response1 = await responsePromise1;",
        "expect(response1.status()).toBe(500);",
    ]
    positions = [js.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "[REDACTED]" not in js
    assert any("#card" in n for n in out["notes"])
    # the same trace as curl: the requests only, and a note that actions are left out
    curl = generate("reproduction", tree, format="curl")
    assert "-X POST" in curl["content"] and "page.click" not in curl["content"]
    assert any("playwright" in n for n in curl["notes"])
    rebased = generate("reproduction", tree, base_url="http://127.0.0.1:3000")["content"]
    assert 'page.goto("http://127.0.0.1:3000/cart")' in rebased


async def test_reproduction_of_a_backend_trace_rebuilds_the_url_from_server_attributes(
    gasoline: Running,
) -> None:
    s = Scenario()
    root = s.span(
        "gateway",
        "GET /profile/{id}",
        0,
        40,
        kind=SERVER,
        attrs={
            **http_server("GET", "/profile/{id}", 502),
            "url.scheme": "https",
            "server.address": "gw.internal",
            "server.port": 8443,
            "url.path": "/profile/7",
            "url.query": "full=1",
        },
        error="",
    )
    s.span(
        "gateway",
        "GET users",
        2,
        38,
        parent=root,
        kind=CLIENT,
        attrs=http_client("GET", "http://users/u/7", 502),
        error="",
    )
    tree = tree_of(gasoline, await s.send(gasoline))
    out = generate("reproduction", tree)
    script = out["content"]
    # the outermost request only: the gateway's own call to users is not client-visible
    assert "-X GET 'https://gw.internal:8443/profile/7?full=1'" in script
    assert "http://users/u/7" not in script
    assert "observed HTTP 502" in script
    test = generate("test", tree)["content"]
    assert "def test_get_profile_id() -> None:" in test and "assert status < 500" in test


# -- test ---------------------------------------------------------------------------


async def test_pytest_test_fails_on_the_bug_and_passes_on_the_fix(
    gasoline: Running, tmp_path: Path
) -> None:
    tree = await failing_order(gasoline)
    path = tmp_path / "test_repro.py"
    outcomes = {}
    for status in (500, 200):
        async with serving(status) as (base, seen):
            out = generate("test", tree, base_url=base)
            assert (out["format"], out["filename"]) == (
                "pytest",
                f"test_trace_{tree.trace_id.hex()[:8]}.py",
            )
            compile(out["content"], out["filename"], "exec")
            path.write_text(out["content"])
            outcomes[status] = await run(
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path),
                cwd=tmp_path,
            )  # fmt: skip
            assert [r["path"] for r in seen] == ["/api/orders?src=cart"]
    content = out["content"]
    assert "def test_post_api_orders() -> None:" in content
    assert "assert status < 500" in content
    assert "Root cause: api INSERT orders: TimeoutError: canceling statement" in content
    code, output = outcomes[500]
    assert code == 1 and "1 failed" in output and "returned HTTP 500" in output, output
    code, output = outcomes[200]
    assert code == 0 and "1 passed" in output, output


async def test_playwright_test_asserts_the_fix(gasoline: Running) -> None:
    tree = await failing_order(gasoline)
    out = generate("test", tree, format="playwright")
    js = out["content"]
    assert out["filename"].endswith(".spec.js")
    assert 'test("POST /api/orders succeeds", async ({ request }) => {' in js
    assert f'request.fetch("{SHOP}/api/orders?src=cart", {{ method: "POST"' in js
    assert "expect(response.status()).toBeLessThan(500);" in js
    assert "// Root cause (Gasoline): api INSERT orders" in js
    tree = await with_browser_actions(gasoline, tree)
    js = generate("test", tree, format="playwright")["content"]
    assert js.index('page.click("#pay")') < js.index("toBeLessThan(500)")


# -- pr_summary ---------------------------------------------------------------------


async def test_pr_summary_has_cause_chain_and_breakdown(gasoline: Running) -> None:
    tree = await failing_order(gasoline)
    out = generate("pr_summary", tree)
    md = out["content"]
    assert (out["format"], out["filename"]) == (
        "markdown",
        f"pr_summary_{tree.trace_id.hex()[:8]}.md",
    )
    title = md.splitlines()[0]
    assert title.startswith("# Fix POST /api/orders returning HTTP 500: api INSERT orders")
    what = md.split("## What failed")[1].split("##")[0]
    assert f"`POST {SHOP}/api/orders?src=cart` returned **HTTP 500**" in what
    cause = md.split("## Root cause")[1].split("## Chain")[0]
    assert "- Service: `api`" in cause and "- Span: `INSERT orders` (CLIENT)" in cause
    assert "TimeoutError: canceling statement due to statement timeout" in cause
    assert "Exception `TimeoutError`" in cause
    assert "Log line (error): `orders insert failed: statement timeout`" in cause
    chain = md.split("## Chain")[1].split("##")[0].strip().splitlines()
    assert [line.split("`")[1] for line in chain] == [
        "browser fetch POST /api/orders",
        "api POST /api/orders",
        "api INSERT orders",
    ]
    assert [line[:3] for line in chain] == ["1. ", "2. ", "3. "]
    assert "130.0 ms, HTTP 500, propagated" in chain[0]
    assert "95.0 ms, root cause" in chain[2]
    table = md.split("## Latency breakdown")[1].split("##")[0].strip().splitlines()
    assert table[0] == "| browser | network | server | database | external | total |"
    assert table[2] == "| 0.0 ms | 20.0 ms | 7.0 ms | 103.0 ms | 0.0 ms | 130.0 ms |"
    how = md.split("## How to reproduce")[1]
    assert f"repro_{tree.trace_id.hex()[:8]}.sh" in how
    assert f"`POST {SHOP}/api/orders?src=cart` — observed HTTP 500" in how
    assert f"Trace id: `{tree.trace_id.hex()}`" in md


# -- timeline_report ----------------------------------------------------------------


async def test_timeline_orders_a_skewed_server_after_the_fetch(gasoline: Running) -> None:
    tree = await with_browser_actions(gasoline, await failing_order(gasoline, api_skew_ms=-2000))
    out = generate("timeline_report", tree)
    md = out["content"]
    body = md.split("```text\n")[1].split("```")[0].splitlines()
    names = [line.split("  ", 1)[1].strip() for line in [ln.strip() for ln in body]]
    assert names == [
        "browser  action: navigate http://shop.local:8000/cart",
        "browser  action: input #sku",
        "browser  action: input #card",
        "browser  action: click #pay",
        "browser  fetch POST /api/orders  (130.0 ms)  [ERROR: HTTP 500]",
        "api  POST /api/orders  (110.0 ms)  [ERROR: HTTP 500]",
        "api  SELECT inventory  (8.0 ms)",
        "api  INSERT orders  (95.0 ms)"
        "  [ERROR: TimeoutError: canceling statement due to statement timeout]",
        "api  log: orders insert failed: statement timeout  [ERROR]",
    ]
    offsets = [line.split(" ms", 1)[0].strip() for line in body]
    # the first action starts the trace; the server sits 10 ms into the fetch, not 2 s before
    assert offsets[:6] == ["+0.0", "+300.0", "+500.0", "+890.0", "+900.0", "+910.0"]
    assert offsets[6:8] == ["+912.0", "+920.0"]
    # indentation follows the tree: the server one level under the fetch
    assert body[5].index("api") - body[4].index("browser") == 2
    assert "4 span(s) over 130.0 ms, 5 record(s)." in md
    assert md.rstrip().endswith(".") and "Root cause: api INSERT orders" in md
    assert [n for n in out["notes"] if "skew" in n and "api" in n]
    assert not [n for n in out["notes"] if "redacted" in n]  # those concern scripts only


async def test_timeline_is_bounded(gasoline: Running) -> None:
    s = Scenario()
    root = s.span("api", "GET /batch", 0, 300, kind=SERVER, attrs=http_server("GET", "/b", 200))
    for i in range(249):
        s.span("api", f"step {i}", i + 1, i + 1.5, parent=root)
    tree = tree_of(gasoline, await s.send(gasoline))
    md = generate("timeline_report", tree)["content"]
    body = md.split("```text\n")[1].split("```")[0].splitlines()
    assert len(body) == 201 and body[-1] == "... 50 more"
    assert "step 198" in body[-2]


# -- errors -------------------------------------------------------------------------


async def test_generate_errors_say_what_to_change(gasoline: Running) -> None:
    tree = await failing_order(gasoline)
    with pytest.raises(GenerateError, match="use one of reproduction, test, pr_summary"):
        generate("screenplay", tree)
    with pytest.raises(GenerateError, match="use format curl, playwright, python"):
        generate("reproduction", tree, format="powershell")
    with pytest.raises(GenerateError, match="use format pytest, playwright"):
        generate("test", tree, format="curl")
    with pytest.raises(GenerateError, match=r"scheme://host\[:port\]"):
        generate("reproduction", tree, base_url="localhost:8000")
    with pytest.raises(GenerateError, match="no path"):
        generate("test", tree, base_url="http://127.0.0.1:8000/api")
    assert GENERATORS == ("reproduction", "test", "pr_summary", "timeline_report")
    assert set(FORMATS) == set(GENERATORS)

    s = Scenario()
    s.span("api", "GET /ok", 0, 5, kind=SERVER, attrs=http_server("GET", "/ok", 200))
    healthy = tree_of(gasoline, await s.send(gasoline))
    with pytest.raises(GenerateError, match="no client-visible HTTP request failed"):
        generate("test", healthy)
    assert "No failure" in generate("timeline_report", healthy)["content"]
    assert "no failure" in generate("pr_summary", healthy)["content"].splitlines()[0]

    s = Scenario()
    s.span("worker", "rebuild index", 0, 5, error="disk full")
    job = tree_of(gasoline, await s.send(gasoline))
    with pytest.raises(GenerateError, match="has no HTTP request"):
        generate("reproduction", job)
    with pytest.raises(GenerateError, match="no client-visible HTTP request failed"):
        generate("test", job, format="playwright")


async def test_hostile_text_is_quoted_in_every_language(gasoline: Running, tmp_path: Path) -> None:
    """Quotes, backslashes, braces, newlines and shell syntax from the trace stay data."""
    nasty = """it's "quoted" \\N{x} {braces} $(touch pwned) `id` \"\"\"\nnext line"""
    s = Scenario()
    fetch = s.span(
        "browser",
        "fetch PUT /api/notes/{id}",
        0,
        20,
        kind=CLIENT,
        attrs={
            **http_client("PUT", f"{SHOP}/api/notes/7?q=%22x%22", 500),
            "http.request.header.x-note": [nasty],
            "http.request.body": nasty,
        },
        error="",
    )
    s.span(
        "api",
        "PUT /api/notes/{id}",
        2,
        18,
        parent=fetch,
        kind=SERVER,
        attrs=http_server("PUT", "/api/notes/{id}", 500),
        exception=ValueError(nasty),
    )
    tree = tree_of(gasoline, await s.send(gasoline))
    await post_events(
        gasoline,
        [
            {
                "timestamp": T0 // MS - 5,
                "source": "browser",
                "trace_id": tree.trace_id.hex(),
                "metadata": {
                    "action": "input",
                    "selector": "textarea[name='it\"s']",
                    "value": nasty,
                },
            }
        ],
    )
    tree = tree_of(gasoline, tree.trace_id.hex())
    node = shutil.which("node")
    for kind, fmt in [("reproduction", "playwright"), ("test", "playwright")]:
        js = generate(kind, tree, format=fmt)["content"]
        assert "pwned" in js
        if node is not None:
            path = tmp_path / f"{kind}.mjs"
            path.write_text(js)
            check = subprocess.run([node, "--check", str(path)], capture_output=True, text=True)
            assert check.returncode == 0, check.stderr
    compile(generate("test", tree)["content"], "test_nasty.py", "exec")
    async with serving(500) as (base, seen):
        curl = tmp_path / "repro.sh"
        curl.write_text(generate("reproduction", tree, format="curl", base_url=base)["content"])
        code, output = await run("bash", str(curl), cwd=tmp_path)
        assert code == 0, output
        python = tmp_path / "repro.py"
        python.write_text(generate("reproduction", tree, format="python", base_url=base)["content"])
        code, output = await run(sys.executable, str(python), cwd=tmp_path)
        assert code == 0, output
    assert not (tmp_path / "pwned").exists()
    assert [r["path"] for r in seen] == ["/api/notes/7?q=%22x%22"] * 2
    assert [r["body"] for r in seen] == [nasty, nasty]
    # HTTP header values cannot carry a line break: the generator folds it
    assert [r["headers"]["x-note"] for r in seen] == [nasty.replace("\n", " ")] * 2
