"""Durable history of spans: a write-ahead file and sealed zstandard blocks, beside the
records' in the same data directory (``spans/``).

Each chunk the span store keeps is written at once as one frame (``u32 length | u32
crc32 | payload``: its columns and its detail source's ``encoded()`` bytes) to
``spans/wal.log``, which is synced with the records' (at least every second), so a
``kill -9`` loses nothing the kernel has and a power cut at most the last second. Once
``block_records`` spans are pending, their frames are compressed into one block (temp,
fsync, rename) and the write-ahead file starts over.

On start the newest blocks, as many spans as the memory tier holds (``max_spans``,
within its TTL), and the write-ahead file are read back into the span store: queries
answer as before the restart. Decoding the detail needs the receiver's codec, which
``collector`` may not import: the store is handed a ``SpanDetailDecoder``.

Spans that have left memory are answered from here while the daemon runs
(``trace_spans``, ``trace_ids_starting``). So that a lookup reads only the blocks that
may hold its trace, and of those only the groups of chunks that may (a block's chunks
are compressed in groups of about 256 KiB), a block's head carries an index made when
it is sealed (the format is ``collector.store.span_blocks``'): the lookup reads those
groups' bytes alone, checks their crc32 and decompresses them. The groups read last stay
decompressed (``_CACHE_BYTES`` of them) and the chunks last decoded stay decoded
(``_CACHE_CHUNKS``), as one trace page asks for its spans several times. Reading the
newest blocks back on start reads them whole.

Bounds: span blocks may use ``span_share`` of ``max_bytes`` (records get the rest, and
all of it while spans use less) and none outlives ``max_age``; blocks leave oldest
first, every span counted by reason. A block or frame failing its checksum is skipped,
counted and never read again; a failed write (disk full) is counted and reported, and
the spans stay in memory.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collector.config import HistoryConfig
from collector.model import DropReason, SpanBatch, SpanDetailDecoder
from collector.store.history import write_atomically
from collector.store.span_blocks import (
    SUFFIX,
    SpanBlock,
    chunk_head,
    decode_columns,
    encode_block,
    encode_chunk,
    encode_frame,
    frames_of,
    group_payloads,
    ids_starting,
    payload_of,
    read_block_head,
    trace_column,
    trace_words,
)
from collector.store.spans import SpanChunk, StoredSpan

__all__ = ["SpanHistory"]

_DIR = "spans"
_WAL = "wal.log"
# A decompressed group is about 300 KiB (2,300 spans; a block written before the groups
# is one group of 2 MiB), a decoded chunk of 512 spans about 100 KiB with its detail
# located (bench/span_lookup_bench.py).
_CACHE_BYTES = 8 * 2**20
_CACHE_CHUNKS = 64


class SpanHistory:
    """The span tier of one data directory (whose lock the records' ``History`` holds).
    Not thread-safe: the daemon's loop only."""

    def __init__(self, config: HistoryConfig, decoder: SpanDetailDecoder) -> None:
        self.config = config
        self.dir = Path(os.path.expanduser(config.dir)) / _DIR
        self.decoder = decoder
        self.max_bytes = int(config.max_bytes * config.span_share)
        self.max_age_ns = int(config.max_age * 1e9)
        self.state = "closed"
        self.error: str | None = None
        self.evicted: Counter[DropReason] = Counter()
        self.write_errors = 0
        self.corrupt_blocks = 0
        self.wal_frames_skipped = 0
        self.restored = 0
        self.load_s = 0.0
        self.blocks: list[SpanBlock] = []
        self.sealed_bytes = 0
        self.sealed_spans = 0
        self._frames: list[tuple[int, int, bytes]] = []  # pending: (received_ns, spans, frame)
        self.pending_spans = 0
        self._wal: int | None = None
        self._unsynced = False
        self._cache: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._cache_bytes = 0
        self._decoded: OrderedDict[tuple[int, int], SpanChunk] = OrderedDict()
        self.blocks_read = 0
        """Blocks read to answer a query (some of their groups not kept decompressed)."""
        self.groups_read = 0
        """Groups of chunks read and decompressed to answer a query (a cache miss each)."""
        self.after_seal: Callable[[int], None] = lambda now_ns: None
        """Called after a block is written (the records' tier holds its share then)."""

    @property
    def active(self) -> bool:
        return self.state == "ok"

    # -- open and close -----------------------------------------------------------

    def open(self, *, max_spans: int, not_before_ns: int) -> list[tuple[int, SpanBatch]]:
        """Read the blocks' heads and replay the write-ahead file; return the newest
        batches (oldest first, at most about ``max_spans`` spans, none received before
        ``not_before_ns``) with when each was received, for the memory tier."""
        started = time.perf_counter()
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._load_blocks()
            self._replay()
            self._wal = os.open(self.dir / _WAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            self.state = (
                f"off: cannot use {self.dir} ({e.strerror or e}); set service.store.history.dir"
            )
            return []
        self.state = "ok"
        restored = self._restore(max_spans, not_before_ns)
        self.restored = sum(len(batch) for _, batch in restored)
        self.load_s = time.perf_counter() - started
        return restored

    def close(self, now_ns: int) -> None:
        """Seal what is pending (a restart then has nothing to replay) and sync."""
        if not self.active:
            return
        if self._frames:
            self.seal(now_ns)
        self.sync()
        if self._wal is not None:
            with contextlib.suppress(OSError):
                os.close(self._wal)
        self._wal = None
        self.state = "closed"

    def _load_blocks(self) -> None:
        for path in sorted(self.dir.iterdir()):
            if path.suffix == ".tmp":
                path.unlink(missing_ok=True)  # a write that never completed
            elif path.suffix == SUFFIX:
                try:
                    block = read_block_head(path)
                except (OSError, ValueError):
                    self._set_aside(path)
                    continue
                self.blocks.append(block)
                self.sealed_bytes += block.file_bytes
                self.sealed_spans += block.spans
        self.blocks.sort(key=lambda b: b.number)

    def _replay(self) -> None:
        """Pending frames from the write-ahead file; a torn or damaged tail is cut off."""
        path = self.dir / _WAL
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        offset = 0
        for whole, payload in frames_of(data):
            received_ns, spans = chunk_head(payload)
            self._frames.append((received_ns, spans, whole))
            self.pending_spans += spans
            offset += len(whole)
        if offset != len(data):
            self.wal_frames_skipped += 1
            write_atomically(path.with_suffix(".tmp"), path, data[:offset])

    def _restore(self, max_spans: int, not_before_ns: int) -> list[tuple[int, SpanBatch]]:
        payloads = self._pending()
        total = self.pending_spans
        for block in reversed(list(self.blocks)):
            if total >= max_spans or block.max_ns < not_before_ns:
                break
            groups = self._read(block, range(block.groups))
            if groups is None:
                continue
            payloads[:0] = [p for group in groups for p in group]
            total += block.spans
        out = []
        for payload in payloads:
            try:
                received_ns, batch = self._batch(payload)
            except ValueError:
                self.wal_frames_skipped += 1
                continue
            if received_ns >= not_before_ns:
                out.append((received_ns, batch))
        return out

    # -- writing ------------------------------------------------------------------

    def append(self, chunk: SpanChunk, now_ns: int) -> None:
        """Write a chunk ahead (its detail was redacted at decode), then seal if it is time."""
        if not self.active:
            return
        written = encode_frame(encode_chunk(chunk))
        self._frames.append((chunk.received_ns, chunk.n, written))
        self.pending_spans += chunk.n
        try:
            assert self._wal is not None
            os.write(self._wal, written)
            self._unsynced = True
        except OSError as e:
            self._failed("the span write-ahead file", e)
        if self.pending_spans >= self.config.block_records:
            self.seal(now_ns)

    def sync(self) -> None:
        if self._wal is None or not self._unsynced:
            return
        try:
            os.fsync(self._wal)
            self._unsynced = False
        except OSError as e:
            self._failed("the span write-ahead file", e)

    def seal(self, now_ns: int) -> bool:
        """Write every pending frame as one block; on failure they stay pending (at most
        four blocks' worth: the oldest beyond are lost, counted ``write_failed``)."""
        spans = self.pending_spans
        number = self.blocks[-1].number + 1 if self.blocks else 1
        data = encode_block(
            [f for _, _, f in self._frames],
            min_ns=min(r for r, _, _ in self._frames),
            max_ns=max(r for r, _, _ in self._frames),
            sealed_ns=now_ns,
        )
        path = self._path(number)
        try:
            write_atomically(path.with_suffix(".tmp"), path, data)
        except OSError as e:
            path.with_suffix(".tmp").unlink(missing_ok=True)
            self._failed(f"span block {path.name}", e)
            while self.pending_spans > 4 * self.config.block_records and len(self._frames) > 1:
                _, lost, _ = self._frames.pop(0)
                self.pending_spans -= lost
                self._count(DropReason.WRITE_FAILED, lost)
            return False
        self.error = None
        block = read_block_head(path)
        self.blocks.append(block)
        self.sealed_bytes += block.file_bytes
        self.sealed_spans += spans
        self._frames = []
        self.pending_spans = 0
        try:
            assert self._wal is not None
            os.ftruncate(self._wal, 0)
        except OSError as e:
            self._failed("the span write-ahead file", e)
        self.enforce(now_ns)
        self.after_seal(now_ns)
        return True

    def _failed(self, what: str, e: OSError) -> None:
        self.write_errors += 1
        self.error = f"writing {what} in {self.dir} failed: {e.strerror or e}"

    # -- bounds -------------------------------------------------------------------

    def enforce(self, now_ns: int) -> None:
        """Remove the oldest blocks past the span share of ``max_bytes`` or ``max_age``."""
        expire_before = now_ns - self.max_age_ns
        while self.blocks:
            if self.sealed_bytes > self.max_bytes:
                reason = DropReason.EVICTED_BYTE_LIMIT
            elif self.blocks[0].max_ns < expire_before:
                reason = DropReason.EXPIRED
            else:
                return
            self._drop(self.blocks[0], reason)

    def _drop(self, block: SpanBlock, reason: DropReason) -> None:
        self.blocks.remove(block)
        for group in range(block.groups):
            if (payloads := self._cache.pop((block.number, group), None)) is not None:
                self._cache_bytes -= sum(map(len, payloads))
        for frame in range(block.frames):
            self._decoded.pop((block.number, frame), None)
        self.sealed_bytes -= block.file_bytes
        self.sealed_spans -= block.spans
        self._count(reason, block.spans)
        with contextlib.suppress(OSError):
            self._path(block.number).unlink()

    def _count(self, reason: DropReason, n: int) -> None:
        if n:
            self.evicted[reason] += n

    def clear(self) -> None:
        """Remove every block and the write-ahead file (``configure clear``)."""
        while self.blocks:
            self._drop(self.blocks[0], DropReason.CLEARED)
        self._count(DropReason.CLEARED, self.pending_spans)
        self._frames = []
        self.pending_spans = 0
        if self._wal is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._wal, 0)

    # -- reading ------------------------------------------------------------------

    def trace_spans(self, trace_id: bytes, not_after_ns: int | None) -> list[StoredSpan]:
        """The spans of one trace on disk, in arrival order, from the chunks received at or
        before ``not_after_ns`` (all if None): the memory tier asks for what it no longer
        holds. Only the groups whose block's index may hold the trace are read; a block
        that fails its checks is skipped, set aside and counted."""
        if not self.active:
            return []
        found: list[StoredSpan] = []
        words = trace_words(trace_id)
        for block in list(self.blocks):
            if not_after_ns is not None and block.min_ns > not_after_ns:
                continue
            numbers = block.groups_holding(words)
            groups = self._cached(block, numbers) if numbers else None
            for first, payloads in groups or []:
                found += self._spans_in(payloads, trace_id, not_after_ns, block.number, first)
        return found + self._spans_in(self._pending(), trace_id, not_after_ns, None, 0)

    def trace_ids_starting(self, digits: str, limit: int, not_after_ns: int | None) -> list[bytes]:
        """Up to ``limit`` trace ids on disk whose hex starts with ``digits`` (lowercase,
        at least 8), newest first, from chunks received at or before ``not_after_ns``.
        Only the groups whose ids may start with the first 8 digits are read."""
        if not self.active:
            return []
        four = bytes.fromhex(digits[:8])
        head = bytes.fromhex(digits[: len(digits) // 2 * 2])
        nibble = int(digits[-1], 16) if len(digits) % 2 else None
        found: dict[bytes, None] = {}
        blocks = [
            block
            for block in reversed(list(self.blocks))
            if not_after_ns is None or block.min_ns <= not_after_ns
        ]
        pending = self._pending()
        for block in [None, *blocks]:
            if block is None:
                payloads = pending
            else:
                numbers = block.groups_starting(four)
                groups = self._cached(block, numbers) if numbers else None
                payloads = [p for _, group in groups or [] for p in group]
            for payload in reversed(payloads):
                received_ns, _ = chunk_head(payload)
                if not_after_ns is not None and received_ns > not_after_ns:
                    continue
                for trace_id in ids_starting(trace_column(payload), head, nibble):
                    found.setdefault(trace_id)
                    if len(found) == limit:
                        return list(found)
        return list(found)

    def _pending(self) -> list[bytes]:
        return [payload_of(f) for _, _, f in self._frames]

    def _cached(self, block: SpanBlock, numbers: list[int]) -> list[tuple[int, list[bytes]]] | None:
        """(first frame, chunk payloads) of these groups of a block, those not kept
        decompressed read; None if the block fails a check (then set aside, counted)."""
        kept: dict[int, list[bytes]] = {}
        for number in numbers:
            if (payloads := self._cache.get((block.number, number))) is not None:
                self._cache.move_to_end((block.number, number))
                kept[number] = payloads
        missing = [number for number in numbers if number not in kept]
        if missing:
            self.blocks_read += 1
            self.groups_read += len(missing)
            read = self._read(block, missing)
            if read is None:
                return None
            for payloads, number in zip(read, missing, strict=True):
                kept[number] = payloads
                self._cache[(block.number, number)] = payloads
                self._cache_bytes += sum(map(len, payloads))
            while self._cache_bytes > _CACHE_BYTES and len(self._cache) > 1:
                _, payloads = self._cache.popitem(last=False)
                self._cache_bytes -= sum(map(len, payloads))
        return [(block.first_frame(number), kept[number]) for number in numbers]

    def _spans_in(
        self,
        payloads: list[bytes],
        trace_id: bytes,
        not_after_ns: int | None,
        block: int | None,
        first: int,
    ) -> list[StoredSpan]:
        """The trace's spans in these chunks (of block number ``block`` from its frame
        ``first`` on, or pending); only the chunks holding it are decoded."""
        found = []
        for frame, payload in enumerate(payloads, first):
            received_ns, _ = chunk_head(payload)
            if not_after_ns is not None and received_ns > not_after_ns:
                continue
            column = trace_column(payload)
            at = column.find(trace_id)
            hits = []
            while at != -1:
                if at % 16 == 0:
                    hits.append(at // 16)
                at = column.find(trace_id, at + 1)
            if not hits:
                continue
            chunk = self._chunk(payload, None if block is None else (block, frame))
            if chunk is not None:
                found += [chunk.span(i) for i in hits]
        return found

    def _chunk(self, payload: bytes, key: tuple[int, int] | None) -> SpanChunk | None:
        if key is not None and (chunk := self._decoded.get(key)) is not None:
            self._decoded.move_to_end(key)
            return chunk
        try:
            chunk = SpanChunk.from_columns(decode_columns(payload, self.decoder))
        except ValueError:
            self.wal_frames_skipped += 1
            return None
        if key is not None:
            self._decoded[key] = chunk
            while len(self._decoded) > _CACHE_CHUNKS:
                self._decoded.popitem(last=False)
        return chunk

    def _read(self, block: SpanBlock, numbers: range | list[int]) -> list[list[bytes]] | None:
        """The chunk payloads of each of these groups of a block, each read alone and
        checked; None (the block set aside and counted) if one fails a check."""
        path = self._path(block.number)
        out = []
        try:
            with path.open("rb") as f:
                for number in numbers:
                    offset, length = block.group_range(number)
                    packed = os.pread(f.fileno(), length, offset)
                    out.append(group_payloads(packed, block, number))
        except (OSError, ValueError) as e:
            self.error = f"span block {path.name} skipped: {e}"
            self.corrupt_blocks += 1
            self._set_aside(path, counted=True)
            self._drop(block, DropReason.CORRUPT)
            return None
        return out

    def _batch(self, payload: bytes) -> tuple[int, SpanBatch]:
        """A chunk as the batch it was stored from (read back into the memory tier)."""
        c = decode_columns(payload, self.decoder)
        batch = SpanBatch(
            [c.trace_ids[i * 16 : i * 16 + 16] for i in range(c.n)],
            [c.span_ids[i * 8 : i * 8 + 8] for i in range(c.n)],
            [c.parent_ids[i * 8 : i * 8 + 8] for i in range(c.n)],
            [c.names[i] for i in c.name_index],
            [c.services[i] for i in c.service_index],
            bytearray(c.kinds),
            bytearray(c.statuses),
            c.starts,
            c.ends,
            c.detail,
        )
        return c.received_ns, batch

    def _path(self, number: int) -> Path:
        return self.dir / f"{number:020d}{SUFFIX}"

    def _set_aside(self, path: Path, *, counted: bool = False) -> None:
        if not counted:
            self.corrupt_blocks += 1
            self.error = f"span block {path.name} skipped: unreadable head"
        with contextlib.suppress(OSError):
            path.rename(path.with_suffix(".corrupt"))

    # -- status -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        disk_bytes = self.sealed_bytes
        with contextlib.suppress(OSError):
            disk_bytes += (self.dir / _WAL).stat().st_size
        return {
            "state": self.state,
            "spans": self.sealed_spans,
            "blocks": len(self.blocks),
            "bytes": self.sealed_bytes,
            "bytes_per_span": round(self.sealed_bytes / self.sealed_spans, 1)
            if self.sealed_spans
            else None,
            "pending": self.pending_spans,
            "disk_bytes": disk_bytes,
            "max_bytes": self.max_bytes,
            "oldest_received_ns": self.blocks[0].min_ns if self.blocks else None,
            "evicted": {k.value: v for k, v in self.evicted.items()},
            "corrupt_blocks": self.corrupt_blocks,
            "wal_frames_skipped": self.wal_frames_skipped,
            "write_errors": self.write_errors,
            "error": self.error,
            "restored_spans": self.restored,
            "blocks_read": self.blocks_read,
            "groups_read": self.groups_read,
            "load_s": round(self.load_s, 3),
        }
