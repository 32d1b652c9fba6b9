"""Trace-keyed span store, columnar and bounded.

Each accepted ``SpanBatch`` becomes one ``SpanChunk``: ids concatenated into ``bytes``,
times in ``array('q')``, names and services as indexes into a small per-chunk table,
and the receiver's encoded detail kept for on-demand decoding. A dict maps each trace
id to an ``array('Q')`` of span references (chunk sequence << 24 | index), so looking a
trace up never scans. Chunks leave oldest-first; since a trace's references are
appended in chunk order, evicting a chunk removes a prefix of each affected array.
Trees are assembled at query time, so late and out-of-order spans simply attach.

Each chunk's bytes (its columns and the detail it holds) are estimated once, when it is
made; with the trace index's share they are spent from the ``ByteBudget`` shared with
the record store. A batch whose spans are all dropped leaves no chunk behind; a chunk
that keeps only some of its spans is counted in full, as all its columns stay.

With a ``SpanHistory`` attached, every chunk kept is also written to disk as it comes
(``collector.store.span_history``), and read back on start. A trace then outlives
memory: ``trace`` asks the disk for the spans of a trace it no longer holds, or holds
only in part, from the chunks received up to the oldest one still in memory (memory
keeps a suffix of what arrived), and each span comes back once. A trace wholly evicted
whose late spans then arrived again is answered from memory alone.
"""

from __future__ import annotations

import array
import bisect
import itertools
import sys
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from collector.model import DropReason, SpanBatch, SpanDetail, SpanDetailSource
from collector.store.budget import ByteBudget

if TYPE_CHECKING:
    from collector.store.span_history import SpanHistory

__all__ = ["SpanChunk", "SpanColumns", "SpanStore", "StoredSpan"]

_SHIFT = 24
_INDEX_MASK = (1 << _SHIFT) - 1
# The trace index's share of the byte budget: a reference per kept span, and per trace
# its key, its reference array and its slot in the dict.
_REF_BYTES = 8
_TRACE_BYTES = 240
# A chunk's object, its slot in ``_by_seq`` and in the chunk deque.
_CHUNK_BYTES = 160


class SpanColumns(NamedTuple):
    """A chunk's columns as ``SpanChunk`` keeps them (read back from disk)."""

    received_ns: int
    n: int
    trace_ids: bytes
    span_ids: bytes
    parent_ids: bytes
    names: list[str]
    name_index: array.array[int]
    services: list[str]
    service_index: array.array[int]
    kinds: bytes
    statuses: bytes
    starts: array.array[int]
    ends: array.array[int]
    detail: SpanDetailSource


