"""`gasoline mcp` driven by the official MCP client over stdio, against data from the
real OTel SDK exporters: embedded mode, bridged to a running daemon, two agents at once."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry.trace import SpanKind

from collector.generate import FORMATS, GENERATORS
from collector.interact import ACTIONS
from collector.model import LEVELS
from collector.observe import VIEWS
from collector.tools import ANALYSES, CONFIGURE_ACTIONS, TOOLS, Buffer, Op
from tests.conftest import Running, wait_for
from tests.scenarios import Scenario, db, http_client, http_server

GASOLINE = str(Path(sys.executable).parent / "gasoline")


@asynccontextmanager
async def mcp_session(tmp_path: Path, *args: str) -> AsyncIterator[tuple[ClientSession, Path]]:
    errlog = tmp_path / f"mcp-stderr-{id(args)}.log"
    with errlog.open("w") as err:
        params = StdioServerParameters(
            command=GASOLINE, args=["mcp", *args], env={"HOME": str(tmp_path)}
        )
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session, errlog


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    text = result.content[0].text  # type: ignore[union-attr]
    assert len(text.encode()) <= 10_240 or tool != "observe", len(text)
    answer: dict[str, Any] = json.loads(text)
    assert answer == result.structured_content
    return answer


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error
    return str(result.content[0].text)  # type: ignore[union-attr]


def failing_checkout() -> Scenario:
    s = Scenario()
    fetch = s.span(
        "browser",
        "fetch POST /api/orders",
        0,
        130,
        kind=SpanKind.CLIENT,
        attrs=http_client("POST", "http://localhost:8000/api/orders", 500),
        error="",
    )
    server = s.span(
        "api",
        "POST /api/orders",
        10,
        120,
        parent=fetch,
        kind=SpanKind.SERVER,
        attrs=http_server("POST", "/api/orders", 500),
        error="",
    )
    s.span(
        "api",
        "INSERT orders",
        20,
        115,
        parent=server,
        kind=SpanKind.CLIENT,
        attrs=db("INSERT INTO orders"),
        error="canceling statement due to statement timeout",
        exception=TimeoutError("canceling statement due to statement timeout"),
    )
    return s


async def test_bridged_to_a_running_daemon_two_agents_share_its_data(
    gasoline: Running, tmp_path: Path
) -> None:
    trace_id = await failing_checkout().send(gasoline)
    async with (
        mcp_session(tmp_path, "--url", gasoline.api) as (first, _),
        mcp_session(tmp_path, "--url", gasoline.api) as (second, _),
    ):
        tools = {t.name: t for t in (await first.list_tools()).tools}
        assert set(tools) == {"observe", "analyze", "configure", "generate", "interact"}
        what = tools["observe"].input_schema["properties"]["what"]
        assert "errors" in json.dumps(what) and what.get("description")

        errors = await call(first, "observe", what="errors")
        assert errors["metadata"]["total_count"] == 3
        assert {e["trace_id"] for e in errors["events"]} == {trace_id}
        assert "query_time_ms" in errors["metadata"]

        answer = await call(second, "analyze", type="causality", trace_id=trace_id)
        assert answer["root_cause"]["name"] == "INSERT orders"
        assert [c["role"] for c in answer["chain"]] == ["propagated", "propagated", "root_cause"]

        event = await call(
            first,
            "configure",
            action="custom_event",
            event={"message": "deploy v42", "trace_id": trace_id},
        )
        await gasoline.settled()
        seen = await call(second, "observe", what="logs", filter={"text": "deploy"})
        assert [e["message"] for e in seen["events"]] == ["deploy v42"]
        assert seen["events"][0]["id"] == event["event_id"]


async def test_tool_schemas_list_exactly_the_values_the_toolbox_accepts(
    gasoline: Running, tmp_path: Path
) -> None:
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        schemas = {t.name: t.input_schema for t in (await session.list_tools()).tools}

    def offered(schema: dict[str, Any]) -> list[str]:
        [choice] = [s for s in schema.get("anyOf", [schema]) if "enum" in s]
        return list(choice["enum"])

    def arg(tool: str, name: str) -> list[str]:
        return offered(schemas[tool]["properties"][name])

    assert list(schemas) == list(TOOLS)
    assert arg("observe", "what") == list(VIEWS)
    assert offered(schemas["observe"]["$defs"]["Filter"]["properties"]["level"]) == list(LEVELS)
    assert arg("analyze", "type") == list(ANALYSES)
    assert arg("configure", "action") == list(CONFIGURE_ACTIONS)
    assert arg("configure", "buffer") == list(Buffer)
    assert arg("configure", "op") == list(Op)
    for model in ("NoiseRuleArgs", "EventArgs"):
        level = schemas["configure"]["$defs"][model]["properties"]["level"]
        assert offered(level) == list(LEVELS)
    assert arg("generate", "type") == list(GENERATORS)
    assert set(arg("generate", "format")) == {f for fs in FORMATS.values() for f in fs}
    assert arg("interact", "action") == list(ACTIONS)


async def test_embedded_mode_runs_the_receivers_itself(tmp_path: Path) -> None:
    config = tmp_path / "gasoline.yaml"
    config.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '127.0.0.1:0'}, "
        "http: {endpoint: '127.0.0.1:0'}}}}\nservice: {api: {endpoint: '127.0.0.1:0'}}\n"
    )
    async with mcp_session(tmp_path, "--config", str(config)) as (session, errlog):
        await wait_for(lambda: "receivers started here" in errlog.read_text())
        ports = dict(re.findall(r"(grpc|http|api) (\d+)", errlog.read_text()))
        running = _Remote(ports)
        trace_id = await failing_checkout().send(running)  # type: ignore[arg-type]
        # The embedded daemon acknowledged the export; storing is asynchronous.
        async with asyncio.timeout(5):
            while not (traces := await call(session, "observe", what="traces"))["traces"]:
                await asyncio.sleep(0.01)
        [summary] = traces["traces"]
        assert summary["trace_id"] == trace_id and summary["error_count"] == 3
        tree = await call(session, "observe", what="trace", filter={"trace_id": trace_id})
        assert [s["name"] for s in tree["trace"]["spans"]] == [
            "fetch POST /api/orders",
            "POST /api/orders",
            "INSERT orders",
        ]
        assert tree["trace"]["spans"][2]["error"].startswith("TimeoutError")


async def test_bad_arguments_give_error_results_that_say_what_is_allowed(
    gasoline: Running, tmp_path: Path
) -> None:
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        message = await call_error(session, "observe", what="everything")
        assert "timeline" in message and "services" in message
        assert "pydantic.dev" not in message
        message = await call_error(session, "observe", what="trace")
        assert "needs filter.trace_id" in message
        message = await call_error(session, "observe", filter={"level": "loud"})
        assert "level" in message
        message = await call_error(session, "analyze", type="causality", trace_id="abc")
        assert "not a trace id" in message
        message = await call_error(session, "analyze", type="causality", trace_id="1" * 32)
        assert "is not in the store" in message
        message = await call_error(session, "observe", filter={"since": "someday"})
        assert "since: 'someday' is not a time" in message


async def test_noise_rules_hide_items_from_answers(gasoline: Running, tmp_path: Path) -> None:
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        for message in ("GET /healthz ok", "user signed in"):
            await call(session, "configure", action="custom_event", event={"message": message})
        await gasoline.settled()
        rule = await call(session, "configure", action="noise_rule", rule={"pattern": "healthz"})
        seen = await call(session, "observe", what="logs")
        assert [e["message"] for e in seen["events"]] == ["user signed in"]
        await call(
            session, "configure", action="noise_rule", op="remove", rule_id=rule["rule"]["rule_id"]
        )
        seen = await call(session, "observe", what="logs")
        assert len(seen["events"]) == 2
        cleared = await call(session, "configure", action="clear")
        assert cleared["cleared"]["records"] == 2


class _Remote:
    """Just enough of ``Running`` for ``Scenario.send`` against another process."""

    def __init__(self, ports: dict[str, str]) -> None:
        self.grpc = f"127.0.0.1:{ports['grpc']}"

    async def settled(self) -> None:
        return None


async def test_a_long_message_keeps_its_end_and_comes_whole_by_id(
    gasoline: Running, tmp_path: Path
) -> None:
    frames = "".join(
        f'  File "app/step{i}.py", line {i}, in step{i}\n    step{i + 1}()\n' for i in range(40)
    )
    traceback = f"Traceback (most recent call last):\n{frames}KeyError: 'customer_id'"
    status, answer = await gasoline.post_json(
        "/event", {"level": "error", "service": "api", "message": traceback}
    )
    assert status == 200
    await gasoline.settled()
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        [event] = (await call(session, "observe", what="logs"))["events"]
        shown = event["message"]
        assert shown.startswith("Traceback (most recent call last):")
        assert shown.endswith("KeyError: 'customer_id'") and "chars cut" in shown
        whole = await call(session, "observe", event_ids=[answer["event_id"]])
        assert whole["view"] == "events" and whole["events"][0]["message"] == traceback
        missing = await call(session, "observe", event_ids=["999999"])
        assert missing["events"] == [] and missing["metadata"]["not_stored"] == ["999999"]
