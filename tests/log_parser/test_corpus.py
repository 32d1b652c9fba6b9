"""Real-world line shapes, written as realistic samples, each with the fields it must yield."""

from __future__ import annotations

import calendar
import time

import pytest

from receivers.log_parser import LineParser, MultilineGrouper, ParsedLine

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def ns(y: int, mo: int, d: int, h: int, mi: int, s: int, frac_ns: int = 0, off: int = 0) -> int:
    """Epoch ns for a wall-clock time at UTC offset ``off`` seconds."""
    return (calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - off) * 1_000_000_000 + frac_ns


def yearless(mo: int, d: int, h: int, mi: int, s: int, frac_ns: int = 0) -> int:
    """What a year-less timestamp (syslog, klog) must resolve to: this year unless future."""
    now = time.time()
    year = time.gmtime(now).tm_year
    value = ns(year, mo, d, h, mi, s, frac_ns)
    if value > (int(now) + 86_400) * 1_000_000_000:
        value = ns(year - 1, mo, d, h, mi, s, frac_ns)
    return value


T0 = ns(2024, 1, 2, 15, 4, 5)

# (line, expected fields); "attributes" entries are checked as a subset.
CASES: list[tuple[str, str, dict[str, object]]] = [
    (
        "morgan_combined",
        '::1 - - [02/Jan/2024:15:04:05 +0000] "GET /api/users?page=2 HTTP/1.1" 200 512 '
        '"http://localhost:3000/" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"',
        {
            "time_ns": T0,
            "level": "info",
            "attributes": {
                "client.address": "::1",
                "http.request.method": "GET",
                "url.original": "/api/users?page=2",
                "http.response.status_code": 200,
                "http.response.body.size": 512,
                "http.request.header.referer": "http://localhost:3000/",
                "user_agent.original": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)",
            },
        },
    ),
    (
        "morgan_dev",
        "GET /api/users 200 3.456 ms - 512",
        {
            "time_ns": None,
            "level": "info",
            "message": "GET /api/users 200 3.456 ms - 512",
            "attributes": {
                "http.request.method": "GET",
                "url.original": "/api/users",
                "http.response.status_code": 200,
                "http.server.request.duration_ms": 3.456,
                "http.response.body.size": 512,
            },
        },
    ),
    (
        "morgan_dev_colored",
        "\x1b[0mPOST /login \x1b[31m500\x1b[0m 12.003 ms - 28\x1b[0m",
        {
            "level": "error",
            "message": "POST /login 500 12.003 ms - 28",
            "attributes": {"http.response.status_code": 500},
        },
    ),
    (
        "morgan_dev_404",
        "GET /nope 404 0.812 ms - 139",
        {"level": "warn", "attributes": {"http.response.status_code": 404}},
    ),
    (
        "werkzeug",
        '127.0.0.1 - - [02/Jan/2024 15:04:05] "GET / HTTP/1.1" 200 -',
        {
            "time_ns": T0,
            "level": "info",
            "attributes": {
                "client.address": "127.0.0.1",
                "http.request.method": "GET",
                "url.original": "/",
                "http.response.status_code": 200,
            },
        },
    ),
    (
        "django_runserver",
        '[02/Jan/2024 15:04:05] "GET /api/ HTTP/1.1" 500 145',
        {
            "time_ns": T0,
            "level": "error",
            "attributes": {
                "http.request.method": "GET",
                "url.original": "/api/",
                "http.response.status_code": 500,
                "http.response.body.size": 145,
            },
        },
    ),
    (
        "django_logging_verbose",
        "ERROR 2024-01-02 15:04:05,123 log 4242 140245 Internal Server Error: /api/",
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "error",
            "message": "log 4242 140245 Internal Server Error: /api/",
        },
    ),
    (
        "django_logging_basic",
        "WARNING:django.request:Not Found: /favicon.ico",
        {"time_ns": None, "level": "warn", "message": "django.request:Not Found: /favicon.ico"},
    ),
    (
        "python_logging_default_asctime",
        "2024-01-02 15:04:05,123 - myapp.views - INFO - user logged in user_id=42",
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "info",
            "message": "myapp.views - INFO - user logged in user_id=42",
            "attributes": {"user_id": "42"},
        },
    ),
    (
        "flask_default",
        "[2024-01-02 15:04:05,123] ERROR in app: Exception on /checkout [POST]",
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "error",
            "message": "in app: Exception on /checkout [POST]",
        },
    ),
    (
        "uvicorn",
        'INFO:     127.0.0.1:54321 - "GET /health HTTP/1.1" 200 OK',
        {"level": "info", "message": '127.0.0.1:54321 - "GET /health HTTP/1.1" 200 OK'},
    ),
    (
        "go_log",
        "2009/11/10 23:00:00 listening on :8080",
        {"time_ns": ns(2009, 11, 10, 23, 0, 0), "level": None, "message": "listening on :8080"},
    ),
    (
        "go_log_micro",
        "2009/11/10 23:00:00.123456 main.go:42: connected to db",
        {
            "time_ns": ns(2009, 11, 10, 23, 0, 0, 123_456_000),
            "message": "main.go:42: connected to db",
        },
    ),
    (
        "go_slog_text",
        f'time=2024-01-02T15:04:05.000Z level=INFO msg="hi there" k=v trace_id={TRACE}',
        {
            "time_ns": T0,
            "level": "info",
            "message": "hi there",
            "trace_id": TRACE,
            "attributes": {"k": "v"},
        },
    ),
    (
        "go_slog_json",
        '{"time":"2024-01-02T15:04:05.123456789+01:00","level":"WARN","msg":"slow",'
        '"duration_ms":1200,"path":"/api"}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_456_789, off=3600),
            "level": "warn",
            "message": "slow",
            "attributes": {"duration_ms": 1200, "path": "/api"},
        },
    ),
    (
        "rails_started",
        'Started GET "/users/1" for 127.0.0.1 at 2024-01-02 15:04:05 +0000',
        {
            "time_ns": T0,
            "level": "info",
            "attributes": {
                "http.request.method": "GET",
                "url.original": "/users/1",
                "client.address": "127.0.0.1",
            },
        },
    ),
    (
        "rails_completed",
        "Completed 500 Internal Server Error in 12ms (ActiveRecord: 1.2ms | Allocations: 345)",
        {"level": "error", "attributes": {"http.response.status_code": 500}},
    ),
    (
        "rails_logger",
        "I, [2024-01-02T15:04:05.123456 #1234]  INFO -- : Processing by UsersController#show",
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_456_000),
            "level": "info",
            "message": "Processing by UsersController#show",
            "attributes": {"process.pid": 1234},
        },
    ),
    (
        "rails_logger_progname",
        "E, [2024-01-02T15:04:05.123456 #1234] ERROR -- sidekiq: job failed",
        {
            "level": "error",
            "message": "job failed",
            "attributes": {"process.pid": 1234, "logger.name": "sidekiq"},
        },
    ),
    (
        "nginx_combined",
        '10.1.2.3 - bob [02/Jan/2024:15:04:05 +0100] "POST /api/orders HTTP/2.0" 201 87 "-" '
        '"curl/8.4.0"',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, off=3600),
            "level": "info",
            "attributes": {
                "client.address": "10.1.2.3",
                "user.name": "bob",
                "http.request.method": "POST",
                "network.protocol.version": "2.0",
                "http.response.status_code": 201,
                "user_agent.original": "curl/8.4.0",
            },
        },
    ),
    (
        "nginx_error",
        "2024/01/02 15:04:05 [error] 1234#0: *5 connect() failed (111: Connection refused) "
        'while connecting to upstream, client: 10.0.0.1, server: example.com, request: "GET '
        '/api HTTP/1.1", upstream: "http://127.0.0.1:8000/api", host: "example.com"',
        {
            "time_ns": T0,
            "level": "error",
            "message_startswith": "1234#0: *5 connect() failed",
        },
    ),
    (
        "spring_boot",
        "2024-01-02T15:04:05.123+00:00 ERROR 4242 --- [nio-8080-exec-1] "
        f"c.e.demo.OrderController : Request failed [traceId={TRACE} spanId={SPAN}]",
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "error",
            "message_startswith": "4242 --- [nio-8080-exec-1]",
            "trace_id": TRACE,
            "span_id": SPAN,
        },
    ),
    (
        "logback_default_time_only",
        "15:04:05.123 [main] WARN  com.example.App - disk almost full",
        {"time_ns": None, "level": "warn"},
    ),
    (
        "pino",
        '{"level":30,"time":1704207845123,"pid":4242,"hostname":"web-1",'
        '"req":{"id":"req-7","method":"GET","url":"/"},"msg":"request completed"}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "info",
            "message": "request completed",
            "request_id": "req-7",
            "attributes": {"pid": 4242, "hostname": "web-1", "req": {"method": "GET", "url": "/"}},
        },
    ),
    (
        "pino_error",
        '{"level":50,"time":1704207845000,"msg":"boom","err":{"type":"Error"}}',
        {"time_ns": T0, "level": "error", "message": "boom"},
    ),
    (
        "bunyan",
        '{"name":"api","hostname":"web-1","pid":77,"level":60,"msg":"out of memory",'
        '"time":"2024-01-02T15:04:05.123Z","v":0}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "critical",
            "message": "out of memory",
            "attributes": {"name": "api", "hostname": "web-1", "pid": 77, "v": 0},
        },
    ),
    (
        "structlog_json",
        '{"event":"order placed","order_id":42,"level":"info",'
        '"timestamp":"2024-01-02T15:04:05.123456Z","request_id":"r-99"}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_456_000),
            "level": "info",
            "message": "order placed",
            "request_id": "r-99",
            "attributes": {"order_id": 42},
        },
    ),
    (
        "logfmt_quoted",
        'ts=2024-01-02T15:04:05Z lvl=error msg="disk \\"data\\" full" host=db-1 request_id=abc-123',
        {
            "time_ns": T0,
            "level": "error",
            "message": 'disk "data" full',
            "request_id": "abc-123",
            "attributes": {"host": "db-1"},
        },
    ),
    (
        "heroku_router_logfmt",
        'at=error code=H12 desc="Request timeout" method=GET path="/" host=app.example.com '
        "request_id=8601b555-6a83-4c12-8269-97c8e32cdb22 status=503",
        {
            "level": "error",
            "request_id": "8601b555-6a83-4c12-8269-97c8e32cdb22",
            "attributes": {"code": "H12", "status": "503", "path": "/"},
        },
    ),
    (
        "syslog_3164",
        "<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick on /dev/pts/8",
        {
            "time_ns": yearless(10, 11, 22, 14, 15),
            "level": "critical",
            "message": "'su root' failed for lonvick on /dev/pts/8",
            "attributes": {
                "host.name": "mymachine",
                "process.executable.name": "su",
                "process.pid": 230,
                "syslog.facility": 4,
            },
        },
    ),
    (
        "syslog_3164_no_pri",
        "Jan  2 15:04:05 web-1 sshd[1234]: Accepted publickey for deploy",
        {
            "time_ns": yearless(1, 2, 15, 4, 5),
            "level": None,
            "message": "Accepted publickey for deploy",
            "attributes": {"host.name": "web-1", "process.pid": 1234},
        },
    ),
    (
        "syslog_5424",
        "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        '[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] '
        "An application event log entry",
        {
            "time_ns": ns(2003, 10, 11, 22, 14, 15, 3_000_000),
            "level": "info",
            "message": "An application event log entry",
            "attributes": {
                "host.name": "mymachine.example.com",
                "process.executable.name": "evntslog",
                "syslog.msgid": "ID47",
                "syslog.facility": 20,
                "exampleSDID@32473.eventSource": "Application",
            },
        },
    ),
    (
        "syslog_5424_nil",
        "<11>1 2024-01-02T15:04:05+00:00 host app 321 - - \ufeffdisk error",
        {
            "time_ns": T0,
            "level": "error",
            "message": "disk error",
            "attributes": {"process.pid": 321},
        },
    ),
    (
        "otel_json_flat",
        '{"timestamp":"2024-01-02T15:04:05.123456789Z","severity_text":"ERROR",'
        f'"severity_number":17,"body":"payment failed","trace_id":"{TRACE}",'
        f'"span_id":"{SPAN}","attributes":{{"http.route":"/pay"}},'
        '"resource":{"service.name":"checkout"}}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_456_789),
            "level": "error",
            "message": "payment failed",
            "trace_id": TRACE,
            "span_id": SPAN,
            "attributes": {"http.route": "/pay", "resource": {"service.name": "checkout"}},
        },
    ),
    (
        "otel_json_otlp_record",
        '{"timeUnixNano":"1704207845123000000","severityNumber":13,'
        f'"body":{{"stringValue":"retrying"}},"traceId":"{TRACE}","spanId":"{SPAN}",'
        '"attributes":[{"key":"attempt","value":{"intValue":"3"}}]}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "warn",
            "message": "retrying",
            "trace_id": TRACE,
            "span_id": SPAN,
            "attributes": {"attempt": "3"},
        },
    ),
    (
        "ecs_dotted",
        '{"@timestamp":"2024-01-02T15:04:05.123Z","log.level":"warn","message":"slow query",'
        f'"ecs.version":"1.6.0","trace.id":"{TRACE}","span.id":"{SPAN}",'
        '"service.name":"db"}',
        {
            "time_ns": ns(2024, 1, 2, 15, 4, 5, 123_000_000),
            "level": "warn",
            "message": "slow query",
            "trace_id": TRACE,
            "span_id": SPAN,
            "attributes": {"ecs.version": "1.6.0", "service.name": "db"},
        },
    ),
    (
        "ecs_nested",
        '{"@timestamp":"2024-01-02T15:04:05Z","log":{"level":"error","logger":"app.db"},'
        f'"message":"lost connection","trace":{{"id":"{TRACE}"}},"span":{{"id":"{SPAN}"}}}}',
        {
            "time_ns": T0,
            "level": "error",
            "trace_id": TRACE,
            "span_id": SPAN,
            "attributes": {"log": {"logger": "app.db"}},
        },
    ),
    (
        "klog",
        "E0102 15:04:05.123456    1234 controller.go:42] sync failed",
        {
            "time_ns": yearless(1, 2, 15, 4, 5, 123_456_000),
            "level": "error",
            "message": "sync failed",
            "attributes": {"code.location": "controller.go:42"},
        },
    ),
    (
        "gcp_json",
        '{"severity":"WARNING","message":"quota low","time":"2024-01-02T15:04:05Z",'
        f'"logging.googleapis.com/trace":"projects/p1/traces/{TRACE}",'
        f'"logging.googleapis.com/spanId":"{SPAN}"}}',
        {"time_ns": T0, "level": "warn", "trace_id": TRACE, "span_id": SPAN},
    ),
    (
        "plain_text",
        "just some text",
        {
            "time_ns": None,
            "level": None,
            "message": "just some text",
            "trace_id": None,
            "attributes": {},
        },
    ),
]


