"""normalize_level and the context-specific numeric mappings."""

from __future__ import annotations

import pytest

from receivers.log_parser import normalize_level
from receivers.log_parser.levels import (
    http_status_level,
    otel_severity_level,
    python_level,
    syslog_severity_level,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("trace", "debug"),
        ("TRACE", "debug"),
        ("verbose", "debug"),
        ("DEBUG", "debug"),
        ("dbg", "debug"),
        ("D", "debug"),
        ("fine", "debug"),
        ("info", "info"),
        ("INFO", "info"),
        ("Information", "info"),
        ("notice", "info"),
        ("I", "info"),
        ("warn", "warn"),
        ("WARNING", "warn"),
        ("Warning", "warn"),
        ("W", "warn"),
        ("wrn", "warn"),
        ("err", "error"),
        ("ERROR", "error"),
        ("E", "error"),
        ("severe", "error"),
        ("fatal", "critical"),
        ("FATAL", "critical"),
        ("crit", "critical"),
        ("CRITICAL", "critical"),
        ("panic", "critical"),
        ("dpanic", "critical"),
        ("alert", "critical"),
        ("emerg", "critical"),
        ("  Error  ", "error"),
        ("[warn]", "warn"),
        ("INFO2", "info"),  # OTel severity texts carry a grade
        ("ERROR4", "error"),
        ("DEBUG3", "debug"),  # PostgreSQL DEBUG1..5
        ("30", "info"),
        ("50", "error"),
        ("", None),
        ("   ", None),
        ("banana", None),
        ("x" * 100, None),
        (None, None),
    ],
)
def test_words(value: str | None, expected: str | None) -> None:
    assert normalize_level(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Bunyan/Pino: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal
        (10, "debug"),
        (20, "debug"),
        (30, "info"),
        (40, "warn"),
        (50, "error"),
        (60, "critical"),
        # OTel severity numbers otherwise
        (1, "debug"),
        (4, "debug"),
        (5, "debug"),
        (8, "debug"),
        (9, "info"),
        (12, "info"),
        (13, "warn"),
        (16, "warn"),
        (17, "error"),
        (19, "error"),
        (21, "critical"),
        (24, "critical"),
        (0, None),
        (25, None),
        (-3, None),
        (70, None),
        (30.0, "info"),
        (17.5, None),
        (True, None),
    ],
)
def test_numbers(value: int, expected: str | None) -> None:
    assert normalize_level(value) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (1, "debug"),
        (8, "debug"),
        (9, "info"),
        (13, "warn"),
        (17, "error"),
        (20, "error"),
        (21, "critical"),
        (24, "critical"),
        (0, None),
        (25, None),
    ],
)
def test_otel_severity_numbers(number: int, expected: str | None) -> None:
    assert otel_severity_level(number) == expected


@pytest.mark.parametrize(
    ("severity", "expected"),
    [
        (0, "critical"),
        (1, "critical"),
        (2, "critical"),
        (3, "error"),
        (4, "warn"),
        (5, "info"),
        (6, "info"),
        (7, "debug"),
        (8, None),
        (-1, None),
    ],
)
def test_syslog_severities(severity: int, expected: str | None) -> None:
    assert syslog_severity_level(severity) == expected


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (5, "debug"),
        (10, "debug"),
        (20, "info"),
        (25, "info"),
        (30, "warn"),
        (40, "error"),
        (50, "critical"),
        (0, None),
    ],
)
def test_python_levels(number: int, expected: str | None) -> None:
    assert python_level(number) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "info"),
        (304, "info"),
        (404, "warn"),
        (499, "warn"),
        (500, "error"),
        (503, "error"),
        (99, None),
        (600, None),
    ],
)
def test_http_status(status: int, expected: str | None) -> None:
    assert http_status_level(status) == expected
