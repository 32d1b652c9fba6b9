"""Sealed blocks of log records: zstandard frames, an index up front.

A block file holds consecutive records (by id). Its head says what a query needs to
skip it without reading the rest: id and time range, the sources, services, levels and
kinds it holds and which (source, service, level) its rows come in, a Bloom filter over
its trace and correlation ids, and a Bloom filter over the words and trigrams of its
lowercased messages (``TextQuery``). Behind it, each
column of the records is one zstandard frame (``collector.store.columns``), so a lookup by
trace id decompresses the trace ids and then only what its rows need, and a text query
looks in the messages alone.

Measured on this machine (bench/retention_bench.py --compare, 300,000 varied records),
file bytes per record, head, Bloom filters and text index (2.9 bytes) included, and the
CPU to encode a block of 16,384 records, zstandard level 3 / 9 / 12 / 15 / 19: 27.7 /
24.4 / 23.5 / 22.6 / 21.9 bytes, 159 / 198 / 221 / 327 / 926 ms. The write-ahead rows
compressed whole, as format 2 kept them, took 33.8 bytes at level 9 (with the smaller
text index of then). Blocks use level 15 with its hash and chain tables cut to 2^20
entries: 22.8 bytes and 295 ms, nearly level 15's bytes in 10 MiB of compression
context instead of 34 (level 12: 22 MiB). Blocks are
encoded in a child process (``collector.store.encoder``), so this costs the daemon's
loop nothing and a core 2% at 1,000 lines/s. DuckDB took 42 bytes a record at 0.22 M
records/s; a 128 MiB window with long-distance matching and a trained dictionary gained
nothing.

The text index answers a ``text`` filter (a case-insensitive substring of the message)
without reading the columns: a block whose filter lacks one of the query's keys cannot
hold it. The messages are lowercased, separators folded to a space and split into
distinct words; the keys are every word, and the trigrams of every word padded with a
space, which covers each trigram of the text whose middle character is not a separator.
A query asks its trigrams without a separator in the middle, and its words with a
separator on both sides (so ``id=58751 took`` skips blocks full of other numbers, which
hold every digit trigram). A rare word over a day of blocks opens only the few that may
hold it, and a block is never skipped wrongly (``tests/test_history.py`` checks random
substrings against brute force). Measured on retention_bench's lines: ~15,000 keys per
16,384 records (13,500 of them words, mostly numbers); at 12 bits a key the filter is
22.5 KiB a block, 1.4 bytes a record. Setting 8 bits a key, it admits 0.38% of absent
3-letter queries (0.71% with the 4 that blocks before ``text_probes`` set) and 1.05% of
blocks without ``id=N took`` (1.3%), most of them blocks that hold N as a word
elsewhere. Building it takes ~50 ms a block (3 us a record, in the sealing process).
Queries under 3 characters, or not ASCII, read the blocks as before.

Layout: ``MAGIC | u32 head length | u32 head crc32 | head (JSON) | bloom | text bloom |
columns``. The head's crc32 and the file's expected length are checked when the block
is opened (a truncated file is caught there); the columns' crc32 when it is first read.
Blocks of versions 1 (no text bloom: every text query reads them) and 2 (the write-ahead
rows whole, in one column: found in before they are parsed) are still read.
"""

from __future__ import annotations

import array
import hashlib
import json
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, TypeVar

import zstandard

from collector.model import Record
from collector.store.columns import CATEGORIES, Columns, encode_columns, json_default

__all__ = [
    "BLOOM_PROBES",
    "DECODE_ERRORS",
    "BlockError",
    "BlockHead",
    "Probe",
    "TextQuery",
    "block_columns",
    "block_ids",
    "correlation_key",
    "decode_lines",
    "decode_rows",
    "decompress_column",
    "encode_block",
    "encode_rows",
    "head_bytes_needed",
    "range_records",
    "read_head",
    "text_records",
    "trace_records",
]

