"""MCP over HTTP at ``/mcp`` on the API port, driven by the official MCP client's streamable
HTTP transport against data from the real OTel SDK exporter: the same tools and answers
as ``gasoline mcp`` on stdio, behind the same edge (Host, token, no browser pages)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from collector.edge import Refusal
from tests.conftest import Running
from tests.test_local_safety import TOKEN, marker_daemon, request
from tests.test_mcp import GASOLINE, call, failing_checkout, mcp_session

TOOLS = {"observe", "analyze", "configure", "generate", "interact"}
JSON = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@asynccontextmanager
async def http_session(
    gasoline: Running, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers=headers) as http,
        streamable_http_client(gasoline.api + "/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def timeless(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without the one figure that differs from call to call."""
    answer["metadata"].pop("query_time_ms", None)
    return answer


def interact_call(request_id: int) -> bytes:
    """A JSON-RPC tools/call that runs the allowlisted command, as a client would POST it."""
    params = {"name": "interact", "arguments": {"action": "run_command", "name": "touch"}}
    message = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}
    return json.dumps(message).encode()


async def test_the_http_client_gets_the_tools_and_answers_of_stdio(
    gasoline: Running, tmp_path: Path
) -> None:
    trace_id = await failing_checkout().send(gasoline)
    async with (
        http_session(gasoline) as http,
        mcp_session(tmp_path, "--url", gasoline.api) as (stdio, _),
    ):
        tools = (await http.list_tools()).tools
        assert {t.name for t in tools} == TOOLS
        assert [t.model_dump() for t in tools] == [
            t.model_dump() for t in (await stdio.list_tools()).tools
        ]

        errors = await call(http, "observe", what="errors")
        assert errors["metadata"]["total_count"] == 3
        assert {e["trace_id"] for e in errors["events"]} == {trace_id}
        assert timeless(errors) == timeless(await call(stdio, "observe", what="errors"))

        answer = await call(http, "analyze", type="causality", trace_id=trace_id)
        assert answer["root_cause"]["name"] == "INSERT orders"
        assert [c["role"] for c in answer["chain"]] == ["propagated", "propagated", "root_cause"]
        assert timeless(answer) == timeless(
            await call(stdio, "analyze", type="causality", trace_id=trace_id)
        )

        # One daemon: what an agent puts there over HTTP, another reads over stdio.
        event = await call(
            http, "configure", action="custom_event", event={"message": "deploy v42"}
        )
        await gasoline.settled()
        seen = await call(stdio, "observe", what="logs", filter={"text": "deploy"})
        assert [e["id"] for e in seen["events"]] == [event["event_id"]]

        bad = await http.call_tool("observe", {"what": "trace"})
        assert bad.is_error and "needs filter.trace_id" in bad.content[0].text  # type: ignore[union-attr]


async def test_the_sdks_default_client_negotiates_and_gets_the_same_answers(
    gasoline: Running,
) -> None:
    trace_id = await failing_checkout().send(gasoline)
    async with Client(gasoline.api + "/mcp") as client, http_session(gasoline) as legacy:
        assert {t.name for t in (await client.list_tools()).tools} == TOOLS
        result = await client.call_tool("analyze", {"type": "causality", "trace_id": trace_id})
        assert not result.is_error
        answer = json.loads(result.content[0].text)  # type: ignore[union-attr]
        assert timeless(answer) == timeless(
            await call(legacy, "analyze", type="causality", trace_id=trace_id)
        )


