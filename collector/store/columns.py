"""The columns of a block (format 3): each field of its records apart, so that each
compresses with its like, and a query decompresses only the columns it asks.

- ``id_delta``, ``time_delta``: 64-bit deltas, each from the row before;
- ``source``, ``level``, ``service``, ``kind``: 16-bit codes into the head's tables;
- ``flags``: a byte a row, whether it has a trace id (1) and a span id (2);
- ``trace_id``, ``span_id``: the ids of the rows flagged, 16 and 8 bytes each;
- ``message``: a JSON array of the messages with a newline between items, so the
  message of row *i* is line *i* (JSON escapes every newline in a string) and a text is
  found in it before any parsing;
- ``extra``: the rest of each row (correlation id, tags, attributes) as a flat JSON
  array, one a row, ``[]`` for none; rows end at ``]\\n[``, which a flat array of scalars
  holds nowhere else. An attribute whose value (a string, or an integer's digits) is in
  the message is kept as where it is (from the end of the one before) and how long, not
  as a copy: a parsed access log line holds eight;
- ``lines``: where every 256th item of ``message`` and of ``extra`` starts, so a few
  rows cost a stretch of each to split, not the whole column.

Measured on retention_bench's lines (``--compare``), zstandard level 9, bytes a record
of the columns: 31.7 for the write-ahead rows compressed whole, 24.0 for these columns,
21.6 with the attributes found in the message (of them: message 9.3, trace ids 5.6,
extra 4.0, span ids 1.2, time 1.1).
"""

from __future__ import annotations

import array
import bisect
import itertools
import json
import operator
import re
from collections.abc import Callable, Sequence
from typing import Any

from collector.model import Record

__all__ = [
    "CATEGORIES",
    "Columns",
    "encode_columns",
    "encode_messages",
    "json_default",
    "message_rows",
]

CATEGORIES = ("source", "level", "service", "kind")
_TRACE, _SPAN = 1, 2
_ROW_END = b"]\n["
_SAMPLE = 256  # rows a stretch of the ``lines`` column's index
# Up to this many rows, their running sums and ranks are taken one by one (a C pass over
# the column up to each); more share one pass over the column, kept for the next ask.
_FEW = 2
_TRACE_BIT = bytes(i & _TRACE for i in range(256))
_SPAN_BIT = bytes((i & _SPAN) >> 1 for i in range(256))
_TIMES_SPAN = bytes((i * _SPAN) & 255 for i in range(256))
# What of a text is the same in every case (digits, punctuation, spaces: not letters):
# its longest run is found in the messages as is, before they are lowercased; the lines
# it is in are asked alone up to this many.
_CASELESS = re.compile(r"[^A-Za-z]+")
_FEW_LINES = 64
# What follows an attribute's key in an ``extra`` row: its value as is; a JSON text of a
# list or map (a row stays flat); a string or an integer found in the message (its
# distance from the end of the last one found, and its length); or, for the rare id that
# is not 16 or 8 bytes, that id in hex (the key is "").
_PLAIN, _NESTED, _STR_IN_MESSAGE, _INT_IN_MESSAGE, _ODD_TRACE, _ODD_SPAN = range(6)


def json_default(value: object) -> object:
    """What JSON cannot hold: bytes as hex, the rest as text (as the write-ahead rows)."""
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


_JSON = json.JSONEncoder(separators=("\n", ":"), default=json_default)


def encode_columns(
    records: Sequence[Record], tables: dict[str, list[str]]
) -> list[tuple[str, bytes]]:
    """The columns of ``records``, whose categories are those in ``tables``."""
    columns = [
        ("id_delta", _deltas([r.id for r in records])),
        ("time_delta", _deltas([r.time_ns for r in records])),
    ]
    for name in CATEGORIES:  # map() over C callables: a block's worth in C
        code = {value: i for i, value in enumerate(tables[name])}
        values = map(code.__getitem__, map(operator.attrgetter(name), records))
        columns.append((name, array.array("H", values).tobytes()))
    traces = [
        r.trace_id if r.trace_id is not None and len(r.trace_id) == 16 else b"" for r in records
    ]
    spans = [r.span_id if r.span_id is not None and len(r.span_id) == 8 else b"" for r in records]
    has_span = bytes(map(bool, spans)).translate(_TIMES_SPAN)
    columns += [
        ("flags", bytes(map(operator.or_, map(bool, traces), has_span))),
        ("trace_id", b"".join(traces)),
        ("span_id", b"".join(spans)),
    ]
    messages = encode_messages([r.message for r in records])
    extras = _JSON.encode([_extra(r) for r in records]).encode()
    starts = _starts(messages[1:-1], b"\n") + _starts(extras[2:-2], _ROW_END)
    columns += [("message", messages), ("extra", extras), ("lines", starts)]
    return columns


