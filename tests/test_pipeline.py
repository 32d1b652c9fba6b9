"""The pipeline between receivers and the store: plain lines parsed by its consumer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from collector.config import QueueConfig, StoreConfig
from collector.errors import QueueFullError
from collector.model import DropReason, Record
from collector.pipeline import Pipeline
from collector.priority import BACKGROUND_NICE
from collector.store import Store
from receivers.log_records import LogLines

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
    assert pipeline.stats()["accepted"] == {"records": 1202}


async def test_stop_drops_lines_not_parsed_yet_and_counts_them() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    await pipeline.start()
    event = _event("stored before the exit")
    pipeline.offer_lines(LogLines(), [f"line {i}" for i in range(50_000)])
    pipeline.offer_records([event])
    await pipeline.stop()
    stored = len(pipeline.store.records)
    dropped = pipeline.dropped[("records", DropReason.SHUTTING_DOWN)]
    assert dropped > 0 and stored + dropped == 50_001
    assert pipeline.store.records.get(event.id) is event  # records are still stored
    assert pipeline.queue_depth == 0


async def test_lines_beyond_the_queue_are_refused_and_counted() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(max_items=100), redactor=None)
    with pytest.raises(QueueFullError):
        pipeline.offer_lines(LogLines(), ["x"] * 101)
    assert pipeline.dropped[("records", DropReason.QUEUE_FULL)] == 101
    assert pipeline.offer_lines(LogLines(), ["x"] * 100) == 100


def _thread_nices() -> list[int]:
    # Field 19 of /proc/<pid>/task/<tid>/stat (after the command name) is the nice value.
    return [
        int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
        for task in Path(f"/proc/{os.getpid()}/task").iterdir()
    ]


@pytest.mark.skipif(
    not Path("/proc/self/task").exists() or os.getpriority(os.PRIO_PROCESS, 0) != 0,
    reason="per-thread nice values are read from Linux's /proc, starting from nice 0",
)
async def test_lines_are_parsed_on_a_thread_of_lower_priority() -> None:
    """A flood of log lines must not take CPU from the application being debugged."""
    before = _thread_nices().count(BACKGROUND_NICE)
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    await pipeline.start()
    try:
        pipeline.offer_lines(LogLines(), ["a line"])
        await pipeline.drained()
        assert _thread_nices().count(BACKGROUND_NICE) == before + 1
        assert os.getpriority(os.PRIO_PROCESS, 0) == 0  # the rest of the process is not
    finally:
        await pipeline.stop()
    assert _thread_nices().count(BACKGROUND_NICE) == before
