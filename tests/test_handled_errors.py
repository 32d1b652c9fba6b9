"""Errors a request recovered from (a fallback, a retry that worked) are reported as
handled: the request succeeded, nothing in the chain is shown failing, and the answers
that judge failure (causality, pr_summary, the timeline report) say so."""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from collector.analysis.causality import analyze_causality
from collector.generate import GenerateError, generate
from collector.query import trace_tree
from collector.trace_tree import TraceTree
from tests.conftest import Running
from tests.scenarios import Scenario, db, http_client, http_server

CLIENT, SERVER = SpanKind.CLIENT, SpanKind.SERVER
CACHE = {"db.system": "redis", "server.address": "cache"}


def tree_of(gasoline: Running, trace_id: str) -> TraceTree:
    tree = trace_tree(gasoline.daemon.store, bytes.fromhex(trace_id))
    assert tree is not None
    return tree


async def profile_with_cache_down(gasoline: Running, answered: int) -> TraceTree:
    """GET /api/profile: the cache lookup raises (the SDK records the exception and the
    error status), then the handler reads the database instead and answers ``answered``
    (with the error status the SDK's server instrumentation sets for a 5xx)."""
    s = Scenario()
    server = s.span(
        "api",
        "GET /api/profile",
        0,
        50,
        kind=SERVER,
        attrs=http_server("GET", "/api/profile", answered),
        error="" if answered >= 500 else None,
    )
    s.span(
        "api",
        "GET cache",
        2,
        10,
        parent=server,
        kind=CLIENT,
        attrs=CACHE,
        error="connection refused",
        exception=ConnectionRefusedError("connection refused"),
    )
    if answered < 500:
        s.span("api", "SELECT profile", 10, 40, parent=server, kind=CLIENT, attrs=db("SELECT 1"))
    return tree_of(gasoline, await s.send(gasoline))


def section(md: str, title: str) -> str:
    return md.split(f"## {title}\n")[1].split("\n## ")[0]


async def test_a_caught_exception_under_a_200_is_handled_not_a_failure(
    gasoline: Running,
) -> None:
    tree = await profile_with_cache_down(gasoline, 200)
    answer = analyze_causality(tree)
    assert answer["status"] == "degraded" and answer["root_cause"] is None
    assert answer["chain"] == [] and answer["other_failures"] == []
    [handled] = answer["handled"]
    assert (handled["service"], handled["name"]) == ("api", "GET cache")
    assert handled["message"] == "ConnectionRefusedError: connection refused"
    assert handled["evidence"][0]["exception_type"] == "ConnectionRefusedError"
    assert handled["handled_by"] == {
        "span_id": tree.roots[0].span.span_id.hex(),
        "service": "api",
        "name": "GET /api/profile",
        "http_status": 200,
    }
    assert answer["summary"].startswith("No failure in this trace: 1 error was handled")
    assert "api GET cache — ConnectionRefusedError" in answer["summary"]

    md = generate("pr_summary", tree)["content"]
    assert md.splitlines()[0] == f"# Trace {tree.trace_id.hex()[:8]}: no failure, 1 handled error"
    assert "## What failed" not in md and "## Root cause" not in md
    happened = section(md, "What happened")
    assert "`GET http://localhost/api/profile` returned **HTTP 200**" in happened
    assert "1 error below it was handled" in happened
    handled_md = section(md, "Handled errors")
    assert "`api GET cache` (CLIENT): ConnectionRefusedError: connection refused" in handled_md
    assert "handled by `api GET /api/profile` (HTTP 200)" in handled_md
    assert "Exception `ConnectionRefusedError`" in handled_md
    assert "failed" not in md

    report = generate("timeline_report", tree)["content"]
    lines = report.split("```text\n")[1].split("```")[0].splitlines()
    assert lines[0].endswith("api  GET /api/profile  (50.0 ms)")
    assert lines[1].endswith(
        "api  GET cache  (8.0 ms)  [HANDLED ERROR: ConnectionRefusedError: connection refused]"
    )
    assert "No failure in this trace: 1 error was handled" in section(report, "Summary")

    try:
        generate("test", tree)
    except GenerateError as exc:
        assert "no client-visible HTTP request failed" in str(exc)
        assert "the failure is inside" not in str(exc)
    else:
        raise AssertionError("a test was generated for a request that succeeded")


