"""The filter shelf answers as each block's own Bloom filter would, holds each filter
once, and the history's lookups and text queries go through it (after a restart, and
with blocks gone oldest first and from the middle)."""

from __future__ import annotations

import mmap
import random
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import HistoryConfig, StoreConfig
from collector.filters import TimelineFilter
from collector.model import DropReason, Record
from collector.query import timeline
from collector.store import Store, filter_shelf
from collector.store.blocks import BLOOM_PROBES, Probe, TextQuery, correlation_key
from collector.store.filter_shelf import FilterShelf

# Sizes of trace filters (powers of two, and one this code never writes: every key is
# admitted) and of text filters (none: a version 1 block; and lengths that straddle pages),
# with the bits they set a key (text filters: 4 in blocks written before, 8 now).
TRACE_SHAPES = [(n, BLOOM_PROBES) for n in (64, 128, 8192, 200)]
TEXT_SHAPES = [(n, k) for n in (0, 64, 72, 4104, 8200) for k in (4, 8)]


@dataclass(eq=False)
class _Block:
    name: int
    own: bytes  # the filter as written, to check the shelf against
    hashes: int = BLOOM_PROBES
    view: bytes | memoryview = b""


def _admits(query: Probe | TextQuery, bloom: bytes | memoryview, hashes: int) -> bool:
    if isinstance(query, Probe):
        return query.admitted_by(bloom)
    return query.admitted_by(bloom, hashes)


def _attach(block: _Block, view: bytes | memoryview) -> None:
    block.view = view


def _filter(rng: random.Random, nbytes: int, plant: list[list[tuple[int, int]]]) -> bytes:
    """Random bits at about 50% (so some probes pass), with the probes of some keys set."""
    data = bytearray(rng.getrandbits(8 * nbytes).to_bytes(nbytes, "little") if nbytes else b"")
    for probes in plant:
        for at, bit in probes:
            data[at] |= bit
    return bytes(data)


OPS = st.lists(
    st.tuples(
        st.sampled_from(("add", "add", "add", "drop_oldest", "drop_middle")),
        st.integers(0, 4),
        st.integers(0, 2**32),
    ),
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, text=st.booleans())
def test_the_shelf_admits_exactly_what_each_filter_admits(
    ops: list[tuple[str, int, int]], text: bool
) -> None:
    keys = [b"\x01" * 16, bytes(range(16)), b"trace-id-of-16by"]
    texts = ["readTimeoutError", "id=58751 took", "GET /api/v1/users"]
    queries: list[Probe | TextQuery] = (
        [TextQuery(t) for t in texts]
        if text
        else [Probe(correlation_key("req-1")), *map(Probe, keys)]
    )
    shapes = TEXT_SHAPES if text else TRACE_SHAPES
    shelf: FilterShelf[_Block] = FilterShelf(_attach)
    live: list[_Block] = []
    with mock.patch.object(filter_shelf, "_MAX_SLOTS", 8):  # chunks fill and move often
        for n, (op, size, seed) in enumerate(ops):
            rng = random.Random(seed)
            if op == "add" or not live:
                nbytes, hashes = shapes[(size + seed) % len(shapes)]
                plant = [list(q.probes(nbytes, hashes)) for q in queries if rng.random() < 0.3]
                block = _Block(n, _filter(rng, nbytes, plant), hashes)
                shelf.add(block, block.own, hashes)
                live.append(block)
            else:
                gone = live.pop(0 if op == "drop_oldest" else rng.randrange(len(live)))
                shelf.drop(gone)
                shelf.drop(gone)  # twice: a no-op
            assert len(shelf) == len(live)
            for block in live:  # the views stay the filters, wherever they moved to
                assert bytes(block.view) == block.own
                assert isinstance(block.view, memoryview) == bool(block.own)
            for query in queries:
                expected = [b.name for b in live if _admits(query, b.own, b.hashes)]
                assert sorted(b.name for b in shelf.admitted(query)) == expected
                assert [b.name for b in live if _admits(query, b.view, b.hashes)] == expected


