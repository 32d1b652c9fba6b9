"""The Bloom filters of a history's blocks, kept side by side so a query asks them all at
C speed.

A day is ~5,200 blocks; asking each block's filter in a Python loop cost ~4 ms of a trace
lookup and ~13 ms of a text query no block holds. Here filters of one shape (byte
length, and bits set a key) sit in chunks, slot after slot, so ``chunk[byte::length]``
is that byte of every block's filter in one slice; ``bytes.translate`` turns it into 0/1
per block for one bit, and the probes are ANDed as one big int per chunk (a chunk stops
at the first probe that leaves nothing). The answer is the same as asking each filter
(``Probe.admitted_by``, ``TextQuery.admitted_by``): a block is never skipped wrongly.

The shelf is where the filters live: ``add`` copies a filter into its slot and attaches
a read-only view of it to the block's head (for single-block uses), so the head's own
bytes are freed and a day's ~190 MiB are held once. A chunk is an anonymous private
mapping: pages no filter was written to cost no memory, and a dropped block's pages go
back to the kernel at once (``MADV_DONTNEED``; a page it shares with a neighbour once
that one is dropped too); a chunk goes when its last block does. Text filters' lengths
vary with their blocks' keys (~140 lengths in a day of retention_bench's lines), so a
length's chunk starts at ``_MIN_SLOTS`` slots and, when full, its live filters move to
one twice their number (views attached anew), until a chunk of ``_MAX_SLOTS`` follows:
one chunk, so a few slices, per length. Adding a block copies one filter, or a small
chunk when it grows (under 2 MiB, ~2 ms); dropping one copies nothing. Measured with
bench/filter_bench.py over 5,200 blocks: a trace id's filters in 0.23 ms instead of
4.2 (main's loop), a rare text's in 0.5 to 0.8 ms instead of 10.
"""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

__all__ = ["FilterShelf", "Probes"]

_MIN_SLOTS = 4
_MAX_SLOTS = 512
# For each bit mask, a table that turns a byte into 1 if that bit is set, else 0.
_BIT_SET = {1 << k: bytes((b >> k) & 1 for b in range(256)) for k in range(8)}

T = TypeVar("T")


class Probes(Protocol):
    """A key (``Probe``) or a text (``TextQuery``) as a filter of a given size asks it."""

    def probes(self, nbytes: int, hashes: int) -> Iterable[tuple[int, int]]:
        """The (byte, bit mask) pairs that must all be set in a filter of ``nbytes`` that
        sets ``hashes`` bits a key; none if every such filter admits it."""
        ...


class _Replay:
    """Probes pulled once from their source, as the chunks of one shape ask for them."""

    __slots__ = ("_pulled", "_source")

    def __init__(self, source: Iterable[tuple[int, int]]) -> None:
        self._source = iter(source)
        self._pulled: list[tuple[int, int]] = []

    def __iter__(self) -> Iterator[tuple[int, int]]:
        yield from self._pulled
        for probe in self._source:
            self._pulled.append(probe)
            yield probe


