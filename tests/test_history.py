"""Durable history: records survive a restart and a kill -9, a corrupt block is skipped
and counted, a failed write is survived and reported, nothing unredacted is written."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collector.config import Duration, HistoryConfig, StoreConfig
from collector.filters import TimelineFilter
from collector.model import Record
from collector.observe import observe
from collector.query import record_event, timeline
from collector.store import BlockChunk, Store
from collector.store.blocks import BlockHead, TextQuery
from tests.conftest import GASOLINE, serve_process

CONFIG = """
service:
  store:
    max_records: 300
    history: {block_records: 100}
"""
TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")


def _records(n: int, first_id: int = 1, t0: int = 1_700_000_000_000_000_000) -> list[Record]:
    return [
        Record(
            time_ns=t0 + i * 1_000_000,
            source="backend",
            level="error" if i % 10 == 0 else "info",
            message=f"line {first_id + i} GET /api/orders/{i * 7} took {i % 97} ms",
            service="api" if i % 2 else "worker",
            trace_id=TRACE if i % 50 == 0 else None,
            correlation_id=f"req-{i}" if i % 25 == 0 else None,
            attributes={"n": i} if i % 3 == 0 else {},
            id=first_id + i,
        )
        for i in range(n)
    ]


def _add(store: Store, records: list[Record]) -> None:
    """In batches of 100, as the pipeline hands them over; then waits for the blocks
    being sealed (in the history's thread), so what follows sees them all."""
    for i in range(0, len(records), 100):
        store.records.add(records[i : i + 100], time.time_ns())
    if store.records.history is not None:
        store.records.history.settle()


def _store(data: Path, **history: Any) -> Store:
    config = StoreConfig(max_records=250, history=HistoryConfig(dir=str(data), **history))
    store = Store(config)
    assert store.open_history() is not None
    return store


def _answers(store: Store) -> list[Any]:
    """The same few queries, answered the way the API answers them."""
    f = TimelineFilter(limit=50, level="error", service="worker")
    page = timeline(store, f)
    return [
        len(store.records),
        [e["message"] for e in page["events"]],
        page["metadata"]["total_count"],
        [r.message for r in store.records.by_trace(TRACE)],
        [r.message for r in store.records.by_correlation("req-25")],
        (r := store.records.get(7)) and r.message,
    ]


def test_a_reopened_store_answers_the_same_queries(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=100)
    _add(store, _records(1000))
    before = _answers(store)
    assert before[0] == 1000 and store.records.memory_count == 250
    assert len(before[3]) == 20 and before[5] == "line 7 GET /api/orders/42 took 6 ms"
    store.close()
    again = _store(tmp_path, block_records=100)
    assert _answers(again) == before
    history = again.records.history
    assert history is not None and history.stats(0)["tiers"]["disk"]["records"] == 1000


def test_both_tiers_answer_as_one_store_in_memory_would(tmp_path: Path) -> None:
    tiered = _store(tmp_path, block_records=100)
    _add(tiered, _records(1000))
    flat = Store(StoreConfig(max_records=10_000))
    _add(flat, _records(1000))
    assert tiered.records.memory_count == 250 and len(tiered.records) == 1000
    filters = [
        TimelineFilter(limit=30, text="ORDERS/49"),  # a few batches on disk hold it
        TimelineFilter(limit=30, text='took 5 "ms'),  # not searchable in the raw rows
        TimelineFilter(limit=500, service="api", level="error"),
        TimelineFilter(limit=20, since_ns=1_700_000_000_100_000_000, level="error"),
    ]
    for f in filters:
        assert timeline(tiered, f) == timeline(flat, f), f
    assert [r.id for r in tiered.records.iter_newest_first()] == list(range(1000, 0, -1))
    events = [record_event(r) for r in tiered.records.by_trace(TRACE)]
    assert len(events) == 20 and events == [record_event(r) for r in flat.records.by_trace(TRACE)]


T0 = 1_700_000_000_000_000_000


def _out_of_order(tmp_path: Path, rng: random.Random) -> tuple[list[Record], Store, Store]:
    """5,000 records a little out of order (clocks of several sources), in blocks of
    1,000 and all in memory."""
    records = _records(5000, t0=T0)
    for record in records:
        record.time_ns += rng.randrange(-50, 50) * 1_000_000
    tiered = _store(tmp_path, block_records=1000)
    _add(tiered, records)
    flat = Store(StoreConfig(max_records=10_000))
    _add(flat, [dataclasses.replace(r) for r in records])
    return records, tiered, flat


def test_a_time_window_parses_only_its_batches_and_answers_as_memory_would(
    tmp_path: Path,
) -> None:
    rng = random.Random(9)
    records, tiered, flat = _out_of_order(tmp_path, rng)
    for _ in range(60):
        since = T0 + rng.randrange(5000) * 1_000_000
        until = since + rng.randrange(1, 400) * 1_000_000
        f = TimelineFilter(
            limit=1000, since_ns=since, until_ns=until, level=rng.choice([None, "error"])
        )
        page = timeline(tiered, f)
        assert page == timeline(flat, f), (since, until)
        expected = sum(since <= r.time_ns <= until for r in records if f.level is None)
        assert f.level or len(page["events"]) == expected
    history = tiered.records.history
    assert history is not None
    [chunk, *_] = [c for c in history.chunks_newest_first(2**63) if c.min_ns < T0 + 2_500_000_000]
    middle = (chunk.min_ns + chunk.max_ns) // 2
    window = chunk.candidates(None, middle, middle + 1_000_000)  # a millisecond
    assert 0 < len(window) <= 300 < len(chunk.live())  # its batches of 100, not the block
    assert any(middle <= r.time_ns <= middle + 1_000_000 for r in window)


def test_a_page_from_a_block_decodes_its_newest_matching_rows_first_and_no_older(
    tmp_path: Path,
) -> None:
    rng = random.Random(4)
    records, tiered, flat = _out_of_order(tmp_path, rng)
    for _ in range(40):
        since = T0 + rng.randrange(4000) * 1_000_000
        until = since + rng.randrange(1, 2000) * 1_000_000
        f = TimelineFilter(
            limit=rng.choice([1, 5, 300]),
            since_ns=since,
            until_ns=until,
            level=rng.choice([None, "error"]),
            service=rng.choice([None, "api", "none such"]),
            text=rng.choice([None, None, "TOOK 1", "orders/4", 'took 5 "ms']),
        )
        assert timeline(tiered, f)["events"] == timeline(flat, f)["events"], (since, until)
    tiered.close()
    history = _store(tmp_path, block_records=1000).records.history  # nothing decoded yet
    assert history is not None
    head = history.blocks[-1]
    chunk = next(c for c in history.chunks_newest_first(2**63) if isinstance(c, BlockChunk))
    lo, hi = chunk.min_ns + 1, chunk.max_ns
    expected = [
        r
        for r in reversed(records)
        if head.first_id <= r.id <= head.last_id and lo <= r.time_ns <= hi
    ]
    newest_first = chunk.newest_first(None, lo, hi, lambda: -1, {})
    assert [(r.id, r.message) for r in newest_first if r] == [(r.id, r.message) for r in expected]
    # Nothing in the window can enter a page holding newer items: no row is decoded.
    assert list(chunk.newest_first(None, lo, hi, lambda: 2**63, {})) == [None] * 4
    # Its head rules out a service's errors when they are all another's.
    assert chunk.may_match({"service": {"worker"}, "level": {"error"}})
    assert not chunk.may_match({"service": {"api"}, "level": {"error", "critical"}})
    assert chunk.may_match({}) and chunk.may_match({"source": {"backend"}})
    # Rows of other categories are passed over before any is decoded.
    assert list(chunk.newest_first(None, lo, hi, lambda: -1, {"service": {"none such"}})) == []
    errors = chunk.newest_first(
        None, lo, hi, lambda: -1, {"level": {"error"}, "service": {"worker"}}
    )
    assert [r.id for r in errors if r] == [
        r.id for r in expected if r.level == "error" and r.service == "worker"
    ]
    # A page holding items newer than the three older stretches passes them over.
    floor = max(r.time_ns for r in expected[256:]) + 1
    paged = list(chunk.newest_first(None, lo, hi, lambda: floor, {}))
    assert paged[-3:] == [None] * 3
    assert [r.id for r in paged if r] == [r.id for r in expected if r.time_ns >= floor]
    assert any(r is not None for r in paged)


def test_the_network_waterfall_reads_browser_requests_from_both_tiers(tmp_path: Path) -> None:
    tiered = _store(tmp_path, block_records=100)
    records = _records(1000)
    for record in records[::40]:
        record.source = "browser"
        record.attributes = {
            "http.request.method": "GET",
            "url.full": f"http://localhost/api/{record.id}",
            "duration_ms": 3,
        }
    _add(tiered, records)
    page = observe(tiered, "network_waterfall", TimelineFilter(limit=100))
    assert page["metadata"]["total_count"] == 25  # 19 on disk only, 6 in memory
    assert [r["url"] for r in page["requests"]][:2] == [
        "http://localhost/api/961",
        "http://localhost/api/921",
    ]
    assert page["requests"][-1]["url"] == "http://localhost/api/1"


def test_trace_lookups_on_disk_survive_rows_that_look_like_rows(tmp_path: Path) -> None:
    tiered = _store(tmp_path, block_records=100)
    flat = Store(StoreConfig(max_records=10_000))
    tricky = [
        f'[1,2,"x"] {TRACE.hex()} ],[ [7, "{TRACE.hex()}", 0]',
        f',"{TRACE.hex()}", [[[[[',
        '"quoted" \\ back\nslash ü',
    ]
    records = _records(1000)
    for i, record in enumerate(records):
        record.message = tricky[i % 3] + record.message
    _add(tiered, records)
    _add(flat, _records(1000))
    for record in flat.records.iter_newest_first():
        record.message = tricky[(record.id - 1) % 3] + record.message
    events = [record_event(r) for r in tiered.records.by_trace(TRACE)]
    assert len(events) == 20 and events == [record_event(r) for r in flat.records.by_trace(TRACE)]


_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " \t\n=:.,;/\\\"'()[]{}<>|&?!*+@#$%^~`-_"
    "\u00e9\u00df\u03a3\u212a\u0130\u00c9\u4e2d\U0001f525"  # e-acute, sharp s, Sigma, Kelvin, I-dot
)


