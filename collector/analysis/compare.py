"""Two traces of one operation, span by span: what was added, what is missing, what got
slower, what newly fails.

Spans are matched by service, name and path (the service and name of every ancestor),
so the same call made from two places are two different spans; repeated calls at one
path (an N+1 loop, retries) pair up in start order. ``a`` is the reference (yesterday's
fast checkout), ``b`` the trace in question. A matched span is slower when it took at
least ``SLOWER_MS`` and ``SLOWER_FACTOR`` times longer in ``b``. Each list is cut to
``MAX_ITEMS``, biggest first, with its full count beside it.

A trace can also be held against a saved baseline (``collector.baselines``: per
operation, the p50/p95 and error rate of SERVER spans and trace roots): an operation of
the trace is slower when it took ``SLOWER_FACTOR`` times its baseline p95 and at least
``SLOWER_MS`` more, added when the baseline never saw it, a new error when it failed and
never did in the baseline.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from collector.bounded import Answer
from collector.model import SpanKind
from collector.trace_tree import Node, TraceTree

__all__ = [
    "MAX_ITEMS",
    "SLOWER_FACTOR",
    "SLOWER_MS",
    "CompareAnswer",
    "compare_to_baseline",
    "compare_traces",
]

MAX_ITEMS = 25
SLOWER_MS = 1.0
SLOWER_FACTOR = 1.1


class CompareAnswer(Answer, total=False):
    """``analyze type=compare``: trace ``b`` against trace ``a`` (``compare_to``) or
    against a saved ``baseline``; each list holds up to ``MAX_ITEMS``, its ``_count`` all."""

    a: dict[str, Any]  # trace_id, duration_ms, span_count; against a trace
    baseline: str | None  # the baseline's name; against a baseline
    b: dict[str, Any]
    delta_ms: float
    matched: int
    faster_count: int
    slower: list[dict[str, Any]]
    slower_count: int
    new_errors: list[dict[str, Any]]
    new_errors_count: int
    added: list[dict[str, Any]]
    added_count: int
    missing: list[dict[str, Any]]
    missing_count: int
    summary: str


_Key = tuple[str, str, int]  # service, name, the parent's path id
_PATH_LEVELS = 6  # ancestors named in an item's ``path``


def _paths(tree: TraceTree, interned: dict[tuple[int, str, str], int]) -> dict[_Key, list[Node]]:
    """Nodes by (service, name, path), each list in start order. A path is an id interned
    in ``interned`` (shared by both trees), so a 10,000-deep chain costs no more than a
    flat trace."""
    keyed: dict[_Key, list[Node]] = defaultdict(list)
    path_of: dict[int, int] = {}
    for node in tree.walk():  # parents before children
        parent = node.parent
        above = path_of[id(parent)] if parent is not None else -1
        own = (above, node.span.service, node.span.name)
        path_of[id(node)] = interned.setdefault(own, len(interned))
        keyed[(node.span.service, node.span.name, above)].append(node)
    for nodes in keyed.values():
        nodes.sort(key=lambda n: n.span.start_ns)
    return keyed


def _ref(node: Node) -> dict[str, Any]:
    names: list[str] = []
    above = node.parent
    while above is not None and len(names) < _PATH_LEVELS:
        names.append(f"{above.span.service} {above.span.name}")
        above = above.parent
    if above is not None:
        names.append("...")
    return {
        "span_id": node.span.span_id.hex(),
        "service": node.span.service,
        "name": node.span.name,
        "duration_ms": round(node.span.duration_ns / 1e6, 3),
        "path": " > ".join(reversed(names)),
    }


def compare_traces(a: TraceTree, b: TraceTree) -> CompareAnswer:
    """``b`` against ``a``: ``added``, ``missing``, ``slower`` (with ``delta_ms``),
    ``new_errors``, and how many spans matched."""
    interned: dict[tuple[int, str, str], int] = {}
    left, right = _paths(a, interned), _paths(b, interned)
    added: list[dict[str, Any]] = []
    missing: list[dict[str, Any]] = []
    slower: list[dict[str, Any]] = []
    new_errors: list[dict[str, Any]] = []
    matched = faster = 0
    for key in dict.fromkeys([*left, *right]):
        before, after = left.get(key, []), right.get(key, [])
        for old, new in zip(before, after, strict=False):
            matched += 1
            old_ms, new_ms = old.span.duration_ns / 1e6, new.span.duration_ns / 1e6
            delta = new_ms - old_ms
            if delta >= SLOWER_MS and new_ms >= old_ms * SLOWER_FACTOR:
                slower.append(
                    {
                        **_ref(new),
                        "a_span_id": old.span.span_id.hex(),
                        "a_duration_ms": round(old_ms, 3),
                        "delta_ms": round(delta, 3),
                    }
                )
            elif -delta >= SLOWER_MS and old_ms >= new_ms * SLOWER_FACTOR:
                faster += 1
            if new.is_error and not old.is_error:
                new_errors.append({**_ref(new), "matched": True})
        for new in after[len(before) :]:
            added.append({**_ref(new)})
            if new.is_error:
                new_errors.append({**_ref(new), "matched": False})
        for old in before[len(after) :]:
            missing.append({**_ref(old)})
    slower.sort(key=lambda s: -s["delta_ms"])
    a_ms = (a.end_ns - a.start_ns) / 1e6 if a.nodes else 0.0
    b_ms = (b.end_ns - b.start_ns) / 1e6 if b.nodes else 0.0
    answer: CompareAnswer = {
        "a": {"trace_id": a.trace_id.hex(), "duration_ms": a_ms, "span_count": len(a.nodes)},
        "b": {"trace_id": b.trace_id.hex(), "duration_ms": b_ms, "span_count": len(b.nodes)},
        "delta_ms": round(b_ms - a_ms, 3),
        "matched": matched,
        "faster_count": faster,
        "slower": slower[:MAX_ITEMS],
        "slower_count": len(slower),
        "new_errors": new_errors[:MAX_ITEMS],
        "new_errors_count": len(new_errors),
        "added": added[:MAX_ITEMS],
        "added_count": len(added),
        "missing": missing[:MAX_ITEMS],
        "missing_count": len(missing),
    }
    answer["summary"] = _summary(answer)
    return answer


def _summary(answer: CompareAnswer) -> str:
    text = (
        f"{answer['b']['trace_id'][:8]} took {answer['b']['duration_ms']:.1f} ms against "
        f"{answer['a']['duration_ms']:.1f} ms for {answer['a']['trace_id'][:8]} "
        f"({answer['delta_ms']:+.1f} ms); {answer['matched']} spans matched, "
        f"{answer['slower_count']} slower, {answer['added_count']} added, "
        f"{answer['missing_count']} missing, {answer['new_errors_count']} new errors."
    )
    if answer["slower"]:
        top = answer["slower"][0]
        text += (
            f" Most slower: {top['service']} {top['name']} "
            f"{top['a_duration_ms']:.1f} -> {top['duration_ms']:.1f} ms."
        )
    if answer["new_errors"]:
        first = answer["new_errors"][0]
        text += f" First new error: {first['service']} {first['name']}."
    return text


def compare_to_baseline(tree: TraceTree, baseline: dict[str, Any]) -> CompareAnswer:
    """The trace's operations (SERVER and CONSUMER spans, roots) against ``baseline``'s:
    ``slower`` (``delta_ms`` over the baseline p50), ``added``, ``new_errors``."""
    operations: dict[str, Any] = baseline.get("operations") or {}
    slower: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    new_errors: list[dict[str, Any]] = []
    matched = 0
    for node in tree.walk():
        if node.parent is not None and node.kind not in (SpanKind.SERVER, SpanKind.CONSUMER):
            continue
        before = operations.get(f"{node.span.service} {node.span.name}")
        took = node.span.duration_ns / 1e6
        if not isinstance(before, dict):
            added.append(_ref(node))
            if node.is_error:
                new_errors.append({**_ref(node), "matched": False})
            continue
        matched += 1
        p50, p95 = float(before.get("p50_ms", 0.0)), float(before.get("p95_ms", 0.0))
        if took - p95 >= SLOWER_MS and took >= p95 * SLOWER_FACTOR:
            slower.append(
                {
                    **_ref(node),
                    "baseline_p50_ms": p50,
                    "baseline_p95_ms": p95,
                    "delta_ms": round(took - p50, 3),
                }
            )
        if node.is_error and not before.get("error_rate"):
            new_errors.append({**_ref(node), "matched": True})
    slower.sort(key=lambda s: -s["delta_ms"])
    answer: CompareAnswer = {
        "baseline": baseline.get("name"),
        "b": {
            "trace_id": tree.trace_id.hex(),
            "duration_ms": (tree.end_ns - tree.start_ns) / 1e6 if tree.nodes else 0.0,
            "span_count": len(tree.nodes),
        },
        "matched": matched,
        "slower": slower[:MAX_ITEMS],
        "slower_count": len(slower),
        "new_errors": new_errors[:MAX_ITEMS],
        "new_errors_count": len(new_errors),
        "added": added[:MAX_ITEMS],
        "added_count": len(added),
    }
    answer["summary"] = (
        f"{answer['b']['trace_id'][:8]} against baseline {answer['baseline']!r}: "
        f"{matched} operations matched, {answer['slower_count']} slower than their p95, "
        f"{answer['added_count']} not in the baseline, {answer['new_errors_count']} new errors."
    )
    return answer
