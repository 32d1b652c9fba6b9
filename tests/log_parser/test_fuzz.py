"""Property tests: parsing never raises and returns well-typed results; grouping loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receivers.log_parser import (
    LineParser,
    MultilineGrouper,
    ParsedLine,
    normalize_level,
    parse_timestamp,
)
from receivers.log_parser import parser as parser_module

LEVELS = {None, "debug", "info", "warn", "error", "critical"}
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Surrogate-free unicode, control characters included.
text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)

# Fragments that steer generated lines into every parser branch.
fragments = st.sampled_from(
    [
        "{",
        "}",
        '{"a":',
        '"msg":',
        '"level":',
        '"time":',
        "[",
        "]",
        '] "',
        "<34>",
        "<165>1 ",
        "2024-01-02T15:04:05.123Z",
        "2024-01-02 15:04:05,123",
        "2024/01/02 15:04:05",
        "02/Jan/2024:15:04:05 +0000",
        "Jan  2 15:04:05",
        "I, [",
        "E0102 ",
        "ERROR",
        "[info]",
        "WARNING:",
        "Traceback (most recent call last):",
        "trace_id=",
        "span_id=",
        "traceparent: ",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "request_id=",
        "b3: ",
        "1-5759e988-bd862e3fe1be46a994272793",
        "uber-trace-id: ",
        "550e8400-e29b-41d4-a716-",
        "dd.trace_id=",
        "=",
        '="',
        "\\",
        "\x1b[31m",
        "\n",
        "\t",
        " ",
        "-",
        ":",
        "GET / ",
        "Started GET ",
        "Completed 500 ",
        " ms - ",
        "1704207845123",
        "9" * 40,
        "\ufeff",
    ]
)
stitched = st.lists(st.one_of(fragments, text), max_size=12).map("".join)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "msg",
                    "level",
                    "time",
                    "trace_id",
                    "span_id",
                    "req",
                    "log",
                    "id",
                    "attributes",
                    "body",
                    "severity_number",
                    "x",
                ]
            )
            | text,
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
json_lines = st.dictionaries(
    st.sampled_from(
        [
            "msg",
            "message",
            "level",
            "lvl",
            "severity_text",
            "severity_number",
            "levelno",
            "time",
            "ts",
            "timestamp",
            "@timestamp",
            "time_unix_nano",
            "trace_id",
            "traceId",
            "span_id",
            "request_id",
            "reqId",
            "req",
            "log",
            "trace",
            "span",
            "dd",
            "attributes",
            "body",
            "traceparent",
            "status",
            "event",
            "other",
        ]
    ),
    json_values,
    max_size=8,
).map(lambda obj: json.dumps(obj, allow_nan=True))


def check(parsed: ParsedLine) -> None:
    assert isinstance(parsed, ParsedLine)
    assert parsed.time_ns is None or (
        isinstance(parsed.time_ns, int) and 0 <= parsed.time_ns < 2**63
    )
    assert parsed.level in LEVELS
    assert isinstance(parsed.message, str)
    assert parsed.trace_id is None or (
        isinstance(parsed.trace_id, bytes)
        and len(parsed.trace_id) == 16
        and parsed.trace_id != bytes(16)
    )
    assert parsed.span_id is None or (
        isinstance(parsed.span_id, bytes)
        and len(parsed.span_id) == 8
        and parsed.span_id != bytes(8)
    )
    assert parsed.request_id is None or isinstance(parsed.request_id, str)
    assert isinstance(parsed.attributes, dict)
    assert all(isinstance(key, str) for key in parsed.attributes)


PARSER = LineParser()


@contextmanager
def no_fallback() -> Iterator[None]:
    """parse() never raises because it falls back to the bare line on any internal error;
    for str input that fallback must never be needed, so here it fails the test instead."""
    with mock.patch.object(parser_module, "_fallback", side_effect=AssertionError("fallback")):
        yield


@SETTINGS
@given(line=st.one_of(text, stitched, json_lines))
def test_parse_never_raises(line: str) -> None:
    with no_fallback():
        check(PARSER.parse(line))


@SETTINGS
@given(
    template=st.sampled_from(
        [
            "GET / 200 {} ms - 5",
            "<34>1 2024-01-02T15:04:05Z h a {} m - x",
            "<34>Jan  2 15:04:05 h sshd[{}]: x",
            '{{"time":"2024-01-02T15:04:05+0{}:00","msg":"m"}}',
            '{{"time":"2024-01-02T15:04:05.{}Z"}}',
            '{{"level":"{}","ts":"{}"}}',
            "E0102 15:04:05.{} 1 f.go:1] x",
            "trace_id={} span_id={} dd.trace_id={}",
            "time={} level={} msg={}",
        ]
    ),
    fill=st.text(alphabet=st.sampled_from("0123456789²٣.-:+Z "), max_size=12),
)
def test_odd_digits_in_numeric_slots(template: str, fill: str) -> None:
    with no_fallback():
        check(PARSER.parse(template.replace("{}", fill)))


NESTED_SHAPES = [
    lambda d: '{"a":' * d + "1" + "}" * d,
    lambda d: '{"msg":' + "[" * d + "]" * d + "}",
    lambda d: '{"msg":{"a":' + "[" * d + "]" * d + "}}",
    lambda d: '{"body":{"kvlistValue":' + "[" * d + "]" * d + "}}",
    lambda d: (
        '{"attributes":[{"key":"k","value":' + '{"arrayValue":{"values":[' * d + "]}}" * d + "}]}"
    ),
]


@pytest.mark.parametrize("depth", [1, 10, 100, 300, 500, 900, 950, 990, 993, 995, 999, 1000, 5000])
@pytest.mark.parametrize("shape", range(len(NESTED_SHAPES)))
def test_deeply_nested_json(depth: int, shape: int) -> None:
    # Around the interpreter's recursion limit the decoder may accept what the encoder or a
    # recursive walk would not; none of that may reach the caller.
    with no_fallback():
        check(PARSER.parse(NESTED_SHAPES[shape](depth)))


@settings(max_examples=20, deadline=None)
@given(size=st.integers(min_value=10_000, max_value=200_000), seed=fragments)
def test_very_long_lines(size: int, seed: str) -> None:
    with no_fallback():
        check(PARSER.parse((seed * (size // max(1, len(seed)) + 1))[:size]))


def test_huge_numbers() -> None:
    for line in [
        '{"time":' + "9" * 5000 + "}",
        '{"level":1e999}',
        '{"time":-1e308}',
        '{"time":' + "1" * 4299 + "}",
        '{"ts":NaN,"level":Infinity}',
    ]:
        with no_fallback():
            check(PARSER.parse(line))


@SETTINGS
@given(value=st.one_of(text, stitched, st.integers(), st.floats()))
def test_parse_timestamp_and_normalize_level_never_raise(value: str | int | float) -> None:
    result = parse_timestamp(value)
    assert result is None or 0 <= result < 2**63
    if not isinstance(value, float):
        assert normalize_level(value) in LEVELS


grouper_lines = st.lists(
    st.one_of(
        text.filter(lambda s: "\n" not in s),
        st.sampled_from(
            [
                "",
                "   ",
                "\tat a.B.c(B.java:1)",
                "    at f (x.js:1:2)",
                "Caused by: x.Y: z",
                "... 3 more",
                "Traceback (most recent call last):",
                '  File "x.py", line 1',
                "ValueError: v",
                "java.lang.IllegalStateException: s",
                "ERROR failed",
                "During handling of the above exception, another exception occurred:",
                "panic: p",
                "goroutine 1 [running]:",
                "main.main()",
                "plain",
            ]
        ),
    ),
    max_size=60,
)


@SETTINGS
@given(lines=grouper_lines)
def test_grouper_keeps_every_line_in_order(lines: list[str]) -> None:
    grouper = MultilineGrouper()
    records: list[str] = []
    for line in lines:
        records.extend(grouper.feed(line))
    records.extend(grouper.flush())
    assert "\n".join(records) == "\n".join(lines)
    assert len(records) <= len(lines)
    assert grouper.flush() == []


@SETTINGS
@given(
    lines=grouper_lines,
    max_lines=st.integers(min_value=1, max_value=6),
    max_bytes=st.integers(min_value=1, max_value=200),
)
def test_grouper_limits_hold(lines: list[str], max_lines: int, max_bytes: int) -> None:
    grouper = MultilineGrouper(max_lines=max_lines, max_bytes=max_bytes)
    records: list[str] = []
    for line in lines:
        records.extend(grouper.feed(line))
    records.extend(grouper.flush())
    # Cuts happen only between lines, so nothing is lost or duplicated even when cut.
    assert "\n".join(records) == "\n".join(lines)
    for record in records:
        parts = record.split("\n")
        assert len(parts) <= max_lines
        # Over the byte limit only when a single line alone exceeds it.
        assert len(record.encode("utf-8", "surrogatepass")) <= max_bytes or len(parts) == 1