async def test_the_same_error_propagating_to_a_500_is_still_the_root_cause(
    gasoline: Running,
) -> None:
    tree = await profile_with_cache_down(gasoline, 500)
    answer = analyze_causality(tree)
    assert answer["status"] == "failed" and answer["handled"] == []
    cause = answer["root_cause"]
    assert (cause["name"], cause["message"]) == (
        "GET cache",
        "ConnectionRefusedError: connection refused",
    )
    assert [(c["name"], c["role"], c["status"]) for c in answer["chain"]] == [
        ("GET /api/profile", "propagated", "ERROR"),
        ("GET cache", "root_cause", "ERROR"),
    ]
    md = generate("pr_summary", tree)["content"]
    assert md.splitlines()[0] == (
        "# Fix GET /api/profile returning HTTP 500: api GET cache:"
        " ConnectionRefusedError: connection refused"
    )
    assert "returned **HTTP 500**" in section(md, "What failed")
    assert "## Handled errors" not in md
    report = generate("timeline_report", tree)["content"]
    assert "[ERROR: ConnectionRefusedError: connection refused]" in report
    assert "HANDLED" not in report


async def test_a_retry_that_succeeded_is_handled(gasoline: Running) -> None:
    s = Scenario()
    server = s.span(
        "orders", "POST /orders", 0, 110, kind=SERVER, attrs=http_server("POST", "/orders", 201)
    )
    for attempt, status in enumerate((503, 503, 200)):
        start = 5 + attempt * 35
        call = s.span(
            "orders",
            "GET inventory",
            start,
            start + 30,
            parent=server,
            kind=CLIENT,
            attrs=http_client("GET", "http://inventory/stock", status),
            error="" if status >= 500 else None,
        )
        s.span(
            "inventory",
            "GET /stock",
            start + 2,
            start + 28,
            parent=call,
            kind=SERVER,
            attrs=http_server("GET", "/stock", status),
            error="connection pool exhausted" if status >= 500 else None,
            exception=RuntimeError("connection pool exhausted") if status >= 500 else None,
        )
    trace_id = await s.send(gasoline)

    status, answer = await gasoline.get_json(f"/v1/traces/{trace_id}/causality")
    assert status == 200
    assert answer["status"] == "degraded" and answer["root_cause"] is None and answer["chain"] == []
    [handled] = answer["handled"]  # the deepest failure of the failed attempts, once
    assert (handled["service"], handled["name"]) == ("inventory", "GET /stock")
    assert handled["message"] == "RuntimeError: connection pool exhausted"
    assert handled["repeated"] == 2
    assert handled["handled_by"]["name"] == "POST /orders"
    assert handled["handled_by"]["http_status"] == 201

    tree = tree_of(gasoline, trace_id)
    md = generate("pr_summary", tree)["content"]
    assert "failed" not in md and "no failure, 1 handled error" in md.splitlines()[0]
    assert "`POST http://localhost/orders` returned **HTTP 201**" in section(md, "What happened")
    assert "handled by `orders POST /orders` (HTTP 201), 2 times" in section(md, "Handled errors")
    report = generate("timeline_report", tree)["content"]
    marks = [line.split("[", 1)[1] for line in report.splitlines() if "[" in line]
    assert (
        marks
        == [
            "HANDLED ERROR: HTTP 503]",
            "HANDLED ERROR: RuntimeError: connection pool exhausted]",
        ]
        * 2
    )


