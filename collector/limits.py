"""Size caps on one record, applied once at ingest, before redaction and storage.

A single event or log record must not be able to take more than its share of the
store, nor hold a value that later code cannot walk: every string is cut at
``max_value_chars``, nesting deeper than ``MAX_DEPTH`` levels is replaced by a marker,
and once the record's estimated size passes ``max_record_bytes`` the values not yet
visited are cut. Each cut leaves a visible marker in place of what was removed and is
counted. The walk is iterative (an explicit stack), so no input is too deep for it.

The same walk estimates the bytes the record keeps (``sys.getsizeof`` of each string,
number and container, which is exact for strings and cheap for all of them) and sets
``Record.size``, which the store counts against its byte budget.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from collector.model import Record

__all__ = ["MAX_DEPTH", "ValueLimits", "cap_record"]

MAX_DEPTH = 32
"""Levels of nesting kept in attributes and metadata; deeper values become a marker."""

DEEP_MARKER = f"…[nested deeper than {MAX_DEPTH} levels]"
_CUT_KEY = "…"
# The record object, its slots in a store chunk and its indexes, and allocator slack.
_RECORD_OVERHEAD = sys.getsizeof(Record(0, "", "", "")) + 96


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """``service.store.max_value_chars`` and ``service.store.max_record_bytes``."""

    max_value_chars: int = 65_536
    max_record_bytes: int = 1 << 20


class _Capper:
    """One record's walk: the bytes counted so far and the cuts made."""

    __slots__ = ("cuts", "limits", "size")

    def __init__(self, limits: ValueLimits) -> None:
        self.limits = limits
        self.size = 0
        self.cuts = 0

    def string(self, value: str) -> str:
        limit = self.limits.max_value_chars
        if len(value) > limit:
            value = f"{value[:limit]}…[truncated {len(value) - limit} characters]"
            self.cuts += 1
        self.size += sys.getsizeof(value)
        return value

    def over(self) -> bool:
        return self.size > self.limits.max_record_bytes

    def container(self, root: dict[str, Any] | list[Any]) -> None:
        """Cap ``root`` and everything under it, in place."""
        self.size += sys.getsizeof(root)
        stack: list[tuple[dict[str, Any] | list[Any], int]] = [(root, 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, dict):
                self._keys(node)
                entries: list[tuple[Any, Any]] = list(node.items())
            else:
                entries = list(enumerate(node))
            for position, (key, value) in enumerate(entries):
                if self.over():
                    self._cut_rest(node, entries[position:])
                    break
                if isinstance(value, dict | list):
                    if depth >= MAX_DEPTH:
                        node[key] = DEEP_MARKER
                        self.cuts += 1
                    else:
                        self.size += sys.getsizeof(value)
                        stack.append((value, depth + 1))
                elif isinstance(value, str):
                    node[key] = self.string(value)
                else:
                    self.size += sys.getsizeof(value)

    def _keys(self, node: dict[str, Any]) -> None:
        limit = self.limits.max_value_chars
        if any(isinstance(k, str) and len(k) > limit for k in node):
            items = [(self.string(k) if isinstance(k, str) else k, v) for k, v in node.items()]
            node.clear()
            node.update(items)
        else:
            self.size += sum(sys.getsizeof(k) for k in node)

    def _cut_rest(self, node: dict[str, Any] | list[Any], rest: list[tuple[Any, Any]]) -> None:
        marker = (
            f"…[{len(rest)} more value(s) cut: the record is over "
            f"{self.limits.max_record_bytes} bytes]"
        )
        if isinstance(node, dict):
            for key, _ in rest:
                del node[key]
            node[_CUT_KEY] = marker
        else:
            del node[rest[0][0] :]
            node.append(marker)
        self.size += sys.getsizeof(marker)
        self.cuts += 1


def cap_record(record: Record, limits: ValueLimits) -> int:
    """Cap the record's strings, nesting and total size in place and set ``record.size``.

    Returns how many values were cut. The caller owns the record (no one else reads it
    during the walk); the message is capped first, so it is never cut for size.
    """
    capper = _Capper(limits)
    record.message = capper.string(record.message)
    record.service = capper.string(record.service)
    if record.correlation_id is not None:
        record.correlation_id = capper.string(record.correlation_id)
    if record.tags:
        tags = list(record.tags)
        capper.container(tags)
        record.tags = tuple(str(t) for t in tags)
    if record.attributes:
        capper.container(record.attributes)
    record.size = _RECORD_OVERHEAD + capper.size
    return capper.cuts