def check(parsed: ParsedLine, expected: dict[str, object]) -> None:
    for field, want in expected.items():
        if field == "attributes":
            assert isinstance(want, dict)
            if not want:
                assert parsed.attributes == {}
            for key, value in want.items():
                assert parsed.attributes.get(key) == value, (key, parsed.attributes)
        elif field == "message_startswith":
            assert isinstance(want, str)
            assert parsed.message.startswith(want), parsed.message
        elif field in ("trace_id", "span_id"):
            got = getattr(parsed, field)
            assert (got.hex() if got is not None else None) == want, field
        else:
            assert getattr(parsed, field) == want, (field, parsed)


@pytest.mark.parametrize(("line", "expected"), [pytest.param(c[1], c[2], id=c[0]) for c in CASES])
def test_line_shape(line: str, expected: dict[str, object]) -> None:
    check(LineParser().parse(line), expected)


def group(lines: list[str]) -> list[str]:
    grouper = MultilineGrouper()
    records: list[str] = []
    for line in lines:
        records.extend(grouper.feed(line))
    records.extend(grouper.flush())
    return records


def test_logback_with_stack_trace_is_one_record() -> None:
    lines = [
        "2024-01-02 15:04:05.123 ERROR 4242 --- [nio-8080-exec-1] o.a.c.c.C.[dispatcherServlet]"
        " : Servlet.service() threw exception",
        "java.lang.IllegalStateException: order 42 has no items",
        "\tat com.example.shop.OrderService.place(OrderService.java:57)",
        "\tat com.example.shop.OrderController.create(OrderController.java:31)",
        "Caused by: java.sql.SQLException: connection reset",
        "\tat org.postgresql.core.v3.QueryExecutorImpl.execute(QueryExecutorImpl.java:355)",
        "\t... 48 common frames omitted",
        "2024-01-02 15:04:06.001  INFO 4242 --- [main] c.e.shop.App : next request",
    ]
    records = group(lines)
    assert records == ["\n".join(lines[:7]), lines[7]]
    parsed = LineParser().parse(records[0])
    assert parsed.time_ns == ns(2024, 1, 2, 15, 4, 5, 123_000_000)
    assert parsed.level == "error"
    assert "Caused by: java.sql.SQLException" in parsed.message
    assert LineParser().parse(records[1]).level == "info"


