"""Log records and native events, in arrival order, indexed by trace and correlation id."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable, Iterable, Iterator
from typing import TypeVar

from collector.model import DropReason, Record

__all__ = ["RecordStore"]

K = TypeVar("K", bound=Hashable)


class RecordStore:
    """Holds at most ``max_records`` records, none older than ``ttl_ns``; oldest leave first.

    Each index holds a deque per key in arrival order, so eviction pops from its left.
    """

    def __init__(self, *, max_records: int, ttl_ns: int) -> None:
        self.max_records = max_records
        self.ttl_ns = ttl_ns
        self._records: deque[tuple[int, Record]] = deque()
        self._by_trace: dict[bytes, deque[Record]] = {}
        self._by_correlation: dict[str, deque[Record]] = {}
        self.evicted: Counter[DropReason] = Counter()

    def __len__(self) -> int:
        return len(self._records)

    def add(self, records: Iterable[Record], now_ns: int) -> None:
        """Store records (their ids already set) and evict what the limits require."""
        for record in records:
            self._records.append((now_ns, record))
            if record.trace_id is not None:
                self._by_trace.setdefault(record.trace_id, deque()).append(record)
            if record.correlation_id:
                self._by_correlation.setdefault(record.correlation_id, deque()).append(record)
        self.evict(now_ns)

    def evict(self, now_ns: int) -> None:
        expire_before = now_ns - self.ttl_ns
        records = self._records
        while records:
            if len(records) > self.max_records:
                reason = DropReason.EVICTED_RECORD_LIMIT
            elif records[0][0] < expire_before:
                reason = DropReason.EXPIRED
            else:
                return
            _, record = records.popleft()
            self.evicted[reason] += 1
            if record.trace_id is not None:
                _pop_left(self._by_trace, record.trace_id)
            if record.correlation_id:
                _pop_left(self._by_correlation, record.correlation_id)

    def by_trace(self, trace_id: bytes) -> list[Record]:
        return list(self._by_trace.get(trace_id, ()))

    def by_correlation(self, correlation_id: str) -> list[Record]:
        return list(self._by_correlation.get(correlation_id, ()))

    def iter_newest_first(self) -> Iterator[Record]:
        for _, record in reversed(self._records):
            yield record

    def clear(self) -> None:
        self._records.clear()
        self._by_trace.clear()
        self._by_correlation.clear()


def _pop_left(index: dict[K, deque[Record]], key: K) -> None:
    bucket = index.get(key)
    if bucket is None:
        return
    bucket.popleft()
    if not bucket:
        del index[key]
