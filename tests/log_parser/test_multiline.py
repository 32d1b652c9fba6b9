"""MultilineGrouper: continuation rules, limits, flush, and the never-lose-a-line contract."""

from __future__ import annotations

import time

import pytest

from receivers.log_parser import MultilineGrouper


def run(grouper: MultilineGrouper, lines: list[str]) -> list[str]:
    records: list[str] = []
    for line in lines:
        records.extend(grouper.feed(line))
    records.extend(grouper.flush())
    return records


def test_single_lines_pass_through_one_record_each() -> None:
    grouper = MultilineGrouper()
    assert grouper.feed("first") == []
    assert grouper.feed("second") == ["first"]
    assert grouper.feed("third") == ["second"]
    assert grouper.flush() == ["third"]
    assert grouper.flush() == []


def test_indented_lines_continue_a_record() -> None:
    lines = ["config:", "  port: 8080", "\thost: x", "", "next record"]
    assert run(MultilineGrouper(), lines) == ["config:\n  port: 8080\n\thost: x\n", "next record"]


def test_leading_indented_line_starts_a_record() -> None:
    assert run(MultilineGrouper(), ["   orphan", "x"]) == ["   orphan", "x"]


def test_java_stack_with_caused_by_and_more() -> None:
    lines = [
        'Exception in thread "main" java.lang.RuntimeException: boom',
        "\tat com.example.Main.run(Main.java:10)",
        "Caused by: java.io.IOException: disk",
        "\tat com.example.Disk.read(Disk.java:5)",
        "... 3 more",
        "Suppressed: java.lang.Exception: also",
        "next",
    ]
    assert run(MultilineGrouper(), lines) == ["\n".join(lines[:6]), "next"]


def test_exception_header_joins_an_error_log_line_only() -> None:
    error_first = [
        "ERROR Request failed",
        "java.lang.IllegalStateException: x",
        "\tat a.B.c(B.java:1)",
    ]
    assert run(MultilineGrouper(), error_first) == ["\n".join(error_first)]
    info_first = ["INFO all good", "java.lang.IllegalStateException: x", "\tat a.B.c(B.java:1)"]
    assert run(MultilineGrouper(), info_first) == [info_first[0], "\n".join(info_first[1:])]


def test_uncaught_python_traceback_after_unrelated_line_starts_a_record() -> None:
    lines = [
        "GET /health 200",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "KeyError: 'a'",
        "after",
    ]
    assert run(MultilineGrouper(), lines) == [lines[0], "\n".join(lines[1:4]), "after"]


def test_chained_python_exceptions_stay_together() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 2, in f',
        "KeyError: 'a'",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        '  File "x.py", line 4, in g',
        "ValueError: b",
        "next",
    ]
    assert run(MultilineGrouper(), lines) == ["\n".join(lines[:9]), "next"]


def test_python_exception_line_closes_the_traceback() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "x.py", line 2, in f',
        "ValueError: b",
        "unrelated line",
    ]
    assert run(MultilineGrouper(), lines) == ["\n".join(lines[:3]), "unrelated line"]


def test_max_lines_cuts_and_keeps_grouping_after_the_cut() -> None:
    lines = ["head"] + [f"  frame {i}" for i in range(7)] + ["next"]
    records = run(MultilineGrouper(max_lines=3), lines)
    assert records == [
        "head\n  frame 0\n  frame 1",
        "  frame 2\n  frame 3\n  frame 4",
        "  frame 5\n  frame 6",
        "next",
    ]


def test_max_bytes_cuts_before_overflow() -> None:
    lines = ["head", "  aaaa", "  bbbb", "  cccc", "next"]
    # "head\n  aaaa" is 11 bytes; adding "\n  bbbb" would make 18 > 16.
    records = run(MultilineGrouper(max_bytes=16), lines)
    assert records == ["head\n  aaaa", "  bbbb\n  cccc", "next"]
    assert all(len(r.encode()) <= 16 for r in records)


def test_a_line_longer_than_max_bytes_is_emitted_whole_and_alone() -> None:
    grouper = MultilineGrouper(max_bytes=10)
    assert grouper.feed("short") == []
    long = "x" * 50
    assert grouper.feed(long) == ["short", long]
    assert grouper.feed("  cont") == []
    assert grouper.flush() == ["  cont"]


def test_max_bytes_counts_utf8_bytes() -> None:
    # "é" is two bytes: "é"*5 is 10 bytes, so the record is full at once.
    grouper = MultilineGrouper(max_bytes=10)
    assert grouper.feed("é" * 5) == ["é" * 5]


def test_flush_resets_state() -> None:
    grouper = MultilineGrouper()
    grouper.feed("Traceback (most recent call last):")
    grouper.feed('  File "x.py", line 1')
    assert grouper.flush() == ['Traceback (most recent call last):\n  File "x.py", line 1']
    # After an idle flush an unindented line starts fresh, not as an exception line.
    assert grouper.feed("KeyError: 'a'") == []
    assert grouper.feed("next") == ["KeyError: 'a'"]


@pytest.mark.parametrize(("max_lines", "max_bytes"), [(0, 10), (10, 0), (-1, -1)])
def test_invalid_limits(max_lines: int, max_bytes: int) -> None:
    with pytest.raises(ValueError):
        MultilineGrouper(max_lines=max_lines, max_bytes=max_bytes)


def test_hostile_lines_group_in_linear_time() -> None:
    # CPU time, not wall time, bounded far above linear (milliseconds) and far below what a
    # backtracking pattern takes on these 100 kB lines (minutes).
    grouper = MultilineGrouper(max_bytes=10**7)
    start = time.process_time()
    for line in ["panic: x", "(" * 100_000, "ERROR x", "a." * 50_000 + "Error", "y" * 100_000]:
        grouper.feed(line)
    grouper.flush()
    assert time.process_time() - start < 10.0
