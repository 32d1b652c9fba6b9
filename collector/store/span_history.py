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

Bounds: span blocks may use ``span_share`` of ``max_bytes`` (records get the rest, and
all of it while spans use less) and none outlives ``max_age``; blocks leave oldest
first, every span counted by reason. A block or frame failing its checksum is skipped,
counted and never read again; a failed write (disk full) is counted and reported, and
the spans stay in memory.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import struct
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from collector.config import HistoryConfig
from collector.model import DropReason, SpanBatch, SpanDetailDecoder
from collector.store.history import write_atomically
from collector.store.spans import SpanChunk

__all__ = ["SpanHistory", "encode_chunk"]

_DIR = "spans"
_WAL = "wal.log"
_SUFFIX = ".sblk"
_MAGIC = b"GASSPN1\n"
_BLOCK_HEAD = struct.Struct("<IIqqqI")  # frames, spans, min/max received, sealed, body crc
_FRAME = struct.Struct("<II")  # payload length, crc32
_CHUNK = struct.Struct("<qI")  # received_ns, spans
_LENGTH = struct.Struct("<I")
_FIELDS = 11
# Level 1 seals in half the time but takes 71 bytes a span instead of 65.5
# (retention_bench --spans): the columns compress better at 3; the detail is zlib already.
_LEVEL = 3


@dataclass(slots=True)
class _Block:
    number: int
    frames: int
    spans: int
    min_ns: int
    max_ns: int
    sealed_ns: int
    body_crc: int
    file_bytes: int


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
        self.blocks: list[_Block] = []
        self.sealed_bytes = 0
        self.sealed_spans = 0
        self._frames: list[tuple[int, int, bytes]] = []  # pending: (received_ns, spans, frame)
        self.pending_spans = 0
        self._wal: int | None = None
        self._unsynced = False
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
            elif path.suffix == _SUFFIX:
                try:
                    block = _read_head(path)
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
        for frame, payload in _frames_of(data):
            received_ns, spans = _CHUNK.unpack_from(payload)
            self._frames.append((received_ns, spans, frame))
            self.pending_spans += spans
            offset += len(frame)
        if offset != len(data):
            self.wal_frames_skipped += 1
            write_atomically(path.with_suffix(".tmp"), path, data[:offset])

    def _restore(self, max_spans: int, not_before_ns: int) -> list[tuple[int, SpanBatch]]:
        payloads = [p for _, _, f in self._frames for p in _payloads(f)]
        total = self.pending_spans
        for block in reversed(list(self.blocks)):
            if total >= max_spans or block.max_ns < not_before_ns:
                break
            body = self._body(block)
            if body is None:
                continue
            payloads[:0] = body
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
        payload = encode_chunk(chunk)
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        self._frames.append((chunk.received_ns, chunk.n, frame))
        self.pending_spans += chunk.n
        try:
            assert self._wal is not None
            os.write(self._wal, frame)
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
        body = b"".join(frame for _, _, frame in self._frames)
        spans = self.pending_spans
        number = self.blocks[-1].number + 1 if self.blocks else 1
        packed = zstandard.ZstdCompressor(level=_LEVEL).compress(body)
        head = _BLOCK_HEAD.pack(
            len(self._frames),
            spans,
            min(r for r, _, _ in self._frames),
            max(r for r, _, _ in self._frames),
            now_ns,
            zlib.crc32(packed),
        )
        path = self._path(number)
        try:
            write_atomically(path.with_suffix(".tmp"), path, _MAGIC + head + packed)
        except OSError as e:
            path.with_suffix(".tmp").unlink(missing_ok=True)
            self._failed(f"span block {path.name}", e)
            while self.pending_spans > 4 * self.config.block_records and len(self._frames) > 1:
                _, lost, _ = self._frames.pop(0)
                self.pending_spans -= lost
                self._count(DropReason.WRITE_FAILED, lost)
            return False
        self.error = None
        block = _read_head(path)
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

    def _drop(self, block: _Block, reason: DropReason) -> None:
        self.blocks.remove(block)
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

    def _body(self, block: _Block) -> list[bytes] | None:
        """A block's chunk payloads; None (the block set aside and counted) if it fails
        a check."""
        path = self._path(block.number)
        try:
            data = path.read_bytes()
            packed = data[len(_MAGIC) + _BLOCK_HEAD.size :]
            if zlib.crc32(packed) != block.body_crc:
                raise ValueError("checksum mismatch")
            body = zstandard.ZstdDecompressor().decompress(packed)
            payloads = [payload for _, payload in _frames_of(body)]
            if len(payloads) != block.frames:
                raise ValueError(f"{len(payloads)} of {block.frames} frames readable")
        except (OSError, ValueError, zstandard.ZstdError) as e:
            self.error = f"span block {path.name} skipped: {e}"
            self.corrupt_blocks += 1
            self._set_aside(path, counted=True)
            self._drop(block, DropReason.CORRUPT)
            return None
        return payloads

    def _batch(self, payload: bytes) -> tuple[int, SpanBatch]:
        received_ns, n, fields = _decode_chunk(payload)
        trace_ids, span_ids, parent_ids, kinds, statuses, starts, ends = fields[:7]
        name_index = array.array("I", fields[7])
        service_index = array.array("I", fields[8])
        names, services = json.loads(fields[9]), json.loads(fields[10])
        starts_a: array.array[int] = array.array("q", starts)
        ends_a: array.array[int] = array.array("q", ends)
        if not (
            len(trace_ids) == 16 * n
            and len(span_ids) == len(parent_ids) == 8 * n
            and len(kinds) == len(statuses) == len(starts_a) == len(ends_a) == n
            and len(name_index) == len(service_index) == n
        ):
            raise ValueError("span columns of unequal length")
        batch = SpanBatch(
            [trace_ids[i * 16 : i * 16 + 16] for i in range(n)],
            [span_ids[i * 8 : i * 8 + 8] for i in range(n)],
            [parent_ids[i * 8 : i * 8 + 8] for i in range(n)],
            [names[i] for i in name_index],
            [services[i] for i in service_index],
            bytearray(kinds),
            bytearray(statuses),
            starts_a,
            ends_a,
            self.decoder(fields[_FIELDS]),
        )
        return received_ns, batch

    def _path(self, number: int) -> Path:
        return self.dir / f"{number:020d}{_SUFFIX}"

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
            "load_s": round(self.load_s, 3),
        }


