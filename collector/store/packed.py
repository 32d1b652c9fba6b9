"""Records in memory as compressed bytes, not objects.

A ``Record`` object with its strings and attribute dict takes ~880 bytes (tracemalloc,
retention_bench's lines), and half a million of them are millions of objects the
garbage collector would walk. Once a chunk of them is no longer among the newest, the
record store packs it into two zstandard frames (level 3): its messages as the
``message`` column of a block holds them (``collector.store.columns``: a text is found
in them before any row is decoded), and the rest of each record as a tuple, pickled.
Pickle, not the block's JSON columns, since these bytes never leave the process and
this is on the ingest path: measured on retention_bench's lines, 1.6 us a record to
pack, 3.0 to unpack, ~35 bytes a record; the block columns took 4.0 and 3.7 for ~29.

A packed chunk answers as a chunk of objects does (``live``, ``candidates``, its
summary): a text is looked for in its messages first, a trace's or an id's rows alone
are made into records, and what was decoded lately is kept in a small cache shared by
the store's chunks, so a scan that comes back finds it made.
"""

from __future__ import annotations

import array
import bisect
import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import zstandard

from collector.model import Record
from collector.store.columns import encode_messages, json_default, message_rows

__all__ = ["DecodedChunks", "PackedChunk"]

_LEVEL = 3
# Python objects a packed chunk holds beside its frames (its slots, sets, arrays).
_OVERHEAD_BYTES = 1024
_Row = tuple[Any, ...]  # a record but its message and id, in ``Record``'s field order


_LOCAL = threading.local()


def _decompress(frame: bytes) -> bytes:
    """A frame decompressed by this thread's decompressor: making one takes ~10 us, and
    a text no line holds is looked for in every packed chunk (a thousand in memory)."""
    decompressor = getattr(_LOCAL, "decompressor", None)
    if decompressor is None:
        decompressor = _LOCAL.decompressor = zstandard.ZstdDecompressor()
    data: bytes = decompressor.decompress(frame)
    return data


class DecodedChunks:
    """Records of packed chunks decoded lately, newest use last: a chunk's whole (key
    None) or one source's rows of it, at most ``max_records`` records in all."""

    def __init__(self, max_records: int) -> None:
        self.max_records = max_records
        self._held: OrderedDict[tuple[PackedChunk, str | None], list[Record]] = OrderedDict()
        self._count = 0

    def get(self, chunk: PackedChunk, part: str | None = None) -> list[Record] | None:
        records = self._held.get((chunk, part))
        if records is not None:
            self._held.move_to_end((chunk, part))
        return records

    def put(self, chunk: PackedChunk, records: list[Record], part: str | None = None) -> None:
        old = self._held.pop((chunk, part), None)
        self._count += len(records) - (0 if old is None else len(old))
        self._held[(chunk, part)] = records
        while self._count > self.max_records and len(self._held) > 1:
            self._count -= len(self._held.popitem(last=False)[1])

    def drop(self, chunk: PackedChunk) -> None:
        for key in [key for key in self._held if key[0] is chunk]:
            self._count -= len(self._held.pop(key))

    def clear(self) -> None:
        self._held.clear()
        self._count = 0


