"""Durable history of log records: a write-ahead file and sealed, compressed blocks.

Every batch the record store takes is appended to ``wal.log`` at once (one JSON line
per batch: a ``kill -9`` loses nothing the kernel has; the file is synced every
``sync_interval`` against a power cut). Once ``block_records`` records (or 8 MiB of
rows) are pending they are sealed into a block (``collector.store.blocks``) by one
worker thread: ``wal.log`` is renamed aside (``wal.NNNNNNNN.log``; a new one takes what
follows), and the thread syncs it, has a child process encode and compress the block
from its rows (``collector.store.encoder``), writes it to a temporary file, syncs it
and renames it into place. The loop
takes the finished block in on its next append or sync (``_harvest``): only then does the
block become visible to queries and its records stop being pending (until then they are
answered from memory), and the set-aside file is removed. Sealing on the loop cost it
~20% of the history's time at ingest (bench/retention_bench.py, profiled). If two
blocks' worth wait beside the one being written, an append waits for it; ``close`` waits
for it too. A restart replays the set-aside files, then ``wal.log``.

The newest records also stay in the in-memory tier; queries read the blocks only below
the oldest record the memory tier holds, so nothing is seen twice. The blocks' Bloom
filters live side by side in two ``FilterShelf``s (trace and correlation ids; text), so
a lookup by id, or a text query, asks a day's ~5,200 of them at once.

Blocks are removed oldest first past ``max_bytes`` or ``max_age``, every record counted
by reason. A block that fails its checksum is skipped and counted (``corrupt``); a write
that fails (disk full) is counted and reported, the records stay in memory, and sealing
is tried again later. Only one process owns a data directory (an advisory lock); another
runs in memory only and says why.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import itertools
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from collector.config import HistoryConfig
from collector.model import DropReason, Record
from collector.store.blocks import (
    BLOOM_PROBES,
    DECODE_ERRORS,
    BlockError,
    BlockHead,
    Probe,
    TextQuery,
    block_columns,
    block_ids,
    correlation_key,
    decode_lines,
    decode_rows,
    encode_rows,
    head_bytes_needed,
    range_records,
    read_head,
    text_records,
    trace_records,
)
from collector.store.columns import Columns
from collector.store.encoder import BlockEncoder
from collector.store.filter_shelf import FilterShelf

__all__ = ["ColdChunk", "History", "write_atomically"]

_WAL = "wal.log"
_SEGMENT = "wal.{:08d}.log"  # a write-ahead file set aside while its records are sealed
_LOCK = "lock"
_BLOCKS = "blocks"
_SUFFIX = ".blk"
_HEAD_PROBE = 64 * 1024
_CACHE_BLOCKS = 4
_STRETCH = 256  # rows a page decodes at a time, newest first
_MAX_PENDING_BLOCKS = 4  # while writes fail, what waits in memory beyond this is lost
# While a block is being sealed, what waits beyond this many blocks' worth makes the
# next append wait for it (a disk slower than ingest must not grow memory unbounded).
_MAX_WAITING_BLOCKS = 2
# A block is sealed at block_records records or this many bytes of rows, whichever comes
# first: what waits for its block stays in memory too, so big records must not pile up.
_BLOCK_BYTES = 8 * 2**20


class ColdChunk:
    """Records of the disk tier not yet in a block (being sealed), with the summary a
    newest-first scan skips on (the face of ``RecordChunk``)."""

    __slots__ = (
        "_records",
        "levels",
        "live_count",
        "max_ns",
        "min_ns",
        "prefix_max_ns",
        "services",
        "sources",
    )

    def __init__(self, records: list[Record], prefix_max_ns: int) -> None:
        self._records = records
        times = [r.time_ns for r in records]
        self.min_ns = min(times)
        self.max_ns = max(times)
        self.prefix_max_ns = max(prefix_max_ns, self.max_ns)
        self.sources = {r.source for r in records}
        self.services = {r.service for r in records}
        self.levels = {r.level for r in records}
        self.live_count = len(records)

    def live(self) -> list[Record]:
        return self._records

    def of_source(self, source: str) -> list[Record]:
        return [r for r in self._records if r.source == source]

    def candidates(
        self, text: str | None, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[Record]:
        del text, since_ns, until_ns
        return self._records


class BlockChunk:
    """A block's records below the memory tier (``below_id``), with its head's summary;
    made for each block a scan walks past (thousands in a day), so it is four slots."""

    __slots__ = ("_below_id", "_head", "_history", "prefix_max_ns")

    def __init__(
        self, history: History, head: BlockHead, prefix_max_ns: int, below_id: int
    ) -> None:
        self._history = history
        self._head = head
        self.prefix_max_ns = prefix_max_ns
        self._below_id = below_id

    @property
    def min_ns(self) -> int:
        return self._head.min_ns

    @property
    def max_ns(self) -> int:
        return self._head.max_ns

    @property
    def sources(self) -> AbstractSet[str]:
        return self._head.sources

    @property
    def services(self) -> AbstractSet[str]:
        return self._head.services

    @property
    def levels(self) -> AbstractSet[str]:
        return self._head.levels

    @property
    def live_count(self) -> int:
        """At most: rows at or past the memory tier are not read."""
        return self._head.count

    def live(self) -> list[Record]:
        return self._history.below(self._history.records_of(self._head), self._below_id)

    def of_source(self, source: str) -> list[Record]:
        return [r for r in self.live() if r.source == source]

    def candidates(
        self, text: str | None, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[Record]:
        """What may match a message ``text`` filter and a time range: only the rows
        whose message holds the text, or else those in the range, are decoded; else
        every record."""
        history, head = self._history, self._head
        if text:
            found = history.search(head, text, self._below_id)
            if found is not None:
                return found
        lo = 0 if since_ns is None else since_ns
        hi = 2**63 if until_ns is None else until_ns
        if lo > head.min_ns or hi < head.max_ns:
            return history.window(head, lo, hi, self._below_id)
        return self.live()

    def may_match(self, where: Mapping[str, AbstractSet[str]]) -> bool:
        """Whether some row may be of a source, service and level ``where`` allows."""
        return self._head.may_match(where)

    def newest_first(
        self,
        text: str | None,
        since_ns: int | None,
        until_ns: int | None,
        floor: Callable[[], int],
        where: Mapping[str, AbstractSet[str]],
    ) -> Iterator[Record | None]:
        """``candidates`` newest first, for a scan that pages: the rows holding the text
        (all without one), of the time range, whose categories are among those ``where``
        allows (source, service, level: values each), are decoded a stretch at a time,
        and those older than ``floor()`` (what the page already holds is newer) are
        passed over undecoded, each stretch that passes any yielding None. A page from a
        block then costs its newest matching rows, not its 16,384."""
        head, history = self._head, self._history
        if history.decoded(head) or head.version < 3:
            yield from reversed(self.candidates(text, since_ns, until_ns))
            return
        lo = 0 if since_ns is None else since_ns
        hi = 2**63 if until_ns is None else until_ns
        yield from history.rows_newest_first(head, text, lo, hi, self._below_id, floor, where)


class History:
    """The disk tier of one data directory. Not thread-safe: the daemon's loop only (the
    sealing thread is handed copies and touches none of its state but its encoder)."""

    def __init__(self, config: HistoryConfig, evicted: Counter[DropReason]) -> None:
        self.config = config
        self.dir = Path(os.path.expanduser(config.dir))
        self.max_age_ns = int(config.max_age * 1e9)
        self.sync_ns = int(config.sync_interval * 1e9)
        self.evicted = evicted
        self.evicted_here: Counter[DropReason] = Counter()
        self.state = "closed"
        self.error: str | None = None
        self.write_errors = 0
        self.corrupt_blocks = 0
        self.wal_lines_skipped = 0
        self.restored = 0
        self.load_s = 0.0
        self.blocks: list[BlockHead] = []
        self._prefix: list[int] = []
        self.sealed_bytes = 0
        self.sealed_records = 0
        self.pending: list[Record] = []  # in no block yet: in the write-ahead file
        self._lines: list[tuple[int, bytes]] = []  # its lines: (records, encoded rows)
        self._pending_bytes = 0  # of those lines
        self._wal: int | None = None
        self._wal_last_id: int | None = None  # the newest record in wal.log, if any
        self._segment_seq = 0
        self._segments: list[tuple[Path, int]] = []  # set aside: (path, newest id in it)
        self._lock: int | None = None
        self._sealer: ThreadPoolExecutor | None = None
        self._encoder = BlockEncoder()  # the sealing thread's alone
        self._job: Future[BlockHead] | None = None
        self._job_taken = (0, 0, 0, 0)  # its records, lines, bytes of rows, sealed_ns
        self._synced_ns = 0
        self._unsynced = False
        self._retry_at = config.block_records
        self._retry_bytes = _BLOCK_BYTES
        self._cache: OrderedDict[int, list[Record]] = OrderedDict()
        self._columns: OrderedDict[int, Columns] = OrderedDict()
        # The blocks' Bloom filters live here (heads keep views): asked all at once.
        self._traces: FilterShelf[BlockHead] = FilterShelf(_attach_bloom)
        self._texts: FilterShelf[BlockHead] = FilterShelf(_attach_text_bloom)
        self._query_text = ""
        self._query_added = -1
        self._admitted: set[int] | None = None  # id() of the heads that may hold _query_text
        self._admitted_newest: list[BlockHead] = []  # those heads, newest first
        self.memory_floor: Callable[[], int] = lambda: 2**63
        """The id from which the memory tier holds every record (set by the record store)."""
        self.others_bytes: Callable[[], int] = lambda: 0
        """Bytes of ``max_bytes`` the span tier uses (set by the store): records get the rest."""

    @property
    def active(self) -> bool:
        return self.state == "ok"

    # -- open and close -----------------------------------------------------------

    def open(self) -> list[Record]:
        """Lock the directory, read the blocks' heads and replay the write-ahead file;
        returns the replayed records (newer than any block), for the memory tier. On
        any failure the history stays off and ``state`` says why."""
        started = time.perf_counter()
        try:
            (self.dir / _BLOCKS).mkdir(parents=True, exist_ok=True)
            lock = os.open(self.dir / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(lock)
                self.state = f"off: {self.dir} is in use by another gasoline process"
                return []
            self._lock = lock
            self._load_blocks()
            replayed = self._replay()
            self._wal = os.open(self.dir / _WAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            self.state = (
                f"off: cannot use {self.dir} ({e.strerror or e}); set service.store.history.dir"
            )
            self._release()
            return []
        self.restored = self.sealed_records + len(replayed)
        self.state = "ok"
        self.load_s = time.perf_counter() - started
        return replayed

    def close(self, now_ns: int) -> None:
        """Wait for the block being sealed, seal what is pending (so a restart has
        nothing to replay), sync, unlock."""
        if not self.active:
            return
        self.settle(now_ns)
        while self.pending and self.seal(now_ns, whole=True):
            pass
        self.sync()
        self._release()
        self.state = "closed"

    def _release(self) -> None:
        if self._sealer is not None:
            self._sealer.shutdown(wait=True)
            self._sealer = None
        self._encoder.close()
        for fd in (self._wal, self._lock):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wal = self._lock = None

    def _load_blocks(self) -> None:
        heads = []
        for path in (self.dir / _BLOCKS).iterdir():
            if path.suffix == ".tmp":
                path.unlink(missing_ok=True)  # a write that never completed
                continue
            if path.suffix != _SUFFIX:
                continue
            try:
                heads.append(_open_head(path))
            except (OSError, BlockError):
                self._corrupt(path, None)
        heads.sort(key=lambda h: h.first_id)
        for head in heads:
            self._append_block(head)

    def _replay(self) -> list[Record]:
        """What the write-ahead files (those set aside for a block that was not written
        before a crash, then ``wal.log``) hold beyond the last block, as pending records;
        they are written back as one ``wal.log``."""
        paths = sorted(self.dir.glob("wal.*.log"))
        paths.append(self.dir / _WAL)
        data = b""
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                data += path.read_bytes()
        last = self.blocks[-1].last_id if self.blocks else 0
        for line in data.splitlines(keepends=True):
            try:
                records = decode_lines([line])
            except (ValueError, TypeError, IndexError):
                self.wal_lines_skipped += 1  # torn by a crash mid-write, or damaged
                continue
            if records and records[0].id <= last:
                records = [r for r in records if r.id > last]  # sealed before the crash
                line = encode_rows(records)
            if records:
                self.pending += records
                self._lines.append((len(records), line))
                self._pending_bytes += len(line)
                last = records[-1].id
        kept = b"".join(line for _, line in self._lines)
        wal = self.dir / _WAL
        if kept != data or len(paths) > 1:  # new lines must not follow a torn one
            write_atomically(wal.with_suffix(".tmp"), wal, kept)
            for path in paths[:-1]:
                path.unlink()
        self._wal_last_id = last if self.pending else None
        return list(self.pending)

    # -- writing ------------------------------------------------------------------

    def append(self, records: list[Record], now_ns: int) -> None:
        """Write a batch ahead (already redacted and capped), then start sealing a block
        if it is time (in a worker thread: the caller's loop goes on)."""
        if not self.active or not records:
            return
        self._harvest()
        line = encode_rows(records)
        self.pending += records
        self._lines.append((len(records), line))
        self._pending_bytes += len(line)
        self._wal_last_id = max(self._wal_last_id or 0, records[-1].id)
        try:
            assert self._wal is not None
            os.write(self._wal, line)
            self._unsynced = True
        except OSError as e:
            self._failed("the write-ahead file", e)
        if now_ns - self._synced_ns >= self.sync_ns:
            self.sync(now_ns)
        if self._job is not None and self._over(_MAX_WAITING_BLOCKS):
            self._harvest(wait=True)  # the disk is slower than ingest: wait for it
        if self._job is None and self._over(1):
            self._start_seal(now_ns, whole=False)

    def _over(self, blocks: int) -> bool:
        """Whether what is pending is this many blocks' worth (records or bytes)."""
        return (
            len(self.pending) >= self._retry_at + (blocks - 1) * self.config.block_records
            or self._pending_bytes >= self._retry_bytes + (blocks - 1) * _BLOCK_BYTES
        )

    def sync(self, now_ns: int | None = None) -> None:
        """Make what was written survive a power cut (called at least every second),
        and take in a block the worker finished."""
        self._synced_ns = time.time_ns() if now_ns is None else now_ns
        self._harvest()
        if self._wal is None or not self._unsynced:
            return
        try:
            os.fsync(self._wal)
            self._unsynced = False
        except OSError as e:
            self._failed("the write-ahead file", e)

    def seal(self, now_ns: int, *, whole: bool = False) -> bool:
        """Write the oldest pending batches (about ``block_records`` records; with
        ``whole``, all) as one block and wait for it (temp, fsync, rename), then hold the
        bounds. A failed write leaves the records pending; returns success."""
        self._harvest(wait=True)
        return self._start_seal(now_ns, whole=whole) and bool(self._harvest(wait=True))

    def settle(self, now_ns: int | None = None) -> None:
        """Wait for the block being sealed, then seal every block that is due, each
        waited for; stops at a failed write. What a completed ``append`` has started is
        done when this returns (for tests and benchmarks)."""
        done = self._harvest(wait=True)
        while done is not False and self._over(1):
            done = self.seal(time.time_ns() if now_ns is None else now_ns)

    def _start_seal(self, now_ns: int, *, whole: bool) -> bool:
        """Hand the oldest pending batches to the sealing thread: their write-ahead file
        is set aside (a new ``wal.log`` takes what follows) and removed once a block
        holds them. Until ``_harvest`` takes the block in, they stay pending (and
        queryable); the block file is invisible to queries. False if nothing is pending."""
        count = taken = size = 0
        while taken < len(self._lines) and (
            whole or (count < self.config.block_records and size < _BLOCK_BYTES)
        ):
            count += self._lines[taken][0]
            size += len(self._lines[taken][1])
            taken += 1
        if not count:
            return False
        old_wal = None
        if self._wal_last_id is not None and self._wal is not None:
            old_wal = self._set_aside()
        if self._sealer is None:
            self._sealer = ThreadPoolExecutor(1, thread_name_prefix="gasoline-seal")
        rows = [line for _, line in self._lines[:taken]]
        self._job = self._sealer.submit(self._write_block, rows, now_ns, old_wal)
        self._job_taken = (count, taken, size, now_ns)
        return True

    def _set_aside(self) -> int | None:
        """Rename ``wal.log`` to a segment and open a new one; the old descriptor (for
        the sealing thread to sync and close), or None if the rename failed."""
        assert self._wal is not None and self._wal_last_id is not None
        self._segment_seq += 1  # replayed in this order
        segment = self.dir / _SEGMENT.format(self._segment_seq)
        while segment.exists():
            self._segment_seq += 1
            segment = self.dir / _SEGMENT.format(self._segment_seq)
        wal = self.dir / _WAL
        try:
            os.rename(wal, segment)
        except OSError as e:
            self._failed("the write-ahead file", e)
            return None
        try:
            new_wal = os.open(wal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.rename(segment, wal)
            self._failed("the write-ahead file", e)
            return None
        old_wal, self._wal = self._wal, new_wal
        self._segments.append((segment, self._wal_last_id))
        self._wal_last_id = None
        self._unsynced = False  # the sealing thread syncs the old file
        return old_wal

    def _write_block(self, rows: list[bytes], now_ns: int, old_wal: int | None) -> BlockHead:
        """In the sealing thread: sync the set-aside write-ahead file, have the block
        encoded from its rows (in a child process: ``BlockEncoder``), write it
        atomically. Touches no state of ``self`` but the encoder, its alone."""
        if old_wal is not None:
            try:
                os.fsync(old_wal)
            finally:
                os.close(old_wal)
            _sync_dir(self.dir)
        data, head = self._encoder.encode(rows, now_ns)
        path = self._path(head)
        tmp = path.with_suffix(".tmp")
        try:
            write_atomically(tmp, path, data)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return head

    def _harvest(self, *, wait: bool = False) -> bool | None:
        """Take in the block the sealing thread finished (or, with ``wait``, is
        writing): it becomes visible and its records stop being pending, at once.
        Returns whether it was written; None if there was none to take."""
        job = self._job
        if job is None or (not wait and not job.done()):
            return None
        self._job = None
        count, taken, size, now_ns = self._job_taken
        try:
            head = job.result()
        except OSError as e:
            self._failed(f"block {self.pending[0].id:020d}{_SUFFIX}", e)
            self._retry_at = count + max(1, self.config.block_records // 4)
            self._retry_bytes = self._pending_bytes + _BLOCK_BYTES // 4
            self._shed()
            return False
        self._retry_at = self.config.block_records
        self._retry_bytes = _BLOCK_BYTES
        self.error = None
        self._append_block(head)
        del self.pending[:count]
        del self._lines[:taken]
        self._pending_bytes -= size
        while self._segments and self._segments[0][1] <= head.last_id:
            with contextlib.suppress(OSError):
                self._segments.pop(0)[0].unlink()
        self.enforce(now_ns)
        return True

    def _shed(self) -> None:
        """While writes fail, keep at most a few blocks' worth waiting in memory."""
        limit = _MAX_PENDING_BLOCKS * self.config.block_records
        while (
            len(self.pending) > limit or self._pending_bytes > _MAX_PENDING_BLOCKS * _BLOCK_BYTES
        ) and len(self._lines) > 1:
            count, line = self._lines.pop(0)
            self._pending_bytes -= len(line)
            del self.pending[:count]
            self._count(DropReason.WRITE_FAILED, count)

    def _failed(self, what: str, e: OSError) -> None:
        self.write_errors += 1
        self.error = f"writing {what} in {self.dir} failed: {e.strerror or e}"

    def _append_block(self, head: BlockHead) -> None:
        self._traces.add(head, head.bloom, BLOOM_PROBES)
        self._texts.add(head, head.text_bloom, head.text_probes)
        self.blocks.append(head)
        prev = self._prefix[-1] if self._prefix else 0
        self._prefix.append(max(prev, head.max_ns))
        self.sealed_bytes += head.file_bytes
        self.sealed_records += head.count

    # -- bounds -------------------------------------------------------------------

    def enforce(self, now_ns: int) -> None:
        """Remove the oldest blocks past ``max_bytes`` or ``max_age``; records still in
        the memory tier are counted when they leave it."""
        expire_before = now_ns - self.max_age_ns
        below_id = self.memory_floor()
        while self.blocks:
            oldest = self.blocks[0]
            if self.sealed_bytes + self.others_bytes() > self.config.max_bytes:
                reason = DropReason.EVICTED_BYTE_LIMIT
            elif oldest.sealed_ns < expire_before:
                reason = DropReason.EXPIRED
            else:
                return
            self._drop_block(0, reason, below_id)

    def _drop_block(self, index: int, reason: DropReason, below_id: int | None) -> None:
        head = self.blocks.pop(index)
        self._prefix.pop(index)
        self._traces.drop(head)
        self._texts.drop(head)
        self.sealed_bytes -= head.file_bytes
        self.sealed_records -= head.count
        self._cache.pop(head.first_id, None)
        self._columns.pop(head.first_id, None)
        self._count(reason, self._rows_below(head, below_id))
        with contextlib.suppress(OSError):
            self._path(head).unlink()

    def _count(self, reason: DropReason, n: int) -> None:
        if n:
            self.evicted[reason] += n
            self.evicted_here[reason] += n

    def _corrupt(self, path: Path, head: BlockHead | None) -> None:
        """Skip a block that fails its checks: counted, set aside, never read again."""
        self.corrupt_blocks += 1
        with contextlib.suppress(OSError):
            path.rename(path.with_suffix(".corrupt"))
        if head is not None and head in self.blocks:
            self._drop_block(self.blocks.index(head), DropReason.CORRUPT, None)

    # -- reading ------------------------------------------------------------------

    def covers(self, record_id: int) -> bool:
        """Whether a record (by id) is kept here, so leaving memory does not lose it."""
        if self.blocks and record_id >= self.blocks[0].first_id:
            return True
        return bool(self.pending) and record_id >= self.pending[0].id

    @property
    def next_id(self) -> int:
        """An id above every record kept, for the pipeline to go on from."""
        last = self.blocks[-1].last_id if self.blocks else 0
        if self.pending:
            last = max(last, self.pending[-1].id)
        return last + 1

    def prefix_max_ns(self) -> int:
        return self._prefix[-1] if self._prefix else 0

    def oldest_ns(self) -> int | None:
        if self.blocks:
            return self.blocks[0].min_ns
        return min(r.time_ns for r in self.pending) if self.pending else None

    def count_below(self, below_id: int) -> int:
        """How many records with ids under ``below_id`` this tier holds."""
        total = self.sealed_records + sum(1 for r in self._pending_below(below_id))
        for head in reversed(self.blocks):  # usually none: memory holds what is newer
            if head.last_id < below_id:
                break
            total -= head.count - self._rows_below(head, below_id)
        return total

    def chunks_newest_first(
        self, below_id: int, text: str | None = None
    ) -> Iterator[ColdChunk | BlockChunk]:
        """The blocks below ``below_id`` (and what is being sealed), newest first; given a
        ``text`` filter, only the blocks its text index may hold it in (a rare text's
        few dozen of a day's thousands)."""
        pending = list(self._pending_below(below_id))
        if pending:
            yield ColdChunk(pending, self.prefix_max_ns())
        if text and self._admitted_for(text) is not None:
            # Found as the scan goes: a common word's page is in the newest few.
            found = map(self._index, self._admitted_newest)
            indices: Iterable[int] = (i for i in found if i is not None)
        else:
            indices = range(len(self.blocks) - 1, -1, -1)
        for i in indices:
            head = self.blocks[i]
            if head.first_id < below_id:
                yield BlockChunk(self, head, self._prefix[i], below_id)

    def _index(self, head: BlockHead) -> int | None:
        """Where ``head`` is among the blocks (None: it has been dropped)."""
        i = bisect.bisect_left(self.blocks, head.first_id, key=_first_id)
        return i if i < len(self.blocks) and self.blocks[i] is head else None

    def records_of(self, head: BlockHead) -> list[Record]:
        """A block's records (the few read last are cached); [] if it proves corrupt."""
        cached = self._cache.get(head.first_id)
        if cached is not None:
            self._cache.move_to_end(head.first_id)
            return cached
        body = self._body(head)
        if body is None:
            return []
        try:
            records = decode_rows(head, body)
        except (BlockError, ValueError) as e:
            self._corrupt_read(head, e)
            return []
        self._cache[head.first_id] = records
        if len(self._cache) > _CACHE_BLOCKS:
            self._cache.popitem(last=False)
        return records

    def _admitted_for(self, text: str) -> set[int] | None:
        """id() of the heads whose text index may hold ``text`` (None: any may). One
        query asks every block in turn: the shelf answers for all of them once."""
        if text != self._query_text or self._query_added != self._texts.added:
            query = TextQuery(text)
            admitted = self._texts.admitted(query) if query.usable else None
            self._admitted = None if admitted is None else {id(h) for h in admitted}
            self._admitted_newest = sorted(admitted or [], key=_first_id, reverse=True)
            self._query_text, self._query_added = text, self._texts.added
        return self._admitted

    def search(self, head: BlockHead, text: str, below_id: int) -> list[Record] | None:
        admitted = self._admitted_for(text)
        if admitted is not None and id(head) not in admitted:
            return []
        return self._part(
            head,
            below_id,
            lambda c: None if (rows := c.text_rows(text)) is None else c.records(rows),
            lambda h, body: text_records(h, body, text),
        )

    def window(self, head: BlockHead, lo: int, hi: int, below_id: int) -> list[Record]:
        return (
            self._part(
                head,
                below_id,
                lambda c: c.records(c.range_rows(lo, hi)),
                lambda h, body: range_records(h, body, lo, hi),
            )
            or []
        )

    def decoded(self, head: BlockHead) -> bool:
        """Whether the block's records are at hand, decoded whole."""
        return head.first_id in self._cache

    def rows_newest_first(
        self,
        head: BlockHead,
        text: str | None,
        lo: int,
        hi: int,
        below_id: int,
        floor: Callable[[], int],
        where: Mapping[str, AbstractSet[str]],
    ) -> Iterator[Record | None]:
        """``BlockChunk.newest_first`` of a version 3 block; what it yields stops where
        the block proves corrupt."""
        try:
            columns = self._columns_of(head)
            if columns is None:
                return
            found = columns.text_rows(text) if text else None
            rows: Sequence[int] = range(head.count) if found is None else found
            if lo > head.min_ns or hi < head.max_ns:
                times = columns.times()
                rows = [i for i in rows if lo <= times[i] <= hi]
            for name, allowed in where.items():
                wanted = head.codes_of(name, allowed)
                of_row = map(columns.codes(name).__getitem__, rows)
                rows = list(itertools.compress(rows, map(wanted.__contains__, of_row)))
            if rows and head.last_id >= below_id:
                ids = columns.ids()
                rows = [i for i in rows if ids[i] < below_id]
            for end in range(len(rows), 0, -_STRETCH):
                stretch = rows[max(0, end - _STRETCH) : end]
                at_least = floor()
                if at_least >= 0:
                    times = columns.times()
                    kept = [i for i in stretch if times[i] >= at_least]
                    if len(kept) < len(stretch):
                        yield None
                    stretch = kept
                yield from reversed(columns.records(stretch))
        except DECODE_ERRORS as e:
            self._corrupt_read(head, e)

    def _part(
        self,
        head: BlockHead,
        below_id: int,
        read: Callable[[Columns], list[Record] | None],
        read_rows: Callable[[BlockHead, bytes], list[Record] | None],
    ) -> list[Record] | None:
        """Some of a block's records: what ``read`` makes of its columns (``read_rows`` of
        the rows of a block before format 3; None: it cannot tell, the caller reads them
        all), or every one if the block is decoded already; [] if it proves corrupt."""
        cached = self._cache.get(head.first_id)
        if cached is not None:
            return self.below(cached, below_id)
        try:
            if head.version >= 3:
                columns = self._columns_of(head)
                if columns is None:
                    return []
                found = read(columns)
            else:
                body = self._body(head)
                if body is None:
                    return []
                found = read_rows(head, body)
        except DECODE_ERRORS as e:
            self._corrupt_read(head, e)
            return []
        return None if found is None else self.below(found, below_id)

    def _columns_of(self, head: BlockHead) -> Columns | None:
        """A version 3 block's columns (None: its file could not be read, counted), kept
        for the next few reads: a page, then the next, or another filter on the same
        hour, costs its rows, not the block's read and decompression again."""
        columns = self._columns.get(head.first_id)
        if columns is not None:
            self._columns.move_to_end(head.first_id)
            return columns
        body = self._body(head)
        if body is None:
            return None
        columns = self._columns[head.first_id] = block_columns(head, body)
        if len(self._columns) > _CACHE_BLOCKS:
            self._columns.popitem(last=False)
        return columns

    def by_trace(self, trace_id: bytes, below_id: int) -> list[Record]:
        """Records of one trace (oldest first), from the blocks whose filter admits it."""
        out: list[Record] = []
        for head in self._may_hold(Probe(trace_id), below_id):
            body = self._body(head)
            if body is None:
                continue
            try:
                out += self.below(trace_records(head, body, trace_id), below_id)
            except (BlockError, ValueError) as e:
                self._corrupt_read(head, e)
        return out + [r for r in self._pending_below(below_id) if r.trace_id == trace_id]

    def by_correlation(self, correlation_id: str, below_id: int) -> list[Record]:
        out: list[Record] = []
        for head in self._may_hold(Probe(correlation_key(correlation_id)), below_id):
            out += [r for r in self.records_of(head) if r.correlation_id == correlation_id]
        out += [r for r in self._pending_below(below_id) if r.correlation_id == correlation_id]
        return [r for r in out if r.id < below_id]

    def _may_hold(self, probe: Probe, below_id: int) -> list[BlockHead]:
        """The blocks under ``below_id`` whose trace filter admits ``probe``, oldest first."""
        heads = sorted(self._traces.admitted(probe), key=_first_id)
        return [head for head in heads if head.first_id < below_id]

    def get(self, record_id: int) -> Record | None:
        for r in self._pending_below(record_id + 1):
            if r.id == record_id:
                return r
        i = bisect.bisect_right(self.blocks, record_id, key=_first_id) - 1
        if i < 0 or self.blocks[i].last_id < record_id:
            return None
        for r in self.records_of(self.blocks[i]):
            if r.id == record_id:
                return r
        return None

    def clear(self) -> int:
        """Remove every block and the write-ahead file; returns how many records went."""
        self._harvest(wait=True)
        removed = self.sealed_records + len(self.pending)
        while self.blocks:
            self._drop_block(0, DropReason.CLEARED, -1)
        self.pending = []
        self._lines = []
        self._pending_bytes = 0
        if self._wal is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._wal, 0)
        self._wal_last_id = None
        while self._segments:
            with contextlib.suppress(OSError):
                self._segments.pop(0)[0].unlink()
        return removed

    def _pending_below(self, below_id: int) -> Iterable[Record]:
        for r in self.pending:
            if r.id >= below_id:
                break
            yield r

    @staticmethod
    def below(records: list[Record], below_id: int) -> list[Record]:
        if not records or records[-1].id < below_id:
            return records
        return records[: bisect.bisect_left([r.id for r in records], below_id)]

    def _rows_below(self, head: BlockHead, below_id: int | None) -> int:
        if below_id is None or head.last_id < below_id:
            return head.count
        if head.first_id >= below_id:
            return 0
        body = self._body(head)
        if body is None:
            return 0
        try:
            ids = block_ids(head, body)
        except BlockError:
            return head.count
        return bisect.bisect_left(ids, below_id)

    def _path(self, head: BlockHead) -> Path:
        return self.dir / _BLOCKS / f"{head.first_id:020d}{_SUFFIX}"

    def _body(self, head: BlockHead) -> bytes | None:
        try:
            with self._path(head).open("rb") as f:
                f.seek(head.columns_offset)
                return f.read()
        except OSError as e:
            self._corrupt_read(head, e)
            return None

    def _corrupt_read(self, head: BlockHead, e: Exception) -> None:
        self.error = f"block {head.first_id:020d}{_SUFFIX} skipped: {e}"
        self._corrupt(self._path(head), head)

    # -- status -------------------------------------------------------------------

    def stats(self, memory_records: int) -> dict[str, Any]:
        self._harvest()
        disk_bytes = self.sealed_bytes
        for path in [self.dir / _WAL, *(path for path, _ in self._segments)]:
            with contextlib.suppress(OSError):
                disk_bytes += path.stat().st_size
        oldest = self.oldest_ns()
        return {
            "state": self.state,
            "dir": str(self.dir),
            "oldest_record_ns": oldest,
            "tiers": {
                "memory": {"records": memory_records},
                "disk": {
                    "records": self.sealed_records,
                    "blocks": len(self.blocks),
                    "bytes": self.sealed_bytes,
                    "bytes_per_record": round(self.sealed_bytes / self.sealed_records, 1)
                    if self.sealed_records
                    else None,
                    "pending": len(self.pending),
                },
            },
            "disk_bytes": disk_bytes,
            "limits": {
                "max_bytes": self.config.max_bytes,
                "max_age_s": float(self.config.max_age),
            },
            "evicted": {k.value: v for k, v in self.evicted_here.items()},
            "corrupt_blocks": self.corrupt_blocks,
            "wal_lines_skipped": self.wal_lines_skipped,
            "write_errors": self.write_errors,
            "sealing_process_restarts": self._encoder.restarts,
            "error": self.error,
            "restored_records": self.restored,
            "load_s": round(self.load_s, 3),
        }


def _first_id(head: BlockHead) -> int:
    return head.first_id


def _attach_bloom(head: BlockHead, bloom: bytes | memoryview) -> None:
    head.bloom = bloom


def _attach_text_bloom(head: BlockHead, text_bloom: bytes | memoryview) -> None:
    head.text_bloom = text_bloom


def _open_head(path: Path) -> BlockHead:
    size = path.stat().st_size
    with path.open("rb") as f:
        data = f.read(_HEAD_PROBE)
        need = head_bytes_needed(data)
        if need > len(data):
            data += f.read(need - len(data))
    return read_head(data, size)


def write_atomically(tmp: Path, path: Path, data: bytes) -> None:
    """Write ``tmp``, sync it, rename it to ``path`` and sync the directory."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _sync_dir(path.parent)


def _sync_dir(path: Path) -> None:
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