def encode_chunk(chunk: SpanChunk) -> bytes:
    """A chunk's columns and detail, each length-prefixed (native byte order: the file
    is read back on the machine that wrote it)."""
    fields = (
        chunk.trace_ids,
        chunk.span_ids,
        chunk.parent_ids,
        chunk.kinds,
        chunk.statuses,
        chunk.starts.tobytes(),
        chunk.ends.tobytes(),
        chunk.name_index.tobytes(),
        chunk.service_index.tobytes(),
        json.dumps(chunk.names).encode(),
        json.dumps(chunk.services).encode(),
        chunk.detail.encoded(),
    )
    parts = [_CHUNK.pack(chunk.received_ns, chunk.n)]
    for field in fields:
        parts += (_LENGTH.pack(len(field)), field)
    return b"".join(parts)


def _decode_chunk(payload: bytes) -> tuple[int, int, list[bytes]]:
    try:
        received_ns, n = _CHUNK.unpack_from(payload)
        offset = _CHUNK.size
        fields = []
        for _ in range(_FIELDS + 1):
            (length,) = _LENGTH.unpack_from(payload, offset)
            offset += _LENGTH.size
            fields.append(payload[offset : offset + length])
            offset += length
    except struct.error as e:
        raise ValueError(f"truncated span chunk: {e}") from None
    if offset != len(payload):
        raise ValueError("span chunk of the wrong length")
    return received_ns, n, fields


def _frames_of(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(frame, payload) of each whole frame whose checksum holds, up to the first that
    does not."""
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + length
        payload = data[offset + _FRAME.size : end]
        if end > len(data) or zlib.crc32(payload) != crc or length < _CHUNK.size:
            return
        yield data[offset:end], payload
        offset = end


def _payloads(frame: bytes) -> list[bytes]:
    return [payload for _, payload in _frames_of(frame)]


def _read_head(path: Path) -> _Block:
    size = path.stat().st_size
    with path.open("rb") as f:
        data = f.read(len(_MAGIC) + _BLOCK_HEAD.size)
    if len(data) < len(_MAGIC) + _BLOCK_HEAD.size or not data.startswith(_MAGIC):
        raise ValueError(f"{path.name} is not a span block")
    frames, spans, min_ns, max_ns, sealed_ns, crc = _BLOCK_HEAD.unpack_from(data, len(_MAGIC))
    return _Block(int(path.stem), frames, spans, min_ns, max_ns, sealed_ns, crc, size)
