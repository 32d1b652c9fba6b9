"""TracePulse end to end: triggers (webhook, OTel log record, config rules) on a running
daemon, reports ranked by the system map and recent changes, delivered to a real Slack-
shaped HTTP server and a real SMTP server (aiosmtpd, STARTTLS and login), kept across a
restart, and refined by feedback."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Span, SpanKind

from exporters.pulse_delivery import slack_message
from tests.conftest import Running, wait_for
from tests.scenarios import Scenario, db, http_client, http_server

MS = 1_000_000

MAP = """
pulse:
  settle: 100ms
  retry_backoff: 50ms
  services:
    EdgeDevice: {depends_on: [SessionManager], file: src/edge.js}
    SessionManager:
      depends_on: [ServiceA]
      file: src/session.js
      functions: [startSession, dropSession]
    ServiceA: {depends_on: [ServiceB], file: src/service_a.py, functions: [chargeSession]}
    ServiceB: {file: src/service_b.py, functions: [meterReading]}
"""


class NowScenario(Scenario):
    """A scenario placed just before now, so the trigger's window covers it."""

    def __init__(self) -> None:
        super().__init__()
        self.base_ns = time.time_ns() - 3000 * MS

    def _ns(self, service: str, ms: float) -> int:
        return self.base_ns + int(ms * MS)


def cid_attrs(cid: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"http.request.header.x-correlation-id": cid, **(extra or {})}


@dataclass
class Chain:
    """EdgeDevice -> SessionManager -> ServiceA -> ServiceB, each a SERVER span with a
    CLIENT span to the next; ``fail`` marks services whose spans fail (and whose callers
    then fail too, unless ``handled``), ``slow`` one that takes most of the time."""

    cid: str
    fail: dict[str, str] = field(default_factory=dict)
    slow: str | None = None
    extra_below_b: str | None = None  # an undeclared dependency called by ServiceB
    extra_fails: bool = False
    error_logs: dict[str, str] = field(default_factory=dict)
    route: str = "/charge"

    def build(self, sc: Scenario) -> Span:
        order = ["SessionManager", "ServiceA", "ServiceB"]
        failed = bool(self.fail) or self.extra_fails
        start = {name: 10.0 + 25 * i for i, name in enumerate(order)}
        own = {name: 2000.0 if name == self.slow else 20.0 for name in order}
        end: dict[str, float] = {}
        below = start["ServiceB"] + own["ServiceB"] + (25 if self.extra_below_b else 0)
        for name in reversed(order):
            end[name] = below + 5
            below = end[name] + 5
        root = sc.span(
            "EdgeDevice",
            "POST /sessions",
            0,
            below + 5,
            kind=SpanKind.CLIENT,
            attrs=cid_attrs(
                self.cid, http_client("POST", "http://sm/sessions", 500 if failed else 200)
            ),
            error="session failed" if failed else None,
        )
        parent = root
        for i, name in enumerate(order):
            below_fails = any(n in self.fail for n in order[i:]) or self.extra_fails
            err = self.fail.get(name) or ("upstream failed" if below_fails else None)
            route = self.route if name == "ServiceA" else f"/{name.lower()}"
            t = start[name]
            server = sc.span(
                name,
                f"POST {route}",
                t,
                end[name],
                parent=parent,
                kind=SpanKind.SERVER,
                attrs=cid_attrs(self.cid, http_server("POST", route, 500 if err else 200)),
                error=err,
                exception=RuntimeError(self.fail[name]) if name in self.fail else None,
            )
            if name in self.error_logs:
                sc.log(name, server, self.error_logs[name])
            if i + 1 < len(order):
                nxt = order[i + 1]
                parent = sc.span(
                    name,
                    "POST next",
                    start[nxt] - 3,
                    end[nxt] + 2,
                    parent=server,
                    kind=SpanKind.CLIENT,
                    attrs=http_client("POST", "http://next", 500 if below_fails else 200),
                    error="call failed" if below_fails else None,
                )
                continue
            sc.span(
                name,
                "SELECT meter",
                t + 2,
                t + own[name],
                parent=server,
                kind=SpanKind.CLIENT,
                attrs=db("SELECT * FROM meter"),
            )
            if self.extra_below_b:
                sc.span(
                    self.extra_below_b,
                    "GET session",
                    t + own[name] + 1,
                    t + own[name] + 20,
                    parent=server,
                    kind=SpanKind.SERVER,
                    error="connection refused" if self.extra_fails else None,
                    exception=ConnectionError("connection refused") if self.extra_fails else None,
                )
        return root


