"""The span history's file format: frames, chunks, and sealed blocks with their index.

A chunk (one ``SpanChunk`` of the span store) is ``i64 received_ns | u32 spans`` and
twelve length-prefixed fields: its columns and its detail source's ``encoded()`` bytes,
in native byte order (the files are read back on the machine that wrote them). A frame
is ``u32 length | u32 crc32 | chunk``; the write-ahead file is frames end to end.

A block (``*.sblk``) is ``MAGIC | head | index | zstandard(frames)``. The head holds the
number of frames and spans, the received time range, when it was sealed and the crc32
of the compressed body. The index (with its own crc32) is the first four bytes of each
of the block's trace ids, sorted, and the last four, sorted: a block may hold a trace
only if both are found (about n / 2^32 each to be wrong for n random ids); the first
four also serve the short ids people type, and the last four the tracers that pad
64-bit ids with zeros in front. It takes 8 bytes a distinct trace, on disk and in
memory, and is made with array slices, sets and sorts at C speed: a Bloom filter built
in Python took 0.3-3 us a span to seal. Blocks written before the index (``GASSPN1``)
may hold any trace.
"""

from __future__ import annotations

import array
import bisect
import json
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from collector.model import SpanDetailDecoder
from collector.store.spans import SpanChunk, SpanColumns

__all__ = [
    "SUFFIX",
    "SpanBlock",
    "block_payloads",
    "chunk_head",
    "decode_columns",
    "encode_block",
    "encode_chunk",
    "encode_frame",
    "frames_of",
    "ids_starting",
    "payload_of",
    "read_block_head",
    "trace_column",
]

SUFFIX = ".sblk"
_MAGIC = b"GASSPN2\n"
_MAGIC_V1 = b"GASSPN1\n"  # no index: read when looked in
_BLOCK_HEAD = struct.Struct("<IIqqqI")  # frames, spans, min/max received, sealed, body crc
_INDEX = struct.Struct("<III")  # bytes of first words, of last words, their crc32
_FRAME = struct.Struct("<II")  # payload length, crc32
_CHUNK = struct.Struct("<qI")  # received_ns, spans
_LENGTH = struct.Struct("<I")
_FIELDS = 11
# Level 1 seals in half the time but takes 71 bytes a span instead of 65.5
# (retention_bench --spans): the columns compress better at 3; the detail is zlib already.
_LEVEL = 3


@dataclass(slots=True)
class SpanBlock:
    """What a block's head and index say, kept in memory for each block."""

    number: int
    frames: int
    spans: int
    min_ns: int
    max_ns: int
    sealed_ns: int
    body_crc: int
    file_bytes: int
    body_offset: int
    firsts: array.array[int] | None
    """The first four bytes of each trace id (``_word``), sorted; None in a block written
    before the index."""
    lasts: array.array[int] | None
    """The last four bytes of each, the same way."""

    def may_hold(self, trace_id: bytes) -> bool:
        if self.firsts is None or self.lasts is None:
            return True
        return _holds(self.firsts, _word(trace_id[:4])) and _holds(self.lasts, _word(trace_id[12:]))

    def may_start_with(self, four: bytes) -> bool:
        """Whether a trace id here may start with these four bytes."""
        return self.firsts is None or _holds(self.firsts, _word(four))


def encode_frame(payload: bytes) -> bytes:
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def payload_of(frame: bytes) -> bytes:
    """The chunk in a frame made by ``encode_frame``."""
    return frame[_FRAME.size :]


def chunk_head(payload: bytes) -> tuple[int, int]:
    """A chunk's received time (ns) and span count."""
    received_ns, spans = _CHUNK.unpack_from(payload)
    return received_ns, spans


def encode_block(frames: list[bytes], *, min_ns: int, max_ns: int, sealed_ns: int) -> bytes:
    """A block file's bytes: its head, its index, and the frames compressed."""
    packed = zstandard.ZstdCompressor(level=_LEVEL).compress(b"".join(frames))
    spans = sum(chunk_head(payload_of(f))[1] for f in frames)
    head = _BLOCK_HEAD.pack(len(frames), spans, min_ns, max_ns, sealed_ns, zlib.crc32(packed))
    return _MAGIC + head + _index(frames) + packed


def block_payloads(data: bytes, block: SpanBlock) -> list[bytes]:
    """A block's chunks from its file's bytes; ``ValueError`` says what check failed."""
    packed = data[block.body_offset :]
    if zlib.crc32(packed) != block.body_crc:
        raise ValueError("checksum mismatch")
    try:
        body = zstandard.ZstdDecompressor().decompress(packed)
    except zstandard.ZstdError as e:
        raise ValueError(f"does not decompress: {e}") from None
    payloads = _split(body)
    if len(payloads) != block.frames:
        raise ValueError(f"{len(payloads)} of {block.frames} frames readable")
    return payloads


