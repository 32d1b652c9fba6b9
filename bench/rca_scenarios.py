"""The root-cause corpus: multi-service incidents with a known culprit, for rca_bench.py.

Each scenario follows a pattern that recurs in public incident write-ups and
postmortems (a query that lost its index, a breaker opened by another service's
outage, a pool shrunk by a config push, a process killed by the OOM killer, a retry
storm that ended well, ...), written as spans, log records and events with times in
milliseconds from the start of the trace under analysis (``main``). ``history`` holds
earlier traces (the store's recent baseline, or an earlier failure); ``others`` holds
traces reached through span links.

The corpus has two sets, both written before the analysis was tuned:

- ``TUNING``: what the analysis may be adjusted against;
- ``HELD_OUT``: never looked at while tuning; its figures are the honest ones.

A scenario's ``expect`` names the culprit (a span by trace and key, or a record by a
substring of its message), the status the answer must give, and the service to blame;
``culprit=None`` means nothing is to blame (a healthy or recovered request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["HELD_OUT", "TUNING", "Expect", "Rec", "Scenario", "Sp"]


@dataclass(slots=True)
class Sp:
    """A span: ``parent`` is the key of a span of the same trace; ``links`` are
    ``"trace/key"`` references to spans of other traces of the scenario."""

    key: str
    service: str
    name: str
    start: float
    end: float
    parent: str | None = None
    kind: str = "internal"  # internal | server | client | producer | consumer
    attrs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # status ERROR with this message ("" for none)
    ok: bool = False  # status OK set explicitly
    exc: tuple[str, str] | None = None  # (type, message) of an exception event
    events: list[tuple[str, float, dict[str, Any]]] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Rec:
    """A log record or event; ``span`` is ``"trace/key"`` to carry that span's ids,
    ``trace`` a trace name to carry only its trace id; neither: no ids at all."""

    at: float
    service: str
    level: str
    message: str
    span: str | None = None
    trace: str | None = None
    source: str = "otlp"
    kind: str = "log"
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Expect:
    culprit: str | None  # "trace/key" for a span, "record:<substring>" for a record
    status: str
    service: str | None = None


@dataclass(slots=True)
class Scenario:
    name: str
    klass: str
    main: list[Sp]
    expect: Expect
    records: list[Rec] = field(default_factory=list)
    others: dict[str, list[Sp]] = field(default_factory=dict)
    history: list[tuple[float, list[Sp]]] = field(default_factory=list)
    """(start ms relative to main, spans) of earlier traces, for the baseline."""
    ask: str = "trace"  # trace | event:<substring of a record message> | window


# -- attribute shorthands ---------------------------------------------------------------


def srv(method: str, route: str, status: int) -> dict[str, Any]:
    return {"http.request.method": method, "http.route": route, "http.response.status_code": status}


def cli(method: str, url: str, status: int | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"http.request.method": method, "url.full": url}
    if status is not None:
        attrs["http.response.status_code"] = status
    return attrs


def db(system: str, statement: str, address: str = "db") -> dict[str, Any]:
    return {"db.system": system, "db.statement": statement, "server.address": address}


def grpc(service: str, code: int, peer: str | None = None) -> dict[str, Any]:
    attrs: dict[str, Any] = {"rpc.system": "grpc", "rpc.service": service}
    attrs["rpc.grpc.status_code"] = code
    if peer:
        attrs["server.address"] = peer
    return attrs


def repeat(
    make: Any, n: int, every_ms: float = 1000.0, start_ms: float = -120_000.0
) -> list[tuple[float, list[Sp]]]:
    """``n`` healthy earlier runs of the same request, ``every_ms`` apart, with a little
    jitter in their durations (``make(i)`` builds run ``i``)."""
    return [(start_ms + i * every_ms, make(i)) for i in range(n)]


def jit(i: int, base: float, spread: float = 0.15) -> float:
    """A deterministic duration near ``base`` (+-spread), varying with ``i``."""
    return base * (1 + spread * (((i * 37) % 11) / 5.0 - 1.0))


# ======================================================================================
# TUNING SET
# ======================================================================================


def _t_slow_missing_index() -> Scenario:
    # A deploy dropped an index; the orders listing still answers 200, twenty times slower.
    def run(i: int, q: float) -> list[Sp]:
        d = jit(i, q)
        return [
            Sp(
                "fetch",
                "web",
                "fetch GET /api/orders",
                0,
                d + 30,
                kind="client",
                attrs=cli("GET", "http://localhost:8000/api/orders", 200),
            ),
            Sp(
                "srv",
                "orders",
                "GET /api/orders",
                5,
                d + 25,
                "fetch",
                "server",
                srv("GET", "/api/orders", 200),
            ),
            Sp(
                "auth",
                "orders",
                "SELECT session",
                6,
                9,
                "srv",
                "client",
                db("postgresql", "SELECT * FROM sessions WHERE id=$1"),
            ),
            Sp(
                "q",
                "orders",
                "SELECT orders",
                10,
                10 + d,
                "srv",
                "client",
                db("postgresql", "SELECT * FROM orders WHERE customer_id=$1"),
            ),
            Sp("render", "orders", "serialize", 10 + d, 12 + d, "srv"),
        ]

    return Scenario(
        "slow listing after an index was dropped",
        "slow",
        run(0, 1900.0),
        Expect("main/q", "slow", "orders"),
        history=repeat(lambda i: run(i, 25.0), 20),
    )


def _t_slow_regex_cpu() -> Scenario:
    # A WAF rule's regex backtracks: CPU-bound self time in one internal span.
    def run(i: int, r: float) -> list[Sp]:
        d = jit(i, r)
        return [
            Sp("edge", "edge-proxy", "GET /", 0, 20 + d, kind="server", attrs=srv("GET", "/", 200)),
            Sp("waf", "edge-proxy", "waf.evaluate", 1, 1 + d, "edge"),
            Sp(
                "up",
                "edge-proxy",
                "GET origin",
                2 + d,
                18 + d,
                "edge",
                "client",
                cli("GET", "http://origin/", 200),
            ),
            Sp("origin", "origin", "GET /", 4 + d, 16 + d, "up", "server", srv("GET", "/", 200)),
        ]

    return Scenario(
        "regex backtracking in the WAF",
        "slow",
        run(0, 1400.0),
        Expect("main/waf", "slow", "edge-proxy"),
        history=repeat(lambda i: run(i, 0.8), 25),
    )


def _t_slow_downstream_lock() -> Scenario:
    # Row lock contention in the ledger service; the gateway and payments only wait.
    def run(i: int, lock: float) -> list[Sp]:
        d = jit(i, lock)
        return [
            Sp(
                "gw",
                "gateway",
                "POST /transfer",
                0,
                60 + d,
                kind="server",
                attrs=srv("POST", "/transfer", 200),
            ),
            Sp(
                "c1",
                "gateway",
                "POST payments",
                3,
                57 + d,
                "gw",
                "client",
                cli("POST", "http://payments/transfer", 200),
            ),
            Sp(
                "pay",
                "payments",
                "POST /transfer",
                5,
                55 + d,
                "c1",
                "server",
                srv("POST", "/transfer", 200),
            ),
            Sp("val", "payments", "validate", 6, 12, "pay"),
            Sp(
                "c2",
                "payments",
                "POST ledger",
                13,
                52 + d,
                "pay",
                "client",
                cli("POST", "http://ledger/entries", 200),
            ),
            Sp(
                "led",
                "ledger",
                "POST /entries",
                15,
                50 + d,
                "c2",
                "server",
                srv("POST", "/entries", 200),
            ),
            Sp(
                "upd",
                "ledger",
                "UPDATE accounts",
                17,
                47 + d,
                "led",
                "client",
                db("postgresql", "UPDATE accounts SET balance=... WHERE id=$1"),
            ),
        ]

    return Scenario(
        "row lock contention two services down",
        "slow",
        run(0, 2500.0),
        Expect("main/upd", "slow", "ledger"),
        history=repeat(lambda i: run(i, 8.0), 20),
    )


def _t_deadline_grpc() -> Scenario:
    # The checkout's gRPC call to inventory hits its 500 ms deadline; inventory keeps
    # running on a slow stock query and answers (to nobody) 2 s later.
    return Scenario(
        "deadline exceeded while inventory still runs",
        "deadline",
        [
            Sp(
                "co",
                "checkout",
                "POST /checkout",
                0,
                520,
                kind="server",
                attrs=srv("POST", "/checkout", 504),
                error="",
            ),
            Sp(
                "call",
                "checkout",
                "inventory.Reserve",
                10,
                510,
                "co",
                "client",
                grpc("inventory.Inventory", 4, "inventory"),
                error="DEADLINE_EXCEEDED",
                exc=("grpc.RpcError", "Deadline Exceeded"),
            ),
            Sp(
                "inv",
                "inventory",
                "inventory.Reserve",
                15,
                2300,
                "call",
                "server",
                grpc("inventory.Inventory", 0),
            ),
            Sp(
                "stock",
                "inventory",
                "SELECT stock FOR UPDATE",
                20,
                2280,
                "inv",
                "client",
                db("postgresql", "SELECT qty FROM stock WHERE sku=$1 FOR UPDATE"),
            ),
        ],
        Expect("main/stock", "failed", "inventory"),
        records=[
            Rec(
                520,
                "checkout",
                "error",
                "checkout failed: deadline exceeded calling inventory",
                span="main/co",
            )
        ],
    )


def _t_deadline_http_timeout() -> Scenario:
    # The BFF's HTTP client times out after 1 s; the search service's Elasticsearch query
    # finishes at 3.1 s.
    return Scenario(
        "client timeout while search is still querying",
        "deadline",
        [
            Sp(
                "fetch",
                "browser",
                "fetch GET /api/search",
                0,
                1030,
                kind="client",
                attrs=cli("GET", "http://localhost:3000/api/search?q=shoes", 504),
                error="",
            ),
            Sp(
                "bff",
                "bff",
                "GET /api/search",
                5,
                1025,
                "fetch",
                "server",
                srv("GET", "/api/search", 504),
                error="",
            ),
            Sp(
                "c",
                "bff",
                "GET search",
                10,
                1015,
                "bff",
                "client",
                cli("GET", "http://search:9200/query"),
                error="timeout",
                exc=(
                    "ReadTimeout",
                    "HTTPConnectionPool(host='search', port=9200): Read timed "
                    "out. (read timeout=1.0)",
                ),
            ),
            Sp("s", "search", "GET /query", 20, 3120, "c", "server", srv("GET", "/query", 200)),
            Sp(
                "es",
                "search",
                "elasticsearch search",
                25,
                3100,
                "s",
                "client",
                db("elasticsearch", '{"query":{"wildcard":{"name":"*shoes*"}}}', "es"),
            ),
        ],
        Expect("main/es", "failed", "search"),
    )


def _t_breaker_earlier_in_trace() -> Scenario:
    # The recommendations call fails on a DNS error; the next call to it hits the open
    # breaker; the page answers 503.
    return Scenario(
        "breaker opened by an earlier failure in the same request",
        "propagation",
        [
            Sp(
                "home",
                "storefront",
                "GET /home",
                0,
                120,
                kind="server",
                attrs=srv("GET", "/home", 503),
                error="",
            ),
            Sp(
                "r1",
                "storefront",
                "GET recommendations",
                5,
                40,
                "home",
                "client",
                cli("GET", "http://recs/for-user"),
                error="",
                exc=("socket.gaierror", "[Errno -2] Name or service not known: 'recs'"),
            ),
            Sp(
                "r2",
                "storefront",
                "GET recommendations",
                45,
                46,
                "home",
                "client",
                cli("GET", "http://recs/trending"),
                error="",
                exc=("CircuitBreakerError", "circuit breaker 'recs' is OPEN"),
            ),
            Sp(
                "fail",
                "storefront",
                "render error page",
                50,
                118,
                "home",
                error="",
                exc=("ServiceUnavailable", "dependency recs unavailable: circuit open"),
            ),
        ],
        Expect("main/r1", "failed", "storefront"),
    )


def _t_breaker_same_service_before() -> Scenario:
    # Payments failed on every call for the last 30 s (earlier traces); now checkout's
    # breaker is open and fails fast. The cause is the payments failure, not the breaker.
    def failing(i: int) -> list[Sp]:
        return [
            Sp(
                "co",
                "checkout",
                "POST /checkout",
                0,
                3020,
                kind="server",
                attrs=srv("POST", "/checkout", 502),
                error="",
            ),
            Sp(
                "c",
                "checkout",
                "POST payments",
                5,
                3010,
                "co",
                "client",
                cli("POST", "http://payments/charge", 502),
                error="",
            ),
            Sp(
                "p",
                "payments",
                "POST /charge",
                8,
                3005,
                "c",
                "server",
                srv("POST", "/charge", 502),
                error="",
            ),
            Sp(
                "pc",
                "payments",
                "POST acquirer",
                10,
                3000,
                "p",
                "client",
                cli("POST", "https://acquirer.example/authorize"),
                error="",
                exc=("ConnectTimeout", "connect to acquirer.example:443 timed out"),
            ),
        ]

    return Scenario(
        "breaker open after payments failed for 30 s",
        "propagation",
        [
            Sp(
                "co",
                "checkout",
                "POST /checkout",
                0,
                4,
                kind="server",
                attrs=srv("POST", "/checkout", 503),
                error="",
            ),
            Sp(
                "c",
                "checkout",
                "POST payments",
                1,
                2,
                "co",
                "client",
                cli("POST", "http://payments/charge"),
                error="circuit open",
                exc=("CircuitBreakerOpen", "breaker payments-charge is open"),
            ),
        ],
        Expect("hist0/pc", "failed", "payments"),  # the first failure of the run
        history=[(-30_000.0 + 5000.0 * i, failing(i)) for i in range(5)],
    )


def _t_upstream_5xx_relayed() -> Scenario:
    # Nginx-style gateway relays a 502 from users; users logged the real error with the
    # span's ids (NullPointerException in the profile mapper).
    return Scenario(
        "bad gateway relayed from a crashing service",
        "propagation",
        [
            Sp(
                "gw",
                "gateway",
                "GET /api/users/42",
                0,
                80,
                kind="server",
                attrs=srv("GET", "/api/users/{id}", 502),
                error="upstream returned 502",
            ),
            Sp(
                "c",
                "gateway",
                "GET users",
                2,
                78,
                "gw",
                "client",
                cli("GET", "http://users:8080/users/42", 502),
                error="Bad Gateway",
            ),
            Sp(
                "u",
                "users",
                "GET /users/{id}",
                5,
                75,
                "c",
                "server",
                srv("GET", "/users/{id}", 500),
                error="",
            ),
            Sp("m", "users", "ProfileMapper.toDto", 40, 44, "u"),
        ],
        Expect("main/m", "failed", "users"),
        records=[
            Rec(
                44,
                "users",
                "error",
                "java.lang.NullPointerException: Cannot invoke "
                '"Address.getCity()" because "user.address" is null',
                span="main/m",
            )
        ],
    )


def _t_pool_exhausted_by_slow_query() -> Scenario:
    # Connection pool exhausted: the pool timeout is a consequence; an earlier request in
    # the same trace's service holds connections with a long query (same trace: batch).
    return Scenario(
        "pool exhausted behind a long-running report query",
        "propagation",
        [
            Sp(
                "job",
                "reports",
                "POST /reports/run",
                0,
                30_100,
                kind="server",
                attrs=srv("POST", "/reports/run", 500),
                error="",
            ),
            Sp(
                "big",
                "reports",
                "SELECT sales report",
                5,
                30_000,
                "job",
                "client",
                db("postgresql", "SELECT ... FROM sales JOIN ... GROUP BY ..."),
                error="canceling statement due to statement timeout",
                exc=("QueryCanceled", "canceling statement due to statement timeout"),
            ),
            Sp(
                "acq",
                "reports",
                "pool.acquire",
                29_000,
                30_050,
                "job",
                error="",
                exc=(
                    "PoolTimeout",
                    "QueuePool limit of size 5 overflow 0 reached, connection "
                    "timed out, timeout 30",
                ),
            ),
        ],
        Expect("main/big", "failed", "reports"),
    )


def _t_handled_cache_fallback() -> Scenario:
    return Scenario(
        "redis down, served from the database",
        "handled",
        [
            Sp(
                "s",
                "catalog",
                "GET /products/{id}",
                0,
                45,
                kind="server",
                attrs=srv("GET", "/products/{id}", 200),
            ),
            Sp(
                "r",
                "catalog",
                "GET",
                2,
                6,
                "s",
                "client",
                {"db.system": "redis", "server.address": "cache"},
                error="",
                exc=("ConnectionError", "Error 111 connecting to cache:6379. Connection refused."),
            ),
            Sp(
                "q",
                "catalog",
                "SELECT product",
                7,
                40,
                "s",
                "client",
                db("postgresql", "SELECT * FROM products WHERE id=$1"),
            ),
        ],
        Expect(None, "degraded"),
    )


def _t_handled_retry_succeeded() -> Scenario:
    return Scenario(
        "a 503 retried once and answered",
        "handled",
        [
            Sp(
                "s",
                "orders",
                "POST /orders",
                0,
                140,
                kind="server",
                attrs=srv("POST", "/orders", 201),
            ),
            Sp(
                "a1",
                "orders",
                "POST inventory",
                5,
                30,
                "s",
                "client",
                cli("POST", "http://inventory/reserve", 503),
                error="",
            ),
            Sp(
                "i1",
                "inventory",
                "POST /reserve",
                7,
                28,
                "a1",
                "server",
                srv("POST", "/reserve", 503),
                error="",
                exc=("Overloaded", "shedding load: queue full"),
            ),
            Sp(
                "a2",
                "orders",
                "POST inventory",
                80,
                130,
                "s",
                "client",
                cli("POST", "http://inventory/reserve", 200),
            ),
            Sp(
                "i2",
                "inventory",
                "POST /reserve",
                82,
                128,
                "a2",
                "server",
                srv("POST", "/reserve", 200),
            ),
        ],
        Expect(None, "degraded"),
    )


def _t_handled_optional_feature() -> Scenario:
    # A feature-flag lookup throws; the handler logs a warning and uses the default.
    return Scenario(
        "feature flag service error ignored",
        "handled",
        [
            Sp(
                "f",
                "browser",
                "fetch GET /api/dashboard",
                0,
                95,
                kind="client",
                attrs=cli("GET", "http://localhost:8000/api/dashboard", 200),
            ),
            Sp(
                "s",
                "api",
                "GET /api/dashboard",
                5,
                90,
                "f",
                "server",
                srv("GET", "/api/dashboard", 200),
            ),
            Sp(
                "ff",
                "api",
                "flags.evaluate",
                6,
                20,
                "s",
                error="",
                exc=("FlagServiceError", "flags service returned 500"),
            ),
            Sp(
                "q",
                "api",
                "SELECT widgets",
                21,
                85,
                "s",
                "client",
                db("postgresql", "SELECT * FROM widgets"),
            ),
        ],
        Expect(None, "degraded"),
        records=[Rec(20, "api", "warn", "flags unavailable, using defaults", span="main/s")],
    )


def _t_log_no_trace_before_internal_error() -> Scenario:
    # The handler's error says only "internal error"; a line the ORM printed without any
    # trace id, a moment before, says why.
    return Scenario(
        "untraced log line explains a bare internal error",
        "untraced-log",
        [
            Sp(
                "s",
                "billing",
                "POST /invoices",
                0,
                60,
                kind="server",
                attrs=srv("POST", "/invoices", 500),
                error="internal error",
            ),
            Sp("v", "billing", "validate", 1, 5, "s"),
        ],
        Expect("record:duplicate key value", "failed", "billing"),
        records=[
            Rec(-4000, "billing", "info", "GET /healthz 200"),
            Rec(
                52,
                "billing",
                "error",
                "psycopg2.errors.UniqueViolation: duplicate key value "
                'violates unique constraint "invoices_number_key"',
                source="backend",
            ),
            Rec(58, "mailer", "error", "SMTP 421 try again later", source="backend"),
        ],
    )


def _t_oom_killed() -> Scenario:
    # The image service is OOM-killed under gasoline-run; the api's call gets a reset.
    return Scenario(
        "image service OOM-killed mid-request",
        "process",
        [
            Sp(
                "s",
                "api",
                "POST /upload",
                0,
                900,
                kind="server",
                attrs=srv("POST", "/upload", 502),
                error="",
            ),
            Sp(
                "c",
                "api",
                "POST thumbnails",
                10,
                890,
                "s",
                "client",
                {**cli("POST", "http://thumbs:7000/resize"), "server.address": "thumbs"},
                error="",
                exc=("ConnectionResetError", "[Errno 104] Connection reset by peer"),
            ),
        ],
        Expect("record:Killed", "failed", "thumbs"),
        records=[
            Rec(-30_000, "thumbs", "info", "listening on :7000", source="backend"),
            Rec(400, "thumbs", "info", "resizing 48 MP image", source="backend"),
            Rec(880, "thumbs", "error", "Killed", source="backend"),
            Rec(
                881,
                "thumbs",
                "error",
                "gasoline-run: process exited: killed by signal 9 (SIGKILL), exit status 137",
                source="backend",
            ),
        ],
        history=[
            (
                -60_000.0,
                [
                    Sp(
                        "s",
                        "thumbs",
                        "POST /resize",
                        0,
                        40,
                        kind="server",
                        attrs=srv("POST", "/resize", 200),
                    ),
                ],
            )
        ],
    )


def _t_linked_consumer_failure() -> Scenario:
    # The order was accepted (202) and a message published; the consumer's trace (linked
    # to the producer span) failed. Asked about the consumer trace: the producer's data.
    return Scenario(
        "consumer fails on a message the producer published",
        "link",
        [
            Sp(
                "c",
                "fulfilment",
                "orders process",
                0,
                40,
                kind="consumer",
                attrs={"messaging.system": "kafka", "messaging.destination.name": "orders"},
                error="",
                exc=("KeyError", "'shipping_address'"),
                links=["prod/pub"],
            ),
        ],
        Expect("main/c", "failed", "fulfilment"),
        others={
            "prod": [
                Sp(
                    "s",
                    "orders",
                    "POST /orders",
                    0,
                    30,
                    kind="server",
                    attrs=srv("POST", "/orders", 202),
                ),
                Sp(
                    "pub",
                    "orders",
                    "orders publish",
                    10,
                    15,
                    "s",
                    "producer",
                    {"messaging.system": "kafka", "messaging.destination.name": "orders"},
                ),
            ]
        },
    )


def _t_linked_batch_from_failed_upstream() -> Scenario:
    # A batch export span links to the trace that produced its input; that trace failed
    # writing the file, so the export finds an empty input. Cause: the linked failure.
    return Scenario(
        "batch job links to the failed job that produced its input",
        "link",
        [
            Sp(
                "exp",
                "exporter",
                "export daily",
                0,
                200,
                kind="consumer",
                error="empty input",
                links=["etl/w"],
            ),
            Sp("rd", "exporter", "read s3://exports/daily.csv", 5, 20, "exp"),
        ],
        Expect("etl/w", "failed", "etl"),
        others={
            "etl": [
                Sp("j", "etl", "etl nightly", 0, 5000, kind="server", error=""),
                Sp(
                    "w",
                    "etl",
                    "write s3://exports/daily.csv",
                    4000,
                    4900,
                    "j",
                    "client",
                    {"server.address": "s3.amazonaws.com"},
                    error="",
                    exc=(
                        "ClientError",
                        "An error occurred (AccessDenied) when calling the "
                        "PutObject operation: Access Denied",
                    ),
                ),
            ]
        },
    )


def _t_4xx_explained_by_log() -> Scenario:
    return Scenario(
        "422 explained by the server's validation log",
        "client-4xx",
        [
            Sp(
                "f",
                "browser",
                "fetch POST /api/signup",
                0,
                40,
                kind="client",
                attrs=cli("POST", "http://localhost:8000/api/signup", 422),
                error="",
            ),
            Sp(
                "s",
                "accounts",
                "POST /api/signup",
                5,
                35,
                "f",
                "server",
                srv("POST", "/api/signup", 422),
            ),
            Sp("v", "accounts", "validate signup", 6, 10, "s"),
        ],
        Expect("record:password must", "failed", "accounts"),
        records=[
            Rec(
                10,
                "accounts",
                "warn",
                "signup rejected: password must be at least 12 characters",
                span="main/v",
            )
        ],
    )


def _t_conn_refused_peer_service() -> Scenario:
    return Scenario(
        "connection refused to the notifications service",
        "whom",
        [
            Sp(
                "s",
                "orders",
                "POST /orders",
                0,
                30,
                kind="server",
                attrs=srv("POST", "/orders", 500),
                error="",
            ),
            Sp(
                "c",
                "orders",
                "POST",
                5,
                8,
                "s",
                "client",
                {**cli("POST", "http://10.0.3.7:8081/notify"), "peer.service": "notifications"},
                error="",
                exc=("ConnectionRefusedError", "[Errno 111] Connection refused"),
            ),
        ],
        Expect("main/c", "failed", "notifications"),
        history=[
            (
                -90_000.0,
                [
                    Sp(
                        "n",
                        "notifications",
                        "POST /notify",
                        0,
                        12,
                        kind="server",
                        attrs=srv("POST", "/notify", 200),
                    ),
                ],
            )
        ],
    )


def _t_conn_refused_server_address() -> Scenario:
    return Scenario(
        "connection refused, service named only by its address",
        "whom",
        [
            Sp(
                "s",
                "api",
                "GET /api/cart",
                0,
                20,
                kind="server",
                attrs=srv("GET", "/api/cart", 500),
                error="",
            ),
            Sp(
                "c",
                "api",
                "GET",
                2,
                4,
                "s",
                "client",
                {
                    **cli("GET", "http://cart-svc.default.svc.cluster.local:8080/cart/1"),
                    "server.address": "cart-svc.default.svc.cluster.local",
                },
                error="",
                exc=("ConnectError", "connection refused"),
            ),
        ],
        Expect("main/c", "failed", "cart-svc"),
        history=[
            (
                -60_000.0,
                [
                    Sp(
                        "n",
                        "cart-svc",
                        "GET /cart/{id}",
                        0,
                        9,
                        kind="server",
                        attrs=srv("GET", "/cart/{id}", 200),
                    ),
                ],
            )
        ],
    )


def _t_config_reload_pool() -> Scenario:
    return Scenario(
        "pool shrunk by a config reload",
        "change",
        [
            Sp(
                "s",
                "accounts",
                "GET /api/account",
                0,
                5010,
                kind="server",
                attrs=srv("GET", "/api/account", 500),
                error="",
            ),
            Sp(
                "a",
                "accounts",
                "pool.acquire",
                2,
                5005,
                "s",
                error="",
                exc=(
                    "PoolTimeoutError",
                    "timed out waiting for a connection from the pool after 5000 ms",
                ),
            ),
        ],
        Expect("record:pool size 20 -> 2", "failed", "accounts"),
        records=[
            Rec(
                -45_000,
                "accounts",
                "info",
                "config reloaded: db.pool size 20 -> 2",
                source="custom",
                kind="event",
                attrs={"type": "config"},
            ),
            Rec(-44_000, "accounts", "info", "GET /healthz 200", source="backend"),
        ],
    )


def _t_healthy_plain() -> Scenario:
    return Scenario(
        "healthy checkout",
        "healthy",
        [
            Sp(
                "f",
                "browser",
                "fetch POST /api/checkout",
                0,
                210,
                kind="client",
                attrs=cli("POST", "http://localhost:8000/api/checkout", 200),
            ),
            Sp(
                "s",
                "shop",
                "POST /api/checkout",
                5,
                205,
                "f",
                "server",
                srv("POST", "/api/checkout", 200),
            ),
            Sp(
                "q",
                "shop",
                "INSERT orders",
                10,
                40,
                "s",
                "client",
                db("postgresql", "INSERT INTO orders ..."),
            ),
            Sp(
                "p",
                "shop",
                "POST payments",
                45,
                200,
                "s",
                "client",
                cli("POST", "http://payments/charge", 200),
            ),
            Sp(
                "ps",
                "payments",
                "POST /charge",
                50,
                195,
                "p",
                "server",
                srv("POST", "/charge", 200),
            ),
        ],
        Expect(None, "ok"),
        history=repeat(
            lambda i: [
                Sp(
                    "s",
                    "shop",
                    "POST /api/checkout",
                    0,
                    jit(i, 200.0),
                    kind="server",
                    attrs=srv("POST", "/api/checkout", 200),
                ),
            ],
            10,
        ),
    )


def _t_healthy_404_expected() -> Scenario:
    # A 404 for a missing avatar is the page's normal path; nothing failed.
    return Scenario(
        "healthy page with an expected 404 handled",
        "healthy",
        [
            Sp("s", "web", "GET /profile", 0, 50, kind="server", attrs=srv("GET", "/profile", 200)),
            Sp(
                "c",
                "web",
                "GET avatars",
                5,
                15,
                "s",
                "client",
                cli("GET", "http://avatars/u/9.png", 404),
            ),
            Sp(
                "q",
                "web",
                "SELECT user",
                16,
                40,
                "s",
                "client",
                db("postgresql", "SELECT * FROM users WHERE id=$1"),
            ),
        ],
        Expect(None, "degraded"),
    )


def _t_healthy_slow_like_always() -> Scenario:
    # A report that always takes ~2 s is not slow today: it is as slow as its baseline.
    def run(i: int) -> list[Sp]:
        d = jit(i, 2000.0, 0.05)
        return [
            Sp(
                "s",
                "reports",
                "GET /reports/monthly",
                0,
                d + 10,
                kind="server",
                attrs=srv("GET", "/reports/monthly", 200),
            ),
            Sp(
                "q",
                "reports",
                "SELECT monthly",
                5,
                d + 5,
                "s",
                "client",
                db("postgresql", "SELECT ... GROUP BY month"),
            ),
        ]

    return Scenario(
        "a slow report as slow as ever",
        "healthy",
        run(3),
        Expect(None, "ok"),
        history=repeat(run, 15),
    )


def _t_deep_exception() -> Scenario:
    return Scenario(
        "exception three services down",
        "classic",
        [
            Sp(
                "f",
                "browser",
                "fetch GET /api/invoice/7",
                0,
                90,
                kind="client",
                attrs=cli("GET", "http://localhost:8000/api/invoice/7", 500),
                error="",
            ),
            Sp(
                "a",
                "api",
                "GET /api/invoice/{id}",
                5,
                85,
                "f",
                "server",
                srv("GET", "/api/invoice/{id}", 500),
                error="",
            ),
            Sp(
                "ac",
                "api",
                "GET billing",
                7,
                83,
                "a",
                "client",
                cli("GET", "http://billing/invoices/7", 500),
                error="",
            ),
            Sp(
                "b",
                "billing",
                "GET /invoices/{id}",
                9,
                81,
                "ac",
                "server",
                srv("GET", "/invoices/{id}", 500),
                error="",
            ),
            Sp(
                "bc",
                "billing",
                "GET fx",
                10,
                79,
                "b",
                "client",
                cli("GET", "http://fx/rates", 500),
                error="",
            ),
            Sp(
                "fx",
                "fx",
                "GET /rates",
                12,
                77,
                "bc",
                "server",
                srv("GET", "/rates", 500),
                error="",
                exc=("ZeroDivisionError", "division by zero"),
            ),
        ],
        Expect("main/fx", "failed", "fx"),
    )


def _t_browser_error_after_200() -> Scenario:
    # The API answered 200 with a changed payload; the page's code throws on it.
    return Scenario(
        "frontend throws on a 200 answer",
        "classic",
        [
            Sp(
                "f",
                "browser",
                "fetch GET /api/cart",
                0,
                40,
                kind="client",
                attrs=cli("GET", "http://localhost:8000/api/cart", 200),
            ),
            Sp("s", "api", "GET /api/cart", 5, 35, "f", "server", srv("GET", "/api/cart", 200)),
        ],
        Expect("record:Cannot read properties", "failed", "browser"),
        records=[
            Rec(
                45,
                "browser",
                "error",
                "Uncaught TypeError: Cannot read properties of undefined (reading 'total')",
                trace="main",
                source="browser",
                kind="event",
                attrs={"type": "error", "filename": "cart.js"},
            )
        ],
    )


def _t_window_what_broke() -> Scenario:
    # No trace id: "what broke in the last minutes" finds the failing trace and its cause.
    return Scenario(
        "what broke: a failed migration",
        "window",
        [
            Sp(
                "s",
                "api",
                "GET /api/items",
                0,
                30,
                kind="server",
                attrs=srv("GET", "/api/items", 500),
                error="",
            ),
            Sp(
                "q",
                "api",
                "SELECT items",
                2,
                28,
                "s",
                "client",
                db("postgresql", "SELECT id, title, archived FROM items"),
                error='column "archived" does not exist',
                exc=("UndefinedColumn", 'column "archived" does not exist'),
            ),
        ],
        Expect("main/q", "failed", "api"),
        ask="window",
    )


def _t_event_id_asks() -> Scenario:
    # Asked by the id of the browser's error event: the answer walks from it to the db.
    return Scenario(
        "asked from a browser error event",
        "classic",
        [
            Sp(
                "f",
                "browser",
                "fetch POST /api/notes",
                0,
                50,
                kind="client",
                attrs=cli("POST", "http://localhost:8000/api/notes", 500),
                error="",
            ),
            Sp(
                "s",
                "notes",
                "POST /api/notes",
                5,
                45,
                "f",
                "server",
                srv("POST", "/api/notes", 500),
                error="",
            ),
            Sp(
                "q",
                "notes",
                "INSERT notes",
                10,
                40,
                "s",
                "client",
                db("postgresql", "INSERT INTO notes ..."),
                error="value too long for type character varying(200)",
            ),
        ],
        Expect("main/q", "failed", "notes"),
        records=[
            Rec(
                55,
                "browser",
                "error",
                "Failed to save note: 500",
                trace="main",
                source="browser",
                kind="event",
            )
        ],
        ask="event:Failed to save note",
    )


TUNING: list[Scenario] = [
    _t_slow_missing_index(),
    _t_slow_regex_cpu(),
    _t_slow_downstream_lock(),
    _t_deadline_grpc(),
    _t_deadline_http_timeout(),
    _t_breaker_earlier_in_trace(),
    _t_breaker_same_service_before(),
    _t_upstream_5xx_relayed(),
    _t_pool_exhausted_by_slow_query(),
    _t_handled_cache_fallback(),
    _t_handled_retry_succeeded(),
    _t_handled_optional_feature(),
    _t_log_no_trace_before_internal_error(),
    _t_oom_killed(),
    _t_linked_consumer_failure(),
    _t_linked_batch_from_failed_upstream(),
    _t_4xx_explained_by_log(),
    _t_conn_refused_peer_service(),
    _t_conn_refused_server_address(),
    _t_config_reload_pool(),
    _t_healthy_plain(),
    _t_healthy_404_expected(),
    _t_healthy_slow_like_always(),
    _t_deep_exception(),
    _t_browser_error_after_200(),
    _t_window_what_broke(),
    _t_event_id_asks(),
]


def _t_linked_reverse_fanout() -> Scenario:
    # The scheduler's trace only says a task failed; each task runs in its own trace that
    # links back to the scheduler span. One of them failed on a real error.
    return Scenario(
        "scheduler fan-out: the failing task links back",
        "link",
        [
            Sp(
                "sch",
                "scheduler",
                "run nightly tasks",
                0,
                9000,
                kind="server",
                error="1 of 3 tasks failed",
            ),
            Sp("d", "scheduler", "dispatch", 5, 50, "sch", "producer"),
        ],
        Expect("t2/x", "failed", "worker"),
        others={
            "t1": [
                Sp(
                    "w",
                    "worker",
                    "task resize-images",
                    100,
                    3000,
                    kind="consumer",
                    links=["main/d"],
                )
            ],
            "t2": [
                Sp(
                    "w",
                    "worker",
                    "task rebuild-index",
                    120,
                    4000,
                    kind="consumer",
                    error="",
                    links=["main/d"],
                ),
                Sp(
                    "x",
                    "worker",
                    "write index shard 3",
                    3000,
                    3990,
                    "w",
                    error="",
                    exc=("OSError", "[Errno 28] No space left on device"),
                ),
            ],
            "t3": [
                Sp("w", "worker", "task send-digests", 130, 2000, kind="consumer", links=["main/d"])
            ],
        },
    )


TUNING.append(_t_linked_reverse_fanout())


# ======================================================================================
# HELD-OUT SET (written with the tuning set, before any tuning; not used to tune)
# ======================================================================================


def _h_slow_n_plus_one_serializer() -> Scenario:
    # The GraphQL resolver got slow: a nested resolver's own CPU time, not the db.
    def run(i: int, cpu: float) -> list[Sp]:
        d = jit(i, cpu)
        return [
            Sp(
                "g",
                "graphql",
                "POST /graphql",
                0,
                40 + d,
                kind="server",
                attrs=srv("POST", "/graphql", 200),
            ),
            Sp(
                "q",
                "graphql",
                "SELECT products",
                2,
                20,
                "g",
                "client",
                db("mysql", "SELECT * FROM products LIMIT 50"),
            ),
            Sp("r", "graphql", "resolve Product.price", 21, 21 + d, "g"),
            Sp("o", "graphql", "serialize response", 22 + d, 38 + d, "g"),
        ]

    return Scenario(
        "price resolver burning CPU",
        "slow",
        run(0, 1300.0),
        Expect("main/r", "slow", "graphql"),
        history=repeat(lambda i: run(i, 6.0), 18),
    )


def _h_slow_third_party() -> Scenario:
    # A geocoding API got slow; it sends no spans, the client span shows the time.
    def run(i: int, t: float) -> list[Sp]:
        d = jit(i, t)
        return [
            Sp(
                "s",
                "delivery",
                "POST /quotes",
                0,
                30 + d,
                kind="server",
                attrs=srv("POST", "/quotes", 200),
            ),
            Sp(
                "geo",
                "delivery",
                "GET",
                5,
                5 + d,
                "s",
                "client",
                cli("GET", "https://maps.example.com/geocode?q=...", 200),
            ),
            Sp("calc", "delivery", "price quote", 6 + d, 28 + d, "s"),
        ]

    return Scenario(
        "geocoding API slow",
        "slow",
        run(0, 4200.0),
        Expect("main/geo", "slow", "delivery"),
        history=repeat(lambda i: run(i, 120.0), 20),
    )


def _h_slow_gc_pause_in_callee() -> Scenario:
    # The pricing service's handler shows 1.8 s of self time (a stop-the-world pause).
    def run(i: int, pause: float) -> list[Sp]:
        d = jit(i, pause)
        return [
            Sp(
                "f",
                "browser",
                "fetch GET /api/price",
                0,
                60 + d,
                kind="client",
                attrs=cli("GET", "http://localhost:8000/api/price", 200),
            ),
            Sp(
                "a",
                "api",
                "GET /api/price",
                5,
                55 + d,
                "f",
                "server",
                srv("GET", "/api/price", 200),
            ),
            Sp(
                "c",
                "api",
                "GET pricing",
                8,
                52 + d,
                "a",
                "client",
                cli("GET", "http://pricing/price", 200),
            ),
            Sp("p", "pricing", "GET /price", 10, 50 + d, "c", "server", srv("GET", "/price", 200)),
            Sp(
                "r",
                "pricing",
                "GET",
                12,
                20,
                "p",
                "client",
                {"db.system": "redis", "server.address": "cache"},
            ),
        ]

    return Scenario(
        "pause in the pricing service",
        "slow",
        run(0, 1800.0),
        Expect("main/p", "slow", "pricing"),
        history=repeat(lambda i: run(i, 10.0), 20),
    )


def _h_deadline_chain_three() -> Scenario:
    # Two levels of callers time out; the recommender's model inference keeps going.
    return Scenario(
        "nested deadlines over slow inference",
        "deadline",
        [
            Sp(
                "web",
                "web",
                "GET /for-you",
                0,
                820,
                kind="server",
                attrs=srv("GET", "/for-you", 504),
                error="",
            ),
            Sp(
                "c1",
                "web",
                "feed.Get",
                5,
                805,
                "web",
                "client",
                grpc("feed.Feed", 4, "feed"),
                error="DEADLINE_EXCEEDED",
            ),
            Sp(
                "feed",
                "feed",
                "feed.Get",
                10,
                1600,
                "c1",
                "server",
                grpc("feed.Feed", 4),
                error="",
                exc=("DeadlineExceeded", "context deadline exceeded"),
            ),
            Sp(
                "c2",
                "feed",
                "recommender.Score",
                15,
                800,
                "feed",
                "client",
                grpc("recommender.Recommender", 4, "recommender"),
                error="DEADLINE_EXCEEDED",
            ),
            Sp(
                "rec",
                "recommender",
                "recommender.Score",
                20,
                4200,
                "c2",
                "server",
                grpc("recommender.Recommender", 0),
            ),
            Sp("inf", "recommender", "model.predict", 25, 4190, "rec"),
        ],
        Expect("main/inf", "failed", "recommender"),
    )


def _h_deadline_db_statement_timeout_ctx() -> Scenario:
    # The API's context deadline fires while its call to the ledger is still waiting on a
    # slow ledger query; the ledger answers 200 afterwards.
    return Scenario(
        "context deadline while the ledger still queries",
        "deadline",
        [
            Sp(
                "a",
                "wallet",
                "GET /balance",
                0,
                2010,
                kind="server",
                attrs=srv("GET", "/balance", 500),
                error="context deadline exceeded",
            ),
            Sp(
                "c",
                "wallet",
                "GET ledger",
                5,
                2005,
                "a",
                "client",
                cli("GET", "http://ledger/balance/7"),
                error="context deadline exceeded",
            ),
            Sp(
                "l",
                "ledger",
                "GET /balance/{id}",
                8,
                6000,
                "c",
                "server",
                srv("GET", "/balance/{id}", 200),
            ),
            Sp(
                "q",
                "ledger",
                "SELECT SUM(amount)",
                10,
                5990,
                "l",
                "client",
                db("postgresql", "SELECT SUM(amount) FROM entries WHERE account=$1"),
            ),
        ],
        Expect("main/q", "failed", "ledger"),
    )


def _h_breaker_in_trace_after_timeouts() -> Scenario:
    # Three timeouts to the tax service, then the breaker opens for the fourth item.
    spans = [
        Sp(
            "s",
            "cart",
            "POST /cart/total",
            0,
            700,
            kind="server",
            attrs=srv("POST", "/cart/total", 503),
            error="",
        ),
    ]
    for i in range(3):
        spans.append(
            Sp(
                f"t{i}",
                "cart",
                "GET tax",
                5 + i * 200,
                200 + i * 200,
                "s",
                "client",
                cli("GET", "http://tax/rate"),
                error="",
                exc=("ReadTimeout", "read timed out after 200 ms"),
            )
        )
    spans.append(
        Sp(
            "br",
            "cart",
            "GET tax",
            610,
            611,
            "s",
            "client",
            cli("GET", "http://tax/rate"),
            error="",
            exc=("BrokenCircuitError", "circuit tax is open"),
        )
    )
    return Scenario(
        "breaker after three timeouts", "propagation", spans, Expect("main/t0", "failed", "cart")
    )


def _h_breaker_other_service_earlier() -> Scenario:
    # The search index was failing 20 s earlier (503 with an exception); now the
    # storefront's breaker for search is open.
    def failing(i: int) -> list[Sp]:
        return [
            Sp(
                "s",
                "storefront",
                "GET /search",
                0,
                40,
                kind="server",
                attrs=srv("GET", "/search", 500),
                error="",
            ),
            Sp(
                "c",
                "storefront",
                "GET search-api",
                2,
                38,
                "s",
                "client",
                cli("GET", "http://search-api/q", 503),
                error="",
            ),
            Sp(
                "x",
                "search-api",
                "GET /q",
                4,
                36,
                "c",
                "server",
                srv("GET", "/q", 503),
                error="",
                exc=("IndexUnavailable", "shard 2 of index products is unassigned"),
            ),
        ]

    return Scenario(
        "breaker open after search shards went unassigned",
        "propagation",
        [
            Sp(
                "s",
                "storefront",
                "GET /search",
                0,
                3,
                kind="server",
                attrs=srv("GET", "/search", 503),
                error="",
            ),
            Sp(
                "c",
                "storefront",
                "GET search-api",
                1,
                2,
                "s",
                "client",
                cli("GET", "http://search-api/q"),
                error="",
                exc=("CircuitOpenError", "circuit breaker open for search-api"),
            ),
        ],
        Expect("hist0/x", "failed", "search-api"),
        history=[(-20_000.0 + 3000.0 * i, failing(i)) for i in range(3)],
    )


def _h_503_relayed_with_exception_deeper() -> Scenario:
    # An API gateway relays 503s; the account service's Redis call failed with OOM.
    return Scenario(
        "503 relayed from a redis OOM",
        "propagation",
        [
            Sp(
                "g",
                "gateway",
                "POST /login",
                0,
                50,
                kind="server",
                attrs=srv("POST", "/login", 503),
                error="upstream service unavailable",
            ),
            Sp(
                "c",
                "gateway",
                "POST accounts",
                2,
                48,
                "g",
                "client",
                cli("POST", "http://accounts/login", 503),
                error="",
            ),
            Sp(
                "a",
                "accounts",
                "POST /login",
                4,
                46,
                "c",
                "server",
                srv("POST", "/login", 503),
                error="service unavailable",
            ),
            Sp(
                "r",
                "accounts",
                "SET session",
                10,
                12,
                "a",
                "client",
                {"db.system": "redis", "server.address": "sessions"},
                error="",
                exc=("ResponseError", "OOM command not allowed when used memory > 'maxmemory'"),
            ),
        ],
        Expect("main/r", "failed", "accounts"),
    )


def _h_pool_exhausted_config_push() -> Scenario:
    # A deploy shipped max_connections: 3; pool waits time out at the next requests.
    return Scenario(
        "deploy lowered max connections",
        "change",
        [
            Sp(
                "s",
                "inventory",
                "GET /stock",
                0,
                3010,
                kind="server",
                attrs=srv("GET", "/stock", 503),
                error="",
            ),
            Sp(
                "a",
                "inventory",
                "db.pool.get",
                3,
                3005,
                "s",
                error="",
                exc=(
                    "TimeoutError",
                    "connection pool exhausted: 3/3 connections in use, waited 3000 ms",
                ),
            ),
        ],
        Expect("record:max_connections", "failed", "inventory"),
        records=[
            Rec(
                -120_000,
                "inventory",
                "info",
                "deploy v2.14.0 finished: set database.max_connections 50 -> 3",
                source="custom",
                kind="event",
                attrs={"type": "deploy", "version": "v2.14.0"},
            ),
            Rec(
                -60_000,
                "billing",
                "info",
                "config reloaded: feature flags",
                source="custom",
                kind="event",
                attrs={"type": "config"},
            ),
        ],
    )


def _h_handled_fallback_price_cache() -> Scenario:
    return Scenario(
        "pricing down, cached price served",
        "handled",
        [
            Sp(
                "f",
                "browser",
                "fetch GET /api/product/3",
                0,
                80,
                kind="client",
                attrs=cli("GET", "http://localhost:8000/api/product/3", 200),
            ),
            Sp(
                "s",
                "api",
                "GET /api/product/{id}",
                5,
                75,
                "f",
                "server",
                srv("GET", "/api/product/{id}", 200),
            ),
            Sp(
                "c",
                "api",
                "GET pricing",
                6,
                30,
                "s",
                "client",
                cli("GET", "http://pricing/p/3", 500),
                error="",
            ),
            Sp(
                "p",
                "pricing",
                "GET /p/{id}",
                8,
                28,
                "c",
                "server",
                srv("GET", "/p/{id}", 500),
                error="",
                exc=("RuntimeError", "price feed stale"),
            ),
            Sp(
                "fb",
                "api",
                "GET",
                31,
                35,
                "s",
                "client",
                {"db.system": "redis", "server.address": "cache"},
            ),
        ],
        Expect(None, "degraded"),
        records=[Rec(30, "api", "error", "pricing failed, serving cached price", span="main/s")],
    )


def _h_handled_retry_grpc() -> Scenario:
    return Scenario(
        "grpc UNAVAILABLE retried with success",
        "handled",
        [
            Sp(
                "s", "orders", "orders.Create", 0, 90, kind="server", attrs=grpc("orders.Orders", 0)
            ),
            Sp(
                "a1",
                "orders",
                "users.Get",
                2,
                10,
                "s",
                "client",
                grpc("users.Users", 14, "users"),
                error="UNAVAILABLE",
            ),
            Sp("a2", "orders", "users.Get", 30, 40, "s", "client", grpc("users.Users", 0, "users")),
            Sp("u2", "users", "users.Get", 31, 39, "a2", "server", grpc("users.Users", 0)),
        ],
        Expect(None, "degraded"),
    )


def _h_untraced_stderr_before_500() -> Scenario:
    return Scenario(
        "stderr line before a bare 500",
        "untraced-log",
        [
            Sp(
                "f",
                "browser",
                "fetch POST /api/export",
                0,
                300,
                kind="client",
                attrs=cli("POST", "http://localhost:8000/api/export", 500),
                error="",
            ),
            Sp(
                "s",
                "exporter-api",
                "POST /api/export",
                5,
                295,
                "f",
                "server",
                srv("POST", "/api/export", 500),
                error="Internal Server Error",
            ),
        ],
        Expect("record:Permission denied", "failed", "exporter-api"),
        records=[
            Rec(-2000, "exporter-api", "info", "worker 3 ready", source="backend"),
            Rec(
                280,
                "exporter-api",
                "error",
                "PermissionError: [Errno 13] Permission denied: '/var/exports/report.csv'",
                source="backend",
            ),
            Rec(200, "frontend-dev", "warn", "webpack compiled with 1 warning", source="backend"),
        ],
    )


def _h_panic_killed_process() -> Scenario:
    return Scenario(
        "go service panicked and exited",
        "process",
        [
            Sp(
                "s",
                "bff",
                "GET /api/feed",
                0,
                15,
                kind="server",
                attrs=srv("GET", "/api/feed", 502),
                error="",
            ),
            Sp(
                "c",
                "bff",
                "GET",
                2,
                12,
                "s",
                "client",
                {**cli("GET", "http://feed-svc:9000/feed"), "server.address": "feed-svc"},
                error="",
                exc=("ConnectionRefusedError", "connect ECONNREFUSED 10.1.2.3:9000"),
            ),
        ],
        Expect("record:panic: runtime error", "failed", "feed-svc"),
        records=[
            Rec(
                -1500,
                "feed-svc",
                "critical",
                "panic: runtime error: invalid memory address or nil pointer dereference",
                source="backend",
            ),
            Rec(
                -1490,
                "feed-svc",
                "error",
                "gasoline-run: process exited with status 2",
                source="backend",
            ),
        ],
        history=[
            (
                -50_000.0,
                [
                    Sp(
                        "s",
                        "feed-svc",
                        "GET /feed",
                        0,
                        30,
                        kind="server",
                        attrs=srv("GET", "/feed", 200),
                    ),
                ],
            )
        ],
    )


def _h_linked_trace_payment_webhook() -> Scenario:
    # The webhook handler's trace links to the checkout trace's span that created the
    # payment intent; the checkout failed to save the intent, so the webhook cannot
    # find it. Asked about the webhook trace: cause in the linked trace.
    return Scenario(
        "webhook fails because the linked checkout never stored the intent",
        "link",
        [
            Sp(
                "w",
                "payments",
                "POST /webhooks/stripe",
                0,
                20,
                kind="server",
                attrs=srv("POST", "/webhooks/stripe", 500),
                error="payment intent not found",
                links=["co/save"],
            ),
        ],
        Expect("co/save", "failed", "checkout"),
        others={
            "co": [
                Sp(
                    "s",
                    "checkout",
                    "POST /pay",
                    0,
                    50,
                    kind="server",
                    attrs=srv("POST", "/pay", 500),
                    error="",
                ),
                Sp(
                    "save",
                    "checkout",
                    "INSERT payment_intents",
                    10,
                    45,
                    "s",
                    "client",
                    db("postgresql", "INSERT INTO payment_intents ..."),
                    error="",
                    exc=("OperationalError", "disk I/O error"),
                ),
            ]
        },
    )


def _h_linked_reverse_consumer() -> Scenario:
    # Asked about the producer's trace (the import request answered 500 after waiting
    # for its job); the job ran in a trace linked to the enqueue span, and failed.
    return Scenario(
        "import request whose linked job failed",
        "link",
        [
            Sp(
                "s",
                "importer",
                "POST /imports",
                0,
                5000,
                kind="server",
                attrs=srv("POST", "/imports", 500),
                error="import job failed",
            ),
            Sp(
                "e",
                "importer",
                "imports enqueue",
                5,
                10,
                "s",
                "producer",
                {"messaging.system": "rabbitmq"},
            ),
        ],
        Expect("job/p", "failed", "import-worker"),
        others={
            "job": [
                Sp(
                    "c",
                    "import-worker",
                    "imports process",
                    20,
                    4000,
                    kind="consumer",
                    error="",
                    links=["main/e"],
                ),
                Sp(
                    "p",
                    "import-worker",
                    "parse csv",
                    30,
                    3990,
                    "c",
                    error="",
                    exc=(
                        "UnicodeDecodeError",
                        "'utf-8' codec can't decode byte 0xff in position 0",
                    ),
                ),
            ]
        },
    )


def _h_400_explained_by_error_log_without_span() -> Scenario:
    return Scenario(
        "400 explained by an error log on the trace",
        "client-4xx",
        [
            Sp(
                "f",
                "browser",
                "fetch PUT /api/settings",
                0,
                25,
                kind="client",
                attrs=cli("PUT", "http://localhost:8000/api/settings", 400),
                error="",
            ),
            Sp(
                "s",
                "settings",
                "PUT /api/settings",
                3,
                22,
                "f",
                "server",
                srv("PUT", "/api/settings", 400),
            ),
        ],
        Expect("record:timezone", "failed", "settings"),
        records=[
            Rec(
                20,
                "settings",
                "error",
                "invalid settings: unknown timezone 'Europe/Atlantis'",
                trace="main",
            )
        ],
    )


def _h_conn_refused_net_peer_name() -> Scenario:
    return Scenario(
        "connection refused to a service by its host name",
        "whom",
        [
            Sp(
                "s",
                "checkout",
                "POST /checkout",
                0,
                20,
                kind="server",
                attrs=srv("POST", "/checkout", 500),
                error="",
            ),
            Sp(
                "c",
                "checkout",
                "POST /quote",
                3,
                5,
                "s",
                "client",
                {"http.request.method": "POST", "net.peer.name": "shipping", "net.peer.port": 8080},
                error="",
                exc=(
                    "requests.exceptions.ConnectionError",
                    "Failed to establish a new connection: [Errno 111] Connection refused",
                ),
            ),
        ],
        Expect("main/c", "failed", "shipping"),
        history=[
            (
                -40_000.0,
                [
                    Sp(
                        "n",
                        "shipping",
                        "POST /quote",
                        0,
                        9,
                        kind="server",
                        attrs=srv("POST", "/quote", 200),
                    ),
                ],
            )
        ],
    )


def _h_conn_refused_ip_unknown_peer_service() -> Scenario:
    return Scenario(
        "dial tcp refused, peer.service names the service",
        "whom",
        [
            Sp(
                "s",
                "api",
                "GET /api/me",
                0,
                12,
                kind="server",
                attrs=srv("GET", "/api/me", 500),
                error="",
            ),
            Sp(
                "c",
                "api",
                "auth.Verify",
                2,
                4,
                "s",
                "client",
                {**grpc("auth.Auth", 14), "server.address": "172.18.0.5", "peer.service": "auth"},
                error="",
                exc=("grpc.RpcError", "dial tcp 172.18.0.5:50051: connect: connection refused"),
            ),
        ],
        Expect("main/c", "failed", "auth"),
    )


def _h_healthy_many_spans() -> Scenario:
    spans = [Sp("s", "feed", "GET /feed", 0, 300, kind="server", attrs=srv("GET", "/feed", 200))]
    for i in range(12):
        spans.append(
            Sp(
                f"q{i}",
                "feed",
                "SELECT post",
                10 + i * 20,
                28 + i * 20,
                "s",
                "client",
                db("postgresql", "SELECT * FROM posts WHERE id=$1"),
            )
        )
    return Scenario(
        "healthy feed with many queries",
        "healthy",
        spans,
        Expect(None, "ok"),
        history=repeat(
            lambda i: [
                Sp(
                    "s",
                    "feed",
                    "GET /feed",
                    0,
                    jit(i, 290.0),
                    kind="server",
                    attrs=srv("GET", "/feed", 200),
                )
            ],
            10,
        ),
    )


def _h_healthy_with_info_logs_and_noise() -> Scenario:
    # Healthy request; an unrelated service logged an error at the same time.
    return Scenario(
        "healthy request beside an unrelated error",
        "healthy",
        [
            Sp("s", "profile", "GET /me", 0, 30, kind="server", attrs=srv("GET", "/me", 200)),
            Sp(
                "q",
                "profile",
                "SELECT user",
                2,
                20,
                "s",
                "client",
                db("postgresql", "SELECT * FROM users WHERE id=$1"),
            ),
        ],
        Expect(None, "ok"),
        records=[
            Rec(10, "profile", "info", "served /me in 30 ms", span="main/s"),
            Rec(15, "newsletter", "error", "SMTP connection lost", source="backend"),
        ],
    )


def _h_healthy_fast_than_baseline() -> Scenario:
    def run(i: int, d: float) -> list[Sp]:
        return [
            Sp(
                "s",
                "search",
                "GET /search",
                0,
                jit(i, d),
                kind="server",
                attrs=srv("GET", "/search", 200),
            )
        ]

    return Scenario(
        "healthy search faster than usual",
        "healthy",
        run(0, 40.0),
        Expect(None, "ok"),
        history=repeat(lambda i: run(i, 80.0), 12),
    )


def _h_window_process_killed() -> Scenario:
    # "What broke in the last minutes?" with only logs: the worker was OOM-killed.
    return Scenario(
        "what broke: a worker OOM-killed, no traces",
        "window",
        [],
        Expect("record:Out of memory", "failed", "worker"),
        records=[
            Rec(-5000, "worker", "info", "processing batch 17", source="backend"),
            Rec(
                -100,
                "worker",
                "error",
                "Out of memory: Killed process 4242 (python) total-vm:8123456kB",
                source="backend",
            ),
            Rec(
                0,
                "worker",
                "error",
                "gasoline-run: process killed by signal 9 (SIGKILL)",
                source="backend",
            ),
        ],
        ask="window",
    )


def _h_event_id_log_no_trace() -> Scenario:
    # Asked by the id of an untraced error log; the trace of the same service at that time
    # holds the failing span.
    return Scenario(
        "asked from an error log with a trace",
        "classic",
        [
            Sp(
                "s",
                "mailer",
                "POST /send",
                0,
                200,
                kind="server",
                attrs=srv("POST", "/send", 500),
                error="",
            ),
            Sp(
                "t",
                "mailer",
                "render template",
                5,
                20,
                "s",
                error="",
                exc=("TemplateNotFound", "welcome_de.html"),
            ),
        ],
        Expect("main/t", "failed", "mailer"),
        records=[Rec(21, "mailer", "error", "send failed: template missing", span="main/s")],
        ask="event:send failed",
    )


HELD_OUT: list[Scenario] = [
    _h_slow_n_plus_one_serializer(),
    _h_slow_third_party(),
    _h_slow_gc_pause_in_callee(),
    _h_deadline_chain_three(),
    _h_deadline_db_statement_timeout_ctx(),
    _h_breaker_in_trace_after_timeouts(),
    _h_breaker_other_service_earlier(),
    _h_503_relayed_with_exception_deeper(),
    _h_pool_exhausted_config_push(),
    _h_handled_fallback_price_cache(),
    _h_handled_retry_grpc(),
    _h_untraced_stderr_before_500(),
    _h_panic_killed_process(),
    _h_linked_trace_payment_webhook(),
    _h_linked_reverse_consumer(),
    _h_400_explained_by_error_log_without_span(),
    _h_conn_refused_net_peer_name(),
    _h_conn_refused_ip_unknown_peer_service(),
    _h_healthy_many_spans(),
    _h_healthy_with_info_logs_and_noise(),
    _h_healthy_fast_than_baseline(),
    _h_window_process_killed(),
    _h_event_id_log_no_trace(),
]
