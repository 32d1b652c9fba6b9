"""One byte budget over the span and record stores, spent oldest-first.

Counts alone do not bound memory: one 1 MiB event weighs as much as ten thousand small
ones. Each store reports the bytes it keeps (an estimate made once per chunk or record,
at insert) and, when the two together pass ``max_bytes``, whichever store holds the
oldest data gives up its oldest chunk or record, until the total fits again.
"""

from __future__ import annotations

from typing import Protocol

from collector.model import DropReason

__all__ = ["BudgetMember", "ByteBudget"]


class BudgetMember(Protocol):
    """A store that spends from a ``ByteBudget``."""

    @property
    def nbytes(self) -> int:
        """Estimated bytes kept now."""
        ...

    def oldest_received_ns(self) -> int | None:
        """When the oldest thing kept arrived; None if empty."""
        ...

    def evict_oldest(self, reason: DropReason) -> None:
        """Evict the oldest chunk or record, counting it under ``reason``."""
        ...


class ByteBudget:
    """``limit`` bytes shared by the stores registered with ``join``.

    Not thread-safe: used from the daemon's event loop only.
    """

    __slots__ = ("limit", "members")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.members: list[BudgetMember] = []

    def join(self, member: BudgetMember) -> None:
        self.members.append(member)

    @property
    def used(self) -> int:
        return sum(m.nbytes for m in self.members)

    def enforce(self) -> None:
        """Evict oldest-first, across the stores, until what they keep fits ``limit``."""
        while self.used > self.limit:
            oldest: BudgetMember | None = None
            oldest_ns = 0
            for member in self.members:
                received_ns = member.oldest_received_ns()
                if received_ns is not None and (oldest is None or received_ns < oldest_ns):
                    oldest, oldest_ns = member, received_ns
            if oldest is None:
                return
            oldest.evict_oldest(DropReason.EVICTED_BYTE_LIMIT)
