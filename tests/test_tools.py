"""The tools behind MCP, through the daemon's toolbox: latency, correlate, checkpoints
and regression, redaction, interact."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from collector.tools import ToolInputError
from tests.conftest import Running
from tests.scenarios import T0, Scenario, db, http_server

SERVER, CLIENT = SpanKind.SERVER, SpanKind.CLIENT


async def run(gasoline: Running, tool: str, **args: Any) -> dict[str, Any]:
    return await gasoline.daemon.tools.run(tool, args)


def feed(n_queries: int, ms_each: float, *, error: bool = False) -> Scenario:
    s = Scenario()
    end = 5 + n_queries * (ms_each + 1) + 5
    server = s.span(
        "api",
        "GET /feed",
        0,
        end,
        kind=SERVER,
        attrs=http_server("GET", "/feed", 200),
        error="boom" if error else None,
    )
    for i in range(n_queries):
        start = 5 + i * (ms_each + 1)
        s.span(
            "api",
            "SELECT author",
            start,
            start + ms_each,
            parent=server,
            kind=CLIENT,
            attrs=db("SELECT * FROM users WHERE id = $1"),
        )
    return s


async def test_latency_finds_the_n_plus_one_pattern(gasoline: Running) -> None:
    trace_id = await feed(40, 10).send(gasoline)
    answer = await run(gasoline, "analyze", type="latency", trace_id=trace_id)
    [pattern] = answer["repeated_calls"]
    assert (pattern["name"], pattern["count"], pattern["sequential"]) == ("SELECT author", 40, True)
    assert pattern["total_ms"] == 400.0 and pattern["database"] is True
    assert "N+1" in pattern["hint"] and "SELECT author" in answer["summary"]
    assert answer["latency_breakdown"]["database_ms"] == 400.0
    tree = await run(gasoline, "observe", what="trace", filter={"trace_id": trace_id})
    [root, folded] = tree["trace"]["spans"]
    assert root["name"] == "GET /feed"
    assert folded["repeated"] == 40 and folded["total_ms"] == 400.0
    assert len(json.dumps(tree)) < 2000


async def test_correlate_says_how_each_item_was_linked(gasoline: Running) -> None:
    trace_id = await feed(1, 5).send(gasoline)
    await run(
        gasoline,
        "configure",
        action="custom_event",
        event={
            "message": "clicked pay",
            "source": "browser",
            "trace_id": trace_id,
            "correlation_id": "req-7",
        },
    )
    await run(
        gasoline,
        "configure",
        action="custom_event",
        event={"message": "gateway saw req-7", "correlation_id": "req-7"},
    )
    await gasoline.settled()
    answer = await run(gasoline, "analyze", type="correlate", correlation_id="req-7")
    links = {item["message"]: item["linked_by"] for item in answer["linked"]}
    assert links["clicked pay"] == "correlation_id"
    assert links["gateway saw req-7"] == "correlation_id"
    assert links["api: GET /feed"] == "trace_id"
    assert answer["trace_ids"] == [trace_id]


async def test_correlate_infers_unlinked_records_in_the_trace_window(gasoline: Running) -> None:
    s = feed(1, 5)
    trace_id = await s.send(gasoline)
    inside = T0 // 1_000_000 + 3  # ms, while GET /feed ran
    far = T0 // 1_000_000 + 60_000
    for message, ms, service in (
        ("pool saturated", inside, "api"),
        ("cron ran", inside, "cron"),
        ("much later", far, "api"),
    ):
        await run(
            gasoline,
            "configure",
            action="custom_event",
            event={"message": message, "timestamp": ms, "service": service},
        )
    await gasoline.settled()
    answer = await run(gasoline, "analyze", type="correlate", trace_id=trace_id)
    inferred = {i["message"]: i for i in answer["linked"] if i.get("inferred")}
    assert set(inferred) == {"pool saturated", "cron ran"}
    assert inferred["pool saturated"]["linked_by"] == "time_window"
    assert inferred["pool saturated"]["confidence"] > inferred["cron ran"]["confidence"]


async def test_checkpoint_baseline_and_regression(
    gasoline: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(3):
        await feed(2, 10).send(gasoline)
    saved = await run(gasoline, "configure", action="set_baseline")
    path = tmp_path / ".gasoline" / "checkpoints" / "baseline.json"
    assert saved["path"] == str(path) and path.is_file()
    assert json.loads(path.read_text())["version"] == 1
    same = await run(gasoline, "analyze", type="regression")
    assert same["regressions"] == [] and "No regression" in same["summary"]
    await run(gasoline, "configure", action="clear")
    for _ in range(3):
        await feed(2, 60, error=True).send(gasoline)
    worse = await run(gasoline, "analyze", type="regression")
    [regression] = worse["regressions"]
    assert regression["operation"] == "api GET /feed"
    assert any(f.startswith("p95 32.0 -> 132.0 ms") for f in regression["findings"])
    assert any("error rate 0.0% -> 100.0%" in f for f in regression["findings"])
    await run(gasoline, "configure", action="save_checkpoint", name="after-fix")
    assert (tmp_path / ".gasoline" / "checkpoints" / "after-fix.json").is_file()
    with pytest.raises(ToolInputError, match=r"name: '\.\./x' must be"):
        await run(gasoline, "configure", action="save_checkpoint", name="../x")
    with pytest.raises(ToolInputError, match="no checkpoint 'nope'"):
        await run(gasoline, "analyze", type="regression", baseline="nope")


async def test_redaction_patterns_change_at_runtime(gasoline: Running) -> None:
    await run(
        gasoline,
        "configure",
        action="custom_event",
        event={"message": "signup", "metadata": {"ssn": "123-45-6789", "user": "ann"}},
    )
    answer = await run(gasoline, "configure", action="redaction", op="add", pattern="^ssn$")
    assert "^ssn$" in answer["key_patterns"]
    await run(
        gasoline,
        "configure",
        action="custom_event",
        event={"message": "signup 2", "metadata": {"ssn": "987-65-4321"}},
    )
    await gasoline.settled()
    logs = await run(gasoline, "observe", what="logs", filter={"text": "signup 2"})
    assert logs["events"][0]["metadata"] == {"ssn": "[REDACTED]"}
    with pytest.raises(ToolInputError, match="is not a regex"):
        await run(gasoline, "configure", action="redaction", op="add", pattern="(")


async def test_interact_runs_only_allowlisted_commands_and_logs_output(  # type: ignore[no-untyped-def]
    start_daemon, tmp_path: Path
) -> None:
    script = tmp_path / "fake_tests.py"
    script.write_text(
        "import sys\nprint('collected 3 items')\nprint('1 failed', file=sys.stderr)\nsys.exit(1)\n"
    )
    gasoline = await start_daemon(
        f"""
        interact:
          commands:
            hello: {{run: "echo hello from gasoline"}}
          test_command: {{run: "{sys.executable} {script}"}}
          services:
            slow: {{run: "sleep 5", timeout: 0.2}}
        """
    )
    ok = await run(gasoline, "interact", action="run_command", name="hello")
    assert ok["exit_code"] == 0 and ok["output_tail"] == ["hello from gasoline"]
    tests = await run(gasoline, "interact", action="run_tests")
    assert tests["exit_code"] == 1
    assert sorted(tests["output_tail"]) == ["1 failed", "collected 3 items"]
    slow = await run(gasoline, "interact", action="restart_service", name="slow")
    assert slow["timed_out"] is True
    await gasoline.settled()
    timeline = await run(gasoline, "observe", what="logs", filter={"source": "interact"})
    messages = [e["message"] for e in timeline["events"]]
    assert "hello from gasoline" in messages
    assert any("exited with 1" in m for m in messages)
    # The tests ran through gasoline test: their output is the run's, service "tests".
    lines = await run(gasoline, "observe", what="logs", filter={"service": "tests"})
    assert "1 failed" in [e["message"] for e in lines["events"]]
    with pytest.raises(ToolInputError) as info:
        await run(gasoline, "interact", action="run_command", name="rm -rf /")
    assert "is not allowed (allowed commands: hello)" in str(info.value)
    assert "interact: {commands:" in str(info.value)
