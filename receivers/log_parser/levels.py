"""The parser's view of the level map in ``collector/levels.py``, which is the only one.

``text_level`` is defined here rather than re-exported so that, compiled, the parser's
per-word lookup is a native call and one dict lookup, not a call into an interpreted module.
"""

from __future__ import annotations

from collector.levels import (
    CRITICAL,
    DEBUG,
    ERROR,
    EXACT_LEVELS,
    INFO,
    TEXT_LEVELS,
    WARN,
    http_status_level,
    normalize_level,
    otel_severity_level,
    python_level,
    syslog_severity_level,
)

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "EXACT_LEVELS",
    "INFO",
    "WARN",
    "http_status_level",
    "normalize_level",
    "otel_severity_level",
    "python_level",
    "syslog_severity_level",
    "text_level",
]

_TEXT_LEVELS: dict[str, str] = TEXT_LEVELS


def text_level(word: str) -> str | None:
    """Level for a word found in free text: three letters or more, as usually cased."""
    return _TEXT_LEVELS.get(word)
