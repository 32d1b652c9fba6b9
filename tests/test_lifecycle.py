"""Every receiver and server: stop without start, restart on the same port, stop twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from collector.config import ApiConfig, Endpoint, QueueConfig, StoreConfig
from collector.pipeline import Pipeline
from collector.store import Store
from exporters.http_api import HttpApi
from receivers.otlp_grpc import OtlpGrpcConfig, OtlpGrpcReceiver
from receivers.otlp_http import OtlpHttpConfig, OtlpHttpReceiver

ANY_PORT = Endpoint("127.0.0.1", 0)


def _grpc(port: int) -> Any:
    return OtlpGrpcReceiver(OtlpGrpcConfig(endpoint=Endpoint("127.0.0.1", port)))


def _http(port: int) -> Any:
    return OtlpHttpReceiver(OtlpHttpConfig(endpoint=Endpoint("127.0.0.1", port)))


async def _no_tools(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {}


def _api(port: int) -> Any:
    return HttpApi(
        ApiConfig(endpoint=Endpoint("127.0.0.1", port)),
        store=Store(StoreConfig()),
        status=dict,
        tools=_no_tools,
        extra_routes=[],
    )


def _port(component: Any) -> int:
    return int(
        component.port if isinstance(component, HttpApi) else next(iter(component.bound().values()))
    )


@pytest.mark.parametrize("make", [_grpc, _http, _api], ids=["otlp_grpc", "otlp_http", "api"])
async def test_lifecycle(make: Callable[[int], Any]) -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)

    async def start(component: Any) -> None:
        await (component.start() if isinstance(component, HttpApi) else component.start(pipeline))

    await make(0).stop()  # safe without start
    first = make(0)
    await start(first)
    port = _port(first)
    await first.stop()
    await first.stop()  # idempotent
    again = make(port)  # the port is free again right away
    await start(again)
    assert _port(again) == port
    await again.stop()
