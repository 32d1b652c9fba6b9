"""Shared fixtures: a daemon on 127.0.0.1 with every port 0, and ways to wait on it."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from collector.config import Config, load_config
from collector.daemon import Daemon
from gasoline.components import COMPONENTS

# Every event loop the tests create runs in debug mode (un-awaited coroutines, slow
# callbacks, unclosed resources are reported); pytest turns warnings into errors.
os.environ["PYTHONASYNCIODEBUG"] = "1"

PORTS_0 = {"grpc": 0, "http": 0, "api": 0}
COMPILED_PACKAGE = Path(__file__).resolve().parent.parent / "receivers" / "log_parser"


def pytest_sessionstart(session: pytest.Session) -> None:
    """Python imports a compiled module before its source: a stale one would be tested
    instead of the code in the tree (an editable install compiles the log parser once)."""
    for compiled in sorted(COMPILED_PACKAGE.glob("*.so")):
        source = COMPILED_PACKAGE / (compiled.name.split(".")[0].removesuffix("__mypyc") + ".py")
        if not source.exists() or source.stat().st_mtime > compiled.stat().st_mtime:
            pytest.exit(
                f"{compiled} is older than {source.name}: delete the .so files to test the "
                "interpreted code, or compile it again with HATCH_BUILD_HOOK_ENABLE_MYPYC=true "
                "pip install -e '.[test]'",
                returncode=2,
            )


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Components that keep state under ~/.gasoline (tailer offsets, spools) keep it here."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


def make_config(tmp_path: Path, text: str = "") -> Config:
    """A config from YAML text over the embedded defaults, every port 0 unless set.

    Always passes a file, so a developer's ~/.gasoline/config.yaml never leaks in.
    """
    path = tmp_path / "gasoline.yaml"
    path.write_text(textwrap.dedent(text) or "{}\n")
    data = yaml.safe_load(path.read_text()) or {}
    ports = {k: v for k, v in PORTS_0.items() if _endpoint(data, k) is None}
    return load_config(path, components=COMPONENTS, ports=ports)


def _endpoint(data: Any, key: str) -> Any:
    """The endpoint a test's config text sets for ``key`` (api, grpc, http), if any."""
    path = ["service", "api"] if key == "api" else ["receivers", "otlp", "protocols", key]
    for name in path:
        data = data.get(name) if isinstance(data, dict) else None
    return data.get("endpoint") if isinstance(data, dict) else None


class Running:
    """A started daemon plus the URLs a client needs."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        ports = daemon.ports
        self.grpc = f"127.0.0.1:{ports['grpc']}" if "grpc" in ports else ""
        self.http = f"http://127.0.0.1:{ports['http']}" if "http" in ports else ""
        self.api = f"http://127.0.0.1:{ports['api']}"

    async def settled(self) -> None:
        """Everything the daemon has acknowledged so far is queryable."""
        await self.daemon.pipeline.drained()

    async def get_json(self, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http, http.get(self.api + path) as resp:
            return resp.status, await resp.json()

    async def post_json(self, path: str, body: object) -> tuple[int, dict]:  # type: ignore[type-arg]
        async with aiohttp.ClientSession() as http, http.post(self.api + path, json=body) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    started: list[Daemon] = []

    async def start(text: str = "") -> Running:
        daemon = Daemon(make_config(tmp_path, text), COMPONENTS)
        await daemon.start()
        started.append(daemon)
        return Running(daemon)

    yield start
    for daemon in started:
        await daemon.stop()


@pytest.fixture
async def gasoline(start_daemon: Callable[..., object]) -> Running:
    """A daemon on the embedded defaults, all ports 0."""
    running = await start_daemon()  # type: ignore[misc]
    assert isinstance(running, Running)
    return running


async def wait_for(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    """Await a condition that really is asynchronous; the timeout only guards failure."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


GASOLINE = str(Path(sys.executable).parent / "gasoline")


@contextmanager
def serve_process(
    tmp_path: Path, config: str = "{}\n", *, killed_by_test: bool = False
) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """A real ``gasoline serve`` with ``config``, all ports 0, stopped with Ctrl-C (which
    must exit 0), or, ``killed_by_test``, left for the test to kill (SIGKILL if it did
    not); yields the process and the URLs it printed (OTLP/gRPC, OTLP/HTTP, API)."""
    path = tmp_path / "serve.yaml"
    path.write_text(config)
    ports = ("--grpc-port", "0", "--http-port", "0", "--api-port", "0")
    proc = subprocess.Popen(
        [GASOLINE, "serve", "--config", str(path), *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if match := re.match(r"\s+(OTLP/gRPC|OTLP/HTTP|API)\s+(\S+)", line):
            urls[match.group(1)] = match.group(2)
        if line.startswith("ready"):
            break
    try:
        assert set(urls) == {"OTLP/gRPC", "OTLP/HTTP", "API"}, "".join(lines)
        yield proc, urls
    finally:
        if killed_by_test:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=30)
        else:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0 and "stopping" in out, out
