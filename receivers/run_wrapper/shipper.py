"""The shipper: the thread that takes the command's output from the chunk queue and ships it.

The pump (main thread) only puts chunks in the :class:`ChunkQueue`, so the command is never
slowed by the daemon. The shipper cuts each stream into whole lines and posts them as raw text
blocks (``POST /v1/lines``, text/plain): once the stream has been quiet for 3 ms (``end``: its
last record is complete; the daemon groups multi-line records), after 5 ms of steady output
(25 ms in a flood), or at once at ``batch_bytes``. It never decodes or splits lines itself:
the daemon does, on its parse thread. A batch the daemon cannot take (5xx, connection error)
goes to the spool; while this run's spool holds data, new batches are appended behind it
(every 100 ms, as nothing is waiting for them) so order is kept, and the spool is replayed
oldest first.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from collector.priority import lower_thread_priority
from receivers.run_wrapper.chunks import ChunkQueue
from receivers.run_wrapper.lines import StreamLines
from receivers.run_wrapper.sender import LinesClient, Outcome
from receivers.run_wrapper.spool import (
    LINES_PATH,
    Batch,
    OwnSpool,
    Segment,
    SpoolDir,
    adopt_leftovers,
    read_segment,
)

__all__ = ["Counters", "Shipper", "ShipperConfig", "flush_spool"]

_IDLE_S = 0.003  # a stream quiet this long: its last multi-line record is complete
_MAX_WAIT_S = 0.005  # under steady output a line waits no longer than this to be posted
_SPOOL_WAIT_S = 0.1  # the same while batches go to the spool (fewer, larger appends)
# A flood: this much output within _MAX_WAIT_S. Then lines wait up to _FLOOD_WAIT_S, for
# fewer, larger posts: the daemon's work per post is time the command could have had.
_FLOOD_BYTES = 64 * 1024
_FLOOD_WAIT_S = 0.025
_SEAL_AGE_S = 1.0
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.25, 2.0


@dataclass(slots=True)
class ShipperConfig:
    prog: str  # the command the user ran, naming it in messages (gasoline-run, gasoline test)
    url: str
    service: str
    tags: tuple[str, ...] = ()
    spool_root: Path = field(default_factory=lambda: Path.home() / ".gasoline" / "spool")
    queue_bytes: int = 64 * 1024 * 1024
    spool_max_bytes: int = 256 * 1024 * 1024
    batch_bytes: int = 4 * 1024 * 1024
    flush_timeout: float = 5.0
    http_timeout: float = 2.0


@dataclass(slots=True)
class Counters:
    """What happened to the output, in lines (what the wrapper sends: the daemon counts
    the same lines as ``lines`` accepted, and groups them into records itself)."""

    sent: int = 0  # lines the daemon accepted (live and replayed)
    replayed: int = 0  # of which came from a spool
    queue_dropped: int = 0  # lines in chunks dropped because the queue was full
    rejected: int = 0  # lines in batches answered 4xx (not retried)
    spooled: int = 0  # lines written to this run's spool
    spool_dropped: int = 0  # lines dropped because the spool was at its cap
    torn: int = 0  # spooled batches cut short by a crash mid-append, skipped at replay

    def summary(self, prog: str) -> str | None:
        """One line for stderr, or None when nothing was dropped, rejected or spooled."""
        if not (
            self.queue_dropped or self.rejected or self.spooled or self.spool_dropped or self.torn
        ):
            return None
        replayed = f" ({self.replayed} of them replayed from the spool)" if self.replayed else ""
        return (
            f"{prog}: {_lines(self.sent)} sent{replayed}, {self.spooled} spooled, "
            f"{self.queue_dropped} dropped (queue full), "
            f"{self.spool_dropped} dropped (spool full), {self.rejected} rejected by the daemon"
            + (f", {self.torn} torn spool entries skipped" if self.torn else "")
        )

    def replay_summary(self, runs: int = 1) -> str | None:
        """The line ``--flush-spool`` prints, or None when the spool was empty. ``runs``:
        how many runs' spools it replayed (each run's summary counted only its own)."""
        if not (self.sent or self.rejected or self.torn):
            return None
        return (
            f"gasoline-run: replayed {_lines(self.replayed)}"
            + (f" from {runs} runs" if runs > 1 else "")
            + (f", {self.rejected} rejected" if self.rejected else "")
            + (f", {self.torn} torn spool entries skipped" if self.torn else "")
        )


def _lines(count: int) -> str:
    return f"{count} line" if count == 1 else f"{count} lines"


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
        self._header = {"service": config.service, "source": "backend", "tag": config.tags}
        self._run = uuid.uuid4().hex[:16]
        self._batches = 0
        # The segment being replayed and how many of its entries the daemon has taken.
        self._replaying: tuple[Path, int] | None = None

    def encode(self, stream: int, body: bytes, end: bool) -> Batch:
        """The batch with an id and the time it was captured. The id makes a resend after a
        lost answer harmless (the daemon stores a batch once); the time lets lines replayed
        from the spool later keep when they were printed (when they carry none of their own).
        """
        self._batches += 1
        query = urlencode(
            {
                **self._header,
                "batch": f"{self._run}-{self._batches}",
                "observed_time_ms": time.time_ns() // 1_000_000,
                "stream": f"{self._run}-{stream}",
                "end": int(end),
            },
            doseq=True,
        )
        return Batch(query, body, body.count(b"\n"))

    def deferring(self) -> bool:
        """Whether new batches go to the spool (behind older ones, or while backing off)."""
        return self.spool.has_data() or time.monotonic() < self.retry_at

    def ship(self, stream: int, body: bytes, end: bool) -> None:
        self.deliver(self.encode(stream, body, end))

    def deliver(self, batch: Batch) -> None:
        """Post ``batch`` now, or spool it (behind older batches, or when the post fails)."""
        if self.deferring() or not self._send(batch, replayed=False):
            self._to_spool(batch)

    def replay(self, *, closing: bool, budget: int = 8) -> bool:
        """Send spooled batches, oldest first; False when something is still pending."""
        for _ in range(budget):
            if time.monotonic() < self.retry_at:
                return False
            segment = self._next_segment(closing)
            if segment is None:
                return True
            batches, torn = read_segment(segment.path)
            done = 0
            if self._replaying is not None and self._replaying[0] == segment.path:
                done = self._replaying[1]
            for batch in batches[done:]:
                if not self._send(batch, replayed=True):
                    self._replaying = (segment.path, done)
                    return False
                done += 1
            segment.delete()
            self.counters.torn += torn
            self._replaying = None
        return self._next_segment(closing) is None

    def _send(self, batch: Batch, *, replayed: bool) -> bool:
        """Post one batch; False when it must be sent again later (5xx, no daemon)."""
        answer = self.client.post(batch.query, batch.body, batch.path)
        if answer.outcome is Outcome.OK:
            self._ok(batch.lines, replayed=replayed)
        elif answer.outcome is Outcome.REJECTED:
            self._reject(batch, answer.message)
        else:
            self._failed(answer.outcome)
            return False
        return True

    def _next_segment(self, closing: bool) -> Segment | None:
        while self.leftovers:
            segments = self.leftovers[0].segments()
            if segments:
                return segments[0]
            self.leftovers.pop(0).release()
        d = self.spool.dir
        if d is None or not self.spool.has_data():
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

    def _to_spool(self, batch: Batch) -> None:
        self.spool.append(batch)
        if self.spool.active_bytes() >= self.config.batch_bytes:
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

    def _reject(self, batch: Batch, message: str) -> None:
        self.counters.rejected += batch.lines
        what = f"{batch.lines} lines" if batch.path == LINES_PATH else f"a post to {batch.path}"
        if not self._reported:
            self._reported = True
            print(
                f"{self.config.prog}: the daemon at {self.config.url} rejected {what} ({message}); "
                "rejected batches are not retried",
                file=sys.stderr,
                flush=True,
            )


class _Pending:
    """One stream's output not posted yet (whole lines), and whether the daemon holds an
    unfinished record of it (the last block was posted without ``end``)."""

    __slots__ = ("blocks", "first_data", "last_data", "open", "size")

    def __init__(self) -> None:
        self.blocks: list[bytes] = []
        self.size = 0
        self.first_data = 0.0  # when the oldest block in ``blocks`` arrived
        self.last_data = 0.0
        self.open = False

    def add(self, block: bytes, now: float) -> None:
        if block:
            if not self.blocks:
                self.first_data = now
            self.blocks.append(block)
            self.size += len(block)
            self.last_data = now

    def deadline(self, max_wait: float) -> float:
        """When to post next: at 3 ms of quiet (end), or ``max_wait`` after the oldest line
        (``_FLOOD_WAIT_S`` in a flood)."""
        if self.blocks:
            if self.size >= _FLOOD_BYTES:
                max_wait = max(max_wait, _FLOOD_WAIT_S)
            return min(self.last_data + _IDLE_S, self.first_data + max_wait)
        if self.open:
            return self.last_data + _IDLE_S
        return float("inf")


class Shipper:
    """Ships what the pump puts in ``queue`` until the queue is closed, then delivers or
    spools the rest within ``flush_timeout`` (less if ``abort`` is set: a second Ctrl-C)
    and prints the counters' summary. ``run`` is the shipper thread's whole life.

    ``finish`` (optional) runs on this thread once the command's output is shipped; the
    batches it returns (``gasoline test``: the run's spans, git events) are delivered like
    the output, spooled when the daemon cannot take them. ``tick(now)`` (optional) runs on
    this thread at least every 250 ms while the command runs and returns batches the same
    way (``gasoline-run``: git events of its working directory); it must return quickly
    when it has nothing to do."""

    def __init__(
        self,
        config: ShipperConfig,
        queue: ChunkQueue,
        abort: threading.Event,
        finish: Callable[[], list[Batch]] | None = None,
        tick: Callable[[float], list[Batch]] | None = None,
    ) -> None:
        self.config = config
        self._finish = finish
        self._tick = tick
        self.counters = Counters()
        self._queue = queue
        self._abort = abort
        self._streams = [StreamLines() for _ in range(3)]  # by fd: stdout 1, stderr 2
        self._delivery = _Delivery(config, self.counters)

    def run(self) -> None:
        lower_thread_priority()  # the command and the pass-through win under contention
        delivery = self._delivery
        try:
            delivery.leftovers = adopt_leftovers(self.config.spool_root)
        except OSError as exc:
            print(f"{self.config.prog}: cannot read the spool: {exc}", file=sys.stderr, flush=True)
        pending = [_Pending() for _ in self._streams]
        batch_bytes = self.config.batch_bytes
        while True:
            now = time.monotonic()
            max_wait = _SPOOL_WAIT_S if delivery.deferring() else _MAX_WAIT_S
            timeout = min(p.deadline(max_wait) for p in pending) - now
            chunks, closed = self._queue.take(min(max(0.0, timeout), 0.25))
            now = time.monotonic()
            for stream, data in chunks:
                p = pending[stream]
                p.add(self._streams[stream].feed(data), now)
                if p.size >= batch_bytes:
                    self._ship(stream, p, end=False)
            if closed:
                break
            for stream, p in enumerate(pending):
                if p.deadline(max_wait) <= now:
                    self._ship(stream, p, end=now - p.last_data >= _IDLE_S)
            if self._tick is not None:
                for batch in self._tick(now):
                    delivery.deliver(batch)
            delivery.replay(closing=False)
        # Closed: the pump has stopped. Take what is left, then deliver within the deadline.
        if self._tick is not None:  # a last look: what the command did just before it exited
            for batch in self._tick(float("inf")):
                delivery.deliver(batch)
        chunks, _ = self._queue.take(0)
        for stream, data in chunks:
            pending[stream].add(self._streams[stream].feed(data), time.monotonic())
        for stream, p in enumerate(pending):
            p.add(self._streams[stream].close(), time.monotonic())
            if p.blocks or p.open:
                self._ship(stream, p, end=True)
        if self._finish is not None:
            for batch in self._finish():
                delivery.deliver(batch)
        self._drain()
        self.counters.queue_dropped = self._queue.dropped_lines
        line = self.counters.summary(self.config.prog)
        if line is not None:
            print(line, file=sys.stderr, flush=True)

    def _ship(self, stream: int, p: _Pending, *, end: bool) -> None:
        """Post ``p``'s output in pieces of at most batch_bytes, cut after a newline (a
        longer line goes alone); only the last piece carries ``end``."""
        data = b"".join(p.blocks)
        limit = self.config.batch_bytes
        start = 0
        while True:
            stop = len(data)
            if stop - start > limit:
                stop = data.rfind(b"\n", start, start + limit) + 1
                if stop <= start:
                    stop = data.find(b"\n", start + limit) + 1 or len(data)
            last = stop >= len(data)
            self._delivery.ship(stream, data[start:stop], end and last)
            if last:
                break
            start = stop
        p.blocks = []
        p.size = 0
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
                    f"{self.config.prog}: no Gasoline daemon took the output at {self.config.url}; "
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
    runs = sum(1 for d in delivery.leftovers if d.segments())
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
    line = counters.replay_summary(runs)
    if line is not None:
        print(line, file=sys.stderr)
    return 0
