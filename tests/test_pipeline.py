"""The pipeline between receivers and the store: plain lines parsed by its consumer."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from collector.config import HistoryConfig, QueueConfig, StoreConfig
from collector.errors import QueueFullError
from collector.model import DropReason, Record, SpanBatch
from collector.pipeline import Pipeline
from collector.priority import BACKGROUND_NICE
from collector.store import Store
from receivers.log_records import LogLines
from tests.conftest import wait_for
from tests.test_store import batch
from tests.test_stream_groups import FakeClock

OBSERVED_NS = 1_704_067_200_000_000_000


def _event(message: str) -> Record:
    return Record(time_ns=OBSERVED_NS, source="custom", level="info", message=message)


async def test_lines_are_parsed_by_the_consumer_and_keep_id_order() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    await pipeline.start()
    try:
        source = LogLines(service="api", tags=["env:dev"])
        lines = [f"line {i}" for i in range(1200)]  # more than one consumer step
        assert pipeline.offer_lines(source, lines, observed_ns=OBSERVED_NS) == 1200
        event = _event("between the batches")
        pipeline.offer_records([event])
        # Ids are handed out at offer time: one per line, and one for a record a grouping
        # source may hand over from an earlier offer (unused by this one).
        assert event.id == 1202
        pipeline.offer_lines(source, ["2024-01-02T15:04:05Z ERROR late request_id=r-1"])
        assert pipeline.queue_depth == 1202
        await pipeline.drained()
    finally:
        await pipeline.stop()

    records = pipeline.store.records
    stored = list(records.iter_newest_first())[::-1]
    assert [r.id for r in stored] == [*range(1, 1201), 1202, 1203]
    assert [r.message for r in stored[:3]] == ["line 0", "line 1", "line 2"]
    assert stored[0].time_ns == OBSERVED_NS and stored[0].tags == ("env:dev",)
    assert records.get(1202) is event
    line_600 = records.get(600)
    assert line_600 is not None and line_600.message == "line 599"
    last = records.get(1203)
    assert last is not None and (last.level, last.correlation_id) == ("error", "r-1")
    assert pipeline.queue_depth == 0
    # Lines and records are counted apart: 1201 lines in, 1201 records made of them.
    assert pipeline.stats()["accepted"] == {"lines": 1201, "records": 1}
    accounting = pipeline.accounting()
    assert accounting["lines"] == {"accepted": 1201, "queued": 0, "parsed": 1201, "dropped": {}}
    assert accounting["records"]["from_lines"] == 1201 and accounting["records"]["stored"] == 1202


async def _settle(pipeline: Pipeline, stored: int) -> None:
    """Until the store holds ``stored`` records, or the consumer is waiting out a flood."""
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(pipeline.store.records) == stored:
            return


async def test_a_flood_of_lines_is_parsed_once_it_ebbs_and_spans_do_not_wait() -> None:
    clock = FakeClock()
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None, monotonic=clock)
    await pipeline.start()
    try:
        pipeline.offer_lines(LogLines(), [f"flood {i}" for i in range(3_000)])  # in 0.1 s
        pipeline.offer_spans(batch([(b"t" * 16, b"s" * 8, b"\0" * 8, "GET /")]))
        await _settle(pipeline, 3_000)
        assert pipeline.store.spans.span_count == 1  # spans have a queue of their own
        assert len(pipeline.store.records) == 0  # the flood is still on: parsing waits
        clock.now += 1.0  # no line for a second: the flood is over
        async with asyncio.timeout(30):
            await pipeline.drained()
        assert len(pipeline.store.records) == 3_000

        # A flood that goes on is waited out for two seconds at most.
        for _ in range(30):
            clock.now += 0.09
            pipeline.offer_lines(LogLines(), [f"more {i}" for i in range(2_000)])
            await asyncio.sleep(0.02)  # the consumer sees the flood go on meanwhile
        async with asyncio.timeout(30):  # while the flood still looks on
            await pipeline.drained()
        assert len(pipeline.store.records) == 3_000 + 60_000

        # Lines arriving slower than a flood are parsed at once.
        clock.now += 1.0
        pipeline.offer_lines(LogLines(), ["a quiet line"])
        await pipeline.drained()
        assert len(pipeline.store.records) == 63_001
    finally:
        await pipeline.stop()


async def test_stop_drops_lines_not_parsed_yet_and_counts_them() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    await pipeline.start()
    event = _event("stored before the exit")
    pipeline.offer_lines(LogLines(), [f"line {i}" for i in range(50_000)])
    pipeline.offer_records([event])
    await pipeline.stop()
    stored = len(pipeline.store.records)
    dropped = pipeline.dropped[("lines", DropReason.SHUTTING_DOWN)]
    assert dropped > 0 and stored + dropped == 50_001
    lines = pipeline.accounting()["lines"]
    assert lines["dropped"] == {"shutting_down": dropped}  # after they were accepted
    assert lines["accepted"] == 50_000 == lines["parsed"] + dropped
    assert pipeline.store.records.get(event.id) is event  # records are still stored
    assert pipeline.queue_depth == 0


def _durable_store(data: Path) -> Store:
    store = Store(StoreConfig(history=HistoryConfig(dir=str(data))))
    history = store.open_history()
    assert history is not None and history.active, history and history.state
    return store


async def test_stop_parses_queued_lines_when_the_store_keeps_them_on_disk(
    tmp_path: Path,
) -> None:
    clock = FakeClock()  # stands still: the stop's parsing time never runs out
    pipeline = Pipeline(
        _durable_store(tmp_path), queue=QueueConfig(), redactor=None, monotonic=clock
    )
    await pipeline.start()
    pipeline.offer_lines(LogLines(), [f"line {i}" for i in range(20_000)])
    await pipeline.stop()
    pipeline.store.close()
    assert pipeline.dropped == {}
    assert pipeline.accounting()["lines"]["parsed"] == 20_000

    again = _durable_store(tmp_path)  # and they outlive the process
    assert len(again.records) == 20_000
    assert [r.message for r in again.records.iter_newest_first()][:2] == [
        "line 19999",
        "line 19998",
    ]
    again.close()


async def test_stop_drops_what_is_left_once_its_parsing_time_runs_out(tmp_path: Path) -> None:
    clock = FakeClock()
    pipeline = Pipeline(
        _durable_store(tmp_path), queue=QueueConfig(), redactor=None, monotonic=clock
    )
    await pipeline.start()
    pipeline.offer_lines(LogLines(), [f"line {i}" for i in range(50_000)])
    stopping = asyncio.create_task(pipeline.stop())
    await wait_for(lambda: pipeline.accounting()["lines"]["parsed"] > 0)
    clock.now += 3_600  # past any time the stop may spend parsing
    await stopping
    pipeline.store.close()
    dropped = pipeline.dropped[("lines", DropReason.SHUTTING_DOWN)]
    parsed = pipeline.accounting()["lines"]["parsed"]
    assert dropped > 0 and parsed + dropped == 50_000
    assert len(pipeline.store.records) == parsed
    assert pipeline.queue_depth == 0


async def test_lines_beyond_the_queue_bytes_are_refused_until_parsed() -> None:
    queue = QueueConfig(max_line_bytes=20_000)
    pipeline = Pipeline(Store(StoreConfig()), queue=queue, redactor=None)
    line = "x" * 100
    pipeline.offer_lines(LogLines(), [line] * 100)  # 16,400 bytes as queued
    with pytest.raises(QueueFullError, match="max_line_bytes"):
        pipeline.offer_lines(LogLines(), [line] * 50)
    assert pipeline.dropped[("lines", DropReason.QUEUE_FULL)] == 50
    assert pipeline.stats()["queue"]["line_bytes"] == 100 * (100 + 64)

    await pipeline.start()
    try:
        await pipeline.drained()
        assert pipeline.stats()["queue"]["line_bytes"] == 0
        # An empty queue takes one offer larger than the bound: it could never fit else.
        pipeline.offer_lines(LogLines(), [line] * 500)
        await pipeline.drained()
        assert len(pipeline.store.records) == 600
        assert pipeline.stats()["queue"]["line_bytes"] == 0
    finally:
        await pipeline.stop()


async def test_lines_beyond_the_queue_are_refused_and_counted() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(max_items=100), redactor=None)
    with pytest.raises(QueueFullError):
        pipeline.offer_lines(LogLines(), ["x"] * 101)
    assert pipeline.dropped[("lines", DropReason.QUEUE_FULL)] == 101
    accounting = pipeline.accounting()
    assert accounting["refused"] == {"lines": {"queue_full": 101}}  # never accepted
    assert accounting["lines"]["accepted"] == 0 and accounting["lines"]["dropped"] == {}
    assert pipeline.offer_lines(LogLines(), ["x"] * 100) == 100


def _parse_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gasoline-parse")]


def _nice(native_id: int) -> int:
    # Field 19 of /proc/<pid>/task/<tid>/stat (after the command name) is the nice value.
    stat = Path(f"/proc/{os.getpid()}/task/{native_id}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(
    not Path("/proc/self/task").exists() or os.getpriority(os.PRIO_PROCESS, 0) != 0,
    reason="per-thread nice values are read from Linux's /proc, starting from nice 0",
)
async def test_lines_are_parsed_on_a_thread_of_lower_priority() -> None:
    """A flood of log lines must not take CPU from the application being debugged."""
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    await pipeline.start()
    try:
        pipeline.offer_lines(LogLines(), ["a line"])
        await pipeline.drained()
        [parser] = _parse_threads()
        assert parser.native_id is not None and _nice(parser.native_id) == BACKGROUND_NICE
        assert _nice(threading.get_native_id()) == 0  # the rest of the process is not
    finally:
        await pipeline.stop()
    assert not parser.is_alive()


def _spans(lane: str, number: int, size: int) -> SpanBatch:
    """Batch ``number`` of a lane: ``size`` spans of one trace, named after both."""
    trace_id = f"{lane}:{number}".encode().ljust(16, b".")[:16]
    return batch(
        [
            (trace_id, i.to_bytes(8, "big"), b"\0" * 8, f"{lane} {number}")
            for i in range(1, size + 1)
        ]
    )


@pytest.mark.parametrize("flooding", ["otlp/http", "otlp/grpc"])
async def test_a_flooding_receiver_leaves_the_others_their_share_of_the_queue(
    flooding: str,
) -> None:
    # The consumer is not started: the queue stays as full as the flood makes it.
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(max_items=1000), redactor=None)
    other = "otlp/grpc" if flooding == "otlp/http" else "otlp/http"
    flood, sender = pipeline.lane(flooding), pipeline.lane(other)
    assert pipeline.reserve == 250  # a quarter of the queue each, for two receivers

    flooded = 0
    with pytest.raises(QueueFullError, match=rf"full for {flooding}.*service\.queue\.max_items"):
        while True:
            flood.offer_spans(_spans(flooding, flooded, 50))
            flooded += 1
    assert flooded == 15  # 750 spans: all but the 250 kept for the other receiver

    admitted = 0
    with pytest.raises(QueueFullError, match=f"full for {other}"):
        while True:
            sender.offer_spans(_spans(other, admitted, 50))
            admitted += 1
    assert admitted == 5  # the other receiver fills its own share, and no more
    assert pipeline.queue_depth == 1000

    stats = pipeline.stats()
    assert stats["receivers"] == {
        flooding: {
            "queued": 750,
            "accepted": {"spans": 750},
            "dropped": {"spans": {"queue_full": 50}},
        },
        other: {
            "queued": 250,
            "accepted": {"spans": 250},
            "dropped": {"spans": {"queue_full": 50}},
        },
    }
    assert stats["dropped"] == {"spans": {"queue_full": 100}}


async def test_the_consumer_takes_span_batches_from_the_receivers_in_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    stored: list[str] = []
    add = pipeline.store.spans.add

    def record(spans: SpanBatch, now_ns: int) -> int:
        stored.append(spans.names[0])
        return add(spans, now_ns)

    monkeypatch.setattr(pipeline.store.spans, "add", record)
    http, grpc = pipeline.lane("otlp/http"), pipeline.lane("otlp/grpc")
    for number in range(4):
        http.offer_spans(_spans("http", number, 2))
    for number in range(2):
        grpc.offer_spans(_spans("grpc", number, 2))
    await pipeline.start()
    try:
        await pipeline.drained()
    finally:
        await pipeline.stop()
    assert stored == ["http 0", "grpc 0", "http 1", "grpc 1", "http 2", "http 3"]
    assert pipeline.stats()["receivers"]["otlp/grpc"] == {
        "queued": 0,
        "accepted": {"spans": 4},
        "dropped": {},
    }


async def test_a_receiver_with_parts_gives_its_reserve_to_them() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(max_items=1200), redactor=None)
    otlp = pipeline.lane("otlp")
    pipeline.lane("native")
    otlp.lane("otlp/grpc")
    otlp.lane("otlp/http")
    assert set(pipeline.stats()["receivers"]) == {"native", "otlp/grpc", "otlp/http"}
    assert pipeline.reserve == 200
