"""Plain-text line shapes: access logs, syslog, Rails, klog, and a generic "timestamp level
message" reading that never fails.

Each shape is tried only when a cheap test on the first characters says it can apply, so an
unrecognised line costs a handful of character comparisons before the generic reading.
"""

from __future__ import annotations

import re

from .correlation import request_id_value, scan_ids, span_id_value, trace_id_value
from .levels import (
    CRITICAL,
    ERROR,
    INFO,
    WARN,
    http_status_level,
    syslog_severity_level,
    text_level,
)
from .record import ParsedLine
from .timestamps import (
    ISO_RE,
    clf_match_to_ns,
    iso_match_to_ns,
    leading_timestamp,
    yearless_to_ns,
)

__all__ = ["parse_text"]

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")

# Common/combined access log (nginx, Apache, morgan "combined"/"common", werkzeug) and Django
# runserver, which drops the client part.
_ACCESS_RE = re.compile(
    r"(?:(\S+) (\S+) (.+?) )?\[([^\]]{10,40})\] \"([^\"]*)\" (\d{3}) (\d+|-)"
    r"(?: \"([^\"\\]*(?:\\.[^\"\\]*)*)\" \"([^\"\\]*(?:\\.[^\"\\]*)*)\")?",
    re.ASCII,
)
_ACCESS_TIME_RE = re.compile(
    r"(\d\d/[A-Za-z]{3}/\d{4})[: ](\d\d:\d\d:\d\d)(?:\.(\d+))?(?: ([+-]\d{4}))?$", re.ASCII
)
_METHODS = frozenset(
    ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "CONNECT", "TRACE")
)
# morgan "dev" (GET /path 200 3.456 ms - 12) and "tiny" (GET /path 200 12 - 3.456 ms)
_MORGAN_DEV_RE = re.compile(r"([A-Z]+) (\S+) (\d{3}) (\d+(?:\.\d+)?) ms - (\d+|-)$", re.ASCII)
_MORGAN_TINY_RE = re.compile(r"([A-Z]+) (\S+) (\d{3}) (\d+|-) - (\d+(?:\.\d+)?) ms$", re.ASCII)
_RAILS_STARTED_RE = re.compile(r"Started ([A-Z]+) \"([^\"]*)\" for (\S+) at ", re.ASCII)
_RAILS_COMPLETED_RE = re.compile(r"Completed (\d{3}) ", re.ASCII)
# Ruby Logger: "I, [2024-01-02T15:04:05.123456 #1234]  INFO -- progname: message"
_RUBY_RE = re.compile(r"[DIWEFAU], \[(\S+) #(\d+)\] +([A-Z]+) -- ([^:]*): ?", re.ASCII)
# klog/glog: "E0102 15:04:05.123456    1234 file.go:12] message"
_KLOG_RE = re.compile(
    r"([IWEF])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))? +(\d+) ([^\]\s]+)\] ?", re.ASCII
)
_KLOG_LEVELS = {"I": INFO, "W": WARN, "E": ERROR, "F": CRITICAL}
# Syslog: RFC 5424 "<34>1 TS HOST APP PROCID MSGID SD MSG" and RFC 3164 "<34>Jan  2 ... tag[pid]:"
_RFC5424_RE = re.compile(
    r"<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) "
    r"(-|(?:\[[^\]\"\\]*(?:(?:\\.|\"[^\"\\]*(?:\\.[^\"\\]*)*\")[^\]\"\\]*)*\])+) ?",
    re.ASCII,
)
# Possessive quantifiers and a token-start lookbehind keep both linear on hostile input.
_SD_ELEMENT_RE = re.compile(
    r"\[([^\s\]\"=]++)([^\]\"\\]*+(?:(?:\\.|\"[^\"\\]*+(?:\\.[^\"\\]*+)*+\")[^\]\"\\]*+)*+)\]"
)
_SD_PARAM_RE = re.compile(r"(?<![^\s])([^\s=\]\"]+)=\"([^\"\\]*(?:\\.[^\"\\]*)*)\"", re.DOTALL)
_SD_UNESCAPE_RE = re.compile(r"\\([\"\\\]])")
_RFC3164_RE = re.compile(
    r"(?:<(\d{1,3})>)?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d:\d\d:\d\d)(?:\.(\d{1,9}))? "
    r"(?:(\S+) )?([^\s\[\]:]+)(?:\[([^\]\s]*)\])?: ?",
    re.ASCII,
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_FRAC_MUL = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)

