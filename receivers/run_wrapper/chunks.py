"""The bounded queue between the pump (which copies the command's output) and the shipper.

Kept apart from the shipper, with no heavy imports, so the command starts before the
shipper's HTTP client is even loaded.
"""

from __future__ import annotations

import threading
from collections import deque

__all__ = ["ChunkQueue"]


class ChunkQueue:
    """Raw output chunks per stream, at most ``max_bytes``; when full the *oldest* chunks are
    dropped and their lines counted (a dropped chunk may also cut the lines at its edges).
    ``put`` never blocks on I/O."""

    __slots__ = ("_bytes", "_closed", "_cond", "_items", "_max", "dropped_lines")

    def __init__(self, max_bytes: int) -> None:
        self._items: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._max = max_bytes
        self._cond = threading.Condition()
        self._closed = False
        self.dropped_lines = 0

    def put(self, stream: int, data: bytes) -> None:
        with self._cond:
            self._items.append((stream, data))
            self._bytes += len(data)
            while self._bytes > self._max and len(self._items) > 1:
                _, old = self._items.popleft()
                self._bytes -= len(old)
                self.dropped_lines += old.count(b"\n")
            self._cond.notify()

    def take(self, timeout: float) -> tuple[list[tuple[int, bytes]], bool]:
        """Everything queued (waiting up to ``timeout`` if empty), and whether closed."""
        with self._cond:
            if not self._items and not self._closed and timeout > 0:
                self._cond.wait(timeout)
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            return items, self._closed

    def close(self) -> None:
        """No more output: the shipper delivers what is queued and finishes."""
        with self._cond:
            self._closed = True
            self._cond.notify()
