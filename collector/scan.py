"""Newest-first scans that stop early: the engine under the timeline and list views.

Both stores keep chunks with a ``prefix_max`` time (the latest of any chunk up to it).
Scanning newest chunk first, once ``k`` matches are held and the next chunk's prefix
max is older than the oldest of them, nothing further back can be newer: the scan
stops; within a chunk, items older than the oldest one held are passed over uncounted.
Chunks that cannot match (no span of the service, no error, no name containing the
text, no record of the source) are skipped on their summaries without touching their
items. When anything was passed over, the count of matches is a lower bound, and the
answer says so.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from collector.filters import LEVEL_RANK, TimelineFilter
from collector.model import Record, StatusCode
from collector.store import BlockChunk, RecordStore, SpanChunk, SpanStore, Store, StoredSpan

__all__ = ["ChunkFilter", "Matches", "candidates", "chunk_filter", "newest_matches"]

Item = tuple[int, str, StoredSpan | Record]
_SpanEntry = tuple[int, str, int, int, SpanChunk]  # time, key, chunk seq, index, chunk


@dataclass(slots=True)
class ChunkFilter:
    """What each span of a chunk is checked against: the service's index in the chunk, and
    the indexes of the names holding the text (None: no such filter)."""

    service_index: int | None
    names: set[int] | None


def chunk_filter(
    chunk: SpanChunk, service: str | None, errors: bool, text: str | None
) -> ChunkFilter | None:
    """None if no span of ``chunk`` can be of ``service``, an error (if ``errors``) and
    named with ``text`` (lowercase) in it, judged on its summaries alone."""
    service_index = None
    if service is not None:
        if service not in chunk.services:
            return None
        service_index = chunk.services.index(service)
    if errors and StatusCode.ERROR not in chunk.statuses:
        return None
    names = None
    if text is not None:
        if text not in chunk.folded_names:
            return None
        names = {j for j, name in enumerate(chunk.names) if text in name.lower()}
        if not names:
            return None
    return ChunkFilter(service_index, names)


@dataclass(slots=True)
class Matches:
    """Up to ``k`` matching items, newest first; ``total`` is exact if ``exact``."""

    items: list[Item]
    total: int
    exact: bool


def newest_matches(store: Store, f: TimelineFilter, k: int) -> Matches:
    if f.trace_id is not None or f.correlation_id is not None:
        return _indexed(store, f, k)
    spans, span_total, spans_exact = _scan_spans(store.spans, f, k)
    records, record_total, records_exact = _scan_records(store.records, f, k)
    items = heapq.nlargest(k, [*spans, *records], key=lambda it: (it[0], it[1]))
    return Matches(items, span_total + record_total, spans_exact and records_exact)


def _indexed(store: Store, f: TimelineFilter, k: int) -> Matches:
    """A trace or correlation id names few items: filter them all, count exactly."""
    spans, records = candidates(store, f)
    found: list[Item] = []
    for span in spans:
        if f.keeps_span(span):
            found.append((span.start_ns, _span_key(span.span_id), span))
    for record in records:
        if f.keeps_record(record):
            found.append((record.time_ns, _record_key(record), record))
    total = len(found)
    if f.cursor is not None:
        found = [it for it in found if (it[0], it[1]) < f.cursor]
    return Matches(heapq.nlargest(k, found, key=lambda it: (it[0], it[1])), total, True)


def _span_key(span_id: bytes) -> str:
    return f"span:{span_id.hex()}"


def _record_key(record: Record) -> str:
    return f"{record.id:012d}"


def _scan_spans(store: SpanStore, f: TimelineFilter, k: int) -> tuple[list[Item], int, bool]:
    if not f.may_match_spans():
        return [], 0, True
    errors_only = f.level is not None and LEVEL_RANK[f.level] > LEVEL_RANK["info"]
    text = f.text.lower() if f.text else None
    since, until, cursor = f.since_ns, f.until_ns, f.cursor
    slow_checks = bool(f.noise) or f.needs_http
    heap: list[_SpanEntry] = []
    total = 0
    exact = True
    for chunk in store.chunks_newest_first():
        if since is not None and chunk.prefix_max_start < since:
            return _span_items(heap), total, exact
        if len(heap) >= k and chunk.prefix_max_start < heap[0][0]:
            return _span_items(heap), total, False
        if len(heap) >= k and chunk.max_start < heap[0][0]:
            exact = False
            continue
        if (until is not None and chunk.min_start > until) or (
            cursor is not None and chunk.min_start > cursor[0]
        ):
            continue
        passes = chunk_filter(chunk, f.service, errors_only, text)
        if passes is None:
            continue
        service_index, names = passes.service_index, passes.names
        starts, statuses = chunk.starts, chunk.statuses
        floor = heap[0][0] if len(heap) >= k else -1  # older than this cannot enter the page
        for i in range(chunk.n - 1, -1, -1):
            t = starts[i]
            if t < floor:
                exact = False  # not even counted: it could never be shown
                continue
            if (since is not None and t < since) or (until is not None and t > until):
                continue
            if errors_only and statuses[i] != StatusCode.ERROR:
                continue
            if service_index is not None and chunk.service_index[i] != service_index:
                continue
            if names is not None and chunk.name_index[i] not in names:
                continue
            if not store.holds(chunk, i):
                continue
            if slow_checks and not f.keeps_span(chunk.span(i)):
                continue
            total += 1
            key = _span_key(chunk.span_ids[i * 8 : i * 8 + 8])
            if cursor is not None and (t, key) >= cursor:
                continue
            entry = (t, key, chunk.seq, i, chunk)
            if len(heap) < k:
                heapq.heappush(heap, entry)
            elif (t, key) > (heap[0][0], heap[0][1]):
                heapq.heapreplace(heap, entry)
            else:
                continue
            if len(heap) >= k:
                floor = heap[0][0]
    return _span_items(heap), total, exact


def _span_items(heap: list[_SpanEntry]) -> list[Item]:
    return [(t, key, chunk.span(i)) for t, key, _, i, chunk in heap]


def _scan_records(store: RecordStore, f: TimelineFilter, k: int) -> tuple[list[Item], int, bool]:
    if not f.may_match_records():
        return [], 0, True
    min_rank = LEVEL_RANK[f.level] if f.level is not None else 0
    since, until, cursor = f.since_ns, f.until_ns, f.cursor
    heap: list[Item] = []
    total = 0
    exact = True

    def floor() -> int:
        """Items older than this cannot enter the page."""
        return heap[0][0] if len(heap) >= k else -1

    for chunk in store.chunks_newest_first(f.text):
        if since is not None and chunk.prefix_max_ns < since:
            return heap, total, exact
        if len(heap) >= k and chunk.prefix_max_ns < heap[0][0]:
            return heap, total, False
        if len(heap) >= k and chunk.max_ns < heap[0][0]:
            exact = False
            continue
        if (until is not None and chunk.min_ns > until) or (
            cursor is not None and chunk.min_ns > cursor[0]
        ):
            continue
        if f.source is not None and f.source not in chunk.sources:
            continue
        if f.service is not None and f.service not in chunk.services:
            continue
        if min_rank and not any(LEVEL_RANK.get(level, 1) >= min_rank for level in chunk.levels):
            continue
        oldest = floor()
        if isinstance(chunk, BlockChunk):  # decoded as it is read, what may match alone
            where = {"source": {f.source}} if f.source is not None else {}
            if f.service is not None:
                where["service"] = {f.service}
            if min_rank:
                where["level"] = {v for v in chunk.levels if LEVEL_RANK.get(v, 1) >= min_rank}
            if not chunk.may_match(where):
                continue
            found: Iterable[Record | None] = chunk.newest_first(f.text, since, until, floor, where)
        else:
            found = reversed(chunk.candidates(f.text, since, until))
        for record in found:
            if record is None or record.time_ns < oldest:
                exact = False
                continue
            if not f.keeps_record(record):
                continue
            total += 1
            entry: Item = (record.time_ns, _record_key(record), record)
            if cursor is not None and (entry[0], entry[1]) >= cursor:
                continue
            if len(heap) < k:
                heapq.heappush(heap, entry)
            elif (entry[0], entry[1]) > (heap[0][0], heap[0][1]):
                heapq.heapreplace(heap, entry)
            else:
                continue
            if len(heap) >= k:
                oldest = heap[0][0]
    return heap, total, exact


def candidates(store: Store, f: TimelineFilter) -> tuple[Iterable[StoredSpan], Iterable[Record]]:
    """The items worth filtering: one trace's, one correlation's, or everything."""
    if f.trace_id is not None:
        spans: Iterable[StoredSpan] = store.spans.trace(f.trace_id)
        records: Iterable[Record] = store.records.by_trace(f.trace_id)
    elif f.correlation_id is not None:
        correlated = store.records.by_correlation(f.correlation_id)
        trace_ids = {r.trace_id for r in correlated if r.trace_id is not None}
        spans = [s for t in trace_ids for s in store.spans.trace(t)]
        linked = [r for t in trace_ids for r in store.records.by_trace(t)]
        records = list({r.id: r for r in [*correlated, *linked]}.values())
    else:
        spans, records = store.spans.iter_newest_first(), store.records.iter_newest_first()
    if f.kinds is not None and "span" not in f.kinds:
        spans = ()
    return spans, records
