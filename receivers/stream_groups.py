"""Raw output posted in blocks: its lines, and multi-line grouping with one grouper per
stream, kept between the blocks, so a stack trace cut by a block boundary is still one record.

``gasoline-run`` posts its output this way, so that it does no per-line work while the
command runs: line endings, colour codes and overlong lines are dealt with here. The pipeline
parses blocks in the order they were offered, on one thread, so a stream's grouper is only
ever used there, one block after the other. A block posted with ``end`` (the stream went
quiet) completes the stream's last record. A stream that stops posting without one (its
wrapper was killed) has its last record handed over when it is evicted: after ``idle_s``
without a block, or when more than ``max_streams`` are kept.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import overload

from collector.model import Record
from receivers.log_parser.multiline import MultilineGrouper
from receivers.log_records import LogLines

__all__ = ["MAX_LINE_CHARS", "OutputLines", "StreamBlock", "StreamGroups", "StreamKey"]

MAX_LINE_CHARS = 64 * 1024
"""Longer lines of raw output are cut to this many characters."""

# SGR and other CSI sequences: colours mean nothing to the log parser and hide levels.
_CSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

StreamKey = tuple[str, str, tuple[str, ...], str]
"""Whose stream: the poster's service, source and tags, and its stream id."""


class OutputLines(Sequence[str]):
    """The lines of raw output (joined by newlines), split when first read: on the pipeline's
    parse thread, not in the request that brought them. Counting them needs no split, as
    neither decoding, nor dropping the CRs of CRLF endings and colour codes, nor cutting lines
    at ``MAX_LINE_CHARS`` adds or removes a newline."""

    __slots__ = ("_count", "_lines", "_raw")

    def __init__(self, raw: bytes | str) -> None:
        self._raw = raw
        newlines = raw.count(b"\n") if isinstance(raw, bytes) else raw.count("\n")
        self._count = newlines + 1 if raw else 0
        self._lines: list[str] | None = None

    def __len__(self) -> int:
        return self._count

    def __sizeof__(self) -> int:
        """What the output holds while it waits to be split (the pipeline bounds it)."""
        return object.__sizeof__(self) + len(self._raw) + 64 * self._count

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if self._lines is None:
            raw = self._raw
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
            self._lines = _split(text) if self._count else []
            self._raw = ""
        return self._lines[index]


def _split(text: str) -> list[str]:
    # Each step runs over the whole text at C speed, and only when needed: most output has
    # no CR, no colour and no overlong line.
    if "\r" in text:
        text = text.replace("\r\n", "\n").removesuffix("\r")
    if "\x1b" in text:
        text = _CSI_RE.sub("", text)
    lines = text.split("\n")
    if max(map(len, lines)) > MAX_LINE_CHARS:
        lines = [line[:MAX_LINE_CHARS] for line in lines]
    return lines


class _Stream:
    __slots__ = ("grouper", "parser", "seen")

    def __init__(self, parser: LogLines, seen: float) -> None:
        self.grouper = MultilineGrouper()
        self.parser = parser
        self.seen = seen


class StreamBlock:
    """One posted block of a stream, as the pipeline's ``LineSource``: lines are grouped
    with what the stream held from its earlier blocks, then parsed."""

    __slots__ = ("_end", "_stream")

    def __init__(self, stream: _Stream, end: bool) -> None:
        self._stream = stream
        self._end = end

    def records(
        self, lines: Sequence[str], *, now_ns: int | None = None, last: bool = True
    ) -> list[Record]:
        grouper = self._stream.grouper
        grouped = grouper.feed_all(lines)
        if last and self._end:
            grouped += grouper.flush()
        return self._stream.parser.records(grouped, now_ns=now_ns) if grouped else []


class StreamGroups:
    """The streams posting blocks; used from the event loop's thread only."""

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

    def block(
        self, key: StreamKey, parser: LogLines, *, end: bool
    ) -> tuple[StreamBlock, list[StreamBlock]]:
        """The source for one block of stream ``key``, and closing blocks (no lines, ``end``)
        for the streams evicted meanwhile, to be offered after it."""
        now = self._clock()
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream(parser, now)
        else:
            stream.seen = now
            self._streams.move_to_end(key)
        evicted: list[StreamBlock] = []
        while len(self._streams) > 1:
            oldest_key, oldest = next(iter(self._streams.items()))
            if len(self._streams) <= self._max and now - oldest.seen < self._idle_s:
                break
            del self._streams[oldest_key]
            evicted.append(StreamBlock(oldest, end=True))
        return StreamBlock(stream, end), evicted

    def single(self, parser: LogLines) -> StreamBlock:
        """The source for a block that is a stream of its own: grouped alone, complete."""
        return StreamBlock(_Stream(parser, self._clock()), end=True)

    def __len__(self) -> int:
        return len(self._streams)
