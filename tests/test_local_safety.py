"""The edge of every port, tried as a web page, a DNS-rebinding attacker and a slow client
would: nothing they send changes state or reads data, while the CLI, ``gasoline mcp``,
``gasoline-run``, the OTel SDK and allowed browser pages keep working."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from collector.config import load_config
from collector.daemon import Daemon
from collector.edge import Refusal
from collector.errors import ConfigError
from gasoline.components import COMPONENTS
from receivers.run_wrapper.sender import LinesClient, Outcome
from tests.conftest import Running, make_config
from tests.test_otlp_http import TRACE, otlp_json, span

GASOLINE = str(Path(sys.executable).parent / "gasoline")
TOKEN = "s3cret-token-for-tests-0123"
FOREIGN = ("http://evil.example", "null")
EVENT = {"message": "injected", "level": "error", "source": "browser"}
_TRACES_SERVICE = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


async def request(
    method: str, url: str, *, body: bytes | str = b"", **headers: str
) -> tuple[int, dict[str, Any], Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, data=body, headers=headers) as resp,
    ):
        raw = await resp.read()
        return resp.status, json.loads(raw) if raw.startswith(b"{") else {}, resp.headers


async def marker_daemon(start_daemon: Any, tmp_path: Path, extra: str = "") -> tuple[Running, Path]:
    """A daemon whose one allowlisted command creates ``marker``, holding one stored event."""
    marker = tmp_path / "ran"
    gasoline: Running = await start_daemon(
        f"""
        interact:
          commands:
            touch: {{run: "touch {marker}"}}
        {extra}
        """
    )
    status, _, _ = await request(
        "POST", gasoline.api + "/event", body=json.dumps(EVENT | {"message": "kept"}).encode()
    )
    assert status == 200
    await gasoline.settled()
    return gasoline, marker


def stored(gasoline: Running) -> tuple[int, int]:
    return len(gasoline.daemon.store.records), gasoline.daemon.store.spans.span_count


def state_changing(gasoline: Running) -> list[tuple[str, bytes]]:
    """Every state-changing endpoint with a body that would be accepted without Origin."""
    event = json.dumps(EVENT).encode()
    tool = {
        "interact": {"action": "run_command", "name": "touch"},
        "configure": {"action": "clear"},
        "observe": {"what": "logs"},
    }
    return [
        *((gasoline.api + path, event) for path in ("/event", "/v1/event")),
        *(
            (gasoline.api + path, json.dumps({"events": [EVENT]}).encode())
            for path in ("/events", "/v1/events")
        ),
        (gasoline.api + "/v1/lines?service=web", b"ERROR injected line\n"),
        *(
            (gasoline.http + path, json.dumps(otlp_json([span("a1a2a3a4a5a6a7a8", "x")])).encode())
            for path in ("/v1/traces", "/v1/logs", "/v1/metrics")
        ),
        *(
            (gasoline.api + f"/v1/tools/{name}", json.dumps(args).encode())
            for name, args in tool.items()
        ),
    ]


@pytest.mark.parametrize("origin", FOREIGN)
async def test_simple_cross_origin_posts_are_refused_and_change_nothing(
    start_daemon: Any, tmp_path: Path, origin: str
) -> None:
    gasoline, marker = await marker_daemon(start_daemon, tmp_path)
    before = stored(gasoline)
    targets = state_changing(gasoline)
    for url, body in targets:
        for content_type in ("text/plain", "application/json"):
            status, answer, headers = await request(
                "POST", url, body=body, Origin=origin, **{"Content-Type": content_type}
            )
            assert status == 403, (url, content_type, answer)
            assert "allowed_origins" in answer["error"]
            assert "Access-Control-Allow-Origin" not in headers
    await gasoline.settled()
    assert stored(gasoline) == before == (1, 0)
    assert not marker.exists()
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["edge"]["refused"]["origin"] == 2 * len(targets)


async def test_browser_pages_never_interact_and_configure_only_from_the_daemons_page(
    start_daemon: Any, tmp_path: Path
) -> None:
    gasoline, marker = await marker_daemon(start_daemon, tmp_path)
    own = gasoline.api  # http://127.0.0.1:PORT, what the daemon's page sends as Origin
    interact = json.dumps({"action": "run_command", "name": "touch"}).encode()
    clear = json.dumps({"action": "clear"}).encode()
    json_type = {"Content-Type": "application/json"}
    for origin in ("http://localhost:5173", "chrome-extension://abcdefghijklmnop", own):
        status, answer, _ = await request(
            "POST", own + "/v1/tools/interact", body=interact, Origin=origin, **json_type
        )
        assert status == 403 and "gasoline mcp" in answer["error"], answer
    status, answer, _ = await request(
        "POST", own + "/v1/tools/configure", body=clear, Origin="http://localhost:5173", **json_type
    )
    assert status == 403 and "daemon's own" in answer["error"]
    assert not marker.exists() and stored(gasoline) == (1, 0)

    # Not JSON: refused before anything runs, even without Origin.
    status, answer, _ = await request(
        "POST", own + "/v1/tools/interact", body=interact, **{"Content-Type": "text/plain"}
    )
    assert status == 415 and "application/json" in answer["error"]
    assert not marker.exists()

    # The daemon's own page may configure; its answer is shared with it.
    status, answer, headers = await request(
        "POST", own + "/v1/tools/configure", body=clear, Origin=own, **json_type
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == own
    assert stored(gasoline) == (0, 0)
    # Without Origin (gasoline mcp, scripts) interact runs.
    status, answer, _ = await request(
        "POST", own + "/v1/tools/interact", body=interact, **json_type
    )
    assert status == 200 and answer["exit_code"] == 0 and marker.exists()

    _, status_doc = await gasoline.get_json("/daemon/status")
    refused = status_doc["edge"]["refused"]
    assert refused["browser_tool"] == 4 and refused["content_type"] == 1


async def test_reads_are_shared_only_with_the_daemons_page_and_read_origins(
    start_daemon: Any,
) -> None:
    gasoline: Running = await start_daemon(
        "service: {api: {read_origins: ['chrome-extension://abcdefghijklmnop']}}"
    )
    own = gasoline.api
    for origin, shared in (
        ("chrome-extension://abcdefghijklmnop", True),
        (own, True),
        ("http://localhost:5173", False),
        ("http://evil.example", False),
    ):
        for path in ("/v1/traces", "/daemon/status", "/buffers/timeline"):
            status, _, headers = await request("GET", own + path, Origin=origin)
            assert status == 200
            assert (headers.get("Access-Control-Allow-Origin") == origin) is shared, (origin, path)
    # An allowed page may post events (it gets the answer), but not read a tool's answer.
    page = {"Origin": "http://localhost:5173", "Content-Type": "application/json"}
    status, _, headers = await request("POST", own + "/events", body=b'{"events": []}', **page)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == page["Origin"]
    extension = {"Origin": "chrome-extension://abcdefghijklmnop", "Content-Type": "text/plain"}
    status, _, _ = await request(
        "POST", own + "/event", body=json.dumps(EVENT).encode(), **extension
    )
    assert status == 200
    observe = json.dumps({"what": "logs"}).encode()
    status, _, headers = await request("POST", own + "/v1/tools/observe", body=observe, **page)
    assert status == 200 and "Access-Control-Allow-Origin" not in headers


async def test_browser_sdk_from_localhost_still_exports_over_cors(gasoline: Running) -> None:
    origin = "http://localhost:5173"
    status, _, headers = await request(
        "OPTIONS",
        gasoline.http + "/v1/traces",
        Origin=origin,
        **{
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,traceparent",
        },
    )
    assert status == 204 and headers["Access-Control-Allow-Origin"] == origin
    body = json.dumps(otlp_json([span("b1b2b3b4b5b6b7b8", "GET /cart")])).encode()
    status, _, headers = await request(
        "POST",
        gasoline.http + "/v1/traces",
        body=body,
        Origin=origin,
        **{"Content-Type": "application/json"},
    )
    assert status == 200 and headers["Access-Control-Allow-Origin"] == origin
    await gasoline.settled()
    assert stored(gasoline) == (0, 1)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:7890", "attacker.test:4318"])
async def test_foreign_host_headers_are_refused_on_every_http_port(
    gasoline: Running, host: str
) -> None:
    event = json.dumps(EVENT).encode()
    traces = json.dumps(otlp_json([span("c1c2c3c4c5c6c7c8", "x")])).encode()
    json_type = {"Content-Type": "application/json"}
    for method, url, body in (
        ("GET", gasoline.api + "/daemon/status", b""),
        ("GET", gasoline.api + "/v1/traces", b""),
        ("GET", gasoline.api + f"/v1/traces/{TRACE}", b""),
        ("GET", gasoline.api + "/buffers/timeline", b""),
        ("POST", gasoline.api + "/events", event),
        ("POST", gasoline.api + "/v1/tools/observe", b'{"what": "logs"}'),
        ("POST", gasoline.http + "/v1/traces", traces),
    ):
        status, answer, _ = await request(method, url, body=body, Host=host, **json_type)
        assert status == 421, (url, answer)
        assert "service.api.allowed_hosts" in answer["error"]
    await gasoline.settled()
    assert stored(gasoline) == (0, 0)
    _, status_doc = await gasoline.get_json("/daemon/status")
    assert status_doc["edge"]["refused"]["host"] == 7


async def test_loopback_names_configured_names_and_no_host_are_served(start_daemon: Any) -> None:
    gasoline: Running = await start_daemon("service: {api: {allowed_hosts: [gasoline.test]}}")
    port = gasoline.daemon.ports["api"]
    for host in (
        f"localhost:{port}",
        "LOCALHOST",
        f"[::1]:{port}",
        "127.0.0.1",
        "gasoline.test:80",
    ):
        status, _, _ = await request("GET", gasoline.api + "/health", Host=host)
        assert status == 200, host
    status, _, _ = await request("GET", gasoline.api + "/health", Host="gasoline.test.evil.example")
    assert status == 421
    # An HTTP/1.0 client may send no Host at all.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.0\r\n\r\n")
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.startswith(b"HTTP/1.0 200") or answer.startswith(b"HTTP/1.1 200"), answer


async def test_a_page_cannot_reach_the_grpc_port(gasoline: Running) -> None:
    """A browser speaks HTTP/1.1 to a plain-http port: the gRPC server drops that before
    any handler runs, whatever the Host (the authority itself is not visible to Python)."""
    host, _, port = gasoline.grpc.rpartition(":")
    body = json.dumps(otlp_json([span("d1d2d3d4d5d6d7d8", "x")])).encode()
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST " + _TRACES_SERVICE.encode() + b" HTTP/1.1\r\nHost: evil.example:4317\r\n"
        b"Origin: http://evil.example\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    async with asyncio.timeout(10):
        answer = await reader.read()
    writer.close()
    assert b"200 OK" not in answer
    await gasoline.settled()
    assert stored(gasoline) == (0, 0)
    assert gasoline.daemon.receivers[0].stats()["otlp/grpc"]["counts"].get("requests", 0) == 0


def test_non_loopback_bind_without_token_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GASOLINE_TOKEN", raising=False)
    config = make_config(tmp_path, "service: {api: {endpoint: '0.0.0.0:0'}}")
    with pytest.raises(ConfigError, match=r"service\.api\.auth\.token: required .*0\.0\.0\.0"):
        Daemon(config, COMPONENTS)
    # The same from the command line: refused before anything binds, naming the key.
    path = tmp_path / "exposed.yaml"
    path.write_text(
        "receivers: {otlp: {protocols: {grpc: {endpoint: '0.0.0.0:0'}, "
        "http: {endpoint: '127.0.0.1:0'}}}}\nservice: {api: {endpoint: '127.0.0.1:0'}}\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "GASOLINE_TOKEN"}
    done = subprocess.run(
        [GASOLINE, "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env | {"HOME": str(tmp_path)},
    )
    assert done.returncode == 1 and "service.api.auth.token" in done.stderr, done.stderr
    assert "ready" not in done.stdout


async def test_with_a_token_every_port_requires_it_and_every_client_sends_it(
    start_daemon: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GASOLINE_TOKEN", raising=False)
    gasoline: Running = await start_daemon(
        f"""
        service:
          api:
            endpoint: 0.0.0.0:0
            auth: {{token: {TOKEN}}}
        """
    )
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    event = json.dumps(EVENT).encode()
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": TOKEN},
    ):
        for method, url, body in (
            ("GET", gasoline.api + "/daemon/status", b""),
            ("POST", gasoline.api + "/events", event),
            ("POST", gasoline.http + "/v1/traces", b"{}"),
        ):
            status, answer, got = await request(method, url, body=body, **headers)
            assert status == 401 and "service.api.auth.token" in answer["error"], (url, headers)
            assert got["WWW-Authenticate"] == "Bearer"
    status, _, _ = await request("GET", gasoline.api + "/daemon/status", **bearer)
    assert status == 200
    # The web page's cookie stands for the token; Origin checks still hold with it.
    cookie = {"Cookie": f"gasoline_token={TOKEN}"}
    status, _, _ = await request("GET", gasoline.api + "/daemon/status", **cookie)
    assert status == 200
    status, _, _ = await request(
        "GET", gasoline.api + "/daemon/status", Cookie="gasoline_token=wrong-token-wrong"
    )
    assert status == 401
    status, _, _ = await request(
        "POST", gasoline.api + "/events", body=event, Origin="http://evil.example", **cookie
    )
    assert status == 403

    channel_target = gasoline.grpc
    async with grpc.aio.insecure_channel(channel_target) as channel:
        export = channel.unary_unary(_TRACES_SERVICE)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await export(b"")
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "service.api.auth.token" in str(info.value.details())
        await export(b"", metadata=[("authorization", f"Bearer {TOKEN}")])

    # The OTel SDK exporters take the token as a header; our clients from GASOLINE_TOKEN.
    for exporter in (
        HttpSpanExporter(endpoint=gasoline.http + "/v1/traces", headers=bearer),
        GrpcSpanExporter(
            endpoint=gasoline.grpc, insecure=True, headers={"authorization": f"Bearer {TOKEN}"}
        ),
    ):
        provider = TracerProvider(resource=Resource.create({"service.name": "sdk"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        await asyncio.to_thread(provider.get_tracer("t").start_span("op").end)
        await asyncio.to_thread(provider.shutdown)
    monkeypatch.setenv("GASOLINE_TOKEN", TOKEN)

    lines = LinesClient(gasoline.api)
    shipped = await asyncio.to_thread(lines.post, "service=run", b"hello from gasoline-run\n")
    lines.close()
    assert shipped.outcome is Outcome.OK, shipped

    env = os.environ | {"HOME": str(tmp_path), "GASOLINE_URL": gasoline.api}
    done = await asyncio.to_thread(
        subprocess.run, [GASOLINE, "status", "--json"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and json.loads(done.stdout)["edge"]["token_required"], done.stderr
    no_token = {k: v for k, v in env.items() if k != "GASOLINE_TOKEN"}
    done = await asyncio.to_thread(
        subprocess.run, [GASOLINE, "status"], capture_output=True, text=True, env=no_token
    )
    assert done.returncode == 1 and "HTTP 401" in done.stderr

    params = StdioServerParameters(
        command=GASOLINE,
        args=["mcp", "--url", gasoline.api],
        env={"HOME": str(tmp_path), "GASOLINE_TOKEN": TOKEN},
    )
    with (tmp_path / "mcp-stderr.log").open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await gasoline.settled()
            result = await session.call_tool("observe", {"what": "logs"})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            messages = {e["message"] for e in result.structured_content["events"]}
            assert "hello from gasoline-run" in messages
    await gasoline.settled()
    assert gasoline.daemon.store.spans.span_count == 2  # one per SDK exporter
    # 3 x 3 bearer refusals, a wrong cookie, gRPC, the CLI.
    assert gasoline.daemon.edge.refused[Refusal.TOKEN] == 3 * 3 + 1 + 1 + 1


@pytest.mark.parametrize("port", ["api", "http"])
async def test_slow_headers_are_cut(start_daemon: Any, port: str) -> None:
    """One byte a second never completes a request head: the daemon hangs up first."""
    gasoline: Running = await start_daemon("service: {api: {header_timeout: 1s}}")
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", gasoline.daemon.ports[port])
    sent = 0
    closed = False
    for byte in head:
        writer.write(bytes([byte]))
        sent += 1
        try:
            closed = await asyncio.wait_for(reader.read(1), timeout=1.0) == b""
        except TimeoutError:
            continue
        break
    writer.close()
    assert closed and sent < len(head), (closed, sent)


async def test_a_slow_answer_is_not_cut(start_daemon: Any) -> None:
    """The header timeout bounds the request head only, not the handler's work."""
    gasoline: Running = await start_daemon(
        """
        service: {api: {header_timeout: 200ms}}
        interact: {commands: {pause: {run: "sleep 1"}}}
        """
    )
    body = json.dumps({"action": "run_command", "name": "pause"}).encode()
    status, answer, _ = await request(
        "POST",
        gasoline.api + "/v1/tools/interact",
        body=body,
        **{"Content-Type": "application/json"},
    )
    assert status == 200 and answer["exit_code"] == 0 and not answer["timed_out"], answer


