"""Secrets are replaced at ingest: planted through the real OTel SDK exporters, /event and
/v1/lines, they appear in no answer, no generated script, no CLI output and not in the
store's memory; the ordinary text around them survives."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector.config import RedactionConfig
from collector.redact import PatternError, Redactor
from collector.tools import ToolInputError
from receivers.otlp_codec import decode_traces
from tests.conftest import Running
from tests.test_mcp import mcp_session
from tests.test_otlp_http import otlp_json, span

GASOLINE = str(Path(sys.executable).parent / "gasoline")

# Every planted secret is unique, so a leak anywhere is found by a substring search.
SECRETS = {
    "name_query": "NameQueryTok1",
    "url_api_key": "UrlApiKey22",
    "url_token": "UrlTok333",
    "target_token": "TargetTok44",
    "query_access_token": "QueryAccess55",
    "body_password": "BodyPassw0rd66",
    "response_secret": "RespSecret77",
    "sql_password": "SqlPassw0rd88",
    "sql_identified": "SqlIdent99",
    "sql_assign": "SqlAssign10",
    "conn_url": "ConnUrlPw11",
    "conn_kv": "ConnKvPw12",
    "auth_header": "HeaderBearer13",
    "resource_password": "ResourcePw14",
    "exception": "ExcPassw0rd15",
    "exception_token": "ExcTok16",
    "status_bearer": "StatusBearer17xyz",
    "event_attr": "EventAttrKey18",
    "log_password": "LogPassw0rd19",
    "log_bearer": "LogBearer20xyzw",
    "log_json": "LogJsonPw21",
    "event_message": "EvtApiKey22",
    "event_meta_token": "EvtMetaTok23",
    "event_meta_password": "EvtMetaPw24",
    "line_password": "LinePassw0rd25",
    "line_bearer": "LineBearer26xyz",
    "line_secret": "LineSecret27",
}
# Ordinary text planted beside the secrets, which must come through unchanged.
NEIGHBOURS = [
    "token count=5",
    "max_tokens=7",
    "page=2",
    "c.session_id",
    "primary key violation",
    "user=bob",
]


def _leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def _run_sdk(http: str, grpc: str) -> str:
    """Spans over gRPC and HTTP and logs over HTTP, through the official SDK exporters."""
    s = SECRETS
    resource = Resource.create({"service.name": "auth", "db.password": s["resource_password"]})
    api = TracerProvider(resource=resource)
    api.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(endpoint=grpc, insecure=True)))
    web_ = TracerProvider(resource=Resource.create({"service.name": "web"}))
    web_.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=f"{http}/v1/traces")))
    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(
        SimpleLogRecordProcessor(HttpLogExporter(endpoint=f"{http}/v1/logs"))
    )
    url = (
        f"http://shop.local:8000/api/login?api_key={s['url_api_key']}&page=2&token={s['url_token']}"
    )
    with web_.get_tracer("web").start_as_current_span(
        f"GET /login?token={s['name_query']}", kind=SpanKind.CLIENT
    ) as root:
        tracer = api.get_tracer("api")
        with tracer.start_as_current_span("POST /api/login", kind=SpanKind.SERVER) as server:
            server.set_attributes(
                {
                    "http.request.method": "POST",
                    "url.full": url,
                    "http.target": f"/api/login?token={s['target_token']}&user=bob",
                    "url.query": f"access_token={s['query_access_token']}&page=2",
                    "http.request.body": json.dumps(
                        {"user": "bob", "password": s["body_password"], "remember": True}
                    ),
                    "http.response.body": f'{{"client_secret": "{s["response_secret"]}"}}',
                    "http.response.status_code": 500,
                    "http.request.header.authorization": f"Bearer {s['auth_header']}",
                    "llm.note": "token count=5 max_tokens=7",
                }
            )
            server.add_event("auth.check", {"api_key": s["event_attr"], "detail": "page=2"})
            with tracer.start_as_current_span("db", kind=SpanKind.CLIENT) as db:
                db.set_attributes(
                    {
                        "db.system": "postgresql",
                        "db.statement": (
                            f"ALTER USER bob WITH PASSWORD '{s['sql_password']}';"
                            f" CREATE USER x IDENTIFIED BY '{s['sql_identified']}';"
                            f" UPDATE users SET password = '{s['sql_assign']}'"
                            " WHERE c.session_id = $1"
                        ),
                        "db.connection_string": (
                            f"postgres://admin:{s['conn_url']}@db.internal:5432/shop"
                            f" Server=db;User Id=sa;Password={s['conn_kv']};"
                        ),
                    }
                )
                db.record_exception(
                    ValueError(
                        f"login failed password={s['exception']} token: {s['exception_token']}"
                        " (primary key violation)"
                    )
                )
                db.set_status(
                    Status(StatusCode.ERROR, f"Authorization: Bearer {s['status_bearer']}")
                )
            server.set_status(Status(StatusCode.ERROR, "login failed"))
            logs.get_logger("api").emit(
                body=(
                    f"connecting with password={s['log_password']} and"
                    f" Authorization: Bearer {s['log_bearer']}, token count=5"
                ),
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                attributes={"request.body": json.dumps({"password": s["log_json"]})},
            )
    for provider in (web_, api, logs):
        provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


async def _post(url: str, payload: Any) -> None:
    async with aiohttp.ClientSession() as http, http.post(url, json=payload) as response:
        assert response.status == 200, await response.text()


async def _plant(gasoline: Running) -> str:
    trace_id = await asyncio.to_thread(_run_sdk, gasoline.http, gasoline.grpc)
    s = SECRETS
    await _post(
        f"{gasoline.api}/event",
        {
            "message": f"user pasted api_key={s['event_message']} (page=2)",
            "level": "error",
            "trace_id": trace_id,
            "metadata": {
                "note": f"token: {s['event_meta_token']}",
                "form": {"user": "bob", "password": s["event_meta_password"]},
            },
        },
    )
    await _post(
        f"{gasoline.api}/v1/lines",
        {
            "service": "api",
            "lines": [
                f"2026-12-07T10:00:00Z ERROR trace_id={trace_id} login password="
                f"{s['line_password']} user=bob",
                f"2026-12-07T10:00:01Z INFO trace_id={trace_id} sending Authorization:"
                f" Bearer {s['line_bearer']} token count=5",
                f'2026-12-07T10:00:02Z WARN trace_id={trace_id} {{"secret": "{s["line_secret"]}"}}',
            ],
        },
    )
    await gasoline.settled()
    return trace_id


async def test_planted_secrets_appear_in_no_answer(gasoline: Running) -> None:
    trace_id = await _plant(gasoline)
    answers: dict[str, str] = {}

    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id}")
    assert status == 200 and doc["span_count"] == 3
    answers["GET /v1/traces"] = json.dumps(doc)
    status, doc = await gasoline.get_json(f"/buffers/timeline?trace_id={trace_id}&limit=200")
    assert status == 200 and len(doc["events"]) >= 8
    answers["GET /buffers/timeline"] = json.dumps(doc)
    status, doc = await gasoline.get_json(f"/v1/traces/{trace_id}/causality")
    answers["GET causality"] = json.dumps(doc)

    tools = gasoline.daemon.tools
    span_ids = [s["span_id"] for s in json.loads(answers["GET /v1/traces"])["spans"]]
    for what in ("timeline", "logs", "errors", "traces"):
        answer = await tools.run("observe", {"what": what, "filter": {"trace_id": trace_id}})
        answers[f"observe {what}"] = json.dumps(answer)
    answer = await tools.run(
        "observe", {"what": "trace", "filter": {"trace_id": trace_id}, "span_ids": span_ids}
    )
    answers["observe trace"] = json.dumps(answer)
    answer = await tools.run("analyze", {"type": "causality", "trace_id": trace_id})
    answers["analyze causality"] = json.dumps(answer)
    for kind, formats in (
        ("reproduction", ("curl", "python", "playwright")),
        ("test", ("pytest", "playwright")),
        ("pr_summary", ("markdown",)),
        ("timeline_report", ("markdown",)),
    ):
        for fmt in formats:
            answer = await tools.run(
                "generate", {"type": kind, "trace_id": trace_id, "format": fmt}
            )
            answers[f"generate {kind} {fmt}"] = json.dumps(answer)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{gasoline.api}/v1/tools/observe",
            json={"what": "timeline", "filter": {"trace_id": trace_id}},
        ) as response,
    ):
        assert response.status == 200
        answers["POST /v1/tools/observe"] = await response.text()

    leaks = {where: _leaks(text) for where, text in answers.items() if _leaks(text)}
    assert leaks == {}
    everything = "\n".join(answers.values())
    for neighbour in ("token count=5", "max_tokens=7", "page=2", "c.session_id", "user=bob"):
        assert neighbour in everything, neighbour
    assert "primary key violation" in answers["GET /v1/traces"]
    assert "[REDACTED]" in answers["GET /v1/traces"]
    stats = gasoline.daemon.pipeline.stats()
    assert stats["redacted_span_values"] >= 15 and stats["redacted_record_values"] >= 8


async def test_mcp_stdio_answers_show_no_secret(gasoline: Running, tmp_path: Path) -> None:
    """`gasoline mcp` as an agent runs it, bridged to the daemon."""
    trace_id = await _plant(gasoline)
    texts = []
    async with mcp_session(tmp_path, "--url", gasoline.api) as (session, _):
        for tool, arguments in (
            ("observe", {"what": "timeline", "filter": {"trace_id": trace_id}}),
            ("observe", {"what": "errors", "filter": {"trace_id": trace_id}}),
            ("observe", {"what": "trace", "filter": {"trace_id": trace_id}}),
            ("analyze", {"type": "causality", "trace_id": trace_id}),
            ("generate", {"type": "reproduction", "trace_id": trace_id, "format": "curl"}),
        ):
            result = await session.call_tool(tool, arguments)
            assert not result.is_error, result.content
            texts.append(result.content[0].text)  # type: ignore[union-attr]
    assert "[REDACTED]" in "".join(texts)
    assert _leaks("".join(texts)) == []


async def test_store_memory_holds_no_secret(gasoline: Running) -> None:
    await _plant(gasoline)
    store = gasoline.daemon.store
    kept: list[str] = []
    for chunk in store.spans._chunks:
        detail: Any = chunk.detail  # the codec's encoded spans, read inside
        kept.append(zlib.decompress(detail._packed).decode(errors="replace"))
        kept += [group[0].decode(errors="replace") for group in detail._groups]
        kept += list(chunk.names)
    kept += [
        json.dumps([r.message, r.attributes], default=str)
        for r in store.records.iter_newest_first()
    ]
    assert len(kept) > 5
    assert _leaks("\n".join(kept)) == []


async def test_cli_trace_and_timeline_show_no_secret(gasoline: Running, tmp_path: Path) -> None:
    trace_id = await _plant(gasoline)
    env = {**os.environ, "HOME": str(tmp_path), "GASOLINE_URL": ""}
    outputs = []
    for args in (["trace", trace_id], ["timeline", "--trace-id", trace_id]):
        result = await asyncio.to_thread(
            subprocess.run,
            [GASOLINE, *args, "--url", gasoline.api],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    assert "3 span(s)" in outputs[0] and "POST /api/login" in outputs[0]
    assert "login password=[REDACTED] user=bob" in outputs[1]
    assert _leaks("\n".join(outputs)) == []


async def test_reproduction_reads_redacted_values_from_the_environment(
    gasoline: Running, tmp_path: Path
) -> None:
    """The python reproduction sends what the environment holds where the trace had a
    secret, in the URL, the body and the headers; never the marker."""
    trace_id = await _plant(gasoline)
    seen: list[tuple[str, str, str]] = []

    async def login(request: web.Request) -> web.Response:
        seen.append((request.query_string, await request.text(), request.headers["Authorization"]))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/login", login)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        tools = gasoline.daemon.tools
        curl = await tools.run(
            "generate",
            {"type": "reproduction", "trace_id": trace_id, "format": "curl"},
        )
        script = curl["content"]
        assert '"${GASOLINE_API_KEY:-REPLACE_ME}"' in script
        assert '"${GASOLINE_PASSWORD:-REPLACE_ME}"' in script
        assert "[REDACTED]" not in script.split("set -euo pipefail")[1]
        python = await tools.run(
            "generate",
            {
                "type": "reproduction",
                "trace_id": trace_id,
                "format": "python",
                "base_url": f"http://127.0.0.1:{port}",
            },
        )
        path = tmp_path / "repro.py"
        path.write_text(python["content"])
        env = {
            **os.environ,
            "GASOLINE_API_KEY": "from-env-key",
            "GASOLINE_TOKEN": "from-env-token",
            "GASOLINE_PASSWORD": "from-env-password",
            "GASOLINE_AUTHORIZATION": "Bearer from-env-auth",
        }
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 0, result.stderr
    finally:
        await runner.cleanup()
    [(query, body, authorization)] = seen
    assert query == "api_key=from-env-key&page=2&token=from-env-token"
    assert json.loads(body) == {"user": "bob", "password": "from-env-password", "remember": True}
    assert authorization == "Bearer from-env-auth"


# -- the rules, one by one ------------------------------------------------------------

REDACTOR = Redactor(RedactionConfig())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET /a?api_key=k1&page=2&token=t1", "GET /a?api_key=[REDACTED]&page=2&token=[REDACTED]"),
        ("https://h/x?key=AIza1&sig=s1&q=1", "https://h/x?key=[REDACTED]&sig=[REDACTED]&q=1"),
        ('{"user": "bob", "newPassword":"p1"}', '{"user": "bob", "newPassword":"[REDACTED]"}'),
        ("ALTER USER u PASSWORD 'p''1'", "ALTER USER u PASSWORD '[REDACTED]'"),
        ("CREATE USER u IDENTIFIED BY 'p2'", "CREATE USER u IDENTIFIED BY '[REDACTED]'"),
        ("SET password = 'p3' WHERE id = 4", "SET password = '[REDACTED]' WHERE id = 4"),
        ("redis://:p4@cache:6379/0", "redis://:[REDACTED]@cache:6379/0"),
        ("Server=db;Password=p5;Pwd=p6;", "Server=db;Password=[REDACTED];Pwd=[REDACTED];"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [REDACTED]"),
        ("with Bearer abcdefgh123 now", "with Bearer [REDACTED] now"),
        (
            "client_secret: cs1, access_token=at1",
            "client_secret: [REDACTED], access_token=[REDACTED]",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY----- ok", "[REDACTED] ok"),
    ],
)
def test_secret_looking_text_is_replaced(text: str, expected: str) -> None:
    assert REDACTOR.redact_text(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "token count=5, max_tokens=7, tokens: 12",
        "cache key=user:42 primary key violation; a monkey",
        "http://host:8080/a@b and time 12:30",
        "password reset requested for bob@example.com",
        "SELECT c.session_id FROM carts c WHERE c.id = $1",
        "basic information about the bearer of this card",
    ],
)
def test_ordinary_text_is_kept(text: str) -> None:
    assert REDACTOR.redact_text(text) == (text, 0)


def test_emails_are_replaced_only_when_asked() -> None:
    text = "order placed by bob@example.com"
    assert REDACTOR.redact_text(text)[0] == text
    with_emails = Redactor(RedactionConfig(emails=True))
    assert with_emails.redact_text(text)[0] == "order placed by [REDACTED]"


def test_scan_finds_keys_but_not_the_same_word_inside_values() -> None:
    def request(attributes: dict[str, Any]) -> bytes:
        values = [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()]
        body = otlp_json([span("eee19b7ec3c1b174", "GET /", attributes=values)])
        return json.dumps(body).encode()

    plain = request({"db.statement": "SELECT c.session_id FROM carts", "url.full": "http://h/"})
    decoded = decode_traces(plain, is_json=True, redactor=REDACTOR)
    assert decoded.batch.redacted == 0
    keyed = request({"http.request.header.x-session-id": "abc123"})
    decoded = decode_traces(keyed, is_json=True, redactor=REDACTOR)
    assert decoded.batch.redacted == 1
    raw = zlib.decompress(decoded.batch.detail._packed)  # type: ignore[attr-defined]
    assert b"abc123" not in raw
    detail = decoded.batch.detail.span_detail(0)
    assert detail.attributes["http.request.header.x-session-id"] == "[REDACTED]"


def test_scan_runs_without_key_patterns_and_checks_all_for_unscannable_ones() -> None:
    assert Redactor(RedactionConfig(key_patterns=[])).hints(b"\x0a\x05token\x12") == [(2, 7)]
    assert Redactor(RedactionConfig(key_patterns=[])).hints(b"SELECT 1") == []
    anchored = Redactor(RedactionConfig(key_patterns=["^x-internal$"]))
    assert anchored.hints(b"SELECT 1") == [(0, 8)]


def test_config_patterns_stay_and_runtime_patterns_come_and_go() -> None:
    redactor = Redactor(RedactionConfig(key_patterns=["password", "x-internal"]))
    redactor.add_pattern("customer[-_.]?ssn")
    assert redactor.is_secret_key("customer_ssn")
    for fixed in ("password", "x-internal"):
        with pytest.raises(PatternError, match=r"processors\.redaction\.key_patterns"):
            redactor.remove_pattern(fixed)
    assert redactor.is_secret_key("x-internal-token")
    redactor.remove_pattern("customer[-_.]?ssn")
    assert not redactor.is_secret_key("customer_ssn")
    assert redactor.patterns == ["password", "x-internal"]


async def test_configure_cannot_remove_builtin_patterns(gasoline: Running) -> None:
    tools = gasoline.daemon.tools
    listed = await tools.run("configure", {"action": "redaction"})
    assert "authorization" in listed["key_patterns"] and listed["added_at_runtime"] == []
    with pytest.raises(ToolInputError, match="cannot be removed at run time"):
        await tools.run(
            "configure", {"action": "redaction", "op": "remove", "pattern": "authorization"}
        )
    added = await tools.run(
        "configure", {"action": "redaction", "op": "add", "pattern": "x-tenant-key"}
    )
    assert added["added_at_runtime"] == ["x-tenant-key"]
    removed = await tools.run(
        "configure", {"action": "redaction", "op": "remove", "pattern": "x-tenant-key"}
    )
    assert removed["added_at_runtime"] == [] and "authorization" in removed["key_patterns"]
    with pytest.raises(ToolInputError, match="not a regex"):
        await tools.run("configure", {"action": "redaction", "op": "add", "pattern": "a("})


def test_redacted_request_keeps_every_kept_span_readable() -> None:
    """A rejected span, a span with a secret in its name and status, and a clean one:
    the kept spans read back whole, in order, the secret gone from names and bytes."""
    values = [{"key": "db.statement", "value": {"stringValue": "SELECT 1"}}]
    spans = [
        span("eee19b7ec3c1b171", "bad", trace="00" * 16),
        span("eee19b7ec3c1b172", "GET /a?token=NameTok9", attributes=values),
        span(
            "eee19b7ec3c1b173",
            "clean",
            attributes=values,
            status={"code": 2, "message": "password=StatusPw9"},
        ),
        span("eee19b7ec3c1b174", "also clean", attributes=values),
    ]
    decoded = decode_traces(json.dumps(otlp_json(spans)).encode(), is_json=True, redactor=REDACTOR)
    batch = decoded.batch
    assert decoded.rejected == 1 and len(batch) == 3 and batch.redacted == 2
    assert batch.names == ["GET /a?token=[REDACTED]", "clean", "also clean"]
    details = [batch.detail.span_detail(i) for i in range(3)]
    assert [d.status_message for d in details] == ["", "password=[REDACTED]", ""]
    assert all(d.attributes["db.statement"] == "SELECT 1" for d in details)
    assert details[0].resource["service.name"] == "checkout"
    raw = zlib.decompress(batch.detail._packed)  # type: ignore[attr-defined]
    assert b"NameTok9" not in raw and b"StatusPw9" not in raw
