"""Traces for the web page's tests and screenshots: two runs of one checkout, the first
fast and fine, the second slow and failing deep in payments, with a span name and a log
line that try to inject HTML. Sent with the real OTel SDK exporter over OTLP/gRPC."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.trace import SpanKind

from tests.conftest import Running
from tests.scenarios import Scenario, db, http_client, http_server

__all__ = ["XSS", "Checkouts", "send_checkout", "send_checkouts"]

XSS = '<img src=x onerror="window.__xss=1">'


@dataclass(slots=True)
class Checkouts:
    fast: str
    slow: str
    cause_span: str
    slow_db_span: str
    xss_span: str


def _checkout(*, slow: bool) -> tuple[Scenario, dict[str, str]]:
    s = Scenario()
    ids: dict[str, str] = {}
    fetch = s.span(
        "browser",
        "fetch POST /api/checkout",
        0,
        240 if slow else 60,
        kind=SpanKind.CLIENT,
        attrs=http_client("POST", "http://localhost:8000/api/checkout", 500 if slow else 200),
        error="" if slow else None,
    )
    server = s.span(
        "api",
        "POST /api/checkout",
        5,
        235 if slow else 55,
        parent=fetch,
        kind=SpanKind.SERVER,
        attrs=http_server("POST", "/api/checkout", 500 if slow else 200),
        error="" if slow else None,
    )
    cart = s.span(
        "api",
        "SELECT cart",
        8,
        108 if slow else 18,
        parent=server,
        kind=SpanKind.CLIENT,
        attrs=db("SELECT * FROM cart WHERE user = $1"),
    )
    ids["db"] = format(cart.get_span_context().span_id, "016x")
    if slow:
        coupons = s.span(
            "api",
            "SELECT coupons",
            108,
            118,
            parent=server,
            kind=SpanKind.CLIENT,
            attrs=db("SELECT 1"),
        )
        evil = s.span("api", f"render {XSS}", 118, 120, parent=server)
        ids["xss"] = format(evil.get_span_context().span_id, "016x")
        s.log("api", coupons, f"coupon lookup said {XSS}", error=False)
    else:
        s.span("api", "cache get", 18, 20, parent=server, kind=SpanKind.CLIENT)
    call = s.span(
        "api",
        "POST payments/charge",
        120 if slow else 22,
        230 if slow else 50,
        parent=server,
        kind=SpanKind.CLIENT,
        attrs=http_client("POST", "http://payments:9000/charge", 502 if slow else 200),
        error="" if slow else None,
    )
    charge = s.span(
        "payments",
        "POST /charge",
        125 if slow else 25,
        225 if slow else 45,
        parent=call,
        kind=SpanKind.SERVER,
        attrs=http_server("POST", "/charge", 502 if slow else 200),
        error="card processor unreachable" if slow else None,
        exception=ConnectionError("card processor unreachable") if slow else None,
    )
    ids["charge"] = format(charge.get_span_context().span_id, "016x")
    if slow:
        s.log("payments", charge, "charge failed: card processor unreachable")
    s.trace_id = format(fetch.get_span_context().trace_id, "032x")
    return s, ids


async def send_checkout(gasoline: Running, *, slow: bool) -> tuple[str, dict[str, str]]:
    """One checkout: its trace id, and the span ids ``db``, ``charge`` (and ``xss``)."""
    scenario, ids = _checkout(slow=slow)
    return await scenario.send(gasoline), ids


async def send_checkouts(gasoline: Running) -> Checkouts:
    fast, _ = _checkout(slow=False)
    slow, ids = _checkout(slow=True)
    fast_id = await fast.send(gasoline)
    slow_id = await slow.send(gasoline)
    return Checkouts(fast_id, slow_id, ids["charge"], ids["db"], ids["xss"])
