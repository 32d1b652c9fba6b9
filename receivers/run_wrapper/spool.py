"""The on-disk buffer for batches the daemon could not take, replayed in order later.

Layout: ``<root>/run-<start ns>-<pid>/`` per run, holding ``lock`` (flock'd by the owner while
it runs), ``active.spool`` (the segment being appended, fsynced after every append) and sealed
``seg-000001.spool``, ``seg-000002.spool``... (renamed from ``active.spool`` atomically). A
segment is a sequence of batches, each a JSON header line ``{"query": ..., "lines": ...,
"bytes": ...}`` (and ``"path"`` when the batch goes elsewhere than ``/v1/lines``, e.g. a test
run's spans) followed by that many bytes of body: the POST's query string and body.
Readers only read sealed segments and delete one only after the daemon accepted it. A
directory whose lock nobody holds belongs to a finished run and may be adopted, its active
segment sealed, and replayed by any later run or ``--flush-spool``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "LINES_PATH",
    "Batch",
    "OwnSpool",
    "Segment",
    "SpoolDir",
    "adopt_leftovers",
    "read_segment",
]

_ACTIVE = "active.spool"
_LOCK = "lock"


class Segment:
    """A sealed segment file and the directory that owns it."""

    __slots__ = ("owner", "path")

    def __init__(self, owner: SpoolDir, path: Path) -> None:
        self.owner = owner
        self.path = path

    def delete(self) -> None:
        """Call only after the daemon accepted the whole segment."""
        self.owner.forget(self)


LINES_PATH = "/v1/lines"


class Batch(NamedTuple):
    """One POST: its query string (batch id included, so a replay is the same batch again),
    its body, how many lines the body holds, and the API path it goes to."""

    query: str
    body: bytes
    lines: int
    path: str = LINES_PATH


def read_segment(path: Path) -> tuple[list[Batch], int]:
    """(the batches in the segment, 1 if it ends in a torn or unreadable entry else 0).

    A torn last entry (a crash mid-append) is skipped and counted rather than failing the
    whole segment.
    """
    data = path.read_bytes()
    batches: list[Batch] = []
    pos = 0
    while pos < len(data):
        newline = data.find(b"\n", pos)
        try:
            header = json.loads(data[pos:newline])
            query, lines, size = str(header["query"]), int(header["lines"]), int(header["bytes"])
            to = str(header.get("path", LINES_PATH))
        except (ValueError, KeyError, TypeError):
            return batches, 1
        body = data[newline + 1 : newline + 1 + size]
        if newline < 0 or len(body) < size:
            return batches, 1
        batches.append(Batch(query, body, lines, to))
        pos = newline + 1 + size
    return batches, 0


class SpoolDir:
    """A locked spool directory: its sealed segments, oldest first."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.bytes = 0
        self._next = 1
        for seg in self._sealed_paths():
            self.bytes += seg.stat().st_size
            self._next = max(self._next, int(seg.stem[4:]) + 1)

    def _sealed_paths(self) -> list[Path]:
        return sorted(p for p in self.path.glob("seg-*.spool") if p.stem[4:].isdigit())

    def segments(self) -> list[Segment]:
        return [Segment(self, p) for p in self._sealed_paths()]

    def seal_active(self) -> bool:
        """Rename the active segment to the next number; False if there was nothing."""
        active = self.path / _ACTIVE
        if not active.exists() or active.stat().st_size == 0:
            return False
        os.rename(active, self.path / f"seg-{self._next:06d}.spool")
        self._next += 1
        _fsync_dir(self.path)
        return True

    def forget(self, segment: Segment) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.bytes -= segment.path.stat().st_size
            segment.path.unlink()

    def release(self) -> None:
        """Unlock; removes the directory when no data is left in it. Idempotent."""
        if self._lock_fd < 0:
            return
        if not self.segments() and not (self.path / _ACTIVE).exists():
            with contextlib.suppress(OSError):
                (self.path / _LOCK).unlink()
                (self.path / _ACTIVE).unlink(missing_ok=True)
                self.path.rmdir()
        os.close(self._lock_fd)
        self._lock_fd = -1


class OwnSpool:
    """This run's spool directory, created on first use; capped at ``max_bytes``.

    Only the shipper thread uses it. ``append`` fsyncs before returning, so a batch that was
    spooled survives a crash of the wrapper.
    """

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.dir: SpoolDir | None = None
        self.dropped_lines = 0
        self.spooled_lines = 0
        self._active_bytes = 0
        self._active_since = 0.0

    def has_data(self) -> bool:
        """Whether this run has spooled batches not delivered yet (no directory listing)."""
        return self.dir is not None and (self.has_active() or self.dir.bytes > 0)

    def has_active(self) -> bool:
        """Whether the active segment holds a batch (an ``end`` marker may hold no line)."""
        return self._active_bytes > 0

    def active_bytes(self) -> int:
        return self._active_bytes

    def active_age(self) -> float:
        return time.monotonic() - self._active_since if self._active_bytes else 0.0

    def append(self, batch: Batch) -> bool:
        """Add one batch; False (and counted) over the cap."""
        d = self._ensure_dir()
        header: dict[str, object] = {
            "query": batch.query,
            "lines": batch.lines,
            "bytes": len(batch.body),
        }
        if batch.path != LINES_PATH:
            header["path"] = batch.path
        entry = json.dumps(header).encode() + b"\n" + batch.body
        if d.bytes + self._active_bytes + len(entry) > self.max_bytes:
            self.dropped_lines += batch.lines
            return False
        fd = os.open(d.path / _ACTIVE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, entry)
            os.fsync(fd)
        finally:
            os.close(fd)
        if not self._active_bytes:
            self._active_since = time.monotonic()
        self._active_bytes += len(entry)
        self.spooled_lines += batch.lines
        return True

    def seal(self) -> None:
        if self.dir is not None and self.dir.seal_active():
            self.dir.bytes += self._active_bytes
        self._active_bytes = 0

    def _ensure_dir(self) -> SpoolDir:
        if self.dir is None:
            # Made under a hidden name and renamed once locked, so no other run can adopt
            # it in between.
            self.root.mkdir(parents=True, exist_ok=True)
            name = f"run-{time.time_ns():020d}-{os.getpid()}"
            tmp = self.root / f".{name}"
            tmp.mkdir(mode=0o700)
            fd = os.open(tmp / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(tmp, self.root / name)
            self.dir = SpoolDir(self.root / name, fd)
        return self.dir


def adopt_leftovers(root: Path) -> list[SpoolDir]:
    """Lock every spool directory under ``root`` whose run has ended, oldest first.

    Their active segments are sealed; the caller replays and ``release()``s them. Directories
    of runs still going (lock held) are left alone.
    """
    adopted: list[SpoolDir] = []
    try:
        names = sorted(p for p in root.iterdir() if p.name.startswith("run-") and p.is_dir())
    except FileNotFoundError:
        return adopted
    for path in names:
        try:
            fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        try:
            spool = SpoolDir(path, fd)
            spool.seal_active()
        except OSError:
            os.close(fd)
            continue
        adopted.append(spool)
    return adopted


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
