"""``gasoline test``: real pytest (in an interpreter with nothing of Gasoline installed),
real ``node --test``, a JUnit XML report, and a test that calls an OTel-instrumented
backend, all run through the real command against a daemon on port 0."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tests.conftest import GASOLINE, Running, wait_for

SITE = Path(
    subprocess.check_output(
        [
            sys.executable,
            "-c",
            "import pytest, os; print(os.path.dirname(os.path.dirname(pytest.__file__)))",
        ],
        text=True,
    ).strip()
)
PYTEST_PARTS = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py.py")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A venv of the system interpreter holding pytest and nothing else (no aiohttp, no
    protobuf, no Gasoline): what a user's project environment may look like."""
    env = tmp_path_factory.mktemp("userenv") / "env"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(env)], check=True)
    [site] = list(env.glob("lib/python3*/site-packages"))
    for part in PYTEST_PARTS:
        (site / part).symlink_to(SITE / part)
    for info in SITE.glob("*.dist-info"):
        if info.name.startswith(("pytest-", "pluggy-", "iniconfig-", "packaging-", "pygments-")):
            (site / info.name).symlink_to(info)
    python = str(env / "bin" / "python")
    probe = subprocess.run([python, "-c", "import aiohttp"], capture_output=True)
    assert probe.returncode != 0  # really bare
    return python


async def run_test_command(
    gasoline: Running | None, cwd: Path, *command: str, url: str = ""
) -> tuple[int, str, str]:
    """``gasoline test ... command`` in ``cwd``; (exit status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEPARENT", "PYTHONPATH")}
    proc = await asyncio.create_subprocess_exec(
        GASOLINE,
        "test",
        "--url",
        url or (gasoline.api if gasoline else ""),
        "--spool-dir",
        str(cwd.parent / "spool"),
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _records(gasoline: Running, source: str) -> list[Any]:
    return [
        r for r in gasoline.daemon.pipeline.store.records.iter_newest_first() if r.source == source
    ]


def _run_record(gasoline: Running) -> Any:
    runs = [
        r
        for r in _records(gasoline, "test")
        if r.attributes.get("gasoline.test.kind") == "test_run"
    ]
    return runs[0] if runs else None


def _flatten(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    stack = list(spans)
    while stack:
        span = stack.pop()
        out[span["name"]] = span
        stack.extend(span["children"])
    return out


async def _tree(gasoline: Running, trace_id: str) -> dict[str, dict[str, Any]]:
    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert status == 200, doc
    return _flatten(doc["spans"])


@pytest.fixture
def backend(gasoline: Running) -> Iterator[str]:
    """An OTel-instrumented HTTP backend: it continues the caller's traceparent in a SERVER
    span exported over OTLP/HTTP to the daemon (the SDK's own exporter)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "orders-api"}))
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=gasoline.http + "/v1/traces"))
    )
    tracer = provider.get_tracer("backend")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ctx = TraceContextTextMapPropagator().extract(
                {k.lower(): v for k, v in self.headers.items()}
            )
            with tracer.start_as_current_span("GET /orders", context=ctx, kind=SpanKind.SERVER):
                body = b'{"orders": []}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    provider.shutdown()


PYTEST_PROJECT = """
import os
import urllib.request

def test_passes():
    assert 1 + 1 == 2

def test_fails_with_a_diff():
    got = {"total": 3, "items": ["a", "b"]}
    assert got == {"total": 4, "items": ["a", "b"]}

def test_errors(no_such_fixture):
    pass

def test_calls_the_backend():
    # What an instrumented client does with the environment carrier: send the running
    # test's context along.
    request = urllib.request.Request(os.environ["BACKEND"] + "/orders",
                                     headers={"traceparent": os.environ["TRACEPARENT"]})
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
"""


