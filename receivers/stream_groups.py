"""Multi-line grouping for output posted in raw blocks: one grouper per stream, kept between
the blocks, so a stack trace cut by a block boundary is still one record.

``gasoline-run`` posts its output this way, so that it does no per-line work while the
command runs. A block ends with ``end`` when the stream went quiet: the pending record is
complete then. A stream that stops posting without one (its wrapper was killed) has its
pending record handed over when it is evicted: after ``idle_s`` without a block, or when
more than ``max_streams`` streams are kept.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from receivers.log_parser.multiline import MultilineGrouper
from receivers.log_records import LogLines

__all__ = ["StreamGroups", "StreamKey"]

StreamKey = tuple[str, str, tuple[str, ...], str]
"""Whose stream: the poster's service, source and tags, and its stream id."""


@dataclass(slots=True)
class _Stream:
    grouper: MultilineGrouper
    parser: LogLines
    seen: float


class StreamGroups:
    """Only used from the event loop's thread."""

    def __init__(
        self,
        *,
        max_streams: int = 1024,
        idle_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._streams: OrderedDict[StreamKey, _Stream] = OrderedDict()
        self._max = max_streams
        self._idle_s = idle_s
        self._clock = clock

    def trial(self, stream: StreamKey) -> MultilineGrouper:
        """A copy of ``stream``'s grouper to feed a block through; ``commit`` it once the
        records it gave were accepted, so a refused block leaves the stream as it was."""
        kept = self._streams.get(stream)
        return MultilineGrouper() if kept is None else kept.grouper.copy()

    def commit(
        self, stream: StreamKey, grouper: MultilineGrouper, parser: LogLines
    ) -> list[tuple[LogLines, list[str]]]:
        """Keep ``grouper`` as ``stream``'s state. Returns the pending records of the
        streams evicted meanwhile, with the parser of each, for the caller to offer."""
        self._streams[stream] = _Stream(grouper, parser, self._clock())
        self._streams.move_to_end(stream)
        evicted: list[tuple[LogLines, list[str]]] = []
        now = self._clock()
        while self._streams:
            oldest_name, oldest = next(iter(self._streams.items()))
            if len(self._streams) <= self._max and now - oldest.seen < self._idle_s:
                break
            del self._streams[oldest_name]
            records = oldest.grouper.flush()
            if records:
                evicted.append((oldest.parser, records))
        return evicted

    def __len__(self) -> int:
        return len(self._streams)
