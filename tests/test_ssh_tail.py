"""The sshlog receiver against a real asyncssh server on 127.0.0.1 (SFTP), no fakes for SSH."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Self

import asyncssh
import pytest

from collector.component import LineSource
from collector.config import load_section
from collector.errors import ConfigError, QueueFullError, ReceiverStartError
from collector.model import DropReason, Record, SpanBatch
from receivers.ssh_tail import SshLogConfig
from receivers.ssh_tail.backoff import Backoff
from receivers.ssh_tail.receiver import SshLogReceiver
from tests.conftest import Running, make_config, wait_for

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


class _Tracking(asyncssh.SSHServer):
    def __init__(self, connections: set[asyncssh.SSHServerConnection]) -> None:
        self._connections = connections
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._connections.discard(self._conn)


class SshServer:
    """An in-process SSH/SFTP server; ``stop()`` also drops the live connections."""

    def __init__(self, tmp_path: Path) -> None:
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.key_file = tmp_path / "id_ed25519"
        client_key.write_private_key(str(self.key_file))
        self._authorized = client_key.export_public_key().decode()
        self.known_hosts = tmp_path / "known_hosts"
        self.port = 0
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()

    async def start(self, port: int = 0) -> None:
        self._acceptor = await asyncssh.create_server(
            lambda: _Tracking(self._connections),
            "127.0.0.1",
            port,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self._authorized),
            sftp_factory=True,
            reuse_address=True,
        )
        self.port = self._acceptor.get_port()
        self.write_known_hosts(self.host_key)

    def write_known_hosts(self, key: asyncssh.SSHKey) -> None:
        public = key.export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public}\n")

    async def stop(self) -> None:
        if self._acceptor is None:
            return
        acceptor, self._acceptor = self._acceptor, None
        acceptor.close()
        await acceptor.wait_closed()
        for conn in list(self._connections):
            conn.close()
            await conn.wait_closed()


@pytest.fixture
async def ssh_server(tmp_path: Path) -> AsyncIterator[SshServer]:
    server = SshServer(tmp_path)
    await server.start()
    yield server
    await server.stop()


def _options(server: SshServer, log: Path, **extra: Any) -> dict[str, Any]:
    """An sshlog section for ``server``, with short reconnect delays."""
    return {
        "host": "127.0.0.1",
        "port": server.port,
        "user": "tester",
        "path": str(log),
        "key_file": str(server.key_file),
        "known_hosts": str(server.known_hosts),
        "start_at": "beginning",
        "service": "api",
        "reconnect_initial": "0.05s",
        "reconnect_max": "0.2s",
        "poll_interval": "0.02s",
        "connect_timeout": "5s",
        **extra,
    }


def _yaml(server: SshServer, log: Path, **extra: Any) -> str:
    options = _options(server, log, **extra)
    body = "\n".join(f"    {k}: {v}" for k, v in options.items())
    return (
        "receivers:\n  sshlog/x:\n"
        + body
        + "\nservice:\n  pipelines:\n    logs:\n      receivers: [sshlog/x]\n"
    )


def _messages(running: Running) -> list[str]:
    records = sorted(running.daemon.store.records.iter_newest_first(), key=lambda r: r.id)
    return [r.message for r in records]


def _stats(running: Running) -> dict[str, Any]:
    part: dict[str, Any] = running.daemon.status()["receivers"]["sshlog/x"]
    return part


async def _start(start_daemon: Callable[..., object], text: str) -> Running:
    running = await start_daemon(text)  # type: ignore[misc]
    assert isinstance(running, Running)
    return running


def _append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


async def test_appended_lines_arrive_parsed(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("written before the tailer started\n")
    running = await _start(start_daemon, _yaml(ssh_server, log, start_at="end"))
    await wait_for(lambda: _stats(running)["status"] == "connected")
    _append(log, f'{{"level":"error","msg":"boom","trace_id":"{TRACE_ID}"}}\nplain line\n')

    await wait_for(lambda: len(_messages(running)) == 2)
    await running.settled()
    records = sorted(running.daemon.store.records.iter_newest_first(), key=lambda r: r.id)
    assert [r.message for r in records] == ["boom", "plain line"]
    assert [r.level for r in records] == ["error", "info"]
    assert records[0].trace_id == bytes.fromhex(TRACE_ID)
    assert {r.service for r in records} == {"api"}
    stats = _stats(running)
    assert stats["circuit"] == "closed" and stats["last_error"] is None
    assert stats["offset"] == log.stat().st_size
    assert stats["counts"]["records"] == 2


async def test_outage_loses_and_repeats_nothing(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("line 1\nline 2\nline 3\n")
    running = await _start(start_daemon, _yaml(ssh_server, log))
    await wait_for(lambda: len(_messages(running)) == 3)

    await ssh_server.stop()
    await wait_for(lambda: _stats(running)["status"] in ("reconnecting", "connecting"))
    _append(log, "line 4\nline 5\nline 6\n")
    await wait_for(lambda: _stats(running)["counts"]["failures"] >= 2)
    assert _stats(running)["status"] != "connected"
    await ssh_server.start(port=ssh_server.port)

    await wait_for(lambda: len(_messages(running)) >= 6)
    _append(log, "line 7\n")
    await wait_for(lambda: len(_messages(running)) >= 7)
    await running.settled()
    assert _messages(running) == [f"line {i}" for i in range(1, 8)]
    stats = _stats(running)
    assert stats["status"] == "connected" and stats["counts"]["connects"] == 2


async def test_wrong_host_key_is_refused_until_verification_is_skipped(
    start_daemon: Callable[..., object],
    ssh_server: SshServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = tmp_path / "app.log"
    log.write_text("secret line\n")
    ssh_server.write_known_hosts(asyncssh.generate_private_key("ssh-ed25519"))
    running = await _start(start_daemon, _yaml(ssh_server, log))

    await wait_for(lambda: _stats(running)["status"] == "circuit_open")
    stats = _stats(running)
    assert stats["circuit"] == "open"
    assert "host key not trusted" in stats["last_error"]
    assert str(ssh_server.known_hosts) in stats["last_error"]
    assert stats["next_retry_s"] is not None
    assert _messages(running) == []
    await running.daemon.stop()

    with caplog.at_level(logging.WARNING, logger="gasoline.receivers.ssh_tail"):
        insecure = await _start(
            start_daemon, _yaml(ssh_server, log, insecure_skip_host_key_verification="true")
        )
    assert any(
        "host key verification is OFF for 127.0.0.1" in r.getMessage() for r in caplog.records
    )
    await wait_for(lambda: _messages(insecure) == ["secret line"])


async def test_fds_and_tasks_stay_bounded_while_host_is_down(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    yaml = _yaml(
        ssh_server,
        tmp_path / "app.log",
        port=closed_port,
        reconnect_initial="0.005s",
        reconnect_max="0.01s",
    )
    running = await _start(start_daemon, yaml)

    def failures() -> int:
        count: int = _stats(running)["counts"].get("failures", 0)
        return count

    await wait_for(lambda: failures() >= 3)
    fds_before = len(os.listdir("/proc/self/fd"))
    tasks_before = len(asyncio.all_tasks())
    await wait_for(lambda: failures() >= 23)
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 2
    assert len(asyncio.all_tasks()) <= tasks_before + 1
    stats = _stats(running)
    assert stats["status"] in ("reconnecting", "connecting")
    assert stats["counts"].get("connects", 0) == 0
    assert "refused" in stats["last_error"].lower(), stats["last_error"]


async def test_truncated_file_is_read_again_from_the_start(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("alpha\nbravo\n")
    running = await _start(start_daemon, _yaml(ssh_server, log))
    await wait_for(lambda: len(_messages(running)) == 2)

    log.write_text("c\n")
    await wait_for(lambda: len(_messages(running)) == 3)
    await running.settled()
    assert _messages(running) == ["alpha", "bravo", "c"]
    stats = _stats(running)
    assert stats["counts"]["truncations"] == 1 and stats["offset"] == 2


async def test_rotated_file_is_finished_then_followed(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    log = tmp_path / "app.log"
    log.write_text("old 1\n")
    running = await _start(start_daemon, _yaml(ssh_server, log))
    await wait_for(lambda: len(_messages(running)) == 1)

    _append(log, "old 2\n")
    log.rename(tmp_path / "app.log.1")
    log.write_text("new 1\n")
    await wait_for(lambda: len(_messages(running)) == 3)
    await running.settled()
    assert _messages(running) == ["old 1", "old 2", "new 1"]
    assert _stats(running)["counts"]["rotations"] == 1


async def test_missing_file_is_read_from_its_start_once_it_appears(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    log = tmp_path / "later.log"
    running = await _start(start_daemon, _yaml(ssh_server, log, start_at="end"))
    await wait_for(lambda: _stats(running)["counts"].get("failures", 0) >= 1)
    stats = _stats(running)
    assert stats["status"] in ("reconnecting", "connecting")
    assert f"remote file '{log}' does not exist" == stats["last_error"]

    log.write_text("first\n")
    await wait_for(lambda: _messages(running) == ["first"])


class _RefusingSink:
    """A working in-memory sink that sheds load for its first ``refusals`` offers."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.records: list[Record] = []
        self.changed = asyncio.Event()

    redactor = None

    def lane(self, receiver: str) -> Self:
        return self

    def offer_spans(self, batch: SpanBatch) -> int:
        raise NotImplementedError

    def offer_records(self, records: Sequence[Record]) -> int:
        if self.refusals > 0:
            self.refusals -= 1
            raise QueueFullError("ingest queue is full")
        self.records += records
        return len(records)

    def offer_metrics(self, data_points: int) -> int:
        return data_points

    def offer_lines(
        self,
        source: LineSource,
        lines: Sequence[str],
        *,
        observed_ns: int | None = None,
        kept_on_refusal: bool = False,
    ) -> int:
        return self.offer_records(source.records(lines, now_ns=observed_ns))

    def count_dropped(self, signal: str, reason: DropReason, count: int) -> None:
        pass


