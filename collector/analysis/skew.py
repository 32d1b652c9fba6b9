"""Clock skew between services, estimated from CLIENT -> SERVER span nesting.

A server span should sit inside the client span that called it, with the network time
split evenly on both sides; the offset of its midpoint from the client's midpoint is
one sample of the callee's clock minus the caller's. Samples are grouped per service
pair; the median is the estimate.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from collector.model import SpanKind
from collector.trace_tree import TraceTree

__all__ = ["skew_report", "skew_samples"]

_CLIENT_TIME = "http.request.header.x-client-time"
_SYNCHRONIZED_MS = 10.0
_LARGE_MS = 1000.0


def skew_samples(tree: TraceTree) -> list[tuple[str, str, float]]:
    """(caller service, callee service, callee clock minus caller clock in ms).

    A SERVER span whose request carried the browser's ``X-Client-Time`` header (ms since
    the epoch, as the extension sends it) gives a sample for ``browser -> service`` too.
    """
    samples = []
    for node in tree.nodes.values():
        if node.kind == SpanKind.SERVER:
            client_ms = _client_time_ms(node.detail().attributes.get(_CLIENT_TIME))
            if client_ms is not None:
                samples.append(("browser", node.span.service, node.span.start_ns / 1e6 - client_ms))
        parent = node.parent
        if (
            parent is not None
            and node.kind == SpanKind.SERVER
            and parent.kind == SpanKind.CLIENT
            and parent.span.service != node.span.service
        ):
            client_mid = (parent.span.start_ns + parent.span.end_ns) / 2
            server_mid = (node.span.start_ns + node.span.end_ns) / 2
            samples.append(
                (parent.span.service, node.span.service, (server_mid - client_mid) / 1e6)
            )
    return samples


def _client_time_ms(value: Any) -> float | None:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def skew_report(trees: Iterable[TraceTree]) -> dict[str, Any]:
    """Overall figures plus one entry per service pair; the worst pair sets the status."""
    by_pair: dict[tuple[str, str], list[float]] = defaultdict(list)
    for tree in trees:
        for caller, callee, ms in skew_samples(tree):
            by_pair[(caller, callee)].append(ms)
    every = [ms for values in by_pair.values() for ms in values]
    pairs = {f"{a} -> {b}": _figures(values) for (a, b), values in sorted(by_pair.items())}
    worst = max((abs(p["median_skew_ms"]) for p in pairs.values()), default=0.0)
    status = (
        "unknown"
        if not every
        else "synchronized"
        if worst < _SYNCHRONIZED_MS
        else "detected"
        if worst < _LARGE_MS
        else "large_skew"
    )
    worst_pair = max(pairs, key=lambda k: abs(pairs[k]["median_skew_ms"]), default=None)
    return {
        **_figures(every),
        "status": status,
        "recommendation": _recommendation(status, worst_pair, pairs),
        "pairs": pairs,
    }


def _figures(values: list[float]) -> dict[str, Any]:
    if not values:
        return {
            "samples_collected": 0,
            "median_skew_ms": 0.0,
            "p95_skew_ms": 0.0,
            "p99_skew_ms": 0.0,
            "std_dev_ms": 0.0,
        }
    ordered = sorted(values)
    return {
        "samples_collected": len(values),
        "median_skew_ms": round(statistics.median(ordered), 3),
        "p95_skew_ms": round(_percentile(ordered, 0.95), 3),
        "p99_skew_ms": round(_percentile(ordered, 0.99), 3),
        "std_dev_ms": round(statistics.pstdev(ordered), 3),
    }


def _percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _recommendation(status: str, pair: str | None, pairs: dict[str, dict[str, Any]]) -> str:
    if status == "unknown":
        return (
            "No samples yet: skew is measured on calls between two services (a CLIENT span "
            "and its SERVER child); none has been seen."
        )
    if status == "synchronized":
        return "Clocks agree; timestamps across services can be compared directly."
    assert pair is not None
    ms = pairs[pair]["median_skew_ms"]
    text = (
        f"{pair}: the callee's clock reads {abs(ms):.0f} ms "
        f"{'ahead of' if ms > 0 else 'behind'} the caller's. Gasoline orders by the span "
        "tree, not raw timestamps, for these services"
    )
    if status == "large_skew":
        text += "; sync the machines' clocks (NTP) to compare their timestamps"
    return text + "."
