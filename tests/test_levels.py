"""One level map: native events, log lines and OTLP severity texts agree on every word."""

from __future__ import annotations

import pytest

from collector.errors import DecodeError
from collector.events import parse_event
from collector.levels import normalize_level
from receivers.log_parser import LineParser
from receivers.otlp_codec.logs import level_from_severity

WORDS = [
    ("wrn", "warn"),
    ("WRN", "warn"),
    ("Warning", "warn"),
    ("err", "error"),
    ("ERROR", "error"),
    ("fatal", "critical"),
    ("PANIC", "critical"),
    ("trace", "debug"),
    ("dbg", "debug"),
    ("notice", "info"),
    ("INF", "info"),
]


@pytest.mark.parametrize(("word", "level"), WORDS)
def test_every_intake_maps_a_word_to_the_same_level(word: str, level: str) -> None:
    assert normalize_level(word) == level
    assert parse_event({"message": "m", "level": word}, "event", 0).level == level
    assert level_from_severity(0, word) == level
    parsed = LineParser().parse(f"2024-01-02T15:04:05Z {word} something happened")
    assert parsed.level == level


def test_unknown_words_are_refused_by_events_and_info_for_otlp() -> None:
    with pytest.raises(DecodeError, match=r"event\.level: 'loud' is not a level"):
        parse_event({"message": "m", "level": "loud"}, "event", 0)
    with pytest.raises(DecodeError, match=r"event\.level: 30 is not a level"):
        parse_event({"message": "m", "level": 30}, "event", 0)
    assert level_from_severity(0, "loud") == "info"


@pytest.mark.parametrize(
    ("number", "level"), [(1, "debug"), (9, "info"), (13, "warn"), (17, "error"), (21, "critical")]
)
def test_otel_severity_numbers_win_over_text(number: int, level: str) -> None:
    assert level_from_severity(number, "INFO") == level


def test_otel_severity_numbers_out_of_range_are_clamped() -> None:
    assert level_from_severity(30, "") == "critical"
    assert level_from_severity(-3, "") == "debug"
