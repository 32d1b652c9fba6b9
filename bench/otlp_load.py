"""OTLP trace load generator: realistic pre-serialized Export requests over gRPC or HTTP.

Builds a pool of K ``ExportTraceServiceRequest``s of 512 spans each, the way SDK
processes with a BatchSpanProcessor would export them: one resource per request, spans
grouped by instrumentation scope, in end order, so one trace's spans are spread over
several requests (and services). Every request is serialized once up front.

Request number ``s`` sends pool entry ``s % K`` with every trace id rewritten for
generation ``s // K`` (a byte patch at offsets found at build time), so a long run
never re-sends a trace id and ``trace_ids_for`` can name exactly the traces sent.

    python bench/otlp_load.py --grpc 127.0.0.1:4317 --duration 10 --concurrency 8
    python bench/otlp_load.py --http http://127.0.0.1:4318 --requests 2000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import pickle
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

__all__ = [
    "SPANS_PER_REQUEST",
    "LoadResult",
    "Pool",
    "build_pool",
    "load_or_build_pool",
    "payload",
    "percentile",
    "run_load",
    "trace_ids_for",
]

SPANS_PER_REQUEST = 512
GRPC_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1

# -- realistic content ----------------------------------------------------------------

_SERVICES: dict[str, dict[str, Any]] = {
    "web-frontend": {
        "service.version": "2024.11.3",
        "telemetry.sdk.language": "webjs",
        "telemetry.sdk.version": "1.27.0",
        "browser.platform": "macOS",
        "browser.language": "en-US",
    },
    "api": {
        "service.version": "3.14.2",
        "service.namespace": "shop",
        "deployment.environment.name": "local",
        "telemetry.sdk.language": "python",
        "telemetry.sdk.version": "1.27.0",
        "process.runtime.name": "cpython",
        "process.runtime.version": "3.12.4",
        "process.pid": 48213,
    },
    "payments": {
        "service.version": "1.8.0",
        "service.namespace": "shop",
        "deployment.environment.name": "local",
        "telemetry.sdk.language": "go",
        "telemetry.sdk.version": "1.28.0",
        "process.runtime.name": "go",
        "process.runtime.version": "go1.22.5",
    },
}
_HOSTS = {"web-frontend": ["browser"], "api": ["api-1", "api-2"], "payments": ["payments-1"]}

_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
]
_ROUTES = [
    ("GET", "/api/orders/{order_id}", "/api/orders/{}"),
    ("GET", "/api/orders", "/api/orders?page={}"),
    ("POST", "/api/orders", "/api/orders"),
    ("GET", "/api/products/{product_id}", "/api/products/{}"),
    ("GET", "/api/cart", "/api/cart"),
    ("POST", "/api/cart/items", "/api/cart/items"),
    ("POST", "/api/checkout", "/api/checkout"),
    ("GET", "/api/users/me", "/api/users/me"),
]
_QUERIES = [
    (
        "SELECT",
        "orders",
        "SELECT o.id, o.status, o.total_cents, o.currency, o.created_at FROM "
        "orders o WHERE o.customer_id = $1 ORDER BY o.created_at DESC LIMIT 20",
    ),
    (
        "SELECT",
        "order_items",
        "SELECT i.product_id, i.quantity, i.unit_price_cents FROM "
        "order_items i WHERE i.order_id = $1",
    ),
    (
        "SELECT",
        "products",
        "SELECT p.id, p.sku, p.name, p.price_cents, p.stock FROM products p WHERE p.id = ANY($1)",
    ),
    (
        "SELECT",
        "users",
        "SELECT u.id, u.email, u.display_name, u.locale FROM users u WHERE u.id = $1",
    ),
    (
        "INSERT",
        "orders",
        "INSERT INTO orders (customer_id, status, total_cents, currency) VALUES "
        "($1, $2, $3, $4) RETURNING id",
    ),
    ("UPDATE", "products", "UPDATE products SET stock = stock - $1 WHERE id = $2 AND stock >= $1"),
    (
        "SELECT",
        "carts",
        "SELECT c.id, c.updated_at FROM carts c WHERE c.session_id = $1 FOR UPDATE",
    ),
]
_INTERNAL = [
    "OrderService.load",
    "CartService.total",
    "auth.verify_session",
    "render.order_view",
    "pricing.apply_discounts",
    "inventory.reserve",
]
_EXTERNAL = [
    ("POST", "payments", "/v1/charges"),
    ("GET", "payments", "/v1/customers/{}"),
    ("POST", "payments", "/v1/refunds"),
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
}
_STACK = (
    "Traceback (most recent call last):\n"
    '  File "/srv/api/shop/orders.py", line 88, in load_order\n'
    "    rows = await conn.fetch(QUERY, order_id)\n"
    '  File "/srv/api/.venv/lib/python3.12/site-packages/asyncpg/connection.py", line 690, '
    "in fetch\n    return await self._execute(query, args, 0, timeout)\n"
    "asyncpg.exceptions.QueryCanceledError: canceling statement due to statement timeout\n"
)


_DB_TIMEOUT = "canceling statement due to statement timeout"
_EXCEPTION = {
    "exception.type": "asyncpg.exceptions.QueryCanceledError",
    "exception.message": _DB_TIMEOUT,
    "exception.stacktrace": _STACK,
}


def _fail_with_exception(span: Span, at_ns: int) -> None:
    """Mark a db span failed, with the exception event an SDK records."""
    span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=_DB_TIMEOUT))
    span.events.append(
        Span.Event(name="exception", time_unix_nano=at_ns, attributes=attributes(_EXCEPTION))
    )


def _db_attrs(op: str, table: str, statement: str) -> dict[str, Any]:
    return {
        "db.system": "postgresql",
        "db.namespace": "shop",
        "db.operation.name": op,
        "db.collection.name": table,
        "db.statement": statement,
        "server.address": "db.internal",
        "server.port": 5432,
    }


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    return AnyValue(string_value=str(v))


def attributes(d: dict[str, Any]) -> list[KeyValue]:
    """Plain values to OTLP ``KeyValue``s; shared with the other benches."""
    return [KeyValue(key=k, value=_value(v)) for k, v in d.items()]


@dataclass(slots=True)
class _Pending:
    """A finished span waiting in its process's batch processor."""

    service: str
    host: str
    scope: str
    span: Span


