"""Where a trace's time went: layers, the critical path, the slowest spans by self time,
and repeated sequential calls (the N+1 query pattern)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

from collector.analysis.signals import is_database
from collector.analysis.timing import latency_breakdown, self_time_ns, short_critical_path
from collector.bounded import Answer
from collector.trace_tree import Node, TraceTree

__all__ = ["LatencyAnswer", "analyze_latency", "repeated_calls"]


class LatencyAnswer(Answer):
    """``analyze type=latency``: where the time went, repeated calls (N+1) first."""

    trace_id: str
    latency_breakdown: dict[str, Any]  # total_ms, <layer>_ms, by_service
    repeated_calls: list[dict[str, Any]]
    slowest_self_time: list[dict[str, Any]]
    critical_path: list[dict[str, Any]]
    critical_path_spans: int
    summary: str


_MIN_REPEATS = 5
_TOP = 5


def repeated_calls(tree: TraceTree) -> list[dict[str, Any]]:
    """Children of one span with the same service and name, called one after another."""
    found: list[dict[str, Any]] = []
    for node in tree.nodes.values():
        groups: dict[tuple[str, str], list[Node]] = defaultdict(list)
        for child in node.children:
            groups[(child.span.service, child.span.name)].append(child)
        for (service, name), calls in groups.items():
            if len(calls) < _MIN_REPEATS:
                continue
            calls.sort(key=lambda c: c.span.start_ns)
            sequential = sum(
                1 for a, b in itertools.pairwise(calls) if b.span.start_ns >= a.span.end_ns
            )
            total_ns = sum(c.span.duration_ns for c in calls)
            parent_ns = max(1, node.span.duration_ns)
            found.append(
                {
                    "parent_span_id": node.span.span_id.hex(),
                    "parent": f"{node.span.service} {node.span.name}",
                    "service": service,
                    "name": name,
                    "count": len(calls),
                    "sequential": sequential + 1 == len(calls),
                    "total_ms": round(total_ns / 1e6, 3),
                    "share_of_parent": round(total_ns / parent_ns, 3),
                    "database": is_database(calls[0]),
                    "span_ids": [c.span.span_id.hex() for c in calls[:3]],
                    "hint": (
                        f"{len(calls)} {'sequential ' * (sequential + 1 == len(calls))}calls "
                        f"of {name!r} under {node.span.name!r}"
                        + (
                            "; batch them into one query (N+1 pattern)"
                            if is_database(calls[0])
                            else "; batch or parallelise them"
                        )
                    ),
                }
            )
    found.sort(key=lambda r: r["total_ms"], reverse=True)
    return found


def analyze_latency(tree: TraceTree) -> LatencyAnswer:
    breakdown = latency_breakdown(tree)
    slowest = sorted(tree.nodes.values(), key=self_time_ns, reverse=True)[:_TOP]
    repeats = repeated_calls(tree)
    total = breakdown["total_ms"]
    layers = sorted(
        ((k[:-3], v) for k, v in breakdown.items() if k.endswith("_ms") and k != "total_ms"),
        key=lambda kv: kv[1],
        reverse=True,
    )
    summary = (
        f"{total:.1f} ms in all; "
        + ", ".join(
            f"{name} {value:.1f} ms ({value / total:.0%})" for name, value in layers if value > 0
        )
        if total
        else "The trace has no duration."
    )
    if repeats:
        summary += f". Biggest pattern: {repeats[0]['hint']}, {repeats[0]['total_ms']:.1f} ms."
    path, path_length = short_critical_path(tree)
    return {
        "trace_id": tree.trace_id.hex(),
        "latency_breakdown": breakdown,
        "repeated_calls": repeats[:_TOP],
        "slowest_self_time": [
            {
                "span_id": n.span.span_id.hex(),
                "service": n.span.service,
                "name": n.span.name,
                "self_ms": round(self_time_ns(n) / 1e6, 3),
                "duration_ms": round(n.span.duration_ns / 1e6, 3),
            }
            for n in slowest
        ],
        "critical_path": [
            {
                "span_id": n.span.span_id.hex(),
                "service": n.span.service,
                "name": n.span.name,
                "self_ms": round(self_time_ns(n) / 1e6, 3),
            }
            for n in path
        ],
        "critical_path_spans": path_length,
        "summary": summary,
    }