def _random_messages(rng: random.Random, n: int) -> list[str]:
    words = [
        "readTimeoutError",
        "timeout",
        "GET /api/orders",
        "user_id=42",
        "SELECT",
        "\u212aelvin",
    ]
    out = []
    for _ in range(n):
        parts = [
            rng.choice(words)
            if rng.random() < 0.3
            else "".join(rng.choices(_ALPHABET, k=rng.randrange(1, 9)))
            for _ in range(rng.randrange(1, 8))
        ]
        out.append(rng.choice(("", " ", "=", "/", "")).join(parts))
    return out


def _random_query(rng: random.Random, messages: list[str]) -> str:
    """A substring of some message, its case changed at random; sometimes random text."""
    if rng.random() < 0.2:
        return "".join(rng.choices(_ALPHABET, k=rng.randrange(1, 7)))
    message = rng.choice(messages)
    start = rng.randrange(len(message))
    text = message[start : start + rng.randrange(1, 12)]
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def test_the_text_index_never_skips_a_block_that_holds_the_text(tmp_path: Path) -> None:
    rng = random.Random(15)
    tiered = _store(tmp_path, block_records=100)
    flat = Store(StoreConfig(max_records=10_000))
    records = _records(2000)
    messages = _random_messages(rng, len(records))
    for record, message in zip(records, messages, strict=True):
        record.message = message
    _add(tiered, records)
    _add(flat, [dataclasses.replace(r) for r in records])
    history = tiered.records.history
    assert history is not None and len(history.blocks) == 20  # the newest 250 in memory too
    blocks = [(head, history.records_of(head)) for head in history.blocks]
    skipped = 0
    for _ in range(1500):
        text = _random_query(rng, messages)
        query = TextQuery(text)
        for head, held in blocks:
            if any(text.lower() in r.message.lower() for r in held):
                assert head.may_contain(query), (text, head.first_id)
            elif not head.may_contain(query):
                skipped += 1
    assert skipped > 1000  # the index does skip blocks
    for _ in range(150):  # the timeline over both tiers, against brute force
        text = _random_query(rng, messages)
        f = TimelineFilter(limit=2000, text=text)
        page = timeline(tiered, f)
        expected = [str(r.id) for r in records if text.lower() in r.message.lower()]
        assert sorted((e["id"] for e in page["events"]), key=int) == expected, text
        assert page == timeline(flat, f), text


