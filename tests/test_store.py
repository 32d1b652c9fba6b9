"""The span and record stores: lookup, tree assembly, limits, TTL and their counters."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.config import StoreConfig
from collector.filters import TimelineFilter, parse_cursor
from collector.model import DropReason, Record, SpanBatch
from collector.query import timeline, trace_document
from collector.store import Store
from receivers.otlp_codec import decode_traces

SECOND = 1_000_000_000


def batch(spans: list[tuple[bytes, bytes, bytes, str]], *, status: int = 0) -> SpanBatch:
    """(trace id, span id, parent id, name) tuples, through the real codec."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "svc"
    scope = rs.scope_spans.add()
    for i, (trace_id, span_id, parent_id, name) in enumerate(spans):
        s = scope.spans.add()
        s.trace_id, s.span_id, s.parent_span_id, s.name = trace_id, span_id, parent_id, name
        s.start_time_unix_nano = 1_000 + i
        s.end_time_unix_nano = 2_000 + i
        s.status.code = status
    decoded = decode_traces(request.SerializeToString())
    assert decoded.rejected == 0
    return decoded.batch


def store(**limits: int) -> Store:
    return Store(StoreConfig(**limits))  # type: ignore[arg-type]


def ids(n: int, size: int) -> list[bytes]:
    return [os.urandom(size) for _ in range(n)]


def test_trace_lookup_returns_only_that_trace_across_batches() -> None:
    s = store()
    t1, t2 = ids(2, 16)
    a, b, c = ids(3, 8)
    s.spans.add(batch([(t1, a, b"", "root"), (t2, b, b"", "other")]), 0)
    s.spans.add(batch([(t1, c, a, "late child")]), 0)
    assert [sp.name for sp in s.spans.trace(t1)] == ["root", "late child"]
    assert s.spans.trace(os.urandom(16)) == []
    assert (s.spans.span_count, s.spans.trace_count) == (3, 2)


def test_span_limit_evicts_oldest_batches_and_counts_them() -> None:
    s = store(max_spans=4)
    traces = ids(3, 16)
    for t in traces:
        s.spans.add(batch([(t, sid, b"", "x") for sid in ids(2, 8)]), 0)
    assert s.spans.span_count == 4
    assert s.spans.trace(traces[0]) == []
    assert len(s.spans.trace(traces[2])) == 2
    assert s.spans.evicted_spans[DropReason.EVICTED_SPAN_LIMIT] == 2
    assert s.spans.evicted_traces[DropReason.EVICTED_SPAN_LIMIT] == 1


def test_eviction_keeps_the_newer_part_of_a_trace_spread_over_batches() -> None:
    s = store(max_spans=3)
    t = os.urandom(16)
    first, second = ids(2, 8)
    s.spans.add(batch([(t, first, b"", "first")]), 0)
    s.spans.add(batch([(os.urandom(16), sid, b"", "filler") for sid in ids(2, 8)]), 0)
    s.spans.add(batch([(t, second, first, "second")]), 0)
    assert [sp.name for sp in s.spans.trace(t)] == ["second"]
    doc = trace_document(s, t)
    assert doc is not None and doc["orphan_count"] == 1


def test_trace_limit_and_ttl_evict_with_their_own_reason() -> None:
    s = store(max_traces=2, ttl=10)
    for t in ids(3, 16):
        s.spans.add(batch([(t, os.urandom(8), b"", "x")]), 0)
    assert s.spans.trace_count == 2
    assert s.spans.evicted_traces[DropReason.EVICTED_TRACE_LIMIT] == 1
    s.evict_expired(11 * SECOND)
    assert s.spans.trace_count == 0
    assert s.spans.evicted_traces[DropReason.EXPIRED] == 2


def test_spans_beyond_the_per_trace_limit_are_dropped_and_counted() -> None:
    s = store(max_spans_per_trace=2)
    t = os.urandom(16)
    s.spans.add(batch([(t, sid, b"", f"s{i}") for i, sid in enumerate(ids(3, 8))]), 0)
    assert [sp.name for sp in s.spans.trace(t)] == ["s0", "s1"]
    assert s.spans.dropped[DropReason.TRACE_TOO_LARGE] == 1
    listed = [sp.name for sp in s.spans.iter_newest_first()]
    assert listed == ["s1", "s0"]