# A level word opening the line: "ERROR 2024-..", "WARNING:root:..", "[INFO] ..", "INFO:  ..".
_LEVEL_FIRST_RE = re.compile(r"(\[?)([A-Za-z]{3,11})(\]?)(?::\s*|\s+|$)", re.ASCII)
# A level word right after the timestamp: " ERROR ", " [error] ", " | INFO | ", " - WARNING - "
_LEVEL_AFTER_RE = re.compile(r"[\s|-]*\[?([A-Za-z]{3,11})\]?(?![\w.])[\s:|\]-]*", re.ASCII)
# Level words elsewhere near the start (logback "15:04:05.123 [main] ERROR c.e.App - msg").
# Upper-case only, plus bracketed lower-case, so prose like "no error" is not taken as one.
# Flat alternations of literals let the regex engine skip ahead by first character; word
# boundaries are checked in Python on the rare hit.
_BRACKET_LEVELS = (
    "trace",
    "debug",
    "info",
    "notice",
    "warn",
    "warning",
    "error",
    "crit",
    "alert",
    "emerg",
)
_LEVEL_WORD_RE = re.compile(
    r"WARNING|WARN|ERROR|ERR|INFO|INF|DEBUG|DBG|TRACE|TRC|NOTICE|CRITICAL|CRIT|FATAL|FTL"
    r"|SEVERE|ALERT|EMERG|PANIC|WRN|LOG|" + "|".join(rf"\[{word}\]" for word in _BRACKET_LEVELS),
    re.ASCII,
)
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_LEVEL_SEARCH_SPAN = 160
_SEPARATORS = " \t-|:"
_EXCEPTION_HEAD_RE = re.compile(
    r"(?:Traceback \(most recent call last\):"
    r"|Exception in thread "
    r"|(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Error|Exception|Throwable)(?::|$))",
    re.ASCII | re.MULTILINE,
)
# key=value pairs in free text, matched from the start of the word holding each '=' (found
# with str.find: cheaper than a regex trying every position).
_MAX_KEY = 128
_PAIR_KEY_RE = re.compile(r"[A-Za-z_][\w.-]*", re.ASCII)
_PAIR_VALUE_RE = re.compile(r"\"[^\"\\]*(?:\\.[^\"\\]*)*\"|[^\s\"]+", re.ASCII)
# key=value pairs in free text that carry ids: taken as ids (0 trace, 1 span, 2 request) so
# the whole-line scan can skip what they already gave.
_PAIR_ID_ROLES: dict[str, int] = {
    "trace_id": 0,
    "traceid": 0,
    "traceId": 0,
    "traceID": 0,
    "trace-id": 0,
    "span_id": 1,
    "spanid": 1,
    "spanId": 1,
    "spanID": 1,
    "span-id": 1,
    "request_id": 2,
    "requestId": 2,
    "requestID": 2,
    "request-id": 2,
    "req_id": 2,
    "reqId": 2,
    "correlation_id": 2,
    "correlationId": 2,
}


def _access(match: re.Match[str], line: str) -> ParsedLine | None:
    client, _ident, user, stamp, request, status, size, referer, agent = match.groups()
    stamp_match = _ACCESS_TIME_RE.match(stamp)
    if stamp_match is None:
        return None
    attrs: dict[str, object] = {}
    if client is not None:
        attrs["client.address"] = client
        if user != "-":
            attrs["user.name"] = user
    parts = request.split(" ")
    if len(parts) == 3 and parts[0] in _METHODS:
        attrs["http.request.method"] = parts[0]
        attrs["url.original"] = parts[1]
        attrs["network.protocol.name"], _, version = parts[2].partition("/")
        attrs["network.protocol.version"] = version
    else:
        attrs["http.request.line"] = request
    code = int(status)
    attrs["http.response.status_code"] = code
    if size != "-":
        attrs["http.response.body.size"] = int(size)
    if referer is not None:
        if referer != "-":
            attrs["http.request.header.referer"] = referer
        if agent != "-":
            attrs["user_agent.original"] = agent
    rest = line[match.end() :].strip()
    if rest:
        attrs["log.extra"] = rest
    trace, span, request_id = scan_ids(line)
    return ParsedLine(
        clf_match_to_ns(stamp_match),
        http_status_level(code),
        line,
        trace,
        span,
        request_id,
        attrs,
    )