def test_a_rare_word_opens_only_the_block_that_holds_it(tmp_path: Path) -> None:
    tiered = _store(tmp_path, block_records=100)
    records = _records(3000)
    records[1234].message = "payment gateway said readTimeoutError after 30 s"
    _add(tiered, records)
    history = tiered.records.history
    assert history is not None and len(history.blocks) == 30
    for text in ("readTimeoutError", "TIMEOUT", "eadtimeouterr", "said readtimeout"):
        admitted = [h.first_id for h in history.blocks if h.may_contain(TextQuery(text))]
        assert admitted == [1201], text
        page = timeline(tiered, TimelineFilter(text=text))
        assert [e["message"] for e in page["events"]] == [records[1234].message]
    assert not TextQuery("ti").usable and not TextQuery("t\u00e9st").usable
    assert not TextQuery("a=b").usable  # every trigram has a separator in the middle


# Blocks of six records written by versions 1 (no text index) and 2 (the write-ahead rows
# whole, in one column) of the format, as they wrote them.
_V1_BLOCK = """
R0FTQkxLMQpCAQAAyukyJ3sidiI6MSwiZmlyc3RfaWQiOjEsImxhc3RfaWQiOjYsImNvdW50Ijo2LCJt
aW5fbnMiOjE3MDAwMDAwMDAwMDAwMDAwMDAsIm1heF9ucyI6MTcwMDAwMDAwMDAwNTAwMDAwMCwic2Vh
bGVkX25zIjoxNzAwMDAwMDAwMTAwMDAwMDAwLCJ0YWJsZXMiOnsic291cmNlIjpbImJhY2tlbmQiXSwi
bGV2ZWwiOlsiZXJyb3IiLCJpbmZvIl0sInNlcnZpY2UiOlsiYXBpIl0sImtpbmQiOlsibG9nIl19LCJi
bG9vbV9sZW4iOjgsImJsb29tX2NyYyI6MTY3NzI2NDYwMywiY29sdW1ucyI6W1siaWRfZGVsdGEiLDIz
XSxbInJvd3MiLDIyNl1dLCJib2R5X2NyYyI6Mzc1MjY3ODgyNX0DSIohIESQFCi1L/0gMHUAACABAAEA
AwArGACMB4AFKLUv/WAYAsUGAHKKIiBQaasDyBWhHNrGaTdMKExuFUnOxVeyNSkug2ccVdiEHoaWWCUF
sAklXcSIMUPbgMMj5eXr4aDj1y4ITHRZthMsynNBIRtTlAXMK16oT59nrNEIdso9xMdaiZE1kAM9nxi4
5xES5pjYCsQZAcVi6UQy8FxHo6ZhohhNeD4uMfbzD3YBwh3PszSVsSAgECMJhOoGBwyAMsYgMwo4DhUi
g83AIDMKjyMshcQ34DAwIIdGbI9B7DyHiJeEUguK8fhgOPvCdjSOgE3EGY+l6FMVcLbAQCNlCw==
"""


