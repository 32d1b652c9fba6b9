"""The span history's file format: frames, chunks, and sealed blocks with their index.

A chunk (one ``SpanChunk`` of the span store) is ``i64 received_ns | u32 spans`` and
twelve length-prefixed fields: its columns and its detail source's ``encoded()`` bytes,
in native byte order (the files are read back on the machine that wrote them). A frame
is ``u32 length | u32 crc32 | chunk``; the write-ahead file is frames end to end.

A block (``*.sblk``, ``GASSPN3``) is ``MAGIC | head | layout | groups | index | body``.
The head holds the number of frames and spans, the received time range, when it was
sealed and the crc32 of what follows it up to the body. The body is the block's frames
in groups of consecutive ones (``_GROUP_BYTES`` of them at least, the last excepted),
each group compressed as its own zstandard frame, so a lookup decompresses only the
groups that may hold its trace: a block of 16,384 spans is 7 groups, and a group
decompresses in 0.14 ms where the whole block took 1.1 ms. Trace by id from disk then
takes 2.3 ms (p50) instead of 4.1-5.2, for 2.1 groups read a trace
(``span_lookup_bench --spans 600000 --max-spans 30000``), and a span 69.0 bytes on disk
instead of 66.1 (``retention_bench --spans 1000000``): 2.4 more for the groups'
compression, 0.45 for the larger index. Groups of 128 KiB took 69.9 bytes a span and 2.2
ms, of 512 KiB 68.0 and 2.5 ms. Sealing a block of 16,384 spans takes 8 ms of CPU,
9-10 as one frame. The group table gives each group's compressed length, crc32 (checked
when it is read) and frames.

The index is the first four bytes of each of the block's trace ids, sorted, with the
group each came from beside it (an id found in several groups is listed once for each),
and the last four, sorted: a block may hold a trace only if both are found (about n /
2^32 each to be wrong for n random ids), and one bisection then names the groups to
read. The first four also serve the short ids people type, and the last four the
tracers that pad 64-bit ids with zeros in front. It takes 10 bytes a distinct trace (6
more for each further group it is in), on disk and in memory: 1.0 byte a span of
``otlp_load``'s traces (0.55 without the groups), the group table 0.005. It is made with
array slices, sets and sorts at C speed: a Bloom filter built in Python took 0.3-3 us a
span to seal.

Blocks written before the groups (``GASSPN2``: one zstandard frame, the index without
groups, the head's crc32 that of the body) are read as one group; blocks written before
the index (``GASSPN1``) may hold any trace.
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
from typing import BinaryIO

import zstandard

from collector.model import SpanDetailDecoder
from collector.store.spans import SpanChunk, SpanColumns

__all__ = [
    "SUFFIX",
    "SpanBlock",
    "chunk_head",
    "decode_columns",
    "encode_block",
    "encode_chunk",
    "encode_frame",
    "frames_of",
    "group_payloads",
    "ids_starting",
    "payload_of",
    "read_block_head",
    "trace_column",
    "trace_words",
]

SUFFIX = ".sblk"
_MAGIC = b"GASSPN3\n"
_MAGIC_V2 = b"GASSPN2\n"  # one zstandard frame
_MAGIC_V1 = b"GASSPN1\n"  # no index either: read when looked in
# frames, spans, min/max received, sealed, crc32 of layout to body (of the body before 3)
_BLOCK_HEAD = struct.Struct("<IIqqqI")
_LAYOUT = struct.Struct("<III")  # groups, first words (with their groups), last words
_GROUP = struct.Struct("<III")  # compressed bytes, their crc32, frames
_INDEX_V2 = struct.Struct("<III")  # bytes of first words, of last words, their crc32
_FRAME = struct.Struct("<II")  # payload length, crc32
_CHUNK = struct.Struct("<qI")  # received_ns, spans
_LENGTH = struct.Struct("<I")
_FIELDS = 11
# Level 1 seals in half the time but takes 71 bytes a span instead of 65.5
# (retention_bench --spans): the columns compress better at 3; the detail is zlib already.
_LEVEL = 3
# A group closes once its frames reach this many bytes: about 2,300 spans of
# otlp_load's traces (4-5 chunks of 512 spans), about 160 KB compressed.
_GROUP_BYTES = 256 * 1024


@dataclass(slots=True)
class SpanBlock:
    """What a block's head and index say, kept in memory for each block."""

    number: int
    frames: int
    spans: int
    min_ns: int
    max_ns: int
    sealed_ns: int
    file_bytes: int
    body_offset: int
    group_ends: array.array[int]
    """Where each group's compressed bytes end, from the body's start (one group in a
    block written before the groups)."""
    group_crcs: array.array[int]
    group_frames: array.array[int]
    """The frames in each group and those before it."""
    firsts: array.array[int] | None
    """The first four bytes of each trace id (``_word``), sorted; None in a block written
    before the index."""
    first_groups: array.array[int] | None
    """The group each of ``firsts`` came from; None when there is one group."""
    lasts: array.array[int] | None
    """The last four bytes of each, sorted, once each."""

    @property
    def groups(self) -> int:
        return len(self.group_ends)

    def groups_holding(self, words: tuple[int, int]) -> list[int]:
        """The groups that may hold a trace (its ``trace_words``), in order (none: the
        index rules it out)."""
        if self.lasts is not None and not _holds(self.lasts, words[1]):
            return []
        return self._groups_of(words[0])

    def groups_starting(self, four: bytes) -> list[int]:
        """The groups that may hold a trace id starting with these four bytes."""
        return self._groups_of(_word(four))

    def _groups_of(self, key: int) -> list[int]:
        if self.firsts is None:
            return list(range(self.groups))
        at = bisect.bisect_left(self.firsts, key)
        end = bisect.bisect_right(self.firsts, key, at)
        if self.first_groups is None:
            return [0] if end > at else []
        return list(dict.fromkeys(self.first_groups[at:end]))

    def group_range(self, group: int) -> tuple[int, int]:
        """Where a group's compressed bytes are in the file: offset, length."""
        start = self.group_ends[group - 1] if group else 0
        return self.body_offset + start, self.group_ends[group] - start

    def first_frame(self, group: int) -> int:
        """The number in the block of a group's first frame."""
        return self.group_frames[group - 1] if group else 0


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
    """A block file's bytes: its head, its groups and index, and the frames compressed
    a group at a time."""
    groups: list[list[bytes]] = [[]]
    size = 0
    for frame in frames:
        if size >= _GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(frame)
        size += len(frame)
    compressor = zstandard.ZstdCompressor(level=_LEVEL)
    packed = [compressor.compress(b"".join(group)) for group in groups]
    table = b"".join(
        _GROUP.pack(len(p), zlib.crc32(p), len(g)) for p, g in zip(packed, groups, strict=True)
    )
    firsts, first_groups, lasts = _index(groups)
    layout = _LAYOUT.pack(len(groups), len(firsts), len(lasts))
    index = firsts.tobytes() + first_groups.tobytes() + lasts.tobytes()
    crc = zlib.crc32(index, zlib.crc32(table, zlib.crc32(layout)))
    spans = sum(chunk_head(payload_of(f))[1] for f in frames)
    head = _BLOCK_HEAD.pack(len(frames), spans, min_ns, max_ns, sealed_ns, crc)
    return b"".join([_MAGIC, head, layout, table, index, *packed])


