"""The shipper: a bounded queue the pump drops output into, and the thread that ships it.

The pump (main thread) only calls :meth:`Shipper.offer`, which appends a chunk under a lock
and never blocks on I/O, so the child is never slowed by the daemon. The queue holds at most
``queue_bytes`` of raw output; when full the *oldest* chunks are dropped and their lines
counted (a dropped chunk may also cut the lines at its edges). The shipper thread splits each
stream into lines and posts them as text blocks: once the stream has been quiet for 3 ms
(``end``: its last record is complete; the daemon groups multi-line records), after 5 ms of
steady output, or at once at ``batch_lines`` lines / 4 MiB. A batch the daemon cannot take
(5xx, connection error) goes to the spool; while this run's spool holds data, new batches
are appended behind it so order is kept, and the spool is replayed oldest first.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

from collector.priority import lower_thread_priority
from receivers.run_wrapper.lines import StreamLines
from receivers.run_wrapper.sender import LinesClient, Outcome
from receivers.run_wrapper.spool import OwnSpool, Segment, SpoolDir, adopt_leftovers, read_segment

__all__ = ["Counters", "Shipper", "ShipperConfig", "flush_spool"]

_IDLE_S = 0.003  # a stream quiet this long: its last multi-line record is complete
_MAX_WAIT_S = 0.005  # under steady output a line waits no longer than this to be posted
_BATCH_BYTES = 4 * 1024 * 1024
_SEAL_AGE_S = 1.0
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.25, 2.0


@dataclass(slots=True)
class ShipperConfig:
    url: str
    service: str
    tags: tuple[str, ...] = ()
    spool_root: Path = field(default_factory=lambda: Path.home() / ".gasoline" / "spool")
    queue_bytes: int = 64 * 1024 * 1024
    spool_max_bytes: int = 256 * 1024 * 1024
    batch_lines: int = 100_000
    flush_timeout: float = 5.0
    http_timeout: float = 2.0


@dataclass(slots=True)
class Counters:
    sent: int = 0  # records the daemon accepted (live and replayed)
    replayed: int = 0  # of which came from a spool
    queue_dropped: int = 0  # lines in chunks dropped because the queue was full
    rejected: int = 0  # records in batches answered 4xx (not retried)
    spooled: int = 0  # records written to this run's spool
    spool_dropped: int = 0  # records dropped because the spool was at its cap
    truncated: int = 0  # lines cut at MAX_LINE_BYTES for shipping

    def summary(self) -> str | None:
        """One line for stderr, or None when nothing was dropped, rejected or spooled."""
        if not (self.queue_dropped or self.rejected or self.spooled or self.spool_dropped):
            return None
        return (
            f"gasoline-run: {self.sent} records sent, {self.spooled} spooled, "
            f"{self.queue_dropped} lines dropped (queue full), "
            f"{self.spool_dropped} dropped (spool full), {self.rejected} rejected by the daemon"
        )


class _ChunkQueue:
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
        with self._cond:
            self._closed = True
            self._cond.notify()


class _Delivery:
    """Posting, spooling and replay; used by one thread only."""

    def __init__(self, config: ShipperConfig, counters: Counters) -> None:
        self.config = config
        self.counters = counters
        self.client = LinesClient(config.url, timeout=config.http_timeout)
        self.spool = OwnSpool(config.spool_root, max_bytes=config.spool_max_bytes)
        self.leftovers: list[SpoolDir] = []
        self.retry_at = 0.0
        self.backoff = _BACKOFF_MIN_S
        self.up = False
        self.down = False  # last failure was "nothing listens"
        self._reported = False
        self._header = {"service": config.service, "source": "backend", "tags": list(config.tags)}
        self._run = uuid.uuid4().hex[:16]
        self._batches = 0
        # The segment being replayed and how many of its entries the daemon has taken.
        self._replaying: tuple[Path, int] | None = None

    def encode(self, stream: int, lines: list[str], end: bool) -> bytes:
        """The batch with an id and the time it was captured. The id makes a resend after a
        lost answer harmless (the daemon stores a batch once); the time lets lines replayed
        from the spool later keep when they were printed (when they carry none of their own).
        """
        self._batches += 1
        body = {
            **self._header,
            "batch": f"{self._run}-{self._batches}",
            "observed_time_ms": time.time_ns() // 1_000_000,
            "stream": f"{self._run}-{stream}",
            "text": "\n".join(lines),
            "end": end,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def ship(self, stream: int, lines: list[str], end: bool) -> None:
        body = self.encode(stream, lines, end)
        if self.spool.has_data() or time.monotonic() < self.retry_at:
            self._to_spool(body, len(lines))
            return
        answer = self.client.post(body)
        if answer.outcome is Outcome.OK:
            self._ok(len(lines), replayed=False)
        elif answer.outcome is Outcome.REJECTED:
            self._reject(len(lines), answer.message)
        else:
            self._failed(answer.outcome)
            self._to_spool(body, len(lines))

    def replay(self, *, closing: bool, budget: int = 8) -> bool:
        """Send spooled batches, oldest first; False when something is still pending."""
        for _ in range(budget):
            if time.monotonic() < self.retry_at:
                return False
            segment = self._next_segment(closing)
            if segment is None:
                return True
            entries, _torn = read_segment(segment.path)
            done = 0
            if self._replaying is not None and self._replaying[0] == segment.path:
                done = self._replaying[1]
            for body, n in entries[done:]:
                answer = self.client.post(body)
                if answer.outcome is Outcome.OK:
                    self._ok(n, replayed=True)
                elif answer.outcome is Outcome.REJECTED:
                    self._reject(n, answer.message)
                else:
                    self._failed(answer.outcome)
                    self._replaying = (segment.path, done)
                    return False
                done += 1
            segment.delete()
            self._replaying = None
        return self._next_segment(closing) is None

    def _next_segment(self, closing: bool) -> Segment | None:
        while self.leftovers:
            segments = self.leftovers[0].segments()
            if segments:
                return segments[0]
            self.leftovers.pop(0).release()
        d = self.spool.dir
        if d is None:
            return None
        segments = d.segments()
        if segments:
            return segments[0]
        if self.spool.has_active() and (
            closing or self.up or self.spool.active_age() >= _SEAL_AGE_S
        ):
            self.spool.seal()
            segments = d.segments()
            return segments[0] if segments else None
        return None

    def _to_spool(self, body: bytes, n: int) -> None:
        self.spool.append(body, n)
        if self.spool.active_lines() >= self.config.batch_lines:
            self.spool.seal()

    def _ok(self, n: int, *, replayed: bool) -> None:
        self.counters.sent += n
        if replayed:
            self.counters.replayed += n
        self.up, self.down = True, False
        self.retry_at = 0.0
        self.backoff = _BACKOFF_MIN_S

    def _failed(self, outcome: Outcome) -> None:
        self.up = False
        self.down = outcome is Outcome.DOWN
        self.retry_at = time.monotonic() + self.backoff
        self.backoff = min(self.backoff * 2, _BACKOFF_MAX_S)

    def _reject(self, n: int, message: str) -> None:
        self.counters.rejected += n
        if not self._reported:
            self._reported = True
            print(
                f"gasoline-run: the daemon at {self.config.url} rejected {n} lines ({message}); "
                "rejected batches are not retried",
                file=sys.stderr,
                flush=True,
            )


class _Pending:
    """One stream's lines not posted yet, and whether the daemon holds an unfinished record
    of it (the last block was posted without ``end``)."""

    __slots__ = ("first_data", "last_data", "lines", "open")

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.first_data = 0.0  # when the oldest line in ``lines`` arrived
        self.last_data = 0.0
        self.open = False

    def add(self, lines: list[str], now: float) -> None:
        if lines:
            if not self.lines:
                self.first_data = now
            self.lines += lines
            self.last_data = now

    def deadline(self) -> float:
        """When to post next: at 3 ms of quiet (end), or 5 ms after the oldest line."""
        if self.lines:
            return min(self.last_data + _IDLE_S, self.first_data + _MAX_WAIT_S)
        if self.open:
            return self.last_data + _IDLE_S
        return float("inf")


class Shipper:
    """Owns the queue and the shipper thread. ``offer`` is the only call on the hot path.

    Lifecycle: ``start()`` once, ``offer()`` any number of times from one thread, then
    ``close()`` once, which blocks for at most about ``flush_timeout`` seconds.
    """

    def __init__(self, config: ShipperConfig, *, streams: int = 2) -> None:
        self.config = config
        self.counters = Counters()
        self._queue = _ChunkQueue(config.queue_bytes)
        self._streams = [StreamLines() for _ in range(streams + 1)]
        self._delivery = _Delivery(config, self.counters)
        self._abort = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gasoline-run-shipper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, stream: int, data: bytes) -> None:
        """Queue a chunk of stream 1 (stdout) or 2 (stderr); never blocks on I/O."""
        self._queue.put(stream, data)

    def abort(self) -> None:
        """Stop waiting for the daemon during close() (a second Ctrl-C)."""
        self._abort.set()

    def close(self) -> None:
        """Flush, deliver or spool everything, print the notes; bounded by flush_timeout."""
        self._queue.close()
        self._thread.join(self.config.flush_timeout + 2 * self.config.http_timeout + 1)
        self.counters.queue_dropped = self._queue.dropped_lines
        self.counters.truncated = sum(s.truncated for s in self._streams)
        line = self.counters.summary()
        if line is not None:
            print(line, file=sys.stderr, flush=True)

    def _run(self) -> None:
        lower_thread_priority()  # the child and the pass-through win under contention
        delivery = self._delivery
        try:
            delivery.leftovers = adopt_leftovers(self.config.spool_root)
        except OSError as exc:
            print(f"gasoline-run: cannot read the spool: {exc}", file=sys.stderr, flush=True)
        pending = [_Pending() for _ in self._streams]
        while True:
            now = time.monotonic()
            timeout = min((p.deadline() for p in pending), default=0.25) - now
            chunks, closed = self._queue.take(min(max(0.0, timeout), 0.25))
            now = time.monotonic()
            for stream, data in chunks:
                p = pending[stream]
                p.add(self._streams[stream].feed(data), now)
                if len(p.lines) >= self.config.batch_lines:
                    self._ship(stream, p, end=False)
            if closed:
                break
            for stream, p in enumerate(pending):
                if p.deadline() <= now:
                    self._ship(stream, p, end=now - p.last_data >= _IDLE_S)
            delivery.replay(closing=False)
        # Closed: the pump has stopped. Take what is left, then deliver within the deadline.
        chunks, _ = self._queue.take(0)
        for stream, data in chunks:
            pending[stream].add(self._streams[stream].feed(data), time.monotonic())
        for stream, p in enumerate(pending):
            p.add(self._streams[stream].close(), time.monotonic())
            if p.lines or p.open:
                self._ship(stream, p, end=True)
        self._drain()

    def _ship(self, stream: int, p: _Pending, *, end: bool) -> None:
        """Post ``p``'s lines in pieces of at most batch_lines / 4 MiB; only the last piece
        carries ``end``."""
        lines, limit = p.lines, self.config.batch_lines
        sizes = list(accumulate(map(len, lines), initial=0))  # characters before line i
        start = 0
        while True:
            stop = min(start + limit, bisect_right(sizes, sizes[start] + _BATCH_BYTES) - 1)
            stop = min(max(stop, start + 1), len(lines))  # one line at least, if any
            last = stop >= len(lines)
            self._delivery.ship(stream, lines[start:stop], end and last)
            if last:
                break
            start = stop
        p.lines = []
        p.open = not end

    def _drain(self) -> None:
        delivery = self._delivery
        deadline = time.monotonic() + self.config.flush_timeout
        while not self._abort.is_set():
            if delivery.replay(closing=True, budget=1_000_000):
                break
            # Nothing listens: waiting would only delay the user's shell prompt.
            if delivery.down or time.monotonic() >= deadline:
                break
            self._abort.wait(max(0.0, min(delivery.retry_at, deadline) - time.monotonic()))
        delivery.client.close()
        own = delivery.spool
        if own.dir is not None:
            own.seal()
            if own.dir.segments():
                print(
                    f"gasoline-run: no Gasoline daemon took the output at {self.config.url}; "
                    f"its lines are kept in {own.dir.path}; the next gasoline-run "
                    "(or gasoline-run --flush-spool) replays them",
                    file=sys.stderr,
                    flush=True,
                )
            own.dir.release()
        for left in delivery.leftovers:
            left.release()
        self.counters.spooled = own.spooled_lines
        self.counters.spool_dropped = own.dropped_lines


def flush_spool(config: ShipperConfig) -> int:
    """Replay every finished run's spool under ``spool_root``; 0 if all were delivered."""
    counters = Counters()
    delivery = _Delivery(config, counters)
    delivery.leftovers = adopt_leftovers(config.spool_root)
    deadline = time.monotonic() + config.flush_timeout
    done = False
    while True:
        done = delivery.replay(closing=True, budget=1_000_000)
        if done or delivery.down or time.monotonic() >= deadline:
            break
        time.sleep(max(0.0, min(delivery.retry_at, deadline) - time.monotonic()))
    delivery.client.close()
    left = sum(len(d.segments()) for d in delivery.leftovers)
    for d in delivery.leftovers:
        d.release()
    if not done:
        print(
            f"gasoline-run: no Gasoline daemon took the spool at {config.url}; "
            f"{left} segments left in {config.spool_root}",
            file=sys.stderr,
        )
        return 1
    if counters.sent or counters.rejected:
        print(
            f"gasoline-run: replayed {counters.sent} records"
            + (f", {counters.rejected} rejected" if counters.rejected else ""),
            file=sys.stderr,
        )
    return 0