async def test_pytest_cases_become_spans_of_the_run_trace(
    gasoline: Running,
    bare_python: str,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_shop.py").write_text(PYTEST_PROJECT)
    monkeypatch.setenv("BACKEND", backend)
    code, out, err = await run_test_command(
        gasoline, project, bare_python, "-m", "pytest", "-p", "no:cacheprovider"
    )
    assert code == 1, err  # pytest's own exit status: tests failed
    assert "1 failed, 2 passed, 1 error" in out  # pytest's output passes through

    await wait_for(lambda: _run_record(gasoline) is not None)
    run = _run_record(gasoline)
    assert run.attributes["test.suite.run.status"] == "failure"
    assert run.attributes["gasoline.test.report"] == "pytest-plugin"
    trace_id = run.trace_id.hex()
    await gasoline.settled()

    spans = await _tree(gasoline, trace_id)
    root = next(s for s in spans.values() if s["parent_span_id"] is None)
    assert root["attributes"]["test.suite.run.status"] == "failure"
    passed = spans["test_shop.py::test_passes"]
    assert passed["attributes"]["test.case.result.status"] == "pass"
    assert passed["attributes"]["code.filepath"] == "test_shop.py"
    assert passed["attributes"]["code.lineno"] == 5
    failed = spans["test_shop.py::test_fails_with_a_diff"]
    assert failed["status"] == "ERROR"
    assert failed["attributes"]["test.case.result.status"] == "fail"
    assertion = failed["attributes"]["gasoline.test.assertion"]
    assert "assert {'total': 3" in assertion and "{'total': 4" in assertion
    assert "Differing items" in failed["events"][0]["attributes"]["exception.stacktrace"]
    errored = spans["test_shop.py::test_errors"]
    assert errored["attributes"]["gasoline.test.outcome"] == "error"
    assert "fixture 'no_such_fixture' not found" in errored["status_message"]
    assert spans["test_shop.py"]["attributes"]["test.suite.name"] == "test_shop.py"

    # The backend's SERVER span sits under the test that called it.
    await wait_for(lambda: "GET /orders" in _flatten_sync(gasoline, run.trace_id))
    spans = await _tree(gasoline, trace_id)
    server = spans["GET /orders"]
    assert server["kind"] == "SERVER" and server["service"] == "orders-api"
    assert server["parent_span_id"] == spans["test_shop.py::test_calls_the_backend"]["span_id"]

    # Each case is an event with source "test" on the timeline, linked to its span.
    cases = [
        r
        for r in _records(gasoline, "test")
        if r.attributes.get("gasoline.test.kind") == "test_case"
    ]
    assert {r.message.split()[0] for r in cases} == {"PASSED", "FAILED", "ERROR"}
    assert all(r.trace_id == run.trace_id for r in cases)


def _flatten_sync(gasoline: Running, trace_id: bytes) -> set[str]:
    from collector.query import trace_tree

    tree = trace_tree(gasoline.daemon.pipeline.store, trace_id)
    return {n.span.name for n in tree.nodes.values()} if tree else set()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_node_builtin_runner(gasoline: Running, tmp_path: Path) -> None:
    project = tmp_path / "web"
    project.mkdir()
    (project / "cart.test.js").write_text(
        textwrap.dedent(
            """
            const test = require('node:test');
            const assert = require('node:assert');
            test('adds items', () => { assert.strictEqual(1 + 1, 2); });
            test('applies the discount', () => { assert.strictEqual(90, 80); });
            """
        )
    )
    code, out, _ = await run_test_command(gasoline, project, "node", "--test")
    assert code == 1
    assert "applies the discount" in out  # node's own reporter still prints
    await wait_for(lambda: _run_record(gasoline) is not None)
    run = _run_record(gasoline)
    assert run.attributes["gasoline.test.report"] == "junit"
    await gasoline.settled()
    spans = await _tree(gasoline, run.trace_id.hex())
    [bad] = [s for s in spans.values() if s["name"].endswith("applies the discount")]
    assert bad["attributes"]["test.case.result.status"] == "fail"
    assert "90" in bad["status_message"] and "80" in bad["status_message"]
    [good] = [s for s in spans.values() if s["name"].endswith("adds items")]
    assert good["attributes"]["test.case.result.status"] == "pass"


JUNIT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="checkout" tests="2" failures="1">
    <testcase classname="checkout.PaymentTest" name="charges the card" time="0.012" file="src/test/PaymentTest.java" line="14"/>
    <testcase classname="checkout.PaymentTest" name="refunds" time="0.030">
      <failure message="expected 200 but was 500" type="AssertionError">java.lang.AssertionError: expected 200 but was 500
        at checkout.PaymentTest.refunds(PaymentTest.java:31)</failure>
    </testcase>
  </testsuite>
</testsuites>
"""


async def test_junit_report_named_on_the_command_line(gasoline: Running, tmp_path: Path) -> None:
    project = tmp_path / "java"
    project.mkdir()
    report = tmp_path / "out.xml"
    script = (
        f"import pathlib, sys; pathlib.Path({str(report)!r}).write_text({JUNIT!r}); sys.exit(1)"
    )
    code, _, _ = await run_test_command(gasoline, project, sys.executable, "-c", script)
    assert code == 1
    await wait_for(lambda: _run_record(gasoline) is not None)
    # Not at a usual path: nothing was found without --junit.
    assert _run_record(gasoline).attributes["gasoline.test.report"] == "none"

    proc = await asyncio.create_subprocess_exec(
        GASOLINE,
        "test",
        "--url",
        gasoline.api,
        "--junit",
        str(report),
        sys.executable,
        "-c",
        script,
        cwd=project,
    )
    assert await proc.wait() == 1
    await wait_for(lambda: _run_record(gasoline).attributes["gasoline.test.report"] == "junit")
    await gasoline.settled()
    spans = await _tree(gasoline, _run_record(gasoline).trace_id.hex())
    refunds = spans["checkout.PaymentTest.refunds"]
    assert refunds["attributes"]["test.case.result.status"] == "fail"
    assert refunds["attributes"]["test.suite.name"] == "checkout"
    assert refunds["status_message"] == "expected 200 but was 500"
    charges = spans["checkout.PaymentTest.charges the card"]
    assert charges["attributes"]["code.filepath"] == "src/test/PaymentTest.java"
    assert charges["attributes"]["code.lineno"] == 14


async def test_a_run_while_the_daemon_is_down_is_spooled_and_replayed(
    gasoline: Running, bare_python: str, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_one.py").write_text("def test_one():\n    assert True\n")
    code, out, err = await run_test_command(
        None,
        project,
        bare_python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        url="http://127.0.0.1:9",
    )
    assert code == 0 and "1 passed" in out
    assert "gasoline test: no Gasoline daemon took the output" in err and "kept in" in err
    assert "gasoline-run:" not in err  # messages name the command the user ran
    proc = await asyncio.create_subprocess_exec(
        GASOLINE.replace("gasoline", "gasoline-run"),
        "--url",
        gasoline.api,
        "--spool-dir",
        str(tmp_path / "spool"),
        "--flush-spool",
    )
    assert await proc.wait() == 0
    await wait_for(lambda: _run_record(gasoline) is not None)
    assert _run_record(gasoline).attributes["gasoline.test.pass"] == 1


async def test_interact_run_tests_goes_through_gasoline_test(
    start_daemon: Any, bare_python: str, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_one.py").write_text("def test_one():\n    assert 2 + 2 == 5\n")
    gasoline = await start_daemon(
        f"""
        interact:
          test_command: {{run: "{bare_python} -m pytest -q -p no:cacheprovider", cwd: "{project}"}}
        """
    )
    answer = await gasoline.daemon.tools.run("interact", {"action": "run_tests"})
    assert answer["exit_code"] == 1 and "1 failed" in "\n".join(answer["output_tail"])
    await wait_for(lambda: _run_record(gasoline) is not None)
    run = _run_record(gasoline)
    assert run.trace_id.hex() == answer["trace_id"]
    await gasoline.settled()
    spans = await _tree(gasoline, answer["trace_id"])
    [root] = [s for s in spans.values() if s["parent_span_id"] is None]  # a true root
    assert root["attributes"]["test.suite.run.status"] == "failure"
    assert spans["test_one.py::test_one"]["attributes"]["test.case.result.status"] == "fail"


async def test_a_backend_trace_without_the_tests_context_is_linked_as_inferred(
    gasoline: Running,
    bare_python: str,
    backend: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "test_plain.py").write_text(
        "import os, urllib.request\n\n"
        "def test_orders_are_listed():\n"
        "    with urllib.request.urlopen(os.environ['BACKEND'] + '/orders') as answer:\n"
        "        assert answer.read() == b'[]'\n"  # fails: the body is {"orders": []}
    )
    monkeypatch.setenv("BACKEND", backend)
    code, _, _ = await run_test_command(
        gasoline, project, bare_python, "-m", "pytest", "-q", "-p", "no:cacheprovider"
    )
    assert code == 1
    await wait_for(lambda: _run_record(gasoline) is not None)
    await wait_for(
        lambda: any(
            s.name == "GET /orders" for s in gasoline.daemon.store.spans.iter_newest_first()
        )
    )
    await gasoline.settled()
    answer = await gasoline.daemon.tools.run("observe", {"what": "tests"})
    [failure] = answer["runs"][0]["failures"]
    [linked] = failure["backend_traces"]
    assert linked["linked_by"] == "inferred" and linked["name"] == "GET /orders"
    assert linked["trace_id"] != answer["runs"][0]["trace_id"]


def test_the_plugin_never_fails_a_run_it_cannot_record(bare_python: str, tmp_path: Path) -> None:
    from receivers.test_run.pytest_plugin import PLUGIN_DIR, PLUGIN_MODULE

    (tmp_path / "test_one.py").write_text("def test_one():\n    assert True\n")
    env = {
        **os.environ,
        "PYTHONPATH": str(PLUGIN_DIR),
        "PYTEST_PLUGINS": PLUGIN_MODULE,
        "TRACEPARENT": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        "GASOLINE_TEST_RESULTS": str(tmp_path / "gone" / "results.jsonl"),
    }
    done = subprocess.run(
        [bare_python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "1 passed" in done.stdout
    assert done.stderr.count("gasoline test: test results not recorded") == 1
