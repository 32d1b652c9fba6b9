"""Root causes from every signal, asked the way agents and pages ask: through the real
MCP client over stdio (bridged to a daemon) and the HTTP tool endpoint. Each case is a
class of incident: the answer must name the culprit, the status and the service to blame.

Spans come from the real OTel SDK over OTLP/gRPC; untraced log lines, process signals
and change events through the native ``/events`` API, as tailers and gasoline-run send
them."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from tests.conftest import Running
from tests.scenarios import MS, T0, Scenario, db, http_client, http_server
from tests.test_mcp import call, mcp_session

CLIENT, SERVER = SpanKind.CLIENT, SpanKind.SERVER
CONSUMER, PRODUCER = SpanKind.CONSUMER, SpanKind.PRODUCER
GASOLINE_RUN = str(Path(sys.executable).parent / "gasoline-run")


@dataclass
class Case:
    args: dict[str, Any]
    culprit: str  # "service name" of a span, or a substring of a record's message
    status: str
    service: str | None


async def events(g: Running, *items: dict[str, Any]) -> None:
    """Untraced lines and events, as a tailer or gasoline-run posts them."""
    batch = [{"timestamp": T0 // MS + item.pop("at"), **item} for item in items]
    status, _ = await g.post_json("/events", {"events": batch})
    assert status == 200
    await g.settled()


def causality(trace_id: str) -> dict[str, Any]:
    return {"type": "causality", "trace_id": trace_id}


async def slow_query_over_its_baseline(g: Running) -> Case:
    """Slow but answered 200: the span whose time over its recent p50 explains it."""

    def run(query_ms: float) -> Scenario:
        s = Scenario()
        server = s.span(
            "orders", "GET /orders", 0, query_ms + 10, kind=SERVER,
            attrs=http_server("GET", "/orders", 200),
        )  # fmt: skip
        s.span("orders", "SELECT session", 1, 3, parent=server, kind=CLIENT, attrs=db("SELECT 1"))
        s.span(
            "orders", "SELECT orders", 4, 4 + query_ms, parent=server, kind=CLIENT,
            attrs=db("SELECT * FROM orders WHERE customer_id = $1"),
        )  # fmt: skip
        return s

    for query_ms in (20, 22, 25, 21, 24):
        await run(query_ms).send(g)
    trace_id = await run(1500).send(g)
    return Case(causality(trace_id), "orders SELECT orders", "slow", "orders")


async def deadline_while_callee_still_runs(g: Running) -> Case:
    s = Scenario()
    server = s.span(
        "checkout", "POST /checkout", 0, 520, kind=SERVER,
        attrs=http_server("POST", "/checkout", 504), error="",
    )  # fmt: skip
    call_ = s.span(
        "checkout", "inventory.Reserve", 10, 510, parent=server, kind=CLIENT,
        attrs={"rpc.system": "grpc", "rpc.grpc.status_code": 4}, error="DEADLINE_EXCEEDED",
    )  # fmt: skip
    callee = s.span("inventory", "inventory.Reserve", 15, 2300, parent=call_, kind=SERVER)
    s.span(
        "inventory", "SELECT stock FOR UPDATE", 20, 2280, parent=callee, kind=CLIENT,
        attrs=db("SELECT qty FROM stock WHERE sku = $1 FOR UPDATE"),
    )  # fmt: skip
    return Case(
        causality(await s.send(g)), "inventory SELECT stock FOR UPDATE", "failed", "inventory"
    )


async def breaker_opened_by_an_earlier_failure(g: Running) -> Case:
    s = Scenario()
    server = s.span(
        "storefront", "GET /home", 0, 120, kind=SERVER, attrs=http_server("GET", "/home", 503),
        error="",
    )  # fmt: skip
    s.span(
        "storefront", "GET recommendations", 5, 40, parent=server, kind=CLIENT,
        attrs=http_client("GET", "http://recs/for-user", 500), error="",
        exception=OSError("[Errno -2] Name or service not known: 'recs'"),
    )  # fmt: skip
    s.span(
        "storefront", "GET trending", 45, 46, parent=server, kind=CLIENT,
        attrs=http_client("GET", "http://recs/trending", 503), error="",
        exception=RuntimeError("circuit breaker 'recs' is OPEN"),
    )  # fmt: skip
    return Case(
        causality(await s.send(g)), "storefront GET recommendations", "failed", "storefront"
    )


async def handled_fallback_is_not_a_failure(g: Running) -> Case:
    s = Scenario()
    server = s.span(
        "catalog", "GET /products/{id}", 0, 45, kind=SERVER,
        attrs=http_server("GET", "/products/{id}", 200),
    )  # fmt: skip
    s.span(
        "catalog", "GET cache", 2, 6, parent=server, kind=CLIENT,
        attrs={"db.system": "redis", "server.address": "cache"}, error="",
        exception=ConnectionRefusedError("Error 111 connecting to cache:6379"),
    )  # fmt: skip
    s.span("catalog", "SELECT product", 7, 40, parent=server, kind=CLIENT, attrs=db("SELECT 1"))
    return Case(causality(await s.send(g)), "", "degraded", None)


async def untraced_log_before_a_bare_internal_error(g: Running) -> Case:
    s = Scenario()
    server = s.span(
        "billing", "POST /invoices", 0, 60, kind=SERVER,
        attrs=http_server("POST", "/invoices", 500), error="internal error",
    )  # fmt: skip
    s.span("billing", "validate", 1, 5, parent=server)
    trace_id = await s.send(g)
    await events(
        g,
        {"at": 52, "level": "error", "source": "backend", "service": "billing",
         "message": "UniqueViolation: duplicate key value violates invoices_number_key"},
        {"at": 55, "level": "error", "source": "backend", "service": "mailer",
         "message": "SMTP 421 try again later"},
    )  # fmt: skip
    return Case(causality(trace_id), "duplicate key value", "failed", "billing")


async def peer_process_killed(g: Running) -> Case:
    known = Scenario()
    known.span("thumbs", "POST /resize", -60_000, -59_960, kind=SERVER)
    await known.send(g)
    s = Scenario()
    server = s.span(
        "api", "POST /upload", 0, 900, kind=SERVER, attrs=http_server("POST", "/upload", 502),
        error="",
    )  # fmt: skip
    s.span(
        "api", "POST thumbnails", 10, 890, parent=server, kind=CLIENT,
        attrs={**http_client("POST", "http://thumbs:7000/resize", 502), "server.address": "thumbs"},
        error="", exception=ConnectionResetError("[Errno 104] Connection reset by peer"),
    )  # fmt: skip
    trace_id = await s.send(g)
    await events(
        g,
        {"at": 400, "level": "info", "source": "backend", "service": "thumbs",
         "message": "resizing 48 MP image"},
        {"at": 880, "level": "error", "source": "backend", "service": "thumbs",
         "message": "Killed"},
    )  # fmt: skip
    return Case(causality(trace_id), "Killed", "failed", "thumbs")


async def failure_through_a_span_link(g: Running) -> Case:
    upstream = Scenario()
    job = upstream.span("etl", "etl nightly", -5000, 0, kind=SERVER, error="")
    write = upstream.span(
        "etl", "write daily.csv", -1000, -100, parent=job, kind=CLIENT, error="",
        exception=PermissionError("AccessDenied: PutObject"),
    )  # fmt: skip
    await upstream.send(g)
    s = Scenario()
    s.span("exporter", "export daily", 0, 200, kind=CONSUMER, error="empty input", links=[write])
    return Case(causality(await s.send(g)), "etl write daily.csv", "failed", "etl")


async def failure_of_a_trace_that_links_back(g: Running) -> Case:
    s = Scenario()
    root = s.span(
        "importer", "POST /imports", 0, 5000, kind=SERVER,
        attrs=http_server("POST", "/imports", 500), error="import job failed",
    )  # fmt: skip
    enqueue = s.span("importer", "imports enqueue", 5, 10, parent=root, kind=PRODUCER)
    trace_id = await s.send(g)
    job = Scenario()
    consumer = job.span(
        "import-worker", "imports process", 20, 4000, kind=CONSUMER, error="", links=[enqueue]
    )
    job.span(
        "import-worker", "parse csv", 30, 3990, parent=consumer, error="",
        exception=UnicodeError("'utf-8' codec can't decode byte 0xff in position 0"),
    )  # fmt: skip
    await job.send(g)
    return Case(causality(trace_id), "import-worker parse csv", "failed", "import-worker")


async def client_error_explained_by_the_server_log(g: Running) -> Case:
    s = Scenario()
    fetch = s.span(
        "browser", "fetch POST /api/signup", 0, 40, kind=CLIENT,
        attrs=http_client("POST", "http://localhost:8000/api/signup", 422), error="",
    )  # fmt: skip
    server = s.span(
        "accounts", "POST /api/signup", 5, 35, parent=fetch, kind=SERVER,
        attrs=http_server("POST", "/api/signup", 422),
    )  # fmt: skip
    s.log("accounts", server, "signup rejected: password must be at least 12 characters")
    return Case(causality(await s.send(g)), "password must be", "failed", "accounts")


async def connection_refused_blames_the_peer_service(g: Running) -> Case:
    known = Scenario()
    known.span("cart-svc", "GET /cart/{id}", -60_000, -59_990, kind=SERVER)
    await known.send(g)
    s = Scenario()
    server = s.span(
        "api", "GET /api/cart", 0, 20, kind=SERVER, attrs=http_server("GET", "/api/cart", 500),
        error="",
    )  # fmt: skip
    s.span(
        "api", "GET", 2, 4, parent=server, kind=CLIENT,
        attrs={"http.request.method": "GET",
               "server.address": "cart-svc.default.svc.cluster.local"},
        error="", exception=ConnectionRefusedError("connection refused"),
    )  # fmt: skip
    return Case(causality(await s.send(g)), "api GET", "failed", "cart-svc")


async def config_reload_before_pool_timeouts(g: Running) -> Case:
    s = Scenario()
    server = s.span(
        "accounts", "GET /api/account", 0, 5010, kind=SERVER,
        attrs=http_server("GET", "/api/account", 500), error="",
    )  # fmt: skip
    s.span(
        "accounts", "pool.acquire", 2, 5005, parent=server, error="",
        exception=TimeoutError("timed out waiting for a connection from the pool"),
    )  # fmt: skip
    trace_id = await s.send(g)
    await events(
        g,
        {"at": -45_000, "level": "info", "source": "custom", "service": "accounts",
         "message": "config reloaded: db.pool size 20 -> 2", "metadata": {"type": "config"}},
    )  # fmt: skip
    return Case(causality(trace_id), "pool size 20 -> 2", "failed", "accounts")


async def healthy_request(g: Running) -> Case:
    s = Scenario()
    server = s.span("profile", "GET /me", 0, 30, kind=SERVER, attrs=http_server("GET", "/me", 200))
    s.span("profile", "SELECT user", 2, 20, parent=server, kind=CLIENT, attrs=db("SELECT 1"))
    trace_id = await s.send(g)
    await events(
        g,
        {"at": 15, "level": "error", "source": "backend", "service": "newsletter",
         "message": "SMTP connection lost"},
    )  # fmt: skip
    return Case(causality(trace_id), "", "ok", None)


async def what_broke_in_a_window(g: Running) -> Case:
    s = Scenario()
    server = s.span(
        "api", "GET /api/items", 0, 30, kind=SERVER, attrs=http_server("GET", "/api/items", 500),
        error="",
    )  # fmt: skip
    s.span(
        "api", "SELECT items", 2, 28, parent=server, kind=CLIENT, attrs=db("SELECT archived"),
        error='column "archived" does not exist',
    )  # fmt: skip
    await s.send(g)
    window = {"type": "causality", "since": T0 // MS - 60_000, "until": T0 // MS + 60_000}
    return Case(window, "api SELECT items", "failed", "api")


CASES: dict[str, Callable[[Running], Awaitable[Case]]] = {
    f.__name__: f
    for f in (
        slow_query_over_its_baseline,
        deadline_while_callee_still_runs,
        breaker_opened_by_an_earlier_failure,
        handled_fallback_is_not_a_failure,
        untraced_log_before_a_bare_internal_error,
        peer_process_killed,
        failure_through_a_span_link,
        failure_of_a_trace_that_links_back,
        client_error_explained_by_the_server_log,
        connection_refused_blames_the_peer_service,
        config_reload_before_pool_timeouts,
        healthy_request,
        what_broke_in_a_window,
    )
}


def check(answer: dict[str, Any], case: Case) -> None:
    assert answer["status"] == case.status, answer.get("status_reason")
    assert answer["service"] == case.service, answer["hypotheses"]
    cause = answer["root_cause"]
    if not case.culprit:
        assert cause is None and answer["hypotheses"] == []
        return
    assert answer["hypotheses"][0]["cause"]["message"] == cause["message"]
    if cause["type"] == "span":
        assert f"{cause['service']} {cause['name']}" == case.culprit, cause
    else:
        assert case.culprit in cause["message"] and cause["record_id"], cause
    assert 0 < cause["confidence"] <= 1 and cause["reasoning"] and cause["evidence"]
    assert answer["chain"][-1]["role"] == "root_cause"
    assert "latency_breakdown" in answer and "critical_path" in answer


@pytest.mark.parametrize("name", list(CASES))
async def test_each_class_over_the_http_tool_endpoint(gasoline: Running, name: str) -> None:
    case = await CASES[name](gasoline)
    status, answer = await gasoline.post_json("/v1/tools/analyze", case.args)
    assert status == 200, answer
    check(answer, case)


async def test_every_class_through_the_mcp_client(
    start_daemon: Callable[..., Awaitable[Running]], tmp_path: Path
) -> None:
    """One daemon per case (their data must not meet), one stdio MCP client each."""
    for name, build in CASES.items():
        g = await start_daemon()
        case = await build(g)
        async with mcp_session(tmp_path, "--url", g.api) as (session, _):
            answer = await call(session, "analyze", **case.args)
        check(answer, case)
        assert len(str(answer)) < 20_000, name


async def test_a_process_killed_under_gasoline_run_is_what_broke(
    gasoline: Running, tmp_path: Path
) -> None:
    """A SIGKILL says nothing on the child's own output; the wrapper's last line does,
    and "what broke in the last minutes" names it, over MCP and over HTTP."""
    child = "import os, signal; print('loading 48 GB model', flush=True); os.kill(os.getpid(), 9)"
    proc = await asyncio.create_subprocess_exec(
        GASOLINE_RUN, "--url", gasoline.api, "--spool-dir", str(tmp_path / "spool"),
        "--service", "worker", "--", sys.executable, "-c", child,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(60):
        out, _ = await proc.communicate()
    assert proc.returncode == 137 and out.strip() == b"loading 48 GB model"
    await gasoline.settled()
    window = {"type": "causality", "since": time.time() * 1000 - 300_000}
    status, answer = await gasoline.post_json("/v1/tools/analyze", window)
    assert status == 200, answer
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        over_mcp = await call(session, "analyze", **window)
    assert over_mcp["root_cause"] == answer["root_cause"] and over_mcp["status"] == "failed"
    assert answer["status"] == "failed" and answer["service"] == "worker"
    cause = answer["root_cause"]
    assert cause["message"].startswith("gasoline-run: python")
    assert "killed by signal 9 (SIGKILL)" in cause["message"]
    assert cause["evidence"][0]["process_signal"] is True


def _price_of(cart: dict[str, int]) -> int:
    return cart["total"] // cart["items"]


async def test_a_commit_touching_the_failing_code_is_cited(gasoline: Running) -> None:
    """A git change (as the git watcher sends it: ``git.files``) to a file in the failing
    span's stack trace is cited beside the root cause, never over it."""
    try:
        _price_of({"total": 10, "items": 0})
    except ZeroDivisionError as exc:
        failure = exc
    s = Scenario()
    server = s.span(
        "shop", "GET /price", 0, 20, kind=SERVER, attrs=http_server("GET", "/price", 500),
        error="",
    )  # fmt: skip
    s.span("shop", "price cart", 2, 18, parent=server, error="", exception=failure)
    trace_id = await s.send(g := gasoline)
    touched = {"path": "tests/test_rca.py", "added": 3, "deleted": 1, "state": "modified"}
    await events(
        g,
        {"at": -600_000, "level": "info", "source": "git", "service": "shop",
         "message": "commit 1a2b3c4d5e on main: price per item (1 file)",
         "metadata": {"git.event": "commit", "git.files": [touched]}},
        {"at": -500_000, "level": "info", "source": "git", "service": "shop",
         "message": "commit 9f8e7d6c5b on main: README (1 file)",
         "metadata": {"git.event": "commit", "git.files": [{"path": "README.md"}]}},
    )  # fmt: skip
    status, answer = await g.post_json("/v1/tools/analyze", causality(trace_id))
    assert status == 200 and answer["status"] == "failed"
    cause = answer["root_cause"]
    assert (cause["name"], cause["type"]) == ("price cart", "span")
    [cited] = [e for e in cause["evidence"] if e["type"] == "code_change"]
    assert cited["files"] == ["tests/test_rca.py"] and "price per item" in cited["message"]
    second = answer["hypotheses"][1]
    assert second["cause"]["record_id"] == cited["record_id"] and second["confidence"] < 0.9
    assert not any("README" in h["cause"]["message"] for h in answer["hypotheses"])