def test_records_are_bounded_and_indexed_by_trace_and_correlation() -> None:
    s = store(max_records=2, ttl=5)
    t = os.urandom(16)
    for i in range(3):
        r = Record(
            time_ns=i,
            source="custom",
            level="info",
            message=f"m{i}",
            trace_id=t,
            correlation_id="req-1",
        )
        r.id = i + 1
        s.records.add([r], 0)
    assert [r.message for r in s.records.by_trace(t)] == ["m1", "m2"]
    assert [r.message for r in s.records.by_correlation("req-1")] == ["m1", "m2"]
    assert s.records.evicted[DropReason.EVICTED_RECORD_LIMIT] == 1
    s.records.evict(6 * SECOND)
    assert len(s.records) == 0 and s.records.by_trace(t) == []
    assert s.records.evicted[DropReason.EXPIRED] == 2


def test_tree_dedupes_retried_spans_and_breaks_parent_cycles() -> None:
    s = store()
    t = os.urandom(16)
    root, a, b = ids(3, 8)
    s.spans.add(batch([(t, root, b"", "root"), (t, a, b, "a"), (t, b, a, "b")]), 0)
    s.spans.add(batch([(t, root, b"", "root")]), 0)  # an exporter's retry
    doc = trace_document(s, t)
    assert doc is not None
    assert doc["span_count"] == 3
    names = [r["name"] for r in doc["spans"]]
    assert names[0] == "root" and sorted(names[1:]) in (["a"], ["b"])
    assert doc["orphan_count"] == 1
    flat = []
    stack = list(doc["spans"])
    while stack:
        node = stack.pop()
        flat.append(node["name"])
        stack.extend(node["children"])
    assert sorted(flat) == ["a", "b", "root"]


def test_timeline_pages_back_in_time_with_a_cursor() -> None:
    s = store()
    t = os.urandom(16)
    s.spans.add(batch([(t, sid, b"", f"s{i}") for i, sid in enumerate(ids(5, 8))]), 0)
    first = timeline(s, TimelineFilter(limit=2))
    assert [e["message"] for e in first["events"]] == ["svc: s3", "svc: s4"]
    # Items older than the page are passed over uncounted: the count is a lower bound.
    assert first["metadata"]["total_count"] >= 3 and first["metadata"]["total_count_exact"] is False
    everything = timeline(s, TimelineFilter(limit=10))["metadata"]
    assert (everything["total_count"], everything["total_count_exact"]) == (5, True)
    assert first["metadata"]["cursor_next"] is not None
    cursor = parse_cursor(first["metadata"]["cursor_next"])
    second = timeline(s, TimelineFilter(limit=2, cursor=cursor))
    assert [e["message"] for e in second["events"]] == ["svc: s1", "svc: s2"]
    assert second["metadata"]["cursor_next"] is not None
    third = timeline(
        s, TimelineFilter(limit=2, cursor=parse_cursor(second["metadata"]["cursor_next"]))
    )
    assert [e["message"] for e in third["events"]] == ["svc: s0"]
    assert third["metadata"]["cursor_next"] is None


def test_timeline_text_finds_spans_by_name_in_any_case_and_never_across_two_names() -> None:
    s = store()
    t = os.urandom(16)
    names = ["GET /Checkout", "charge card", "GET /cart"]
    s.spans.add(batch([(t, sid, b"", name) for sid, name in zip(ids(3, 8), names, strict=True)]), 0)

    def found(text: str) -> list[str]:
        return [e["message"] for e in timeline(s, TimelineFilter(text=text))["events"]]

    assert found("checkout") == ["svc: GET /Checkout"]
    assert sorted(found("GET /C")) == ["svc: GET /Checkout", "svc: GET /cart"]
    assert found("checkout\ncharge") == []  # the end of one name and the start of the next
    assert found("refund") == []


def test_find_span_by_id_and_record_by_id() -> None:
    s = store()
    t = os.urandom(16)
    first, second = ids(2, 8)
    s.spans.add(batch([(t, first, b"", "a")]), 0)
    s.spans.add(batch([(t, second, first, "b")]), 0)
    found = s.spans.find_span(second)
    assert found is not None and found.name == "b" and found.trace_id == t
    assert s.spans.find_span(os.urandom(8)) is None
    for i in range(1, 1200):
        r = Record(time_ns=i, source="custom", level="info", message=f"m{i}")
        r.id = i
        s.records.add([r], i)  # a new chunk per arrival time
    got = s.records.get(777)
    assert got is not None and got.message == "m777"
    assert s.records.get(5000) is None