MAGIC = b"GASBLK1\n"
_VERSION = 3
_READS = (1, 2, 3)
_PREFIX = struct.Struct("<II")
_T = TypeVar("_T")
# Measured: see the module's docstring.
_PARAMETERS = zstandard.ZstdCompressionParameters.from_level(15, hash_log=20, chain_log=20)
_BLOOM_BITS_PER_KEY = 16
BLOOM_PROBES = 8
_TEXT_BITS_PER_KEY = 16
_TEXT_PROBES = 8  # 16 bits a key: about 0.06% false positives a key (12 bits: 0.3%)
_TRIPLE = ("source", "service", "level")
_SEPARATORS = b" \t\n\r=:.,;/\\\"'()[]{}<>|&?!*+@#$%^~`"
_FOLD = bytes.maketrans(_SEPARATORS, b" " * len(_SEPARATORS))


class BlockError(Exception):
    """A block file that is truncated, corrupt or not a block at all."""


@dataclass(slots=True)
class BlockHead:
    """What a block holds, read without touching its columns."""

    first_id: int
    last_id: int
    count: int
    min_ns: int
    max_ns: int
    sealed_ns: int
    tables: dict[str, list[str]]
    # Bytes as read; a view into the history's ``FilterShelf`` once the block is shelved.
    bloom: bytes | memoryview
    columns: list[tuple[str, int]]
    body_offset: int  # where the blooms start
    body_crc: int
    file_bytes: int
    text_bloom: bytes | memoryview = b""  # none in a version 1 block: every text query reads it
    version: int = _VERSION  # 1 and 2 keep the write-ahead rows whole (one column)
    text_probes: int = _TEXT_PROBES  # bits set a key in the text filter (4 before it said)
    # The (source, service, level) codes its rows hold, three u16 each; None in a block
    # written before the head kept them (every such filter may match it).
    triples: bytes | None = None
    # Asked of every block a scan walks past (thousands in a day): made once.
    sources: frozenset[str] = field(init=False)
    services: frozenset[str] = field(init=False)
    levels: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.sources = frozenset(self.tables["source"])
        self.services = frozenset(self.tables["service"])
        self.levels = frozenset(self.tables["level"])

    @property
    def columns_offset(self) -> int:
        return self.body_offset + len(self.bloom) + len(self.text_bloom)

    def may_hold(self, probe: Probe) -> bool:
        """Whether the Bloom filter admits the key of ``probe`` (a trace id, or a
        ``correlation_key``)."""
        return probe.admitted_by(self.bloom)

    def may_contain(self, query: TextQuery) -> bool:
        """Whether some message of the block may contain the query's text (any case)."""
        return query.admitted_by(self.text_bloom, self.text_probes)

    def codes_of(self, name: str, values: AbstractSet[str]) -> set[int]:
        """The codes of ``values`` in the table of a category (``source``...)."""
        return {i for i, value in enumerate(self.tables[name]) if value in values}

    def may_match(self, where: Mapping[str, AbstractSet[str]]) -> bool:
        """Whether some row may be of a source, service and level ``where`` allows
        (values of each it names): a service's errors are ruled out of a block whose
        errors are all another's, before it is read."""
        if self.triples is None or not where:
            return True
        wanted = [self.codes_of(name, where[name]) if name in where else None for name in _TRIPLE]
        return any(
            all(
                allowed is None or code in allowed
                for code, allowed in zip(codes, wanted, strict=True)
            )
            for codes in struct.iter_unpack("<3H", self.triples)
        )


