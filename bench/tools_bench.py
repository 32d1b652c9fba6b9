"""Agent tool latency and answer size on a full store: ``analyze`` and ``observe``.

In one process (these are query latencies, the daemon's loop runs them the same way):

1. Fill a ``Store`` with ``--spans`` (1,000,000) spans of realistic requests
   (``otlp_load.build_pool`` / ``payload`` -> ``decode_traces`` -> redaction ->
   ``SpanStore.add``, as ``ingest_bench``'s in-process phase does), with ``--big-traces``
   (20) distinct 500-span multi-service traces interleaved: a browser fetch -> api
   SERVER -> INTERNAL blocks with PostgreSQL and Redis CLIENT spans, an N+1 loop, calls
   to a payments service; one payments db span fails deep in the tree (status ERROR +
   exception event) and its callers answer HTTP 500.
2. Fill the ``RecordStore`` with ``--records`` (1,000,000) log records and native
   events: OTLP logs (access, db, app logs, ~70% on stored traces), browser console,
   network (url/method/status) and action events with session correlation ids,
   backend jobs, test runs, git events; a few error logs on each big trace.
3. Time ``Toolbox(store, pipeline).run(...)``, the MCP tools' entry point:
   ``analyze causality`` on the big traces (rotating over them, so the span-detail
   decompression cache is cold, and repeating one, warm) and ``analyze latency``;
   ``observe timeline`` with all 10 filters, single filters, unfiltered; once on a
   records-only store and once on the spans+records store.
4. Answer sizes of the default answers as the MCP server sends them (compact JSON).
5. cProfile (top functions by cumulative time) of each call that misses its target.

Every timed query is bounded by ``--budget-s`` seconds of runs (at least 3 runs), so the
whole run stays under ~4 minutes on 2 cores; the report says how many runs each figure
is over. Nothing is asserted.

    python bench/tools_bench.py
    python bench/tools_bench.py --spans 200000 --records 200000 --runs 50 --json
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import inspect
import json
import os
import pstats
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import otlp_load  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import (  # noqa: E402
    InstrumentationScope,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import (  # noqa: E402
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
)

from collector.config import QueueConfig, RedactionConfig, StoreConfig  # noqa: E402
from collector.daemon import rss_bytes  # noqa: E402
from collector.gc_policy import GcPolicy  # noqa: E402
from collector.model import Record  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.redact import Redactor  # noqa: E402
from collector.store import Store  # noqa: E402
from collector.tools import Toolbox  # noqa: E402
from receivers.otlp_codec import decode_traces  # noqa: E402

MS = 1_000_000
ANALYZE_P99_MS = 20.0
OBSERVE_MS = 100.0
ANSWER_BYTES = 10_240
BIG_TRACE_SPANS = 500

# -- helpers --------------------------------------------------------------------------


def _answer_bytes(answer: dict[str, Any]) -> int:
    """The answer as ``exporters.mcp_server._result`` serializes it for the agent."""
    return len(json.dumps(answer, separators=(",", ":"), default=str).encode())


def _quantiles(sorted_s: list[float]) -> dict[str, Any]:
    return {
        "runs": len(sorted_s),
        "p50_ms": round(otlp_load.percentile(sorted_s, 50) * 1e3, 3),
        "p99_ms": round(otlp_load.percentile(sorted_s, 99) * 1e3, 3),
        "max_ms": round(sorted_s[-1] * 1e3, 3) if sorted_s else 0.0,
    }


async def _invoke(box: Toolbox, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """``Toolbox.run`` as the MCP server calls it (awaited if it is a coroutine)."""
    answer: Any = box.run(tool, args)
    if inspect.isawaitable(answer):
        answer = await answer
    return dict(answer)


Call = Callable[[int], Awaitable[dict[str, Any]]]


class GcWatch:
    """Collector pauses (generation, seconds) while installed in ``gc.callbacks``."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._t0))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    @property
    def full_collections(self) -> int:
        return sum(1 for g, _ in self.pauses if g == 2)

    def summary(self) -> dict[str, Any]:
        full = [t for g, t in self.pauses if g == 2]
        return {
            "gc_ms_total": round(sum(t for _, t in self.pauses) * 1e3, 1),
            "gen2_collections": len(full),
            "gen2_max_ms": round(max(full, default=0.0) * 1e3, 1),
        }


