"""Severity normalisation: the many level spellings and numbers mapped onto five names.

The one level map: the native event intake (``collector/events.py``), the log parser
(``receivers/log_parser``) and the OTLP codec all map level names through it, so ``wrn``
means warn wherever it arrives. The log parser (compiled with mypyc in releases) reads
``EXACT_LEVELS`` and ``TEXT_LEVELS`` directly, so its per-line lookup stays a dict lookup.

Five buckets are what a human or an agent filters on; finer grades (trace vs debug, notice vs
info) mean different things in different ecosystems, so they are folded rather than guessed.
"""

from __future__ import annotations

__all__ = [
    "CRITICAL",
    "DEBUG",
    "ERROR",
    "EXACT_LEVELS",
    "INFO",
    "TEXT_LEVELS",
    "WARN",
    "http_status_level",
    "normalize_level",
    "otel_severity_level",
    "python_level",
    "syslog_severity_level",
]

DEBUG = "debug"
INFO = "info"
WARN = "warn"
ERROR = "error"
CRITICAL = "critical"

_WORDS: dict[str, str] = {
    # debug and below
    "trace": DEBUG,
    "trc": DEBUG,
    "finest": DEBUG,
    "finer": DEBUG,
    "fine": DEBUG,
    "config": DEBUG,
    "verbose": DEBUG,
    "debug": DEBUG,
    "dbg": DEBUG,
    "d": DEBUG,
    "t": DEBUG,
    "v": DEBUG,
    # info
    "info": INFO,
    "inf": INFO,
    "information": INFO,
    "informational": INFO,
    "notice": INFO,
    "log": INFO,
    "i": INFO,
    # warn
    "warn": WARN,
    "warning": WARN,
    "wrn": WARN,
    "w": WARN,
    # error
    "error": ERROR,
    "err": ERROR,
    "eror": ERROR,
    "erro": ERROR,
    "severe": ERROR,
    "e": ERROR,
    # critical
    "critical": CRITICAL,
    "crit": CRITICAL,
    "crt": CRITICAL,
    "fatal": CRITICAL,
    "ftl": CRITICAL,
    "alert": CRITICAL,
    "emerg": CRITICAL,
    "emergency": CRITICAL,
    "panic": CRITICAL,
    "dpanic": CRITICAL,
    "f": CRITICAL,
    "c": CRITICAL,
}

# Exact-case hits for the spellings seen in practice, so the hot path skips strip()/lower().
_EXACT: dict[str, str] = {}
for _word, _level in _WORDS.items():
    _EXACT[_word] = _level
    _EXACT[_word.upper()] = _level
    _EXACT[_word.capitalize()] = _level
del _word, _level
EXACT_LEVELS = _EXACT  # read-only view for callers that inline the common-case lookup

# Words accepted as a level when they open a plain-text line or follow its timestamp; single
# letters are too ambiguous there ("I think...", "A user...").
_TEXT_WORDS: dict[str, str] = {k: v for k, v in _EXACT.items() if len(k) >= 3}
TEXT_LEVELS = _TEXT_WORDS  # read-only view, for the same reason as EXACT_LEVELS

_PINO = {10: DEBUG, 20: DEBUG, 30: INFO, 40: WARN, 50: ERROR, 60: CRITICAL}
_SYSLOG = (CRITICAL, CRITICAL, CRITICAL, ERROR, WARN, INFO, INFO, DEBUG)
_DIGITS = "0123456789"


def otel_severity_level(number: int) -> str | None:
    """OTel SeverityNumber 1-24 (TRACE..FATAL4); anything else is unspecified."""
    if number < 1 or number > 24:
        return None
    if number <= 8:
        return DEBUG
    if number <= 12:
        return INFO
    if number <= 16:
        return WARN
    if number <= 20:
        return ERROR
    return CRITICAL


def syslog_severity_level(severity: int) -> str | None:
    """Syslog severity 0 (emerg) .. 7 (debug), as carried in a PRI value's low three bits."""
    if 0 <= severity <= 7:
        return _SYSLOG[severity]
    return None


def python_level(number: int) -> str | None:
    """Python ``logging`` numeric levels (10 DEBUG .. 50 CRITICAL), including custom ones."""
    if number <= 0:
        return None
    if number < 20:
        return DEBUG
    if number < 30:
        return INFO
    if number < 40:
        return WARN
    if number < 50:
        return ERROR
    return CRITICAL


def http_status_level(status: int) -> str | None:
    """An access-log line carries no level; its status says whether the request failed."""
    if status >= 500:
        return ERROR if status < 600 else None
    if status >= 400:
        return WARN
    if status >= 100:
        return INFO
    return None


def _int_level(number: int) -> str | None:
    # Bunyan/Pino use multiples of ten (10 trace .. 60 fatal); they win the overlap with OTel
    # numbers because numeric JSON "level" fields are almost always Pino or Bunyan.
    pino = _PINO.get(number)
    if pino is not None:
        return pino
    return otel_severity_level(number)


def _slow_str(value: str) -> str | None:
    word = value.strip().strip("[]<>:").lower()
    if not word or len(word) > 32:
        return None
    hit = _WORDS.get(word)
    if hit is not None:
        return hit
    if word.isascii() and word.isdigit():
        return _int_level(int(word))
    # OTel severity texts carry a grade ("INFO2", "ERROR4"); PostgreSQL has DEBUG1..DEBUG5.
    stem = word.rstrip(_DIGITS)
    if stem and stem != word:
        return _WORDS.get(stem)
    return None


def normalize_level(value: object) -> str | None:
    """Map a level word or number onto debug/info/warn/error/critical; None if unknown.

    Integers are Bunyan/Pino levels when a multiple of ten in 10..60, else OTel severity
    numbers 1-24. Syslog and Python numeric levels are only unambiguous in context, so the
    parsers call :func:`syslog_severity_level` and :func:`python_level` where they apply.
    """
    if isinstance(value, str):
        hit = _EXACT.get(value)
        if hit is not None:
            return hit
        return _slow_str(value)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _int_level(value)
    if isinstance(value, float) and value.is_integer():
        return _int_level(int(value))
    return None