async def webhook(
    running: Running, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(running.api + "/webhook/event", json=body, headers=headers or {}) as resp,
    ):
        return resp.status, await resp.json()


def trigger_body(
    cid: str, code: str = "TIMEOUT", service: str = "SessionManager", event: str = "SESSION_DROP"
) -> dict[str, Any]:
    return {
        "eventType": event,
        "correlationId": cid,
        "details": {"service": service, "errorCode": code, "chargerId": "CP-7"},
        "priority": "high",
    }


async def post_event(running: Running, event: dict[str, Any]) -> None:
    status, answer = await running.post_json("/event", event)
    assert status == 200, answer


async def change(
    running: Running, commit: str, message: str, files: list[str], diff: str = ""
) -> None:
    await post_event(
        running,
        {
            "source": "git",
            "level": "info",
            "message": f"commit {commit}: {message}",
            "timestamp": time.time_ns() // MS - 60_000,
            "metadata": {"commit": commit, "files": files, "diff": diff},
        },
    )


async def reports_of(running: Running, n: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The newest ``n`` reports in full, once there are ``n``."""
    await wait_for(lambda: len(running.daemon.pulse.book.reports) >= n, timeout=timeout)
    status, listing = await running.get_json("/v1/reports")
    assert status == 200, listing
    full = []
    for item in listing["reports"][:n]:
        status, report = await running.get_json(f"/v1/reports/{item['id']}")
        assert status == 200, report
        full.append(report)
    return full


# -- scenarios with known culprits ------------------------------------------------------


async def _ev(r: Running, cid: str) -> str:
    """The brief's example: SESSION_DROP from SessionManager, TIMEOUT, after a change to
    src/session.js."""
    await change(r, "a1b2c3d", "shorten session keepalive", ["src/session.js"])
    sc = NowScenario()
    Chain(cid, fail={"SessionManager": "session timed out"}).build(sc)
    await sc.send(r)
    return "SessionManager"


async def _db_down(r: Running, cid: str) -> str:
    sc = NowScenario()
    Chain(cid, fail={"ServiceB": "db connection pool exhausted"}).build(sc)
    await sc.send(r)
    return "ServiceB"


async def _a_bug(r: Running, cid: str) -> str:
    sc = NowScenario()
    Chain(cid, fail={"ServiceA": "KeyError: tariff"}).build(sc)
    await sc.send(r)
    return "ServiceA"


async def _b_slow(r: Running, cid: str) -> str:
    sc = NowScenario()
    Chain(cid, slow="ServiceB", fail={"SessionManager": "deadline exceeded"}).build(sc)
    await sc.send(r)
    return "ServiceB"


async def _b_logs_and_change(r: Running, cid: str) -> str:
    await change(r, "beef001", "new meter parser", ["src/service_b.py"])
    sc = NowScenario()
    Chain(cid, error_logs={"ServiceB": "meter reading rejected"}).build(sc)
    await sc.send(r)
    return "ServiceB"


async def _undeclared_redis(r: Running, cid: str) -> str:
    sc = NowScenario()
    Chain(cid, extra_below_b="Redis", extra_fails=True).build(sc)
    await sc.send(r)
    return "Redis"


async def _logs_only(r: Running, cid: str) -> str:
    for message in ("charge declined by processor", "retry budget exhausted"):
        await post_event(
            r,
            {
                "level": "error",
                "message": message,
                "source": "backend",
                "metadata": {"service": "ServiceA"},
                "correlation_id": cid,
            },
        )
    await r.settled()
    return "ServiceA"


async def _function_changed(r: Running, cid: str) -> str:
    await change(
        r,
        "f00d123",
        "rework charging",
        ["lib/charging/core.py"],
        diff="@@ def chargeSession(session):\n-    retry=3\n+    retry=0",
    )
    sc = NowScenario()
    Chain(cid, fail={"SessionManager": "charge step failed"}).build(sc)
    await sc.send(r)
    return "ServiceA"


async def _own_bug(r: Running, cid: str) -> str:
    sc = NowScenario()
    Chain(cid, fail={"SessionManager": "NullPointerException in dropSession"}).build(sc)
    await sc.send(r)
    return "SessionManager"


async def _handled_then_a(r: Running, cid: str) -> str:
    sc = NowScenario()
    root = sc.span(
        "EdgeDevice",
        "POST /sessions",
        0,
        500,
        kind=SpanKind.CLIENT,
        attrs=cid_attrs(cid, http_client("POST", "http://sm", 500)),
    )
    sm = sc.span(
        "SessionManager",
        "POST /sessions",
        5,
        495,
        parent=root,
        kind=SpanKind.SERVER,
        attrs=cid_attrs(cid, http_server("POST", "/sessions", 500)),
        error="upstream",
    )
    a = sc.span(
        "ServiceA",
        "POST /charge",
        10,
        490,
        parent=sm,
        kind=SpanKind.SERVER,
        attrs=http_server("POST", "/charge", 500),
        error="validation failed",
        exception=ValueError("validation failed: tariff missing"),
    )
    sc.span(
        "ServiceB",
        "POST /meter",
        20,
        60,
        parent=a,
        kind=SpanKind.SERVER,
        attrs=http_server("POST", "/meter", 503),
        error="busy",
        exception=RuntimeError("busy"),
    )
    sc.span(
        "ServiceB",
        "POST /meter",
        70,
        100,
        parent=a,
        kind=SpanKind.SERVER,
        attrs=http_server("POST", "/meter", 200),
    )
    await sc.send(r)
    return "ServiceA"


async def _otel_log_trigger(r: Running, cid: str) -> str:
    sc = NowScenario()
    Chain(cid, fail={"ServiceA": "card processor returned 402"}).build(sc)
    await sc.send(r)
    return "ServiceA"


SCENARIOS: dict[str, Callable[[Running, str], Any]] = {
    "ev_charging_session_drop": _ev,
    "database_down_below": _db_down,
    "bug_in_middle_service": _a_bug,
    "slow_dependency_timeout": _b_slow,
    "error_logs_and_change": _b_logs_and_change,
    "undeclared_dependency": _undeclared_redis,
    "logs_only": _logs_only,
    "changed_function": _function_changed,
    "own_bug": _own_bug,
    "handled_retry_then_own_failure": _handled_then_a,
    "otel_log_trigger": _otel_log_trigger,
}


def emit_trigger_log(running: Running, cid: str, code: str) -> None:
    """The DebugQueue event as an OTel log record with the fields as attributes."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "SessionManager"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    provider.get_logger("debugqueue").emit(
        body="SESSION_DROP",
        severity_number=SeverityNumber.ERROR,
        attributes={
            "eventType": "SESSION_DROP",
            "correlationId": cid,
            "details.service": "SessionManager",
            "details.errorCode": code,
        },
    )
    otlp = OTLPLogExporter(endpoint=running.grpc, insecure=True)
    otlp.export(list(exporter.get_finished_logs()))
    otlp.shutdown()


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_top_hypothesis_names_the_culprit(
    name: str, start_daemon: Callable[..., Any]
) -> None:
    running: Running = await start_daemon(MAP)
    cid = f"cid-{name}"
    culprit = await SCENARIOS[name](running, cid)
    if name == "otel_log_trigger":
        await asyncio.to_thread(emit_trigger_log, running, cid, "PAYMENT")
    else:
        status, answer = await webhook(running, trigger_body(cid, code=name.upper()))
        assert status == 200, answer
    [report] = await reports_of(running)
    top = report["hypotheses"][0]
    assert top["service"] == culprit, report["markdown"]
    assert report["root_cause"]["service"] == culprit
    assert report["incident"]["correlation_id"] == cid
    assert report["incident"]["via"] == ("log" if name == "otel_log_trigger" else "webhook")
    assert top["reasoning"] and top["evidence"]
    if name == "ev_charging_session_drop":
        assert [c["id"] for c in report["relevant_changes"]] == ["a1b2c3d"]
        assert "src/session.js" in top["cause"]
        assert report["chain"], (report["trace_ids"], report["status"])
    if name == "undeclared_dependency":
        assert {"from": "ServiceB", "to": "Redis"} in report["system_map"]["seen_undeclared"]
    if name == "logs_only":  # no span ever showed the declared calls
        assert {"from": "SessionManager", "to": "ServiceA"} in report["system_map"][
            "declared_unseen"
        ]


