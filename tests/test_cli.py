"""The `gasoline` command as a user runs it: a real daemon process and the CLI against it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import serve_process
from tests.test_otlp_http import otlp_json, span

GASOLINE = str(Path(sys.executable).parent / "gasoline")
TRACE = "5b8efff798038103d269b633813fc60c"


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GASOLINE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(home), "GASOLINE_URL": ""},
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    with serve_process(tmp_path) as (_, urls):
        yield urls


def _post(url: str, payload: object) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["status"], ["trace"], ["traces"], ["timeline"], ["mcp"]]
)
def test_help_for_every_command(command: list[str], tmp_path: Path) -> None:
    result = run(*command, "--help", home=tmp_path)
    assert result.returncode == 0 and "usage: gasoline" in result.stdout
    if command == ["mcp"]:
        text = " ".join(result.stdout.split())
        assert all(
            tool in text for tool in ("observe", "analyze", "configure", "generate", "interact")
        )


def test_trace_renders_a_tree_with_timings_and_errors(
    served: dict[str, str], tmp_path: Path
) -> None:
    spans = [
        span("eee19b7ec3c1b174", "GET /checkout"),
        span(
            "eee19b7ec3c1b175",
            "SELECT orders",
            parent="eee19b7ec3c1b174",
            status={"code": 2, "message": "deadlock detected"},
        ),
        span("eee19b7ec3c1b176", "render", parent="eee19b7ec3c1b174"),
    ]
    _post(served["OTLP/HTTP"] + "/v1/traces", otlp_json(spans))
    _post(
        served["API"] + "/events",
        {"events": [{"message": "payment failed", "level": "error", "trace_id": TRACE}]},
    )
    # The answer above means accepted; storing is asynchronous, so retry the read briefly.
    for _ in range(100):
        result = run("trace", TRACE, "--url", served["API"], home=tmp_path)
        if result.returncode == 0 and "payment failed" in result.stdout:
            break
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"trace {TRACE}") and "3 span(s), 1 error(s)" in lines[0]
    assert any(re.match(r"checkout  GET /checkout\s+5\.0 ms \|█+\|", line) for line in lines)
    assert any(re.match(r"├─ ✗ checkout  SELECT orders", line) for line in lines)
    assert any("deadlock detected" in line for line in lines)
    assert any(re.match(r"└─ checkout  render", line) for line in lines)
    assert any(re.search(r"error\s+custom: payment failed", line) for line in lines)

    result = run("status", "--url", served["API"], home=tmp_path)
    assert result.returncode == 0 and "3 spans in 1 trace, 1 record" in result.stdout
    assert "receiver otlp/grpc: running  nothing received yet" in result.stdout
    result = run("traces", "--url", served["API"], home=tmp_path)
    assert TRACE in result.stdout and "GET /checkout" in result.stdout
    result = run("trace", TRACE, "--json", "--url", served["API"], home=tmp_path)
    assert json.loads(result.stdout)["span_count"] == 3
    result = run("timeline", "--level", "error", "--url", served["API"], home=tmp_path)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 3, result.stdout
    # The service once, and why the span failed.
    assert re.search(
        r"error\s+checkout\s+SELECT orders -- deadlock detected  \[5b8efff7\]$", lines[0]
    )
    assert re.search(r"error\s+custom\s+payment failed  \[5b8efff7\]", lines[1])
    assert lines[2] == "2 shown of 2"


def test_timeline_columns_hold_long_service_names(served: dict[str, str], tmp_path: Path) -> None:
    service = "a-very-long-service-name-for-the-payments-gateway"
    _post(
        served["OTLP/HTTP"] + "/v1/traces", otlp_json([span("c3c3c3c3c3c3c3c3", "charge")], service)
    )
    events = [{"message": f"line {i}", "level": "info", "service": "api"} for i in range(20)]
    _post(served["API"] + "/events", {"events": events})
    for _ in range(100):  # storing is asynchronous: retry the read briefly
        result = run("timeline", "--limit", "3", "--url", served["API"], home=tmp_path)
        lines = result.stdout.splitlines()
        if "line 19" in result.stdout:
            break
    assert result.returncode == 0 and len(lines) == 4, result.stdout
    assert all(line.index("line ") == lines[0].index("line ") for line in lines[:3])
    assert lines[3].startswith("3 shown") and "at least" not in lines[3] and "--cursor" in lines[3]
    result = run("timeline", "--service", service, "--url", served["API"], home=tmp_path)
    [row, _] = result.stdout.splitlines()
    assert "a-very-long-s…  charge" in row and service not in row


def test_unknown_trace_and_bad_id_are_clear(served: dict[str, str], tmp_path: Path) -> None:
    result = run("trace", "0" * 31 + "1", "--url", served["API"], home=tmp_path)
    assert result.returncode == 1 and "is not in the store" in result.stderr
    result = run("trace", "nope", "--url", served["API"], home=tmp_path)
    assert result.returncode == 1 and "is not a trace id" in result.stderr


def test_daemon_down_says_how_to_start_it(tmp_path: Path) -> None:
    result = run("status", "--url", "http://127.0.0.1:9", home=tmp_path)
    assert result.returncode == 1
    assert "cannot reach the daemon at http://127.0.0.1:9" in result.stderr
    assert "gasoline serve" in result.stderr


@pytest.mark.parametrize("command", ["status", "traces", "mcp"])
def test_url_without_scheme_is_named_not_taken_for_a_daemon_down(
    tmp_path: Path, command: str
) -> None:
    result = run(command, "--url", "localhost:7890", home=tmp_path)
    assert result.returncode == 1
    assert "--url: 'localhost:7890' is not an http(s) URL" in result.stderr
    assert "cannot reach" not in result.stderr


@pytest.mark.parametrize("flag", ["--grpc-port", "--http-port", "--api-port"])
def test_a_busy_port_is_one_clear_line(tmp_path: Path, flag: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        ports = {"--grpc-port": "0", "--http-port": "0", "--api-port": "0", flag: port}
        result = run("serve", *(x for pair in ports.items() for x in pair), home=tmp_path)
    assert result.returncode == 1
    # (The tests run asyncio in debug mode, which may log slow steps: only ours are counted.)
    [line] = [line for line in result.stderr.splitlines() if "asyncio" not in line]
    assert f"cannot bind 127.0.0.1:{port}: address already in use" in line
    assert "gasoline status" in line and "GRPC_VERBOSITY" not in result.stderr


def test_bad_config_fails_before_binding_and_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("service:\n  store:\n    ttl: sometimes\n")
    result = run("serve", "--config", str(config), home=tmp_path)
    assert result.returncode == 1
    assert "service.store.ttl: 'sometimes' is not a duration" in result.stderr
    result = run("serve", "--api-port", "70000", home=tmp_path)
    assert result.returncode == 2 and "--api-port 70000 is not a port" in result.stderr


def test_home_config_file_is_used(tmp_path: Path) -> None:
    (tmp_path / ".gasoline").mkdir()
    (tmp_path / ".gasoline" / "config.yaml").write_text("service: {store: {max_spans: nope}}\n")
    result = run("serve", home=tmp_path)
    assert result.returncode == 1
    assert "service.store.max_spans: expected an integer, got 'nope'" in result.stderr


def test_short_trace_ids_are_accepted_everywhere(served: dict[str, str], tmp_path: Path) -> None:
    """The timeline shows 8-digit trace ids; every command and tool takes them back."""
    twin = TRACE[:8] + "0" * 23 + "1"  # same first 8 digits as TRACE
    _post(served["OTLP/HTTP"] + "/v1/traces", otlp_json([span("a1a1a1a1a1a1a1a1", "GET /orders")]))
    _post(
        served["OTLP/HTTP"] + "/v1/traces",
        otlp_json([span("b2b2b2b2b2b2b2b2", "GET /twin", trace=twin)]),
    )
    url = ("--url", served["API"])
    result = run("trace", TRACE[:12], *url, home=tmp_path)
    assert result.returncode == 0 and f"trace {TRACE}" in result.stdout
    assert "GET /orders" in result.stdout and "GET /twin" not in result.stdout
    result = run("timeline", "--trace-id", TRACE[:10], *url, home=tmp_path)
    assert result.returncode == 0 and "GET /orders" in result.stdout
    assert "GET /twin" not in result.stdout
    result = run("trace", TRACE[:8], *url, home=tmp_path)  # two traces start so
    assert result.returncode == 1
    assert TRACE in result.stderr and twin in result.stderr and "several" in result.stderr
    result = run("trace", "abcdef", *url, home=tmp_path)  # too short to be unique
    assert result.returncode == 1 and "prefix of 8 or more" in result.stderr
    for tool, args in (
        ("observe", {"what": "trace", "filter": {"trace_id": TRACE[:12]}}),
        ("analyze", {"type": "causality", "trace_id": TRACE[:12]}),
    ):
        request = urllib.request.Request(
            f"{served['API']}/v1/tools/{tool}",
            data=json.dumps(args).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert TRACE in response.read().decode()
