"""The in-memory stores: spans by trace, and records (logs, native events)."""

from __future__ import annotations

import time

from collector.config import StoreConfig
from collector.limits import ValueLimits
from collector.model import parse_hex_id
from collector.store.budget import ByteBudget
from collector.store.history import ColdChunk, History
from collector.store.records import RecordChunk, RecordStore
from collector.store.spans import SpanChunk, SpanStore, StoredSpan

__all__ = [
    "MIN_TRACE_PREFIX",
    "ByteBudget",
    "ColdChunk",
    "History",
    "RecordChunk",
    "RecordStore",
    "SpanChunk",
    "SpanStore",
    "Store",
    "StoredSpan",
]


MIN_TRACE_PREFIX = 8
_MAX_CANDIDATES = 5
_HEX = frozenset("0123456789abcdef")


class Store:
    """Both stores, built from one ``StoreConfig``, sharing one byte budget.

    Records are kept on disk too once ``open_history`` is called (the daemon does; a
    store made for a test or a bench stays in memory)."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        ttl_ns = int(config.ttl * 1e9)
        self.budget = ByteBudget(config.max_bytes)
        self.spans = SpanStore(
            max_spans=config.max_spans,
            max_traces=config.max_traces,
            max_spans_per_trace=config.max_spans_per_trace,
            ttl_ns=ttl_ns,
            budget=self.budget,
        )
        self.records = RecordStore(
            max_records=config.max_records,
            ttl_ns=ttl_ns,
            limits=ValueLimits(config.max_value_chars, config.max_record_bytes),
            budget=self.budget,
        )

    def open_history(self) -> History | None:
        """Attach the disk tier ``service.store.history`` configures (None if disabled);
        what the last run wrote comes back. Its ``state`` says if it could not open."""
        if not self.config.history.enabled:
            return None
        history = History(self.config.history, self.records.evicted)
        self.records.attach(history, time.time_ns())
        return history

    def flush(self) -> None:
        """Sync what was written to disk (the daemon calls it at least every second)."""
        if self.records.history is not None:
            self.records.history.sync()

    def close(self) -> None:
        """Seal and sync the disk tier, and release its directory."""
        if self.records.history is not None:
            self.records.history.close(time.time_ns())

    def resolve_trace_id(self, text: str) -> bytes:
        """A trace id from its 32 hex digits, or from a prefix of at least
        ``MIN_TRACE_PREFIX`` digits that one stored trace starts with (the short ids the
        timeline shows). ``ValueError`` says what is wrong, listing an ambiguous prefix's
        candidates."""
        digits = text.strip().lower()
        if len(digits) == 32:
            trace_id = parse_hex_id(digits, 16)
            if trace_id is not None:
                return trace_id
        elif MIN_TRACE_PREFIX <= len(digits) < 32 and all(c in _HEX for c in digits):
            found = self.spans.trace_ids_starting(digits, limit=_MAX_CANDIDATES + 1)
            if len(found) == 1:
                return found[0]
            if not found:
                raise ValueError(f"no stored trace id starts with {digits!r}")
            listed = ", ".join(t.hex() for t in found[:_MAX_CANDIDATES])
            more = " and more" if len(found) > _MAX_CANDIDATES else ""
            raise ValueError(f"{digits!r} starts several trace ids: {listed}{more}")
        raise ValueError(
            f"{text!r:.80} is not a trace id (32 hex digits, not all zero, or a unique "
            f"prefix of {MIN_TRACE_PREFIX} or more)"
        )

    def evict_expired(self, now_ns: int) -> None:
        self.spans.evict(now_ns)
        self.records.evict(now_ns)
