"""OTLP/gRPC receiver: the Trace, Logs and Metrics ``Export`` services on :4317.

Handlers take the request bytes as they arrived (no generated servicer, no second
parse) and hand them to the shared codec. The server runs on an event loop of its own
(``receivers.loop_thread``), where requests are decoded too; the decoded batch is offered
to the pipeline on the daemon's loop.

The edge: with a token set, a call without the ``authorization: Bearer <token>`` metadata
gets ``UNAUTHENTICATED``. The ``:authority`` cannot be checked: grpcio does not give it to
Python servers (grpc/grpc#38906). No web page can reach this port anyway: browsers speak
HTTP/2 only over TLS, so a page's request arrives as HTTP/1.1 and the server drops it
before any handler runs.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc

from collector.component import Sink
from collector.config import Endpoint
from collector.edge import EdgePolicy, Refusal
from collector.errors import CollectorError, ReceiverStartError, cannot_bind
from receivers import otlp_codec
from receivers.loop_thread import LoopThread, call_on
from receivers.wire_errors import grpc_code

__all__ = ["OtlpGrpcConfig", "OtlpGrpcReceiver"]

_SERVICES = {
    "traces": "opentelemetry.proto.collector.trace.v1.TraceService",
    "logs": "opentelemetry.proto.collector.logs.v1.LogsService",
    "metrics": "opentelemetry.proto.collector.metrics.v1.MetricsService",
}


@dataclass(slots=True)
class OtlpGrpcConfig:
    endpoint: Endpoint = Endpoint("127.0.0.1", 4317)
    max_recv_msg_size_mib: int = 4

    def validate(self, path: str) -> list[str]:
        if self.max_recv_msg_size_mib <= 0:
            return [f"{path}.max_recv_msg_size_mib: must be greater than 0"]
        return []


class OtlpGrpcReceiver:
    """A grpc.aio server exposing the three OTLP Export RPCs."""

    def __init__(
        self,
        config: OtlpGrpcConfig,
        *,
        name: str = "otlp/grpc",
        path: str = "receivers.otlp.protocols.grpc",
        edge: EdgePolicy | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.path = path
        self.edge = edge if edge is not None else EdgePolicy()
        self.counts: Counter[str] = Counter()
        self._server: grpc.aio.Server | None = None
        self._port: int | None = None
        self._sink: Sink | None = None
        self._thread: LoopThread | None = None
        self._home: asyncio.AbstractEventLoop | None = None  # the sink's loop

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return [(f"{self.path}.endpoint", self.config.endpoint)]

    def bound(self) -> dict[str, int]:
        return {"grpc": self._port} if self._port is not None else {}

    async def start(self, sink: Sink) -> None:
        if self._server is not None:
            return
        self._sink = sink
        self._home = asyncio.get_running_loop()
        thread = LoopThread(f"gasoline-{self.name}")
        try:
            self._server, self._port = await thread.run(self._serve())
        except BaseException:
            await thread.close()
            raise
        self._thread = thread

    async def _serve(self) -> tuple[grpc.aio.Server, int]:
        """Create, bind and start the server; on the receiver's own loop."""
        limit = self.config.max_recv_msg_size_mib * 1024 * 1024
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.so_reuseport", 0),  # a second daemon on the port must fail, not share
            ]
        )
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    service, {"Export": grpc.unary_unary_rpc_method_handler(self._handler(signal))}
                )
                for signal, service in _SERVICES.items()
            ]
        )
        endpoint = self.config.endpoint
        try:
            _probe_bind(endpoint)
        except OSError as exc:
            await server.stop(None)
            raise cannot_bind(self.name, endpoint, exc) from exc
        try:
            port = server.add_insecure_port(f"{endpoint.host}:{endpoint.port}")
        except RuntimeError as exc:
            port = 0
            reason = str(exc)
        else:
            reason = "address already in use or not available"
        if not port:
            await server.stop(None)
            raise ReceiverStartError(f"{self.name}: cannot bind {endpoint}: {reason}")
        await server.start()
        return server, port

    async def stop(self) -> None:
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        self._port = None
        if thread is not None:
            if server is not None:
                await thread.run(server.stop(grace=1.0))
            await thread.close()

    def _handler(
        self, signal: str
    ) -> Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]:
        async def export(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            self.counts["requests"] += 1
            metadata = dict(context.invocation_metadata() or ())
            if not self.edge.authorized(str(metadata.get("authorization", "")) or None):
                self.edge.refuse(Refusal.TOKEN)
                message = f"{self.name}: {self.edge.token_message()}"
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
            try:
                redactor = self._sink.redactor if self._sink is not None else None
                decoded = otlp_codec.decode(signal, request, redactor=redactor)
                rejected, message = await self._offer(decoded)
            except CollectorError as exc:
                code = grpc_code(exc)
                self.counts[code.name.lower()] += 1
                await context.abort(code, f"{self.name}: {exc}")
            self.counts["accepted_requests"] += 1
            return otlp_codec.encode_response(signal, rejected, message, as_json=False)

        return export

    async def _offer(self, decoded: otlp_codec.Decoded) -> tuple[int, str]:
        """Offer on the daemon's loop, where the pipeline lives (decoding was done here)."""
        if self._home is None:
            raise RuntimeError("receiver used before start()")
        return await call_on(self._home, otlp_codec.offer, self._sink, decoded)


def _probe_bind(endpoint: Endpoint) -> None:
    """Bind the endpoint once with a plain socket, so a port in use is reported with its
    errno in our words, instead of gRPC core's log line and a hint about its verbosity.
    (gRPC binds it again right after; losing that race still fails cleanly.)"""
    family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((endpoint.host.strip("[]"), endpoint.port))
