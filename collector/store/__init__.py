"""The in-memory stores: spans by trace, and records (logs, native events)."""

from __future__ import annotations

import time
from typing import Any

from collector.config import StoreConfig
from collector.limits import ValueLimits
from collector.model import SpanDetailDecoder, parse_hex_id
from collector.store.budget import ByteBudget
from collector.store.history import BlockChunk, ColdChunk, History
from collector.store.records import RecordChunk, RecordStore
from collector.store.span_history import SpanHistory
from collector.store.spans import SpanChunk, SpanStore, StoredSpan

__all__ = [
    "MIN_TRACE_PREFIX",
    "BlockChunk",
    "ByteBudget",
    "ColdChunk",
    "History",
    "RecordChunk",
    "RecordStore",
    "SpanChunk",
    "SpanHistory",
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

    def open_history(self, span_detail: SpanDetailDecoder | None = None) -> History | None:
        """Attach the disk tier ``service.store.history`` configures (None if disabled);
        what the last run wrote comes back. Its ``state`` says if it could not open.
        Spans are kept too given ``span_detail``, the codec's decoder of their detail."""
        if not self.config.history.enabled:
            return None
        history = History(self.config.history, self.records.evicted)
        now_ns = time.time_ns()
        self.records.attach(history, now_ns)
        if span_detail is not None and history.active:
            spans = SpanHistory(self.config.history, span_detail)
            restored = spans.open(
                max_spans=self.config.max_spans, not_before_ns=now_ns - self.spans.ttl_ns
            )
            for received_ns, batch in restored:
                self.spans.add(batch, received_ns)
                self.spans.restored += len(batch)
            if spans.active:
                self.spans.history = spans
                history.others_bytes = lambda: spans.sealed_bytes
                spans.after_seal = history.enforce
                history.enforce(now_ns)
                spans.enforce(now_ns)
        return history

    def history_stats(self) -> dict[str, Any]:
        """The disk tiers' state and figures, for ``/daemon/status``."""
        history = self.records.history
        if history is None:
            return {"state": "off: service.store.history.enabled is false"}
        stats = history.stats(self.records.memory_count)
        spans = self.spans.history
        if spans is not None:
            stats["spans"] = spans.stats()
        elif history.active:
            stats["spans"] = {"state": "off: this build has no decoder for span detail"}
        else:
            stats["spans"] = {"state": history.state}
        return stats

    def flush(self) -> None:
        """Sync what was written to disk (the daemon calls it at least every second)."""
        if self.spans.history is not None:
            self.spans.history.sync()
        if self.records.history is not None:
            self.records.history.sync()

    def close(self) -> None:
        """Seal and sync the disk tiers, and release their directory."""
        now_ns = time.time_ns()
        if self.spans.history is not None:
            self.spans.history.close(now_ns)
            self.spans.history = None
        if self.records.history is not None:
            self.records.history.close(now_ns)

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
        if self.spans.history is not None:
            self.spans.history.enforce(now_ns)
        self.records.evict(now_ns)