async def test_a_handled_error_is_never_named_over_the_real_cause(gasoline: Running) -> None:
    """The users service recovered from its cache error deep in the tree and answered 200;
    the 500 comes from the api's own INSERT. Depth alone would have named the cache."""
    s = Scenario()
    server = s.span(
        "api",
        "POST /api/orders",
        0,
        100,
        kind=SERVER,
        attrs=http_server("POST", "/api/orders", 500),
        error="",
    )
    call = s.span(
        "api",
        "GET users",
        2,
        30,
        parent=server,
        kind=CLIENT,
        attrs=http_client("GET", "http://users/u/7", 200),
    )
    users = s.span(
        "users", "GET /u/{id}", 4, 28, parent=call, kind=SERVER, attrs=http_server("GET", "/u", 200)
    )
    s.span(
        "users",
        "GET cache",
        5,
        8,
        parent=users,
        kind=CLIENT,
        attrs=CACHE,
        error="connection refused",
        exception=ConnectionRefusedError("connection refused"),
    )
    s.span(
        "api",
        "INSERT orders",
        30,
        95,
        parent=server,
        kind=CLIENT,
        attrs=db("INSERT INTO orders ..."),
        error="duplicate key value violates unique constraint",
    )
    answer = analyze_causality(tree_of(gasoline, await s.send(gasoline)))
    assert answer["status"] == "failed"
    assert answer["root_cause"]["name"] == "INSERT orders"
    assert [c["name"] for c in answer["chain"]] == ["POST /api/orders", "INSERT orders"]
    assert answer["other_failures"] == []
    [handled] = answer["handled"]
    assert (handled["service"], handled["name"]) == ("users", "GET cache")
    by = handled["handled_by"]
    assert (by["service"], by["name"], by["http_status"]) == ("users", "GET /u/{id}", 200)
    assert "1 error elsewhere was handled" in answer["summary"]


async def test_a_4xx_answer_is_not_a_success(gasoline: Running) -> None:
    """A 404 is the answer the error below it produced: the error is its cause, as before."""
    s = Scenario()
    server = s.span(
        "api", "GET /u/{id}", 0, 20, kind=SERVER, attrs=http_server("GET", "/u/{id}", 404)
    )
    s.span("api", "load user", 2, 10, parent=server, error="", exception=KeyError("user 7"))
    tree = tree_of(gasoline, await s.send(gasoline))
    answer = analyze_causality(tree)
    assert answer["status"] == "failed" and answer["handled"] == []
    assert answer["root_cause"]["message"] == "KeyError: 'user 7'"
    assert [(c["role"], c.get("http_status")) for c in answer["chain"]] == [
        ("caller", 404),
        ("root_cause", None),
    ]
    md = generate("pr_summary", tree)["content"]
    assert md.splitlines()[0].startswith("# Fix GET /u/{id} returning HTTP 404: api load user")


async def test_a_parent_that_recorded_nothing_is_not_called_failed(gasoline: Running) -> None:
    """No span says the job answered well or badly: the failure below still counts, but the
    summary names the span that failed, not the silent parent."""
    s = Scenario()
    job = s.span("worker", "nightly export", 0, 30)
    s.span("worker", "write report", 5, 25, parent=job, error="", exception=OSError("disk full"))
    tree = tree_of(gasoline, await s.send(gasoline))
    answer = analyze_causality(tree)
    assert answer["status"] == "failed" and answer["handled"] == []
    assert [(c["role"], c["status"]) for c in answer["chain"]] == [
        ("caller", "OK"),
        ("root_cause", "ERROR"),
    ]
    what = section(generate("pr_summary", tree)["content"], "What failed")
    assert what.strip() == (
        "`worker write report` failed under `worker nightly export`,"
        " which recorded no error of its own."
    )


async def test_a_server_span_without_a_code_under_a_failed_call_handled_nothing(
    gasoline: Running,
) -> None:
    """The callee's server span recorded no status and no code, but its caller got a 500:
    the exception below it propagated, and stays the root cause."""
    s = Scenario()
    gateway = s.span(
        "gateway", "GET /me", 0, 40, kind=SERVER, attrs=http_server("GET", "/me", 500), error=""
    )
    call = s.span(
        "gateway",
        "GET users",
        2,
        38,
        parent=gateway,
        kind=CLIENT,
        attrs=http_client("GET", "http://users/me", 500),
        error="",
    )
    users = s.span("users", "handle /me", 4, 36, parent=call, kind=SERVER)
    s.span("users", "load user", 5, 30, parent=users, error="", exception=KeyError("me"))
    answer = analyze_causality(tree_of(gasoline, await s.send(gasoline)))
    assert answer["status"] == "failed" and answer["handled"] == []
    assert answer["root_cause"]["message"] == "KeyError: 'me'"
    assert [c["role"] for c in answer["chain"]] == [
        "propagated",
        "propagated",
        "caller",
        "root_cause",
    ]
