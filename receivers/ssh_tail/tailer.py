"""Reading one remote file over SFTP from a byte offset, line by line, without loss or repeats.

``Position`` is what survives a reconnect: the committed offset (everything before it was
emitted and accepted by the sink) and a fingerprint of the file's first bytes. A
``RemoteTail`` lives for one connection; whatever it has read past the committed offset
(a partial line, lines still being grouped, records the sink refused) is thrown away with
the connection and read again by the next one, so nothing is skipped and nothing repeated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import asyncssh

from collector.component import Sink
from collector.errors import QueueFullError
from receivers.file_tail.fingerprint import fingerprint_matches
from receivers.line_reader import LineReader, LongLines
from receivers.log_records import LogLines

__all__ = ["FINGERPRINT_BYTES", "Position", "RemoteTail"]

# The file's identity: its first bytes, compared by prefix while the file is shorter.
# SFTP v3 has no inode, so this is how rotation is told from growth.
FINGERPRINT_BYTES = 256
_CHUNK_BYTES = 64 * 1024
_CHUNKS_PER_POLL = 4  # one poll reads at most 256 KiB, so it fits a per-poll timeout
_MAX_LINE_BYTES = 1024 * 1024  # a longer run without a newline is cut into lines, all kept


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
        "_file",
        "_idle_polls",
        "_lines",
        "_reader",
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
        self._reader = LineReader(
            offset, max_line_bytes=_MAX_LINE_BYTES, long_lines=LongLines.SPLIT, counts=self.counts
        )

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
        elif size < position.offset or not fingerprint_matches(position.fingerprint, head):
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
        reader = self._reader
        if reader.ready and not self._deliver():
            return False
        size = await self._size()
        if size < reader.read_offset:
            return await self._restart("truncations")
        if size > reader.read_offset:
            head = await self._head(size)
            if not fingerprint_matches(self.position.fingerprint, head):
                return await self._restart("truncations")  # rewritten in place, then grew
            if len(head) > len(self.position.fingerprint):
                self.position.fingerprint = head
            self._idle_polls = 0
            for _ in range(_CHUNKS_PER_POLL):
                want = min(_CHUNK_BYTES, size - reader.read_offset)
                if want <= 0:
                    break
                data: bytes = await self._file.read(want, reader.read_offset)
                if not data:
                    break
                reader.read_offset += len(data)
                self.counts["bytes"] += len(data)
                reader.split(data)
                if not self._deliver():
                    break
            return True
        # Nothing new: a record still being grouped is complete by now.
        self._idle_polls += 1
        if self._idle_polls == 1 and self._flush():
            return True
        return await self._check_rotation(size)

    def _flush(self) -> bool:
        """Hand over the record still being grouped; True if there was one."""
        if not self._reader.flush_grouper():
            return False
        self._deliver()
        return True

    def _deliver(self) -> bool:
        """Offer the ready records; on ``QueueFullError`` keep them for the next poll."""
        reader = self._reader
        if reader.ready:
            try:
                self._sink.offer_lines(self._lines, reader.ready, kept_on_refusal=True)
            except QueueFullError:
                self.counts["queue_full_retries"] += 1
                return False
            self.counts["records"] += len(reader.ready)
        reader.accepted()
        self.position.offset = reader.committed
        return True

    async def _restart(self, reason: str) -> bool:
        """The file shrank or was rewritten: deliver what was complete, then read from 0."""
        self._flush()
        if self._reader.ready:
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
        if fingerprint_matches(self.position.fingerprint, head):
            return False  # the same file, grown since our stat
        if await self._size() < size:
            return False  # our own file shrank: truncated in place; the next poll rereads it
        self._reader.finish_partial()  # the old file is finished: its last line is complete
        self._flush()
        if self._reader.ready:
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
