"""LineParser behaviour beyond line shapes: user patterns, attributes, robustness."""

from __future__ import annotations

import calendar
import time

import pytest

from receivers.log_parser import LineParser, ParsedLine

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = calendar.timegm((2024, 1, 2, 15, 4, 5, 0, 0, 0)) * 1_000_000_000


def test_user_pattern_named_groups() -> None:
    parser = LineParser(
        patterns=[
            r"^(?P<time>\S+) \[(?P<level>\w+)\] (?P<service>[\w-]+) "
            r"rid=(?P<request_id>\S+) tid=(?P<trace_id>[0-9a-f]+) (?P<message>.*)$"
        ]
    )
    parsed = parser.parse(f"2024-01-02T15:04:05Z [Warning] billing-api rid=R1 tid={TRACE} slow")
    assert parsed == ParsedLine(
        time_ns=T0,
        level="warn",
        message="slow",
        trace_id=bytes.fromhex(TRACE),
        span_id=None,
        request_id="R1",
        attributes={"service": "billing-api"},
    )


def test_user_patterns_are_tried_in_order_then_auto_detection() -> None:
    parser = LineParser(patterns=[r"^A (?P<msg>.*)", r"^(?P<msg>.*) B$"])
    assert parser.parse("A first B").message == "first B"
    assert parser.parse("second B").message == "second"
    fallback = parser.parse('{"msg":"json still works","level":"info"}')
    assert fallback.message == "json still works"
    assert fallback.level == "info"


def test_user_pattern_unparseable_groups_become_attributes() -> None:
    parser = LineParser(patterns=[r"^(?P<timestamp>\w+) (?P<level>\w+) (?P<trace_id>\w+)"])
    parsed = parser.parse("yesterday loud nothex rest")
    assert parsed.time_ns is None and parsed.level is None and parsed.trace_id is None
    assert parsed.attributes == {"timestamp": "yesterday", "level": "loud", "trace_id": "nothex"}
    assert parsed.message == "yesterday loud nothex rest"


def test_user_pattern_without_match_groups_still_scans_ids() -> None:
    parser = LineParser(patterns=[r"^svc\d+:"])
    parsed = parser.parse(f"svc1: calling trace_id={TRACE}")
    assert parsed.trace_id == bytes.fromhex(TRACE)
    assert parsed.message == f"svc1: calling trace_id={TRACE}"


def test_user_patterns_are_per_instance() -> None:
    custom = LineParser(patterns=[r"^(?P<msg>x)"])
    plain = LineParser()
    assert custom.parse("xyz").message == "x"
    assert plain.parse("xyz").message == "xyz"