def decode_columns(payload: bytes, decoder: SpanDetailDecoder) -> SpanColumns:
    """A chunk's columns as written, checked; ``decoder`` makes its detail source."""
    received_ns, n, fields = _fields(payload)
    trace_ids, span_ids, parent_ids, kinds, statuses = fields[:5]
    starts: array.array[int] = array.array("q", fields[5])
    ends: array.array[int] = array.array("q", fields[6])
    name_index = array.array("I", fields[7])
    service_index = array.array("I", fields[8])
    names, services = json.loads(fields[9]), json.loads(fields[10])
    if not (
        len(trace_ids) == 16 * n
        and len(span_ids) == len(parent_ids) == 8 * n
        and len(kinds) == len(statuses) == len(starts) == len(ends) == n
        and len(name_index) == len(service_index) == n
        and max(name_index, default=0) < max(1, len(names))
        and max(service_index, default=0) < max(1, len(services))
    ):
        raise ValueError("span columns of unequal length")
    return SpanColumns(
        received_ns,
        n,
        trace_ids,
        span_ids,
        parent_ids,
        names,
        name_index,
        services,
        service_index,
        kinds,
        statuses,
        starts,
        ends,
        decoder(fields[_FIELDS]),
    )


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


def _fields(payload: bytes) -> tuple[int, int, list[bytes]]:
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


def frames_of(data: bytes) -> Iterator[tuple[bytes, bytes]]:
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


def _split(body: bytes) -> list[bytes]:
    """A sealed block's payloads. The block's crc32 covers them all, so the frames' own
    are not computed again (that took half the time of a lookup on disk)."""
    payloads, offset = [], 0
    while offset < len(body):
        if offset + _FRAME.size > len(body):
            raise ValueError("a frame cut short")
        (length,) = _LENGTH.unpack_from(body, offset)
        start = offset + _FRAME.size
        offset = start + length
        if offset > len(body) or length < _CHUNK.size:
            raise ValueError("a frame cut short")
        payloads.append(body[start:offset])
    return payloads


def trace_column(payload: bytes) -> bytes:
    """A chunk's trace ids (its first column), without decoding the rest."""
    (length,) = _LENGTH.unpack_from(payload, _CHUNK.size)
    start = _CHUNK.size + _LENGTH.size
    return payload[start : start + length]


def ids_starting(column: bytes, head: bytes, nibble: int | None) -> Iterator[bytes]:
    """The ids in a trace id column that start with ``head`` and then ``nibble``."""
    at = column.find(head)
    while at != -1:
        if at % 16 == 0:
            trace_id = column[at : at + 16]
            if nibble is None or trace_id[len(head)] >> 4 == nibble:
                yield trace_id
        at = column.find(head, at + 1)


def _index(frames: list[bytes]) -> bytes:
    """The index a block's head carries: ``_INDEX``, then the sorted first and last
    words of its trace ids."""
    words: array.array[int] = array.array("I")
    for frame in frames:
        words.frombytes(trace_column(frame[_FRAME.size :]))
    firsts = array.array("I", sorted(set(words[0::4]))).tobytes()
    lasts = array.array("I", sorted(set(words[3::4]))).tobytes()
    return _INDEX.pack(len(firsts), len(lasts), zlib.crc32(firsts + lasts)) + firsts + lasts


def _word(four: bytes) -> int:
    """Four bytes of a trace id as the index holds them (native order, as ``array``)."""
    return int.from_bytes(four, sys.byteorder)


def _holds(words: array.array[int], key: int) -> bool:
    at = bisect.bisect_left(words, key)
    return at < len(words) and words[at] == key


def read_block_head(path: Path) -> SpanBlock:
    """A block's head and, from ``GASSPN2`` on, its index (whose crc32 is checked)."""
    size = path.stat().st_size
    fixed = len(_MAGIC) + _BLOCK_HEAD.size
    firsts: array.array[int] | None = None
    lasts: array.array[int] | None = None
    body_offset = fixed
    with path.open("rb") as f:
        data = f.read(fixed + _INDEX.size)
        if len(data) < fixed or data[: len(_MAGIC)] not in (_MAGIC, _MAGIC_V1):
            raise ValueError(f"{path.name} is not a span block")
        frames, spans, min_ns, max_ns, sealed_ns, crc = _BLOCK_HEAD.unpack_from(data, len(_MAGIC))
        if not data.startswith(_MAGIC_V1):
            if len(data) < fixed + _INDEX.size:
                raise ValueError(f"{path.name}: truncated index")
            firsts_len, lasts_len, index_crc = _INDEX.unpack_from(data, fixed)
            index = f.read(firsts_len + lasts_len)
            if (
                len(index) != firsts_len + lasts_len
                or zlib.crc32(index) != index_crc
                or firsts_len % 4
                or lasts_len % 4
            ):
                raise ValueError(f"{path.name}: damaged index")
            firsts, lasts = array.array("I"), array.array("I")
            firsts.frombytes(index[:firsts_len])
            lasts.frombytes(index[firsts_len:])
            body_offset = fixed + _INDEX.size + len(index)
    return SpanBlock(
        int(path.stem),
        frames,
        spans,
        min_ns,
        max_ns,
        sealed_ns,
        crc,
        size,
        body_offset,
        firsts,
        lasts,
    )
