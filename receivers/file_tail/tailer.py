"""``FileLogReceiver``: polls globs, follows files through rotation, delivers grouped lines.

One task polls every ``poll_interval``: it globs the include patterns, stats every match,
and reads what was appended since the last poll in 1 MiB chunks (``os.pread`` in a worker
thread), so memory stays bounded whatever the file size. Lines are grouped per file
(``reading.TailedFile``) and offered to the sink, with the file's ``LogLines`` to parse
them, in batches of at most ``max_batch_lines``. Offsets advance only past lines the sink
accepted; when it sheds load (``QueueFullError``) the lines are kept and offered again on
the next poll, and nothing more is read from that file meanwhile. See ``design.md`` for
rotation handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import logging
import os
import stat
import threading
import time
from collections import Counter
from typing import Any

from collector.component import Sink
from collector.config import Endpoint
from collector.errors import QueueFullError, ReceiverStartError
from receivers.file_tail.checkpoint import FileCheckpoint, load_checkpoints, save_checkpoints
from receivers.file_tail.config import FileLogConfig
from receivers.file_tail.fingerprint import GZIP_MAGIC, fingerprint_matches, read_fingerprint
from receivers.file_tail.reading import FileId, TailedFile
from receivers.log_records import LogLines

__all__ = ["FileLogReceiver"]

_log = logging.getLogger("gasoline.filelog")

_CHUNK = 1 << 20
# At most this much is read from one file per poll, so one huge file cannot starve the rest.
_MAX_CHUNKS_PER_POLL = 16
# A last line without its newline is held this long with no new bytes, then delivered as is.
_PARTIAL_LINE_TIMEOUT_S = 1.0
# A file that left the globs (renamed away, deleted) is still read this long after its
# last growth, for writers that keep their old descriptor a moment after rotation.
_ORPHAN_GRACE_S = 1.0
# Lines of one multi-line record written further apart than this become separate records.
_GROUP_WAIT_S = 0.02
# Offsets are persisted at most this often while running, and always on stop().
_CHECKPOINT_INTERVAL_S = 1.0


class FileLogReceiver:
    """Tails the files matching ``include``; one instance per ``filelog/<name>`` section."""

    def __init__(self, config: FileLogConfig, *, name: str = "filelog") -> None:
        self.name = name
        self._config = config
        self._storage = config.storage_path(name)
        self._interval = float(config.poll_interval)
        self._files: dict[FileId, TailedFile] = {}
        self._ignored: set[FileId] = set()  # copies made by copytruncate, already read
        self._open_errors: dict[str, str] = {}  # path -> why it cannot be opened
        self._stat_errors: dict[str, str] = {}  # path -> why it cannot be stat'ed (last scan)
        self._rotations: Counter[str] = Counter()
        self._checkpoints: list[FileCheckpoint] = []
        self.counts: Counter[str] = Counter()
        self._sink: Sink | None = None
        self._task: asyncio.Task[None] | None = None
        self._save_lock = threading.Lock()
        self._last_save = 0.0
        self._dirty = False
        self._status = "stopped"
        self._backlog = False  # a file has more to read than one poll reads

    # -- Receiver ---------------------------------------------------------------------

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return []

    def bound(self) -> dict[str, int]:
        return {}

    def stats(self) -> dict[str, dict[str, Any]]:
        files: list[dict[str, Any]] = [
            {
                "path": f.path,
                "size": f.size,
                "offset": f.read_offset,
                "committed": f.committed,
                "lines": f.lines,
                "rotations": self._rotations[f.path],
                "rotated_away": f.orphan,
                "error": f.error,
            }
            for f in self._files.values()
        ]
        errors = {**self._stat_errors, **self._open_errors}
        files += [{"path": p, "error": e} for p, e in sorted(errors.items())]
        return {
            self.name: {
                "status": self._status,
                "counts": dict(self.counts),
                "storage_dir": str(self._storage),
                "files": files,
            }
        }

    async def start(self, sink: Sink) -> None:
        """Load offsets and fix the starting position of every matching file, then return;
        reading happens in the poll task. Raises ``ReceiverStartError`` when the storage
        directory or its checkpoint is unusable. Files that do not exist yet are fine."""
        if self._task is not None:
            return
        try:
            await asyncio.to_thread(self._storage.mkdir, parents=True, exist_ok=True)
            self._checkpoints = await asyncio.to_thread(load_checkpoints, self._storage)
        except OSError as exc:
            raise ReceiverStartError(
                f"{self.name}: cannot use storage_dir {self._storage}: {exc.strerror or exc}"
            ) from exc
        except ValueError as exc:
            raise ReceiverStartError(f"{self.name}: {exc}") from exc
        self._sink = sink
        found, self._stat_errors = await asyncio.to_thread(self._scan)
        self._register(found, initial=True)
        for f in await asyncio.to_thread(self._find_rotated_while_down):
            self._files.setdefault(f.id, f)
        self._status = "running"
        self._task = asyncio.create_task(self._run(), name=f"gasoline-{self.name}")

    async def stop(self) -> None:
        """Cancel polling, deliver complete lines already read, persist offsets, close
        files. Idempotent and safe without ``start()``. A partial last line stays unread."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sink is not None:
            for f in self._files.values():
                f.flush_grouper()
                self._deliver(f)
            try:
                await asyncio.to_thread(self._save, self._entries())
            except OSError as exc:
                _log.error("%s: cannot save offsets in %s: %s", self.name, self._storage, exc)
        for f in self._files.values():
            with contextlib.suppress(OSError):
                os.close(f.fd)
        self._files.clear()
        self._ignored.clear()
        self._sink = None
        self._status = "stopped"

    # -- polling ----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._poll()
            except Exception:  # a task boundary: log once, count, keep polling
                _log.exception("%s: poll failed", self.name)
                self.counts["poll_errors"] += 1
            # A record still open in a grouper (the last lines read may be followed by more
            # of a stack trace) is handed over after a short quiet period, not a full poll.
            if self._backlog:
                await asyncio.sleep(0)  # a big file is being caught up with
            elif any(f.line_ends for f in self._files.values()):
                await asyncio.sleep(min(self._interval, _GROUP_WAIT_S))
            else:
                await asyncio.sleep(self._interval)

    async def _poll(self) -> None:
        self._backlog = False
        found, self._stat_errors = await asyncio.to_thread(self._scan)
        for f in list(self._files.values()):
            if f.orphan and f.id in found:
                f.orphan = False  # renamed back into the globs
            elif f.id not in found and not f.orphan:
                f.orphan = True
                f.idle_since = time.monotonic()
                self._rotations[f.path] += 1
                self.counts["rotations"] += 1
        # Finish what was renamed or deleted before reading its successor.
        for f in [f for f in self._files.values() if f.orphan]:
            await self._read_file(f, None)
        for f in list(self._files.values()):
            if not f.orphan:
                path, st = found[f.id]
                await self._read_file(f, (path, st))
        for f in self._register(found, initial=False):
            await self._read_file(f, found[f.id])
        now = time.monotonic()
        if self._dirty and now - self._last_save >= _CHECKPOINT_INTERVAL_S:
            self._last_save = now
            self._dirty = False
            try:
                await asyncio.to_thread(self._save, self._entries())
            except OSError as exc:
                self.counts["checkpoint_errors"] += 1
                _log.warning("%s: cannot save offsets in %s: %s", self.name, self._storage, exc)

    def _scan(self) -> tuple[dict[FileId, tuple[str, os.stat_result]], dict[str, str]]:
        """Glob and stat the matching regular files (runs in a worker thread); also returns
        the paths that could not be stat'ed, with the reason."""
        found: dict[FileId, tuple[str, os.stat_result]] = {}
        errors: dict[str, str] = {}
        for pattern in self._config.include or ():
            for path in sorted(glob.glob(os.path.expanduser(pattern), recursive=True)):
                if path.endswith(".gz") or self._excluded(path):
                    continue
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    errors[path] = exc.strerror or str(exc)
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.setdefault((st.st_dev, st.st_ino), (path, st))
        return found, errors

    def _excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        for pattern in self._config.exclude:
            pattern = os.path.expanduser(pattern)
            if fnmatch.fnmatch(path, pattern):
                return True
            if "/" not in pattern and fnmatch.fnmatch(name, pattern):
                return True
        return False

    def _register(
        self, found: dict[FileId, tuple[str, os.stat_result]], *, initial: bool
    ) -> list[TailedFile]:
        """Open files seen for the first time and decide where reading starts."""
        added: list[TailedFile] = []
        paths = {path for path, _ in found.values()}
        for gone in [p for p in self._open_errors if p not in paths]:
            del self._open_errors[gone]
        for file_id, (path, st) in found.items():
            if file_id in self._files or file_id in self._ignored:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if path not in self._open_errors:
                    _log.warning("%s: cannot open %s: %s", self.name, path, exc.strerror)
                self._open_errors[path] = exc.strerror or str(exc)
                continue
            self._open_errors.pop(path, None)
            try:
                st = os.fstat(fd)
                fp = read_fingerprint(fd, self._config.fingerprint_size)
            except OSError as exc:
                os.close(fd)
                self._open_errors[path] = exc.strerror or str(exc)
                continue
            copy = self._is_copy(fp, file_id)
            if copy is None:
                os.close(fd)  # too short to tell whether it is a copy: decide next poll
                continue
            if copy or fp.startswith(GZIP_MAGIC):
                os.close(fd)
                self._ignored.add(file_id)
                continue
            offset = self._resume_offset(file_id, fp, st.st_size)
            if offset is None:
                replaced = any(e.path == path for e in self._checkpoints)  # while we were down
                at_end = initial and not replaced and self._config.start_at == "end"
                offset = st.st_size if at_end else 0
            f = self._tailed(path, fd, st, fp, offset)
            self._files[f.id] = f
            added.append(f)
        return added

    def _find_rotated_while_down(self) -> list[TailedFile]:
        """Checkpointed files renamed away while we were stopped (``app.log`` -> ``app.log.1``)
        are finished from their saved offset, before their successors (runs in a thread)."""
        rotated: list[TailedFile] = []
        for entry in self._checkpoints:
            directory = os.path.dirname(entry.path) or "."
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                file_id = (st.st_dev, st.st_ino)
                if file_id != (entry.dev, entry.inode) or file_id in self._files:
                    continue
                if name.endswith(".gz") or st.st_size <= entry.offset:
                    break
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    break
                try:
                    same = read_fingerprint(fd, len(entry.fingerprint)) == entry.fingerprint
                    st = os.fstat(fd)
                except OSError:
                    same = False
                if not same:
                    os.close(fd)
                    break
                f = self._tailed(path, fd, st, entry.fingerprint, entry.offset)
                f.orphan = True
                rotated.append(f)
                break
        self._checkpoints = []
        return rotated

    def _is_copy(self, fp: bytes, file_id: FileId) -> bool | None:
        """A new file that starts like one we follow is a copy (copytruncate's ``.1``);
        None when it is a shorter prefix of one, so it cannot be told yet."""
        if not fp:
            return False
        for f in self._files.values():
            if f.id == file_id or f.orphan or not f.fingerprint:
                continue
            if len(fp) >= len(f.fingerprint) and fp.startswith(f.fingerprint):
                return True
            if f.fingerprint.startswith(fp):
                return None
        return False

    def _resume_offset(self, file_id: FileId, fp: bytes, size: int) -> int | None:
        for i, entry in enumerate(self._checkpoints):
            same_inode = (entry.dev, entry.inode) == file_id
            full = len(entry.fingerprint) == self._config.fingerprint_size == len(fp)
            if (same_inode and fingerprint_matches(entry.fingerprint, fp)) or (
                full and fp == entry.fingerprint
            ):
                del self._checkpoints[i]
                return entry.offset if entry.offset <= size else 0
        return None

    def _tailed(
        self, path: str, fd: int, st: os.stat_result, fingerprint: bytes, offset: int
    ) -> TailedFile:
        max_line_bytes = self._config.max_line_bytes
        f = TailedFile(
            path, fd, st, fingerprint, offset, max_line_bytes=max_line_bytes, counts=self.counts
        )
        f.log_lines = self._log_lines(path)
        return f

    def _log_lines(self, path: str) -> LogLines:
        cfg = self._config
        return LogLines(
            service=cfg.service,
            source="backend",
            tags=cfg.tags,
            patterns=cfg.patterns,
            attributes={"log.file.path": path, "log.file.name": os.path.basename(path)},
        )

    # -- reading ----------------------------------------------------------------------

    async def _read_file(self, f: TailedFile, seen: tuple[str, os.stat_result] | None) -> None:
        """Read what was appended to ``f``; never raises for I/O problems of this file."""
        if f.id not in self._files:
            return
        try:
            if seen is not None:
                path, st = seen
                if path != f.path:  # renamed, still matching the globs
                    self._rotations[f.path] += 1
                    self.counts["rotations"] += 1
                    f.path = path
                    f.log_lines = self._log_lines(path)
                f.size = st.st_size
                if st.st_size < f.read_offset or not await self._same_content(f):
                    self._truncated(f)
            else:
                f.size = os.fstat(f.fd).st_size
            if not self._deliver(f):
                return
            got = False
            chunks = 0
            while f.read_offset < f.size or seen is None:
                if chunks == _MAX_CHUNKS_PER_POLL:
                    self._backlog = True  # let the other files have their turn
                    break
                chunks += 1
                data = await asyncio.to_thread(os.pread, f.fd, _CHUNK, f.read_offset)
                if not data:
                    break
                got = True
                f.read_offset += len(data)
                f.size = max(f.size, f.read_offset)
                self.counts["bytes"] += len(data)
                f.split(data)
                if len(f.ready) >= self._config.max_batch_lines:
                    if not self._deliver(f):
                        return
                    await asyncio.sleep(0)
            f.error = None
            self._idle(f, got)
            self._deliver(f)
        except OSError as exc:
            if f.error is None:
                _log.warning("%s: cannot read %s: %s", self.name, f.path, exc)
                self.counts["read_errors"] += 1
            f.error = exc.strerror or str(exc)

    async def _same_content(self, f: TailedFile) -> bool:
        """False when the start of the file changed (truncated and rewritten)."""
        if f.size == f.read_offset:
            return True  # nothing new; a rewrite to the same size is caught once it grows
        size = self._config.fingerprint_size
        current = await asyncio.to_thread(read_fingerprint, f.fd, size)
        if not fingerprint_matches(f.fingerprint, current):
            return False
        if len(current) > len(f.fingerprint):
            f.fingerprint = current
        return True

    def _truncated(self, f: TailedFile) -> None:
        """copytruncate: finish the old content from the copy if there is one, restart at 0."""
        self._rotations[f.path] += 1
        self.counts["rotations"] += 1
        self._read_rest_from_copy(f)
        f.finish_partial()
        f.flush_grouper()
        f.skipping = False
        f.read_offset = f.committed = f.ready_end = 0
        f.fingerprint = read_fingerprint(f.fd, self._config.fingerprint_size)
        self._dirty = True

    def _read_rest_from_copy(self, f: TailedFile) -> None:
        if not f.fingerprint:
            return
        directory, name = os.path.split(f.path)
        try:
            siblings = os.listdir(directory or ".")
        except OSError:
            return
        for sibling in sorted(siblings):
            if not sibling.startswith(name) or sibling == name or sibling.endswith(".gz"):
                continue
            path = os.path.join(directory, sibling)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                fp = read_fingerprint(fd, len(f.fingerprint))
                if fp != f.fingerprint or st.st_size < f.read_offset:
                    continue
                offset = f.read_offset
                while data := os.pread(fd, _CHUNK, offset):
                    offset += len(data)
                    self.counts["bytes"] += len(data)
                    f.split(data)
                self._ignored.add((st.st_dev, st.st_ino))
                self.counts["copytruncate_recovered_bytes"] += offset - f.read_offset
                return
            except OSError:
                continue
            finally:
                os.close(fd)

    def _idle(self, f: TailedFile, got: bool) -> None:
        """On a poll that found nothing new: hand over the pending group; after a while,
        a partial last line; close a rotated-away file once its grace time is over."""
        if f.orphan:
            f.flush_grouper()  # its lines are complete; its successor comes next
        if got:
            return
        f.flush_grouper()
        waited = time.monotonic() - f.idle_since
        if f.partial and waited >= _PARTIAL_LINE_TIMEOUT_S:
            self.counts["partial_lines_flushed"] += 1
            f.finish_partial()
            f.flush_grouper()
        if f.orphan and waited >= _ORPHAN_GRACE_S:
            f.finish_partial()
            f.flush_grouper()
            if self._deliver(f):
                os.close(f.fd)
                del self._files[f.id]

    def _deliver(self, f: TailedFile) -> bool:
        """Offer the file's ready records; False if the sink is shedding load (kept)."""
        if not f.ready:
            return True
        assert self._sink is not None and f.log_lines is not None
        try:
            self._sink.offer_lines(f.log_lines, f.ready, kept_on_refusal=True)
        except QueueFullError:
            self.counts["queue_full_retries"] += 1
            return False
        self.counts["records"] += len(f.ready)
        if f.accepted():
            self._dirty = True
        return True

    # -- checkpoints --------------------------------------------------------------------

    def _entries(self) -> list[FileCheckpoint]:
        return [
            FileCheckpoint(f.path, f.id[0], f.id[1], f.fingerprint, f.committed)
            for f in self._files.values()
            if not f.orphan
        ]

    def _save(self, entries: list[FileCheckpoint]) -> None:
        with self._save_lock:
            save_checkpoints(self._storage, entries)