def group_payloads(packed: bytes, block: SpanBlock, group: int) -> list[bytes]:
    """The chunks of a block's group from its compressed bytes; ``ValueError`` says what
    check failed."""
    if zlib.crc32(packed) != block.group_crcs[group]:
        raise ValueError(f"group {group}: checksum mismatch")
    try:
        body = zstandard.ZstdDecompressor().decompress(packed)
    except zstandard.ZstdError as e:
        raise ValueError(f"group {group} does not decompress: {e}") from None
    payloads = _split(body)
    frames = block.group_frames[group] - block.first_frame(group)
    if len(payloads) != frames:
        raise ValueError(f"group {group}: {len(payloads)} of {frames} frames readable")
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
    """A sealed group's payloads. The group's crc32 covers them all, so the frames' own
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


def _index(
    groups: list[list[bytes]],
) -> tuple[array.array[int], array.array[int], array.array[int]]:
    """The index a block carries: the first words of its trace ids, sorted, with the
    group of each (once a group), and the last words, sorted, once each."""
    keyed: set[int] = set()
    lasts: set[int] = set()
    for number, group in enumerate(groups):
        words: array.array[int] = array.array("I")
        for frame in group:
            words.frombytes(trace_column(frame[_FRAME.size :]))
        keyed.update(word << 16 | number for word in set(words[0::4]))
        lasts.update(words[3::4])
    ordered = sorted(keyed)  # by word, then group
    return (
        array.array("I", [key >> 16 for key in ordered]),
        array.array("H", [key & 0xFFFF for key in ordered]),
        array.array("I", sorted(lasts)),
    )


def trace_words(trace_id: bytes) -> tuple[int, int]:
    """A trace id's first and last four bytes as a block's index holds them: worked out
    once for a lookup that asks a day's blocks."""
    return _word(trace_id[:4]), _word(trace_id[12:])


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
    with path.open("rb") as f:
        data = f.read(fixed)
        magic = data[: len(_MAGIC)]
        if len(data) < fixed or magic not in (_MAGIC, _MAGIC_V2, _MAGIC_V1):
            raise ValueError(f"{path.name} is not a span block")
        frames, spans, min_ns, max_ns, sealed_ns, crc = _BLOCK_HEAD.unpack_from(data, len(_MAGIC))
        if magic == _MAGIC:
            index = _read_index(f, path.name, crc)
        else:
            index = _read_index_v2(f, path.name) if magic == _MAGIC_V2 else _Index.whole(None)
            index.group_ends.append(size - fixed - len(index.raw))
            index.group_crcs.append(crc)
            index.group_frames.append(frames)
    body_offset = fixed + len(index.raw)
    if index.group_frames[-1] != frames or body_offset + index.group_ends[-1] != size:
        raise ValueError(f"{path.name}: groups that do not add up to the block")
    return SpanBlock(
        int(path.stem),
        frames,
        spans,
        min_ns,
        max_ns,
        sealed_ns,
        size,
        body_offset,
        index.group_ends,
        index.group_crcs,
        index.group_frames,
        index.firsts,
        index.first_groups,
        index.lasts,
    )