class SpanChunk:
    """One batch's spans as columns; ``prefix_max_start`` is the latest start of any chunk
    up to this one, so a newest-first scan can stop early."""

    __slots__ = (
        "_folded_names",
        "all_kept",
        "detail",
        "ends",
        "kinds",
        "max_start",
        "min_start",
        "n",
        "name_index",
        "names",
        "nbytes",
        "parent_ids",
        "prefix_max_start",
        "received_ns",
        "seq",
        "service_index",
        "services",
        "span_ids",
        "starts",
        "statuses",
        "trace_ids",
    )

    def __init__(self, seq: int, batch: SpanBatch, received_ns: int) -> None:
        self.seq = seq
        self.received_ns = received_ns
        self.n = len(batch)
        self.trace_ids = b"".join(batch.trace_ids)
        self.span_ids = b"".join(batch.span_ids)
        self.parent_ids = b"".join(batch.parent_ids)
        self.names, self.name_index = _intern(batch.names)
        self._folded_names: str | None = None
        self.services, self.service_index = _intern(batch.services)
        self.kinds = bytes(batch.kinds)
        self.statuses = bytes(batch.statuses)
        self.starts = batch.starts
        self.ends = batch.ends
        self.max_start = max(batch.starts) if self.n else 0
        self.min_start = min(batch.starts) if self.n else 0
        self.prefix_max_start = self.max_start
        self.detail = batch.detail
        self.all_kept = True
        self.nbytes = _CHUNK_BYTES + sys.getsizeof(self) + self.detail.nbytes
        for column in (
            self.trace_ids,
            self.span_ids,
            self.parent_ids,
            self.names,
            self.name_index,
            self.services,
            self.service_index,
            self.kinds,
            self.statuses,
            self.starts,
            self.ends,
        ):
            self.nbytes += sys.getsizeof(column)
        self.nbytes += sum(map(sys.getsizeof, self.names)) + sum(map(sys.getsizeof, self.services))

    @classmethod
    def from_columns(cls, c: SpanColumns) -> SpanChunk:
        """A chunk read back from disk to answer a query: kept by no store (``seq`` -1),
        its columns used as they are, so nothing is split and interned again."""
        chunk = cls.__new__(cls)
        chunk.seq = -1
        chunk.received_ns = c.received_ns
        chunk.n = c.n
        chunk.trace_ids, chunk.span_ids, chunk.parent_ids = c.trace_ids, c.span_ids, c.parent_ids
        chunk.names, chunk.name_index = c.names, c.name_index
        chunk._folded_names = None
        chunk.services, chunk.service_index = c.services, c.service_index
        chunk.kinds, chunk.statuses = c.kinds, c.statuses
        chunk.starts, chunk.ends = c.starts, c.ends
        chunk.max_start = max(c.starts, default=0)
        chunk.min_start = min(c.starts, default=0)
        chunk.prefix_max_start = chunk.max_start
        chunk.detail = c.detail
        chunk.all_kept = True
        chunk.nbytes = 0
        return chunk

    @property
    def folded_names(self) -> str:
        """The chunk's names lowercased, a line each: a text in none of them is ruled out
        with one search (a day's text query asks thousands of chunks)."""
        if self._folded_names is None:
            self._folded_names = "\n".join(self.names).lower()
        return self._folded_names

    def span(self, i: int) -> StoredSpan:
        return StoredSpan(
            trace_id=self.trace_ids[i * 16 : i * 16 + 16],
            span_id=self.span_ids[i * 8 : i * 8 + 8],
            parent_id=self.parent_ids[i * 8 : i * 8 + 8],
            name=self.names[self.name_index[i]],
            service=self.services[self.service_index[i]],
            kind=self.kinds[i],
            status=self.statuses[i],
            start_ns=self.starts[i],
            end_ns=self.ends[i],
            _detail=self.detail,
            _index=i,
        )


def _intern(values: list[str]) -> tuple[list[str], array.array[int]]:
    table: dict[str, int] = {}
    index = array.array("I", [table.setdefault(v, len(table)) for v in values])
    return list(table), index


@dataclass(slots=True)
class StoredSpan:
    """One span as the store holds it; ``detail()`` decodes attributes and events."""

    trace_id: bytes
    span_id: bytes
    parent_id: bytes
    name: str
    service: str
    kind: int
    status: int
    start_ns: int
    end_ns: int
    _detail: SpanDetailSource
    _index: int

    @property
    def duration_ns(self) -> int:
        return max(0, self.end_ns - self.start_ns)

    @property
    def is_root(self) -> bool:
        return not any(self.parent_id)

    def detail(self) -> SpanDetail:
        return self._detail.span_detail(self._index)


