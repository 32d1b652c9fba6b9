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

    def records(self, lines: Sequence[str], *, now_ns: int | None = None) -> list[Record]:
        """One record per line; a line without a timestamp gets ``now_ns`` (default now)."""
        now = time.time_ns() if now_ns is None else now_ns
        out = []
        for line in lines:
            parsed = self._parser.parse(line)
            attributes = (
                {**self._attributes, **parsed.attributes}
                if parsed.attributes
                else dict(self._attributes)
            )
            out.append(
                Record(
                    time_ns=parsed.time_ns or now,
                    source=self._source,
                    level=parsed.level or "info",
                    message=parsed.message,
                    service=self._service,
                    trace_id=parsed.trace_id,
                    span_id=parsed.span_id,
                    correlation_id=parsed.request_id,
                    tags=self._tags,
                    attributes=attributes,
                )
            )
        return out