@pytest.mark.parametrize("bad", ["(unclosed", "[a-", "(?P<1bad>x)", "*"])
def test_invalid_pattern_raises_value_error_naming_it(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid log pattern") as info:
        LineParser(patterns=["^ok$", bad])
    assert repr(bad) in str(info.value)


def test_json_unconsumed_fields_are_attributes_untouched() -> None:
    parsed = LineParser().parse(
        '{"ts":1704207845,"level":"debug","msg":"m","user":{"id":7,"roles":["a"]},'
        '"n":1.5,"ok":true,"none":null}'
    )
    assert parsed.time_ns == T0
    assert parsed.level == "debug"
    assert parsed.attributes == {
        "user": {"id": 7, "roles": ["a"]},
        "n": 1.5,
        "ok": True,
        "none": None,
    }


def test_json_without_message_keeps_the_line_as_message() -> None:
    line = '{"level":"info","user":"bob"}'
    parsed = LineParser().parse(line)
    assert parsed.message == line
    assert parsed.attributes == {"user": "bob"}


def test_json_priority_between_field_names() -> None:
    parsed = LineParser().parse(
        '{"severity_number":9,"severity_text":"WARN","status":"error","msg":"a","message":"b",'
        '"time":"2024-01-02T15:04:05Z","observedTimeUnixNano":"1"}'
    )
    assert parsed.level == "warn"  # severity_text outranks severity_number and status
    assert parsed.message == "a"  # first of equal rank
    assert parsed.time_ns == T0
    assert parsed.attributes["status"] == "error"
    assert parsed.attributes["message"] == "b"


def test_json_non_string_message_is_rendered() -> None:
    parsed = LineParser().parse('{"msg":{"a":[1,2]},"level":"info"}')
    assert parsed.message == '{"a":[1,2]}'


def test_json_python_levelno_and_status_http_code() -> None:
    parsed = LineParser().parse('{"levelno":40,"message":"x","status":200}')
    assert parsed.level == "error"
    assert parsed.attributes == {"status": 200}


def test_docker_json_file_line() -> None:
    parsed = LineParser().parse(
        '{"log":"listening on :8080\\n","stream":"stdout","time":"2024-01-02T15:04:05.1Z"}'
    )
    assert parsed.message == "listening on :8080\n"
    assert parsed.time_ns == T0 + 100_000_000
    assert parsed.attributes == {"stream": "stdout"}


def test_trailing_newline_is_ignored() -> None:
    assert LineParser().parse('{"msg":"x"}\r\n').message == "x"
    assert LineParser().parse("plain\n").message == "plain"


@pytest.mark.parametrize(
    "line",
    [
        "",
        " ",
        "{",
        "}",
        "{}",
        "[]",
        '{"a":',
        "{" * 5000 + "}" * 5000,
        "\x00\x01\x02",
        "\ud7ff" * 10,
        "=" * 50,
        "a=" * 1000,
        "<999>1 x",
        "<1>",
        "[",
        '] "',
        "1" * 5000,
    ],
)
def test_odd_inputs_never_raise(line: str) -> None:
    parsed = LineParser().parse(line)
    assert isinstance(parsed, ParsedLine)
    assert isinstance(parsed.message, str)


def test_non_string_input_never_raises() -> None:
    parser = LineParser()
    assert parser.parse(b"bytes line").message == "bytes line"
    assert parser.parse(None).message == "None"


_N = 100_000
HOSTILE = {
    "parens": "(" * _N,
    "pairs": "a=" * (_N // 2),
    "odd_pairs": "%=" * (_N // 2),
    "dotted": "a." * (_N // 2) + "x",
    "keys_then_spaces": ("trace_id" + " " * 50) * (_N // 58),
    "hex_dashes": "0123456789abcdef-" * (_N // 17),
    "access_like": "1 2 " + " ".join(["x"] * (_N // 2)) + ' ] "',
    "brackets": "[" * _N + '] "',
    "quotes": '"' * _N,
    "logfmt_escapes": 'a="' + '\\"' * (_N // 2),
    "syslog_hosts": "<34>Jan  2 15:04:05 " + "h " * (_N // 2),
    "sd_params": "<34>1 2024-01-02T15:04:05Z h a p m [x" + ' a="b"' * (_N // 6),
    "json_open": '{"a":' * (_N // 5),
    "level_words": "ERRORX " * (_N // 7),
    "iso_fraction": "2024-01-02T15:04:05." + "1" * _N,
    "ansi": "\x1b[" + "1;" * (_N // 2),
    "uuid_prefixes": "aaaaaaaa-aaaa-aaaa-aaaa-" * (_N // 24),
    "logfmt_long_bare_token": "a=b c=d " + "x" * _N,
    "logfmt_unclosed_quote": 'a=b c="' + "x" * _N,
    "logfmt_many_quoted": "a=b " + 'c="d"' * (_N // 5),
    "sd_long_token": "<34>1 2024-01-02T15:04:05Z h a p m [x " + "y" * _N + "]",
    "sd_many_params": "<34>1 - h a p m [x" + ' a="b"' * (_N // 6) + " " + "z" * _N + "]",
    "sd_brackets": "<34>1 - h a p m [" + "[" * _N + "]",
    "text_pairs_chain": "2024-01-02T15:04:05Z INFO a=" + "b=" * _N,
    "text_pairs_glued": "INFO x " + "ab=c" * (_N // 4),
}


@pytest.mark.parametrize("line", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_long_lines_parse_in_linear_time(line: str) -> None:
    # 100 kB lines built to make backtracking regexes blow up: a quadratic pattern takes
    # minutes of CPU on them, a linear one milliseconds. CPU time of this thread, not wall
    # time nor the process's (threads other tests left running count there), with two
    # orders of magnitude to spare: other load on the machine cannot fail it.
    start = time.thread_time()
    parsed = LineParser().parse(line)
    assert time.thread_time() - start < 10.0
    assert isinstance(parsed.message, str)


def test_json_with_surrounding_whitespace() -> None:
    assert LineParser().parse('{"msg":"x"}   ').message == "x"
    assert LineParser().parse('   {"msg":"y"}').message == "y"
