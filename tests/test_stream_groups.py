"""Per-stream grouping of posted blocks, as the pipeline drives it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from receivers.log_records import LogLines
from receivers.stream_groups import MAX_LINE_CHARS, OutputLines, StreamGroups


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_record_cut_by_a_block_boundary_is_one_record() -> None:
    groups = StreamGroups()
    key = ("api", "backend", (), "run-1")
    block, closing = groups.block(key, LogLines(), end=False)
    first = block.records(["ERROR failed", "Traceback (most recent call last):"], last=True)
    assert first == [] and closing == []  # the record may go on in the next block
    block, _ = groups.block(key, LogLines(), end=True)
    records = block.records(['  File "a.py", line 1', "ValueError: x", "done"], last=True)
    assert [r.message for r in records] == [
        'failed\nTraceback (most recent call last):\n  File "a.py", line 1\nValueError: x',
        "done",
    ]


def test_a_stream_that_went_silent_hands_over_its_last_record() -> None:
    clock = FakeClock()
    groups = StreamGroups(idle_s=60.0, clock=clock)
    killed = ("api", "backend", (), "run-killed")
    block, _ = groups.block(killed, LogLines(), end=False)
    assert block.records(["last words"], last=True) == []
    clock.now = 30.0
    _, closing = groups.block(("api", "backend", (), "run-2"), LogLines(), end=True)
    assert closing == []  # not idle long enough yet
    clock.now = 61.0
    _, closing = groups.block(("api", "backend", (), "run-3"), LogLines(), end=True)
    assert [r.message for c in closing for r in c.records([], last=True)] == ["last words"]
    assert len(groups) == 2  # run-2 and run-3; run-2 is idle only from 90 s on


def test_more_streams_than_kept_evicts_the_oldest() -> None:
    groups = StreamGroups(max_streams=2)
    keys = [("api", "backend", (), f"run-{i}") for i in range(3)]
    for key in keys[:2]:
        block, _ = groups.block(key, LogLines(), end=False)
        block.records([f"pending {key[3]}"], last=True)
    _, closing = groups.block(keys[2], LogLines(), end=False)
    assert [r.message for c in closing for r in c.records([], last=True)] == ["pending run-0"]
    assert len(groups) == 2


def test_output_lines_are_split_when_first_read() -> None:
    raw = b"\x1b[31mERROR\x1b[0m boom\r\nbad \xff byte\n" + b"x" * (MAX_LINE_CHARS + 5) + b"\r"
    lines = OutputLines(raw)
    assert len(lines) == 3
    assert lines[:] == ["ERROR boom", "bad \ufffd byte", "x" * MAX_LINE_CHARS]
    assert len(OutputLines(b"")) == 0 and OutputLines("a\nb")[1] == "b"


@given(st.binary(max_size=300) | st.text(max_size=300))
def test_output_lines_are_counted_before_they_are_split(raw: bytes | str) -> None:
    """The pipeline reserves one record id per line from the count, before any split."""
    lines = OutputLines(raw)
    count = len(lines)
    assert len(lines[:]) == count
