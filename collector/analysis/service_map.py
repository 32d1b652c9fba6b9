"""The service map: which services call which, how often, how often it fails, how long.

Drawn from the newest traces' trees (``MAX_TRACES``, and no more than ``MAX_SPANS``
spans: a store of a few huge traces builds only as many as fit): a call edge is a span
whose parent belongs to another service (a CLIENT span's SERVER child, or any
cross-service parent link). Rates are over the time those traces span.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from collector.model import SpanKind
from collector.store import Store
from collector.trace_tree import TraceTree, build_tree

__all__ = ["MAX_SPANS", "MAX_TRACES", "newest_trees", "service_map"]

MAX_TRACES = 1000
MAX_SPANS = 200_000


def newest_trees(store: Store) -> list[TraceTree]:
    """The newest traces' trees (no records), up to ``MAX_TRACES`` and ``MAX_SPANS``."""
    trees: list[TraceTree] = []
    budget = MAX_SPANS
    for trace_id in store.spans.newest_trace_ids(MAX_TRACES):
        count = store.spans.trace_span_count(trace_id)
        if count > budget:
            break
        budget -= count
        trees.append(build_tree(trace_id, store.spans.trace(trace_id), []))
    return trees


def service_map(trees: list[TraceTree]) -> dict[str, Any]:
    """Nodes (spans, errors, traces, server p50/p99) and edges (calls, calls/s, error
    rate, p50/p99 of the called span) over ``trees``, busiest first."""
    spans: dict[str, int] = defaultdict(int)
    errors: dict[str, int] = defaultdict(int)
    traces: dict[str, int] = defaultdict(int)
    served: dict[str, list[float]] = defaultdict(list)
    calls: dict[tuple[str, str], list[float]] = defaultdict(list)
    call_errors: dict[tuple[str, str], int] = defaultdict(int)
    first, last, seen = None, None, 0
    for tree in trees:
        if not tree.nodes:
            continue
        seen += len(tree.nodes)
        first = tree.start_ns if first is None else min(first, tree.start_ns)
        last = tree.end_ns if last is None else max(last, tree.end_ns)
        in_trace: set[str] = set()
        for node in tree.nodes.values():
            service = node.span.service
            in_trace.add(service)
            spans[service] += 1
            errors[service] += node.is_error
            duration = node.span.duration_ns / 1e6
            if node.kind == SpanKind.SERVER or node.parent is None:
                served[service].append(duration)
            parent = node.parent
            if parent is not None and parent.span.service != service:
                edge = (parent.span.service, service)
                calls[edge].append(duration)
                call_errors[edge] += node.is_error
        for service in in_trace:
            traces[service] += 1
    window_s = max((last - first) / 1e9, 1e-3) if first is not None and last else 1.0
    nodes = [
        {
            "service": name,
            "spans": n,
            "errors": errors[name],
            "error_rate": round(errors[name] / n, 4),
            "traces": traces[name],
            "p50_ms": _pct(served[name], 0.5),
            "p99_ms": _pct(served[name], 0.99),
        }
        for name, n in sorted(spans.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    edges = [
        {
            "from": a,
            "to": b,
            "calls": len(durations),
            "rate_per_s": round(len(durations) / window_s, 3),
            "errors": call_errors[(a, b)],
            "error_rate": round(call_errors[(a, b)] / len(durations), 4),
            "p50_ms": _pct(durations, 0.5),
            "p99_ms": _pct(durations, 0.99),
        }
        for (a, b), durations in sorted(calls.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    return {
        "services": nodes,
        "edges": edges,
        "metadata": {"traces": len(trees), "spans": seen, "window_s": round(window_s, 3)},
    }


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)