class _TraceFactory:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def _id(self, n: int) -> bytes:
        b = self.rng.randbytes(n)
        return b if any(b) else b"\x01" * n

    def _span(
        self,
        tid: bytes,
        parent: bytes,
        name: str,
        kind: Span.SpanKind.ValueType,
        start: int,
        end: int,
        attrs: dict[str, Any],
    ) -> Span:
        s = Span(
            trace_id=tid,
            span_id=self._id(8),
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=attributes(attrs),
        )
        s.flags = 0x101  # trace flags: sampled; whether the parent is remote is known
        return s

    def trace(self, start: int) -> tuple[bytes, list[_Pending]]:
        """One request's trace: 8-30 spans over web-frontend, api and maybe payments."""
        rng = self.rng
        tid = self._id(16)
        api_host = rng.choice(_HOSTS["api"])
        out: list[_Pending] = []
        method, route, path_t = rng.choice(_ROUTES)
        path = path_t.format(rng.randint(1000, 999999)) if "{}" in path_t else path_t
        ua = rng.choice(_USER_AGENTS)
        failed = rng.random() < 0.05
        not_found = not failed and rng.random() < 0.03
        status_code = 500 if failed else 404 if not_found else 201 if method == "POST" else 200

        target = rng.randint(8, 30)
        need = target - 2
        n_direct = rng.randint(2, min(10, need))
        choices = ("db", "db", "db", "http", "internal", "redis")
        kinds = [rng.choice(choices) for _ in range(n_direct)]
        while n_direct + kinds.count("http") > need:  # each call also brings a payments span
            kinds[kinds.index("http")] = "db"
        extra = need - n_direct - kinds.count("http")
        if extra and "internal" not in kinds:
            slot = rng.randrange(n_direct)
            extra += kinds[slot] == "http"  # its payments span is now a grandchild
            kinds[slot] = "internal"
        internal_slots = [i for i, k in enumerate(kinds) if k == "internal"]
        grandkids = [0] * n_direct
        for _ in range(extra):
            grandkids[rng.choice(internal_slots)] += 1

        # Timing: children laid out sequentially inside the server span.
        fetch_start = start
        server_start = fetch_start + rng.randint(300_000, 3_000_000)
        t = server_start + rng.randint(50_000, 400_000)
        server_span_id = self._id(8)
        fetch_span_id = self._id(8)
        error_at = rng.randrange(n_direct) if failed else -1
        for i, kind in enumerate(kinds):
            c_start = t
            if kind == "internal":
                c_id = self._id(8)
                gt = c_start + rng.randint(10_000, 100_000)
                for _ in range(grandkids[i]):
                    op, table, stmt = rng.choice(_QUERIES)
                    g_end = gt + rng.randint(200_000, 6_000_000)
                    out.append(
                        _Pending(
                            "api",
                            api_host,
                            "db",
                            self._span(
                                tid,
                                c_id,
                                f"{op} shop.{table}",
                                Span.SPAN_KIND_CLIENT,
                                gt,
                                g_end,
                                _db_attrs(op, table, stmt),
                            ),
                        )
                    )
                    gt = g_end + rng.randint(5_000, 50_000)
                c_end = gt + rng.randint(10_000, 200_000)
                internal = self._span(
                    tid,
                    server_span_id,
                    rng.choice(_INTERNAL),
                    Span.SPAN_KIND_INTERNAL,
                    c_start,
                    c_end,
                    {"code.function": "handle", "code.namespace": "shop.api"},
                )
                internal.span_id = c_id
                out.append(_Pending("api", api_host, "app", internal))
            elif kind == "db":
                op, table, stmt = rng.choice(_QUERIES)
                c_end = c_start + rng.randint(200_000, 8_000_000)
                span = self._span(
                    tid,
                    server_span_id,
                    f"{op} shop.{table}",
                    Span.SPAN_KIND_CLIENT,
                    c_start,
                    c_end,
                    _db_attrs(op, table, stmt),
                )
                if i == error_at:
                    _fail_with_exception(span, c_end - 1000)
                out.append(_Pending("api", api_host, "db", span))
            elif kind == "redis":
                c_end = c_start + rng.randint(80_000, 900_000)
                key = f"session:{rng.getrandbits(64):016x}"
                out.append(
                    _Pending(
                        "api",
                        api_host,
                        "redis",
                        self._span(
                            tid,
                            server_span_id,
                            "GET",
                            Span.SPAN_KIND_CLIENT,
                            c_start,
                            c_end,
                            {
                                "db.system": "redis",
                                "db.operation.name": "GET",
                                "db.statement": f"GET {key}",
                                "server.address": "cache.internal",
                                "server.port": 6379,
                            },
                        ),
                    )
                )
            else:  # outgoing HTTP call, answered by the payments service
                x_method, x_host, x_path_t = rng.choice(_EXTERNAL)
                x_path = x_path_t.format(f"cus_{rng.getrandbits(40):010x}")
                x_status = 502 if i == error_at else 200
                c_end = c_start + rng.randint(2_000_000, 40_000_000)
                client = self._span(
                    tid,
                    server_span_id,
                    x_method,
                    Span.SPAN_KIND_CLIENT,
                    c_start,
                    c_end,
                    {
                        "http.request.method": x_method,
                        "url.full": f"http://{x_host}.internal:8080{x_path}",
                        "server.address": f"{x_host}.internal",
                        "server.port": 8080,
                        "http.response.status_code": x_status,
                        "network.protocol.version": "1.1",
                    },
                )
                if x_status >= 500:
                    client.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
                    client.attributes.append(KeyValue(key="error.type", value=_value("502")))
                out.append(_Pending("api", api_host, "http", client))
                p_start = c_start + rng.randint(300_000, 1_000_000)
                p_end = c_end - rng.randint(100_000, 900_000)
                out.append(
                    _Pending(
                        "payments",
                        "payments-1",
                        "payments.server",
                        self._span(
                            tid,
                            client.span_id,
                            f"{x_method} {x_path_t.replace('{}', '{id}')}",
                            Span.SPAN_KIND_SERVER,
                            p_start,
                            max(p_start + 1000, p_end),
                            {
                                "http.request.method": x_method,
                                "url.path": x_path,
                                "url.scheme": "http",
                                "http.route": x_path_t.replace("{}", "{id}"),
                                "http.response.status_code": x_status,
                                "server.address": f"{x_host}.internal",
                                "server.port": 8080,
                                "client.address": "10.0.3.17",
                                "user_agent.original": "python-httpx/0.27.0",
                            },
                        ),
                    )
                )
            t = c_end + rng.randint(10_000, 300_000)
        server_end = t + rng.randint(50_000, 500_000)
        server = self._span(
            tid,
            fetch_span_id,
            f"{method} {route}",
            Span.SPAN_KIND_SERVER,
            server_start,
            server_end,
            {
                "http.request.method": method,
                "http.route": route,
                "url.path": path.split("?")[0],
                "url.scheme": "http",
                "server.address": "localhost",
                "server.port": 8000,
                "client.address": "127.0.0.1",
                "user_agent.original": ua,
                "network.protocol.version": "1.1",
                "http.response.status_code": status_code,
            },
        )
        server.span_id = server_span_id
        if failed:
            server.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
            server.attributes.append(KeyValue(key="error.type", value=_value("500")))
        out.append(_Pending("api", api_host, "server", server))
        fetch_end = server_end + rng.randint(300_000, 4_000_000)
        fetch = self._span(
            tid,
            b"",
            f"HTTP {method}",
            Span.SPAN_KIND_CLIENT,
            fetch_start,
            fetch_end,
            {
                "http.request.method": method,
                "url.full": f"http://localhost:8000{path}",
                "server.address": "localhost",
                "server.port": 8000,
                "http.response.status_code": status_code,
                "user_agent.original": ua,
                "http.response_content_length": rng.randint(200, 40_000),
            },
        )
        fetch.span_id = fetch_span_id
        if failed:
            fetch.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR))
        out.append(_Pending("web-frontend", "browser", "fetch", fetch))
        return tid, out