_V2_BLOCK = """
R0FTQkxLMQpnAQAAUyUbGHsidiI6MiwiZmlyc3RfaWQiOjEsImxhc3RfaWQiOjYsImNvdW50Ijo2LCJt
aW5fbnMiOjE3MDAwMDAwMDAwMDAwMDAwMDAsIm1heF9ucyI6MTcwMDAwMDAwMDAwNTAwMDAwMCwic2Vh
bGVkX25zIjoxNzAwMDAwMDAwMTAwMDAwMDAwLCJ0YWJsZXMiOnsic291cmNlIjpbImJhY2tlbmQiXSwi
bGV2ZWwiOlsiZXJyb3IiLCJpbmZvIl0sInNlcnZpY2UiOlsiYXBpIl0sImtpbmQiOlsibG9nIl19LCJi
bG9vbV9sZW4iOjgsImJsb29tX2NyYyI6MTY3NzI2NDYwMywidGV4dF9sZW4iOjEyMCwidGV4dF9jcmMi
OjIwODA5NjM5NTksImNvbHVtbnMiOltbImlkX2RlbHRhIiwxOV0sWyJyb3dzIiwyMTldXSwiYm9keV9j
cmMiOjE5MTg0MzcxMzJ9A0iKISBEkBRUSgJhIBIAgAEsSIh1BIuNsJESCAAAxE8kgAaoMwA0wIEcwMIA
BIBfCQ6ZIEABpm5MACaCYAIEMCAlTiAgCIaEABoJgCJACDAjIGyQIU/wN0EWELUAkBgmggAhAEcAoGAA
CgBgcBwQcKIKKS0GhCBhJlAYQqtZGEEotS/9IDBVAAAQAQACAFcKwAAWKLUv/WAZAo0GAHJKIh9QaaoD
yBVRG3sSl2cUkq7uRZJz5bXtLbELPOPORCTUhpZYJQWwCaWziBFjhrYBl0eHl38OBz2/NoEynmXaTpAg
1wUFbQxBFlKveKE2bZ6xRiPYKfcQH2slhmvAA10fDdz1CIliymwFdEVAsUg6EQee61lOaRmRsgnXz2TO
vv7JLkC442rW0cNYHCAAIwlkzAcRPBhkRynHHQtRFGQPHOE4widBwoeBLKKj4Hy0JkJHYQkBWQJH9Lj4
dYNvYJyATcRZj6XEUxV5toBAI3ML
"""