def test_a_dropped_filter_hands_back_its_own_pages_only() -> None:
    rng = random.Random(5)
    shelf: FilterShelf[_Block] = FilterShelf(_attach)
    blocks = [_Block(i, _filter(rng, 8200, [])) for i in range(12)]  # straddling pages
    for block in blocks:
        shelf.add(block, block.own, BLOOM_PROBES)
    gone = [blocks[i] for i in (5, 9, 0, 6, 11, 1)]  # alone, beside a dropped one, last
    for block in gone:
        shelf.drop(block)
        assert bytes(block.view) != block.own  # its whole pages went back: zeros now
        for other in blocks:
            if other not in gone:
                assert bytes(other.view) == other.own, (block.name, other.name)
    # Beside a dropped one, the page the two share went back too.
    shared = -(-6 * 8200 // mmap.PAGESIZE) * mmap.PAGESIZE - 6 * 8200
    assert shared > 0 and bytes(blocks[6].view[:shared]) == bytes(shared)


def test_a_filter_is_shelved_once() -> None:
    shelf: FilterShelf[_Block] = FilterShelf(_attach)
    block = _Block(1, bytes(64))
    shelf.add(block, block.own, BLOOM_PROBES)
    try:
        shelf.add(block, block.own, BLOOM_PROBES)
    except ValueError as e:
        assert "already holds a filter" in str(e)
    else:
        raise AssertionError("a second add of one item was taken")


def _records(n: int, rng: random.Random) -> list[Record]:
    traces = [rng.randbytes(16) for _ in range(40)]
    return [
        Record(
            time_ns=1_700_000_000_000_000_000 + i * 1_000_000,
            source="backend",
            level="info",
            message=f"line {i} order {rng.randrange(10**6)} took {i % 97} ms"
            + (" payment gateway readTimeoutError" if i in (1234, 2345) else ""),
            service="api",
            trace_id=rng.choice(traces) if i % 3 == 0 else None,
            correlation_id=f"req-{i % 50}" if i % 7 == 0 else None,
            id=i + 1,
        )
        for i in range(n)
    ]


def _store(data: Path) -> Store:
    config = StoreConfig(max_records=250, history=HistoryConfig(dir=str(data), block_records=100))
    store = Store(config)
    assert store.open_history() is not None
    return store


def test_history_lookups_and_text_queries_answer_from_the_shelf(tmp_path: Path) -> None:
    records = _records(4000, random.Random(3))
    store = _store(tmp_path)
    for i in range(0, len(records), 100):
        store.records.add(records[i : i + 100], 0)
    history = store.records.history
    assert history is not None
    history.settle()
    assert len(history.blocks) == 40
    corrupt = history.blocks[17]  # one from the middle goes, as a block failing its checks
    history._corrupt(tmp_path / "blocks" / f"{corrupt.first_id:020d}.blk", corrupt)
    history._drop_block(0, DropReason.EXPIRED, None)  # and the oldest, by age
    assert len(history.blocks) == 38 and history.blocks[0].first_id == 101
    lost = {r.id for r in records if r.id <= 100 or corrupt.first_id <= r.id <= corrupt.last_id}
    kept = [r for r in records if r.id not in lost]

    def check(store: Store) -> None:
        for trace_id in {r.trace_id for r in records if r.trace_id}:
            got = [r.id for r in store.records.by_trace(trace_id)]
            assert got == [r.id for r in kept if r.trace_id == trace_id]
        got_by_correlation = [r.id for r in store.records.by_correlation("req-21")]
        assert got_by_correlation == [r.id for r in kept if r.correlation_id == "req-21"]
        page = timeline(store, TimelineFilter(text="READTIMEOUTERROR", limit=10))
        assert [e["id"] for e in page["events"]] == ["1235", "2346"]
        history = store.records.history
        assert history is not None  # only the two blocks that hold it are opened
        admitted = history._texts.admitted(TextQuery("readTimeoutError"))
        assert sorted(h.first_id for h in admitted) == [1201, 2301]
        assert timeline(store, TimelineFilter(text="no such words here"))["events"] == []

    check(store)
    # The heads' filters are views into the shelf's chunks: one copy, shared pages.
    heads = store.records.history.blocks if store.records.history else []
    chunks = {id(h.bloom.obj) for h in heads if isinstance(h.bloom, memoryview)}
    assert len(chunks) < len(heads) and all(
        isinstance(h.bloom, memoryview) and isinstance(h.bloom.obj, mmap.mmap) for h in heads
    )
    store.close()
    again = _store(tmp_path)  # a restart shelves the heads it reads
    check(again)
    again.close()
