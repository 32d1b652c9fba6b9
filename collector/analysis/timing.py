"""Where a trace's time went: self time, the critical path, and a breakdown by layer.

Self time is a span's duration minus the union of its children's intervals (clipped to
the span), so parallel children are not counted twice. Layers: ``browser`` (self time
of browser spans), ``network`` (a CLIENT span's self time when its callee reported a
SERVER span: the wire and the queues), ``database`` (spans with ``db.system``),
``external`` (CLIENT calls to peers that sent no spans), ``server`` (the rest).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from collector.analysis.signals import is_browser, is_database
from collector.model import SpanKind
from collector.trace_tree import Node, TraceTree

__all__ = [
    "LAYERS",
    "aligned",
    "critical_path",
    "latency_breakdown",
    "layer_of",
    "self_time_ns",
    "short_critical_path",
]

LAYERS = ("browser", "network", "server", "database", "external")


def aligned(child: Node) -> tuple[int, int]:
    """The child's interval on its parent's clock.

    Another service's clock may be skewed; a child from another service that does not
    fit inside its parent is centred in it, as symmetric network time would place it.
    """
    start, end = child.span.start_ns, child.span.end_ns
    parent = child.parent
    if parent is None or parent.span.service == child.span.service:
        return start, end
    p_start, p_end = parent.span.start_ns, parent.span.end_ns
    if p_start <= start and end <= p_end:
        return start, end
    mid = (p_start + p_end) // 2
    half = (end - start) // 2
    return mid - half, mid - half + (end - start)


def clock_shifts(tree: TraceTree) -> tuple[dict[int, int], dict[str, int], int]:
    """How far each span must move to sit on its root's clock.

    ``aligned`` places a child from another service inside its parent; the move carries
    down to the child's own descendants, which share its clock. Orphans take the move
    of the first placed span of their service. Returns per-node moves, per-service moves
    and the browser's move (for browser records that name no service). Whether a service
    is the browser is read from its first span's resource, so only one span per service
    is decoded.
    """
    shift: dict[int, int] = {}
    by_service: dict[str, int] = {}
    browser: int | None = None
    for node in tree.walk():
        if node.parent is None:
            delta = by_service.get(node.span.service, 0) if node.orphan else 0
        else:
            delta = shift[id(node.parent)] + aligned(node)[0] - node.span.start_ns
        shift[id(node)] = delta
        first_of_service = node.span.service not in by_service
        by_service.setdefault(node.span.service, delta)
        if browser is None and first_of_service and is_browser(node):
            browser = delta
    return shift, by_service, browser or 0


def self_time_ns(node: Node) -> int:
    start, end = node.span.start_ns, node.span.end_ns
    if end <= start:
        return 0
    covered = 0
    cursor = start
    for c_start, c_end in sorted(aligned(child) for child in node.children):
        c_start = max(c_start, cursor)
        c_end = min(c_end, end)
        if c_end > c_start:
            covered += c_end - c_start
            cursor = c_end
    return end - start - covered


def layer_of(node: Node) -> str:
    if is_database(node):
        return "database"
    if node.kind == SpanKind.CLIENT:
        if any(c.kind == SpanKind.SERVER for c in node.children):
            return "network"
        if not node.children:
            return "external"
    if is_browser(node):
        return "browser"
    return "server"


def latency_breakdown(tree: TraceTree) -> dict[str, Any]:
    """Milliseconds per layer and per service; the layers add up to the spans' self time."""
    layers: dict[str, float] = dict.fromkeys(LAYERS, 0.0)
    by_service: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(LAYERS, 0.0))
    for node in tree.nodes.values():
        ms = self_time_ns(node) / 1e6
        layer = layer_of(node)
        layers[layer] += ms
        by_service[node.span.service][layer] += ms
    total_ms = (tree.end_ns - tree.start_ns) / 1e6 if tree.nodes else 0.0
    return {
        "total_ms": round(total_ms, 3),
        **{f"{layer}_ms": round(v, 3) for layer, v in layers.items()},
        "by_service": {
            service: {f"{layer}_ms": round(v, 3) for layer, v in values.items() if v}
            for service, values in sorted(by_service.items())
        },
    }


def short_critical_path(tree: TraceTree, *, keep: int = 12) -> tuple[list[Node], int]:
    """The critical path cut to its root and the ``keep`` spans with the most self time,
    still in path order; and the full path's length. Keeps answers small on big traces."""
    path = critical_path(tree)
    if len(path) <= keep:
        return path, len(path)
    heavy = {id(n) for n in sorted(path[1:], key=self_time_ns, reverse=True)[: keep - 1]}
    return [n for i, n in enumerate(path) if i == 0 or id(n) in heavy], len(path)


def critical_path(tree: TraceTree) -> list[Node]:
    """The chain of spans that determined the end of the trace, from the root down.

    From a span, follow the child that finished last; then, walking back in time, each
    earlier child that finished before the previous one started. Those spans' self time
    is what made the request as slow as it was.
    """
    if not tree.roots:
        return []
    root = max(
        (r for r in tree.roots if not r.orphan),
        default=tree.roots[0],
        key=lambda r: r.span.end_ns - r.span.start_ns,
    )
    path: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        path.append(node)
        boundary = node.span.end_ns
        chosen: list[Node] = []
        for child, (start, end) in sorted(
            ((c, aligned(c)) for c in node.children), key=lambda ca: ca[1][1], reverse=True
        ):
            if not chosen or end <= boundary:
                chosen.append(child)
                boundary = start
        stack.extend(chosen)  # earliest-ending popped last, so the path reads in time order
    return path