def _starts(body: bytes, separator: bytes) -> bytes:
    """Where every ``_SAMPLE``-th item of a column starts (of its body, within the
    brackets): row *i* is then found by splitting one stretch of the column."""
    ends = itertools.accumulate(
        (len(item) + len(separator) for item in body.split(separator)), initial=0
    )
    return array.array("q", itertools.islice(ends, 0, None, _SAMPLE)).tobytes()


def _deltas(values: list[int]) -> bytes:
    return array.array("q", map(operator.sub, values, [0, *values])).tobytes()


def _extra(r: Record) -> list[Any]:
    """A row's correlation id, tags and attributes as a flat array (``[]``: none)."""
    odd_trace = r.trace_id is not None and len(r.trace_id) != 16
    odd_span = r.span_id is not None and len(r.span_id) != 8
    if (
        r.correlation_id is None
        and not r.tags
        and not r.attributes
        and not odd_trace
        and not odd_span
    ):
        return []
    row: list[Any] = [r.correlation_id, len(r.tags), *r.tags]
    end = 0
    message = r.message
    for key, value in r.attributes.items():
        kind = type(value)
        if kind is str or (kind is int and -(2**63) <= value < 2**63):
            text = value if kind is str else str(value)
            at = message.find(text, end) if len(text) > 1 else -1
            if at >= 0:
                row += (
                    _STR_IN_MESSAGE if kind is str else _INT_IN_MESSAGE,
                    key,
                    at - end,
                    len(text),
                )
                end = at + len(text)
                continue
        if isinstance(value, list | tuple | dict):
            row += (_NESTED, key, json.dumps(value, separators=(",", ":"), default=json_default))
        else:
            row += (_PLAIN, key, value)
    if odd_trace:
        row += (_ODD_TRACE, "", r.trace_id.hex())  # type: ignore[union-attr]
    if odd_span:
        row += (_ODD_SPAN, "", r.span_id.hex())  # type: ignore[union-attr]
    return row


def encode_messages(messages: list[str]) -> bytes:
    """Messages as the ``message`` column holds them: a JSON array, an item a line."""
    return _JSON.encode(messages).encode()


def message_rows(
    messages: bytes, text: str, starts: Sequence[int] | None = None
) -> list[int] | None:
    """The rows of a ``message`` column whose message holds ``text`` in any case (or a
    superset), found in the JSON; None when the text could be escaped in JSON (not plain
    printable ASCII): the caller reads every row. ``starts``, where every ``_SAMPLE``-th
    message starts (a block's ``lines``), spares counting the lines before a match.

    The text's longest run that is the same in every case (digits, punctuation) is looked
    for as it is: absent, no row holds the text (most blocks a rare text's filter admits);
    found a few times, only the lines around it are lowercased and asked. Else the whole
    column is lowercased and searched."""
    if not text or not all(" " <= c <= "~" and c not in '"\\' for c in text):
        return None
    needle = text.lower().encode()
    run = max(_CASELESS.findall(text), key=len, default="").encode()
    if run:
        around = _rows_around(messages, run, needle, starts or [0])
        if around is not None:
            return around
    haystack = _folded(messages)
    rows: list[int] = []
    row = line_at = 0
    at = haystack.find(needle)
    while at != -1:
        row += haystack.count(b"\n", line_at, at)
        rows.append(row)
        line_at = haystack.find(b"\n", at)
        if line_at == -1:
            break
        at = haystack.find(needle, line_at)
        row += 1
        line_at += 1
    return rows


def _rows_around(
    messages: bytes, run: bytes, needle: bytes, starts: Sequence[int]
) -> list[int] | None:
    """The rows holding ``needle`` among the lines that hold ``run`` as it is; None when
    ``run`` is in more than ``_FEW_LINES`` lines (the caller searches the whole column)."""
    rows: list[int] = []
    row = counted = 0  # the row of the line at ``counted``
    at = messages.find(run)
    for _ in range(_FEW_LINES):
        if at == -1:
            return rows
        start = messages.rfind(b"\n", 0, at) + 1
        end = messages.find(b"\n", at)
        end = len(messages) if end == -1 else end
        if needle in _folded(messages[start:end]):
            # The stretch the line is in: ``starts`` are within the brackets.
            stretch = bisect.bisect_right(starts, max(start - 1, 0)) - 1
            if starts[stretch] + 1 > counted:
                row, counted = stretch * _SAMPLE, starts[stretch] + 1
            row += messages.count(b"\n", counted, start)
            counted = start
            rows.append(row)
        at = messages.find(run, end)
    return None if at != -1 else rows