# -- the pool -------------------------------------------------------------------------


@dataclass(slots=True)
class Pool:
    """K serialized requests; per request its spans, its trace ids and where they sit."""

    raw: list[bytes]
    spans: list[int]
    trace_ids: list[list[bytes]]
    offsets: list[list[list[int]]] = field(repr=False)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def total_bytes(self) -> int:
        return sum(len(r) for r in self.raw)

    @property
    def total_spans(self) -> int:
        return sum(self.spans)

    def requests_for(self, spans: int, start: int = 0) -> int:
        """How many requests from number ``start`` on carry at least ``spans`` spans."""
        n, covered = start, 0
        while covered < spans:
            covered += self.spans[n % len(self)]
            n += 1
        return n - start


def _resource(service: str, host: str) -> Resource:
    attrs: dict[str, Any] = {
        "service.name": service,
        **_SERVICES[service],
        "telemetry.sdk.name": "opentelemetry",
        "host.name": host,
    }
    if service != "web-frontend":
        attrs["service.instance.id"] = f"{host}-7c9f4d"
    return Resource(attributes=attributes(attrs))


def _request(batch: list[_Pending]) -> ExportTraceServiceRequest:
    first = batch[0]
    by_scope: dict[str, list[Span]] = {}
    for p in batch:
        by_scope.setdefault(p.scope, []).append(p.span)
    scope_spans = []
    for scope, spans in by_scope.items():
        name, version = _SCOPES[scope]
        scope_spans.append(
            ScopeSpans(scope=InstrumentationScope(name=name, version=version), spans=spans)
        )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=_resource(first.service, first.host),
                scope_spans=scope_spans,
                schema_url="https://opentelemetry.io/schemas/1.26.0",
            )
        ]
    )


