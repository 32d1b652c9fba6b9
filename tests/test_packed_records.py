"""Records packed into compressed columns answer as the objects did, and cost a few
objects a chunk instead of a few a record."""

from __future__ import annotations

import dataclasses
import gc
import random
import threading
import tracemalloc
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import StoreConfig
from collector.filters import TimelineFilter
from collector.model import Record
from collector.query import timeline
from collector.store import Store, records
from collector.store.packed import PackedChunk

SECOND = 1_000_000_000
TRACES = [bytes([i]) * 16 for i in range(1, 5)]
REQUESTS = ["req-1", "req-2", "req-3"]
WORDS = ["alpha", "Beta", "gamma 42", "id=7 took", "K\u212aelvin", "caf\u00e9"]


def _store(max_records: int, ttl: int = 60) -> Store:
    return Store(StoreConfig(max_records=max_records, ttl=ttl))  # type: ignore[arg-type]


def _bare(record: Record) -> Record:
    """A record as it reads back: its size is the store's bookkeeping, not its content."""
    return dataclasses.replace(record, size=0)


BATCHES = st.lists(
    st.tuples(
        st.integers(0, 9),  # records in the batch
        st.integers(0, 30),  # seconds since the batch before
        st.integers(0, 2**32),  # seed of the records' fields
    ),
    max_size=40,
)


@settings(max_examples=80, deadline=None)
@given(batches=BATCHES, max_records=st.integers(1, 60))
def test_packed_chunks_answer_as_the_records_they_hold(
    batches: list[tuple[int, int, int]], max_records: int
) -> None:
    kept: list[tuple[int, Record]] = []  # (received_ns, record): the model
    now, next_id = 1_700_000_000 * SECOND, 0
    with (  # chunks of 4, 6 records as objects: most are packed, in chunks of 1 to 4
        mock.patch.object(records, "_CHUNK", 4),
        mock.patch.object(records, "_OBJECTS", 6),
        mock.patch.object(records, "_DECODED", 8),
    ):
        store = _store(max_records)
        for n, seconds, seed in batches:
            rng = random.Random(seed)
            now += seconds * SECOND
            batch = []
            for _ in range(n):
                next_id += 1
                record = Record(
                    time_ns=now - rng.randrange(5) * SECOND,
                    source=rng.choice(["backend", "browser"]),
                    level=rng.choice(["info", "error"]),
                    message=rng.choice(WORDS) + f" #{next_id}",
                    service=rng.choice(["api", "db", ""]),
                    trace_id=rng.choice([None, *TRACES]),
                    correlation_id=rng.choice([None, *REQUESTS]),
                    attributes={"n": next_id, "deep": {"k": [1, "x"]}}
                    if rng.random() < 0.5
                    else {},
                    tags=("t",) if rng.random() < 0.3 else (),
                )
                record.id = next_id
                batch.append(record)
            kept += [(now, _bare(r)) for r in batch]
            store.records.add(batch, now)
            kept = [(t, r) for t, r in kept if t >= now - 60 * SECOND][-max_records:]
            if rng.random() < 0.2:
                store.records.link("req-3", TRACES[0])
            _check(store, kept, rng)
    store.records.evict(now + 61 * SECOND)
    assert len(store.records) == 0 and store.records.nbytes == 0
    assert store.records.by_trace(TRACES[0]) == []


