"""The live timeline: what has been stored since the last look, for one watcher.

A ``LiveTail`` remembers the newest span chunk and record id it has seen; ``poll`` walks
the stores' chunks newest first back to there, so a poll costs what arrived, not what is
stored. Whatever arrived is found, whatever its timestamp (a late span still shows).
At most ``max_items`` of the newest arrivals are looked at per poll; older ones are
counted in ``dropped`` and never built, so a watcher that falls behind a flood costs a
bounded amount of work and memory, and says how much it missed.
"""

from __future__ import annotations

from typing import Any

from collector.filters import TimelineFilter
from collector.query import record_event, span_event
from collector.store import Store

__all__ = ["LiveTail"]


class LiveTail:
    """One watcher's position in the stores. Loop only, like the stores."""

    __slots__ = ("_record_id", "_span_seq", "dropped")

    def __init__(self, store: Store) -> None:
        self._span_seq = next((c.seq for c in store.spans.chunks_newest_first()), -1)
        self._record_id = next(
            (r.id for c in store.records.chunks_newest_first() for r in reversed(c.live())), 0
        )
        self.dropped = 0

    def poll(self, store: Store, f: TimelineFilter, max_items: int) -> list[dict[str, Any]]:
        """Events stored since the last poll that pass ``f``, in time order."""
        arrived: list[tuple[int, dict[str, Any]]] = []  # (arrival rank, event)
        looked = 0
        newest_seq = self._span_seq
        spans = store.spans
        for chunk in spans.chunks_newest_first():
            if chunk.seq <= self._span_seq:
                break
            newest_seq = max(newest_seq, chunk.seq)
            for i in range(chunk.n - 1, -1, -1):
                if looked >= max_items:
                    self.dropped += 1
                    continue
                if not spans.holds(chunk, i):
                    continue
                looked += 1
                span = chunk.span(i)
                if f.keeps_span(span):
                    arrived.append((span.start_ns, span_event(span)))
        self._span_seq = newest_seq
        looked = 0
        newest_id = self._record_id
        done = False
        for record_chunk in store.records.chunks_newest_first():
            for record in reversed(record_chunk.live()):
                if record.id <= self._record_id:
                    done = True
                    break
                newest_id = max(newest_id, record.id)
                if looked >= max_items:
                    self.dropped += 1
                    continue
                looked += 1
                if f.keeps_record(record):
                    arrived.append((record.time_ns, record_event(record)))
            if done:
                break
        self._record_id = newest_id
        arrived.sort(key=lambda item: item[0])
        return [event for _, event in arrived]
