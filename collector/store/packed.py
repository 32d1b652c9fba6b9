"""Records in memory as compressed columns, not objects.

A ``Record`` object with its strings and attribute dict takes ~880 bytes (tracemalloc,
retention_bench's lines), and half a million of them are millions of objects the
garbage collector would walk. Once a chunk of them is no longer among the newest, the
record store packs it: the same columns a block on disk holds
(``collector.store.columns``), each a zstandard frame at level 3, ~29 bytes a record
(measured on retention_bench's lines; 3.6 us a record to encode, 0.4 to compress).

A packed chunk answers as a chunk of objects does (``live``, ``candidates``, its
summary): a text is looked for in its messages before any row is decoded, a trace's
or an id's rows are decoded alone, and whole chunks decoded lately are kept in a small
cache shared by the store's chunks, so a scan that comes back finds them made.
"""

from __future__ import annotations

import array
import bisect
from collections import OrderedDict
from collections.abc import Sequence

import zstandard

from collector.model import Record
from collector.store.columns import CATEGORIES, Columns, encode_columns

__all__ = ["DecodedChunks", "PackedChunk"]

_LEVEL = 3
# Python objects a packed chunk holds beside its frames (its slots, tables, sets).
_OVERHEAD_BYTES = 1024


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
    """Consecutive records (ids increasing) as compressed columns, with what a newest-first
    scan skips on; rows before ``first`` are evicted. Arrival times are kept per run of
    rows that arrived together, so expiry is as exact as for objects."""

    __slots__ = (
        "_arrival_rows",
        "_arrivals",
        "_body",
        "_cache",
        "_frames",
        "_tables",
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
        self._tables = {name: sorted({getattr(r, name) for r in records}) for name in CATEGORIES}
        self.sources = frozenset(self._tables["source"])
        self.levels = frozenset(self._tables["level"])
        self.services = frozenset(self._tables["service"])
        compressor = zstandard.ZstdCompressor(level=_LEVEL)
        frames = [
            (name, compressor.compress(data))
            for name, data in encode_columns(records, self._tables)
        ]
        self._body = b"".join(frame for _, frame in frames)
        self._frames: dict[str, tuple[int, int]] = {}
        at = 0
        for name, frame in frames:
            self._frames[name] = (at, at + len(frame))
            at += len(frame)
        self._arrival_rows = array.array("q", [row for row, _ in arrivals])
        self._arrivals = array.array("q", [received for _, received in arrivals])
        self._cache = cache
        self.nbytes = len(self._body) + _OVERHEAD_BYTES + extra_bytes
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
            records = self._columns().records()
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
            columns = self._columns()
            rows: list[int] | None = None
            if text:
                rows = columns.text_rows(text)
            if rows is None and (
                (since_ns is not None and since_ns > self.min_ns)
                or (until_ns is not None and until_ns < self.max_ns)
            ):
                lo = 0 if since_ns is None else since_ns
                rows = columns.range_rows(lo, 2**63 if until_ns is None else until_ns)
            if rows is not None:
                return columns.records([row for row in rows if row >= self.first])
        return self.live()

    def of_source(self, source: str) -> list[Record]:
        """The records from ``source``, decoded alone (a rare source's few rows) and kept
        in the cache for the next ask."""
        whole = self._cache.get(self)
        if whole is not None:
            return [r for r in whole[self.first :] if r.source == source]
        part = self._cache.get(self, source)
        if part is None:
            columns = self._columns()
            part = columns.records(columns.category_rows("source", source))
            self._cache.put(self, part, source)
        return [r for r in part if r.id >= self.ids[self.first]] if self.first else part

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
        return self._columns().records(rows)

    def _columns(self) -> Columns:
        """The columns, each decompressed when first asked (one decompressor for all)."""
        decompressor = zstandard.ZstdDecompressor()
        body = memoryview(self._body)

        def column(name: str) -> bytes:
            start, end = self._frames[name]
            return decompressor.decompress(body[start:end])

        return Columns(self.count, self._tables, column)