def _check(store: Store, kept: list[tuple[int, Record]], rng: random.Random) -> None:
    held = store.records
    expected = [r for _, r in kept]
    assert len(held) == len(expected) and held.nbytes >= 0
    assert [_bare(r) for r in held.iter_newest_first()] == expected[::-1]
    linked = "req-3" in held._linked.get(TRACES[0], ())
    for trace_id in TRACES:
        want = [r for r in expected if r.trace_id == trace_id]
        if trace_id == TRACES[0] and linked:
            want += [
                dataclasses.replace(r, trace_id=trace_id)
                for r in expected
                if r.correlation_id == "req-3" and r.trace_id is None
            ]
        assert [_bare(r) for r in held.by_trace(trace_id)] == want
    for request in REQUESTS:
        want = [r for r in expected if r.correlation_id == request]
        assert [_bare(r) for r in held.by_correlation(request)] == want
    ids = [r.id for r in expected]
    for record_id in {*rng.sample(ids, min(3, len(ids))), 0, (ids or [0])[0] - 1}:
        found = held.get(record_id)
        assert (None if found is None else _bare(found)) == next(
            (r for r in expected if r.id == record_id), None
        )
    chunks = list(held.chunks_newest_first())
    for source in ("backend", "browser"):
        of_source = sorted((r for c in chunks for r in c.of_source(source)), key=lambda r: r.id)
        assert [_bare(r) for r in of_source] == [r for r in expected if r.source == source]
    if expected:
        lo, hi = sorted(rng.choice(expected).time_ns for _ in range(2))
        window = sorted(
            (r for c in chunks for r in c.candidates(None, lo, hi) if lo <= r.time_ns <= hi),
            key=lambda r: r.id,
        )
        assert [_bare(r) for r in window] == [r for r in expected if lo <= r.time_ns <= hi]
    for text in ("gamma 4", "ID=7", "kelvin", "CAF\u00c9", "#1"):
        page = timeline(store, TimelineFilter(text=text, limit=3, kinds=frozenset({"log"})))
        matching = [r for r in expected if text.lower() in r.message.lower()]
        newest = sorted(matching, key=lambda r: (r.time_ns, f"{r.id:012d}"))[-3:]
        assert [e["id"] for e in page["events"]] == [str(r.id) for r in newest]


def _lines(n: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        trace = rng.randbytes(16) if rng.random() < 0.4 else None
        record = Record(
            time_ns=i * 1_000_000,
            source="backend",
            level=rng.choice(["info", "info", "debug", "error"]),
            message=(
                f"GET /api/v1/orders/{rng.randrange(10**6)} 200 {rng.randrange(900)}ms "
                f"user={rng.randrange(10**5)}"
            ),
            service=rng.choice(["api", "web", "worker"]),
            trace_id=trace,
            span_id=rng.randbytes(8) if trace else None,
            correlation_id=f"req-{rng.randrange(10**6)}" if rng.random() < 0.3 else None,
            attributes={"http.status": 200, "path": "/api/v1/orders"},
        )
        record.id = i + 1
        out.append(record)
    return out


def test_a_hundred_thousand_records_take_bytes_not_objects() -> None:
    store = _store(200_000, ttl=3600)
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    try:
        for i in range(100):
            store.records.add(_lines(1000, i), i * SECOND)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    tracked = len(gc.get_objects()) - objects
    held = store.records
    assert len(held) == 100_000 and isinstance(
        next(held.chunks_newest_first()), records.RecordChunk
    )
    packed = [c for c in held.chunks_newest_first() if isinstance(c, PackedChunk)]
    assert sum(c.count for c in packed) >= 100_000 - records._OBJECTS - records._CHUNK
    # As objects, these records took ~900 bytes and 3 tracked objects each.
    assert grown / 100_000 < 200, grown / 100_000
    assert tracked < 20_000, tracked
    assert held.nbytes / 100_000 < 200
    # And they read back: the oldest by id, by trace, by text.
    first = held.get(1)
    assert first is not None and first.message.startswith("GET /api/v1/orders/")
    assert first.attributes == {"http.status": 200, "path": "/api/v1/orders"}
    if first.trace_id is not None:
        assert 1 in [r.id for r in held.by_trace(first.trace_id)]
    page = timeline(store, TimelineFilter(text=first.message, limit=5))
    assert "1" in [e["id"] for e in page["events"]]


def test_a_value_pickle_cannot_take_is_kept_as_the_disk_tier_would_keep_it() -> None:
    with mock.patch.object(records, "_CHUNK", 2), mock.patch.object(records, "_OBJECTS", 2):
        store = _store(100)
        odd = Record(
            time_ns=1,
            source="custom",
            level="info",
            message="odd",
            tags=("a",),
            attributes={"lock": threading.Lock(), "raw": b"\x01\x02", "n": 3},
        )
        odd.id = 1
        plain = [
            Record(time_ns=i, source="custom", level="info", message=f"m{i}") for i in (2, 3, 4, 5)
        ]
        for record in plain:
            record.id = record.time_ns
        store.records.add([odd, *plain], SECOND)
    assert any(isinstance(c, PackedChunk) for c in store.records.chunks_newest_first())
    back = store.records.get(1)
    assert back is not None and back.message == "odd" and back.tags == ("a",)
    assert back.attributes["raw"] == "0102" and back.attributes["n"] == 3
    assert back.attributes["lock"].startswith("<unlocked _thread.lock")
    assert [r.message for r in store.records.iter_newest_first()] == ["m5", "m4", "m3", "m2", "odd"]