def correlation_key(correlation_id: str) -> bytes:
    """A correlation id as a Bloom filter key, apart from any trace id."""
    return hashlib.blake2b(correlation_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def encode_block(
    records: Sequence[Record],
    sealed_ns: int,
    *,
    compressor: zstandard.ZstdCompressor | None = None,
) -> tuple[bytes, BlockHead]:
    """The file bytes of a block holding ``records`` (ids increasing), and its head.
    ``compressor`` is for measuring others (bench/retention_bench.py --compare); any
    zstandard level reads back, a dictionary would not."""
    n = len(records)
    times = [r.time_ns for r in records]
    tables = {name: sorted({getattr(r, name) for r in records}) for name in CATEGORIES}
    code = [{value: i for i, value in enumerate(tables[name])} for name in _TRIPLE]
    triples = sorted({(code[0][r.source], code[1][r.service], code[2][r.level]) for r in records})
    keys = {r.trace_id for r in records if r.trace_id is not None}
    keys |= {correlation_key(r.correlation_id) for r in records if r.correlation_id}
    bloom = _bloom(keys)
    text_bloom = _text_bloom(_text_keys(r.message for r in records))
    compressor = compressor or zstandard.ZstdCompressor(compression_params=_PARAMETERS)
    frames = [(name, compressor.compress(data)) for name, data in encode_columns(records, tables)]
    body = b"".join(frame for _, frame in frames)
    head_doc = {
        "v": _VERSION,
        "first_id": records[0].id if n else 0,
        "last_id": records[-1].id if n else 0,
        "count": n,
        "min_ns": min(times) if n else 0,
        "max_ns": max(times) if n else 0,
        "sealed_ns": sealed_ns,
        "tables": tables,
        "triples": triples,
        "bloom_len": len(bloom),
        "bloom_crc": zlib.crc32(bloom),
        "text_len": len(text_bloom),
        "text_crc": zlib.crc32(text_bloom),
        "text_probes": _TEXT_PROBES,
        "columns": [[name, len(frame)] for name, frame in frames],
        "body_crc": zlib.crc32(body),
    }
    head = json.dumps(head_doc, separators=(",", ":")).encode()
    prefix = _PREFIX.pack(len(head), zlib.crc32(head))
    data = b"".join((MAGIC, prefix, head, bloom, text_bloom, body))
    start = len(MAGIC) + _PREFIX.size + len(head)
    return data, _head(head_doc, start, len(data), bloom, text_bloom)


def read_head(data: bytes, file_bytes: int) -> BlockHead:
    """The head of a block from the file's first bytes (head and bloom must be in
    ``data``); ``BlockError`` if it is not whole or not a block."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _PREFIX.size:
        raise BlockError("not a block file (bad magic)")
    head_len, head_crc = _PREFIX.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _PREFIX.size
    head = data[start : start + head_len]
    if len(head) != head_len or zlib.crc32(head) != head_crc:
        raise BlockError("block head is truncated or corrupt (crc32 mismatch)")
    doc = json.loads(head)
    if doc.get("v") not in _READS:
        raise BlockError(f"block format version {doc.get('v')!r} is not one this gasoline reads")
    at = start + head_len
    bloom = data[at : at + doc["bloom_len"]]
    text_bloom = data[at + len(bloom) : at + len(bloom) + doc.get("text_len", 0)]
    if zlib.crc32(bloom) != doc["bloom_crc"] or zlib.crc32(text_bloom) != doc.get("text_crc", 0):
        raise BlockError("block index is truncated or corrupt (crc32 mismatch)")
    block = _head(doc, at, file_bytes, bloom, text_bloom)
    expected = block.columns_offset + sum(size for _, size in block.columns)
    if expected != file_bytes:
        raise BlockError(f"block file has {file_bytes} bytes, its head says {expected}")
    return block


def head_bytes_needed(data: bytes) -> int:
    """How many leading bytes hold the head and the bloom (from the first few KiB)."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _PREFIX.size:
        return 0
    head_len = int(_PREFIX.unpack_from(data, len(MAGIC))[0])
    start = len(MAGIC) + _PREFIX.size
    if len(data) < start + head_len:
        return start + head_len
    try:
        doc = json.loads(data[start : start + head_len])
        return start + head_len + int(doc["bloom_len"]) + int(doc.get("text_len", 0))
    except (ValueError, KeyError, TypeError):
        return 0


def _head(
    doc: dict[str, Any], body_offset: int, file_bytes: int, bloom: bytes, text_bloom: bytes
) -> BlockHead:
    try:
        tables = {k: [str(v) for v in doc["tables"][k]] for k in CATEGORIES}
        return BlockHead(
            first_id=int(doc["first_id"]),
            last_id=int(doc["last_id"]),
            count=int(doc["count"]),
            min_ns=int(doc["min_ns"]),
            max_ns=int(doc["max_ns"]),
            sealed_ns=int(doc["sealed_ns"]),
            tables=tables,
            bloom=bloom,
            columns=[(str(name), int(size)) for name, size in doc["columns"]],
            body_offset=body_offset,
            body_crc=int(doc["body_crc"]),
            file_bytes=file_bytes,
            text_bloom=text_bloom,
            version=int(doc["v"]),
            text_probes=int(doc.get("text_probes", 4)),
            triples=_triples(doc, tables),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise BlockError(f"block head lacks a field or has a wrong one: {e}") from e


def _triples(doc: dict[str, Any], tables: dict[str, list[str]]) -> bytes | None:
    """The head's triples packed, checked against its tables."""
    if "triples" not in doc:
        return None
    sizes = [len(tables[name]) for name in _TRIPLE]
    triples = [[int(code) for code in triple] for triple in doc["triples"]]
    if not all(
        len(t) == 3 and all(0 <= c < n for c, n in zip(t, sizes, strict=True)) for t in triples
    ):
        raise ValueError("a triple names a category its tables lack")
    return b"".join(struct.pack("<3H", *triple) for triple in triples)


def decode_rows(head: BlockHead, body: bytes, rows: Sequence[int] | None = None) -> list[Record]:
    """Records of a block from its column bytes (all of them, or the ``rows`` asked for,
    in order); ``BlockError`` if the columns do not check out."""
    if head.version >= 3:
        return _read(head, body, lambda c: c.records(rows))
    if zlib.crc32(body) != head.body_crc:
        raise BlockError("block columns are corrupt (crc32 mismatch)")
    try:
        records = decode_lines(decompress_column(head, body, "rows").splitlines())
    except (ValueError, TypeError, IndexError) as e:
        raise BlockError(f"block rows do not decode: {e}") from e
    if len(records) != head.count:
        raise BlockError(f"block holds {len(records)} rows, its head says {head.count}")
    return records if rows is None else [records[i] for i in rows]


def encode_rows(records: Sequence[Record]) -> bytes:
    """Records as one line of JSON (one encoder call): the write-ahead file's unit, and
    what blocks keep."""
    rows = [
        (
            r.id,
            r.time_ns,
            r.source,
            r.level,
            r.message,
            r.service,
            r.trace_id.hex() if r.trace_id else None,  # here, not in a callback: 25% faster
            r.span_id.hex() if r.span_id else None,
            r.correlation_id,
            r.tags,
            r.attributes,
            r.kind,
        )
        for r in records
    ]
    line = json.dumps(rows, separators=(",", ":"), default=json_default)
    return line.encode("utf-8", "surrogatepass") + b"\n"


def decode_lines(lines: Iterable[bytes]) -> list[Record]:
    """Records from lines of ``encode_rows``; ValueError (and kin) if one is damaged."""
    return [_record(row) for line in lines for row in json.loads(line)]


def _record(row: list[Any]) -> Record:
    return Record(
        id=int(row[0]),
        time_ns=int(row[1]),
        source=str(row[2]),
        level=str(row[3]),
        message=str(row[4]),
        service=str(row[5]),
        trace_id=bytes.fromhex(row[6]) if row[6] else None,
        span_id=bytes.fromhex(row[7]) if row[7] else None,
        correlation_id=row[8],
        tags=tuple(row[9]),
        attributes=dict(row[10]),
        kind=str(row[11]),
    )


def decompress_column(
    head: BlockHead,
    body: bytes,
    name: str,
    decompressor: zstandard.ZstdDecompressor | None = None,
) -> bytes:
    """One column of a block, decompressed (``BlockError`` if it does not decompress);
    ``decompressor`` for the columns of one read (making one takes ~10 us)."""
    at = 0
    for column, size in head.columns:
        if column == name:
            try:
                frame = memoryview(body)[at : at + size]
                return (decompressor or zstandard.ZstdDecompressor()).decompress(frame)
            except zstandard.ZstdError as e:
                raise BlockError(f"block column {name} does not decompress: {e}") from e
        at += size
    raise BlockError(f"block has no column {name}")


def block_ids(head: BlockHead, body: bytes) -> Sequence[int]:
    """The record ids of a block, in order."""
    if head.version >= 3:
        return _read(head, body, Columns.ids)
    ids = array.array("q", decompress_column(head, body, "id_delta"))
    total = 0
    for i, delta in enumerate(ids):
        total += delta
        ids[i] = total
    return ids


def trace_records(head: BlockHead, body: bytes, trace_id: bytes) -> list[Record]:
    """A block's records of one trace: each row holding the id's hex is parsed alone
    (from the nearest ``[`` before it that starts a whole row), else its whole batch."""
    if head.version >= 3:
        return _read(head, body, lambda c: c.records(c.trace_rows(trace_id)))
    rows = _rows(head, body)
    hex_id = trace_id.hex()
    needle = b',"' + hex_id.encode() + b'",'
    out: list[Record] = []
    at = rows.find(needle)
    while at != -1:
        found = _row_around(rows, at, hex_id)
        if found is None:
            start = rows.rfind(b"\n", 0, at) + 1
            end = rows.find(b"\n", at)
            end = len(rows) if end == -1 else end
            out += [r for r in _decode(rows[start:end]) if r.trace_id == trace_id]
        else:
            record, end = found
            out.append(record)
        at = rows.find(needle, end)
    return out


_DECODER = json.JSONDecoder()
_ROW_WINDOW = 8192  # bytes of a row after its trace id looked at first


def _row_around(rows: bytes, at: int, hex_id: str) -> tuple[Record, int] | None:
    """The row whose trace id field is at ``at``, and where it ends; None if not found
    within a few tries (the caller parses the whole batch)."""
    line_start = rows.rfind(b"\n", 0, at) + 1
    pos = at
    for _ in range(16):
        pos = rows.rfind(b"[", line_start, pos)
        if pos == -1:
            return None
        for window in (_ROW_WINDOW, len(rows)):
            try:
                text = rows[pos : at + window].decode("utf-8", "surrogatepass")
                row, size = _DECODER.raw_decode(text)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(row, list) and len(row) == 12 and row[6] == hex_id:
                try:
                    return _record(row), pos + len(text[:size].encode("utf-8", "surrogatepass"))
                except (ValueError, TypeError):
                    return None
            break
    return None


def text_records(head: BlockHead, body: bytes, text: str) -> list[Record] | None:
    """The block's records in batches whose rows contain ``text`` (any case): a superset
    of those whose message does, found before parsing. None when the text could be
    escaped in JSON (not plain printable ASCII): the caller reads the whole block."""
    if head.version >= 3:
        return _read(head, body, lambda c: _some(c, c.text_rows(text)))
    if not text or not all(" " <= c <= "~" and c not in '"\\' for c in text):
        return None
    rows = _rows(head, body)
    if b"\\u212a" in rows or b"\\u0130" in rows:
        return None  # K (Kelvin) and I with a dot lowercase to ASCII: not found in the rows
    return _lines_with(rows, text.lower().encode(), fold=True)


# The start of a row, ``[id,time_ns,"source"``: the time of every row of a batch line
# without parsing it (a match inside a value only costs that line a parse).
_ROW_TIME = re.compile(rb'\[\d+,(\d+),"')


def range_records(head: BlockHead, body: bytes, since_ns: int, until_ns: int) -> list[Record]:
    """The block's records in batches with a row timed from ``since_ns`` to ``until_ns``:
    a superset of those in the range, found before parsing, so a minute of a block costs
    its batch, not the block's 16,384 rows."""
    if head.version >= 3:
        return _read(head, body, lambda c: c.records(c.range_rows(since_ns, until_ns)))
    lines = [
        line
        for line in _rows(head, body).split(b"\n")
        if any(since_ns <= int(t) <= until_ns for t in _ROW_TIME.findall(line))
    ]
    return _decode(*lines)


def block_columns(head: BlockHead, body: bytes) -> Columns:
    """A version 3 block's columns, decompressed as they are asked; ``BlockError`` if the
    body does not check out. Reading them raises one of ``DECODE_ERRORS`` if they do not
    hold together."""
    if zlib.crc32(body) != head.body_crc:
        raise BlockError("block columns are corrupt (crc32 mismatch)")
    decompressor = zstandard.ZstdDecompressor()
    return Columns(
        head.count, head.tables, lambda name: decompress_column(head, body, name, decompressor)
    )


DECODE_ERRORS = (BlockError, ValueError, TypeError, IndexError, KeyError)
"""What reading a damaged block's columns may raise."""


def _read(head: BlockHead, body: bytes, read: Callable[[Columns], _T]) -> _T:
    """What ``read`` makes of a version 3 block's columns; ``BlockError`` if they do
    not check out."""
    columns = block_columns(head, body)
    try:
        return read(columns)
    except (ValueError, TypeError, IndexError, KeyError) as e:
        raise BlockError(f"block columns do not decode: {e}") from e


def _some(columns: Columns, rows: list[int] | None) -> list[Record] | None:
    return None if rows is None else columns.records(rows)


def _rows(head: BlockHead, body: bytes) -> bytes:
    if zlib.crc32(body) != head.body_crc:
        raise BlockError("block columns are corrupt (crc32 mismatch)")
    return decompress_column(head, body, "rows")


def _decode(*lines: bytes) -> list[Record]:
    try:
        return decode_lines(lines)
    except (ValueError, TypeError, IndexError) as e:
        raise BlockError(f"block rows do not decode: {e}") from e


def _lines_with(rows: bytes, needle: bytes, *, fold: bool) -> list[Record]:
    haystack = rows.lower() if fold else rows
    lines = []
    at = haystack.find(needle)
    while at != -1:
        start = haystack.rfind(b"\n", 0, at) + 1
        end = haystack.find(b"\n", at)
        end = len(rows) if end == -1 else end
        lines.append(rows[start:end])
        at = haystack.find(needle, end)
    return _decode(*lines)


def _bloom(keys: set[bytes]) -> bytes:
    """A Bloom filter of a power-of-two size, so one key's probes serve every block of
    that size (``Probe``)."""
    bits = 64
    while bits < len(keys) * _BLOOM_BITS_PER_KEY:
        bits *= 2
    bloom = bytearray(bits // 8)
    for key in keys:
        h1 = int.from_bytes(key[:8], "little")
        h2 = int.from_bytes(key[8:16], "little") | 1
        for i in range(BLOOM_PROBES):
            p = (h1 + i * h2) & (bits - 1)
            bloom[p >> 3] |= 1 << (p & 7)
    return bytes(bloom)


class Probe:
    """One key's Bloom probes, worked out once per filter size and reused over blocks."""

    __slots__ = ("_by_size", "_h1", "_h2")

    def __init__(self, key: bytes) -> None:
        self._h1 = int.from_bytes(key[:8], "little")
        self._h2 = int.from_bytes(key[8:16], "little") | 1
        self._by_size: dict[int, list[tuple[int, int]]] = {}

    def probes(self, nbytes: int, hashes: int = BLOOM_PROBES) -> list[tuple[int, int]]:
        """The (byte, bit mask) pairs the key sets in a filter of ``nbytes``; none (every
        such filter admits it) for a size this code does not write. Trace filters all
        set ``BLOOM_PROBES`` bits a key: ``hashes`` is there for ``FilterShelf``."""
        del hashes
        probes = self._by_size.get(nbytes)
        if probes is None:
            bits = nbytes * 8
            positions = [(self._h1 + i * self._h2) & (bits - 1) for i in range(BLOOM_PROBES)]
            if not bits or bits & (bits - 1):
                positions = []  # not a filter this code wrote: read the block
            probes = self._by_size[nbytes] = [(p >> 3, 1 << (p & 7)) for p in positions]
        return probes

    def admitted_by(self, bloom: bytes | memoryview) -> bool:
        """Whether ``bloom`` may hold the key."""
        probes = self._by_size.get(len(bloom)) or self.probes(len(bloom))
        # A plain loop, not all(...): 0.5 us instead of 1.3, asked of each block of a day.
        for at, bit in probes:  # noqa: SIM110
            if not bloom[at] & bit:
                return False
        return True


def _text_keys(messages: Iterable[str]) -> set[bytes]:
    """What a block's text filter holds: every distinct word of the lowercased messages
    (split at separators; as ``\\0`` + its UTF-8 bytes), and the trigrams of each word
    padded with a space."""
    text = " ".join(set(messages)).lower().encode("utf-8", "surrogatepass").translate(_FOLD)
    words = set(text.split(b" "))
    padded = b" " + b" ".join(words) + b" "
    keys = {padded[i : i + 3] for i in range(len(padded) - 2)}
    keys.update([b"\0" + word for word in words if word])
    return keys


def _text_probes(keys: Sequence[bytes], bits: int) -> Iterator[int]:
    """The bit positions of each key (crc32 + i * adler32, modulo ``bits``, for i below
    ``_TEXT_PROBES``): C-speed hashes, since a block has some 15,000 keys."""
    firsts = list(map(zlib.crc32, keys))
    steps = list(map(zlib.adler32, keys))
    for i in range(_TEXT_PROBES):
        yield from ((h + i * g) % bits for h, g in zip(firsts, steps, strict=True))


def _text_bloom(keys: set[bytes]) -> bytes:
    nbytes = max(64, -(-len(keys) * _TEXT_BITS_PER_KEY // 64) * 8)
    bloom = bytearray(nbytes)
    for p in _text_probes(list(keys), nbytes * 8):
        bloom[p >> 3] |= 1 << (p & 7)
    return bytes(bloom)


class TextQuery:
    """A ``text`` filter's keys, asked of blocks' text filters: its trigrams without a
    separator in the middle, and its words with a separator on both sides (so a number
    is found among blocks full of other numbers). ``usable`` is False (every block
    admits it) for text under 3 characters, not ASCII, or all separators."""

    __slots__ = ("_by_shape", "_hashes", "_keys")

    def __init__(self, text: str) -> None:
        folded = text.lower().encode("ascii", "replace").translate(_FOLD)
        keys = set()
        if text.isascii():
            keys = {folded[i : i + 3] for i in range(len(folded) - 2) if folded[i + 1] != ord(" ")}
            keys.update(b"\0" + word for word in folded.split(b" ")[1:-1] if word)
        self._keys = sorted(keys)  # words (``\0``...) first: rarer than trigrams
        # Each key's crc32 and adler32 (``_text_probes``), the same for every filter size.
        self._hashes = [(zlib.crc32(key), zlib.adler32(key)) for key in self._keys]
        self._by_shape: dict[tuple[int, int], list[tuple[int, int]]] = {}

    @property
    def usable(self) -> bool:
        return bool(self._keys)

    def probes(self, nbytes: int, hashes: int) -> Iterator[tuple[int, int]]:
        """The (byte, bit mask) pairs the query's keys set in a text filter of ``nbytes``
        built with ``hashes`` bits a key, key by key (the rarest first: over a day of
        filters, a rare word's few probes settle it), worked out as they are asked for;
        none (every such filter admits it) for an empty filter or an unusable query."""
        bits = nbytes * 8
        for h, g in self._hashes if bits else ():
            for i in range(hashes):  # the positions of _text_probes
                p = (h + i * g) % bits
                yield p >> 3, 1 << (p & 7)

    def admitted_by(self, bloom: bytes | memoryview, hashes: int) -> bool:
        """Whether a block with this text filter (of ``hashes`` bits a key) may hold the
        text."""
        shape = (len(bloom), hashes)
        probes = self._by_shape.get(shape)
        if probes is None:
            probes = self._by_shape[shape] = list(set(self.probes(*shape)))
        # A plain loop, not all(...): 0.5 us instead of 1.3, asked of each block of a day.
        for at, bit in probes:  # noqa: SIM110
            if not bloom[at] & bit:
                return False
        return True
