"""MCP over HTTP: the streamable HTTP transport at ``/mcp`` on the API port.

The same server ``gasoline mcp`` runs on stdio (``exporters.mcp_server.build_server``),
with the tools run in process. The SDK brings the transport as an ASGI app; rather than a
second server (uvicorn) on a second port, one aiohttp handler hands each request to the
SDK's session manager, so ``/mcp`` shares the API port and its edge (Host, token).

- **Stateless, JSON answers.** Every POST is one JSON-RPC exchange answered with
  ``application/json``: no session to keep, no long-lived SSE stream, nothing to clean up
  when an agent goes away. The tools never call back into the client (no sampling, no
  elicitation), which is all a session would add. ``GET`` (the server-to-client stream)
  and ``DELETE`` (end a session) get ``405``, as the transport's spec allows; clients
  only send them when the server handed out a session id, which this one never does.
- **No browser pages.** The tools include ``interact`` (runs commands), so a request with
  any ``Origin`` -- the daemon's own page included, which has ``/v1/tools`` -- is refused
  with ``403`` before the SDK sees it, counted as ``browser_tool``. Agents send no Origin.
- **Loaded on first use.** The SDK's server side costs about half a second to import and
  ~40 MiB of memory, which a daemon whose agents use stdio or ``/v1/tools`` need not pay:
  the first ``/mcp`` request imports it (in a thread, so ingest goes on) and waits for it.
  The session manager then runs in one task until ``stop()``, which it needs for the task
  group its requests run in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from collector import VERSION
from collector.component import MCP_HTTP_PATH as MCP_PATH
from collector.edge import EdgePolicy, Refusal

if TYPE_CHECKING:
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

__all__ = ["MCP_PATH", "McpHttp"]

_log = logging.getLogger("gasoline.mcp_http")

_Message = MutableMapping[str, Any]


def _load_sdk() -> None:
    """Import the MCP server and the SDK's HTTP session manager (the slow part)."""
    import mcp.server.streamable_http_manager  # noqa: F401

    import exporters.mcp_server  # noqa: F401


class McpHttp:
    """The ``/mcp`` endpoint of one API server. ``start()`` and ``stop()`` follow the API
    server's; ``stop()`` is idempotent and safe without ``start()``."""

    def __init__(
        self,
        tools: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
        *,
        edge: EdgePolicy,
        max_body_size: int,
    ) -> None:
        self._tools = tools
        self._edge = edge
        self._max_body_size = max_body_size
        self._open = False
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._manager: StreamableHTTPSessionManager | None = None
        self._failure: str | None = None

    async def start(self) -> None:
        """Accept requests from now on; the SDK is loaded by the first one."""
        self._open = True

    async def stop(self) -> None:
        self._open = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        """Own the session manager from start to stop: its task group lives here."""
        try:
            # Off the loop: ingest goes on while the MCP library loads.
            await asyncio.to_thread(_load_sdk)
            from mcp.server.transport_security import TransportSecuritySettings

            from exporters.mcp_server import LocalTools, build_server

            server = build_server(LocalTools(self._tools), version=VERSION)
            server.streamable_http_app(
                streamable_http_path=MCP_PATH,
                json_response=True,
                stateless_http=True,
                max_request_body_size=self._max_body_size,
                # Host and Origin are checked by the daemon's own edge, which also knows
                # service.api.allowed_hosts; the SDK's list would refuse those names.
                transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            )
            manager = server.session_manager
            async with manager.run():
                self._manager = manager
                self._ready.set()
                await asyncio.Future()  # until stop() cancels
        except Exception as exc:  # a task boundary: say it once, answer 503 from now on
            _log.exception("api: MCP over HTTP could not start")
            self._failure = f"{type(exc).__name__}: {exc}"
        finally:
            self._manager = None
            self._ready.set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Any method on ``/mcp``: refuse what must not run, hand the rest to the SDK."""
        origin = request.headers.get("Origin")
        if origin is not None:
            self._edge.refuse(Refusal.BROWSER_TOOL)
            return _error(
                403,
                f"MCP is not accepted from a browser page (Origin {origin}): its tools "
                "include interact; an agent's MCP client sends no Origin",
            )
        if request.method != "POST":
            return _error(
                405,
                f"{request.method} {MCP_PATH}: this MCP endpoint is stateless, with no "
                "server-to-client stream and no session to end; send JSON-RPC by POST",
                headers={"Allow": "POST"},
            )
        if request.content_type != "application/json":
            self._edge.refuse(Refusal.CONTENT_TYPE)
            return _error(
                415, f"MCP takes Content-Type application/json, not {request.content_type!r}"
            )
        if self._task is None:
            if not self._open:
                return _error(503, "MCP over HTTP is not running (the API is stopping)")
            self._ready = asyncio.Event()
            self._failure = None
            self._task = asyncio.create_task(self._run(), name="gasoline-mcp-http")
        await self._ready.wait()
        if self._manager is None:
            return _error(
                503, f"MCP over HTTP is not running ({self._failure or 'the API is stopping'})"
            )
        return await _bridge(self._manager.handle_request, request)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status, headers=headers)


_Asgi = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[_Message]],
        Callable[[_Message], Awaitable[None]],
    ],
    Awaitable[None],
]


async def _bridge(app: _Asgi, request: web.Request) -> web.StreamResponse:
    """Run one aiohttp request through an ASGI app and stream its answer back.

    The body is read whole first (``client_max_size`` bounds it, 413 beyond). After the
    body, ``receive`` waits until the answer is complete, then reports a disconnect.
    """
    body = await request.read()
    finished = asyncio.Event()
    sent_body = False

    async def receive() -> _Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    response: web.StreamResponse | None = None

    async def send(message: _Message) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for name, value in message.get("headers", ()):
                response.headers.add(name.decode("latin-1"), value.decode("latin-1"))
        elif message["type"] == "http.response.body" and response is not None:
            if not response.prepared:
                await response.prepare(request)
            await response.write(message.get("body", b""))
            if not message.get("more_body", False):
                await response.write_eof()
                finished.set()

    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": f"{request.version.major}.{request.version.minor}",
        "method": request.method,
        "scheme": request.scheme,
        "path": request.path,
        "raw_path": request.rel_url.raw_path.encode(),
        "query_string": request.rel_url.raw_query_string.encode(),
        "root_path": "",
        "headers": [(name.lower(), value) for name, value in request.raw_headers],
        "client": _address(request.transport, "peername"),
        "server": _address(request.transport, "sockname"),
        "state": {},
    }
    try:
        await app(scope, receive, send)
    finally:
        finished.set()
    if response is None:
        return _error(500, "the MCP transport gave no answer")
    if not response.prepared:
        await response.prepare(request)
        await response.write_eof()
    return response


def _address(transport: asyncio.Transport | None, key: str) -> tuple[str, int] | None:
    info = transport.get_extra_info(key) if transport is not None else None
    return (str(info[0]), int(info[1])) if isinstance(info, tuple) else None
