"""The bounded queue between receivers and the stores, and the stages after it.

Receivers call ``offer_*`` from their request handlers; nothing blocks. When the queue
holds ``max_items`` items the pipeline sheds load (``when_full: drop_newest``): the
offer raises ``QueueFullError`` and the receiver answers with a retryable error, so
the sender keeps the data. One consumer task then parses plain log lines (on a thread
of lower priority), redacts, correlates and stores, in slices of loop time.

Each receiver offers through its own lane (``lane(name)``), so one that floods cannot
take the queue from the others: every receiver that has offered keeps a reserve of
``max_items / (2 x receivers)`` that only it may fill, and the consumer takes span
batches from the receivers in turn. Refusals are counted per receiver too.

Spans never wait behind log records and lines: they have a queue of their own, taken
first. Records and lines share one, as their ids (handed out at offer time) must reach
the store in order. A flood of lines (a command printing as fast as it can) is parsed
once it ebbs: parsing alongside it would take the CPU the command runs on (on two cores
even a lowest-priority thread slows a command that pipes its output by a third or more).
The wait is bounded (``_MAX_DEFER_S``, or half the queue's items or bytes filled), and
lines arriving slower than a flood are parsed at once. Lines waiting are bounded by their
bytes too (``max_line_bytes``): a file read from its start is offered far faster than it
is parsed, and a million queued lines would otherwise hold more memory than the store. A
tailer refused for want of room keeps its lines and offers them again; that is a retry it
counts, not a drop.

Everything is counted in one unit per kind: spans, records (events, OTLP log records) and
plain lines. Lines are not records: the parser groups them (a stack trace of 7 lines is one
record), so lines are counted as they come in and as they are parsed, and the records made
from them apart; a record a tailer grouped itself counts as the lines it holds.
``accounting()`` balances each kind: what was accepted is queued, stored, dropped after it
was accepted, or evicted. What was refused (queue full, shutting down, invalid) was never
accepted; the sender was told, and is counted apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import operator
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from collector.component import LineSource, Sink
from collector.config import QueueConfig
from collector.errors import QueueFullError
from collector.model import DropReason, Record, SpanBatch
from collector.priority import lower_thread_priority
from collector.redact import Redactor
from collector.store import Store

__all__ = ["Pipeline"]

_log = logging.getLogger("gasoline.pipeline")

_MAX_CORRELATIONS = 100_000
# The consumer drains the queue in slices of this much loop time, so a backlog is stored
# quickly without starving the receivers; plain lines are parsed this many at a time.
_SLICE_S = 0.02
_LINES_PER_STEP = 500
# A flood: at least this many lines a second, over windows of _FLOOD_WINDOW_S.
_FLOOD_LINES_PER_S = 20_000
_FLOOD_WINDOW_S = 0.1
_MAX_DEFER_S = 2.0
# At stop, with a durable history, lines still queued are parsed for this long at most
# (they would outlive the process on disk); past it, and always without one, they are
# dropped and counted rather than hold up the exit.
_STOP_PARSE_S = 5.0
_OWN = "daemon"  # the lane of what is offered to the pipeline itself (tools, interact)
_NEWLINES = operator.methodcaller("count", "\n")
_ENTRY_BYTES = 64  # what a queued line costs beyond its characters (str header, slot)


def _count_lines(entries: Sequence[str]) -> int:
    """Lines in ``entries``. A list may hold records a tailer grouped already (a stack trace
    is one entry of many lines); other sequences (raw output, split lazily on the parse
    thread) hold one line per entry and are not read here."""
    if isinstance(entries, list):
        return len(entries) + _newlines(entries)
    return len(entries)


def _newlines(entries: Sequence[str]) -> int:
    return int(sum(map(_NEWLINES, entries)))


def _entry_bytes(entries: Sequence[str]) -> int:
    """About the memory ``entries`` hold while queued: a list's lines, or what another
    sequence (raw output not split yet) says of itself (``__sizeof__``)."""
    if isinstance(entries, list):
        return int(sum(map(len, entries))) + _ENTRY_BYTES * len(entries)
    return sys.getsizeof(entries)


@dataclass(slots=True)
class _Lines:
    """Plain log lines waiting to be parsed. Their record ids (one per line, and one for a
    record the source may have held from before) were handed out at offer time, so records
    stay in id order whatever was offered around them."""

    source: LineSource
    lines: Sequence[str]
    now_ns: int
    first_id: int
    line_count: int  # lines, where an entry is a record of several (``_count_lines``)
    nbytes: int  # what they hold in memory while queued (``_entry_bytes``)
    done: int = 0
    bytes_done: int = 0
    lines_done: int = 0
    made: int = 0

    def __len__(self) -> int:
        return len(self.lines) - self.done

    def release(self) -> int:
        """Bytes of ``nbytes`` the entries parsed since the last call held."""
        freed = self.nbytes * self.done // max(1, len(self.lines)) - self.bytes_done
        self.bytes_done += freed
        return freed

    def step(self, count: int) -> list[Record]:
        """Parse the next ``count`` entries (skipped, not retried, if parsing raises)."""
        start = self.done
        self.done += count
        chunk: Sequence[str]
        if isinstance(self.lines, list):
            chunk = self.lines[start : self.done]
            self.lines_done += len(chunk) + _newlines(chunk)
        else:  # one line an entry, counted first: reading splits the text, which may raise
            self.lines_done += count
            chunk = self.lines[start : self.done]
        records = self.source.records(chunk, now_ns=self.now_ns, last=not self)
        for record_id, record in enumerate(records, self.first_id + self.made):
            record.id = record_id
        self.made += len(records)
        return records


class _FloodGauge:
    """How fast plain lines arrive: lines counted per window of ``_FLOOD_WINDOW_S``."""

    __slots__ = ("_count", "_deferring_since", "_previous", "_start")

    def __init__(self) -> None:
        self._start = 0.0
        self._count = 0
        self._previous = 0  # lines of the window before ``_start``, if it was the last one
        self._deferring_since: float | None = None

    def note(self, lines: int, now: float) -> None:
        if now - self._start >= _FLOOD_WINDOW_S:
            adjacent = now - self._start < 2 * _FLOOD_WINDOW_S
            self._previous = self._count if adjacent else 0
            self._start, self._count = now, 0
        self._count += lines

    def defer(self, now: float) -> bool:
        """Whether parsing should wait: a flood is on and has not been waited out for
        ``_MAX_DEFER_S`` yet."""
        limit = _FLOOD_LINES_PER_S * _FLOOD_WINDOW_S
        age = now - self._start
        flooding = age < 2 * _FLOOD_WINDOW_S and (
            self._count >= limit or (age < _FLOOD_WINDOW_S and self._previous >= limit)
        )
        if not flooding:
            self._deferring_since = None
            return False
        if self._deferring_since is None:
            self._deferring_since = now
        return now - self._deferring_since < _MAX_DEFER_S


_Item = SpanBatch | list[Record] | _Lines


class Pipeline:
    """Implements ``collector.component.Sink`` over a ``Store``."""

    def __init__(
        self,
        store: Store,
        *,
        queue: QueueConfig,
        redactor: Redactor | None,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` stamps records without a time; ``monotonic`` gauges floods of lines."""
        self.store = store
        self._max_items = queue.max_items
        self._max_line_bytes = queue.max_line_bytes
        self._line_bytes = 0  # held by lines waiting to be parsed
        self._redactor = redactor
        self._clock = clock
        self._monotonic = monotonic
        self._spans: dict[str, deque[SpanBatch]] = {}  # lanes with spans queued, in turn order
        self._records: deque[list[Record] | _Lines] = deque()  # in id order
        self._record_lanes: deque[str] = deque()  # the lane of each entry of _records
        self._lanes: Counter[str] = Counter()  # items queued per lane that has offered
        self._flood = _FloodGauge()
        self._queued_items = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._parser: ThreadPoolExecutor | None = None
        self._closed = False
        self._parse_until = -math.inf  # monotonic; stopping, lines are parsed until then
        self._correlated: dict[str, bytes] = {}
        self._watchers: list[Callable[[SpanBatch | list[Record]], None]] = []
        self._next_record_id = 1
        self.accepted: Counter[str] = Counter()
        self.dropped: Counter[tuple[str, DropReason]] = Counter()
        self.accepted_by: Counter[tuple[str, str]] = Counter()  # (lane, signal)
        self.dropped_by: Counter[tuple[str, str, DropReason]] = Counter()  # (lane, signal, reason)
        # The drops above split in two: refused (never accepted) and lost after acceptance.
        self.refused: Counter[tuple[str, DropReason]] = Counter()
        self.lost: Counter[tuple[str, DropReason]] = Counter()
        self.queued_by_kind: Counter[str] = Counter()  # spans, records, lines
        self.lines_parsed = 0
        self.records_from_lines = 0
        self.redacted_record_values = 0
        self.redacted_span_values = 0

    # -- Sink -------------------------------------------------------------------------

    def resume_ids(self, next_id: int) -> None:
        """Give records ids from ``next_id`` on (above those a previous run kept)."""
        self._next_record_id = max(self._next_record_id, next_id)

    def lane(self, receiver: str) -> Sink:
        self._lanes.setdefault(receiver, 0)  # its reserve is kept from now on
        return _Lane(self, receiver)

    def offer_spans(self, batch: SpanBatch, *, receiver: str = _OWN) -> int:
        self._admit("spans", len(batch), receiver)
        self._spans.setdefault(receiver, deque()).append(batch)
        self._queued(len(batch), receiver, "spans")
        return len(batch)

    def offer_records(self, records: Sequence[Record], *, receiver: str = _OWN) -> int:
        """Also gives each record its id, so the caller can report it."""
        self._admit("records", len(records), receiver)
        for record in records:
            record.id = self._next_record_id
            self._next_record_id += 1
        self._records.append(list(records))
        self._record_lanes.append(receiver)
        self._queued(len(records), receiver, "records")
        return len(records)

    def offer_lines(
        self,
        source: LineSource,
        lines: Sequence[str],
        *,
        observed_ns: int | None = None,
        receiver: str = _OWN,
        kept_on_refusal: bool = False,
    ) -> int:
        line_count = _count_lines(lines)
        nbytes = _entry_bytes(lines)
        self._admit(
            "lines",
            len(lines),
            receiver,
            counted=0 if kept_on_refusal else line_count,
            line_bytes=nbytes,
        )
        self._flood.note(len(lines), self._monotonic())
        now = self._clock() if observed_ns is None else observed_ns
        self._records.append(_Lines(source, lines, now, self._next_record_id, line_count, nbytes))
        self._line_bytes += nbytes
        self._record_lanes.append(receiver)
        self._next_record_id += len(lines) + 1
        self._queued(len(lines), receiver, "lines", counted=line_count)
        return len(lines)

    def offer_metrics(self, data_points: int, *, receiver: str = _OWN) -> int:
        self.accepted["metric_points"] += data_points
        self.accepted_by[(receiver, "metric_points")] += data_points
        return data_points

    def count_dropped(
        self, signal: str, reason: DropReason, count: int, *, receiver: str = _OWN
    ) -> None:
        """Items refused before they were accepted (the sender was told)."""
        if count:
            self.refused[(signal, reason)] += count
            self._count_drop(signal, reason, count, receiver)

    def _count_lost(self, signal: str, reason: DropReason, count: int, receiver: str) -> None:
        """Items accepted, then dropped before they were stored."""
        if count:
            self.lost[(signal, reason)] += count
            self._count_drop(signal, reason, count, receiver)

    def _count_drop(self, signal: str, reason: DropReason, count: int, receiver: str) -> None:
        self.dropped[(signal, reason)] += count
        self.dropped_by[(receiver, signal, reason)] += count

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._closed = False
            # Plain lines are parsed on a thread of lower priority: a flood of log lines is
            # caught up with the CPU the application being debugged leaves free.
            self._parser = ThreadPoolExecutor(
                1, thread_name_prefix="gasoline-parse", initializer=lower_thread_priority
            )
            self._task = asyncio.create_task(self._run(), name="gasoline-pipeline")

    async def stop(self) -> None:
        """Stop accepting, store the spans and records queued, stop the consumer.
        Idempotent. Plain lines not parsed yet are parsed too if the store keeps them on
        disk, for ``_STOP_PARSE_S`` at most; the rest (all, in memory only: the store goes
        with the process) are dropped and counted."""
        self._closed = True
        if self._task is None:
            return
        history = self.store.records.history
        if history is not None and history.active:
            self._parse_until = self._monotonic() + _STOP_PARSE_S
            self._wakeup.set()
        await self.drained()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._parser is not None:
            self._parser.shutdown()
            self._parser = None

    async def drained(self) -> None:
        """Return once everything offered so far is in the store."""
        await self._idle.wait()

    @property
    def redactor(self) -> Redactor | None:
        return self._redactor

    @property
    def queue_depth(self) -> int:
        return self._queued_items

    @property
    def queue_capacity(self) -> int:
        return self._max_items

    # -- internals --------------------------------------------------------------------

    def _admit(
        self,
        signal: str,
        count: int,
        receiver: str,
        *,
        counted: int | None = None,
        line_bytes: int = 0,
    ) -> None:
        """Raise if ``count`` queue items (holding ``line_bytes`` of lines) do not fit;
        ``counted``: what a refusal counts (default ``count``; lines, for entries that may
        group several). One offer of lines larger than the bound fits an empty queue."""
        self._lanes.setdefault(receiver, 0)  # the pipeline's own lane, from its first offer
        refused = count if counted is None else counted
        if self._closed:
            self.count_dropped(signal, DropReason.SHUTTING_DOWN, refused, receiver=receiver)
            raise QueueFullError("gasoline is shutting down", retry_after_s=5)
        held = self._reserved_for_others(receiver)
        if self._queued_items + count + held > self._max_items:
            self.count_dropped(signal, DropReason.QUEUE_FULL, refused, receiver=receiver)
            raise QueueFullError(
                f"ingest queue is full for {receiver} ({self._queued_items} of "
                f"{self._max_items} items queued, {held} of them kept for other receivers; "
                "service.queue.max_items sets the size)"
            )
        if line_bytes and self._line_bytes and self._line_bytes + line_bytes > self._max_line_bytes:
            self.count_dropped(signal, DropReason.QUEUE_FULL, refused, receiver=receiver)
            raise QueueFullError(
                f"ingest queue holds {self._line_bytes / 2**20:.1f} MiB of lines waiting to be "
                f"parsed, and these {line_bytes / 2**20:.1f} MiB would pass its bound "
                f"({self._max_line_bytes / 2**20:.1f} MiB; service.queue.max_line_bytes sets it)"
            )

    def _split_lane(self, receiver: str, part: str) -> Sink:
        """A part's own lane; ``receiver``, the one it is part of, gives up its reserve
        (until it offers items itself)."""
        if not self._lanes[receiver]:
            self._lanes.pop(receiver, None)
        return self.lane(part)

    def _reserved_for_others(self, receiver: str) -> int:
        """Room that must stay free: the part of other lanes' reserves they do not use."""
        reserve = self.reserve
        return sum(
            max(0, reserve - queued) for lane, queued in self._lanes.items() if lane != receiver
        )

    @property
    def reserve(self) -> int:
        """Items of the queue each lane that has offered may always fill, whoever floods."""
        lanes = len(self._lanes)
        return self._max_items // (2 * lanes) if lanes > 1 else 0

    def _queued(
        self, count: int, receiver: str, signal: str, *, counted: int | None = None
    ) -> None:
        """``count`` queue items taken; ``counted`` (default ``count``) is what is accepted."""
        self._queued_items += count
        self._lanes[receiver] += count
        accepted = count if counted is None else counted
        self.queued_by_kind[signal] += accepted
        self.accepted[signal] += accepted
        self.accepted_by[(receiver, signal)] += accepted
        self._idle.clear()
        self._wakeup.set()

    def _next_spans(self) -> tuple[str, SpanBatch]:
        """The next span batch, from each lane with spans queued in turn."""
        lane, batches = next(iter(self._spans.items()))
        del self._spans[lane]
        batch = batches.popleft()
        if batches:
            self._spans[lane] = batches  # to the back of the turn
        return lane, batch

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            slice_end = time.perf_counter() + _SLICE_S
            while self._spans or self._records:
                item: _Item
                if self._spans:
                    lane, item = self._next_spans()
                    size = len(item)
                elif not isinstance(self._records[0], _Lines):
                    item = self._records.popleft()
                    lane = self._record_lanes.popleft()
                    size = len(item)
                elif self._closed and self._monotonic() >= self._parse_until:
                    self._drop_unparsed(self._records[0], self._record_lanes.popleft())
                    self._records.popleft()
                    continue
                elif (
                    not self._closed
                    and self._queued_items < self._max_items // 2
                    and self._line_bytes < self._max_line_bytes // 2
                    and self._flood.defer(self._monotonic())
                ):
                    await asyncio.sleep(_FLOOD_WINDOW_S / 4)
                    continue
                else:
                    item = self._records[0]
                    lane = self._record_lanes[0]
                    size = min(len(item), _LINES_PER_STEP)
                    if size == len(item):
                        self._records.popleft()
                        self._record_lanes.popleft()
                if isinstance(item, _Lines):
                    await self._parse(item, size, lane)
                else:
                    self._store(item, lane)
                    kind = "spans" if isinstance(item, SpanBatch) else "records"
                    self._dequeued(size, lane, kind)
                if (self._spans or self._records) and time.perf_counter() > slice_end:
                    await asyncio.sleep(0)  # let receivers run, then carry on draining
                    slice_end = time.perf_counter() + _SLICE_S
            self._idle.set()

    def _drop_unparsed(self, item: _Lines, lane: str) -> None:
        left = item.line_count - item.lines_done
        self._line_bytes -= item.nbytes - item.bytes_done
        self._count_lost("lines", DropReason.SHUTTING_DOWN, left, lane)
        self._dequeued(len(item), lane, "lines", counted=left)

    async def _parse(self, item: _Lines, size: int, lane: str) -> None:
        """Parse ``size`` of ``item``'s lines and store the records made of them."""
        loop = asyncio.get_running_loop()
        before = item.lines_done
        try:
            records = await loop.run_in_executor(self._parser, item.step, size)
        except Exception:  # a task boundary: count, log once, keep consuming
            lines = item.lines_done - before
            _log.exception("pipeline: failed to parse %d lines", lines)
            self._count_lost("lines", DropReason.INVALID, lines, lane)
            records = []
        else:
            lines = item.lines_done - before
            self.lines_parsed += lines
            self.records_from_lines += len(records)
        self._line_bytes -= item.release()
        self._dequeued(size, lane, "lines", counted=lines)
        if records:
            self._store(records, lane)

    def watch(self, callback: Callable[[SpanBatch | list[Record]], None]) -> None:
        """Call ``callback`` with every batch of spans or records once it is stored, on the
        loop. It must not block (hand work to a task) nor keep the batch."""
        self._watchers.append(callback)

    def _store(self, item: SpanBatch | list[Record], lane: str) -> None:
        try:
            self._process(item)
        except Exception:  # a task boundary: count, log once, keep consuming
            _log.exception("pipeline: failed to store a batch of %d items", len(item))
            signal = "spans" if isinstance(item, SpanBatch) else "records"
            self._count_lost(signal, DropReason.INVALID, len(item), lane)
            return
        for watcher in self._watchers:
            try:
                watcher(item)
            except Exception:  # stored already: a watcher's fault loses nothing
                _log.exception("pipeline: a watcher failed on a batch of %d items", len(item))

    def _dequeued(self, count: int, lane: str, signal: str, *, counted: int | None = None) -> None:
        self._queued_items -= count
        self._lanes[lane] -= count
        self.queued_by_kind[signal] -= count if counted is None else counted

    def _process(self, item: SpanBatch | list[Record]) -> None:
        now = self._clock()
        if isinstance(item, SpanBatch):
            self.redacted_span_values += item.redacted  # replaced as the receiver decoded
            self.store.spans.add(item, now)
            for correlation_id, trace_id in item.correlations:
                self._learn(correlation_id, trace_id)
            return
        for record in item:
            self.store.records.cap(record)  # first: redaction walks the nested values
        if self._redactor is not None:
            self.redacted_record_values += self._redactor.redact_records(item)
        for record in item:
            self._correlate(record)
        self.store.records.add(item, now)

    def _correlate(self, record: Record) -> None:
        """Link a record that carries only a correlation id to the trace that id was seen on."""
        cid = record.correlation_id
        if not cid:
            return
        if record.trace_id is None:
            record.trace_id = self._correlated.get(cid)
        else:
            self._learn(cid, record.trace_id)

    def _learn(self, correlation_id: str, trace_id: bytes) -> None:
        """Remember which trace a request id belongs to; records stored before this
        moment with only that id join the trace too (the record store links them)."""
        if correlation_id in self._correlated:
            return
        if len(self._correlated) >= _MAX_CORRELATIONS:
            del self._correlated[next(iter(self._correlated))]
        self._correlated[correlation_id] = trace_id
        self.store.records.link(correlation_id, trace_id)

    def accounting(self) -> dict[str, Any]:
        """Where everything accepted went, one unit per kind, so that for spans and records
        ``accepted (+ from_lines) + restored == queued + stored + sum(dropped) +
        sum(evicted)`` (``restored``: read back from disk at start) and for lines
        ``accepted == queued + parsed + sum(dropped)``; ``refused`` was never accepted.
        """
        spans, records = self.store.spans, self.store.records
        refused: dict[str, dict[str, int]] = {}
        for (signal, reason), count in self.refused.items():
            refused.setdefault(signal, {})[reason.value] = count
        spans_dropped = self._lost("spans")
        for reason, count in spans.dropped.items():
            spans_dropped[reason.value] = spans_dropped.get(reason.value, 0) + count
        return {
            "spans": {
                "accepted": self.accepted["spans"],
                "restored": spans.restored,
                "queued": self.queued_by_kind["spans"],
                "stored": spans.span_count,
                "dropped": spans_dropped,
                "evicted": {k.value: v for k, v in spans.evicted_spans.items()},
            },
            "records": {
                "accepted": self.accepted["records"],
                "from_lines": self.records_from_lines,
                "restored": records.restored,
                "queued": self.queued_by_kind["records"],
                "stored": len(records),
                "dropped": self._lost("records"),
                "evicted": {k.value: v for k, v in records.evicted.items()},
            },
            "lines": {
                "accepted": self.accepted["lines"],
                "queued": self.queued_by_kind["lines"],
                "parsed": self.lines_parsed,
                "dropped": self._lost("lines"),
            },
            "refused": refused,
        }

    def _lost(self, signal: str) -> dict[str, int]:
        return {reason.value: n for (kind, reason), n in self.lost.items() if kind == signal}

    def stats(self) -> dict[str, Any]:
        dropped: dict[str, dict[str, int]] = {}
        for (signal, reason), count in self.dropped.items():
            dropped.setdefault(signal, {})[reason.value] = count
        receivers: dict[str, dict[str, Any]] = {}

        def part(lane: str) -> dict[str, Any]:
            empty = {"queued": self._lanes[lane], "accepted": {}, "dropped": {}}
            return receivers.setdefault(lane, empty)

        for lane in self._lanes:
            part(lane)
        for (lane, signal), count in self.accepted_by.items():
            part(lane)["accepted"][signal] = count
        for (lane, signal, reason), count in self.dropped_by.items():
            part(lane)["dropped"].setdefault(signal, {})[reason.value] = count
        return {
            "queue": {
                "depth": self._queued_items,
                "capacity": self._max_items,
                "reserve_per_receiver": self.reserve,
                "line_bytes": self._line_bytes,
                "max_line_bytes": self._max_line_bytes,
            },
            "accepted": dict(self.accepted),
            "dropped": dropped,
            "receivers": receivers,
            "redacted_record_values": self.redacted_record_values,
            "redacted_span_values": self.redacted_span_values,
        }