@pytest.mark.parametrize(("version", "block"), [(1, _V1_BLOCK), (2, _V2_BLOCK)])
def test_blocks_of_earlier_format_versions_are_still_read(
    tmp_path: Path, version: int, block: str
) -> None:
    (tmp_path / "blocks").mkdir()
    (tmp_path / "blocks" / f"{1:020d}.blk").write_bytes(base64.b64decode(block))
    years = Duration(10 * 365 * 86400)  # it was sealed in 2023
    store = _store(tmp_path, block_records=100, max_age=years)
    history = store.records.history
    assert history is not None and [h.count for h in history.blocks] == [6]
    _add(store, _records(600, first_id=7))  # new blocks beside it
    assert len(history.blocks) == 7 and len(store.records) == 606
    for _ in range(2):
        page = timeline(store, TimelineFilter(text="timeouterror", limit=10))
        assert [e["message"] for e in page["events"]] == [
            f"v{version} line {i} readTimeoutError after {(i - 1) * 7} ms" for i in range(1, 7)
        ]
        assert [r.id for r in store.records.by_trace(TRACE)][:3] == [1, 3, 5]
        assert [r.id for r in store.records.by_correlation("req-1")] == [2]
        assert (r := store.records.get(3)) is not None and r.attributes == {"n": 2}
        assert history.corrupt_blocks == 0
        store.close()
        store = _store(tmp_path, block_records=100, max_age=years)
        history = store.records.history
        assert history is not None and len(store.records) == 606


def test_blocks_leave_oldest_first_past_max_bytes_and_max_age_counted(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=100, max_bytes=12_000, max_age=Duration(3600))
    _add(store, _records(1000))
    history = store.records.history
    assert history is not None
    kept = history.stats(store.records.memory_count)
    assert 0 < kept["tiers"]["disk"]["bytes"] <= 12_000
    oldest = history.blocks[0].first_id
    assert 1 < oldest < 751  # the disk keeps more than memory (751-1000)
    assert kept["evicted"] == {"evicted_byte_limit": oldest - 1}
    assert store.records.evicted == kept["evicted"]  # memory let go of them uncounted
    assert len(store.records) == 1001 - oldest
    assert store.records.get(oldest - 1) is None and store.records.get(oldest) is not None
    store.evict_expired(time.time_ns() + 2 * 3600 * 10**9)  # past max_age, not the ttl
    stats = history.stats(store.records.memory_count)
    assert stats["tiers"]["disk"]["blocks"] == 0 and len(store.records) == 250
    assert stats["evicted"] == {"evicted_byte_limit": oldest - 1, "expired": 751 - oldest}
    store.evict_expired(time.time_ns() + 25 * 3600 * 10**9)  # past the memory tier's ttl
    assert len(store.records) == 0
    assert store.records.evicted == {"evicted_byte_limit": oldest - 1, "expired": 1001 - oldest}


def test_a_torn_write_ahead_line_is_skipped_and_the_rest_replayed(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=1000)
    _add(store, _records(250))  # nothing sealed: all of it only in the write-ahead file
    assert store.records.history is not None
    store.records.history.sync()
    wal = tmp_path / "wal.log"
    wal.write_bytes(wal.read_bytes() + b'[[251,1700000000250000000,"backend","in')  # kill -9
    store.records.history._release()  # what a crash leaves: the lock goes with the process
    again = _store(tmp_path, block_records=1000)
    history = again.records.history
    assert history is not None and history.wal_lines_skipped == 1
    assert len(again.records) == again.records.memory_count == 250
    assert history.stats(250)["restored_records"] == 250
    assert [r.id for r in again.records.iter_newest_first()] == list(range(250, 0, -1))
    _add(again, _records(50, first_id=251))  # written after the torn line was cut off
    history.sync()
    history._release()  # a second crash
    third = _store(tmp_path, block_records=1000)
    assert third.records.history is not None and third.records.history.wal_lines_skipped == 0
    assert len(third.records) == 300


