"""MCP over HTTP: what the ways of serving it cost, measured with the official MCP client.

1. Import cost of the MCP SDK (fresh interpreters, median of ``--imports`` runs): the
   daemon's modules without it, and with ``exporters.mcp_server`` -- why ``/mcp`` loads it in the
   background instead of before the ports are ready.
2. ``gasoline serve`` (all ports 0, fresh process, median of ``--imports`` runs): time to
   its "ready" line, and to the first answer of ``/mcp`` (``tools/list``), which waits
   for the background load.
3. Latency of one ``observe`` tool call (``what=traces``, a small store), ``--calls`` times
   per way, p50/p90/p99 after a warm-up:
   - ``http /mcp``: the daemon's ``/mcp`` (aiohttp handing the request to the SDK's
     session manager, stateless, JSON answers; tools in process);
   - ``uvicorn``: the SDK's own Starlette app under uvicorn on a second port, the same
     server and mode, in the same process -- the option that needs a second port;
   - ``stdio``: ``gasoline mcp --url`` as a subprocess, forwarding to ``/v1/tools``;
   - ``POST /v1/tools``: the plain HTTP tool route with aiohttp, no MCP, as a floor.

Nothing is asserted. ``python bench/mcp_http_bench.py [--calls 300] [--json]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

import aiohttp  # noqa: E402
import uvicorn  # noqa: E402
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402

from collector import VERSION  # noqa: E402
from collector.config import load_config  # noqa: E402
from collector.daemon import Daemon  # noqa: E402
from exporters.mcp_server import LocalTools, build_server  # noqa: E402
from gasoline.components import COMPONENTS  # noqa: E402

GASOLINE = str(Path(sys.executable).parent / "gasoline")
ARGS = {"what": "traces"}
DAEMON = "import collector.daemon, exporters.http_api, receivers.otlp, receivers.native"


def import_seconds(statement: str, runs: int) -> float:
    """Median wall time of a fresh interpreter running ``statement``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", statement], check=True, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def serve_seconds(home: Path) -> tuple[float, float]:
    """Seconds from spawning ``gasoline serve`` to its "ready" line, and to /mcp's answer."""
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        GASOLINE,
        *("serve", "--grpc-port", "0", "--http-port", "0", "--api-port", "0"),
        stdout=asyncio.subprocess.PIPE,
        env={"HOME": str(home), "PATH": str(Path(sys.executable).parent)},
    )
    assert proc.stdout is not None
    url = ""
    while not (line := (await proc.stdout.readline()).decode()).startswith("ready"):
        assert line, "gasoline serve ended before it was ready"
        if line.strip().startswith("MCP (HTTP)"):
            url = line.split()[-1]
    ready = time.perf_counter() - started
    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as s:
        await s.initialize()
        await s.list_tools()
    answered = time.perf_counter() - started
    proc.terminate()
    await proc.communicate()
    return ready, answered


async def timed(call: Callable[[], Awaitable[object]], calls: int) -> dict[str, float]:
    for _ in range(20):
        await call()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    pick = lambda q: round(samples[min(len(samples) - 1, int(q * len(samples)))], 3)  # noqa: E731
    return {"p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99)}


async def via_session(session: ClientSession, calls: int) -> dict[str, float]:
    await session.initialize()

    async def call() -> None:
        result = await session.call_tool("observe", ARGS)
        assert not result.is_error, result.content

    return await timed(call, calls)


async def latencies(calls: int) -> dict[str, dict[str, float]]:
    home = Path(tempfile.mkdtemp())
    config_file = home / "gasoline.yaml"
    history = {"dir": str(home / "data")}
    config_file.write_text(json.dumps({"service": {"store": {"history": history}}}))
    daemon = Daemon(
        load_config(config_file, components=COMPONENTS, ports={"grpc": 0, "http": 0, "api": 0}),
        COMPONENTS,
    )
    await daemon.start()
    api = f"http://127.0.0.1:{daemon.ports['api']}"
    out: dict[str, dict[str, float]] = {}
    try:
        async with (
            streamable_http_client(api + "/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            out["http /mcp"] = await via_session(session, calls)

        server = build_server(LocalTools(daemon.tools.run), version=VERSION)
        app = server.streamable_http_app(
            json_response=True,
            stateless_http=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        uv = uvicorn.Server(config)
        serving = asyncio.create_task(uv.serve())
        while not uv.started:
            await asyncio.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        async with (
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            out["uvicorn (2nd port)"] = await via_session(session, calls)
        uv.should_exit = True
        await serving

        params = StdioServerParameters(
            command=GASOLINE, args=["mcp", "--url", api], env={"HOME": str(home)}
        )
        with (home / "stderr.log").open("w") as err:
            async with (
                stdio_client(params, errlog=err) as (read, write),
                ClientSession(read, write) as session,
            ):
                out["stdio (gasoline mcp)"] = await via_session(session, calls)

        async with aiohttp.ClientSession() as http:

            async def post() -> None:
                async with http.post(api + "/v1/tools/observe", json=ARGS) as response:
                    assert response.status == 200
                    await response.read()

            out["POST /v1/tools"] = await timed(post, calls)
    finally:
        await daemon.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--imports", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # the SDK logs every request at INFO
    report: dict[str, Any] = {
        "import_s": {
            "daemon": round(import_seconds(DAEMON, args.imports), 3),
            "daemon + MCP SDK": round(
                import_seconds(DAEMON + ", exporters.mcp_server", args.imports), 3
            ),
        },
        "observe_call": asyncio.run(latencies(args.calls)),
    }
    home = Path(tempfile.mkdtemp())
    runs = [asyncio.run(serve_seconds(home)) for _ in range(args.imports)]
    report["serve_s"] = {
        "ready": round(statistics.median(r[0] for r in runs), 3),
        "first /mcp answer": round(statistics.median(r[1] for r in runs), 3),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for name, seconds in report["import_s"].items():
        print(f"import {name:<22} {seconds * 1000:7.0f} ms")
    for name, seconds in report["serve_s"].items():
        print(f"gasoline serve: {name:<17} {seconds * 1000:7.0f} ms")
    print(f"\nobserve(what=traces), {args.calls} calls    p50 ms   p90 ms   p99 ms")
    for name, figures in report["observe_call"].items():
        print(
            f"  {name:<28} {figures['p50_ms']:8.2f} {figures['p90_ms']:8.2f} "
            f"{figures['p99_ms']:8.2f}"
        )


if __name__ == "__main__":
    main()