@pytest.mark.parametrize("name", ["ok\n", "../escape", ".hidden", "a" * 65, "", "spa ce"])
async def test_bad_checkpoint_names_are_rejected(
    gasoline: Running, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = json.dumps({"action": "save_checkpoint", "name": name}).encode()
    status, answer, _ = await request(
        "POST",
        gasoline.api + "/v1/tools/configure",
        body=args,
        **{"Content-Type": "application/json"},
    )
    assert status == 400 and "name" in answer["error"], answer
    assert not (tmp_path / ".gasoline").exists() or not any((tmp_path / ".gasoline").rglob("*"))


async def test_good_checkpoint_name_is_saved(
    gasoline: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = json.dumps({"action": "save_checkpoint", "name": "before-fix.v2"}).encode()
    status, answer, _ = await request(
        "POST",
        gasoline.api + "/v1/tools/configure",
        body=args,
        **{"Content-Type": "application/json"},
    )
    assert status == 200 and answer["path"].endswith("before-fix.v2.json"), answer


def test_example_config_loads_with_the_edge_keys() -> None:
    path = Path(__file__).resolve().parent.parent / "otel-config-examples" / "gasoline.yaml"
    config = load_config(path, components=COMPONENTS)
    assert config.service.api.allowed_hosts == [] and config.service.api.auth.token is None
