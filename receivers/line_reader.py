"""Offset-tracked line reading: bytes read from a file -> lines -> grouped records, and the
byte offset up to which every record was handed over.

Both tailers (``receivers/file_tail`` for local files, ``receivers/ssh_tail`` over SFTP) read
a file in chunks from a byte offset and must commit an offset only past records the sink
accepted, so a restart or reconnect neither skips nor repeats a line. ``LineReader`` is that
bookkeeping; the tailers own the I/O, rotation and delivery.

Offsets: the caller advances ``read_offset`` past a chunk, then passes the chunk to
``split``. Every line fed to the grouper has its end offset queued in ``line_ends``; when the
grouper hands back a record of n lines, n ends are taken and ``ready_end`` becomes the end
of its last line. ``accepted()`` (the sink took ``ready``) moves ``committed`` there. A line
still without its newline (``partial``) or still in the grouper is never committed.

Over-long lines (a run of more than ``max_line_bytes`` without a newline) follow
``long_lines``:

* ``TRUNCATE`` keeps the first ``max_line_bytes`` of the line and drops the rest up to its
  newline; every cut line is counted as ``truncated_lines``. The file tailer uses it: one
  record per line, memory bounded by one line.
* ``SPLIT`` cuts the run into lines of ``max_line_bytes`` and keeps every byte; a line whose
  newline is in the same chunk as its start is kept whole (at most ``max_line_bytes`` plus
  one read). The SSH tailer uses it: nothing read is dropped.
"""

from __future__ import annotations

from collections import Counter, deque
from enum import Enum

from receivers.log_parser.multiline import MultilineGrouper

__all__ = ["LineReader", "LongLines"]


class LongLines(Enum):
    """What happens to a run of more than ``max_line_bytes`` bytes without a newline."""

    TRUNCATE = "truncate"
    SPLIT = "split"


class LineReader:
    """One file's reading state from ``offset`` on. Not thread-safe; feed it in file order."""

    __slots__ = (
        "_split_long",
        "committed",
        "counts",
        "grouper",
        "line_ends",
        "lines",
        "max_line_bytes",
        "partial",
        "read_offset",
        "ready",
        "ready_end",
        "skipping",
    )

    def __init__(
        self, offset: int, *, max_line_bytes: int, long_lines: LongLines, counts: Counter[str]
    ) -> None:
        self.max_line_bytes = max_line_bytes
        self._split_long = long_lines is LongLines.SPLIT
        self.counts = counts  # "lines", and "truncated_lines" under TRUNCATE
        self.read_offset = offset  # bytes read (lines split off or held in ``partial``)
        self.committed = offset  # bytes whose lines the sink accepted
        self.partial = b""  # the last line, while it has no newline
        self.skipping = False  # inside an over-long line whose head was already cut off
        self.grouper = MultilineGrouper()
        self.line_ends: deque[int] = deque()  # end offsets of lines inside the grouper
        self.ready: list[str] = []  # grouped records the sink has not accepted yet
        self.ready_end = offset  # ``committed`` once ``ready`` is accepted
        self.lines = 0

    def split(self, data: bytes) -> None:
        """Cut ``data`` (read at ``read_offset - len(data)``) into lines for the grouper."""
        end = self.read_offset - len(data) - len(self.partial)
        buf = self.partial + data if self.partial else data
        pieces = buf.split(b"\n")
        tail = pieces.pop()
        for piece in pieces:
            end += len(piece) + 1
            if self.skipping:
                self.skipping = False  # the rest of an over-long line: dropped
                if not self.line_ends:
                    self.ready_end = end
                continue
            self.emit_line(piece, end)
        limit = self.max_line_bytes
        if self._split_long:
            while len(tail) > limit:
                end += limit
                self.emit_line(tail[:limit], end)
                tail = tail[limit:]
        elif len(tail) > limit and not self.skipping:
            self.skipping = True  # counted as truncated by emit_line
            self.emit_line(tail[:limit], end + limit)
            tail = b""
        elif self.skipping:
            tail = b""
        self.partial = tail

    def emit_line(self, raw: bytes, end: int) -> None:
        """One line (without its newline) ending at offset ``end`` into the grouper."""
        if not self._split_long:
            if len(raw) > self.max_line_bytes:
                raw = raw[: self.max_line_bytes]
                self.counts["truncated_lines"] += 1
            elif self.skipping:
                self.counts["truncated_lines"] += 1
        text = raw.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        self.lines += 1
        self.counts["lines"] += 1
        self.line_ends.append(end)
        for record in self.grouper.feed(text):
            self._ready(record)

    def finish_partial(self) -> None:
        """The last line has no newline but is complete (idle long enough, file finished)."""
        if self.partial:
            self.emit_line(self.partial, self.read_offset)
            self.partial = b""

    def flush_grouper(self) -> bool:
        """The pending multi-line record is complete: make it ready. True if there was one."""
        records = self.grouper.flush()
        for record in records:
            self._ready(record)
        return bool(records)

    def accepted(self) -> bool:
        """The sink took ``ready``: commit past it. True if ``committed`` moved."""
        self.ready = []
        if self.committed == self.ready_end:
            return False
        self.committed = self.ready_end
        return True

    def _ready(self, record: str) -> None:
        ends = self.line_ends
        last = self.ready_end
        for _ in range(record.count("\n") + 1):
            if not ends:
                break
            last = ends.popleft()
        self.ready.append(record)
        self.ready_end = last
