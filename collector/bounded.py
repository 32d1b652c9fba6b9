"""Answers that stay small and JSON-safe whatever shape the stored data has.

Stored values are user-shaped: event metadata and span attributes can nest hundreds of
levels, a trace can hold 100,000 spans. Everything here walks values with an explicit
stack, or recurses no deeper than a fixed cap (``compact``), so no input can raise
``RecursionError`` at answer time.

- ``cap_depth``: nested values below ``MAX_DEPTH`` become a marker string, so any JSON
  encoder (the daemon's, an agent's, ``jq``) can take the answer.
- ``compact``: what ``observe`` shows an agent: empty fields dropped, long strings and
  big mappings cut, nesting capped at ``_COMPACT_DEPTH``.
- ``fit``: the last net under every tool answer: while its compact JSON is over the
  budget, the biggest list or mapping in it is cut, and ``metadata.truncated`` says what
  was cut. Views that page (the timeline, errors, logs) budget their pages themselves
  with ``json_size``, so their cursors stay exact and ``fit`` rarely has anything to do.

``Answer`` is the base of every tool answer's declared type (``collector.tools`` says
where each lives): whatever else it holds, an answer may carry ``metadata``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict, TypeVar, cast, overload

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_DEPTH",
    "Answer",
    "Metadata",
    "cap_depth",
    "compact",
    "fit",
    "json_size",
    "note_truncated",
    "take_within",
]

MAX_DEPTH = 32
"""Levels of nesting kept in a nested value (metadata, attributes) of any answer."""
MAX_ANSWER_BYTES = 65_536
"""Compact JSON bytes of one tool answer; default answers are ~10 KB."""

_MAX_TEXT = 300
_TEXT_HEAD = 100
_TEXT_TAIL = 200
_MAX_METADATA_KEYS = 12
_COMPACT_DEPTH = 8
_MAX_FIT_ROUNDS = 64


class Metadata(TypedDict, total=False):
    """What an answer says about itself: paging, timing, and what was cut."""

    total_count: int
    total_count_exact: bool  # false: the scan stopped early, total_count is a lower bound
    cursor_next: str | None  # after_cursor for the next page; None on the last
    query_time_ms: float  # set on every answer by ``Toolbox.run``
    truncated: str  # what was left out, and how to get it (``note_truncated``)
    not_stored: list[str]  # ids asked for that are not in the store
    cycles: list[str]  # parent cycles broken in a trace


class Answer(TypedDict, total=False):
    """The base of every tool answer: ``fit`` and ``Toolbox.run`` write ``metadata``."""

    metadata: Metadata


AnswerT = TypeVar("AnswerT", bound=Mapping[str, Any])


_encode = json.JSONEncoder(separators=(",", ":"), default=str, check_circular=False).encode


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON, as the MCP server and the HTTP API send it
    (ASCII, so characters are bytes). ``value`` must already be depth-capped."""
    return len(_encode(value))


def _deep_marker(value: dict[Any, Any] | list[Any], depth: int) -> str:
    kind = "mapping" if isinstance(value, dict) else "list"
    return f"… ({kind} of {len(value)} nested deeper than {depth} levels: cut)"