def test_a_corrupt_block_is_skipped_and_counted(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=100)
    _add(store, _records(1000))
    store.close()
    blocks = sorted((tmp_path / "blocks").glob("*.blk"))
    assert len(blocks) == 10
    data = bytearray(blocks[0].read_bytes())
    data[-10] ^= 0xFF  # a flipped byte in the columns: found when the block is read
    blocks[0].write_bytes(bytes(data))
    blocks[1].write_bytes(blocks[1].read_bytes()[:-500])  # truncated: found at open
    again = _store(tmp_path, block_records=100)
    history = again.records.history
    assert history is not None
    assert history.corrupt_blocks == 1 and len(again.records) == 900
    # A page read from the blocks a stretch at a time finds the flipped byte too.
    assert len(timeline(again, TimelineFilter(limit=1000))["events"]) == 800
    assert history.corrupt_blocks == 2
    messages = [r.message for r in again.records.iter_newest_first()]
    assert len(messages) == 800 and messages[-1].startswith("line 201 ")
    stats = history.stats(again.records.memory_count)
    assert stats["corrupt_blocks"] == 2 and stats["evicted"] == {"corrupt": 100}
    assert "skipped" in (stats["error"] or "")
    assert sorted(p.suffix for p in (tmp_path / "blocks").iterdir()).count(".corrupt") == 2


def test_a_block_file_gone_under_a_running_history_is_counted_once_per_read(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path, block_records=100)
    _add(store, _records(1000))
    history = store.records.history
    assert history is not None

    def remove(head: BlockHead) -> None:
        (tmp_path / "blocks" / f"{head.first_id:020d}.blk").unlink()

    remove(history.blocks[0])  # ids 1-100, "line 7 ..." among them: read by a page
    page = timeline(store, TimelineFilter(limit=50, text="line 7 "))
    assert [e["message"] for e in page["events"]] == []
    assert history.corrupt_blocks == 1 and len(history.blocks) == 9
    head = history.blocks[-1]  # the page read it first: its columns are no longer kept
    remove(head)  # then by a partial read (as the context around an error reads)
    assert history.search(head, "line 907 ", 2**63) == []
    assert history.corrupt_blocks == 2 and len(history.blocks) == 8
    assert "skipped" in (history.stats(0)["error"] or "")


def test_a_failed_block_write_keeps_records_in_memory_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No size-limited filesystem can be made here without privileges the tests do not
    # assume, so the disk-full error is injected at the block write itself.
    store = _store(tmp_path, block_records=100)
    history = store.records.history
    assert history is not None
    from collector.store import history as module

    def full(tmp: Path, path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "write_atomically", full)
    _add(store, _records(1000))
    stats = history.stats(store.records.memory_count)
    assert stats["write_errors"] >= 1 and "No space left on device" in stats["error"]
    assert stats["tiers"]["disk"]["blocks"] == 0
    assert stats["tiers"]["disk"]["pending"] == 400  # four blocks' worth wait in memory
    assert stats["evicted"] == {"write_failed": 600}
    assert len(store.records) == 400  # the newest, in memory and waiting
    monkeypatch.undo()
    _add(store, _records(100, first_id=1001))
    stats = history.stats(store.records.memory_count)
    assert stats["error"] is None and stats["tiers"]["disk"]["records"] == 500
    assert len(store.records) == 500