async def _timed(
    call: Call, runs: int, budget_s: float, min_runs: int = 3
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``call(i)`` up to ``runs`` times, stopping after ``budget_s`` (>= min_runs).
    Also reports the garbage collector's pauses during the runs (they are in the times)."""
    latencies: list[float] = []
    answer: dict[str, Any] = {}
    started = time.perf_counter()
    no_gen2: list[float] = []  # the runs during which no full collection ran
    with GcWatch() as watch:
        for i in range(runs):
            full_before = watch.full_collections
            t0 = time.perf_counter()
            answer = await call(i)
            latencies.append(time.perf_counter() - t0)
            if watch.full_collections == full_before:
                no_gen2.append(latencies[-1])
            if i + 1 >= min_runs and time.perf_counter() - started > budget_s:
                break
    latencies.sort()
    no_gen2.sort()
    stats = _quantiles(latencies) | watch.summary()
    stats["p99_no_gen2_ms"] = round(otlp_load.percentile(no_gen2, 99) * 1e3, 3)
    return stats, answer


def _size_breakdown(answer: dict[str, Any], top: int = 4) -> list[tuple[str, int]]:
    """The biggest parts of an answer (compact JSON bytes), one level into ``trace``."""
    parts: list[tuple[str, int]] = []
    for key, value in answer.items():
        if isinstance(value, dict) and key == "trace":
            parts += [(f"{key}.{k}", _answer_bytes({k: v})) for k, v in value.items()]
        else:
            parts.append((key, _answer_bytes({key: value})))
    parts.sort(key=lambda kv: -kv[1])
    return parts[:top]


def _field_breakdown(answer: dict[str, Any], top: int = 6) -> list[tuple[str, int]]:
    """For the answer's biggest list of objects: compact-JSON bytes per field, summed."""
    lists = [v for v in answer.values() if isinstance(v, list)]
    lists += [v for v in (answer.get("trace") or {}).values() if isinstance(v, list)]
    items = max(lists, key=_answer_bytes_of, default=[])
    totals: dict[str, int] = {}
    for item in items:
        if isinstance(item, dict):
            for k, v in item.items():
                totals[k] = totals.get(k, 0) + _answer_bytes({k: v}) - 2
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def _answer_bytes_of(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


async def _profile(call: Call, top: int = 14) -> dict[str, Any]:
    """One call under cProfile: the top functions by cumulative and by own time."""
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    await call(0)
    profiler.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(profiler)
    rows = []
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        short = os.path.relpath(path, REPO) if path.startswith(str(REPO)) else Path(path).name
        where = f"{short}:{line}({func})" if line else func
        rows.append((cumtime, tottime, ncalls, where))
    by_cum = sorted(rows, key=lambda r: -r[0])[:top]
    by_own = sorted(rows, key=lambda r: -r[1])[: top // 2]

    def fmt(r: tuple[float, float, int, str]) -> dict[str, Any]:
        return {"cum_s": round(r[0], 3), "own_s": round(r[1], 3), "calls": r[2], "function": r[3]}

    return {
        "wall_s_profiled": round(wall, 3),
        "top_cumulative": [fmt(r) for r in by_cum],
        "top_own": [fmt(r) for r in by_own],
    }


# -- the 500-span traces --------------------------------------------------------------

_QUERIES = [
    ("SELECT", "orders", "SELECT o.id, o.status, o.total_cents FROM orders o WHERE o.id = $1"),
    (
        "SELECT",
        "order_items",
        "SELECT i.product_id, i.quantity FROM order_items i WHERE i.order_id = $1",
    ),
    ("SELECT", "users", "SELECT u.id, u.email, u.locale FROM users u WHERE u.id = $1"),
    (
        "SELECT",
        "carts",
        "SELECT c.id, c.updated_at FROM carts c WHERE c.session_id = $1 FOR UPDATE",
    ),
    ("UPDATE", "products", "UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1"),
    (
        "INSERT",
        "orders",
        "INSERT INTO orders (customer_id, status, total_cents) VALUES ($1, $2, $3)",
    ),
    ("SELECT", "coupons", "SELECT k.code, k.percent_off FROM coupons k WHERE k.code = ANY($1)"),
]
_INTERNAL = [
    "OrderService.load",
    "CartService.total",
    "auth.verify_session",
    "render.order_view",
    "pricing.apply_discounts",
    "inventory.reserve",
    "ShippingService.quote",
    "TaxService.compute",
]
_SCOPES = {
    "fetch": ("@opentelemetry/instrumentation-fetch", "0.52.1"),
    "server": ("opentelemetry.instrumentation.fastapi", "0.48b0"),
    "db": ("opentelemetry.instrumentation.asyncpg", "0.48b0"),
    "redis": ("opentelemetry.instrumentation.redis", "0.48b0"),
    "http": ("opentelemetry.instrumentation.httpx", "0.48b0"),
    "app": ("shop.api", ""),
    "payments.server": ("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "0.53.0"),
    "payments.db": ("github.com/XSAM/otelsql", "0.32.0"),
    "payments.app": ("payments/charges", ""),
}
_RESOURCES: dict[str, dict[str, Any]] = {
    "web-frontend": {
        "service.name": "web-frontend",
        "service.version": "2024.11.3",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "webjs",
        "telemetry.sdk.version": "1.27.0",
        "browser.platform": "macOS",
        "browser.language": "en-US",
    },
    "api": {
        "service.name": "api",
        "service.version": "3.14.2",
        "service.namespace": "shop",
        "service.instance.id": "api-1-7c9f4d",
        "deployment.environment.name": "local",
        "host.name": "api-1",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.27.0",
        "process.runtime.name": "cpython",
        "process.runtime.version": "3.12.4",
        "process.pid": 48213,
    },
    "payments": {
        "service.name": "payments",
        "service.version": "1.8.0",
        "service.namespace": "shop",
        "service.instance.id": "payments-1-7c9f4d",
        "deployment.environment.name": "local",
        "host.name": "payments-1",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.language": "go",
        "telemetry.sdk.version": "1.28.0",
    },
}
_TIMEOUT = "canceling statement due to statement timeout"
_STACK = (
    "goroutine 81 [running]:\n"
    "github.com/shop/payments/charges.(*Repo).Insert(0xc0001a2000, {0x10a3e40, 0xc000212000})\n"
    "\t/src/payments/charges/repo.go:112 +0x1f4\n"
    "github.com/shop/payments/charges.(*Service).Create(0xc0001a2010, {0x10a3e40, 0xc000212000})\n"
    "\t/src/payments/charges/service.go:64 +0x2b1\n"
    "github.com/shop/payments/http.(*Handler).PostCharge(0xc0001b4000, {0x10a7f20, 0xc000240000})\n"
    "\t/src/payments/http/handler.go:41 +0x18d\n"
)


@dataclass(slots=True)
class _Op:
    """One span to be: what it is, and its children, laid out in time afterwards."""

    service: str
    scope: str
    name: str
    kind: Span.SpanKind.ValueType
    attrs: dict[str, Any]
    children: list[_Op] = field(default_factory=list)
    own_ns: int = 50_000
    error: str | None = None
    exception: bool = False
    span_id: bytes = b""


def _db(rng: random.Random, service: str = "api", query: int | None = None) -> _Op:
    op, table, stmt = _QUERIES[rng.randrange(len(_QUERIES)) if query is None else query]
    return _Op(
        service,
        "db" if service == "api" else "payments.db",
        f"{op} shop.{table}",
        Span.SPAN_KIND_CLIENT,
        {
            "db.system": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": op,
            "db.collection.name": table,
            "db.statement": stmt,
            "server.address": "db.internal",
            "server.port": 5432,
        },
        own_ns=rng.randint(200_000, 6_000_000),
    )


def _redis(rng: random.Random) -> _Op:
    key = f"session:{rng.getrandbits(64):016x}"
    return _Op(
        "api",
        "redis",
        "GET",
        Span.SPAN_KIND_CLIENT,
        {
            "db.system": "redis",
            "db.operation.name": "GET",
            "db.statement": f"GET {key}",
            "server.address": "cache.internal",
            "server.port": 6379,
        },
        own_ns=rng.randint(80_000, 900_000),
    )


def _internal(name: str, service: str = "api") -> _Op:
    scope = "app" if service == "api" else "payments.app"
    return _Op(
        service,
        scope,
        name,
        Span.SPAN_KIND_INTERNAL,
        {"code.function": name.rsplit(".", 1)[-1], "code.namespace": f"shop.{service}"},
        own_ns=30_000,
    )


def _payments_call(
    rng: random.Random, method: str, path: str, route: str, status: int
) -> tuple[_Op, _Op]:
    """An api CLIENT call and the payments SERVER span answering it."""
    client = _Op(
        "api",
        "http",
        method,
        Span.SPAN_KIND_CLIENT,
        {
            "http.request.method": method,
            "url.full": f"http://payments.internal:8080{path}",
            "server.address": "payments.internal",
            "server.port": 8080,
            "http.response.status_code": status,
            "network.protocol.version": "1.1",
        },
        own_ns=rng.randint(300_000, 1_500_000),
    )
    server = _Op(
        "payments",
        "payments.server",
        f"{method} {route}",
        Span.SPAN_KIND_SERVER,
        {
            "http.request.method": method,
            "url.path": path,
            "url.scheme": "http",
            "http.route": route,
            "http.response.status_code": status,
            "server.address": "payments.internal",
            "server.port": 8080,
            "client.address": "10.0.3.17",
            "user_agent.original": "python-httpx/0.27.0",
        },
        own_ns=rng.randint(50_000, 300_000),
    )
    if status >= 500:
        client.error = server.error = ""
        client.attrs["error.type"] = server.attrs["error.type"] = str(status)
    client.children.append(server)
    return client, server


def _count(op: _Op) -> int:
    return 1 + sum(_count(c) for c in op.children)


def big_trace_ops(rng: random.Random, n_spans: int = BIG_TRACE_SPANS) -> _Op:
    """A checkout that fails deep in payments: fetch -> api -> ... -> payments db ERROR."""
    ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 Chrome/126.0"
    fetch = _Op(
        "web-frontend",
        "fetch",
        "HTTP POST",
        Span.SPAN_KIND_CLIENT,
        {
            "http.request.method": "POST",
            "url.full": "http://localhost:8000/api/checkout",
            "server.address": "localhost",
            "server.port": 8000,
            "http.response.status_code": 500,
            "user_agent.original": ua,
        },
        own_ns=rng.randint(300_000, 3_000_000),
        error="",
    )
    server = _Op(
        "api",
        "server",
        "POST /api/checkout",
        Span.SPAN_KIND_SERVER,
        {
            "http.request.method": "POST",
            "http.route": "/api/checkout",
            "url.path": "/api/checkout",
            "url.scheme": "http",
            "server.address": "localhost",
            "server.port": 8000,
            "client.address": "127.0.0.1",
            "user_agent.original": ua,
            "network.protocol.version": "1.1",
            "http.response.status_code": 500,
            "error.type": "500",
        },
        own_ns=rng.randint(50_000, 400_000),
        error="",
    )
    fetch.children.append(server)

    # The failing chain: place_order -> charge -> POST /v1/charges -> payments -> INSERT.
    place = _internal("CheckoutService.place_order")
    place.error = "PaymentError: charge failed"
    charge = _internal("PaymentService.charge")
    charge.error = "PaymentError: payments answered 500"
    client, pay_server = _payments_call(rng, "POST", "/v1/charges", "/v1/charges", 500)
    create = _internal("charges.create", "payments")
    create.error = "insert charge: " + _TIMEOUT
    insert = _Op(
        "payments",
        "payments.db",
        "INSERT shop.charges",
        Span.SPAN_KIND_CLIENT,
        {
            "db.system": "postgresql",
            "db.namespace": "shop",
            "db.operation.name": "INSERT",
            "db.collection.name": "charges",
            "db.statement": "INSERT INTO charges (order_id, amount_cents, currency, customer_id) "
            "VALUES ($1, $2, $3, $4) RETURNING id",
            "server.address": "db.internal",
            "server.port": 5432,
            "error.type": "57014",
        },
        own_ns=rng.randint(2_000 * MS, 3_000 * MS),
        error=_TIMEOUT,
        exception=True,
    )
    create.children += [_db(rng, "payments", 2), insert]
    pay_server.children.append(create)
    charge.children += [_redis(rng), client]
    place.children += [_db(rng, query=5), _db(rng, query=4), charge]
    failing = place

    blocks: list[_Op] = []
    budget = n_spans - _count(fetch) - _count(failing)
    while budget > 0:
        choice = rng.random()
        if choice < 0.35:  # an INTERNAL block of queries, maybe a nested one
            block = _internal(rng.choice(_INTERNAL))
            block.children = [_db(rng) for _ in range(min(budget - 1, rng.randint(3, 10)))]
            if budget - _count(block) >= 3 and rng.random() < 0.5:
                inner = _internal("render.order_view")
                inner.children = [_db(rng) for _ in range(rng.randint(1, 3))]
                block.children.insert(rng.randrange(len(block.children) + 1), inner)
        elif choice < 0.45:  # the N+1 loop
            block = _internal("CartService.load_items")
            n = min(budget - 1, rng.randint(20, 60))
            block.children = [_db(rng, query=1) for _ in range(n)]
            for c in block.children:
                c.own_ns = rng.randint(300_000, 1_500_000)
        elif choice < 0.60 and budget >= 3:  # a call answered by payments
            cus = f"cus_{rng.getrandbits(40):010x}"
            block, answered = _payments_call(
                rng, "GET", f"/v1/customers/{cus}", "/v1/customers/{id}", 200
            )
            answered.children = [
                _db(rng, "payments", 2) for _ in range(min(budget - 2, rng.randint(1, 3)))
            ]
        elif choice < 0.80:
            block = _redis(rng)
        else:
            block = _db(rng)
        budget -= _count(block)
        blocks.append(block)
    blocks.insert(rng.randrange(len(blocks) // 2, len(blocks) + 1), failing)
    server.children = blocks
    assert _count(fetch) == n_spans, _count(fetch)
    return fetch


def _layout(
    op: _Op,
    start: int,
    rng: random.Random,
    trace_id: bytes,
    parent_id: bytes,
    out: list[tuple[_Op, Span]],
) -> int:
    """Children one after another inside their parent; returns the span's end time."""
    op.span_id = rng.randbytes(8)
    t = start + rng.randint(10_000, 100_000)
    for child in op.children:
        gap = rng.randint(300_000, 900_000) if child.service != op.service else 0
        t = _layout(child, t + gap, rng, trace_id, op.span_id, out) + gap
        t += rng.randint(5_000, 80_000)
    end = max(t, start + op.own_ns) + rng.randint(10_000, 100_000)
    span = Span(
        trace_id=trace_id,
        span_id=op.span_id,
        parent_span_id=parent_id,
        name=op.name,
        kind=op.kind,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=otlp_load.attributes(op.attrs),
    )
    span.flags = 0x101
    if op.error is not None:
        span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=op.error))
    if op.exception:
        span.events.append(
            Span.Event(
                name="exception",
                time_unix_nano=end - 1000,
                attributes=otlp_load.attributes(
                    {
                        "exception.type": "*pgconn.PgError",
                        "exception.message": f"ERROR: {_TIMEOUT} (SQLSTATE 57014)",
                        "exception.stacktrace": _STACK,
                        "exception.escaped": False,
                    }
                ),
            )
        )
    out.append((op, span))
    return end


@dataclass(slots=True)
class BigTrace:
    trace_id: bytes
    requests: list[bytes]  # one ExportTraceServiceRequest per service, serialized
    failing_span: bytes  # the payments db span that failed
    api_span: bytes  # api's CLIENT call to payments
    start_ns: int
    end_ns: int


def build_big_trace(rng: random.Random, start_ns: int) -> BigTrace:
    root = big_trace_ops(rng)
    trace_id = rng.randbytes(16)
    spans: list[tuple[_Op, Span]] = []
    end = _layout(root, start_ns, rng, trace_id, b"", spans)
    spans.sort(key=lambda os_: os_[1].end_time_unix_nano)  # the order exporters send them in
    requests = []
    for service, resource in _RESOURCES.items():
        by_scope: dict[str, list[Span]] = {}
        for op, span in spans:
            if op.service == service:
                by_scope.setdefault(op.scope, []).append(span)
        scope_spans = [
            ScopeSpans(
                scope=InstrumentationScope(name=_SCOPES[s][0], version=_SCOPES[s][1]), spans=ss
            )
            for s, ss in by_scope.items()
        ]
        request = ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=Resource(attributes=otlp_load.attributes(resource)),
                    scope_spans=scope_spans,
                    schema_url="https://opentelemetry.io/schemas/1.26.0",
                )
            ]
        )
        requests.append(request.SerializeToString())
    failing = next(op for op, _ in spans if op.exception)
    api_call = next(op for op, _ in spans if op.service == "api" and op.name == "POST")
    return BigTrace(trace_id, requests, failing.span_id, api_call.span_id, start_ns, end)


# -- records --------------------------------------------------------------------------

_ROUTES = [
    ("GET", "/api/orders/{}", 0.22),
    ("GET", "/api/orders", 0.12),
    ("POST", "/api/orders", 0.06),
    ("GET", "/api/products/{}", 0.25),
    ("GET", "/api/cart", 0.12),
    ("POST", "/api/cart/items", 0.1),
    ("POST", "/api/checkout", 0.05),
    ("GET", "/api/users/me", 0.08),
]
_ROUTE_WEIGHTS = [w for _, _, w in _ROUTES]
_CONSOLE = [
    ("info", "[HMR] connected"),
    ("debug", "render CartPage took {} ms"),
    ("info", "analytics: page_view /orders/{}"),
    ("warn", 'Warning: Each child in a list should have a unique "key" prop. Check OrderList.'),
    ("warn", "Slow network is detected. Fallback font will be used while loading"),
    ("error", "Uncaught TypeError: Cannot read properties of undefined (reading 'total')"),
    ("error", "Failed to load resource: the server responded with a status of 500 ()"),
]
_APP_LOGS = [
    ("info", "order {} created for customer {}"),
    ("info", "cart {} updated: {} items"),
    ("debug", "cache miss for session:{}"),
    ("debug", "query took {} ms: SELECT o.id, o.status FROM orders o WHERE o.id = $1"),
    ("info", "user {} logged in"),
    ("warn", "retrying payment for order {} (attempt {})"),
    ("warn", "slow query ({} ms): SELECT p.id, p.stock FROM products p WHERE p.id = ANY($1)"),
    ("error", "payment for order {} failed: QueryCanceledError: " + _TIMEOUT),
    ("error", "unhandled exception in POST /api/checkout: connection reset by peer ({})"),
    ("critical", "database pool exhausted: {} waiting"),
]
_APP_WEIGHTS = [0.25, 0.2, 0.16, 0.15, 0.1, 0.05, 0.05, 0.025, 0.012, 0.003]
_JOBS = ["send_receipt_email", "sync_inventory", "expire_carts", "reindex_products"]
_TESTS = ["test_create_order", "test_checkout_declined", "test_cart_totals", "test_login"]


class RecordFactory:
    """Realistic log records and native events, newest last, ids sequential from 1."""

    def __init__(self, rng: random.Random, trace_ids: list[bytes], t0_ns: int, t1_ns: int):
        self.rng = rng
        self.trace_ids = trace_ids
        self.t0 = t0_ns
        self.t1 = t1_ns
        self.sessions = [f"sess-{rng.getrandbits(48):012x}" for _ in range(2000)]
        self.next_id = 1

    def _status(self) -> int:
        r = self.rng.random()
        return 500 if r < 0.05 else 404 if r < 0.08 else 401 if r < 0.10 else 200

    def _route(self) -> tuple[str, str]:
        rng = self.rng
        method, template, _ = rng.choices(_ROUTES, _ROUTE_WEIGHTS)[0]
        path = template.format(rng.randint(1000, 99999)) if "{}" in template else template
        return method, path

    def records(self, n: int) -> Iterator[Record]:
        rng = self.rng
        random_ = rng.random
        step = (self.t1 - self.t0) / max(1, n)
        for i in range(n):
            time_ns = int(self.t0 + i * step) + rng.randint(0, 999)
            r = random_()
            if r < 0.50:
                record = self._otlp_log(time_ns)
            elif r < 0.65:
                record = self._network(time_ns)
            elif r < 0.80:
                record = self._console(time_ns)
            elif r < 0.84:
                record = self._action(time_ns)
            elif r < 0.85:
                record = self._websocket(time_ns)
            elif r < 0.94:
                record = self._job(time_ns)
            elif r < 0.98:
                record = self._test(time_ns)
            else:
                record = self._git_or_custom(time_ns)
            record.id = self.next_id
            self.next_id += 1
            yield record

    def _trace(self, share: float) -> tuple[bytes | None, bytes | None]:
        if self.rng.random() < share:
            return self.rng.choice(self.trace_ids), self.rng.randbytes(8)
        return None, None

    def _otlp_log(self, time_ns: int) -> Record:
        rng = self.rng
        service = "api" if rng.random() < 0.7 else "payments" if rng.random() < 0.66 else "worker"
        trace_id, span_id = self._trace(0.7)
        if rng.random() < 0.35:  # an access log
            method, path = self._route()
            status = self._status()
            ms = rng.randint(1, 400)
            level = "error" if status >= 500 else "warn" if status >= 400 else "info"
            return Record(
                time_ns,
                "otlp",
                level,
                f'127.0.0.1 - "{method} {path} HTTP/1.1" {status} {ms}ms',
                service,
                trace_id,
                span_id,
                attributes={
                    "http.request.method": method,
                    "url.path": path,
                    "http.response.status_code": status,
                    "http.server.request.duration_ms": ms,
                    "logger.name": "uvicorn.access",
                },
            )
        (level, text) = rng.choices(_APP_LOGS, _APP_WEIGHTS)[0]
        message = text.format(rng.randint(1000, 99999), rng.randint(1, 9))
        return Record(
            time_ns,
            "otlp",
            level,
            message,
            service,
            trace_id,
            span_id,
            attributes={
                "logger.name": f"shop.{service}",
                "code.function": rng.choice(_INTERNAL),
                "code.lineno": rng.randint(10, 900),
                "thread.name": "MainThread",
            },
        )

    def _network(self, time_ns: int) -> Record:
        rng = self.rng
        method, path = self._route()
        status = self._status()
        ms = round(rng.uniform(3, 900), 1)
        level = "error" if status >= 500 else "warn" if status >= 400 else "info"
        url = f"http://localhost:8000{path}"
        trace_id, span_id = self._trace(0.5)
        return Record(
            time_ns,
            "browser",
            level,
            f"{method} {url} {status} ({ms} ms)",
            "web-frontend",
            trace_id,
            span_id,
            rng.choice(self.sessions),
            ("network",),
            {
                "url": url,
                "method": method,
                "status": status,
                "duration_ms": ms,
                "type": "fetch",
                "page": "/checkout" if "checkout" in path else "/orders",
            },
            kind="event",
        )

    def _console(self, time_ns: int) -> Record:
        rng = self.rng
        level, text = rng.choice(_CONSOLE)
        return Record(
            time_ns,
            "browser",
            level,
            text.format(rng.randint(2, 900)),
            "web-frontend",
            None,
            None,
            rng.choice(self.sessions),
            ("console",),
            {"page": rng.choice(["/orders", "/cart", "/checkout"]), "line": rng.randint(1, 4000)},
        )

    def _action(self, time_ns: int) -> Record:
        rng = self.rng
        target = rng.choice(["button#checkout", "a.order-link", "button.add-to-cart", "input#q"])
        return Record(
            time_ns,
            "browser",
            "info",
            f"click {target}",
            "web-frontend",
            None,
            None,
            rng.choice(self.sessions),
            ("action",),
            {"action": "click", "selector": target, "page": "/cart"},
            kind="event",
        )

    def _websocket(self, time_ns: int) -> Record:
        rng = self.rng
        return Record(
            time_ns,
            "browser",
            "info",
            f"ws message order-status ({rng.randint(40, 900)} bytes)",
            "web-frontend",
            None,
            None,
            rng.choice(self.sessions),
            ("websocket",),
            {"type": "websocket", "direction": "in", "url": "ws://localhost:8000/ws/orders"},
            kind="event",
        )

    def _job(self, time_ns: int) -> Record:
        rng = self.rng
        job = rng.choice(_JOBS)
        failed = rng.random() < 0.02
        ms = rng.randint(5, 5000)
        return Record(
            time_ns,
            "backend",
            "error" if failed else "info",
            f"job {job} {'failed: timeout' if failed else 'finished'} in {ms} ms",
            "worker",
            None,
            None,
            None,
            ("job", f"job:{job}"),
            {"job": job, "duration_ms": ms, "attempt": 1 + failed},
            kind="event",
        )

    def _test(self, time_ns: int) -> Record:
        rng = self.rng
        name = rng.choice(_TESTS)
        failed = rng.random() < 0.03
        return Record(
            time_ns,
            "test",
            "error" if failed else "info",
            f"{'FAILED' if failed else 'PASSED'} tests/test_shop.py::{name}",
            "api",
            None,
            None,
            None,
            ("pytest",),
            {"test": name, "outcome": "failed" if failed else "passed"},
            kind="event",
        )

    def _git_or_custom(self, time_ns: int) -> Record:
        rng = self.rng
        if rng.random() < 0.3:
            sha = f"{rng.getrandbits(40):010x}"
            return Record(
                time_ns,
                "git",
                "info",
                f"commit {sha[:7]}: fix cart totals rounding",
                "",
                tags=("git", "commit"),
                attributes={"sha": sha, "branch": "main"},
                kind="event",
            )
        return Record(
            time_ns,
            "custom",
            "info",
            f"agent marker: reproduced checkout bug #{rng.randint(1, 99)}",
            "",
            tags=("marker",),
            kind="event",
        )

    def big_trace_records(self, big: BigTrace) -> list[Record]:
        """What the services log during a big trace: a few infos, the failures."""
        at = big.start_ns
        tid = big.trace_id
        out = [
            Record(at + 1 * MS, "otlp", "info", "checkout started", "api", tid, None),
            Record(
                big.end_ns - 5 * MS,
                "otlp",
                "error",
                f"insert charge failed: {_TIMEOUT}",
                "payments",
                tid,
                big.failing_span,
                attributes={"logger.name": "payments/charges", "db.statement.timeout_ms": 2000},
            ),
            Record(
                big.end_ns - 2 * MS,
                "otlp",
                "error",
                "payment failed: payments answered 500",
                "api",
                tid,
                big.api_span,
                attributes={"logger.name": "shop.api"},
            ),
            Record(
                big.end_ns,
                "browser",
                "error",
                "POST http://localhost:8000/api/checkout 500",
                "web-frontend",
                tid,
                None,
                self.sessions[0],
                ("network",),
                {"url": "http://localhost:8000/api/checkout", "method": "POST", "status": 500},
                kind="event",
            ),
        ]
        for record in out:
            record.id = self.next_id
            self.next_id += 1
        return out


# -- filling --------------------------------------------------------------------------


@dataclass(slots=True)
class Filled:
    store: Store
    big: list[BigTrace]
    trace_ids: list[bytes]
    requests: int
    spans_s: float
    records_s: float
    rss_start: int
    rss_spans: int
    rss_all: int
    window_ns: tuple[int, int]


def fill(args: argparse.Namespace, log: Callable[[str], None]) -> Filled:
    rng = random.Random(args.seed)
    gc.collect()
    rss_start = rss_bytes()
    pool = otlp_load.build_pool(args.requests_pool, seed=args.seed)
    n_requests = pool.requests_for(args.spans)
    log(f"pool of {len(pool)} requests built; {n_requests} requests for {args.spans:,} spans")
    store = Store(
        StoreConfig(
            max_spans=int(args.spans * 1.1) + args.big_traces * BIG_TRACE_SPANS,
            max_traces=max(1, args.spans) + args.big_traces,
            max_records=int(args.records * 1.1) + 1000,
            max_bytes=1 << 40,  # bounded by the counts above, not by bytes
        )
    )
    redactor = Redactor(RedactionConfig())
    now = time.time_ns()
    big = [
        build_big_trace(rng, now - rng.randint(10_000, 110_000) * MS)
        for _ in range(args.big_traces)
    ]
    insert_at = {
        (j + 1) * n_requests // (len(big) + 1): b for j, b in enumerate(big)
    }  # evenly spread through the fill

    def add(raw: bytes) -> None:
        batch = decode_traces(raw, redactor=redactor).batch
        store.spans.add(batch, time.time_ns())

    t0 = time.perf_counter()
    for seq in range(n_requests):
        raw = otlp_load.payload(pool, seq)
        if raw is pool.raw[seq % len(pool)]:
            raw = bytes(bytearray(raw))  # the daemon gets a fresh object per request
        add(raw)
        if seq in insert_at:
            for request in insert_at[seq].requests:
                add(request)
    spans_s = time.perf_counter() - t0
    if not n_requests:
        for b in big:
            for request in b.requests:
                add(request)
    trace_ids = otlp_load.trace_ids_for(pool, range(n_requests))
    del pool
    gc.collect()
    rss_spans = rss_bytes()
    log(
        f"{store.spans.span_count:,} spans in {store.spans.trace_count:,} traces stored in "
        f"{spans_s:.1f} s; RSS {rss_spans / 1e6:,.0f} MB"
    )

    starts = [s for b in big for s in (b.start_ns,)] or [now]
    t_first = min(now - 15 * 60 * 1_000_000_000, *starts)
    factory = RecordFactory(rng, trace_ids or [b.trace_id for b in big], t_first, now)
    t0 = time.perf_counter()
    chunk: list[Record] = []
    for record in factory.records(args.records):
        chunk.append(record)
        if len(chunk) == 1000:
            redactor.redact_records(chunk)
            store.records.add(chunk, time.time_ns())
            chunk = []
    for b in big:  # late, as logs arrive after the spans
        chunk += factory.big_trace_records(b)
    redactor.redact_records(chunk)
    store.records.add(chunk, time.time_ns())
    records_s = time.perf_counter() - t0
    gc.collect()
    rss_all = rss_bytes()
    log(f"{len(store.records):,} records stored in {records_s:.1f} s; RSS {rss_all / 1e6:,.0f} MB")
    if not args.no_gc_policy:
        policy = GcPolicy()  # as the daemon's: frozen within a minute of storing, and the
        policy.freeze()  # survivors of each full collection during the runs
        policy.follow_collections()
        log(f"gc policy: {gc.get_freeze_count():,} objects frozen, as the daemon does")
    return Filled(
        store,
        big,
        trace_ids,
        n_requests,
        spans_s,
        records_s,
        rss_start,
        rss_spans,
        rss_all,
        (t_first, now),
    )


# -- measuring ------------------------------------------------------------------------


def _iso_ms(time_ns: int) -> int:
    return time_ns // MS


def timeline_queries(f: Filled) -> list[tuple[str, dict[str, Any]]]:
    t_first, t_last = f.window_ns
    span = t_last - t_first
    ten = {
        "source": "browser",
        "service": "web-frontend",
        "level": "warn",
        "url": "/api/orders",
        "method": "GET",
        "status": "5xx",
        "tags": ["network"],
        "since": _iso_ms(t_first + span // 5),
        "until": _iso_ms(t_last - span // 10),
        "text": "localhost:8000/api/orders",
    }
    big = f.big[0].trace_id.hex() if f.big else "0" * 31 + "1"
    return [
        ("10 filters", {"what": "timeline", "filter": ten, "limit": 50}),
        ("unfiltered (default)", {"what": "timeline", "limit": 50}),
        ("level=error", {"what": "timeline", "filter": {"level": "error"}, "limit": 50}),
        ("service=payments", {"what": "timeline", "filter": {"service": "payments"}, "limit": 50}),
        ("text=timeout", {"what": "timeline", "filter": {"text": "timeout"}, "limit": 50}),
        (
            "trace_id=<500-span trace>",
            {"what": "timeline", "filter": {"trace_id": big}, "limit": 50},
        ),
    ]


async def measure(
    args: argparse.Namespace, f: Filled, log: Callable[[str], None]
) -> dict[str, Any]:
    full = f.store
    records_only = Store(StoreConfig())
    records_only.records = full.records  # the same records, no spans
    boxes = {
        "spans+records": Toolbox(full, Pipeline(full, queue=QueueConfig(), redactor=None)),
        "records only": Toolbox(
            records_only, Pipeline(records_only, queue=QueueConfig(), redactor=None)
        ),
    }
    tools = boxes["spans+records"]
    big_ids = [b.trace_id.hex() for b in f.big]
    result: dict[str, Any] = {"analyze": {}, "observe": {}, "answers": {}}
    slow: list[tuple[int, str, Call]] = []  # (priority, title, call) to profile

    # 1. analyze, on the full store
    if big_ids:
        for kind in ("causality", "latency"):
            for mode in ("rotating", "one trace"):
                ids = big_ids if mode == "rotating" else big_ids[:1]
                log(f"analyze {kind}, {mode} ...")

                def call(
                    i: int, kind: str = kind, ids: list[str] = ids
                ) -> Awaitable[dict[str, Any]]:
                    return _invoke(tools, "analyze", {"type": kind, "trace_id": ids[i % len(ids)]})

                stats, _ = await _timed(call, args.runs, args.budget_s * 2, min_runs=10)
                result["analyze"][f"{kind}, {mode}"] = stats
                if kind == "causality" and mode == "rotating" and stats["p99_ms"] > ANALYZE_P99_MS:
                    title = f"analyze causality (500 spans) p99 {stats['p99_ms']:.1f} ms"
                    slow.append((0, title, call))

    # 2. observe timeline, both stores
    observe_runs = min(args.runs, args.observe_runs)
    for label, toolbox in boxes.items():
        for name, call_args in timeline_queries(f):
            log(f"observe timeline {name}, {label} ...")

            def obs(
                _: int, box: Toolbox = toolbox, a: dict[str, Any] = call_args
            ) -> Awaitable[dict[str, Any]]:
                return _invoke(box, "observe", a)

            stats, answer = await _timed(obs, observe_runs, args.budget_s)
            items = len(full.records) + (full.spans.span_count if label == "spans+records" else 0)
            total = answer["metadata"]["total_count"]
            stats |= {
                "matched": total,
                "matched_pct": round(100 * total / max(1, items), 3),
                "answer_bytes": _answer_bytes(answer),
            }
            result["observe"][f"{name} | {label}"] = stats
            if stats["p50_ms"] > OBSERVE_MS:
                title = f"observe timeline {name} ({label}) p50 {stats['p50_ms']:.0f} ms"
                priority = 1 if name == "10 filters" else 3 if "unfiltered" in name else 4
                slow.append((priority, title, obs))

    # 3. default answers: sizes (and times)
    big = big_ids[0] if big_ids else None
    defaults: list[tuple[str, str, dict[str, Any]]] = [
        ("observe timeline (limit 50)", "observe", {"what": "timeline"}),
        ("observe errors", "observe", {"what": "errors"}),
        ("observe traces", "observe", {"what": "traces"}),
        ("observe services", "observe", {"what": "services"}),
    ]
    if big is not None:
        defaults += [
            (
                "observe trace (500 spans)",
                "observe",
                {"what": "trace", "filter": {"trace_id": big}},
            ),
            ("analyze causality (500 spans)", "analyze", {"type": "causality", "trace_id": big}),
            ("analyze latency (500 spans)", "analyze", {"type": "latency", "trace_id": big}),
        ]
    for name, tool, call_args in defaults:
        log(f"default answer: {name} ...")

        def run(_: int, t: str = tool, a: dict[str, Any] = call_args) -> Awaitable[dict[str, Any]]:
            return _invoke(tools, t, a)

        stats, answer = await _timed(run, observe_runs, args.budget_s / 2)
        stats["bytes"] = _answer_bytes(answer)
        stats["biggest_parts"] = _size_breakdown(answer)
        stats["biggest_list_fields"] = _field_breakdown(answer)
        stats["items"] = _item_count(answer)
        result["answers"][name] = stats
        target = ANALYZE_P99_MS if tool == "analyze" else OBSERVE_MS
        if stats["p50_ms"] > target and name != "observe timeline (limit 50)":
            slow.append((2, f"{name} p50 {stats['p50_ms']:.0f} ms", run))

    # 4. profiles of what missed its target
    if args.profile:
        result["profiles"] = {}
        slow.sort(key=lambda item: item[0])
        for _, title, slow_call in slow[: args.profile]:
            log(f"cProfile: {title} ...")
            result["profiles"][title] = await _profile(slow_call)
    return result


def _item_count(answer: dict[str, Any]) -> str:
    for key in ("events", "traces", "services", "linked", "requests"):
        if key in answer:
            return f"{len(answer[key])} {key}"
    if "trace" in answer:
        return f"{len(answer['trace']['spans'])} tree lines"
    if "critical_path" in answer:
        return f"{len(answer['critical_path'])} on critical path"
    return ""


# -- report ---------------------------------------------------------------------------


def report(r: dict[str, Any]) -> str:
    lines: list[str] = []
    s = r["store"]
    lines.append(
        f"store: {s['spans']:,} spans in {s['traces']:,} traces (incl. {s['big_traces']} x "
        f"500-span), {s['records']:,} records; filled in {s['fill_spans_s']} s (spans) + "
        f"{s['fill_records_s']} s (records)"
    )
    lines.append(
        f"RSS MB: start {s['rss_start_mb']:,}, after spans {s['rss_spans_mb']:,} "
        f"({s['rss_bytes_per_span']} B/span), after records {s['rss_all_mb']:,} "
        f"({s['rss_bytes_per_record']} B/record)"
    )
    m = r["results"]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISS"

    def gc_text(st: dict[str, Any]) -> str:
        return (
            f"{st['p99_no_gen2_ms']:>9.1f} {st['gc_ms_total']:>8.0f} "
            f"{st['gen2_collections']:>3} ({st['gen2_max_ms']:>5.0f})"
        )

    head = (
        f"  {'runs':>5} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9}  "
        f"{'p99 no-g2':>9} {'gc ms':>8} {'g2 (max ms)':>11}"
    )
    lines.append("")
    lines.append(f"{'analyze, Toolbox.run, 500-span trace':<44}{head}  target")
    for name, st in m["analyze"].items():
        target = f"p99 < {ANALYZE_P99_MS:g}" if name.startswith("causality") else ""
        mark = verdict(st["p99_ms"] < ANALYZE_P99_MS) if target else ""
        lines.append(
            f"  {name:<42}  {st['runs']:>5} {st['p50_ms']:>9.2f} {st['p99_ms']:>9.2f} "
            f"{st['max_ms']:>9.2f}  {gc_text(st)}  {target} {mark}"
        )
    lines.append("")
    lines.append(f"{'observe timeline, limit 50':<44}{head}  {'matched':>16}  target")
    for key, st in m["observe"].items():
        name, _, store = key.partition(" | ")
        matched = f"{st['matched']:,} ({st['matched_pct']:g}%)"
        lines.append(
            f"  {name[:26]:<26} {store:<15}  {st['runs']:>5} {st['p50_ms']:>9.1f} "
            f"{st['p99_ms']:>9.1f} {st['max_ms']:>9.1f}  {gc_text(st)}  {matched:>16}  "
            f"< {OBSERVE_MS:g} {verdict(st['p99_ms'] < OBSERVE_MS)}"
        )
    lines.append("")
    lines.append(
        f"{'default answers (full store), compact JSON':<44}  {'bytes':>9}  target     "
        f"{'p50 ms':>8}  items; biggest parts (bytes)"
    )
    for name, st in m["answers"].items():
        parts = ", ".join(f"{k} {v:,}" for k, v in st["biggest_parts"][:3])
        lines.append(
            f"  {name:<42}  {st['bytes']:>9,}  <= 10 KB {verdict(st['bytes'] <= ANSWER_BYTES):<4} "
            f"{st['p50_ms']:>7.1f}  {st['items']}; {parts}"
        )
        if st["bytes"] > ANSWER_BYTES and st["biggest_list_fields"]:
            fields = ", ".join(f"{k} {v:,}" for k, v in st["biggest_list_fields"])
            lines.append(f"  {'':<42}  bytes by field in its biggest list: {fields}")
    for title, prof in (m.get("profiles") or {}).items():
        lines.append("")
        lines.append(
            f"cProfile: {title} (one call, {prof['wall_s_profiled']} s under the profiler)"
        )
        lines.append(f"  {'cum s':>7} {'own s':>7} {'calls':>9}  function (by cumulative)")
        lines += [
            f"  {p['cum_s']:>7.3f} {p['own_s']:>7.3f} {p['calls']:>9}  {p['function']}"
            for p in prof["top_cumulative"]
        ]
        lines.append("  by own time:")
        lines += [
            f"  {p['cum_s']:>7.3f} {p['own_s']:>7.3f} {p['calls']:>9}  {p['function']}"
            for p in prof["top_own"]
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="spans stored (1,000,000)")
    parser.add_argument(
        "--records", type=int, default=1_000_000, help="log records and events stored (1,000,000)"
    )
    parser.add_argument(
        "--runs", type=int, default=200, help="runs per analyze query (200); caps the others"
    )
    parser.add_argument("--observe-runs", type=int, default=40, help="runs per observe query (40)")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=4.0,
        help="stop repeating an observe query after this many seconds, at >= 3 runs (4)",
    )
    parser.add_argument("--big-traces", type=int, default=20, help="distinct 500-span traces (20)")
    parser.add_argument("--requests-pool", type=int, default=256, help="otlp_load pool size (256)")
    parser.add_argument(
        "--profile",
        type=int,
        default=5,
        metavar="N",
        help="cProfile up to N calls that miss their target (5; 0 for none)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--no-gc-policy",
        action="store_true",
        help="leave the stored objects to the default collector (the daemon freezes them)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    started = time.monotonic()

    def log(text: str) -> None:
        if not args.json:
            print(f"[{time.monotonic() - started:6.1f}s] {text}", flush=True)

    f = fill(args, log)
    results = asyncio.run(measure(args, f, log))
    out = {
        "store": {
            "spans": f.store.spans.span_count,
            "traces": f.store.spans.trace_count,
            "big_traces": len(f.big),
            "records": len(f.store.records),
            "fill_spans_s": round(f.spans_s, 1),
            "fill_records_s": round(f.records_s, 1),
            "rss_start_mb": round(f.rss_start / 1e6),
            "rss_spans_mb": round(f.rss_spans / 1e6),
            "rss_all_mb": round(f.rss_all / 1e6),
            "rss_bytes_per_span": round(
                (f.rss_spans - f.rss_start) / max(1, f.store.spans.span_count)
            ),
            "rss_bytes_per_record": round((f.rss_all - f.rss_spans) / max(1, len(f.store.records))),
        },
        "results": results,
        "total_s": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print()
        print(report(out))
        print(f"\ntotal {out['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