def test_python_traceback_is_one_record() -> None:
    lines = [
        "Traceback (most recent call last):",
        '  File "/app/main.py", line 12, in <module>',
        "    run()",
        '  File "/app/main.py", line 8, in run',
        '    raise ValueError("bad value")',
        "ValueError: bad value",
        "INFO: shutting down",
    ]
    records = group(lines)
    assert records == ["\n".join(lines[:6]), lines[6]]
    parsed = LineParser().parse(records[0])
    assert parsed.level == "error"
    assert parsed.message.endswith("ValueError: bad value")


def test_python_logging_exception_joins_traceback() -> None:
    lines = [
        "ERROR 2024-01-02 15:04:05,123 log 4242 140245 Internal Server Error: /api/",
        "Traceback (most recent call last):",
        '  File "/app/views.py", line 5, in index',
        "    return 1 / 0",
        "ZeroDivisionError: division by zero",
        "",
        "During handling of the above exception, another exception occurred:",
        "",
        "Traceback (most recent call last):",
        '  File "/app/views.py", line 7, in index',
        "    raise RuntimeError('x')",
        "RuntimeError: x",
        '[02/Jan/2024 15:04:06] "GET /api/ HTTP/1.1" 500 145',
    ]
    records = group(lines)
    assert records == ["\n".join(lines[:12]), lines[12]]
    parsed = LineParser().parse(records[0])
    assert parsed.level == "error"
    assert parsed.time_ns == ns(2024, 1, 2, 15, 4, 5, 123_000_000)


def test_node_error_stack_is_one_record() -> None:
    lines = [
        "TypeError: Cannot read properties of undefined (reading 'id')",
        "    at getUser (/app/src/users.js:14:22)",
        "    at Layer.handle [as handle_request] (/app/node_modules/express/lib/router/layer.js:95:5)",
        "    at next (node:internal/process/task_queues:95:5)",
        "GET /api/users/1 500 4.102 ms - 148",
    ]
    records = group(lines)
    assert records == ["\n".join(lines[:4]), lines[4]]
    assert LineParser().parse(records[0]).level == "error"
    assert LineParser().parse(records[1]).level == "error"


def test_go_panic_is_one_record() -> None:
    lines = [
        "panic: runtime error: index out of range [5] with length 3",
        "",
        "goroutine 1 [running]:",
        "main.handler(0xc000010000)",
        "\t/app/main.go:12 +0x1d",
        "main.main()",
        "\t/app/main.go:20 +0x25",
        "exit status 2",
        "2024/01/02 15:04:05 restarting",
    ]
    records = group(lines)
    assert records == ["\n".join(lines[:8]), lines[8]]
    assert LineParser().parse(records[0]).level == "critical"
