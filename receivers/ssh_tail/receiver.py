"""The ``sshlog`` receiver: one remote file, one task, reconnecting behind a circuit breaker.

Why SFTP polling rather than ``exec tail -c +OFFSET -F``: the offset must advance only
past lines the pipeline accepted, and a reconnect must resume exactly there. With SFTP
every read names its byte offset, so resuming is a ``read(size, offset)`` and the offset
is ours, not a remote process's; ``stat`` gives the size to notice truncation; it needs
no shell, no ``tail`` binary and works for SFTP-only (``internal-sftp``) accounts. The
cost is latency of up to ``poll_interval`` and one ``stat`` per interval when idle.

States shown in ``stats()`` (``status`` / ``circuit``)::

    connecting    half_open  first attempt (or any attempt) in progress
    connected     closed     tailing
    reconnecting  open       a transient failure (refused, timeout, lost connection,
                             file missing); retry after a jittered, doubling backoff
    circuit_open  open       a failure retrying will not fix by itself (host key not
                             trusted, authentication refused); retry only every
                             ``reconnect_max``, so the error stays visible without spinning
    stopped       -          ``stop()`` was called (or never started)

Known limitations: SFTP v3 has no inode, so rotation is detected by a fingerprint of the
first 256 bytes (two files starting with identical bytes look like one); lines appended to
a rotated-away file after we switched, or during an outage, are not read; a remote file
shrinking and regrowing past the offset between two polls with the same first bytes
looks like growth; a replacement exactly as long as the old file is noticed once it
grows. A file missing at the first connect is read from its beginning once it appears.
The user's ``~/.ssh/config`` is not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import warnings
from collections import Counter
from typing import Any, NoReturn

with warnings.catch_warnings():
    # asyncssh still names cryptography's DSA types, which cryptography 51 deprecates with a
    # UserWarning at import: nothing a user of this receiver could act on.
    warnings.filterwarnings("ignore", "DSA is deprecated", UserWarning)
    import asyncssh

from collector.component import Sink
from collector.config import Endpoint
from collector.errors import ReceiverStartError
from receivers.log_records import LogLines
from receivers.ssh_tail.backoff import Backoff
from receivers.ssh_tail.config import SshLogConfig
from receivers.ssh_tail.tailer import Position, RemoteTail

__all__ = ["SshLogReceiver"]

_log = logging.getLogger("gasoline.receivers.ssh_tail")


class _CircuitOpen(Exception):
    """A failure that needs a human (untrusted host key, refused credentials)."""


class SshLogReceiver:
    """Tails ``config.path`` on ``config.host`` into the sink. One task; one connection at
    a time, closed on every failure; ``start()`` only schedules the first attempt."""

    def __init__(self, config: SshLogConfig, *, name: str = "sshlog") -> None:
        self.name = name
        self.config = config
        self.counts: Counter[str] = Counter()
        self.position = Position()
        self._task: asyncio.Task[None] | None = None
        self._status = "stopped"
        self._last_error: str | None = None
        self._retry_at: float | None = None
        self._client_keys: list[asyncssh.SSHKey] | None = None
        self._known_hosts: str | None = None

    # -- Receiver ---------------------------------------------------------------------

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return []  # nothing is bound locally

    def bound(self) -> dict[str, int]:
        return {}

    def stats(self) -> dict[str, dict[str, Any]]:
        next_retry_s = None
        if self._retry_at is not None:
            next_retry_s = round(max(0.0, self._retry_at - time.monotonic()), 3)
        circuit = {
            "connecting": "half_open",
            "connected": "closed",
            "reconnecting": "open",
            "circuit_open": "open",
        }.get(self._status)
        c = self.config
        return {
            self.name: {
                "status": self._status,
                "circuit": circuit,
                "counts": dict(self.counts),
                "host": c.host,
                "port": c.port,
                "user": c.user,
                "path": c.path,
                "offset": self.position.offset,
                "next_retry_s": next_retry_s,
                "last_error": self._last_error,
            }
        }

    async def start(self, sink: Sink) -> None:
        """Check the local parts of the config (key file, known_hosts), then schedule the
        first connection. A host that is down is not an error: it is retried."""
        if self._task is not None:
            return
        c = self.config
        self._client_keys = self._load_key()
        self._known_hosts = self._check_known_hosts()
        if c.insecure_skip_host_key_verification:
            _log.warning(
                "%s: host key verification is OFF for %s:%d "
                "(insecure_skip_host_key_verification); anyone on the path can impersonate it",
                self.name,
                c.host,
                c.port,
            )
        try:
            lines = LogLines(
                service=c.service,
                source=f"ssh:{c.host}:{c.path}",
                tags=c.tags,
                attributes={"log.file.path": c.path, "host.name": c.host},
                patterns=c.patterns,
            )
        except ValueError as exc:
            raise ReceiverStartError(f"{self.name}: {exc}") from exc
        self._status = "connecting"
        self._task = asyncio.create_task(self._run(sink, lines), name=f"gasoline-{self.name}")

    async def stop(self) -> None:
        """Idempotent, safe without ``start()``: cancels the task, which closes the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._status = "stopped"
        self._retry_at = None

    # -- start-time checks ------------------------------------------------------------

    def _load_key(self) -> list[asyncssh.SSHKey] | None:
        key_file = self.config.key_file
        if key_file is None:
            return None  # asyncssh tries the agent, then ~/.ssh/id_*
        path = os.path.expanduser(key_file)
        try:
            return [asyncssh.read_private_key(path)]
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ReceiverStartError(
                f"{self.name}: cannot read key_file {key_file!r}: {reason}"
            ) from exc
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise ReceiverStartError(
                f"{self.name}: key_file {key_file!r} is not a usable private key "
                f"(passphrase-protected keys need the SSH agent): {exc}"
            ) from exc

    def _check_known_hosts(self) -> str | None:
        known_hosts = self.config.known_hosts
        if known_hosts is None or self.config.insecure_skip_host_key_verification:
            return None
        path = os.path.expanduser(known_hosts)
        try:
            asyncssh.read_known_hosts(path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ReceiverStartError(
                f"{self.name}: cannot read known_hosts {known_hosts!r}: {reason}"
            ) from exc
        return path  # read again on every connect, so fixing the file needs no restart

    # -- the task ---------------------------------------------------------------------

    async def _run(self, sink: Sink, lines: LogLines) -> None:
        c = self.config
        backoff = Backoff(float(c.reconnect_initial), float(c.reconnect_max))
        where = f"{c.user}@{c.host}:{c.port}"
        while True:
            self._status = "connecting"
            self._retry_at = None
            try:
                await self._session(sink, lines, backoff)
            except _CircuitOpen as exc:
                error, delay, status = str(exc), backoff.jittered(backoff.maximum), "circuit_open"
            except Exception as exc:  # a task boundary: every failure means reconnect
                error, delay, status = self._describe(exc), backoff.next(), "reconnecting"
            was_connected = self._status == "connected"
            self.counts["failures"] += 1
            if error != self._last_error or was_connected:
                _log.warning("%s: %s: %s; retrying in %.3gs", self.name, where, error, delay)
            self._last_error = error
            self._status = status
            self._retry_at = time.monotonic() + delay
            await asyncio.sleep(delay)

    async def _session(self, sink: Sink, lines: LogLines, backoff: Backoff) -> NoReturn:
        """Connect, open the file and tail until something fails (always raises)."""
        c = self.config
        timeout = float(c.connect_timeout)
        options: dict[str, Any] = {
            "port": c.port,
            "username": c.user,
            "config": None,
            "known_hosts": self._known_hosts if self._known_hosts is not None else (),
            "connect_timeout": timeout,
            "login_timeout": timeout,
            "keepalive_interval": timeout,
            "keepalive_count_max": 3,
        }
        if c.insecure_skip_host_key_verification:
            options["known_hosts"] = None
        if self._client_keys is not None:
            options["client_keys"] = self._client_keys
        try:
            async with asyncio.timeout(timeout):
                conn = await asyncssh.connect(c.host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            source = self._known_hosts or "~/.ssh/known_hosts"
            raise _CircuitOpen(
                f"host key not trusted (checked against {source}): {exc.reason}"
            ) from exc
        except asyncssh.PermissionDenied as exc:
            raise _CircuitOpen(f"authentication refused: {exc.reason}") from exc
        tail: RemoteTail | None = None
        try:
            async with asyncio.timeout(timeout):
                sftp = await conn.start_sftp_client()
                tail = RemoteTail(
                    sftp,
                    c.path,
                    position=self.position,
                    start_at=c.start_at,
                    lines=lines,
                    sink=sink,
                    counts=self.counts,
                )
                await tail.open()
            self.counts["connects"] += 1
            self._status = "connected"
            self._last_error = None
            backoff.reset()
            _log.info(
                "%s: tailing %s on %s at offset %d", self.name, c.path, c.host, tail.position.offset
            )
            poll_interval = float(c.poll_interval)
            while True:
                async with asyncio.timeout(timeout):
                    progressed = await tail.poll()
                if not progressed:
                    await asyncio.sleep(poll_interval)
        finally:
            conn.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(timeout):
                    await conn.wait_closed()

    def _describe(self, exc: BaseException) -> str:
        c = self.config
        if isinstance(exc, asyncssh.SFTPNoSuchFile):
            return f"remote file {c.path!r} does not exist"
        if isinstance(exc, asyncssh.SFTPPermissionDenied):
            return f"remote file {c.path!r} is not readable: {exc.reason}"
        if isinstance(exc, asyncssh.SFTPError | asyncssh.Error):
            return f"{type(exc).__name__}: {exc.reason}"
        if isinstance(exc, TimeoutError):
            return f"timed out after {float(c.connect_timeout):g}s"
        if isinstance(exc, OSError):
            reason = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
            return f"cannot reach {c.host}:{c.port}: {reason}"
        return f"{type(exc).__name__}: {exc}"
