"""A small web app for the extension's browser tests: a page with a checkout button whose
backend is instrumented with the OTel Python SDK (the ``traceparent`` it receives is
extracted with the SDK's propagator; its SERVER span and a failing database span are
exported over OTLP/HTTP), a WebSocket echo, and two servers on the other loopback name
(another origin): a third party whose CORS does not allow ``traceparent``, and the app's
API whose CORS does (a frontend on one port calling its API on another). Each records the
``traceparent`` headers it receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["OWN_TRACEPARENT", "Shop", "shop_app"]

OWN_TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title></head>
<body>
<h1>Shop</h1>
<label>Email <input id="email" name="email" type="email"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="checkout" data-testid="checkout">Checkout</button>
<button id="third">Ask a third party</button>
<button id="own">Own traceparent</button>
<button id="api">Stock from the API</button>
<button id="xhr">Echo by XHR</button>
<p id="status"></p>
<script>
const THIRD = {third};
const OWN = {own};
const API = {api};
document.getElementById("checkout").addEventListener("click", async () => {{
  const resp = await fetch("/api/checkout?token=s3cr3t-token&cart=7", {{method: "POST"}});
  console.error("checkout failed", resp.status, {{cart: 7}});
  const ws = new WebSocket(`ws://${{location.host}}/ws`);
  ws.onopen = () => ws.send("hello over ws");
  ws.onmessage = (e) => {{
    window.postMessage({{type: "gasoline:event", event: {{message: "cart state", metadata: {{items: 2}}}}}}, "*");
    setTimeout(() => {{ throw new Error("boom after checkout"); }}, 0);
    document.getElementById("status").textContent = "done " + resp.status;
  }};
}});
document.getElementById("third").addEventListener("click", async () => {{
  const resp = await fetch(THIRD + "/ping");
  document.getElementById("status").textContent = "third " + resp.status;
}});
document.getElementById("own").addEventListener("click", async () => {{
  const resp = await fetch("/api/echo", {{headers: {{traceparent: OWN}}}});
  document.getElementById("status").textContent = "own " + resp.status;
}});
document.getElementById("xhr").addEventListener("click", () => {{
  const xhr = new XMLHttpRequest();
  xhr.open("GET", "/api/echo?via=xhr");
  xhr.onloadend = () => {{ document.getElementById("status").textContent = "xhr " + xhr.status; }};
  xhr.send();
}});
document.getElementById("api").addEventListener("click", async () => {{
  const resp = await fetch(API + "/api/stock");
  document.getElementById("status").textContent = "api " + resp.status + " " + Date.now();
}});
</script>
</body></html>
"""


@dataclass
class Shop:
    """The running app: its URL, the third party's, and what each received."""

    url: str
    third_url: str
    api_url: str
    provider: TracerProvider
    checkout_traceparents: list[str | None] = field(default_factory=list)
    echo_traceparents: list[str | None] = field(default_factory=list)
    third_traceparents: list[str | None] = field(default_factory=list)
    api_traceparents: list[str | None] = field(default_factory=list)


@asynccontextmanager
async def shop_app(otlp_http: str) -> AsyncIterator[Shop]:
    """The shop on 127.0.0.1 and a third party on ``localhost`` (another origin), both on
    port 0; spans go to ``otlp_http``/v1/traces as service ``shop``."""
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_http}/v1/traces"))
    )
    tracer = provider.get_tracer("shop")
    propagator = TraceContextTextMapPropagator()
    shop = Shop(url="", third_url="", api_url="", provider=provider)

    async def page(request: web.Request) -> web.Response:
        text = _PAGE.format(
            third=json.dumps(shop.third_url),
            own=json.dumps(OWN_TRACEPARENT),
            api=json.dumps(shop.api_url),
        )
        return web.Response(text=text, content_type="text/html")

    async def checkout(request: web.Request) -> web.Response:
        shop.checkout_traceparents.append(request.headers.get("traceparent"))
        context = propagator.extract(dict(request.headers))
        with tracer.start_as_current_span(
            "POST /api/checkout",
            context=context,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": "/api/checkout"},
        ) as server:
            with tracer.start_as_current_span(
                "SELECT orders",
                kind=SpanKind.CLIENT,
                attributes={"db.system": "postgresql", "db.statement": "SELECT * FROM orders"},
            ) as db:
                error = ConnectionError("connection to orders-db refused")
                db.record_exception(error)
                db.set_status(Status(StatusCode.ERROR, str(error)))
            server.set_attribute("http.response.status_code", 500)
            server.set_status(Status(StatusCode.ERROR))
        return web.json_response(
            {"error": "orders unavailable"}, status=500, headers={"x-request-id": "req-checkout-1"}
        )

    async def echo(request: web.Request) -> web.Response:
        shop.echo_traceparents.append(request.headers.get("traceparent"))
        return web.json_response({"ok": True})

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await socket.send_str(f"echo: {message.data}")
        return socket

    async def third(request: web.Request) -> web.Response:
        shop.third_traceparents.append(request.headers.get("traceparent"))
        return web.Response(text="pong", headers={"Access-Control-Allow-Origin": "*"})

    def cors(request: web.Request) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": request.headers.get("Origin", "*"), "Vary": "Origin"}

    async def api_preflight(request: web.Request) -> web.Response:
        return web.Response(
            status=204,
            headers={
                **cors(request),
                "Access-Control-Allow-Methods": "GET, HEAD",
                "Access-Control-Allow-Headers": "traceparent, tracestate",
            },
        )

    async def api_root(request: web.Request) -> web.Response:
        return web.Response(headers=cors(request))

    async def api_stock(request: web.Request) -> web.Response:
        shop.api_traceparents.append(request.headers.get("traceparent"))
        return web.json_response({"stock": 3}, headers=cors(request))

    app = web.Application()
    app.add_routes(
        [
            web.get("/", page),
            web.post("/api/checkout", checkout),
            web.get("/api/echo", echo),
            web.get("/ws", ws),
        ]
    )
    other = web.Application()
    other.add_routes([web.get("/ping", third)])
    api = web.Application()
    api.add_routes(
        [
            web.options("/{path:.*}", api_preflight),
            web.get("/", api_root),
            web.get("/api/stock", api_stock),
        ]
    )
    runners = [web.AppRunner(app), web.AppRunner(other), web.AppRunner(api)]
    try:
        ports = []
        for runner in runners:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            ports.append(runner.addresses[0][1])
        shop.url = f"http://127.0.0.1:{ports[0]}"
        shop.third_url = f"http://localhost:{ports[1]}"
        shop.api_url = f"http://localhost:{ports[2]}"
        yield shop
    finally:
        for runner in runners:
            await runner.cleanup()
        # Exports to a daemon that may serve on this very loop: never block the loop.
        await asyncio.to_thread(provider.shutdown)