async def test_rule_on_a_failed_route_triggers(start_daemon: Callable[..., Any]) -> None:
    running: Running = await start_daemon(
        MAP
        + """
  rules:
    - {event_type: CHARGE_FAILED, kind: trace, service: ServiceA, route: /charge}
"""
    )
    sc = NowScenario()
    Chain("cid-rule", fail={"ServiceB": "db down"}).build(sc)
    await sc.send(running)
    [report] = await reports_of(running)
    assert report["incident"]["via"] == "rule"
    assert report["incident"]["event_type"] == "CHARGE_FAILED"
    assert report["hypotheses"][0]["service"] == "ServiceB"


async def test_rule_on_an_error_log_code(start_daemon: Callable[..., Any]) -> None:
    running: Running = await start_daemon(
        MAP
        + """
  rules:
    - {event_type: METER_REJECTED, service: ServiceB, error_code: E42}
"""
    )
    await post_event(
        running,
        {"level": "info", "message": "E42 but only info", "metadata": {"service": "ServiceB"}},
    )
    await post_event(
        running,
        {"level": "error", "message": "meter rejected (E42)", "metadata": {"service": "ServiceB"}},
    )
    [report] = await reports_of(running)
    assert report["incident"]["error_code"] == "E42"
    assert running.daemon.pulse.counts["triggers"] == 1


