"""The SSH tailer against OpenSSH's own sshd on 127.0.0.1 (Debian's openssh-server).

Skipped where sshd is not installed or the tests do not run as root (sshd needs its
privilege-separation directory); `.ci/run` installs it.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import Running, wait_for

SSHD = "/usr/sbin/sshd"

pytestmark = pytest.mark.skipif(
    not (Path(SSHD).exists() and shutil.which("ssh-keygen") and os.geteuid() == 0),
    reason="needs OpenSSH's sshd and ssh-keygen, run as root",
)


class Sshd:
    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("host_key", "client_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                check=True,
            )
        (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
        (root / "authorized_keys").chmod(0o600)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.config = root / "sshd_config"
        self.config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
            f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
        )
        host_public = (root / "host_key.pub").read_text().split()[:2]
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {' '.join(host_public)}\n")
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config)], start_new_session=True
        )

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        await wait_for(listening, timeout=10)

    def stop(self) -> None:
        """Stop the listener and every session it forked, as a machine going away would."""
        if self.process is not None:
            for pid in [*_descendants(self.process.pid), self.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.process.wait(timeout=10)
            self.process = None


def _descendants(pid: int) -> list[int]:
    """Session processes sshd forked (they start sessions of their own)."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = subprocess.run(
            ["pgrep", "-P", str(frontier.pop())], capture_output=True, text=True, check=False
        ).stdout.split()
        found += [int(c) for c in children]
        frontier += [int(c) for c in children]
    return found


@pytest.fixture
async def sshd(tmp_path: Path) -> AsyncIterator[Sshd]:
    server = Sshd(tmp_path)
    await server.start()
    yield server
    server.stop()


def _config(server: Sshd, log: Path) -> str:
    return f"""
        receivers:
          sshlog/real:
            host: 127.0.0.1
            port: {server.port}
            user: {getpass.getuser()}
            path: {log}
            key_file: {server.root / "client_key"}
            known_hosts: {server.known_hosts}
            start_at: beginning
            service: worker
            reconnect_initial: 0.05s
            reconnect_max: 0.2s
            poll_interval: 0.02s
        service:
          pipelines:
            logs:
              receivers: [sshlog/real]
        """


def _messages(running: Running) -> list[str]:
    records = sorted(running.daemon.store.records.iter_newest_first(), key=lambda r: r.id)
    return [r.message for r in records]


async def test_tails_through_sshd_and_survives_its_restart(
    start_daemon: Callable[..., object], sshd: Sshd, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    log.write_text("2024-01-02 15:04:05,123 ERROR job 1 failed\n")
    running = await start_daemon(_config(sshd, log))  # type: ignore[misc]
    assert isinstance(running, Running)
    try:
        await wait_for(lambda: _messages(running) == ["job 1 failed"], timeout=10)
    except TimeoutError:
        raise AssertionError(running.daemon.status()["receivers"]["sshlog/real"]) from None

    sshd.stop()
    await wait_for(
        lambda: running.daemon.status()["receivers"]["sshlog/real"]["status"] != "connected",
        timeout=10,
    )
    with log.open("a") as f:
        f.write("job 2 done\njob 3 done\n")
    await sshd.start()
    await wait_for(lambda: len(_messages(running)) == 3, timeout=15)
    await running.settled()
    assert _messages(running) == ["job 1 failed", "job 2 done", "job 3 done"]
