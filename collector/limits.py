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

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from collector.model import Record

__all__ = ["DEEP_MARKER", "MAX_DEPTH", "ValueLimits", "cap_record", "json_int"]

MAX_DEPTH = 32
"""Levels of nesting kept in attributes and metadata; deeper values become a marker."""

DEEP_MARKER = f"…[nested deeper than {MAX_DEPTH} levels]"
_CUT_KEY = "…"
_SCALARS = frozenset((str, int, float, bool, type(None)))
_STR_HEADER = sys.getsizeof("")
# The record object, its slots in a store chunk and its indexes, and allocator slack.
_RECORD_OVERHEAD = sys.getsizeof(Record(0, "", "", "")) + 96


def json_int(text: str) -> int:
    """``json.loads``' ``parse_int``: an integer too long for ``int()`` (4300 digits) is a
    ``JSONDecodeError`` like any other bad JSON, not a ``ValueError`` the caller misses."""
    try:
        return int(text)
    except ValueError as exc:
        raise json.JSONDecodeError(f"integer of {len(text)} digits", text, 0) from exc


@dataclass(frozen=True, slots=True)
class ValueLimits:
    """``service.store.max_value_chars`` and ``service.store.max_record_bytes``."""

    max_value_chars: int = 65_536
    max_record_bytes: int = 1 << 20


def cap_record(record: Record, limits: ValueLimits) -> int:
    """Cap the record's strings, nesting and total size in place and set ``record.size``.

    Returns how many values were cut. The caller owns the record (no one else reads it
    during the walk); the message is capped first, so it is never cut for size.
    """
    chars = limits.max_value_chars
    cuts = 0
    if len(record.message) > chars:
        record.message = _cut(record.message, chars)
        cuts += 1
    if len(record.service) > chars:
        record.service = _cut(record.service, chars)
        cuts += 1
    if record.correlation_id is not None and len(record.correlation_id) > chars:
        record.correlation_id = _cut(record.correlation_id, chars)
        cuts += 1
    size = (
        _RECORD_OVERHEAD
        + sys.getsizeof(record.message)
        + sys.getsizeof(record.service)
        + sys.getsizeof(record.correlation_id)
    )
    if record.tags:
        tags = list(record.tags)
        cuts, size = _cap_tree(tags, limits, cuts, size)
        record.tags = tuple(tags)
    if record.attributes:
        cuts, size = _cap_tree(record.attributes, limits, cuts, size)
    record.size = size
    return cuts


def _cut(value: str, chars: int) -> str:
    return f"{value[:chars]}…[truncated {len(value) - chars} characters]"


def _cap_tree(
    root: dict[str, Any] | list[Any], limits: ValueLimits, cuts: int, size: int
) -> tuple[int, int]:
    """Cap ``root`` and everything under it in place; return the cuts and size so far."""
    chars = limits.max_value_chars
    max_bytes = limits.max_record_bytes
    getsizeof = sys.getsizeof
    short = chars + _STR_HEADER  # no str of this size or less is over ``chars``
    size += getsizeof(root)
    stack: list[tuple[Any, int]] = [(root, 1)]  # (a dict or a list, its depth)
    while stack:
        node, depth = stack.pop()
        values: Iterable[Any]
        items: Iterable[tuple[Any, Any]]
        if isinstance(node, dict):
            if max(map(len, node), default=0) > chars:
                long_keys = sum(len(k) > chars for k in node)
                entries = [(_cut(k, chars) if len(k) > chars else k, v) for k, v in node.items()]
                node.clear()
                node.update(entries)
                cuts += long_keys
            size += sum(map(getsizeof, node))
            values = node.values()
            items = node.items()
        else:
            values = node
            items = enumerate(node)
        if size > max_bytes:
            size += _cut_rest(node, 0, max_bytes)
            cuts += 1
            continue
        # Most containers hold only short scalars: measured in C, without the loop below.
        sizes = list(map(getsizeof, values))
        flat = sum(sizes)
        if (
            size + flat <= max_bytes
            and max(sizes, default=0) <= short
            and set(map(type, values)) <= _SCALARS
        ):
            size += flat
            continue
        for key, value in items:  # values are replaced in place, never added or removed
            kind = type(value)
            if kind is str:
                if len(value) > chars:
                    value = node[key] = _cut(value, chars)
                    cuts += 1
                size += getsizeof(value)
            elif kind is dict or kind is list or isinstance(value, dict | list):
                if depth >= MAX_DEPTH:
                    node[key] = DEEP_MARKER
                    cuts += 1
                else:
                    size += getsizeof(value)
                    stack.append((value, depth + 1))
            else:
                size += getsizeof(value)
            if size > max_bytes:
                kept = key + 1 if isinstance(node, list) else list(node).index(key) + 1
                if kept < len(node):
                    size += _cut_rest(node, kept, max_bytes)
                    cuts += 1
                break
    return cuts, size


def _cut_rest(node: dict[str, Any] | list[Any], kept: int, max_bytes: int) -> int:
    """Replace the values of ``node`` after the first ``kept`` by one marker; its size."""
    marker = f"…[{len(node) - kept} more value(s) cut: the record is over {max_bytes} bytes]"
    if isinstance(node, dict):
        for key in list(node)[kept:]:
            del node[key]
        node[_CUT_KEY] = marker
    else:
        del node[kept:]
        node.append(marker)
    return sys.getsizeof(marker)