class PackedChunk:
    """Consecutive records (ids increasing) packed, with what a newest-first scan skips
    on; rows before ``first`` are evicted. Arrival times are kept per run of rows that
    arrived together, so expiry is as exact as for objects."""

    __slots__ = (
        "_arrival_rows",
        "_arrivals",
        "_cache",
        "_messages",
        "_rest",
        "count",
        "first",
        "ids",
        "levels",
        "max_ns",
        "min_ns",
        "nbytes",
        "prefix_max_ns",
        "services",
        "sources",
    )

    def __init__(
        self,
        records: Sequence[Record],
        arrivals: Sequence[tuple[int, int]],
        prefix_max_ns: int,
        extra_bytes: int,
        cache: DecodedChunks,
    ) -> None:
        """Pack ``records``; ``arrivals`` are (first row, received_ns) of each run of
        them that arrived together; ``extra_bytes`` is what else they are counted for
        (the store's index entries)."""
        self.count = len(records)
        self.first = 0
        ids = [r.id for r in records]
        consecutive = ids[-1] - ids[0] == len(ids) - 1
        self.ids: Sequence[int] = (
            range(ids[0], ids[-1] + 1) if consecutive else array.array("q", ids)
        )
        times = [r.time_ns for r in records]
        self.min_ns = min(times)
        self.max_ns = max(times)
        self.prefix_max_ns = max(prefix_max_ns, self.max_ns)
        self.sources = frozenset(r.source for r in records)
        self.levels = frozenset(r.level for r in records)
        self.services = frozenset(r.service for r in records)
        rest = [
            (
                r.time_ns,
                r.source,
                r.level,
                r.service,
                r.trace_id,
                r.span_id,
                r.correlation_id,
                r.tags,
                r.attributes,
                r.kind,
            )
            for r in records
        ]
        compressor = zstandard.ZstdCompressor(level=_LEVEL)
        # Copies: zstandard's output keeps the allocation of its worst case (the input's
        # size and more), 4 times these frames' size.
        self._messages = bytes(
            memoryview(compressor.compress(encode_messages([r.message for r in records])))
        )
        self._rest = bytes(memoryview(compressor.compress(_pickled(rest))))
        self._arrival_rows = array.array("q", [row for row, _ in arrivals])
        self._arrivals = array.array("q", [received for _, received in arrivals])
        self._cache = cache
        self.nbytes = len(self._messages) + len(self._rest) + _OVERHEAD_BYTES + extra_bytes
        if not consecutive:
            self.nbytes += 8 * self.count

    @property
    def received_ns(self) -> int:
        """When the oldest record still here arrived."""
        return self._arrivals[bisect.bisect_right(self._arrival_rows, self.first) - 1]

    @property
    def live_count(self) -> int:
        return self.count - self.first

    def records(self) -> list[Record]:
        """Every row, evicted or not, decoded once while the cache keeps it."""
        records = self._cache.get(self)
        if records is None:
            records = self._decode(range(self.count))
            self._cache.put(self, records)
        return records

    def live(self) -> list[Record]:
        records = self.records()
        return records[self.first :] if self.first else records

    def candidates(
        self, text: str | None, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[Record]:
        """What may match a message ``text`` filter and a time range: the rows whose
        message holds the text, or else those in the range, decoded alone (every record
        once the chunk is decoded whole)."""
        if self._cache.get(self) is None:
            rows = None
            column = None
            if text:
                column = _decompress(self._messages)
                rows = message_rows(column, text)
            if rows is None and (
                (since_ns is not None and since_ns > self.min_ns)
                or (until_ns is not None and until_ns < self.max_ns)
            ):
                lo = 0 if since_ns is None else since_ns
                hi = 2**63 if until_ns is None else until_ns
                rest = self._rows()
                rows = [i for i, row in enumerate(rest) if lo <= row[0] <= hi]
                return self._decode([i for i in rows if i >= self.first], rest)
            if rows is not None:
                return self._decode([i for i in rows if i >= self.first], column=column)
        return self.live()

    def of_source(self, source: str) -> list[Record]:
        """The records from ``source``, decoded alone (a rare source's few rows) and kept
        in the cache for the next ask."""
        whole = self._cache.get(self)
        if whole is not None:
            return [r for r in whole[self.first :] if r.source == source]
        part = self._cache.get(self, source)
        if part is None:
            rest = self._rows()
            part = self._decode([i for i, row in enumerate(rest) if row[1] == source], rest)
            self._cache.put(self, part, source)
        return [r for r in part if r.id >= self.ids[self.first]] if self.first else part

    def index_keys(self) -> list[tuple[bytes | None, str | None]]:
        """Every row's trace id and correlation id (what the store indexes), without
        making records."""
        return [(row[4], row[6]) for row in self._rows()]

    def get(self, record_ids: Sequence[int]) -> list[Record]:
        """The records of these ids (ids increasing) that are here."""
        rows = []
        for record_id in record_ids:
            row = bisect.bisect_left(self.ids, record_id)
            if self.first <= row < self.count and self.ids[row] == record_id:
                rows.append(row)
        if not rows:
            return []
        whole = self._cache.get(self)
        if whole is not None:
            return [whole[row] for row in rows]
        return self._decode(rows)

    def _rows(self) -> list[_Row]:
        rows: list[_Row] = pickle.loads(_decompress(self._rest))
        return rows

    def _decode(
        self,
        rows: Sequence[int],
        rest: list[_Row] | None = None,
        column: bytes | None = None,
    ) -> list[Record]:
        """Records of ``rows`` (in order); ``rest`` and ``column`` are ``_rows()`` and
        the messages' frame decompressed, if already at hand."""
        if not rows:
            return []
        rest = self._rows() if rest is None else rest
        column = _decompress(self._messages) if column is None else column
        lines = column[1:-1].split(b"\n")
        if len(rows) == self.count:
            messages = json.loads(b"[" + b",".join(lines) + b"]")
        else:
            messages = json.loads(b"[" + b",".join([lines[i] for i in rows]) + b"]")
        ids = self.ids
        out = []
        for k, i in enumerate(rows):
            time_ns, source, level, service, trace, span, correlation, tags, attributes, kind = (
                rest[i]
            )
            out.append(
                Record(
                    time_ns,
                    source,
                    level,
                    messages[k],
                    service,
                    trace,
                    span,
                    correlation,
                    tags,
                    attributes,
                    kind,
                    ids[i],
                )
            )
        return out


def _pickled(rows: list[_Row]) -> bytes:
    """The rows pickled; tags and attributes pickle cannot take (none that receivers
    make) are first made what the disk tier keeps of them (JSON, bytes as hex)."""
    try:
        return pickle.dumps(rows, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError):
        safe = []
        for row in rows:
            tags, attributes = json.loads(json.dumps(row[7:9], default=json_default))
            safe.append((*row[:7], tuple(tags), attributes, row[9]))
        return pickle.dumps(safe, pickle.HIGHEST_PROTOCOL)