# -- one incident, one report -----------------------------------------------------------


async def test_duplicates_fold_into_one_report_and_are_counted(
    start_daemon: Callable[..., Any],
) -> None:
    running: Running = await start_daemon(MAP)
    await _db_down(running, "cid-dup")
    for _ in range(5):
        status, _answer = await webhook(running, trigger_body("cid-dup", "DB"))
        assert status == 200
    status, _answer = await webhook(running, trigger_body("cid-other", "DB"))
    [report] = await reports_of(running)
    await wait_for(lambda: running.daemon.pulse.counts["triggers"] == 6)
    status, daemon = await running.get_json("/daemon/status")
    counts = daemon["services"]["pulse"]["counts"]
    assert counts["reports"] == 1
    assert counts["folded_duplicates"] == 4 and counts["rate_limited"] == 1
    await wait_for(lambda: running.daemon.pulse.book.newest(1)[0]["incident"]["occurrences"] == 6)
    assert len(running.daemon.pulse.book.reports) == 1
    kept = running.daemon.pulse.book.newest(1)[0]
    assert kept["incident"]["correlation_ids"] == ["cid-dup", "cid-other"]
    assert kept["id"] == report["id"]


# -- bad input and the local API safety rules -------------------------------------------


@pytest.mark.parametrize(
    ("body", "field_named"),
    [
        ({"correlationId": "c", "details": {"service": "S", "errorCode": "E"}}, "eventType"),
        ({"eventType": "X", "details": {"service": "S", "errorCode": "E"}}, "correlationId"),
        ({"eventType": "X", "correlationId": "c"}, "details"),
        (
            {"eventType": "X", "correlationId": "c", "details": {"errorCode": "E"}},
            "details.service",
        ),
        (
            {"eventType": "X", "correlationId": "c", "details": {"service": "S"}},
            "details.errorCode",
        ),
        (
            {"eventType": "X", "correlationId": "c", "details": {"service": "S", "errorCode": 7}},
            "details.errorCode",
        ),
        ({**trigger_body("c"), "priority": "urgent"}, "priority"),
        ({**trigger_body("c"), "severity": "high"}, "severity"),
        ({**trigger_body("c"), "eventType": "two words"}, "eventType"),
        (["not", "an", "object"], "body"),
    ],
)
async def test_bad_webhook_input_gets_400_naming_the_field(
    gasoline: Running, body: Any, field_named: str
) -> None:
    status, answer = await webhook(gasoline, body)
    assert status == 400
    assert answer["error"].startswith(field_named + ":"), answer


