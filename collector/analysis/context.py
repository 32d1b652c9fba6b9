"""What the store knows around one trace: the recent baseline of each operation, the
services it has seen, records near in time, failures shortly before, linked traces.

Every lookup reads the store's public columns (``SpanStore.chunks_newest_first``,
``RecordStore.chunks_newest_first``) newest first and is bounded twice: by a time window
and by how many chunks it may visit (``_MAX_CHUNKS``), so an answer costs the same on a
store of a thousand spans as on one of a million; what lies beyond is simply not seen.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field

from collector.model import Record, StatusCode
from collector.store import SpanChunk, Store, StoredSpan

__all__ = ["Baseline", "StoreContext"]

_MAX_CHUNKS = 3000
_MAX_SAMPLES = 64
_MIN_SAMPLES = 3
_MAX_LINK_CANDIDATES = 200
_MAX_RECORDS_EXAMINED = 20_000
_ERROR = bytes([StatusCode.ERROR])
_CONSUMER = bytes([5])


@dataclass(slots=True)
class Baseline:
    """The recent p50 duration of one operation (service and span name)."""

    p50_ns: int
    samples: int


@dataclass(slots=True)
class StoreContext:
    """Store lookups for one analysis; ``exclude`` is the trace being analysed."""

    store: Store
    exclude: bytes = b""
    _services: set[str] | None = field(default=None)

    def baselines(
        self, ops: set[tuple[str, str]], before_ns: int
    ) -> dict[tuple[str, str], Baseline]:
        """p50 durations of ``ops`` over their newest ``_MAX_SAMPLES`` runs in other
        traces that started before ``before_ns``; ops with fewer than ``_MIN_SAMPLES``
        runs are left out."""
        if not ops:
            return {}
        want_services = {s for s, _ in ops}
        want_names = {n for _, n in ops}
        samples: dict[tuple[str, str], list[int]] = {op: [] for op in ops}
        open_ops = set(ops)
        for chunk in self._chunks():
            if not open_ops:
                break
            if chunk.min_start > before_ns:
                continue
            names = [i for i, n in enumerate(chunk.names) if n in want_names]
            if not names or not want_services.intersection(chunk.services):
                continue
            name_idx = set(names)
            for i in range(chunk.n - 1, -1, -1):
                if chunk.name_index[i] not in name_idx:
                    continue
                op = (chunk.services[chunk.service_index[i]], chunk.names[chunk.name_index[i]])
                if op not in open_ops or chunk.starts[i] > before_ns:
                    continue
                if chunk.trace_ids[i * 16 : i * 16 + 16] == self.exclude:
                    continue
                if not self.store.spans.holds(chunk, i):
                    continue
                found = samples[op]
                found.append(chunk.ends[i] - chunk.starts[i])
                if len(found) >= _MAX_SAMPLES:
                    open_ops.discard(op)
        return {
            op: Baseline(int(statistics.median(found)), len(found))
            for op, found in samples.items()
            if len(found) >= _MIN_SAMPLES
        }

    def known_services(self) -> set[str]:
        """Service names of the spans and records in the newest chunks."""
        if self._services is None:
            services: set[str] = set()
            for chunk in self._chunks():
                services.update(chunk.services)
            for visited, rchunk in enumerate(self.store.records.chunks_newest_first()):
                if visited >= _MAX_CHUNKS:
                    break
                services.update(rchunk.services)
            services.discard("")
            self._services = services
        return self._services

    def failed_spans(self, services: set[str], since_ns: int, until_ns: int) -> list[StoredSpan]:
        """Spans with error status of ``services`` that started in the window, in other
        traces, oldest first."""
        found: list[StoredSpan] = []
        for chunk in self._chunks():
            if chunk.prefix_max_start < since_ns:
                break
            if chunk.max_start < since_ns or chunk.min_start > until_ns:
                continue
            if not services.intersection(chunk.services):
                continue
            for i in _positions(chunk.statuses, _ERROR):
                if chunk.services[chunk.service_index[i]] not in services:
                    continue
                if not since_ns <= chunk.starts[i] <= until_ns:
                    continue
                if chunk.trace_ids[i * 16 : i * 16 + 16] == self.exclude:
                    continue
                if self.store.spans.holds(chunk, i):
                    found.append(chunk.span(i))
        found.sort(key=lambda s: s.start_ns)
        return found

    def failing_trace_ids(self, since_ns: int, until_ns: int) -> list[bytes]:
        """Traces with a span with error status that started in the window, by their
        first such span, oldest first."""
        first: dict[bytes, int] = {}
        for chunk in self._chunks():
            if chunk.prefix_max_start < since_ns:
                break
            if chunk.max_start < since_ns or chunk.min_start > until_ns:
                continue
            for i in _positions(chunk.statuses, _ERROR):
                start = chunk.starts[i]
                if not since_ns <= start <= until_ns or not self.store.spans.holds(chunk, i):
                    continue
                trace_id = chunk.trace_ids[i * 16 : i * 16 + 16]
                if start < first.get(trace_id, 2**63):
                    first[trace_id] = start
        return sorted(first, key=first.__getitem__)

    def linking_spans(self, span_ids: set[bytes], since_ns: int, until_ns: int) -> list[StoredSpan]:
        """Spans of other traces, started in the window, with a link to one of
        ``span_ids``: CONSUMER spans (where messaging instrumentations put links), at
        most ``_MAX_LINK_CANDIDATES`` of them decoded."""
        wanted = {s.hex() for s in span_ids}
        found: list[StoredSpan] = []
        decoded = 0
        for chunk in self._chunks():
            if chunk.prefix_max_start < since_ns or decoded >= _MAX_LINK_CANDIDATES:
                break
            if chunk.max_start < since_ns or chunk.min_start > until_ns:
                continue
            for i in _positions(chunk.kinds, _CONSUMER):
                if not since_ns <= chunk.starts[i] <= until_ns:
                    continue
                if chunk.trace_ids[i * 16 : i * 16 + 16] == self.exclude:
                    continue
                if not self.store.spans.holds(chunk, i):
                    continue
                span = chunk.span(i)
                decoded += 1
                if any(link.get("span_id") in wanted for link in span.detail().links):
                    found.append(span)
        return found

    def records_between(
        self,
        since_ns: int,
        until_ns: int,
        *,
        services: set[str] | None = None,
        untraced: bool = False,
    ) -> list[Record]:
        """Records whose time is in the window (of ``services``, without a trace id if
        ``untraced``), oldest first."""
        found: list[Record] = []
        examined = 0
        for visited, chunk in enumerate(self.store.records.chunks_newest_first()):
            if visited >= _MAX_CHUNKS or chunk.prefix_max_ns < since_ns:
                break
            if examined >= _MAX_RECORDS_EXAMINED:
                break
            if chunk.max_ns < since_ns or chunk.min_ns > until_ns:
                continue
            if services is not None and not services.intersection(chunk.services):
                continue
            live = chunk.candidates(None, since_ns, until_ns)
            examined += len(live)
            for record in live:
                if not since_ns <= record.time_ns <= until_ns:
                    continue
                if services is not None and record.service not in services:
                    continue
                if untraced and record.trace_id is not None:
                    continue
                found.append(record)
        found.sort(key=lambda r: r.time_ns)
        return found

    def newest_records(self, source: str, until_ns: int, limit: int) -> list[Record]:
        """The newest ``limit`` records from ``source`` at or before ``until_ns``, newest
        first: for sources with few records (git), however old they are."""
        found: list[Record] = []
        examined = 0
        for visited, chunk in enumerate(self.store.records.chunks_newest_first()):
            if visited >= _MAX_CHUNKS or examined >= _MAX_RECORDS_EXAMINED:
                break
            if source not in chunk.sources or chunk.min_ns > until_ns:
                continue
            examined += chunk.live_count
            for record in reversed(chunk.of_source(source)):
                if record.time_ns <= until_ns:
                    found.append(record)
                    if len(found) == limit:
                        return found
        return found

    def _chunks(self) -> Iterator[SpanChunk]:
        for visited, chunk in enumerate(self.store.spans.chunks_newest_first()):
            if visited >= _MAX_CHUNKS:
                return
            yield chunk


def _positions(column: bytes, value: bytes) -> Iterator[int]:
    """Where ``value`` occurs in a column, found at C speed (most spans do not match)."""
    at = column.find(value)
    while at != -1:
        yield at
        at = column.find(value, at + 1)
