"""Answers on oddly shaped traces: latency and size of every view of one trace.

Three traces go through the OTLP codec into a ``Store``, as the daemon stores them: a
``--depth`` (10,000) deep parent chain whose deepest span fails, a ``--cycle`` (2,000)
span parent cycle, and a ``--wide`` (100,000) span trace (a root, 100 children with
999 children each, 3 attributes per span). For each, the median over ``--runs`` of:
``GET /v1/traces/{id}``'s document (default page, ``query.trace_document``), the
``gasoline trace`` rendering of that page, ``analyze causality`` and ``observe trace``
through ``Toolbox.run`` (as MCP and ``POST /v1/tools`` call them), with the compact-JSON
bytes of each answer. Nothing is asserted.

    python bench/deep_trace_bench.py
    python bench/deep_trace_bench.py --wide 20000 --runs 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import (  # noqa: E402
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
)

from collector.config import QueueConfig, StoreConfig  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.query import trace_document  # noqa: E402
from collector.render import render_trace  # noqa: E402
from collector.store import Store  # noqa: E402
from collector.tools import Toolbox  # noqa: E402
from receivers.otlp_codec import decode_traces  # noqa: E402

T0 = 1_790_000_000_000_000_000
_BATCH = 5000


def _span(trace_id: bytes, span_id: int, parent: int, name: str, start: int) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=T0 + start * 1000,
        end_time_unix_nano=T0 + start * 1000 + 500,
        attributes=[
            KeyValue(key="app.step", value=AnyValue(int_value=start)),
            KeyValue(key="app.note", value=AnyValue(string_value=f"{name} ran")),
            KeyValue(key="code.function", value=AnyValue(string_value="handle")),
        ],
    )


def _requests(spans: list[Span]) -> list[bytes]:
    resource = Resource(
        attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc"))]
    )
    return [
        ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=resource, scope_spans=[ScopeSpans(spans=spans[i : i + _BATCH])]
                )
            ]
        ).SerializeToString()
        for i in range(0, len(spans), _BATCH)
    ]


def chain(n: int) -> tuple[bytes, list[Span]]:
    trace_id = bytes.fromhex("c1" * 16)
    spans = [_span(trace_id, i + 1, i, f"level {i}", i) for i in range(n)]
    spans[-1].status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message="bottom failed"))
    return trace_id, spans


def cycle(n: int) -> tuple[bytes, list[Span]]:
    trace_id = bytes.fromhex("c2" * 16)
    return trace_id, [_span(trace_id, i + 1, (i + 1) % n + 1, f"loop {i}", i) for i in range(n)]


def wide(n: int) -> tuple[bytes, list[Span]]:
    trace_id = bytes.fromhex("c3" * 16)
    spans = [_span(trace_id, 1, 0, "root", 0)]
    fan = max(1, int(n**0.5) // 3)
    for i in range(1, n):
        parent = 1 if i <= fan else 2 + (i - fan - 1) % fan
        spans.append(_span(trace_id, i + 1, parent, f"call {i % 7}", i))
    return trace_id, spans


def median_ms(run: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1), result


def size(answer: Any) -> int:
    return len(json.dumps(answer, separators=(",", ":"), default=str))


def measure(shape: str, trace_id: bytes, spans: list[Span], runs: int) -> dict[str, Any]:
    store = Store(StoreConfig(max_spans_per_trace=len(spans) + 1, max_spans=len(spans) + 1))
    for raw in _requests(spans):
        store.spans.add(decode_traces(raw).batch, time.time_ns())
    tools = Toolbox(store, Pipeline(store, queue=QueueConfig(), redactor=None))
    hex_id = trace_id.hex()
    loop = asyncio.new_event_loop()
    out: dict[str, Any] = {"shape": shape, "spans": len(spans)}
    ms, doc = median_ms(lambda: trace_document(store, trace_id), runs)
    out["trace document"] = (ms, size(doc))
    ms, text = median_ms(lambda: render_trace(doc), runs)
    out["gasoline trace (render)"] = (ms, len(text.encode()))
    for name, tool, args in (
        ("analyze causality", "analyze", {"type": "causality", "trace_id": hex_id}),
        ("observe trace", "observe", {"what": "trace", "filter": {"trace_id": hex_id}}),
    ):
        ms, answer = median_ms(
            lambda t=tool, a=args: loop.run_until_complete(tools.run(t, a)), runs
        )
        out[name] = (ms, size(answer))
    loop.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=10_000, help="chain depth (10,000)")
    parser.add_argument("--cycle", type=int, default=2_000, help="cycle length (2,000)")
    parser.add_argument("--wide", type=int, default=100_000, help="spans of the wide trace")
    parser.add_argument("--runs", type=int, default=5, help="runs per view (5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = [
        measure(f"chain {args.depth:,} deep", *chain(args.depth), args.runs),
        measure(f"cycle of {args.cycle:,}", *cycle(args.cycle), args.runs),
        measure(f"wide, {args.wide:,} spans", *wide(args.wide), args.runs),
    ]
    if args.json:
        print(json.dumps(results))
        return
    views = [k for k in results[0] if k not in ("shape", "spans")]
    print(f"{'trace':<24}  {'view':<24}  {'p50 ms':>8}  {'answer bytes':>12}")
    for r in results:
        for view in views:
            ms, nbytes = r[view]
            print(f"{r['shape']:<24}  {view:<24}  {ms:>8.1f}  {nbytes:>12,}")


if __name__ == "__main__":
    main()