def _rfc5424(match: re.Match[str], line: str) -> ParsedLine | None:
    pri, _version, stamp, host, app, procid, msgid, data = match.groups()
    priority = int(pri)
    if priority > 191:
        return None
    time_ns = None
    if stamp != "-":
        stamp_match = ISO_RE.fullmatch(stamp)
        if stamp_match is None:
            return None
        time_ns = iso_match_to_ns(stamp_match)
    attrs: dict[str, object] = {"syslog.facility": priority >> 3}
    if host != "-":
        attrs["host.name"] = host
    if app != "-":
        attrs["process.executable.name"] = app
    if procid != "-":
        if procid.isascii() and procid.isdigit():
            attrs["process.pid"] = int(procid)
        else:
            attrs["syslog.procid"] = procid
    if msgid != "-":
        attrs["syslog.msgid"] = msgid
    if data != "-":
        for element in _SD_ELEMENT_RE.finditer(data):
            sd_id = element.group(1)
            for name, value in _SD_PARAM_RE.findall(element.group(2)):
                if "\\" in value:
                    value = _SD_UNESCAPE_RE.sub(r"\1", value)
                attrs[sd_id + "." + name] = value
    message = line[match.end() :]
    if message.startswith("\ufeff"):
        message = message[1:]
    trace, span, request_id = scan_ids(line)
    return ParsedLine(
        time_ns,
        syslog_severity_level(priority & 7),
        message,
        trace,
        span,
        request_id,
        attrs,
    )


def _rfc3164(match: re.Match[str], line: str) -> ParsedLine | None:
    pri, mon, day, tod, frac, host, tag, pid = match.groups()
    attrs: dict[str, object] = {}
    level = None
    if pri is not None:
        priority = int(pri)
        if priority > 191:
            return None
        level = syslog_severity_level(priority & 7)
        attrs["syslog.facility"] = priority >> 3
    month = _MONTHS.get(mon)
    if month is None:
        return None
    hour, minute, second = int(tod[0:2]), int(tod[3:5]), int(tod[6:8])
    if hour > 23 or minute > 59 or second > 60:
        return None
    frac_ns = int(frac) * _FRAC_MUL[len(frac)] if frac else 0
    time_ns = yearless_to_ns(month, int(day), hour * 3600 + minute * 60 + second, frac_ns)
    if host is not None:
        attrs["host.name"] = host
    attrs["process.executable.name"] = tag
    if pid:
        attrs["process.pid"] = int(pid) if pid.isascii() and pid.isdigit() else pid
    trace, span, request_id = scan_ids(line)
    return ParsedLine(time_ns, level, line[match.end() :], trace, span, request_id, attrs)


def _klog(match: re.Match[str], line: str) -> ParsedLine:
    letter, month, day, hour, minute, second, frac, thread, source = match.groups()
    tod = int(hour) * 3600 + int(minute) * 60 + int(second)
    frac_ns = int(frac) * _FRAC_MUL[len(frac)] if frac else 0
    time_ns = None
    if int(hour) < 24 and int(minute) < 60 and int(second) <= 60:
        time_ns = yearless_to_ns(int(month), int(day), tod, frac_ns)
    attrs: dict[str, object] = {"thread.id": int(thread), "code.location": source}
    trace, span, request_id = scan_ids(line)
    return ParsedLine(
        time_ns, _KLOG_LEVELS[letter], line[match.end() :], trace, span, request_id, attrs
    )


def _ruby(match: re.Match[str], line: str) -> ParsedLine | None:
    stamp, pid, word, progname = match.groups()
    stamp_match = ISO_RE.fullmatch(stamp)
    if stamp_match is None:
        return None
    attrs: dict[str, object] = {"process.pid": int(pid)}
    if progname:
        attrs["logger.name"] = progname
    trace, span, request_id = scan_ids(line)
    return ParsedLine(
        iso_match_to_ns(stamp_match),
        text_level(word),
        line[match.end() :],
        trace,
        span,
        request_id,
        attrs,
    )