def _folded(messages: bytes) -> bytes:
    """Messages' JSON lowercased as ASCII text is: K (Kelvin) and I with a dot lowercase
    to ASCII letters, and JSON escapes them (a row's newlines stay where they were)."""
    haystack = messages.lower()
    if b"\\u212a" in haystack or b"\\u0130" in haystack:
        haystack = haystack.replace(b"\\u212a", b"k").replace(b"\\u0130", b"i")
    return haystack


class Columns:
    """A block's columns, decompressed as they are first asked (``column``); every
    method raises ValueError (or kin) if they do not hold together."""

    def __init__(
        self, count: int, tables: dict[str, list[str]], column: Callable[[str], bytes]
    ) -> None:
        self.count = count
        self._tables = tables
        self._column = column
        self._cache: dict[str, bytes] = {}
        self._sums: dict[str, list[int]] = {}  # every row's running sum, once asked

    def _get(self, name: str) -> bytes:
        data = self._cache.get(name)
        if data is None:
            data = self._cache[name] = self._column(name)
        return data

    def ids(self) -> list[int]:
        return self._running("id_delta")

    def times(self) -> list[int]:
        return self._running("time_delta")

    def codes(self, name: str) -> array.array[int]:
        """Every row's code of a category (``source``...) into the head's table."""
        codes = array.array("H", self._get(name))
        if len(codes) != self.count:
            raise ValueError(f"column {name} holds {len(codes)} rows, the head says {self.count}")
        return codes

    def trace_rows(self, trace_id: bytes) -> list[int]:
        """The rows of one trace."""
        if len(trace_id) != 16:
            return [i for i, r in enumerate(self.records()) if r.trace_id == trace_id]
        ids = self._get("trace_id")
        found = []
        at = ids.find(trace_id)
        while at != -1:
            if at % 16 == 0:
                found.append(at // 16)
            at = ids.find(trace_id, at + 1)
        if not found:
            return []
        flagged = itertools.compress(range(self.count), self._get("flags").translate(_TRACE_BIT))
        rows = list(itertools.islice(flagged, found[-1] + 1))
        return [rows[k] for k in found]

    def text_rows(self, text: str) -> list[int] | None:
        """The rows whose message holds ``text`` (``message_rows``)."""
        return message_rows(self._get("message"), text, self._starts()[: self._per_column])

    @property
    def _per_column(self) -> int:
        """How many starts the ``lines`` column holds for each of its two columns."""
        return self.count // _SAMPLE + 1

    def _starts(self) -> array.array[int]:
        """The ``lines`` column: where every ``_SAMPLE``-th item of ``message`` starts, then
        of ``extra``."""
        starts = array.array("q", self._get("lines"))
        if len(starts) != 2 * self._per_column:
            raise ValueError("the lines column does not match the head's count")
        return starts

    def range_rows(self, since_ns: int, until_ns: int) -> list[int]:
        """The rows timed from ``since_ns`` to ``until_ns``."""
        return [i for i, t in enumerate(self.times()) if since_ns <= t <= until_ns]

    def records(self, rows: Sequence[int] | None = None) -> list[Record]:
        """Every row as a record, or those of ``rows`` (in order); a few rows cost their
        stretch of each column, not a pass over every row."""
        n = self.count
        rows = range(n) if rows is None else rows
        if not rows:
            return []
        tables = [self._tables[name] for name in CATEGORIES]
        codes = [self.codes(name) for name in CATEGORIES]
        flags = self._get("flags")
        if len(flags) != n:
            raise ValueError(f"the block's flags hold {len(flags)} rows, the head says {n}")
        traces, spans = self._get("trace_id"), self._get("span_id")
        trace_bits, span_bits = flags.translate(_TRACE_BIT), flags.translate(_SPAN_BIT)
        if trace_bits.count(1) * 16 != len(traces) or span_bits.count(1) * 8 != len(spans):
            raise ValueError("the block's trace or span id column does not match its flags")
        ids = self._running("id_delta", rows)
        times = self._running("time_delta", rows)
        trace_at = self._ranks("trace ranks", trace_bits, rows)
        span_at = self._ranks("span ranks", span_bits, rows)
        messages = self._items("message", rows)
        extras = self._items("extra", rows)
        out = []
        for k, i in enumerate(rows):
            f = flags[i]
            t, s = trace_at[k], span_at[k]
            record = Record(
                id=ids[k],
                time_ns=times[k],
                source=tables[0][codes[0][i]],
                level=tables[1][codes[1][i]],
                message=messages[k],
                service=tables[2][codes[2][i]],
                trace_id=traces[t * 16 : t * 16 + 16] if f & _TRACE else None,
                span_id=spans[s * 8 : s * 8 + 8] if f & _SPAN else None,
                kind=tables[3][codes[3][i]],
            )
            if extras[k]:
                _restore(record, extras[k])
            out.append(record)
        return out

    def _running(self, name: str, rows: Sequence[int] | None = None) -> list[int]:
        """The running sums of a delta column, every row's or those of ``rows``: past a
        few rows, from every row's (kept for the rows asked next)."""
        every = self._sums.get(name)
        if every is None:
            deltas = array.array("q", self._get(name))
            if len(deltas) != self.count:
                raise ValueError(
                    f"column {name} holds {len(deltas)} rows, the head says {self.count}"
                )
            if rows is not None and len(rows) <= _FEW:
                return [sum(deltas[: i + 1]) for i in rows]
            every = self._sums[name] = list(itertools.accumulate(deltas))
        return every if rows is None else [every[i] for i in rows]

    def _ranks(self, name: str, bits: bytes, rows: Sequence[int]) -> list[int]:
        """How many of ``bits`` (a 0 or 1 a row) are set before each of ``rows``: past a
        few rows, from every row's count (kept for the rows asked next)."""
        if len(rows) <= _FEW:
            return [bits.count(1, 0, i) for i in rows]
        before = self._sums.get(name)
        if before is None:
            before = self._sums[name] = list(itertools.accumulate(bits, initial=0))
        return [before[i] for i in rows]

    def _items(self, name: str, rows: Sequence[int]) -> list[Any]:
        """The items of the ``message`` or ``extra`` column for ``rows``: every row's in
        one parse, or those of the stretches that hold ``rows``, as the ``lines`` index
        points at them."""
        data = self._get(name)
        if len(rows) == self.count:
            items = json.loads(data.replace(b"\n", b","))
            if not isinstance(items, list) or len(items) != self.count:
                raise ValueError(f"column {name} does not hold {self.count} items")
            return items
        message = name == "message"
        # The items lie within the brackets (``[``, ``[[``): offsets into the column, not
        # a copy of its megabyte or two.
        base, separator = (1, b"\n") if message else (2, _ROW_END)
        starts, per_column = self._starts(), self._per_column
        stretches: dict[int, list[bytes]] = {}
        picked = []
        for row in rows:
            stretch = row // _SAMPLE
            if stretch not in stretches:
                at = (0 if message else per_column) + stretch
                end = (
                    base + starts[at + 1] - len(separator)
                    if stretch + 1 < per_column
                    else len(data) - base
                )
                stretches[stretch] = data[base + starts[at] : end].split(separator)
            picked.append(stretches[stretch][row % _SAMPLE])
        if message:
            return json.loads(b"[" + b",".join(picked) + b"]")  # type: ignore[no-any-return]
        return json.loads(b"[[" + b"],[".join(picked).replace(b"\n", b",") + b"]]")  # type: ignore[no-any-return]


def _restore(record: Record, row: list[Any]) -> None:
    """Set a record's correlation id, tags and attributes from its ``extra`` row."""
    record.correlation_id = row[0]
    n_tags = row[1]
    record.tags = tuple(row[2 : 2 + n_tags])
    attributes: dict[str, Any] = {}
    message = record.message
    end = 0
    i = 2 + n_tags
    while i < len(row):
        kind, key = row[i], row[i + 1]
        if kind in (_STR_IN_MESSAGE, _INT_IN_MESSAGE):
            at = end + row[i + 2]
            end = at + row[i + 3]
            text = message[at:end]
            attributes[key] = text if kind == _STR_IN_MESSAGE else int(text)
            i += 4
            continue
        value = row[i + 2]
        if kind == _PLAIN:
            attributes[key] = value
        elif kind == _NESTED:
            attributes[key] = json.loads(value)
        elif kind == _ODD_TRACE:
            record.trace_id = bytes.fromhex(value)
        elif kind == _ODD_SPAN:
            record.span_id = bytes.fromhex(value)
        else:
            raise ValueError(f"extra column has an unknown kind {kind!r}")
        i += 3
    record.attributes = attributes
