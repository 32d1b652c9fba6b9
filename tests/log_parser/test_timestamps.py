"""parse_timestamp: every supported way of writing time, exact to the nanosecond."""

from __future__ import annotations

import calendar
import time

import pytest

from receivers.log_parser import parse_timestamp
from receivers.log_parser.timestamps import leading_timestamp, yearless_to_ns


def ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac_ns: int = 0, off: int = 0) -> int:
    return (calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - off) * 1_000_000_000 + frac_ns


T0 = ns(2024, 1, 2, 15, 4, 5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-02T15:04:05Z", T0),
        ("2024-01-02T15:04:05z", T0),
        ("2024-01-02T15:04:05.123Z", T0 + 123_000_000),
        ("2024-01-02T15:04:05.123456Z", T0 + 123_456_000),
        ("2024-01-02T15:04:05.123456789Z", T0 + 123_456_789),
        ("2024-01-02T15:04:05.1234567891234Z", T0 + 123_456_789),  # truncated to ns
        ("2024-01-02T15:04:05+01:00", ns(2024, 1, 2, 15, 4, 5, off=3600)),
        ("2024-01-02T15:04:05.5-05:30", ns(2024, 1, 2, 15, 4, 5, 500_000_000, off=-19800)),
        ("2024-01-02T15:04:05+0100", ns(2024, 1, 2, 15, 4, 5, off=3600)),
        ("2024-01-02T15:04:05+01", ns(2024, 1, 2, 15, 4, 5, off=3600)),
        ("2024-01-02 15:04:05", T0),  # space separator, naive -> UTC
        ("2024-01-02T15:04:05", T0),
        ("2024-01-02 15:04:05,123", T0 + 123_000_000),  # Python logging asctime
        ("2024-01-02 15:04:05 +0000", T0),  # Ruby
        ("2024-01-02 15:04:05.123 UTC", T0 + 123_000_000),  # PostgreSQL
        ("2024-01-02T15:04", ns(2024, 1, 2, 15, 4, 0)),
        ("2024-01-02", ns(2024, 1, 2, 0, 0, 0)),
        ("  2024-01-02T15:04:05Z  ", T0),
        ("02/Jan/2024:15:04:05 +0000", T0),  # common log format
        ("[02/Jan/2024:15:04:05 -0700]", ns(2024, 1, 2, 15, 4, 5, off=-25200)),
        ("02/Jan/2024 15:04:05", T0),  # werkzeug / Django runserver
        ("2024/01/02 15:04:05", T0),  # Go log, nginx error log
        ("2024/01/02 15:04:05.000123", T0 + 123_000),
        ("Tue, 02 Jan 2024 15:04:05 GMT", T0),  # RFC 2822 / HTTP date
        ("2024-02-29T00:00:00Z", ns(2024, 2, 29, 0, 0, 0)),  # leap day
        ("2023-12-31T23:59:60Z", ns(2024, 1, 1, 0, 0, 0)),  # leap second rolls over
    ],
)
def test_text_timestamps(value: str, expected: int) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1704207845, T0),  # seconds
        (1704207845123, T0 + 123_000_000),  # milliseconds (Pino)
        (1704207845123456, T0 + 123_456_000),  # microseconds
        (1704207845123456789, T0 + 123_456_789),  # nanoseconds
        ("1704207845", T0),
        ("1704207845123", T0 + 123_000_000),
        ("1704207845123456789", T0 + 123_456_789),  # OTLP/JSON timeUnixNano
        ("1704207845.123456", T0 + 123_456_000),
        ("1704207845123.5", T0 + 123_500_000),
        (1704207845.123, T0 + 123_000_000),  # zap/structlog float seconds, exact
        (1704207845.5, T0 + 500_000_000),
        (1.704207845123e12, T0 + 123_000_000),
        (1.7042078451234568e18, 1_704_207_845_123_456_768),
    ],
)
def test_epoch_numbers(value: int | float | str, expected: int) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "hello",
        "200",
        "12",
        0,
        42,
        -1704207845,
        True,
        float("nan"),
        float("inf"),
        10**30,
        "2024-13-02T15:04:05Z",
        "2024-02-30T15:04:05Z",
        "2023-02-29T00:00:00Z",
        "2024-01-02T25:04:05Z",
        "2024-01-02T15:61:05Z",
        "2024-01-02T15:04:05+25:00",
        "2024-01-02T15:04:05.12a",
        "2024-01-02T15:04:05Zjunk",
        "1969-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
        "32/Jan/2024:15:04:05 +0000",
        "02/Foo/2024:15:04:05 +0000",
        "1" * 40,
        "١٧٠٤٢٠٧٨٤٥",
    ],
)
def test_not_timestamps(value: object) -> None:
    assert parse_timestamp(value) is None  # type: ignore[arg-type]


def test_syslog_3164_year_inference_with_fixed_now() -> None:
    now = ns(2024, 1, 10, 12, 0, 0) / 1e9
    # Earlier this year: this year.
    assert yearless_to_ns(1, 2, 15 * 3600 + 4 * 60 + 5, 0, now) == T0
    # Less than a day ahead (clock skew): still this year.
    assert yearless_to_ns(1, 11, 3600, 0, now) == ns(2024, 1, 11, 1, 0, 0)
    # More than a day in the future: last year (a December line read in January).
    assert yearless_to_ns(12, 31, 0, 0, now) == ns(2023, 12, 31, 0, 0, 0)
    # Feb 29 in a non-leap current year goes back to the latest leap year.
    now_2026 = ns(2026, 6, 1, 0, 0, 0) / 1e9
    assert yearless_to_ns(2, 29, 0, 0, now_2026) == ns(2024, 2, 29, 0, 0, 0)


def test_syslog_3164_string_uses_current_year() -> None:
    year = time.gmtime().tm_year
    expected = ns(year, 1, 1, 0, 0, 1)
    assert parse_timestamp("Jan  1 00:00:01") == expected
    assert parse_timestamp("Jan 1 00:00:01") == expected


def test_leading_timestamp_reports_where_it_ends() -> None:
    line = "2024-01-02 15:04:05,123 INFO hello"
    assert leading_timestamp(line) == (T0 + 123_000_000, 23)
    assert leading_timestamp("[02/Jan/2024:15:04:05 +0000] x", 1) == (T0, 27)
    assert leading_timestamp("INFO 2024-01-02T15:04:05Z", 0) is None
    assert leading_timestamp("INFO 2024-01-02T15:04:05Z", 5) == (T0, 25)
    assert leading_timestamp("", 0) is None