def build_pool(k: int, *, seed: int = 1, spans_per_request: int = SPANS_PER_REQUEST) -> Pool:
    """About K requests, as per-process batch processors export them.

    Each process (service and host) exports a full batch of ``spans_per_request`` spans
    as soon as it has one, and its remainder at the end (a flush at shutdown), so every
    trace is complete within the pool while a few requests are smaller. Traces are added
    while the batch count stays <= K. Deterministic for a seed, except the timestamps,
    which end near now.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    rng = random.Random(seed)
    factory = _TraceFactory(rng)
    now = time.time_ns()
    traces: list[list[_Pending]] = []
    counts: dict[tuple[str, str], int] = {}
    while True:
        _, spans = factory.trace(0)
        grown = dict(counts)
        for p in spans:
            grown[(p.service, p.host)] = grown.get((p.service, p.host), 0) + 1
        if sum(math.ceil(n / spans_per_request) for n in grown.values()) > k:
            break
        counts = grown
        traces.append(spans)
    # ~60 traces/s ending near now; shift each trace to its start.
    spacing = 16_000_000
    base = now - len(traces) * spacing - 2_000_000_000
    finished: list[_Pending] = []
    for i, spans in enumerate(traces):
        shift = base + i * spacing + rng.randint(0, spacing)
        for p in spans:
            p.span.start_time_unix_nano += shift
            p.span.end_time_unix_nano += shift
            for e in p.span.events:
                e.time_unix_nano += shift
            finished.append(p)
    finished.sort(key=lambda p: p.span.end_time_unix_nano)
    buffers: dict[tuple[str, str], list[_Pending]] = {}
    batches: list[list[_Pending]] = []
    for p in finished:
        buf = buffers.setdefault((p.service, p.host), [])
        buf.append(p)
        if len(buf) == spans_per_request:
            batches.append(buf)
            buffers[(p.service, p.host)] = []
    batches += [buf for buf in buffers.values() if buf]
    pool = Pool([], [], [], [])
    for batch in batches:
        raw = _request(batch).SerializeToString()
        tids = list(dict.fromkeys(p.span.trace_id for p in batch))
        offsets = []
        for tid in tids:
            found: list[int] = []
            pos = raw.find(tid)
            while pos >= 0:
                found.append(pos)
                pos = raw.find(tid, pos + 16)
            offsets.append(found)
        pool.raw.append(raw)
        pool.spans.append(len(batch))
        pool.trace_ids.append(tids)
        pool.offsets.append(offsets)
    return pool


def load_or_build_pool(k: int, *, seed: int = 1, cache: str | None = None) -> Pool:
    """``build_pool``, reusing a pool pickled in ``cache`` if it has the same K and seed
    (so several load processes of one bench run send the same requests)."""
    if cache is not None and os.path.exists(cache):
        with open(cache, "rb") as f:
            key, fields = pickle.load(f)
        if key == (k, seed):
            return Pool(*fields)
    pool = build_pool(k, seed=seed)
    if cache is not None:
        fields = (pool.raw, pool.spans, pool.trace_ids, pool.offsets)
        with open(cache, "wb") as f:
            pickle.dump(((k, seed), fields), f, protocol=pickle.HIGHEST_PROTOCOL)
    return pool


def variant_trace_id(trace_id: bytes, generation: int) -> bytes:
    """The trace id ``trace_id`` becomes in pool generation ``generation``."""
    if not generation:
        return trace_id
    low = (int.from_bytes(trace_id[8:], "big") + generation * _GOLDEN) & _MASK64
    return trace_id[:8] + (low or 1).to_bytes(8, "big")


def payload(pool: Pool, seq: int) -> bytes:
    """The bytes of request number ``seq``: pool entry seq % K, trace ids of its generation."""
    index, generation = seq % len(pool), seq // len(pool)
    raw = pool.raw[index]
    if not generation:
        return raw
    buf = bytearray(raw)
    for tid, offsets in zip(pool.trace_ids[index], pool.offsets[index], strict=True):
        new = variant_trace_id(tid, generation)
        for off in offsets:
            buf[off : off + 16] = new
    return bytes(buf)


def trace_ids_for(pool: Pool, seqs: Iterable[int]) -> list[bytes]:
    """The distinct trace ids carried by requests ``seqs``, first-seen order."""
    out: dict[bytes, None] = {}
    for seq in seqs:
        generation = seq // len(pool)
        for tid in pool.trace_ids[seq % len(pool)]:
            out[variant_trace_id(tid, generation)] = None
    return list(out)


# -- sending --------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass(slots=True)
class LoadResult:
    transport: str
    concurrency: int
    started_at: float = 0.0  # epoch seconds of the first send
    finished_at: float = 0.0  # epoch seconds of the last answer
    drained_at: float | None = None  # epoch seconds the daemon's queue was seen empty
    sent_requests: int = 0
    sent_spans: int = 0
    ok_requests: int = 0
    ok_spans: int = 0
    rejected_spans: int = 0
    failed_requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list, repr=False)
    ok_seqs: list[int] = field(default_factory=list, repr=False)

    @property
    def elapsed_s(self) -> float:
        return max(1e-9, self.finished_at - self.started_at)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_s)
        return {
            "transport": self.transport,
            "concurrency": self.concurrency,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "drained_at": self.drained_at,
            "elapsed_s": round(self.elapsed_s, 3),
            "sent_requests": self.sent_requests,
            "sent_spans": self.sent_spans,
            "ok_requests": self.ok_requests,
            "ok_spans": self.ok_spans,
            "rejected_spans": self.rejected_spans,
            "failed_requests": self.failed_requests,
            "errors": self.errors,
            "requests_per_s": round(self.sent_requests / self.elapsed_s, 1),
            "sent_spans_per_s": round(self.sent_spans / self.elapsed_s, 1),
            "ok_spans_per_s": round(self.ok_spans / self.elapsed_s, 1),
            "latency_ms": {
                "p50": round(percentile(lat, 50) * 1e3, 3),
                "p90": round(percentile(lat, 90) * 1e3, 3),
                "p95": round(percentile(lat, 95) * 1e3, 3),
                "p99": round(percentile(lat, 99) * 1e3, 3),
                "max": round(lat[-1] * 1e3, 3) if lat else 0.0,
            },
        }


def _rejected(answer: bytes) -> int:
    if not answer:
        return 0
    return int(ExportTraceServiceResponse.FromString(answer).partial_success.rejected_spans)


async def run_load(
    pool: Pool,
    *,
    grpc_target: str | None = None,
    http_url: str | None = None,
    duration_s: float = 10.0,
    max_requests: int | None = None,
    concurrency: int = 8,
    start_seq: int = 0,
    timeout_s: float = 30.0,
    drain_url: str | None = None,
) -> LoadResult:
    """Send requests start_seq, start_seq+1, ... with ``concurrency`` in flight until
    ``duration_s`` passes or ``max_requests`` have been sent. With ``drain_url`` (the
    daemon's API), then wait until its pipeline queue is empty, connection still open."""
    if (grpc_target is None) == (http_url is None):
        raise ValueError("give exactly one of grpc_target, http_url")
    result = LoadResult("grpc" if grpc_target else "http", concurrency)
    limit = start_seq + max_requests if max_requests is not None else None
    next_seq = start_seq
    deadline = 0.0

    def claim() -> int | None:
        nonlocal next_seq
        if time.perf_counter() >= deadline or (limit is not None and next_seq >= limit):
            return None
        seq = next_seq
        next_seq += 1
        return seq

    def record(seq: int, latency: float, answer: bytes | None, error: str | None) -> None:
        n = pool.spans[seq % len(pool)]
        result.sent_requests += 1
        result.sent_spans += n
        result.latencies_s.append(latency)
        if answer is None:
            result.failed_requests += 1
            key = error or "error"
            result.errors[key] = result.errors.get(key, 0) + 1
            return
        rejected = _rejected(answer)
        result.ok_requests += 1
        result.ok_spans += n - rejected
        result.rejected_spans += rejected
        result.ok_seqs.append(seq)

    if grpc_target is not None:
        options = [
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20),
        ]
        async with grpc.aio.insecure_channel(grpc_target, options=options) as channel:
            await asyncio.wait_for(channel.channel_ready(), timeout=10)
            export = channel.unary_unary(
                GRPC_METHOD, request_serializer=None, response_deserializer=None
            )

            async def grpc_worker() -> None:
                while (seq := claim()) is not None:
                    body = payload(pool, seq)
                    t0 = time.perf_counter()
                    try:
                        answer: bytes = await export(body, timeout=timeout_s)
                    except grpc.aio.AioRpcError as exc:
                        record(seq, time.perf_counter() - t0, None, exc.code().name)
                    else:
                        record(seq, time.perf_counter() - t0, answer, None)

            result.started_at = time.time()
            deadline = time.perf_counter() + duration_s
            await asyncio.gather(*(grpc_worker() for _ in range(concurrency)))
            result.finished_at = time.time()
            if drain_url:
                result.drained_at = await wait_drained(drain_url)
    else:
        assert http_url is not None
        url = http_url.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        headers = {"Content-Type": "application/x-protobuf"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def http_worker() -> None:
                while (seq := claim()) is not None:
                    body = payload(pool, seq)
                    t0 = time.perf_counter()
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            answer = await response.read()
                            status = response.status
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        record(seq, time.perf_counter() - t0, None, type(exc).__name__)
                        continue
                    if status == 200:
                        record(seq, time.perf_counter() - t0, answer, None)
                    else:
                        record(seq, time.perf_counter() - t0, None, f"http_{status}")

            result.started_at = time.time()
            deadline = time.perf_counter() + duration_s
            await asyncio.gather(*(http_worker() for _ in range(concurrency)))
            result.finished_at = time.time()
            if drain_url:
                result.drained_at = await wait_drained(drain_url)
    return result


async def wait_drained(
    api_url: str, *, timeout_s: float = 120.0, interval_s: float = 0.01
) -> float:
    """Poll the daemon's /daemon/status until its pipeline queue is empty; return that time."""
    url = api_url.rstrip("/") + "/daemon/status"
    end = time.perf_counter() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < end:
            async with session.get(url) as response:
                status = await response.json()
            if status["pipeline"]["queue"]["depth"] == 0:
                return time.time()
            await asyncio.sleep(interval_s)
    raise TimeoutError(f"daemon queue not drained after {timeout_s} s")


def _print_human(summary: dict[str, Any], pool: Pool, build_s: float) -> None:
    lat = summary["latency_ms"]
    print(
        f"pool: {len(pool)} requests, {pool.total_spans} spans, "
        f"{pool.total_bytes / pool.total_spans:.0f} B/span encoded, ready in {build_s:.1f} s"
    )
    print(
        f"{summary['transport']}: {summary['sent_requests']} requests in "
        f"{summary['elapsed_s']:.2f} s, concurrency {summary['concurrency']}"
    )
    print(f"  requests/s         {summary['requests_per_s']:>12,.1f}")
    print(f"  spans/s sent       {summary['sent_spans_per_s']:>12,.1f}")
    print(f"  spans/s acked      {summary['ok_spans_per_s']:>12,.1f}")
    print(f"  failed requests    {summary['failed_requests']:>12}  {summary['errors'] or ''}")
    print(
        f"  latency ms p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
        f"max {lat['max']:.2f}"
    )
    if summary["drained_at"] is not None:
        print(
            f"  queue drained {summary['drained_at'] - summary['finished_at']:.3f} s after "
            "the last answer"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--grpc", metavar="HOST:PORT", help="OTLP/gRPC endpoint")
    target.add_argument("--http", metavar="URL", help="OTLP/HTTP base URL (or .../v1/traces)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--requests", type=int, help="stop after this many requests")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument(
        "--requests-pool",
        type=int,
        default=256,
        metavar="K",
        help="distinct pre-built requests of 512 spans (default 256)",
    )
    parser.add_argument("--seed", type=int, default=1, help="pool seed (default 1)")
    parser.add_argument(
        "--pool-cache",
        metavar="FILE",
        help="pickle the pool here, or load it from here if it matches",
    )
    parser.add_argument(
        "--start-seq",
        type=int,
        default=0,
        help="first request number: continue an earlier run without re-sending its trace ids",
    )
    parser.add_argument(
        "--trace-ids-out",
        metavar="FILE",
        help="write the acknowledged requests' trace ids (hex, one a line)",
    )
    parser.add_argument(
        "--drain-url",
        metavar="API_URL",
        help="after the load, poll API_URL/daemon/status until the queue is empty",
    )
    parser.add_argument(
        "--start-at",
        type=float,
        metavar="EPOCH_S",
        help="wait until this time.time() before sending, so several loads start together",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    pool = load_or_build_pool(args.requests_pool, seed=args.seed, cache=args.pool_cache)
    build_s = time.perf_counter() - t0
    if args.start_at is not None:
        time.sleep(max(0.0, args.start_at - time.time()))

    result = asyncio.run(
        run_load(
            pool,
            grpc_target=args.grpc,
            http_url=args.http,
            duration_s=args.duration,
            max_requests=args.requests,
            concurrency=args.concurrency,
            start_seq=args.start_seq,
            drain_url=args.drain_url,
        )
    )
    if args.trace_ids_out:
        with open(args.trace_ids_out, "w") as f:
            f.writelines(t.hex() + "\n" for t in trace_ids_for(pool, result.ok_seqs))
    summary = result.summary()
    summary["pool"] = {
        "requests": len(pool),
        "spans": pool.total_spans,
        "bytes_per_span": round(pool.total_bytes / pool.total_spans, 1),
        "build_s": round(build_s, 2),
    }
    summary["next_seq"] = args.start_seq + result.sent_requests
    if args.json:
        print(json.dumps(summary))
    else:
        _print_human(summary, pool, build_s)
    return 0 if result.ok_requests else 1


if __name__ == "__main__":
    sys.exit(main())
