"""The offset-tracked line reader both tailers share: lines, groups and committed offsets."""

from __future__ import annotations

from collections import Counter

import pytest

from receivers.line_reader import LineReader, LongLines


def reader(*, max_line_bytes: int = 1024, long_lines: LongLines = LongLines.TRUNCATE) -> LineReader:
    return LineReader(0, max_line_bytes=max_line_bytes, long_lines=long_lines, counts=Counter())


def read(r: LineReader, *chunks: bytes) -> None:
    """What a tailer does: advance the read offset past a chunk, then split it."""
    for chunk in chunks:
        r.read_offset += len(chunk)
        r.split(chunk)


@pytest.mark.parametrize("policy", list(LongLines))
def test_a_line_split_across_reads_is_one_line(policy: LongLines) -> None:
    r = reader(long_lines=policy)
    read(r, b"first li", b"ne\r\nsec", b"ond line\nthi")
    r.flush_grouper()
    assert r.ready == ["first line", "second line"]
    assert r.partial == b"thi" and r.ready_end == len(b"first line\r\nsecond line\n")
    assert r.counts["lines"] == 2


def test_truncate_keeps_the_head_of_an_over_long_line_and_drops_the_rest() -> None:
    r = reader(max_line_bytes=4)
    read(r, b"abcdefgh", b"ijk\nok\n", b"0123456789\nend\n")
    r.flush_grouper()
    assert r.ready == ["abcd", "ok", "0123", "end"]
    assert r.counts["truncated_lines"] == 2 and r.counts["lines"] == 4
    assert r.ready_end == r.read_offset and not r.skipping


def test_split_keeps_every_byte_of_an_over_long_run() -> None:
    r = reader(max_line_bytes=4, long_lines=LongLines.SPLIT)
    read(r, b"abcdefghij")
    assert r.partial == b"ij" and r.ready == ["abcd"] and list(r.line_ends) == [8]
    read(r, b"k\nok\n")
    r.flush_grouper()
    assert r.ready == ["abcd", "efgh", "ijk", "ok"]
    assert r.counts["truncated_lines"] == 0 and r.ready_end == r.read_offset == 15


def test_offsets_are_committed_only_past_records_the_sink_accepted() -> None:
    r = reader()
    read(r, b"one\ntwo\nthr")
    assert r.ready == ["one"] and r.ready_end == 4  # "two" may still continue
    assert r.committed == 0  # nothing accepted yet
    assert r.accepted() and r.committed == 4 and r.ready == []
    assert not r.accepted()  # nothing new: committed stays
    read(r, b"ee\n")
    r.flush_grouper()
    assert r.ready == ["two", "three"] and r.committed == 4
    r.accepted()
    assert r.committed == r.read_offset == 14


def test_a_multi_line_group_is_held_until_complete() -> None:
    r = reader()
    trace = b'Traceback (most recent call last):\n  File "app.py", line 1\nValueError: x\n'
    read(r, b"before\n", trace[:40], trace[40:])
    assert r.ready == ["before"] and r.ready_end == len(b"before\n")
    read(r, b"after\n")
    assert r.ready[1:] == [trace.decode().rstrip("\n")]
    assert r.ready_end == len(b"before\n") + len(trace)  # "after" is still being grouped
    r.flush_grouper()
    assert r.ready[-1] == "after" and r.ready_end == r.read_offset


def test_a_finished_partial_line_is_emitted_at_the_read_offset() -> None:
    r = reader()
    read(r, b"done\nno newline")
    r.finish_partial()
    r.flush_grouper()
    assert r.ready == ["done", "no newline"] and r.ready_end == r.read_offset
    assert r.partial == b""