class SpanStore:
    """Holds at most ``max_spans`` spans in ``max_traces`` traces, none older than ``ttl_ns``,
    within its share of ``budget``.

    Not thread-safe: used from the daemon's event loop only.
    """

    def __init__(
        self,
        *,
        max_spans: int,
        max_traces: int,
        max_spans_per_trace: int,
        ttl_ns: int,
        budget: ByteBudget,
    ) -> None:
        self.max_spans = max_spans
        self.max_traces = max_traces
        self.max_spans_per_trace = max_spans_per_trace
        self.ttl_ns = ttl_ns
        self._chunks: deque[SpanChunk] = deque()
        self._by_seq: dict[int, SpanChunk] = {}
        self._traces: dict[bytes, array.array[int]] = {}
        self._next_seq = 0
        self.span_count = 0
        self._chunk_bytes = 0
        self._budget = budget
        budget.join(self)
        self.evicted_spans: Counter[DropReason] = Counter()
        self.evicted_traces: Counter[DropReason] = Counter()
        self.dropped: Counter[DropReason] = Counter()
        self.history: SpanHistory | None = None
        """Where each kept chunk is written too (set by ``Store.open_history``)."""
        self.restored = 0
        """Spans read back from disk at start: kept, but not accepted this run."""
        self._partial: set[bytes] = set()
        """Traces in memory that lost their first spans to eviction."""

    @property
    def trace_count(self) -> int:
        return len(self._traces)

    @property
    def nbytes(self) -> int:
        """Estimated bytes kept: the chunks, and the trace index's share."""
        return self._chunk_bytes + self.span_count * _REF_BYTES + len(self._traces) * _TRACE_BYTES

    def oldest_received_ns(self) -> int | None:
        return self._chunks[0].received_ns if self._chunks else None

    def add(self, batch: SpanBatch, now_ns: int) -> int:
        """Store a batch and evict what the limits require; return how many spans were kept.

        Spans beyond ``max_spans_per_trace`` for their trace are dropped and counted; a
        batch with no span kept is not stored at all.
        """
        if not len(batch):
            return 0
        seq = self._next_seq
        self._next_seq += 1
        base = seq << _SHIFT
        traces = self._traces
        limit = self.max_spans_per_trace
        kept = 0
        for i, trace_id in enumerate(batch.trace_ids):
            refs = traces.get(trace_id)
            if refs is None:
                traces[trace_id] = array.array("Q", (base | i,))
            elif len(refs) < limit:
                refs.append(base | i)
            else:
                continue
            kept += 1
        if kept < len(batch):
            self.dropped[DropReason.TRACE_TOO_LARGE] += len(batch) - kept
        if not kept:
            return 0
        chunk = SpanChunk(seq, batch, now_ns)
        chunk.all_kept = kept == len(batch)
        if self._chunks:
            chunk.prefix_max_start = max(chunk.max_start, self._chunks[-1].prefix_max_start)
        self._chunks.append(chunk)
        self._by_seq[seq] = chunk
        self._chunk_bytes += chunk.nbytes
        self.span_count += kept
        if self.history is not None:
            self.history.append(chunk, now_ns)
        self.evict(now_ns)
        return kept

    def evict(self, now_ns: int) -> None:
        """Drop oldest chunks while over a limit or past the TTL, then hold the budget."""
        expire_before = now_ns - self.ttl_ns
        while self._chunks:
            oldest = self._chunks[0]
            if self.span_count > self.max_spans:
                reason = DropReason.EVICTED_SPAN_LIMIT
            elif len(self._traces) > self.max_traces:
                reason = DropReason.EVICTED_TRACE_LIMIT
            elif oldest.received_ns < expire_before:
                reason = DropReason.EXPIRED
            else:
                break
            self.evict_oldest(reason)
        self._budget.enforce()

    def evict_oldest(self, reason: DropReason) -> None:
        chunk = self._chunks.popleft()
        del self._by_seq[chunk.seq]
        self._chunk_bytes -= chunk.nbytes
        seq = chunk.seq
        seen: set[bytes] = set()
        removed = 0
        tids = chunk.trace_ids
        for i in range(chunk.n):
            trace_id = tids[i * 16 : i * 16 + 16]
            if trace_id in seen:
                continue
            seen.add(trace_id)
            refs = self._traces.get(trace_id)
            if refs is None:
                continue
            k = 0
            while k < len(refs) and refs[k] >> _SHIFT == seq:
                k += 1
            removed += k
            if k == len(refs):
                del self._traces[trace_id]
                self._partial.discard(trace_id)
                self.evicted_traces[reason] += 1
            elif k:
                del refs[:k]
                self._partial.add(trace_id)
        self.span_count -= removed
        self.evicted_spans[reason] += removed

    def trace(self, trace_id: bytes) -> list[StoredSpan]:
        """All stored spans of one trace, in memory or on disk, in arrival order; empty
        if unknown."""
        refs = self._traces.get(trace_id)
        by_seq = self._by_seq
        spans = [] if refs is None else [by_seq[r >> _SHIFT].span(r & _INDEX_MASK) for r in refs]
        if self.history is not None and (refs is None or trace_id in self._partial):
            return self._with_older(trace_id, spans)
        return spans

    def _with_older(self, trace_id: bytes, spans: list[StoredSpan]) -> list[StoredSpan]:
        """``spans`` (those in memory) after the trace's spans that left memory, each
        once, at most ``max_spans_per_trace`` in all (the first that came, as on arrival)."""
        assert self.history is not None
        room = self.max_spans_per_trace - len(spans)
        if room <= 0:
            return spans
        floor = self._chunks[0].received_ns if self._chunks else None
        held = {s.span_id for s in spans}  # a chunk received at ``floor`` may be in both
        older = [s for s in self.history.trace_spans(trace_id, floor) if s.span_id not in held]
        return older[:room] + spans

    def trace_span_count(self, trace_id: bytes) -> int:
        """How many spans of one trace are stored, without making them."""
        refs = self._traces.get(trace_id)
        return 0 if refs is None else len(refs)

    def trace_ids_starting(self, digits: str, limit: int) -> list[bytes]:
        """Up to ``limit`` stored trace ids whose hex starts with ``digits`` (lowercase
        hex, at least 8 digits), newest first: those in memory, then those only on disk.
        Scans every trace in memory: for the short ids people type, not for hot paths."""
        head = bytes.fromhex(digits[: len(digits) // 2 * 2])
        nibble = int(digits[-1], 16) if len(digits) % 2 else None
        found = []
        for trace_id in reversed(self._traces):
            if trace_id.startswith(head) and (nibble is None or trace_id[len(head)] >> 4 == nibble):
                found.append(trace_id)
                if len(found) == limit:
                    return found
        if self.history is not None:
            floor = self._chunks[0].received_ns if self._chunks else None
            for trace_id in self.history.trace_ids_starting(digits, limit, floor):
                if trace_id not in found:
                    found.append(trace_id)
        return found[:limit]

    def newest_trace_ids(self, limit: int) -> list[bytes]:
        """Up to ``limit`` trace ids, the most recently first seen first."""
        return list(itertools.islice(reversed(self._traces), limit))

    def iter_newest_first(
        self, *, not_after_ns: int | None = None, status: int | None = None
    ) -> Iterator[StoredSpan]:
        """Every stored span, newest chunk first; callers stop early once they have enough.

        Spans starting after ``not_after_ns``, or (if given) without ``status``, are
        skipped on the columns, before any object is made for them.
        """
        traces = self._traces
        for chunk in reversed(self._chunks):
            seq = chunk.seq
            statuses = chunk.statuses
            for i in range(chunk.n - 1, -1, -1):
                if status is not None and statuses[i] != status:
                    continue
                if not_after_ns is not None and chunk.starts[i] > not_after_ns:
                    continue
                if not chunk.all_kept:
                    refs = traces.get(chunk.trace_ids[i * 16 : i * 16 + 16])
                    if refs is None or not _holds(refs, (seq << _SHIFT) | i):
                        continue
                yield chunk.span(i)

    def find_span(self, span_id: bytes) -> StoredSpan | None:
        """The newest stored span with this id; a C-speed search of each chunk's id column."""
        for chunk in reversed(self._chunks):
            ids = chunk.span_ids
            at = ids.find(span_id)
            while at != -1:
                if at % 8 == 0 and self.holds(chunk, at // 8):
                    return chunk.span(at // 8)
                at = ids.find(span_id, at + 1)
        return None

    def chunks_newest_first(self) -> Iterator[SpanChunk]:
        return reversed(self._chunks)

    def holds(self, chunk: SpanChunk, i: int) -> bool:
        """Whether span ``i`` of ``chunk`` is stored (it may have exceeded its trace's limit)."""
        if chunk.all_kept:
            return True
        refs = self._traces.get(chunk.trace_ids[i * 16 : i * 16 + 16])
        return refs is not None and _holds(refs, (chunk.seq << _SHIFT) | i)

    def clear(self) -> None:
        """Remove everything, on disk too, counted as evicted (``cleared``)."""
        if self.history is not None:
            self.history.clear()
        if self.span_count:
            self.evicted_spans[DropReason.CLEARED] += self.span_count
            self.evicted_traces[DropReason.CLEARED] += len(self._traces)
        self._chunks.clear()
        self._by_seq.clear()
        self._traces.clear()
        self._partial.clear()
        self.span_count = 0
        self._chunk_bytes = 0


def _holds(refs: array.array[int], ref: int) -> bool:
    """Whether a trace's sorted reference array holds ``ref``."""
    i = bisect.bisect_left(refs, ref)
    return i < len(refs) and refs[i] == ref