@dataclass(slots=True)
class _Index:
    """What a block says between its head and its body, and those bytes."""

    raw: bytes
    group_ends: array.array[int]
    group_crcs: array.array[int]
    group_frames: array.array[int]
    firsts: array.array[int] | None
    first_groups: array.array[int] | None
    lasts: array.array[int] | None

    @classmethod
    def whole(cls, raw: bytes | None) -> _Index:
        """A block of one group, before its group is known: no index if ``raw`` is None."""
        return cls(
            raw or b"",
            array.array("Q"),
            array.array("I"),
            array.array("I"),
            None if raw is None else array.array("I"),
            None,
            None if raw is None else array.array("I"),
        )


def _read_index(f: BinaryIO, name: str, crc: int) -> _Index:
    layout = f.read(_LAYOUT.size)
    if len(layout) != _LAYOUT.size:
        raise ValueError(f"{name}: truncated index")
    groups, n_firsts, n_lasts = _LAYOUT.unpack(layout)
    rest = f.read(groups * _GROUP.size + n_firsts * 6 + n_lasts * 4)
    if (
        len(rest) != groups * _GROUP.size + n_firsts * 6 + n_lasts * 4
        or zlib.crc32(rest, zlib.crc32(layout)) != crc
        or not groups
    ):
        raise ValueError(f"{name}: damaged index")
    index = _Index.whole(layout + rest)
    end = frames = 0
    for length, group_crc, group_frames in _GROUP.iter_unpack(rest[: groups * _GROUP.size]):
        end += length
        frames += group_frames
        index.group_ends.append(end)
        index.group_crcs.append(group_crc)
        index.group_frames.append(frames)
    at = groups * _GROUP.size
    assert index.firsts is not None and index.lasts is not None
    index.firsts.frombytes(rest[at : at + 4 * n_firsts])
    index.first_groups = array.array("H", rest[at + 4 * n_firsts : at + 6 * n_firsts])
    index.lasts.frombytes(rest[at + 6 * n_firsts :])
    if max(index.first_groups, default=0) >= groups:
        raise ValueError(f"{name}: damaged index")
    return index


def _read_index_v2(f: BinaryIO, name: str) -> _Index:
    head = f.read(_INDEX_V2.size)
    if len(head) != _INDEX_V2.size:
        raise ValueError(f"{name}: truncated index")
    firsts_len, lasts_len, index_crc = _INDEX_V2.unpack(head)
    words = f.read(firsts_len + lasts_len)
    if (
        len(words) != firsts_len + lasts_len
        or zlib.crc32(words) != index_crc
        or firsts_len % 4
        or lasts_len % 4
    ):
        raise ValueError(f"{name}: damaged index")
    index = _Index.whole(head + words)
    assert index.firsts is not None and index.lasts is not None
    index.firsts.frombytes(words[:firsts_len])
    index.lasts.frombytes(words[firsts_len:])
    return index