def _morgan(match: re.Match[str], line: str, dev: bool) -> ParsedLine | None:
    method, target, status, first, second = match.groups()
    if method not in _METHODS:
        return None
    code = int(status)
    attrs: dict[str, object] = {
        "http.request.method": method,
        "url.original": target,
        "http.response.status_code": code,
    }
    duration, size = (first, second) if dev else (second, first)
    attrs["http.server.request.duration_ms"] = float(duration)
    if size != "-":
        attrs["http.response.body.size"] = int(size)
    trace, span, request_id = scan_ids(line)
    return ParsedLine(None, http_status_level(code), line, trace, span, request_id, attrs)


def _rails_started(match: re.Match[str], line: str) -> ParsedLine:
    method, target, client = match.groups()
    found = leading_timestamp(line, match.end())
    attrs: dict[str, object] = {
        "http.request.method": method,
        "url.original": target,
        "client.address": client,
    }
    trace, span, request_id = scan_ids(line)
    return ParsedLine(
        None if found is None else found[0], INFO, line, trace, span, request_id, attrs
    )


def _search_level(line: str, start: int, stop: int) -> str | None:
    match = _LEVEL_WORD_RE.search(line, start, stop)
    while match is not None:
        begin, end = match.span()
        word = match.group()
        if word[0] == "[":
            return text_level(word[1:-1])
        if (not begin or line[begin - 1] not in _WORD_CHARS) and (
            end >= len(line) or line[end] not in _WORD_CHARS
        ):
            return text_level(word)
        match = _LEVEL_WORD_RE.search(line, end, stop)
    return None


def _exception_level(line: str) -> str | None:
    # A bare stack trace or exception header carries no level but is an error all the same.
    return ERROR if _EXCEPTION_HEAD_RE.match(line) else None


def _text_pairs(
    line: str, start: int, end: int, equals: int, attrs: dict[str, object]
) -> tuple[bytes | None, bytes | None, str | None]:
    """Copy ``key=value`` pairs between ``start`` and ``end`` into ``attrs``; ids come back.

    Each '=' is checked once: the key is matched backwards at most ``_MAX_KEY`` characters
    and a value is consumed only after its key matched, so hostile lines stay linear.
    """
    trace: bytes | None = None
    span: bytes | None = None
    request: str | None = None
    while equals >= 0:
        floor = equals - _MAX_KEY if equals - _MAX_KEY > start else start
        key_start = line.rfind(" ", floor, equals) + 1
        if key_start < floor:
            key_start = floor
        if key_start < equals and line[key_start] in "[({,":
            key_start += 1
        if key_start < equals and _PAIR_KEY_RE.fullmatch(line, key_start, equals):
            value_match = _PAIR_VALUE_RE.match(line, equals + 1, end)
            if value_match is not None:
                key = line[key_start:equals]
                value = value_match.group()
                if value[0] == '"':
                    value = value[1:-1]
                role = _PAIR_ID_ROLES.get(key)
                if role is None:
                    attrs[key] = value
                elif role == 0 and trace is None:
                    trace = trace_id_value(value.rstrip(")]},;"))
                elif role == 1 and span is None:
                    span = span_id_value(value.rstrip(")]},;"))
                elif role == 2 and request is None:
                    request = request_id_value(value.rstrip(")]},;"))
                equals = line.find("=", value_match.end(), end)
                continue
        equals = line.find("=", equals + 1, end)
    return trace, span, request