def test_a_block_being_sealed_stays_pending_and_a_crash_then_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks are written by a thread: held here mid-write, as a slow disk would.
    from collector.store import history as module

    entered, release = threading.Event(), threading.Event()
    write = module.write_atomically

    def slow(tmp: Path, path: Path, content: bytes) -> None:
        if path.parent == data / "blocks":
            entered.set()
            assert release.wait(30)
        write(tmp, path, content)

    monkeypatch.setattr(module, "write_atomically", slow)
    data = tmp_path / "data"
    store = Store(
        StoreConfig(max_records=20, history=HistoryConfig(dir=str(data), block_records=100))
    )
    history = store.open_history()
    assert history is not None
    records = _records(150)
    for i in range(0, 150, 50):
        store.records.add(records[i : i + 50], time.time_ns())
    assert entered.wait(30)  # the first 100 are being sealed
    assert history.blocks == [] and len(history.pending) == 150
    assert not list((data / "blocks").iterdir())
    page = timeline(store, TimelineFilter(limit=500))  # 20 in memory, 130 pending
    assert [int(e["id"]) for e in page["events"]] == list(range(1, 151))
    assert store.records.get(1) is not None and len(store.records) == 150
    shutil.copytree(data, tmp_path / "crash")  # the disk as a kill -9 now would leave it
    assert sorted(p.name for p in data.glob("wal*")) == ["wal.00000001.log", "wal.log"]
    crashed = _store(tmp_path / "crash", block_records=100)
    assert [r.id for r in crashed.records.iter_newest_first()] == list(range(150, 0, -1))
    crashed.close()
    release.set()
    history.settle()
    assert [h.count for h in history.blocks] == [100] and len(history.pending) == 50
    assert sorted(p.name for p in data.glob("wal*")) == ["wal.log"]  # the set-aside one went
    store.records.add(_records(60, first_id=151), time.time_ns())  # due: sealing again
    entered.clear()
    release.clear()
    assert entered.wait(30)
    threading.Thread(target=release.set).start()
    store.close()  # waits for the block being written (records 101-210)
    assert [h.count for h in history.blocks] == [100, 110]
    assert len(list((data / "blocks").glob("*.blk"))) == 2
    assert (data / "wal.log").stat().st_size == 0 and not list(data.glob("wal.*.log"))
    again = _store(data, block_records=100)
    assert [r.id for r in again.records.iter_newest_first()] == list(range(210, 0, -1))


def test_blocks_are_encoded_in_a_child_process_and_survive_it_dying(tmp_path: Path) -> None:
    store = _store(tmp_path, block_records=100)
    history = store.records.history
    assert history is not None
    before = set(multiprocessing.active_children())
    records = _records(300) + _records(300, first_id=301)
    _add(store, records[:300])
    children = set(multiprocessing.active_children()) - before
    assert len(children) == 1 and [h.count for h in history.blocks] == [100, 100, 100]
    child = children.pop()
    os.kill(child.pid or 0, signal.SIGKILL)
    child.join(30)
    _add(store, records[300:])  # the block it took is encoded in the thread
    assert [h.count for h in history.blocks] == [100] * 6
    assert history.stats(0)["sealing_process_restarts"] == 1
    assert history.stats(0)["write_errors"] == 0
    again = set(multiprocessing.active_children()) - before
    assert len(again) == 1 and again.pop().pid != child.pid  # a new child seals what follows
    expected = [r.message for r in records if r.trace_id == TRACE]
    assert [r.message for r in store.records.by_trace(TRACE)] == expected
    store.close()
    assert not set(multiprocessing.active_children()) - before


def _seal_in_this_process(directory: str) -> list[int]:
    store = _store(Path(directory), block_records=100)
    _add(store, _records(300))
    history = store.records.history
    assert history is not None
    counts = [h.count for h in history.blocks]
    store.close()
    return counts


def test_a_history_in_a_process_that_may_have_no_children_encodes_in_its_thread(
    tmp_path: Path,
) -> None:
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # its workers are daemonic
        assert pool.apply(_seal_in_this_process, (str(tmp_path),)) == [100, 100, 100]


def test_a_second_process_on_the_same_directory_runs_in_memory(tmp_path: Path) -> None:
    first = _store(tmp_path)
    second = Store(StoreConfig(history=HistoryConfig(dir=str(tmp_path))))
    history = second.open_history()
    assert history is not None and not history.active
    assert "in use by another gasoline process" in history.state
    second.records.add(_records(3), time.time_ns())
    assert len(second.records) == 3
    first.close()


async def _timeline(http: aiohttp.ClientSession, api: str, query: str) -> dict[str, Any]:
    async with http.get(f"{api}/buffers/timeline?{query}") as resp:
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json()
        return doc


async def _status(http: aiohttp.ClientSession, api: str) -> dict[str, Any]:
    async with http.get(f"{api}/daemon/status") as resp:
        doc: dict[str, Any] = await resp.json()
        return doc


async def _post_events(http: aiohttp.ClientSession, api: str, first: int, n: int) -> None:
    events = [
        {
            "message": f"event {i} password=hunter2 order {i * 3}",
            "level": "error" if i % 7 == 0 else "info",
            "source": "custom",
            "correlation_id": f"req-{i}",
        }
        for i in range(first, first + n)
    ]
    async with http.post(f"{api}/events", json={"events": events}) as resp:
        assert resp.status == 200


