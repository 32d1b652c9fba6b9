"""Log records and native events, in arrival order, indexed by trace and correlation id.

Records are kept in chunks of consecutive arrivals. Each chunk knows its time range,
the latest time of any chunk up to it (``prefix_max_ns``), and which sources, services
and levels it holds, so a query skips chunks that cannot match and stops once nothing
older can be newer than what it already has.

Every record is capped and measured once, before it is stored (``collector.limits``);
its size is spent from the ``ByteBudget`` shared with the span store. Only the newest
few thousand records stay objects: older chunks are packed into compressed bytes
(``collector.store.packed``, ~35 bytes a record instead of ~880), and the indexes hold
record ids, so what memory holds is a few objects a chunk, not a few a record.

With a ``History`` attached (``attach``), every record is also written to disk as it
arrives; what leaves memory is then still there, and every query here reads the disk
tier below the oldest record in memory, so callers see one store.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter, deque
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import TypeVar

from collector.limits import ValueLimits, cap_record
from collector.model import DropReason, Record
from collector.store.budget import ByteBudget
from collector.store.history import BlockChunk, ColdChunk, History
from collector.store.packed import DecodedChunks, PackedChunk

__all__ = ["RecordChunk", "RecordStore"]

K = TypeVar("K", bound=Hashable)
_CHUNK = 512
# Records kept as objects (the newest), beyond which the oldest chunks are packed, and
# records of packed chunks kept decoded for scans that come back (16 chunks' worth).
_OBJECTS = 4096
_DECODED = 8192
_MAX_LINKED_TRACES = 100_000
# Stands in a chunk for a record evicted before the rest of its chunk.
_EVICTED = Record(time_ns=0, source="", level="", message="")
# A key's slot in an index dict, and the key; a deque (one block of 64 slots) once the
# key has two records. Most keys have one (a trace's single log line), held bare.
_KEY_BYTES = 100
_BUCKET_BYTES = sys.getsizeof(deque())


class RecordChunk:
    """Up to 512 consecutive records, with what a query needs to skip them."""

    __slots__ = (
        "first",
        "index_bytes",
        "levels",
        "max_ns",
        "min_ns",
        "prefix_max_ns",
        "received_ns",
        "records",
        "services",
        "sources",
    )

    def __init__(self, received_ns: int, prefix_max_ns: int) -> None:
        self.received_ns = received_ns
        self.records: list[Record] = []
        self.first = 0  # records before this index were evicted
        self.index_bytes = 0  # of the records' sizes, what their index entries take
        self.min_ns = 2**63
        self.max_ns = 0
        self.prefix_max_ns = prefix_max_ns
        self.sources: set[str] = set()
        self.services: set[str] = set()
        self.levels: set[str] = set()

    def add(self, record: Record) -> None:
        self.records.append(record)
        t = record.time_ns
        if t < self.min_ns:
            self.min_ns = t
        if t > self.max_ns:
            self.max_ns = t
            if t > self.prefix_max_ns:
                self.prefix_max_ns = t
        self.sources.add(record.source)
        self.services.add(record.service)
        self.levels.add(record.level)

    def live(self) -> list[Record]:
        return self.records[self.first :] if self.first else self.records

    @property
    def live_count(self) -> int:
        return len(self.records) - self.first

    def candidates(
        self, text: str | None, since_ns: int | None = None, until_ns: int | None = None
    ) -> list[Record]:
        """What may match a message ``text`` filter: every record, or none when no
        message holds the text (one C-speed search of the chunk's messages lowercased,
        where testing each record would take a microsecond or two apiece). The time
        range is for the disk tier's chunks; the caller checks each record's time."""
        del since_ns, until_ns
        live = self.live()
        if text and text.lower() not in "\n".join([r.message for r in live]).lower():
            return []
        return live

    def of_source(self, source: str) -> list[Record]:
        return [r for r in self.live() if r.source == source]


class RecordStore:
    """Holds at most ``max_records`` records, none older than ``ttl_ns``, within its share
    of ``budget``; oldest leave first.

    The newest records are objects in ``RecordChunk``s; older ones are ``PackedChunk``s.
    Each index holds a key's record id, or its ids in arrival order in a deque once it
    has two, so eviction pops from its left.
    """

    def __init__(
        self, *, max_records: int, ttl_ns: int, limits: ValueLimits, budget: ByteBudget
    ) -> None:
        self.max_records = max_records
        self.ttl_ns = ttl_ns
        self.limits = limits
        self.truncated_values = 0
        self._bytes = 0
        self._budget = budget
        budget.join(self)
        self._packed: deque[PackedChunk] = deque()  # older than every chunk of objects
        self._chunks: deque[RecordChunk] = deque()
        self._objects = 0  # live records in ``_chunks``
        self._decoded = DecodedChunks(_DECODED)
        self._count = 0
        self._by_trace: dict[bytes, int | deque[int]] = {}
        self._by_correlation: dict[str, int | deque[int]] = {}
        self._linked: dict[bytes, set[str]] = {}  # trace id -> request ids learned later
        self.evicted: Counter[DropReason] = Counter()
        self.history: History | None = None

    def attach(self, history: History, now_ns: int) -> None:
        """Keep records on disk from now on; the records ``history`` replays from its
        write-ahead file (written before a stop or crash) join the memory tier."""
        self.history = history
        history.memory_floor = self._memory_floor
        restored = history.open()
        if restored and history.active:
            for record in restored:
                self.cap(record)
            self._add(restored, now_ns)

    @property
    def restored(self) -> int:
        """Records the disk tier held when it opened: kept, but not accepted this run."""
        return self.history.restored if self.history is not None and self.history.active else 0

    def __len__(self) -> int:
        if self.history is not None and self.history.active:
            return self._count + self.history.count_below(self._memory_floor())
        return self._count

    @property
    def memory_count(self) -> int:
        """Records held in memory (the hot tier)."""
        return self._count

    def _memory_floor(self) -> int:
        """The id below which records are read from the disk tier."""
        if self._packed:
            oldest = self._packed[0]
            return oldest.ids[oldest.first]
        for chunk in self._chunks:
            if chunk.first < len(chunk.records):
                return chunk.records[chunk.first].id
        return 2**63

    @property
    def nbytes(self) -> int:
        """Estimated bytes kept: the sum of the records' sizes."""
        return self._bytes

    def oldest_received_ns(self) -> int | None:
        oldest = self._oldest()
        return None if oldest is None else oldest.received_ns

    def _oldest(self) -> PackedChunk | RecordChunk | None:
        if self._packed:
            return self._packed[0]
        return self._chunks[0] if self._chunks else None

    def cap(self, record: Record) -> None:
        """Cap the record's values to ``limits`` and measure it, once; counts the cuts.

        The pipeline calls it before redaction, which walks nested values; ``add`` calls
        it for any record that has not been through it."""
        if not record.size:
            self.truncated_values += cap_record(record, self.limits)

    def add(self, records: Iterable[Record], now_ns: int) -> None:
        """Store records (their ids already set) and evict what the limits require."""
        batch = list(records)
        for record in batch:
            self.cap(record)
        if self.history is not None:
            self.history.append(batch, now_ns)
        self._add(batch, now_ns)

    def _add(self, records: list[Record], now_ns: int) -> None:
        chunks = self._chunks
        base = self.history.prefix_max_ns() if self.history is not None else 0
        for record in records:
            if not chunks or len(chunks[-1].records) >= _CHUNK or chunks[-1].received_ns != now_ns:
                newest = chunks[-1] if chunks else self._packed[-1] if self._packed else None
                chunks.append(RecordChunk(now_ns, base if newest is None else newest.prefix_max_ns))
            chunk = chunks[-1]
            chunk.add(record)
            self._count += 1
            index_bytes = 0
            if record.trace_id is not None:
                index_bytes += _index(self._by_trace, record.trace_id, record.id)
            if record.correlation_id:
                index_bytes += _index(self._by_correlation, record.correlation_id, record.id)
            chunk.index_bytes += index_bytes
            record.size += index_bytes
            self._bytes += record.size
        self._objects += len(records)
        self._pack()
        self.evict(now_ns)

    def _pack(self) -> None:
        """Pack the oldest chunks of objects, up to ``_CHUNK`` records at a time, while
        more than ``_OBJECTS`` records are objects."""
        chunks = self._chunks
        while self._objects > _OBJECTS + _CHUNK:
            run = [chunks.popleft()]
            n = len(run[0].live())  # only the oldest chunk may have lost records
            while chunks and n + len(chunks[0].records) <= _CHUNK:
                n += len(chunks[0].records)
                run.append(chunks.popleft())
            records: list[Record] = []
            arrivals = []
            for chunk in run:
                arrivals.append((len(records), chunk.received_ns))
                records += chunk.live()
            packed = PackedChunk(
                records,
                arrivals,
                run[-1].prefix_max_ns,  # every chunk's includes the ones before it
                sum(c.index_bytes for c in run),
                self._decoded,
            )
            self._packed.append(packed)
            self._objects -= len(records)
            self._bytes += packed.nbytes - sum(r.size for r in records)

    def evict(self, now_ns: int) -> None:
        expire_before = now_ns - self.ttl_ns
        while True:
            oldest = self._oldest()
            if oldest is None:
                break
            if self._count > self.max_records:
                reason = DropReason.EVICTED_RECORD_LIMIT
            elif oldest.received_ns < expire_before:
                reason = DropReason.EXPIRED
            else:
                break
            self.evict_oldest(reason)
        self._budget.enforce()
        if self.history is not None and self.history.active:
            self.history.enforce(now_ns)

    def evict_oldest(self, reason: DropReason) -> None:
        if self._packed:
            packed = self._packed[0]
            record_id = packed.ids[packed.first]
            share = packed.nbytes // packed.count
            packed.first += 1
            if packed.first == packed.count:
                # Its rows' index entries go with the chunk: they are the oldest of
                # their keys, and lookups skip evicted rows until then.
                share = packed.nbytes - share * (packed.count - 1)
                self._packed.popleft()
                for trace_id, correlation_id in packed.index_keys():
                    self._unindex(trace_id, correlation_id)
                self._decoded.drop(packed)
        else:
            oldest = self._chunks[0]
            record = oldest.records[oldest.first]
            oldest.records[oldest.first] = _EVICTED  # its memory goes now, not with the chunk
            oldest.first += 1
            if oldest.first == len(oldest.records):
                self._chunks.popleft()
            self._objects -= 1
            self._unindex(record.trace_id, record.correlation_id)
            record_id, share = record.id, record.size
        self._count -= 1
        self._bytes -= share
        if self.history is None or not self.history.covers(record_id):
            self.evicted[reason] += 1  # else it is still kept, on disk

    def _unindex(self, trace_id: bytes | None, correlation_id: str | None) -> None:
        if trace_id is not None:
            _pop_left(self._by_trace, trace_id)
        if correlation_id:
            _pop_left(self._by_correlation, correlation_id)

    def link(self, correlation_id: str, trace_id: bytes) -> None:
        """Records with only ``correlation_id`` belong to ``trace_id`` (learned from a span
        or an event after they were stored); ``by_trace`` returns them as that trace's."""
        if correlation_id in self._by_correlation:
            if len(self._linked) >= _MAX_LINKED_TRACES:
                del self._linked[next(iter(self._linked))]
            self._linked.setdefault(trace_id, set()).add(correlation_id)

    def by_trace(self, trace_id: bytes) -> list[Record]:
        records = self._records(_held(self._by_trace, trace_id))
        for correlation_id in self._linked.get(trace_id, ()):
            records += [
                dataclasses.replace(r, trace_id=trace_id)
                for r in self._records(_held(self._by_correlation, correlation_id))
                if r.trace_id is None
            ]
        if self.history is not None and self.history.active:
            records = self.history.by_trace(trace_id, self._memory_floor()) + records
        return records

    def by_correlation(self, correlation_id: str) -> list[Record]:
        records = self._records(_held(self._by_correlation, correlation_id))
        if self.history is not None and self.history.active:
            records = self.history.by_correlation(correlation_id, self._memory_floor()) + records
        return records

    def get(self, record_id: int) -> Record | None:
        """A stored record by id."""
        if self.history is not None and self.history.active and record_id < self._memory_floor():
            return self.history.get(record_id)
        found = self._records((record_id,))
        return found[0] if found else None

    def _records(self, record_ids: Sequence[int]) -> list[Record]:
        """The records of these ids (increasing) held in memory, a chunk's worth at a time.
        Ids grow with arrival, so chunks are found by bisection."""
        out: list[Record] = []
        at = 0
        while at < len(record_ids):
            chunk = self._chunk_of(record_ids[at])
            if chunk is None:
                at += 1
                continue
            last = chunk.ids[-1] if isinstance(chunk, PackedChunk) else chunk.records[-1].id
            end = at
            while end < len(record_ids) and record_ids[end] <= last:
                end += 1
            wanted = record_ids[at:end]
            if isinstance(chunk, PackedChunk):
                out += chunk.get(wanted)
            else:
                ids = set(wanted)
                out += [r for r in chunk.live() if r.id in ids]
            at = end
        return out

    def _chunk_of(self, record_id: int) -> PackedChunk | RecordChunk | None:
        """The chunk whose ids reach ``record_id`` first (None past the newest)."""
        packed = self._packed
        if packed and record_id <= packed[-1].ids[-1]:
            lo, hi = 0, len(packed)
            while lo < hi:
                mid = (lo + hi) // 2
                if packed[mid].ids[-1] < record_id:
                    lo = mid + 1
                else:
                    hi = mid
            return packed[lo]
        chunks = self._chunks
        lo, hi = 0, len(chunks)
        while lo < hi:
            mid = (lo + hi) // 2
            if chunks[mid].records[-1].id < record_id:
                lo = mid + 1
            else:
                hi = mid
        return chunks[lo] if lo < len(chunks) else None

    def chunks_newest_first(
        self, text: str | None = None
    ) -> Iterator[RecordChunk | PackedChunk | ColdChunk | BlockChunk]:
        """Memory chunks (objects, then packed), then (with a history) the disk tier's
        below them: given a ``text`` filter, only its blocks that may hold it."""
        yield from reversed(self._chunks)
        yield from reversed(self._packed)
        if self.history is not None and self.history.active:
            yield from self.history.chunks_newest_first(self._memory_floor(), text)

    def iter_newest_first(self) -> Iterator[Record]:
        for chunk in self.chunks_newest_first():
            yield from reversed(chunk.live())

    def clear(self) -> None:
        """Remove everything, in memory and on disk, counted as evicted (``cleared``)."""
        if self.history is not None and self.history.active:
            self.evicted[DropReason.CLEARED] += self.history.count_below(self._memory_floor())
            self.history.clear()
        if self._count:
            self.evicted[DropReason.CLEARED] += self._count
        self._packed.clear()
        self._chunks.clear()
        self._decoded.clear()
        self._objects = 0
        self._count = 0
        self._bytes = 0
        self._by_trace.clear()
        self._by_correlation.clear()
        self._linked.clear()


def _index(index: dict[K, int | deque[int]], key: K, record_id: int) -> int:
    """Add ``record_id`` under ``key``; return the bytes this took (a new key, or the
    deque its second record needs), which the record carries until it leaves."""
    held = index.get(key)
    if held is None:
        index[key] = record_id
        return _KEY_BYTES
    if isinstance(held, int):
        index[key] = deque((held, record_id))
        return _BUCKET_BYTES
    held.append(record_id)
    return 0


def _held(index: dict[K, int | deque[int]], key: K) -> Sequence[int]:
    """The record ids under ``key``, oldest first."""
    held = index.get(key)
    if held is None:
        return ()
    return (held,) if isinstance(held, int) else list(held)


def _pop_left(index: dict[K, int | deque[int]], key: K) -> None:
    held = index.get(key)
    if held is None:
        return
    if isinstance(held, int):
        del index[key]
        return
    held.popleft()
    if not held:
        del index[key]
