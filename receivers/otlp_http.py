"""OTLP/HTTP receiver: ``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics`` on :4318.

Protobuf and JSON bodies, gzip or deflate, answered in the request's content type.
The size limit applies after decompression, so a small gzip bomb gets a 413 without
being inflated past the limit. Bodies are decoded on a thread of the receiver's own, one
at a time: however many connections send, the daemon's loop stays free to turn (the
gRPC receiver offers through it) and the decoding gets the receiver's share of the CPU.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from aiohttp import web

from collector.component import Sink
from collector.config import CorsConfig, Endpoint
from collector.edge import EdgePolicy
from collector.errors import CollectorError, DecodeError
from receivers import otlp_codec
from receivers.http_site import HttpSite
from receivers.wire_errors import encode_status, http_status, retry_after

__all__ = ["OtlpHttpConfig", "OtlpHttpReceiver"]

_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"


@dataclass(slots=True)
class OtlpHttpConfig:
    endpoint: Endpoint = Endpoint("127.0.0.1", 4318)
    max_request_body_size: int = 20 * 1024 * 1024
    cors: CorsConfig = field(default_factory=CorsConfig)

    def validate(self, path: str) -> list[str]:
        if self.max_request_body_size <= 0:
            return [f"{path}.max_request_body_size: must be greater than 0"]
        return []


class _TooLarge(Exception):
    pass


class OtlpHttpReceiver:
    """Serves the three OTLP/HTTP export paths; one aiohttp site on its endpoint, behind
    the daemon's edge (Host, token, Origin: ``receivers.http_site``)."""

    def __init__(
        self,
        config: OtlpHttpConfig,
        *,
        name: str = "otlp/http",
        path: str = "receivers.otlp.protocols.http",
        edge: EdgePolicy | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.path = path
        self.edge = edge if edge is not None else EdgePolicy()
        self.counts: Counter[str] = Counter()
        self._site: HttpSite | None = None
        self._port: int | None = None
        self._sink: Sink | None = None
        self._decoder: ThreadPoolExecutor | None = None

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return [(f"{self.path}.endpoint", self.config.endpoint)]

    def bound(self) -> dict[str, int]:
        return {"http": self._port} if self._port is not None else {}

    async def start(self, sink: Sink) -> None:
        if self._site is not None:
            return
        self._sink = sink
        site = HttpSite(
            self.config.endpoint,
            name=self.name,
            edge=self.edge,
            cors=self.config.cors,
            where=f"{self.path}.cors",
            max_body_size=self.config.max_request_body_size,
            auto_decompress=False,
        )
        site.mount(
            web.post(path, self._handler(signal))
            for path, signal in (
                ("/v1/traces", "traces"),
                ("/v1/logs", "logs"),
                ("/v1/metrics", "metrics"),
            )
        )
        await site.start()
        self._site = site
        self._port = site.port
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix=f"gasoline-{self.name}")

    async def stop(self) -> None:
        site, self._site = self._site, None
        self._port = None
        if site is not None:
            await site.stop()
        decoder, self._decoder = self._decoder, None
        if decoder is not None:
            await asyncio.to_thread(decoder.shutdown)  # after the body it is decoding

    def _handler(self, signal: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            self.counts["requests"] += 1
            media_type = request.content_type
            as_json = media_type == _JSON
            if media_type not in (_PROTOBUF, _JSON):
                return self._error(
                    415,
                    f"unsupported content type {media_type!r}: send {_PROTOBUF} or {_JSON}",
                    as_json=True,
                )
            encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("identity", "gzip", "deflate", ""):
                return self._error(
                    415,
                    f"unsupported content encoding {encoding!r}: send gzip, deflate or none",
                    as_json=as_json,
                )
            limit = self.config.max_request_body_size
            try:
                body = _decompress(await request.read(), encoding, limit)
            except (web.HTTPRequestEntityTooLarge, _TooLarge):
                return self._error(
                    413, f"request body exceeds {limit} bytes after decompression", as_json=as_json
                )
            except DecodeError as exc:
                return self._error(400, str(exc), as_json=as_json)
            try:
                redactor = self._sink.redactor if self._sink is not None else None
                decode = partial(
                    otlp_codec.decode, signal, body, is_json=as_json, redactor=redactor
                )
                decoded = await asyncio.get_running_loop().run_in_executor(self._decoder, decode)
                rejected, message = otlp_codec.offer(self._sink, decoded)
            except CollectorError as exc:
                status = http_status(exc)
                delay = retry_after(exc)
                headers = {"Retry-After": str(delay)} if delay is not None else None
                return self._error(status, str(exc), as_json=as_json, headers=headers)
            self.counts["accepted_requests"] += 1
            return web.Response(
                body=otlp_codec.encode_response(signal, rejected, message, as_json=as_json),
                content_type=media_type,
            )

        return handle

    def _error(
        self, status: int, message: str, *, as_json: bool, headers: dict[str, str] | None = None
    ) -> web.Response:
        self.counts[f"http_{status}"] += 1
        return web.Response(
            status=status,
            body=encode_status(status, f"{self.name}: {message}", as_json=as_json),
            content_type=_JSON if as_json else _PROTOBUF,
            headers=headers,
        )


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("identity", ""):
        return body
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise DecodeError(f"body is not valid {encoding} data: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise _TooLarge
    if not inflater.eof:
        raise DecodeError(f"body is truncated {encoding} data")
    return out
