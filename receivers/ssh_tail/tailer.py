"""Reading one remote file over SFTP from a byte offset, line by line, without loss or repeats.

``Position`` is what survives a reconnect: the committed offset (everything before it was
emitted and accepted by the sink) and a fingerprint of the file's first bytes. A
``RemoteTail`` lives for one connection; whatever it has read past the committed offset
(a partial line, lines still being grouped, records the sink refused) is thrown away with
the connection and read again by the next one, so nothing is skipped and nothing repeated.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Literal

import asyncssh

from collector.component import Sink
from collector.errors import QueueFullError
from receivers.log_parser.multiline import MultilineGrouper
from receivers.log_records import LogLines

__all__ = ["FINGERPRINT_BYTES", "Position", "RemoteTail"]

# The file's identity: its first bytes, compared by prefix while the file is shorter.
# SFTP v3 has no inode, so this is how rotation is told from growth.
FINGERPRINT_BYTES = 256
_CHUNK_BYTES = 64 * 1024
_CHUNKS_PER_POLL = 4  # one poll reads at most 256 KiB, so it fits a per-poll timeout
_MAX_LINE_BYTES = 1024 * 1024  # a longer run without a newline is cut into a line


def _same_file(head: bytes, fingerprint: bytes) -> bool:
    n = min(len(head), len(fingerprint))
    return head[:n] == fingerprint[:n]


@dataclass(slots=True)
class Position:
    """Where tailing resumes after a reconnect. ``started`` is false until the first open
    applied ``start_at``."""

    offset: int = 0
    fingerprint: bytes = b""
    started: bool = False


class RemoteTail:
    """Tails ``path`` through one SFTP session; not reusable across connections.

    ``poll()`` never waits for new data: it reads what there is (at most a few chunks),
    hands complete records to the sink and returns whether it made progress. The offset in
    ``position`` moves only when the sink accepted the records before it.
    """

    __slots__ = (
        "_buf",
        "_file",
        "_grouper",
        "_idle_polls",
        "_line_end",
        "_lines",
        "_pending_starts",
        "_read_pos",
        "_ready",
        "_ready_end",
        "_sftp",
        "_sink",
        "_start_at",
        "counts",
        "path",
        "position",
    )

    def __init__(
        self,
        sftp: asyncssh.SFTPClient,
        path: str,
        *,
        position: Position,
        start_at: Literal["end", "beginning"],
        lines: LogLines,
        sink: Sink,
        counts: Counter[str],
    ) -> None:
        self._sftp = sftp
        self.path = path
        self.position = position
        self._start_at = start_at
        self._lines = lines
        self._sink = sink
        self.counts = counts
        self._file: asyncssh.SFTPClientFile | None = None
        self._idle_polls = 0
        self._reset_reading(position.offset)

    def _reset_reading(self, offset: int) -> None:
        self._read_pos = offset  # next byte to read
        self._buf = b""  # the partial line read so far, starting at read_pos - len(buf)
        self._grouper = MultilineGrouper()
        self._pending_starts: deque[int] = deque()  # start offsets of lines in the grouper
        self._line_end = offset  # end of the last complete line fed
        self._ready: list[str] = []  # grouped records not yet accepted by the sink
        self._ready_end = offset  # the committed offset once ``_ready`` is accepted

    async def open(self) -> None:
        """Open the file and decide where to resume: ``start_at`` on the first open, the
        committed offset after a reconnect, or 0 if the file was replaced meanwhile."""
        position = self.position
        try:
            self._file = await self._sftp.open(self.path, "rb")
        except asyncssh.SFTPNoSuchFile:
            if not position.started:  # it does not exist yet: read it whole once it does
                position.started = True
            raise
        size = await self._size()
        head = await self._head(size)
        if not position.started:
            position.offset = size if self._start_at == "end" else 0
            position.fingerprint = head
            position.started = True
        elif size < position.offset or not _same_file(head, position.fingerprint):
            self.counts["rotations"] += 1
            position.offset = 0
            position.fingerprint = head
        self._reset_reading(position.offset)

    async def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            await file.close()

    async def _size(self) -> int:
        assert self._file is not None
        attrs = await self._file.stat()
        return attrs.size or 0

    async def _head(self, size: int) -> bytes:
        assert self._file is not None
        if size == 0:
            return b""
        data: bytes = await self._file.read(min(FINGERPRINT_BYTES, size), 0)
        return data

    async def poll(self) -> bool:
        """Read and deliver what is new; True if anything was read or delivered."""
        assert self._file is not None, "call open() first"
        if self._ready and not self._deliver():
            return False
        size = await self._size()
        if size < self._read_pos:
            return await self._restart("truncations")
        if size > self._read_pos:
            head = await self._head(size)
            if not _same_file(head, self.position.fingerprint):
                return await self._restart("truncations")  # rewritten in place, then grew
            if len(head) > len(self.position.fingerprint):
                self.position.fingerprint = head
            self._idle_polls = 0
            for _ in range(_CHUNKS_PER_POLL):
                want = min(_CHUNK_BYTES, size - self._read_pos)
                if want <= 0:
                    break
                data: bytes = await self._file.read(want, self._read_pos)
                if not data:
                    break
                self._read_pos += len(data)
                self.counts["bytes"] += len(data)
                self._feed(data)
                if not self._deliver():
                    break
            return True
        # Nothing new: a record still being grouped is complete by now.
        self._idle_polls += 1
        if self._idle_polls == 1 and self._flush():
            return True
        return await self._check_rotation(size)

    def _feed(self, data: bytes) -> None:
        buf = self._buf + data
        base = self._read_pos - len(buf)  # file offset of buf[0]
        start = 0
        while (nl := buf.find(b"\n", start)) != -1:
            self._feed_line(buf[start:nl], base + start, base + nl + 1)
            start = nl + 1
        rest = buf[start:]
        while len(rest) > _MAX_LINE_BYTES:
            cut = base + start + _MAX_LINE_BYTES
            self._feed_line(rest[:_MAX_LINE_BYTES], base + start, cut)
            rest = rest[_MAX_LINE_BYTES:]
            start += _MAX_LINE_BYTES
        self._buf = rest

    def _feed_line(self, raw: bytes, start: int, end: int) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        self.counts["lines"] += 1
        self._pending_starts.append(start)
        done = self._grouper.feed(raw.decode("utf-8", "replace"))
        for record in done:
            for _ in range(record.count("\n") + 1):
                self._pending_starts.popleft()
        self._ready += done
        self._line_end = end
        self._ready_end = self._pending_starts[0] if self._pending_starts else end

    def _flush(self) -> bool:
        """Hand over the record still being grouped; True if there was one."""
        done = self._grouper.flush()
        self._pending_starts.clear()
        if not done:
            return False
        self._ready += done
        self._ready_end = self._line_end
        self._deliver()
        return True

    def _deliver(self) -> bool:
        """Offer the ready records; on ``QueueFullError`` keep them for the next poll."""
        if self._ready:
            try:
                self._sink.offer_lines(self._lines, self._ready)
            except QueueFullError:
                self.counts["queue_full_retries"] += 1
                return False
            self.counts["records"] += len(self._ready)
            self._ready = []
        self.position.offset = self._ready_end
        return True

    async def _restart(self, reason: str) -> bool:
        """The file shrank or was rewritten: deliver what was complete, then read from 0."""
        self._flush()
        if self._ready:
            return False  # the sink is full; try again on the next poll
        self.counts[reason] += 1
        self.position.offset = 0
        self.position.fingerprint = b""
        self._reset_reading(0)
        return True

    async def _check_rotation(self, size: int) -> bool:
        """When idle: if ``path`` now names another file, finish this one and switch."""
        try:
            attrs = await self._sftp.stat(self.path)
        except asyncssh.SFTPNoSuchFile:
            return False  # moved away, not yet recreated: keep the old file
        if (attrs.size or 0) == size:
            return False
        file = await self._sftp.open(self.path, "rb")
        try:
            head: bytes = await file.read(FINGERPRINT_BYTES, 0) if attrs.size else b""
        finally:
            await file.close()
        if _same_file(head, self.position.fingerprint):
            return False  # the same file, grown since our stat
        if await self._size() < size:
            return False  # our own file shrank: truncated in place; the next poll rereads it
        if self._buf:  # the old file is finished: its unterminated last line is complete
            self._feed_line(self._buf, self._read_pos - len(self._buf), self._read_pos)
            self._buf = b""
        self._flush()
        if self._ready:
            return False
        await self.close()
        self.counts["rotations"] += 1
        self.position.offset = 0
        self.position.fingerprint = b""
        self.position.started = True
        self._file = await self._sftp.open(self.path, "rb")
        self.position.fingerprint = await self._head(await self._size())
        self._reset_reading(0)
        return True