async def test_webhook_and_feedback_refuse_web_pages(gasoline: Running) -> None:
    status, answer = await webhook(gasoline, trigger_body("c"), {"Origin": "http://localhost:3000"})
    assert status == 403 and "browser" in answer["error"]
    status, answer = await webhook(gasoline, trigger_body("c"), {"Origin": "https://evil.example"})
    assert status == 403
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            gasoline.api + "/chat/feedback",
            json={"report_id": "x", "note": "hi"},
            headers={"Origin": "http://localhost:3000"},
        ) as resp,
    ):
        assert resp.status == 403
    status, daemon = await gasoline.get_json("/daemon/status")
    assert daemon["receivers"]["native"]["refused"]["403"] == 1
    assert daemon["edge"]["refused"]["origin"] == 1
    assert daemon["edge"]["refused"]["browser_tool"] == 1
    assert gasoline.daemon.pulse.counts["triggers"] == 0


async def test_webhook_needs_the_token_beyond_loopback(
    start_daemon: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GASOLINE_TOKEN", "t" * 20)
    running: Running = await start_daemon(MAP)
    status, _answer = await webhook(running, trigger_body("c"))
    assert status == 401
    status, answer = await webhook(
        running, trigger_body("c"), {"Authorization": "Bearer " + "t" * 20}
    )
    assert status == 200, answer


# -- feedback ---------------------------------------------------------------------------


async def test_feedback_changes_the_next_ranking(start_daemon: Callable[..., Any]) -> None:
    running: Running = await start_daemon(MAP + "  rate_limit: 1ms\n")
    await _db_down(running, "cid-f1")
    await webhook(running, trigger_body("cid-f1", "DB"))
    [first] = await reports_of(running)
    assert first["hypotheses"][0]["service"] == "ServiceB"
    status, answer = await running.post_json(
        "/chat/feedback",
        {
            "report_id": first["id"],
            "hypothesis": "service:ServiceB",
            "verdict": "reject",
            "note": "B was in maintenance; A's retry loop is the real problem",
        },
    )
    assert status == 200, answer
    status, answer = await running.post_json(
        "/chat/feedback",
        {
            "report_id": first["id"],
            "hypothesis": "service:ServiceA",
            "verdict": "confirm",
        },
    )
    assert status == 200, answer
    status, answer = await running.post_json(
        "/chat/feedback",
        {
            "report_id": first["id"],
            "hypothesis": "service:Nope",
            "verdict": "confirm",
        },
    )
    assert status == 400 and answer["error"].startswith("hypothesis:")
    await _db_down(running, "cid-f2")
    await webhook(running, trigger_body("cid-f2", "DB"))
    second, _ = await reports_of(running, 2)
    assert second["id"] != first["id"]
    assert second["hypotheses"][0]["service"] == "ServiceA", second["markdown"]
    rejected = next(h for h in second["hypotheses"] if h["service"] == "ServiceB")
    assert rejected["feedback"] == {"rejected": 1}
    assert any("rejected it 1 time" in r for r in rejected["reasoning"])
    assert second["feedback_applied"] and "Feedback applied" in second["markdown"]
    [kept] = [r for r in (await reports_of(running, 2)) if r["id"] == first["id"]]
    assert [f["verdict"] for f in kept["feedback"]] == ["reject", "confirm"]


# -- delivery to real peers -------------------------------------------------------------


class SlackPeer:
    """An HTTP server that checks Slack's incoming-webhook payload; it answers 500 to
    the first ``fail_first`` posts."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.posts = 0
        self.messages: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        self.posts += 1
        if self.posts <= self.fail_first:
            return web.Response(status=500, text="try later")
        body = await request.json()
        assert request.content_type == "application/json"
        assert isinstance(body["text"], str) and body["text"]
        assert body["blocks"][0]["type"] == "header"
        for block in body["blocks"]:
            assert block["type"] in ("header", "section", "context")
            if block["type"] == "section" and "text" in block:
                assert block["text"]["type"] == "mrkdwn" and len(block["text"]["text"]) <= 3000
        self.messages.append(body)
        return web.Response(text="ok")

    async def __aenter__(self) -> SlackPeer:
        app = web.Application()
        app.router.add_post("/services/T0/B0/x", self._post)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/services/T0/B0/x"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


class Mailbox:
    """aiosmtpd's handler: keeps what arrives."""

    def __init__(self) -> None:
        self.mails: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append(envelope)
        return "250 OK"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def smtp_server(tmp_path: Path) -> AsyncIterator[tuple[Mailbox, int, Path]]:
    """A real SMTP server on 127.0.0.1, port 0, requiring STARTTLS before LOGIN."""
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    mailbox = Mailbox()

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"pulse"
            and auth_data.password == b"s3cret-pass"
        )
        return AuthResult(success=ok)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            mailbox,
            tls_context=tls,
            require_starttls=True,
            authenticator=authenticate,
            auth_required=True,
            hostname="127.0.0.1",
        ),
        "127.0.0.1",
        0,
    )
    port = server.sockets[0].getsockname()[1]
    yield mailbox, port, cert
    server.close()
    await server.wait_closed()


