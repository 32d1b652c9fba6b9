"""Log records and native events, in arrival order, indexed by trace and correlation id.

Records are kept in chunks of consecutive arrivals. Each chunk knows its time range,
the latest time of any chunk up to it (``prefix_max_ns``), and which sources, services
and levels it holds, so a query skips chunks that cannot match and stops once nothing
older can be newer than what it already has.

Every record is capped and measured once, before it is stored (``collector.limits``);
its size is spent from the ``ByteBudget`` shared with the span store.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import Counter, deque
from collections.abc import Hashable, Iterable, Iterator
from typing import TypeVar

from collector.limits import ValueLimits, cap_record
from collector.model import DropReason, Record
from collector.store.budget import ByteBudget

__all__ = ["RecordChunk", "RecordStore"]

K = TypeVar("K", bound=Hashable)
_CHUNK = 512
_MAX_LINKED_TRACES = 100_000
# Stands in a chunk for a record evicted before the rest of its chunk.
_EVICTED = Record(time_ns=0, source="", level="", message="")
# A key's deque (one block of 64 slots) and its slot in the index dict.
_INDEX_ENTRY_BYTES = sys.getsizeof(deque()) + 100


class RecordChunk:
    """Up to 512 consecutive records, with what a query needs to skip them."""

    __slots__ = (
        "first",
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


class RecordStore:
    """Holds at most ``max_records`` records, none older than ``ttl_ns``, within its share
    of ``budget``; oldest leave first.

    Each index holds a deque per key in arrival order, so eviction pops from its left.
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
        self._chunks: deque[RecordChunk] = deque()
        self._count = 0
        self._by_trace: dict[bytes, deque[Record]] = {}
        self._by_correlation: dict[str, deque[Record]] = {}
        self._linked: dict[bytes, set[str]] = {}  # trace id -> request ids learned later
        self.evicted: Counter[DropReason] = Counter()

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        """Estimated bytes kept: the sum of the records' sizes."""
        return self._bytes

    def oldest_received_ns(self) -> int | None:
        return self._chunks[0].received_ns if self._chunks else None

    def cap(self, record: Record) -> None:
        """Cap the record's values to ``limits`` and measure it, once; counts the cuts.

        The pipeline calls it before redaction, which walks nested values; ``add`` calls
        it for any record that has not been through it."""
        if not record.size:
            self.truncated_values += cap_record(record, self.limits)

    def add(self, records: Iterable[Record], now_ns: int) -> None:
        """Store records (their ids already set) and evict what the limits require."""
        chunks = self._chunks
        for record in records:
            self.cap(record)
            if not chunks or len(chunks[-1].records) >= _CHUNK or chunks[-1].received_ns != now_ns:
                chunks.append(RecordChunk(now_ns, chunks[-1].prefix_max_ns if chunks else 0))
            chunks[-1].add(record)
            self._count += 1
            if record.trace_id is not None:
                record.size += _index(self._by_trace, record.trace_id, record)
            if record.correlation_id:
                record.size += _index(self._by_correlation, record.correlation_id, record)
            self._bytes += record.size
        self.evict(now_ns)

    def evict(self, now_ns: int) -> None:
        expire_before = now_ns - self.ttl_ns
        while self._chunks:
            oldest = self._chunks[0]
            if self._count > self.max_records:
                reason = DropReason.EVICTED_RECORD_LIMIT
            elif oldest.received_ns < expire_before:
                reason = DropReason.EXPIRED
            else:
                break
            self.evict_oldest(reason)
        self._budget.enforce()

    def evict_oldest(self, reason: DropReason) -> None:
        oldest = self._chunks[0]
        record = oldest.records[oldest.first]
        oldest.records[oldest.first] = _EVICTED  # its memory goes now, not with the chunk
        oldest.first += 1
        if oldest.first == len(oldest.records):
            self._chunks.popleft()
        self._count -= 1
        self._bytes -= record.size
        self.evicted[reason] += 1
        if record.trace_id is not None:
            _pop_left(self._by_trace, record.trace_id)
        if record.correlation_id:
            _pop_left(self._by_correlation, record.correlation_id)

    def link(self, correlation_id: str, trace_id: bytes) -> None:
        """Records with only ``correlation_id`` belong to ``trace_id`` (learned from a span
        or an event after they were stored); ``by_trace`` returns them as that trace's."""
        if correlation_id in self._by_correlation:
            if len(self._linked) >= _MAX_LINKED_TRACES:
                del self._linked[next(iter(self._linked))]
            self._linked.setdefault(trace_id, set()).add(correlation_id)

    def by_trace(self, trace_id: bytes) -> list[Record]:
        records = list(self._by_trace.get(trace_id, ()))
        for correlation_id in self._linked.get(trace_id, ()):
            records += [
                dataclasses.replace(r, trace_id=trace_id)
                for r in self._by_correlation.get(correlation_id, ())
                if r.trace_id is None
            ]
        return records

    def by_correlation(self, correlation_id: str) -> list[Record]:
        return list(self._by_correlation.get(correlation_id, ()))

    def get(self, record_id: int) -> Record | None:
        """A stored record by id. Ids grow with arrival, so chunks are searched by bisection."""
        chunks = self._chunks
        lo, hi = 0, len(chunks)
        while lo < hi:
            mid = (lo + hi) // 2
            if chunks[mid].records[-1].id < record_id:
                lo = mid + 1
            else:
                hi = mid
        if lo == len(chunks):
            return None
        for record in chunks[lo].live():
            if record.id == record_id:
                return record
        return None

    def chunks_newest_first(self) -> Iterator[RecordChunk]:
        return reversed(self._chunks)

    def iter_newest_first(self) -> Iterator[Record]:
        for chunk in reversed(self._chunks):
            yield from reversed(chunk.live())

    def clear(self) -> None:
        """Remove everything, counted as evicted (``cleared``)."""
        if self._count:
            self.evicted[DropReason.CLEARED] += self._count
        self._chunks.clear()
        self._count = 0
        self._bytes = 0
        self._by_trace.clear()
        self._by_correlation.clear()
        self._linked.clear()


def _index(index: dict[K, deque[Record]], key: K, record: Record) -> int:
    """Append ``record`` under ``key``; return the bytes a new entry took (else 0), which
    the record carries until it leaves."""
    bucket = index.get(key)
    if bucket is not None:
        bucket.append(record)
        return 0
    index[key] = deque((record,))
    return _INDEX_ENTRY_BYTES


def _pop_left(index: dict[K, deque[Record]], key: K) -> None:
    bucket = index.get(key)
    if bucket is None:
        return
    bucket.popleft()
    if not bucket:
        del index[key]
