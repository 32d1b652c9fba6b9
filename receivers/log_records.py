"""Plain log lines to records: one conversion for every log source.

The wrapper (``gasoline-run``), the file tailer and the SSH tailer all hand grouped
lines (a multi-line record is one string) to ``LogLines``, which parses them and builds
``Record``s tagged with where they came from.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from collector.model import Record
from receivers.log_parser import LineParser

__all__ = ["LogLines"]


class LogLines:
    """Parses lines of one source into records. Cheap to keep one per source."""

    __slots__ = ("_attributes", "_parser", "_service", "_source", "_tags")

    def __init__(
        self,
        *,
        service: str = "",
        source: str = "backend",
        tags: Sequence[str] = (),
        attributes: Mapping[str, Any] | None = None,
        patterns: Sequence[str] = (),
    ) -> None:
        """``patterns``: user regexes with named groups; ValueError names a bad one."""
        self._parser = LineParser(patterns=patterns)
        self._service = service or next((t[8:] for t in tags if t.startswith("service:")), "")
        self._source = source
        self._tags = tuple(tags)
        self._attributes = dict(attributes or {})

    def records(
        self, lines: Sequence[str], *, now_ns: int | None = None, last: bool = True
    ) -> list[Record]:
        """One record per line; a line without a timestamp gets ``now_ns`` (default now)."""
        now = time.time_ns() if now_ns is None else now_ns
        parse = self._parser.parse
        source, service, tags, extra = self._source, self._service, self._tags, self._attributes
        out = []
        for line in lines:
            parsed = parse(line)
            attributes = {**extra, **parsed.attributes} if parsed.attributes else dict(extra)
            # Positional: keyword arguments cost a dataclass __init__ three times as much.
            # Order: time_ns, source, level, message, service, trace_id, span_id,
            # correlation_id, tags, attributes.
            out.append(
                Record(
                    parsed.time_ns or now,
                    source,
                    parsed.level or "info",
                    parsed.message,
                    service,
                    parsed.trace_id,
                    parsed.span_id,
                    parsed.request_id,
                    tags,
                    attributes,
                )
            )
        return out