def _generic(line: str) -> ParsedLine:
    """Optional leading level, optional timestamp, optional level, then the message."""
    time_ns: int | None = None
    level: str | None = None
    pos = 0
    first = line[:1]
    level_first = False
    if "A" <= first <= "z" or first == "[":
        match = _LEVEL_FIRST_RE.match(line)
        if match is not None:
            opened, word, closed = match.groups()
            upper = word.isupper()
            if upper or opened or line[match.end(2) + len(closed) : match.end()][:1] == ":":
                level = text_level(word)
                # "ERROR ...", "[INFO] ..." drop the word; "Error: boom" is kept whole.
                if level is not None and (upper or opened) and (not opened or closed):
                    pos = match.end()
                    level_first = True
    stamp_at = pos + 1 if line[pos : pos + 1] == "[" else pos
    if line[stamp_at + 4 : stamp_at + 5] == "-":  # ISO, the most common: skip a call
        iso = ISO_RE.match(line, stamp_at)
        found = None
        if iso is not None:
            iso_ns = iso_match_to_ns(iso)
            if iso_ns is not None:
                found = (iso_ns, iso.end())
    else:
        found = leading_timestamp(line, stamp_at)
    if found is not None:
        time_ns, end = found
        if stamp_at != pos:
            if line[end : end + 1] != "]":
                time_ns = None
            else:
                end += 1
        if time_ns is not None:
            pos = end
            if level is None:
                after = _LEVEL_AFTER_RE.match(line, pos)
                if after is not None:
                    level = text_level(after.group(1))
                    if level is not None:
                        pos = after.end()
    newline = line.find("\n")
    head_end = len(line) if newline < 0 else newline
    if level is None:
        stop = pos + _LEVEL_SEARCH_SPAN
        level = _search_level(line, pos, stop if stop < head_end else head_end)
        if level is None:
            level = _exception_level(line)
    if pos:
        message = line[pos:]
        if not level_first or time_ns is not None:
            message = message.lstrip(_SEPARATORS)
    else:
        message = line
    attrs: dict[str, object] = {}
    equals = line.find("=", pos, head_end)
    if equals >= 0:
        trace, span, request_id = _text_pairs(line, pos, head_end, equals, attrs)
        if trace is None or span is None or request_id is None:
            found_trace, found_span, found_request = scan_ids(
                line, trace is None, span is None, request_id is None
            )
            trace = trace or found_trace
            span = span or found_span
            request_id = request_id or found_request
    else:
        trace, span, request_id = scan_ids(line)
    return ParsedLine(time_ns, level, message, trace, span, request_id, attrs)


def parse_text(line: str) -> ParsedLine:
    """ParsedLine for a plain-text line; always succeeds (the whole line is the fallback)."""
    if "\x1b" in line:
        line = _ANSI_RE.sub("", line)
    first = line[:1]
    if first == "<":
        match = _RFC5424_RE.match(line)
        if match is not None:
            result = _rfc5424(match, line)
            if result is not None:
                return result
        match = _RFC3164_RE.match(line)
        if match is not None:
            result = _rfc3164(match, line)
            if result is not None:
                return result
    elif '] "' in line:
        match = _ACCESS_RE.match(line)
        if match is not None:
            result = _access(match, line)
            if result is not None:
                return result
    if "A" <= first <= "Z":
        second = line[1:2]
        if second == "," and line[2:4] == " [":
            match = _RUBY_RE.match(line)
            if match is not None:
                result = _ruby(match, line)
                if result is not None:
                    return result
        elif "0" <= second <= "9" and first in "IWEF":
            match = _KLOG_RE.match(line)
            if match is not None:
                return _klog(match, line)
        elif first in "JFMASOND" and line[3:4] == " ":
            match = _RFC3164_RE.match(line)
            if match is not None:
                result = _rfc3164(match, line)
                if result is not None:
                    return result
        elif first == "S" and line.startswith("Started "):
            match = _RAILS_STARTED_RE.match(line)
            if match is not None:
                return _rails_started(match, line)
        elif first == "C" and line.startswith("Completed "):
            match = _RAILS_COMPLETED_RE.match(line)
            if match is not None:
                code = int(match.group(1))
                trace, span, request_id = scan_ids(line)
                return ParsedLine(
                    None,
                    http_status_level(code),
                    line,
                    trace,
                    span,
                    request_id,
                    {"http.response.status_code": code},
                )
        if line.endswith(" ms") or line.endswith("-") or line[-1:].isdigit():
            match = _MORGAN_DEV_RE.match(line) or _MORGAN_TINY_RE.match(line)
            if match is not None:
                result = _morgan(match, line, match.re is _MORGAN_DEV_RE)
                if result is not None:
                    return result
    return _generic(line)