async def test_no_stream_and_no_session_to_end(gasoline: Running) -> None:
    """Stateless: no session id is handed out, so the client sends no GET or DELETE; a
    client that tries gets 405, as the transport allows."""
    url = gasoline.api + "/mcp"
    async with (
        httpx2.AsyncClient() as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        for _ in range(2):  # each request stands alone
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS
    for method in ("GET", "DELETE", "PUT"):
        status, answer, headers = await request(method, url, Accept="text/event-stream")
        assert status == 405 and headers["Allow"] == "POST", method
        assert "POST" in answer["error"]


async def test_browser_pages_are_refused_and_run_nothing(start_daemon: Any, tmp_path: Path) -> None:
    gasoline, marker = await marker_daemon(start_daemon, tmp_path)
    url = gasoline.api + "/mcp"
    own = gasoline.api  # what the daemon's own page sends as Origin
    for origin in ("http://evil.example", "http://localhost:5173", own, "null"):
        for method in ("POST", "GET"):
            status, answer, _ = await request(
                method, url, body=interact_call(1), Origin=origin, **JSON
            )
            assert status == 403 and origin in answer["error"], (method, answer)
    assert not marker.exists()
    # A POST from outside the CORS allowlist is refused at the edge, as on every route;
    # everything else carrying an Origin by /mcp itself.
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["edge"]["refused"] | {"host": 0} == {
        "host": 0,
        "token": 0,
        "origin": 2,
        "browser_tool": 6,
        "content_type": 0,
    }
    status, answer, _ = await request("GET", url, Origin="http://localhost:5173", **JSON)
    assert "interact" in answer["error"] and "browser page" in answer["error"]

    status, answer, _ = await request(
        "POST", url, body=interact_call(2), **(JSON | {"Content-Type": "text/plain"})
    )
    assert status == 415 and "application/json" in answer["error"]
    assert not marker.exists()

    # The same request without Origin, as an agent sends it, runs the command.
    status, answer, _ = await request("POST", url, body=interact_call(3), **JSON)
    assert status == 200 and answer["id"] == 3 and not answer["result"].get("isError"), answer
    assert marker.exists()


async def test_a_foreign_host_is_refused(gasoline: Running) -> None:
    for host in ("evil.example", "rebound.example:7890"):
        for method in ("POST", "GET"):
            status, answer, _ = await request(
                method, gasoline.api + "/mcp", body=interact_call(1), Host=host, **JSON
            )
            assert status == 421 and "service.api.allowed_hosts" in answer["error"]
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["edge"]["refused"]["host"] == 4


async def test_with_a_token_mcp_requires_it(
    start_daemon: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GASOLINE_TOKEN", raising=False)
    gasoline: Running = await start_daemon(f"service: {{api: {{auth: {{token: {TOKEN}}}}}}}")
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
        status, answer, _ = await request(
            "POST", gasoline.api + "/mcp", body=interact_call(1), **(JSON | headers)
        )
        assert status == 401 and "service.api.auth.token" in answer["error"]
        refused = False
        try:
            async with http_session(gasoline, headers):
                pass
        except* MCPError:  # raised through the client's task groups
            refused = True
        assert refused
    async with http_session(gasoline, {"Authorization": f"Bearer {TOKEN}"}) as session:
        assert {t.name for t in (await session.list_tools()).tools} == TOOLS
    assert gasoline.daemon.edge.refused[Refusal.TOKEN] == 4


def _without_asyncio_debug(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k != "PYTHONASYNCIODEBUG"}


async def test_gasoline_serve_prints_the_url_and_stays_quiet(tmp_path: Path) -> None:
    """The URL to put in an agent's config comes from `gasoline serve`'s own output, and
    serving MCP adds nothing else to it (the SDK logs at INFO per request)."""
    proc = await asyncio.create_subprocess_exec(
        GASOLINE,
        *("serve", "--grpc-port", "0", "--http-port", "0", "--api-port", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # As a user runs it: without the tests' asyncio debug mode, which logs slow steps.
        env={**_without_asyncio_debug(os.environ), "HOME": str(tmp_path)},
    )
    assert proc.stdout is not None
    head: list[str] = []
    async with asyncio.timeout(30):
        while not (line := (await proc.stdout.readline()).decode()).startswith("ready"):
            assert line, "".join(head)
            head.append(line)
    [url] = [line.split()[-1] for line in head if line.strip().startswith("MCP (HTTP)")]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/mcp")
    try:
        async with (
            streamable_http_client(url) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert {t.name for t in (await session.list_tools()).tools} == TOOLS
            assert (await session.call_tool("observe", {"what": "traces"})).is_error is False
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = await proc.communicate()
    assert proc.returncode == 0 and rest.decode() == "stopping\n", rest.decode()