def _config(server: SshServer, log: Path, **extra: Any) -> SshLogConfig:
    errors: list[str] = []
    config = load_section(SshLogConfig, _options(server, log, **extra), "sshlog/x", errors)
    assert config is not None, errors
    return config


async def test_full_queue_keeps_lines_and_offset(ssh_server: SshServer, tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\n")
    sink = _RefusingSink(refusals=3)
    receiver = SshLogReceiver(_config(ssh_server, log), name="sshlog/x")
    await receiver.start(sink)
    try:
        await wait_for(lambda: len(sink.records) == 2)
        assert receiver.stats()["sshlog/x"]["counts"]["queue_full_retries"] == 3
        assert receiver.stats()["sshlog/x"]["offset"] == len("one\ntwo\n")
        _append(log, "three\n")
        await wait_for(lambda: len(sink.records) == 3)
        assert [r.message for r in sink.records] == ["one", "two", "three"]
    finally:
        await receiver.stop()


async def test_stop_is_idempotent_and_safe_without_start(tmp_path: Path) -> None:
    receiver = SshLogReceiver(
        SshLogConfig(host="127.0.0.1", user="u", path="/var/log/app.log"), name="sshlog/x"
    )
    assert receiver.endpoints() == [] and receiver.bound() == {}
    await receiver.stop()
    await receiver.stop()
    assert receiver.stats()["sshlog/x"]["status"] == "stopped"


async def test_unreadable_key_file_is_a_start_error(
    start_daemon: Callable[..., object], ssh_server: SshServer, tmp_path: Path
) -> None:
    missing = tmp_path / "no_such_key"
    with pytest.raises(ReceiverStartError, match=r"cannot read key_file .*no_such_key"):
        await _start(start_daemon, _yaml(ssh_server, tmp_path / "app.log", key_file=missing))


def test_backoff_doubles_to_the_maximum_with_jitter() -> None:
    low = Backoff(5, 120, random=lambda: 0.0)
    assert [round(low.next(), 3) for _ in range(7)] == [4.5, 9.0, 18.0, 36.0, 72.0, 108.0, 108.0]
    high = Backoff(5, 120, random=lambda: 1.0)
    assert round(high.next(), 3) == 5.5
    high.reset()
    assert round(high.next(), 3) == 5.5


_BASE = "receivers:\n  sshlog/x:\n{body}\nservice:\n  pipelines:\n    logs:\n      receivers: [sshlog/x]\n"
_OK = {"host": "h", "user": "u", "path": "/var/log/app.log"}
_P = "receivers.sshlog/x"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host": None}, f"{_P}.host: required"),
        ({"user": None}, f"{_P}.user: required"),
        ({"path": None}, f"{_P}.path: required"),
        ({"host": "''"}, f"{_P}.host: must not be empty"),
        ({"port": 70000}, f"{_P}.port: 70000 is not a port (expected 1-65535)"),
        ({"start_at": "middle"}, f"{_P}.start_at: 'middle' must be 'end' or 'beginning'"),
        (
            {"reconnect_initial": "soon"},
            f"{_P}.reconnect_initial: 'soon' is not a duration (expected e.g. 30s, 15m, 24h)",
        ),
        (
            {"reconnect_max": "1s"},
            f"{_P}.reconnect_max: 1s must not be less than reconnect_initial (5s)",
        ),
        ({"poll_interval": 0}, f"{_P}.poll_interval: 0s must be greater than 0"),
        ({"patterns": "['(']"}, f"{_P}.patterns[0]: '(' is not a regex"),
        (
            {"insecure_skip_host_key_verification": "'sure'"},
            f"{_P}.insecure_skip_host_key_verification: expected true or false, got 'sure'",
        ),
        ({"password": "hunter2"}, f"{_P}.password: unknown key (allowed: "),
    ],
)
def test_invalid_config(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    options = {**_OK, **overrides}
    body = "\n".join(f"    {k}: {v}" for k, v in options.items() if v is not None)
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, _BASE.format(body=body))
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems
