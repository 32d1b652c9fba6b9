"""One tailed file's reading state: bytes read -> lines -> grouped records, with offsets.

Every grouped record knows the file offset just past its last line, so the receiver can
commit an offset only once the sink accepted every line before it.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque

from receivers.log_parser.multiline import MultilineGrouper
from receivers.log_records import LogLines

__all__ = ["FileId", "TailedFile"]

FileId = tuple[int, int]
"""(st_dev, st_ino): what identifies a file across renames."""


class TailedFile:
    """One open file being tailed. Offsets are byte positions in the file."""

    __slots__ = (
        "committed",
        "error",
        "fd",
        "fingerprint",
        "grouper",
        "id",
        "idle_since",
        "line_ends",
        "lines",
        "log_lines",
        "orphan",
        "partial",
        "path",
        "read_offset",
        "ready",
        "ready_end",
        "size",
        "skipping",
    )

    def __init__(
        self, path: str, fd: int, st: os.stat_result, fingerprint: bytes, offset: int
    ) -> None:
        self.path = path
        self.fd = fd
        self.id: FileId = (st.st_dev, st.st_ino)
        self.fingerprint = fingerprint
        self.size = st.st_size
        self.read_offset = offset  # bytes read (lines split off or held in ``partial``)
        self.committed = offset  # bytes whose lines the sink accepted
        self.partial = b""  # the last line, while it has no newline
        self.skipping = False  # inside an over-long line whose head was already cut off
        self.grouper = MultilineGrouper()
        self.line_ends: deque[int] = deque()  # end offsets of lines inside the grouper
        self.ready: list[str] = []  # grouped records the sink has not accepted yet
        self.ready_end = offset
        self.lines = 0
        self.idle_since = time.monotonic()
        self.orphan = False
        self.error: str | None = None
        self.log_lines: LogLines | None = None

    def split(self, data: bytes, max_line_bytes: int, counts: Counter[str]) -> None:
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
            self.emit_line(piece, end, max_line_bytes, counts)
        if len(tail) > max_line_bytes and not self.skipping:
            self.skipping = True  # counted as truncated by emit_line
            self.emit_line(tail[:max_line_bytes], end + max_line_bytes, max_line_bytes, counts)
            tail = b""
        elif self.skipping:
            tail = b""
        self.partial = tail
        if data:
            self.idle_since = time.monotonic()

    def emit_line(self, raw: bytes, end: int, max_line_bytes: int, counts: Counter[str]) -> None:
        """One line (without its newline) ending at offset ``end`` into the grouper."""
        if len(raw) > max_line_bytes:
            raw = raw[:max_line_bytes]
            counts["truncated_lines"] += 1
        elif self.skipping:
            counts["truncated_lines"] += 1
        text = raw.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        self.lines += 1
        counts["lines"] += 1
        self.line_ends.append(end)
        for record in self.grouper.feed(text):
            self._ready(record)

    def flush_grouper(self) -> None:
        """The pending multi-line record is complete: make it ready."""
        for record in self.grouper.flush():
            self._ready(record)

    def _ready(self, record: str) -> None:
        ends = self.line_ends
        last = self.ready_end
        for _ in range(record.count("\n") + 1):
            if not ends:
                break
            last = ends.popleft()
        self.ready.append(record)
        self.ready_end = last