async def test_report_reaches_slack_and_email_within_seconds(
    start_daemon: Callable[..., Any],
    smtp_server: tuple[Mailbox, int, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox, port, cert = smtp_server
    monkeypatch.setenv("PULSE_SMTP_PASSWORD", "s3cret-pass")
    async with SlackPeer() as slack:
        running: Running = await start_daemon(
            MAP
            + f"""
  slack: {{webhook_url: "{slack.url}"}}
  email:
    host: 127.0.0.1
    port: {port}
    to: [oncall@example.com]
    username: pulse
    password_env: PULSE_SMTP_PASSWORD
    ca_file: {cert}
"""
        )
        await _ev(running, "cid-deliver")
        await webhook(running, trigger_body("cid-deliver"))
        await wait_for(lambda: bool(slack.messages) and bool(mailbox.mails), timeout=5.0)
        pulse = running.daemon.pulse

        def counted() -> bool:  # the peers have the report before the sender counts it
            delivery = pulse.stats()["delivery"]
            return delivery["slack"]["sent"] == 1 and delivery["email"]["sent"] == 1

        await wait_for(counted, timeout=10.0)
        message = slack.messages[0]
        assert "SESSION_DROP" in message["blocks"][0]["text"]["text"]
        assert "SessionManager" in message["text"]
        mail = message_from_bytes(mailbox.mails[0].original_content or b"")
        assert mail["To"] == "oncall@example.com"
        assert "SESSION_DROP" in mail["Subject"]
        parts = [p.get_content_type() for p in mail.walk()]
        assert "application/json" in parts
        status, daemon = await running.get_json("/daemon/status")
        assert status == 200
        delivery = daemon["services"]["pulse"]["delivery"]
        assert delivery["slack"]["sent"] == 1 and delivery["email"]["sent"] == 1


async def test_a_failing_peer_is_retried_and_counted(start_daemon: Callable[..., Any]) -> None:
    async with SlackPeer(fail_first=2) as slack:
        running: Running = await start_daemon(
            MAP
            + f"""
  slack: {{webhook_url: "{slack.url}"}}
  email: {{host: 127.0.0.1, port: 1, to: [x@example.com], starttls: false}}
  retries: 2
"""
        )
        await webhook(running, trigger_body("cid-retry"))
        pulse = running.daemon.pulse

        def settled() -> bool:
            # The peer records a message before its answer reaches the notifier, which
            # counts the send only then: wait for the counts, not for the peer.
            delivery = pulse.stats()["delivery"]
            return delivery["slack"]["sent"] == 1 and delivery["email"]["gave_up"] == 1

        await wait_for(settled, timeout=30.0)
        assert len(slack.messages) == 1
        stats = pulse.stats()["delivery"]
        assert stats["slack"]["failed_attempts"] == 2 and stats["slack"]["sent"] == 1
        assert stats["email"]["failed_attempts"] == 3 and stats["email"]["sent"] == 0
        assert "ConnectionRefusedError" in stats["email"]["last_error"]


# -- durable reports, tools -------------------------------------------------------------


async def test_reports_survive_a_restart_and_answer_through_the_tools(
    start_daemon: Callable[..., Any],
) -> None:
    running: Running = await start_daemon(MAP)
    await _a_bug(running, "cid-keep")
    await webhook(running, trigger_body("cid-keep", "BUG"))
    [report] = await reports_of(running)
    await running.post_json("/chat/feedback", {"report_id": report["id"], "note": "looking"})
    await running.daemon.stop()
    again: Running = await start_daemon(MAP)
    [kept] = await reports_of(again)
    assert kept["id"] == report["id"] and kept["feedback"][0]["note"] == "looking"
    listing = await again.daemon.tools.run("observe", {"what": "reports"})
    assert listing["reports"][0]["id"] == report["id"]
    assert listing["reports"][0]["top"]["service"] == "ServiceA"
    full = await again.daemon.tools.run("analyze", {"type": "report", "report_id": report["id"]})
    assert full["hypotheses"][0]["service"] == "ServiceA" and "# SESSION_DROP" in full["markdown"]
    status, answer = await again.get_json("/v1/reports/nope")
    assert status == 404 and answer["error"].startswith("report_id:")
    files = list((Path.home() / ".gasoline" / "data" / "reports").glob("*"))
    assert [f.name for f in files] == [report["id"] + ".json"]


async def test_the_report_list_holds_every_report_within_the_answer_cap(
    start_daemon: Callable[..., Any],
) -> None:
    """Each item of the list is a summary (the top hypothesis's key, cause, service and
    confidence), so 120 reports whose hypotheses carry evidence fit in one answer; the
    full report answers at ``/v1/reports/{id}``."""
    count = 120
    # No wait for late spans: this test is about the list, not the analysis.
    running: Running = await start_daemon(MAP + "  rate_limit: 1ms\n  settle: 0s\n")
    await _db_down(running, "cid-many")
    for i in range(count):  # one signature each: one report each
        status, answer = await webhook(running, trigger_body("cid-many", f"DB_{i}"))
        assert status == 200, answer
    # 120 analyses and report writes: generous on a loaded machine, it only guards failure
    await wait_for(lambda: len(running.daemon.pulse.book.reports) == count, timeout=180)
    status, listing = await running.get_json(f"/v1/reports?limit={count}")
    assert status == 200, listing
    assert "truncated" not in listing["metadata"], listing["metadata"]["truncated"]
    assert listing["metadata"]["total_count"] == count == len(listing["reports"])
    codes = {r["incident"]["error_code"] for r in listing["reports"]}
    assert codes == {f"DB_{i}" for i in range(count)}
    first = listing["reports"][0]
    assert set(first["top"]) == {"key", "cause", "service", "confidence"}
    assert first["top"]["service"] == "ServiceB"
    status, full = await running.get_json(f"/v1/reports/{first['id']}")
    assert status == 200, full
    assert full["hypotheses"][0]["key"] == first["top"]["key"]
    assert full["hypotheses"][0]["evidence"] and full["incident"]["correlation_ids"]
    observed = await running.daemon.tools.run("observe", {"what": "reports", "limit": 1000})
    assert len(observed["reports"]) == count and "truncated" not in observed["metadata"]


async def test_config_errors_name_the_key(tmp_path: Path) -> None:
    from collector.errors import ConfigError
    from tests.conftest import make_config

    with pytest.raises(ConfigError) as info:
        make_config(
            tmp_path,
            """
pulse:
  services:
    A: {depends_on: [B]}
  rules:
    - {event_type: X, kind: log, route: /x}
  slack: {webhook_url: "hooks.slack.com"}
""",
        )
    text = str(info.value)
    assert "pulse.services.A.depends_on[0]: 'B' is not a service" in text
    assert "pulse.rules[0].route:" in text
    assert "pulse.slack.webhook_url:" in text


async def test_map_file(tmp_path: Path, start_daemon: Callable[..., Any]) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("services:\n  Web: {depends_on: [Api]}\n  Api: {file: api.py}\n")
    running: Running = await start_daemon(f"pulse: {{map_file: {path}, settle: 10ms}}\n")
    assert set(running.daemon.pulse.declared) == {"Web", "Api"}


async def test_a_delivery_cut_off_by_a_stop_resumes_at_start(
    start_daemon: Callable[..., Any],
) -> None:
    async with SlackPeer(fail_first=1) as slack:
        config = (
            MAP
            + f"""
  slack: {{webhook_url: "{slack.url}"}}
  retry_backoff: 1h
"""
        )
        running: Running = await start_daemon(config)
        await webhook(running, trigger_body("cid-resume"))
        await wait_for(lambda: slack.posts == 1)
        [report] = running.daemon.pulse.book.newest(1)
        await running.daemon.stop()  # while waiting to retry
        assert not slack.messages
        again: Running = await start_daemon(config)
        await wait_for(lambda: bool(slack.messages))
        assert report["id"] in slack.messages[0]["blocks"][-1]["elements"][0]["text"]
        await wait_for(
            lambda: again.daemon.pulse.book.newest(1)[0]["delivery"]["slack"]["status"] == "sent"
        )


async def test_the_reshaped_causality_answer_and_missing_keys(tmp_path: Path) -> None:
    """Ranked ``hypotheses`` with a blamed ``service`` (the causality answer's new shape)
    are weighed; answers missing keys or malformed are shown as absent, never a crash."""
    from collector.config import Duration, StoreConfig
    from collector.config.sections import PulseConfig, PulseServiceConfig
    from collector.pulse import Pulse, Trigger
    from collector.store import Store

    trace_id = "ab" * 16

    async def reshaped(name: str, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("type") == "correlate":
            return {"trace_ids": [trace_id, 7], "linked": "not a list"}
        if args.get("what") == "services":
            return {"edges": [{"from": "SessionManager", "to": "ServiceA"}, "junk", {"from": 1}]}
        if args.get("type") == "causality":
            return {
                "status": "failed",
                "service": "ServiceB",
                "hypotheses": [
                    {
                        "cause": "pool exhausted",
                        "confidence": 0.9,
                        "evidence": [],
                        "reasoning": "x",
                    },
                    {"cause": {"service": "ServiceA"}, "confidence": "high"},
                ],
                "chain": [{"service": "ServiceB", "name": "SELECT"}, "junk"],
                "handled": None,
            }
        return {"events": None}

    async def empty(name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {}

    services = {
        "SessionManager": PulseServiceConfig(depends_on=["ServiceA"]),
        "ServiceA": PulseServiceConfig(depends_on=["ServiceB"]),
        "ServiceB": PulseServiceConfig(),
    }
    found = []
    for tools in (reshaped, empty):
        config = PulseConfig(
            services=services, settle=Duration(0), reports_dir=str(tmp_path / tools.__name__)
        )
        pulse = Pulse(config, Store(StoreConfig()), tools, [])
        await pulse.start()
        pulse.trigger(
            Trigger("SESSION_DROP", "c1", "SessionManager", "TIMEOUT", time.time_ns(), "webhook")
        )
        await wait_for(lambda: bool(pulse.book.reports))  # noqa: B023
        found.append(pulse.book.newest(1)[0])
        await pulse.stop()
    rich, bare = found
    assert rich["hypotheses"][0]["service"] == "ServiceB"
    assert "pool exhausted" in " ".join(rich["hypotheses"][0]["reasoning"])
    assert rich["chain"] == [{"service": "ServiceB", "name": "SELECT"}] and rich["handled"] == []
    assert bare["hypotheses"][0]["service"] == "SessionManager" and bare["chain"] == []
    assert bare["status"] == "unknown" and bare["trace_ids"] == []


def test_slack_message_escapes_names_that_would_become_links() -> None:
    """Event types, services and hypotheses come from whoever posted the event; Slack's
    mrkdwn reads <url|text> as a link, so a hostile name must arrive as plain text."""
    hostile = "<https://evil.example|click me> & co"
    report = {
        "id": "r1",
        "status": "failed",
        "incident": {"event_type": "DROP", "service": hostile, "error_code": "E1",
                     "correlation_id": hostile, "priority": "high"},
        "hypotheses": [{"cause": f"service {hostile}", "confidence": 0.9,
                        "reasoning": [f"{hostile} failed"]}],
        "next_checks": [f"look at {hostile}"],
    }  # fmt: skip
    message = slack_message(report)
    mrkdwn = [message["text"]] + [
        part["text"]
        for block in message["blocks"]
        for part in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
        if part.get("type") == "mrkdwn"
    ]
    assert all("<https://evil" not in text for text in mrkdwn), mrkdwn
    assert sum("&lt;https://evil.example|click me&gt; &amp; co" in text for text in mrkdwn) == 4