def cap_depth(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` with every mapping or list nested below ``max_depth`` replaced by a
    marker string. Values that need no cut are returned as they are, not copied."""
    if not isinstance(value, dict | list) or _depth_within(value, max_depth):
        return value
    return _copy(value, max_depth)


def _depth_within(value: dict[Any, Any] | list[Any], max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list) and child:
                if depth >= max_depth:
                    return False
                stack.append((child, depth + 1))
    return True


def _head_and_tail(text: str) -> str:
    """The start and the end of a long text, the cut marked: a traceback's last lines
    (the exception) matter most, so more of the end is kept."""
    head, tail = text[:_TEXT_HEAD], text[len(text) - _TEXT_TAIL :]
    cut = len(text) - _TEXT_HEAD - _TEXT_TAIL
    return f"{head} …[{cut} of {len(text)} chars cut; observe event_ids shows all]… {tail}"


def compact(value: Any, *, depth: int = 0) -> Any:
    """Drop empty fields, cut long strings and large mappings: answers stay small.

    Nested mappings keep their first ``_MAX_METADATA_KEYS`` keys and a ``"…"`` key
    counting the rest; strings over ``_MAX_TEXT`` characters keep their start and end;
    a mapping or list nested ``_COMPACT_DEPTH`` levels down becomes a marker, which also
    bounds this function's own recursion.
    """
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else _head_and_tail(value)
    if isinstance(value, dict):
        if depth >= _COMPACT_DEPTH and value:
            return _deep_marker(value, _COMPACT_DEPTH)
        items = [
            (k, compact(v, depth=depth + 1))
            for k, v in value.items()
            if v is not None and v != [] and v != {} and v != ""
        ]
        if depth > 0 and len(items) > _MAX_METADATA_KEYS:
            extra = len(items) - _MAX_METADATA_KEYS
            items = [*items[:_MAX_METADATA_KEYS], ("…", f"{extra} more keys")]
        return dict(items)
    if isinstance(value, list):
        if depth >= _COMPACT_DEPTH and value:
            return _deep_marker(value, _COMPACT_DEPTH)
        return [compact(v, depth=depth + 1) for v in value]
    return value


def _copy(value: dict[Any, Any] | list[Any], max_depth: int) -> Any:
    """An iterative deep copy that replaces containers ``max_depth`` levels down with a
    marker. A new container is appended to its parent before its own items are filled,
    so the parent's key order is kept."""

    def shallow(item: Any, depth: int) -> Any:
        if not isinstance(item, dict | list):
            return item
        if depth >= max_depth and item:
            return _deep_marker(item, max_depth)
        out: dict[Any, Any] | list[Any] = {} if isinstance(item, dict) else []
        stack.append((item, out, depth))
        return out

    stack: list[tuple[Any, Any, int]] = []
    root = shallow(value, 0)
    while stack:
        source, target, depth = stack.pop()
        if isinstance(source, dict):
            for key, child in source.items():
                target[key] = shallow(child, depth + 1)
        else:
            target.extend(shallow(child, depth + 1) for child in source)
    return root


def take_within(items: Iterable[Any], max_bytes: int) -> list[Any]:
    """The leading ``items`` whose compact JSON adds up to at most ``max_bytes`` (always
    the first one). One measure of the whole list when it fits, the usual case."""
    taken = list(items)
    if json_size(taken) <= max_bytes:
        return taken
    used = 2
    for i, item in enumerate(taken):
        used += json_size(item) + 1
        if used > max_bytes and i:
            return taken[:i]
    return taken


def note_truncated(answer: Mapping[str, Any], text: str) -> None:
    """Say in ``metadata.truncated`` what was left out of ``answer``, and how to get it.
    ``answer`` is a dict (a plain one or an ``Answer``), changed in place."""
    metadata = cast(dict[str, Any], answer).setdefault("metadata", {})
    before = metadata.get("truncated")
    metadata["truncated"] = f"{before}; {text}" if before else text


@overload
def fit(answer: dict[str, Any], max_bytes: int = MAX_ANSWER_BYTES) -> dict[str, Any]: ...
@overload
def fit(answer: AnswerT, max_bytes: int = MAX_ANSWER_BYTES) -> AnswerT: ...
def fit(answer: AnswerT, max_bytes: int = MAX_ANSWER_BYTES) -> AnswerT:
    """``answer`` cut until its compact JSON is at most ``max_bytes``.

    Each round cuts the biggest list or mapping below the top level (never
    ``metadata``) to the items that fit, keeping its first items, and notes the cut in
    ``metadata.truncated``. A single string bigger than the budget is cut to its share.
    ``answer`` is changed in place and returned. A value nested past ``MAX_DEPTH`` that
    reached the answer uncut is cut first. ``answer`` is a dict (a plain one or an
    ``Answer``); its declared type is kept, though a cut may drop any of its keys.
    """
    _fit(cast(dict[str, Any], answer), max_bytes)
    return answer


def _fit(answer: dict[str, Any], max_bytes: int) -> None:
    try:
        size = json_size(answer)
    except RecursionError:
        capped = cap_depth(answer)
        answer.clear()
        answer.update(capped)
        note_truncated(answer, f"values nested deeper than {MAX_DEPTH} levels were cut")
        size = json_size(answer)
    for _ in range(_MAX_FIT_ROUNDS):
        if size <= max_bytes:
            return
        found = _biggest_part(answer)
        if found is None:
            break
        path, holder, key, part, part_size = found
        excess = size - max_bytes + 200  # room for the note itself
        allowed = max(0, part_size - excess)
        if isinstance(part, str):
            holder[key] = part[: max(0, allowed - 40)] + f"… ({len(part)} chars)"
            note_truncated(answer, f"{path}: cut to {allowed} of {len(part)} chars")
        else:
            total = len(part)
            kept = _prefix_within(part, allowed)
            _keep_first(part, kept)
            note_truncated(answer, f"{path}: kept {kept} of {total} items")
        size = json_size(answer)
    if size > max_bytes:
        kept_meta = {k: v for k, v in answer.get("metadata", {}).items() if k != "truncated"}
        answer.clear()
        answer["metadata"] = kept_meta
        note_truncated(answer, f"the answer could not be cut under {max_bytes} bytes")


def _keep_first(part: dict[Any, Any] | list[Any], kept: int) -> None:
    if isinstance(part, list):
        del part[kept:]
        return
    items = list(part.items())
    part.clear()
    part.update(items[:kept])
    part["…"] = f"{len(items) - kept} more keys"


def _prefix_within(part: dict[Any, Any] | list[Any], allowed: int) -> int:
    """How many leading items of ``part`` fit in ``allowed`` bytes; fewer than all."""
    items = list(part.items()) if isinstance(part, dict) else list(part)
    used = 2
    for i, item in enumerate(items):
        used += json_size(item) + 1
        if used > allowed:
            return min(i, len(items) - 1)
    return len(items) - 1


def _biggest_part(
    answer: dict[str, Any],
) -> tuple[str, Any, Any, dict[Any, Any] | list[Any] | str, int] | None:
    """The biggest cuttable value below the top level: a list or mapping of two or more
    items, or a long string; with its path, holder, key and size."""
    best: tuple[str, Any, Any, dict[Any, Any] | list[Any] | str, int] | None = None
    stack: list[tuple[str, Any, Any, Any]] = [
        (str(k), answer, k, v) for k, v in answer.items() if k != "metadata"
    ]
    while stack:
        path, holder, key, value = stack.pop()
        if isinstance(value, dict | list):
            cuttable = len(value) > 1
            children: list[tuple[Any, Any]] = (
                list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            )
        elif isinstance(value, str) and len(value) > 1000:
            cuttable, children = True, []
        else:
            continue
        if cuttable:
            size = json_size(value)
            if best is None or size > best[4]:
                best = (path, holder, key, value, size)
        for k, child in children:
            stack.append((f"{path}.{k}" if isinstance(value, dict) else path, value, k, child))
    return best