class _Chunk(Generic[T]):
    """Filters of one shape (length, bits a key), slot after slot; ``items[i]`` is None
    once slot i is dropped."""

    __slots__ = ("data", "items", "length", "live", "shape", "slots")

    def __init__(self, shape: tuple[int, int], slots: int) -> None:
        self.shape = shape
        length = self.length = shape[0]
        self.slots = slots
        self.data = mmap.mmap(-1, length * slots, flags=mmap.MAP_PRIVATE)
        self.items: list[T | None] = []
        self.live = 0

    @property
    def full(self) -> bool:
        return len(self.items) == self.slots

    def put(self, item: T, bloom: bytes | memoryview) -> memoryview:
        """Write ``bloom`` to the next slot; a read-only view of it."""
        start = len(self.items) * self.length
        self.data[start : start + self.length] = bloom
        self.items.append(item)
        self.live += 1
        return memoryview(self.data)[start : start + self.length].toreadonly()

    def free(self, slot: int) -> None:
        """Hand a dropped slot's pages back to the kernel: those wholly inside it, and
        (filters of a page or more) one it shares with a neighbour holding nothing live."""
        page, length = mmap.PAGESIZE, self.length
        start, end = slot * length, (slot + 1) * length
        left_free = slot == 0 or self.items[slot - 1] is None
        right_free = slot + 1 >= len(self.items) or self.items[slot + 1] is None
        start = start // page * page if length >= page and left_free else -(-start // page) * page
        end = -(-end // page) * page if length >= page and right_free else end // page * page
        end = min(end, len(self.data))
        if end > start:
            self.data.madvise(mmap.MADV_DONTNEED, start, end - start)

    def admitted(self, probes: Iterable[tuple[int, int]], out: list[T]) -> None:
        n = len(self.items)
        end = n * self.length
        hits = -1  # no probe: every filter admits it
        for at, bit in probes:
            hits &= int.from_bytes(self.data[at : end : self.length].translate(_BIT_SET[bit]))
            if not hits:
                return
        if hits == -1:
            out += [item for item in self.items if item is not None]
            return
        flags = hits.to_bytes(n)
        i = flags.find(1)
        while i != -1:
            item = self.items[i]
            if item is not None:
                out.append(item)
            i = flags.find(1, i + 1)


class FilterShelf(Generic[T]):
    """Bloom filters of one kind (all blocks' trace filters, or all their text filters),
    each held for an item (its block's head, known by identity). ``attach(item, view)``
    hands an item the view of its filter it keeps, when the filter is added and when it
    moves. Not thread-safe: the loop only."""

    __slots__ = ("_at", "_attach", "_chunks", "_empty", "added")

    def __init__(self, attach: Callable[[T, bytes | memoryview], None]) -> None:
        self._attach = attach
        self._chunks: dict[tuple[int, int], list[_Chunk[T]]] = {}  # by shape, oldest first
        self._at: dict[int, tuple[_Chunk[T], int]] = {}  # by id(item)
        self._empty: dict[int, T] = {}  # no filter (a block older than it): always asked
        self.added = 0
        """How many filters were ever added: an answer kept for a query is stale once
        this moves."""

    def __len__(self) -> int:
        return len(self._at) + len(self._empty)

    def add(self, item: T, bloom: bytes | memoryview, hashes: int) -> None:
        """Shelve ``item``'s filter (an item not shelved yet; ``hashes`` bits set a key)
        and attach a read-only view of it to the item, in place of the item's own bytes."""
        key = id(item)
        if key in self._at or key in self._empty:
            raise ValueError(f"the filter shelf already holds a filter for {item!r}")
        self.added += 1
        shape = (len(bloom), hashes)
        if not bloom:
            self._empty[key] = item
            self._attach(item, b"")
            return
        chunks = self._chunks.setdefault(shape, [])
        if not chunks:
            chunks.append(_Chunk(shape, _MIN_SLOTS))
        elif chunks[-1].full and chunks[-1].slots < _MAX_SLOTS // 4:
            # A length seen a few times so far: its filters move to a chunk twice their
            # number (few chunks a length keeps a query's slices few; a move is < 2 MiB).
            chunks[-1] = self._moved(chunks[-1], 2 * (chunks[-1].live + 1))
        elif chunks[-1].full:
            chunks.append(_Chunk(shape, _MAX_SLOTS))
        chunk = chunks[-1]
        self._at[key] = (chunk, len(chunk.items))
        self._attach(item, chunk.put(item, bloom))

    def _moved(self, old: _Chunk[T], slots: int) -> _Chunk[T]:
        """A chunk of ``slots`` slots holding ``old``'s live filters (attached anew)."""
        new: _Chunk[T] = _Chunk(old.shape, min(_MAX_SLOTS, max(_MIN_SLOTS, slots)))
        for slot, item in enumerate(old.items):
            if item is not None:
                start = slot * old.length
                self._at[id(item)] = (new, len(new.items))
                self._attach(item, new.put(item, old.data[start : start + old.length]))
        return new

    def drop(self, item: T) -> None:
        """Forget ``item``'s filter (no-op if not shelved): its slot's whole pages go back
        to the kernel, and its chunk once no item is left in it."""
        key = id(item)
        if key in self._empty:
            del self._empty[key]
            return
        found = self._at.pop(key, None)
        if found is None:
            return
        chunk, slot = found
        chunk.items[slot] = None
        chunk.live -= 1
        if not chunk.live:
            chunks = self._chunks[chunk.shape]
            chunks.remove(chunk)  # dropped heads' views keep its pages until they go too
            if not chunks:
                del self._chunks[chunk.shape]
            return
        chunk.free(slot)

    def admitted(self, query: Probes) -> list[T]:
        """The items whose filter may hold ``query`` (every item without a filter among
        them), in no particular order."""
        out = list(self._empty.values())
        for shape, chunks in self._chunks.items():
            probes = _Replay(query.probes(*shape)) if len(chunks) > 1 else query.probes(*shape)
            for chunk in chunks:
                chunk.admitted(probes, out)
        return out
