"""Root cause analysis on failure scenarios with known answers."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind

from collector.analysis.causality import analyze_causality
from collector.analysis.skew import skew_report
from collector.query import trace_tree
from tests.conftest import Running
from tests.scenarios import MS, T0, Scenario, db, http_client, http_server

CLIENT, SERVER = SpanKind.CLIENT, SpanKind.SERVER


def analyze(gasoline: Running, trace_id: str) -> dict[str, Any]:
    tree = trace_tree(gasoline.daemon.store, bytes.fromhex(trace_id))
    assert tree is not None
    return {**analyze_causality(tree)}


def chain_names(answer: dict[str, Any]) -> list[str]:
    return [c["name"] for c in answer["chain"]]


async def test_db_timeout_under_api_500_under_browser_fetch(gasoline: Running) -> None:
    s = Scenario()
    fetch = s.span(
        "browser",
        "fetch POST /api/orders",
        0,
        130,
        kind=CLIENT,
        attrs=http_client("POST", "http://localhost:8000/api/orders", 500),
        error="",
    )
    # the span objects are ended already; children reference them as parents
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
    s.span(
        "api",
        "SELECT inventory",
        12,
        20,
        parent=server,
        kind=CLIENT,
        attrs=db("SELECT * FROM inventory"),
    )
    s.span(
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
    answer = analyze(gasoline, await s.send(gasoline))

    cause = answer["root_cause"]
    assert (cause["service"], cause["name"], cause["type"]) == ("api", "INSERT orders", "span")
    assert "statement timeout" in cause["message"]
    assert chain_names(answer) == ["fetch POST /api/orders", "POST /api/orders", "INSERT orders"]
    assert [c["role"] for c in answer["chain"]] == ["propagated", "propagated", "root_cause"]
    assert answer["chain"][0]["http_status"] == 500
    b = answer["latency_breakdown"]
    assert b["total_ms"] == 130.0
    assert b["network_ms"] == 20.0  # 130 ms client minus its 110 ms server child
    assert b["database_ms"] == 103.0  # 8 + 95
    assert b["server_ms"] == 7.0  # 110 - 103 of children
    assert b["browser_ms"] == 0.0
    assert b["by_service"]["api"]["database_ms"] == 103.0
    assert [p["name"] for p in answer["critical_path"]] == [
        "fetch POST /api/orders",
        "POST /api/orders",
        "SELECT inventory",
        "INSERT orders",
    ]
    assert "INSERT orders" in answer["summary"] and "statement timeout" in answer["summary"]


async def test_exception_deep_in_a_chain_of_propagated_500s(gasoline: Running) -> None:
    s = Scenario()
    gateway = s.span(
        "gateway",
        "GET /profile",
        0,
        50,
        kind=SERVER,
        attrs=http_server("GET", "/profile", 500),
        error="",
    )
    call_users = s.span(
        "gateway",
        "GET users",
        2,
        48,
        parent=gateway,
        kind=CLIENT,
        attrs=http_client("GET", "http://users/u/7", 500),
        error="",
    )
    users = s.span(
        "users",
        "GET /u/{id}",
        4,
        46,
        parent=call_users,
        kind=SERVER,
        attrs=http_server("GET", "/u/{id}", 500),
        error="",
    )
    call_prefs = s.span(
        "users",
        "GET prefs",
        6,
        44,
        parent=users,
        kind=CLIENT,
        attrs=http_client("GET", "http://prefs/p/7", 500),
        error="",
    )
    prefs = s.span(
        "prefs",
        "GET /p/{id}",
        8,
        42,
        parent=call_prefs,
        kind=SERVER,
        attrs=http_server("GET", "/p/{id}", 500),
        error="KeyError: 'theme'",
        exception=KeyError("theme"),
    )
    s.span("prefs", "load defaults", 9, 12, parent=prefs)
    answer = analyze(gasoline, await s.send(gasoline, reverse=True))
    cause = answer["root_cause"]
    assert (cause["service"], cause["name"]) == ("prefs", "GET /p/{id}")
    assert cause["evidence"][0]["exception_type"] == "KeyError"
    assert [c["service"] for c in answer["chain"]] == [
        "gateway",
        "gateway",
        "users",
        "users",
        "prefs",
    ]
    assert all(c["role"] == "propagated" for c in answer["chain"][:-1])
    assert answer["other_failures"] == []


async def test_failure_visible_only_in_a_log_line(gasoline: Running) -> None:
    s = Scenario()
    server = s.span(
        "api", "POST /checkout", 0, 40, kind=SERVER, attrs=http_server("POST", "/checkout", 500)
    )
    s.span("api", "validate cart", 1, 5, parent=server)
    charge = s.span("api", "charge card", 5, 35, parent=server)
    s.log("api", charge, "payment provider declined: insufficient funds (code 51)")
    s.log("api", server, "handled request", error=False)
    answer = analyze(gasoline, await s.send(gasoline))
    cause = answer["root_cause"]
    assert cause["type"] == "log" and cause["name"] == "charge card"
    assert cause["message"] == "payment provider declined: insufficient funds (code 51)"
    assert chain_names(answer) == ["POST /checkout", "charge card"]
    assert answer["chain"][0]["role"] == "propagated"


async def test_retries_of_a_failing_downstream_call(gasoline: Running) -> None:
    s = Scenario()
    server = s.span(
        "orders",
        "POST /orders",
        0,
        100,
        kind=SERVER,
        attrs=http_server("POST", "/orders", 502),
        error="",
    )
    for attempt in range(3):
        start = 5 + attempt * 30
        call = s.span(
            "orders",
            "GET inventory",
            start,
            start + 25,
            parent=server,
            kind=CLIENT,
            attrs=http_client("GET", "http://inventory/stock", 503),
            error="",
        )
        s.span(
            "inventory",
            "GET /stock",
            start + 2,
            start + 23,
            parent=call,
            kind=SERVER,
            attrs=http_server("GET", "/stock", 503),
            error="connection pool exhausted",
            exception=RuntimeError("connection pool exhausted"),
        )
    answer = analyze(gasoline, await s.send(gasoline))
    cause = answer["root_cause"]
    assert (cause["service"], cause["name"]) == ("inventory", "GET /stock")
    assert cause["repeated"] == 3
    assert "connection pool exhausted" in cause["message"]
    first_attempt = answer["chain"][-1]
    assert first_attempt["span_id"] == cause["span_id"]
    assert "failed 3 times" in answer["summary"]


async def test_external_api_answering_503(gasoline: Running) -> None:
    s = Scenario()
    server = s.span(
        "shop", "POST /pay", 0, 300, kind=SERVER, attrs=http_server("POST", "/pay", 500), error=""
    )
    s.span("shop", "SELECT cart", 2, 10, parent=server, kind=CLIENT, attrs=db("SELECT cart"))
    s.span(
        "shop",
        "POST",
        10,
        290,
        parent=server,
        kind=CLIENT,
        attrs=http_client("POST", "https://api.payments.example/v1/charge", 503),
    )
    answer = analyze(gasoline, await s.send(gasoline))
    cause = answer["root_cause"]
    assert (cause["service"], cause["name"]) == ("shop", "POST")
    assert cause["message"] == "api.payments.example answered HTTP 503"
    assert answer["latency_breakdown"]["external_ms"] == 280.0
    assert answer["latency_breakdown"]["database_ms"] == 8.0


async def test_skewed_clocks_do_not_mislead_the_analysis(gasoline: Running) -> None:
    s = Scenario()
    s.skew_ms = {"api": -2000.0}  # the backend's clock is 2 s behind the browser's
    fetch = s.span(
        "browser",
        "fetch GET /api/cart",
        0,
        100,
        kind=CLIENT,
        attrs=http_client("GET", "http://localhost:8000/api/cart", 500),
        error="",
    )
    server = s.span(
        "api",
        "GET /api/cart",
        10,
        90,
        parent=fetch,
        kind=SERVER,
        attrs=http_server("GET", "/api/cart", 500),
        error="",
    )
    s.span(
        "api",
        "SELECT cart",
        20,
        80,
        parent=server,
        kind=CLIENT,
        attrs=db("SELECT cart"),
        error='relation "cart" does not exist',
    )
    trace_id = await s.send(gasoline)
    answer = analyze(gasoline, trace_id)
    assert answer["root_cause"]["name"] == "SELECT cart"
    assert chain_names(answer) == ["fetch GET /api/cart", "GET /api/cart", "SELECT cart"]
    assert answer["latency_breakdown"]["network_ms"] == 20.0
    tree = trace_tree(gasoline.daemon.store, bytes.fromhex(trace_id))
    assert tree is not None
    report = skew_report([tree])
    assert report["status"] == "large_skew"
    view = await gasoline.daemon.tools.run(
        "observe", {"what": "trace", "filter": {"trace_id": trace_id}}
    )
    fetch_line, server_line, db_line = view["trace"]["spans"]
    assert (fetch_line["offset_ms"], server_line["offset_ms"], db_line["offset_ms"]) == (
        0.0,
        10.0,
        20.0,
    )
    assert server_line["clock_adjusted_ms"] == 2000.0
    assert report["pairs"]["browser -> api"]["median_skew_ms"] == -2000.0
    assert "behind" in report["recommendation"]


async def test_slow_request_dominated_by_sequential_db_calls(gasoline: Running) -> None:
    s = Scenario()
    server = s.span("api", "GET /feed", 0, 500, kind=SERVER, attrs=http_server("GET", "/feed", 200))
    s.span("api", "SELECT posts", 1, 20, parent=server, kind=CLIENT, attrs=db("SELECT posts"))
    for i in range(40):
        start = 20 + i * 11
        s.span(
            "api",
            "SELECT author",
            start,
            start + 10,
            parent=server,
            kind=CLIENT,
            attrs=db("SELECT * FROM users WHERE id = $1"),
        )
    answer = analyze(gasoline, await s.send(gasoline))
    assert answer["status"] == "ok" and answer["root_cause"] is None
    b = answer["latency_breakdown"]
    assert b["database_ms"] == 419.0  # 19 + 40 * 10
    assert b["server_ms"] == 81.0
    assert "No failure" in answer["summary"]


async def test_causality_endpoint_and_skew_in_daemon_status(gasoline: Running) -> None:
    s = Scenario()
    s.skew_ms = {"api": 350.0}
    fetch = s.span(
        "browser",
        "fetch GET /api/me",
        0,
        60,
        kind=CLIENT,
        attrs=http_client("GET", "http://localhost:8000/api/me", 500),
        error="",
    )
    server = s.span(
        "api",
        "GET /api/me",
        5,
        55,
        parent=fetch,
        kind=SERVER,
        attrs=http_server("GET", "/api/me", 500),
        error="",
    )
    s.span(
        "api",
        "SELECT user",
        10,
        50,
        parent=server,
        kind=CLIENT,
        attrs=db("SELECT user"),
        error="deadlock detected",
    )
    trace_id = await s.send(gasoline)
    status, answer = await gasoline.get_json(f"/v1/traces/{trace_id}/causality")
    assert status == 200 and answer["root_cause"]["message"] == "deadlock detected"
    status, missing = await gasoline.get_json(f"/v1/traces/{'1' * 32}/causality")
    assert status == 404 and "not in the store" in missing["error"]
    _, daemon = await gasoline.get_json("/daemon/status")
    skew = daemon["clock_skew"]
    assert skew["samples_collected"] == 1 and skew["median_skew_ms"] == 350.0
    assert skew["status"] == "detected" and "ahead of" in skew["recommendation"]
    assert set(skew) >= {"p95_skew_ms", "p99_skew_ms", "std_dev_ms"}


async def test_x_client_time_header_gives_browser_skew_samples(gasoline: Running) -> None:
    s = Scenario()
    s.skew_ms = {"api": 500.0}
    server = s.span(
        "api",
        "GET /api/me",
        0,
        20,
        kind=SERVER,
        attrs={
            **http_server("GET", "/api/me", 200),
            "http.request.header.x-client-time": [str(T0 // MS)],
        },
    )
    assert server is not None
    trace_id = await s.send(gasoline)
    tree = trace_tree(gasoline.daemon.store, bytes.fromhex(trace_id))
    assert tree is not None
    report = skew_report([tree])
    assert report["pairs"]["browser -> api"]["median_skew_ms"] == 500.0


def test_no_samples_claim_no_agreement() -> None:
    report = skew_report([])
    assert report["status"] == "unknown" and report["samples_collected"] == 0
    assert "No samples yet" in report["recommendation"]
    assert "agree" not in report["recommendation"]


def _deep_failure(depth: int) -> None:
    if depth == 0:
        raise LookupError("no price for sku 42")
    _deep_failure(depth - 1)


async def test_a_cut_stack_trace_starts_at_a_frame_and_says_so(gasoline: Running) -> None:
    try:
        _deep_failure(12)
    except LookupError as exc:
        failure = exc
    s = Scenario()
    s.span("api", "price", 0, 10, error="", exception=failure)
    cause = analyze(gasoline, await s.send(gasoline))["root_cause"]
    stack = cause["evidence"][0]["stacktrace"].splitlines()
    assert stack[0].startswith("… (") and stack[0].endswith("earlier lines)")
    assert stack[1].lstrip().startswith("File ")
    assert stack[-1] == "LookupError: no price for sku 42"
