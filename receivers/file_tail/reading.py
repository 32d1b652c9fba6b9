"""One tailed file: its descriptor and identity, around the shared offset-tracked reader.

Every grouped record knows the file offset just past its last line (``receivers/
line_reader.py``), so the receiver can commit an offset only once the sink accepted every
line before it. Over-long lines are truncated: the first ``max_line_bytes`` are kept.
"""

from __future__ import annotations

import os
import time
from collections import Counter

from receivers.line_reader import LineReader, LongLines
from receivers.log_records import LogLines

__all__ = ["FileId", "TailedFile"]

FileId = tuple[int, int]
"""(st_dev, st_ino): what identifies a file across renames."""


class TailedFile(LineReader):
    """One open file being tailed. Offsets are byte positions in the file."""

    __slots__ = (
        "error",
        "fd",
        "fingerprint",
        "id",
        "idle_since",
        "log_lines",
        "orphan",
        "path",
        "size",
    )

    def __init__(
        self,
        path: str,
        fd: int,
        st: os.stat_result,
        fingerprint: bytes,
        offset: int,
        *,
        max_line_bytes: int,
        counts: Counter[str],
    ) -> None:
        super().__init__(
            offset, max_line_bytes=max_line_bytes, long_lines=LongLines.TRUNCATE, counts=counts
        )
        self.path = path
        self.fd = fd
        self.id: FileId = (st.st_dev, st.st_ino)
        self.fingerprint = fingerprint
        self.size = st.st_size
        self.idle_since = time.monotonic()
        self.orphan = False
        self.error: str | None = None
        self.log_lines: LogLines | None = None

    def split(self, data: bytes) -> None:
        """As ``LineReader.split``; new bytes also restart the idle clock."""
        super().split(data)
        if data:
            self.idle_since = time.monotonic()
