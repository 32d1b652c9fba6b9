"""The in-memory stores: spans by trace, and records (logs, native events)."""

from __future__ import annotations

from collector.config import StoreConfig
from collector.limits import ValueLimits
from collector.store.budget import ByteBudget
from collector.store.records import RecordChunk, RecordStore
from collector.store.spans import SpanChunk, SpanStore, StoredSpan

__all__ = [
    "ByteBudget",
    "RecordChunk",
    "RecordStore",
    "SpanChunk",
    "SpanStore",
    "Store",
    "StoredSpan",
]


class Store:
    """Both stores, built from one ``StoreConfig``, sharing one byte budget."""

    def __init__(self, config: StoreConfig) -> None:
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

    def evict_expired(self, now_ns: int) -> None:
        self.spans.evict(now_ns)
        self.records.evict(now_ns)