class _Lane:
    """The pipeline as one receiver sees it: its offers are admitted and counted as its own."""

    __slots__ = ("_name", "_pipeline")

    def __init__(self, pipeline: Pipeline, name: str) -> None:
        self._pipeline = pipeline
        self._name = name

    def lane(self, receiver: str) -> Sink:
        return self._pipeline._split_lane(self._name, receiver)

    @property
    def redactor(self) -> Redactor | None:
        return self._pipeline.redactor

    def offer_spans(self, batch: SpanBatch) -> int:
        return self._pipeline.offer_spans(batch, receiver=self._name)

    def offer_records(self, records: Sequence[Record]) -> int:
        return self._pipeline.offer_records(records, receiver=self._name)

    def offer_lines(
        self,
        source: LineSource,
        lines: Sequence[str],
        *,
        observed_ns: int | None = None,
        kept_on_refusal: bool = False,
    ) -> int:
        return self._pipeline.offer_lines(
            source,
            lines,
            observed_ns=observed_ns,
            receiver=self._name,
            kept_on_refusal=kept_on_refusal,
        )

    def offer_metrics(self, data_points: int) -> int:
        return self._pipeline.offer_metrics(data_points, receiver=self._name)

    def count_dropped(self, signal: str, reason: DropReason, count: int) -> None:
        self._pipeline.count_dropped(signal, reason, count, receiver=self._name)
