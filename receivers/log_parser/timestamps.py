"""Timestamp recognition: the many ways logs write time, turned into UTC epoch nanoseconds.

Log timestamps repeat their date for hours and their second for many lines, so the date and
time-of-day arithmetic is cached by the matched text; parsing then costs a regex match and a
few dictionary hits. Naive timestamps (no zone) are taken as UTC.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_tz

__all__ = [
    "CLF_RE",
    "GO_RE",
    "ISO_RE",
    "SYSLOG_RE",
    "clf_match_to_ns",
    "epoch_to_ns",
    "go_match_to_ns",
    "iso_match_to_ns",
    "leading_timestamp",
    "parse_timestamp",
    "rfc3339_to_ns",
    "yearless_to_ns",
]

_NS = 1_000_000_000
_MAX_NS = 2**63 - 1  # int64 nanoseconds: the year 2262 is far enough
_BAD = -(1 << 62)  # cache sentinel for text already found invalid
_FRAC_MUL = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)
_MDAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_CACHE_LIMIT = 8192
_DAY_SECONDS = 86_400

_MONTHS: dict[str, int] = {}
for _i, _name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
):
    _MONTHS[_name] = _i
    _MONTHS[_name.capitalize()] = _i
    _MONTHS[_name.upper()] = _i
del _i, _name

# 2024-01-02T15:04:05.123456Z, 2024-01-02 15:04:05,123 (Python), 2024-01-02 15:04:05 +0000
# (Ruby), 2024-01-02 15:04:05.123 UTC (PostgreSQL). Groups: date+time head, fraction, zone.
ISO_RE = re.compile(
    r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))?"
    r"(?: ?(Z|z|UTC|GMT|[+-]\d\d(?::?\d\d)?(?!\d)))?",
    re.ASCII,
)
# The date-and-time head of an ISO_RE match, split for the (cached) arithmetic.
_HEAD_RE = re.compile(r"(\d{4}-\d\d-\d\d)[Tt ](\d\d:\d\d(?::\d\d)?)", re.ASCII)
# Go log and nginx error log: 2009/11/10 23:00:00[.123456]
GO_RE = re.compile(r"(\d{4}/\d\d/\d\d) (\d\d:\d\d:\d\d)(?:\.(\d+))?", re.ASCII)
# Common log format 02/Jan/2024:15:04:05 +0000 and werkzeug/Django 02/Jan/2024 15:04:05
CLF_RE = re.compile(
    r"(\d\d/[A-Za-z]{3}/\d{4})[: ](\d\d:\d\d:\d\d)(?:\.(\d+))?(?: ?([+-]\d{4}|Z|UTC|GMT))?",
    re.ASCII,
)
# RFC 3164: Jan  2 15:04:05 (no year)
SYSLOG_RE = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.(\d+))?", re.ASCII)
_EPOCH_RE = re.compile(r"(\d{1,20})(?:\.(\d{1,30}))?", re.ASCII)
_DATE_ONLY_RE = re.compile(r"(\d{4}-\d\d-\d\d)", re.ASCII)

_day_cache: dict[str, int] = {}
_tod_cache: dict[str, int] = {}
_second_cache: dict[str, int] = {}
_offset_cache: dict[str, int] = {"Z": 0, "z": 0, "UTC": 0, "GMT": 0}
_year_cache: list[float] = [0.0, 0.0, 1970.0]  # [year start, next year start, year]


def _remember(cache: dict[str, int], key: str, value: int) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def _checked_days(year: int, month: int, day: int) -> int:
    if month < 1 or month > 12 or day < 1 or year < 1:
        return _BAD
    limit = _MDAYS[month]
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        limit = 29
    if day > limit:
        return _BAD
    return _days_from_civil(year, month, day)


def _ymd_days(date: str) -> int:
    """Days for "2024-01-02" or "2024/01/02" (cached); _BAD if not a real date."""
    days = _day_cache.get(date)
    if days is None:
        days = _checked_days(int(date[0:4]), int(date[5:7]), int(date[8:10]))
        _remember(_day_cache, date, days)
    return days


def _clf_days(date: str) -> int:
    """Days for "02/Jan/2024" (cached); _BAD if not a real date."""
    days = _day_cache.get(date)
    if days is None:
        month = _MONTHS.get(date[3:6])
        days = _BAD if month is None else _checked_days(int(date[7:11]), month, int(date[0:2]))
        _remember(_day_cache, date, days)
    return days


def _tod_seconds(tod: str) -> int:
    """Seconds into the day for "15:04:05" or "15:04" (cached); _BAD if out of range."""
    seconds = _tod_cache.get(tod)
    if seconds is None:
        hour = int(tod[0:2])
        minute = int(tod[3:5])
        second = int(tod[6:8]) if len(tod) > 5 else 0
        if hour > 23 or minute > 59 or second > 60:
            seconds = _BAD
        else:
            seconds = hour * 3600 + minute * 60 + second
        _remember(_tod_cache, tod, seconds)
    return seconds


def _offset_seconds(zone: str) -> int:
    """Seconds east of UTC for Z/UTC/+01:00/+0100/+01; _BAD if out of range."""
    offset = _offset_cache.get(zone)
    if offset is None:
        digits = zone[1:].replace(":", "")
        hours = int(digits[0:2])
        minutes = int(digits[2:4]) if len(digits) >= 4 else 0
        if hours > 23 or minutes > 59:
            offset = _BAD
        else:
            offset = hours * 3600 + minutes * 60
            if zone[0] == "-":
                offset = -offset
        _remember(_offset_cache, zone, offset)
    return offset


def _frac_ns(frac: str | None) -> int:
    if not frac:
        return 0
    if len(frac) > 9:
        frac = frac[:9]
    return int(frac) * _FRAC_MUL[len(frac)]


def _assemble(days: int, tod: int, frac: str | None, zone: str | None) -> int | None:
    if days == _BAD or tod == _BAD:
        return None
    seconds = days * _DAY_SECONDS + tod
    if zone is not None:
        offset = _offset_seconds(zone)
        if offset == _BAD:
            return None
        seconds -= offset
    ns = seconds * _NS + _frac_ns(frac) if frac else seconds * _NS
    if ns < 0 or ns > _MAX_NS:
        return None
    return ns


def iso_match_to_ns(match: re.Match[str]) -> int | None:
    """Epoch ns for an :data:`ISO_RE` match (the hot path: one cache hit per second)."""
    head, frac, zone = match.groups()
    seconds = _second_cache.get(head)
    if seconds is None:
        seconds = _second_of(head)
    if seconds == _BAD:
        return None
    if zone is not None:
        offset = _offset_cache.get(zone)
        if offset is None:
            offset = _offset_seconds(zone)
        if offset == _BAD:
            return None
        seconds -= offset
    if frac:
        if len(frac) > 9:
            frac = frac[:9]
        ns = seconds * _NS + int(frac) * _FRAC_MUL[len(frac)]
    else:
        ns = seconds * _NS
    return ns if 0 <= ns <= _MAX_NS else None


def _second_of(head: str) -> int:
    """Epoch seconds for "2024-01-02T15:04:05" (cached per second); _BAD if invalid."""
    seconds = _second_cache.get(head)
    if seconds is None:
        match = _HEAD_RE.fullmatch(head)
        if match is None:
            seconds = _BAD
        else:
            days = _ymd_days(match.group(1))
            tod = _tod_seconds(match.group(2))
            seconds = _BAD if days == _BAD or tod == _BAD else days * _DAY_SECONDS + tod
        _remember(_second_cache, head, seconds)
    return seconds


def rfc3339_to_ns(value: str) -> int | None:
    """Epoch ns for a whole RFC 3339 string, without a regex when the second was seen before.

    Returns None when the text is not in the plain ``YYYY-MM-DDTHH:MM:SS[.fff][Z|±hh:mm]``
    shape, so the caller falls back to the general parser.
    """
    head = value[:19]
    seconds = _second_cache.get(head)
    if seconds is None:
        seconds = _second_of(head)
    if seconds == _BAD or len(value) < 19:
        return None
    rest = value[19:]
    if not rest:
        return seconds * _NS if seconds >= 0 else None
    last = rest[-1]
    if last == "Z" or last == "z":
        body = rest[:-1]
    elif len(rest) >= 6 and rest[-3] == ":" and (rest[-6] == "+" or rest[-6] == "-"):
        offset = _offset_cache.get(rest[-6:])
        if offset is None:
            digits = rest[-5:-3] + rest[-2:]
            if not (digits.isascii() and digits.isdigit()):
                return None
            offset = _offset_seconds(rest[-6:])
        if offset == _BAD:
            return None
        seconds -= offset
        body = rest[:-6]
    else:
        body = rest
    if body:
        if body[0] != "." and body[0] != ",":
            return None
        frac = body[1:]
        if not frac.isdigit() or not frac.isascii():
            return None
        if len(frac) > 9:
            frac = frac[:9]
        ns = seconds * _NS + int(frac) * _FRAC_MUL[len(frac)]
    else:
        ns = seconds * _NS
    return ns if 0 <= ns <= _MAX_NS else None


def go_match_to_ns(match: re.Match[str]) -> int | None:
    """Epoch ns for a :data:`GO_RE` match (no zone: UTC)."""
    date, tod, frac = match.groups()
    return _assemble(_ymd_days(date), _tod_seconds(tod), frac, None)


def clf_match_to_ns(match: re.Match[str]) -> int | None:
    """Epoch ns for a :data:`CLF_RE` match."""
    date, tod, frac, zone = match.groups()
    return _assemble(_clf_days(date), _tod_seconds(tod), frac, zone)


def _current_year(now: float) -> int:
    # The cached year is valid for exactly its own span of epoch seconds, so gmtime stays off
    # the hot path without ever being stale (or wrong for a caller-supplied "now").
    start, end, year = _year_cache
    if start <= now < end:
        return int(year)
    year_now = time.gmtime(now).tm_year
    _year_cache[:] = [
        float(_days_from_civil(year_now, 1, 1) * _DAY_SECONDS),
        float(_days_from_civil(year_now + 1, 1, 1) * _DAY_SECONDS),
        float(year_now),
    ]
    return year_now


def yearless_to_ns(
    month: int, day: int, tod: int, frac_ns: int = 0, now: float | None = None
) -> int | None:
    """Epoch ns for a date written without a year (syslog RFC 3164, klog).

    The current UTC year is assumed unless that puts the time more than a day in the future,
    in which case the line is from last year (a December line read in January).
    """
    if tod == _BAD:
        return None
    if now is None:
        now = time.time()
    year = _current_year(now)
    limit = (int(now) + _DAY_SECONDS) * _NS
    for candidate in (year, year - 1):
        days = _checked_days(candidate, month, day)
        if days == _BAD:
            continue
        ns = (days * _DAY_SECONDS + tod) * _NS + frac_ns
        if ns <= limit:
            return ns if ns >= 0 else None
    # Feb 29 in a non-leap pair of years: fall back to the last leap year that fits.
    for candidate in range(year - 2, year - 8, -1):
        days = _checked_days(candidate, month, day)
        if days != _BAD:
            ns = (days * _DAY_SECONDS + tod) * _NS + frac_ns
            return ns if ns >= 0 else None
    return None


def _syslog_match_to_ns(match: re.Match[str], now: float | None = None) -> int | None:
    mon, day, tod, frac = match.groups()
    month = _MONTHS.get(mon)
    if month is None:
        return None
    return yearless_to_ns(month, int(day), _tod_seconds(tod), _frac_ns(frac), now)


def epoch_to_ns(number: int) -> int | None:
    """Epoch seconds/ms/us/ns told apart by magnitude (plausible range: 1973 to 2262)."""
    if number < 100_000_000:
        return None
    if number < 100_000_000_000:
        ns = number * _NS
    elif number < 100_000_000_000_000:
        ns = number * 1_000_000
    elif number < 100_000_000_000_000_000:
        ns = number * 1_000
    else:
        ns = number
    return ns if ns <= _MAX_NS else None


def _epoch_text_to_ns(whole: str, frac: str | None) -> int | None:
    number = int(whole)
    base = epoch_to_ns(number)
    if base is None or not frac:
        return base
    unit = base // number  # ns per unit: 1e9, 1e6, 1e3 or 1
    if unit == 1:
        return base
    digits = 9 if unit == _NS else 6 if unit == 1_000_000 else 3
    frac = frac[:digits].ljust(digits, "0")
    ns = base + int(frac)
    return ns if ns <= _MAX_NS else None


def _float_to_ns(value: float) -> int | None:
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        return None
    if value >= 1e16:
        return epoch_to_ns(int(value))
    # repr gives the shortest decimal that round-trips: the digits the writer meant, so
    # 1704207845.123 is exactly ...845_123_000_000 ns rather than a binary approximation.
    text = repr(value)
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return epoch_to_ns(int(value))
    return _epoch_text_to_ns(whole, frac)


def leading_timestamp(line: str, pos: int = 0) -> tuple[int, int] | None:
    """(epoch ns, end index) for a timestamp starting exactly at ``pos``, else None.

    Dispatches on one or two characters so lines without a timestamp cost almost nothing.
    """
    first = line[pos : pos + 1]
    if not first:
        return None
    if "0" <= first <= "9":
        sep = line[pos + 4 : pos + 5]
        if sep == "-":
            match = ISO_RE.match(line, pos)
            ns = iso_match_to_ns(match) if match is not None else None
        elif sep == "/":
            match = GO_RE.match(line, pos)
            ns = go_match_to_ns(match) if match is not None else None
        elif line[pos + 2 : pos + 3] == "/":
            match = CLF_RE.match(line, pos)
            ns = clf_match_to_ns(match) if match is not None else None
        else:
            return None
    elif first in "JFMASOND":
        match = SYSLOG_RE.match(line, pos)
        ns = _syslog_match_to_ns(match) if match is not None else None
    else:
        return None
    if ns is None or match is None:
        return None
    return ns, match.end()


def _parse_text(text: str) -> int | None:
    if not text:
        return None
    if text[0] == "[" and text[-1] == "]":
        text = text[1:-1].strip()
    first = text[:1]
    if "0" <= first <= "9":
        epoch = _EPOCH_RE.fullmatch(text)
        if epoch is not None:
            return _epoch_text_to_ns(epoch.group(1), epoch.group(2))
    found = leading_timestamp(text, 0)
    if found is not None:
        return found[0] if found[1] == len(text) else None
    date = _DATE_ONLY_RE.fullmatch(text)
    if date is not None:
        return _assemble(_ymd_days(date.group(1)), 0, None, None)
    if first.isalpha() and "," in text[:5]:
        # RFC 2822 / HTTP dates ("Tue, 02 Jan 2024 15:04:05 GMT"): rare, so the stdlib is fine.
        parts = parsedate_tz(text)
        if parts is not None:
            year, month, day, hour, minute, second = parts[:6]
            days = _checked_days(year, month, day)
            tod = hour * 3600 + minute * 60 + second
            offset = parts[9] or 0
            if days != _BAD and 0 <= tod < _DAY_SECONDS + 1:
                ns = (days * _DAY_SECONDS + tod - offset) * _NS
                return ns if 0 <= ns <= _MAX_NS else None
    return None


def parse_timestamp(value: str | int | float) -> int | None:
    """UTC epoch nanoseconds for a timestamp value, or None if it is not one.

    Accepts RFC 3339/ISO 8601 (T or space, optional fraction, Z/offset/none), epoch numbers or
    numeric strings in s/ms/us/ns (by magnitude), common-log ``02/Jan/2024:15:04:05 +0000``,
    Go ``2009/11/10 23:00:00``, Python ``2024-01-02 15:04:05,123``, RFC 3164 ``Jan  2
    15:04:05`` (year inferred), RFC 2822 dates.
    """
    try:
        if isinstance(value, str):
            if value[10:11] == "T" and value[4:5] == "-":  # the usual JSON shape
                ns = rfc3339_to_ns(value)
                if ns is not None:
                    return ns
            return _parse_text(value.strip())
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return epoch_to_ns(value)
        if isinstance(value, float):
            return _float_to_ns(value)
    except (ValueError, OverflowError, IndexError, TypeError):
        return None
    return None