async def _stored(http: aiohttp.ClientSession, api: str, n: int) -> dict[str, Any]:
    async with asyncio.timeout(30):  # the queue drains; the timeout guards failure
        while True:
            doc = await _status(http, api)
            if doc["accounting"]["records"]["stored"] >= n:
                return doc
            await asyncio.sleep(0.02)


async def test_a_restarted_serve_answers_the_same_and_wrote_nothing_unredacted(
    tmp_path: Path,
) -> None:
    queries = ("limit=40&source=custom", "level=error&limit=500", "correlation_id=req-3")
    async with aiohttp.ClientSession() as http:
        with serve_process(tmp_path, CONFIG) as (_, urls):
            for first in range(0, 1000, 100):
                await _post_events(http, urls["API"], first, 100)
            await _stored(http, urls["API"], 1000)
            before = [await _timeline(http, urls["API"], q) for q in queries]
        assert [len(b["events"]) for b in before] == [40, 143, 1]
        with serve_process(tmp_path, CONFIG) as (_, urls):
            after = [await _timeline(http, urls["API"], q) for q in queries]
            status = await _status(http, urls["API"])
            cli = subprocess.run(
                [GASOLINE, "status", "--url", urls["API"]],
                capture_output=True,
                text=True,
                timeout=60,
            )

    def answer(page: dict[str, Any]) -> tuple[Any, ...]:
        meta = page["metadata"]
        return page["events"], meta["total_count"], meta["cursor_next"]

    assert [answer(a) for a in after] == [answer(b) for b in before]
    history = status["store"]["history"]
    assert history["state"] == "ok" and history["tiers"]["disk"]["records"] == 1000
    assert history["restored_records"] == 1000 and history["disk_bytes"] > 0
    assert history["oldest_record_ns"] > 0
    assert re.search(r"history: .* MiB on disk of 4096 MiB", cli.stdout), cli.stdout
    assert "disk 1000 records in 10 blocks" in cli.stdout
    records = status["accounting"]["records"]  # the balance holds: the disk's are restored
    assert (records["accepted"], records["restored"], records["stored"]) == (0, 1000, 1000)
    assert "0 made from lines + 1000 restored = 1000 stored" in cli.stdout
    written = b"".join(p.read_bytes() for p in (tmp_path / ".gasoline/data").rglob("*.*"))
    assert b"hunter2" not in written  # redacted before anything is written
    assert "[REDACTED]" in before[0]["events"][0]["message"]


async def test_kill_9_mid_ingest_keeps_every_record_that_was_stored(tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        with serve_process(tmp_path, CONFIG, killed_by_test=True) as (proc, urls):
            api = urls["API"]
            for first in range(0, 450, 50):
                await _post_events(http, api, first, 50)
            await _stored(http, api, 450)
            more = asyncio.gather(*(_post_events(http, api, 1000 + i * 10, 10) for i in range(20)))
            proc.send_signal(signal.SIGKILL)
            await asyncio.gather(more, return_exceptions=True)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        with serve_process(tmp_path, CONFIG) as (_, urls):
            page = await _timeline(http, urls["API"], "source=custom&limit=1000")
            status = await _status(http, urls["API"])
    messages = {e["message"].split(" password")[0] for e in page["events"]}
    assert {f"event {i}" for i in range(450)} <= messages
    history = status["store"]["history"]
    assert history["restored_records"] >= 450
    assert history["tiers"]["disk"]["records"] + history["tiers"]["disk"]["pending"] >= 450


def test_big_records_are_sealed_before_they_pile_up_in_memory(tmp_path: Path) -> None:
    """What waits for its block is held in memory too: records of 1 MiB each are sealed
    every few MiB, not after ``block_records`` of them (16 GiB)."""
    config = StoreConfig(
        max_bytes=4 * 2**20,
        max_value_chars=2**20,
        max_record_bytes=2 * 2**20,
        history=HistoryConfig(dir=str(tmp_path)),
    )
    store = Store(config)
    history = store.open_history()
    assert history is not None
    for i in range(40):
        big = "x" * 2**20
        record = Record(
            time_ns=1_700_000_000_000_000_000 + i, source="custom", level="info", message=big
        )
        store.records.add([record], time.time_ns())
    # sealed in a thread: at most two blocks' worth (8 MiB each) wait beside the one
    # being written before an append waits for it
    assert len(history.blocks) >= 2 and len(history.pending) <= 17
    assert history.sealed_records + len(history.pending) == 40  # every record kept on disk
    store.close()
