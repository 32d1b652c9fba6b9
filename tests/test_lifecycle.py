"""Every receiver and server: stop without start, restart on the same port, stop twice;
and every component in the table: stop without start, start, stop twice, start again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.config import ApiConfig, Endpoint, QueueConfig, StoreConfig, load_section
from collector.daemon import Daemon
from collector.edge import EdgePolicy
from collector.pipeline import Pipeline
from collector.store import Store
from exporters.http_api import HttpApi
from gasoline.components import COMPONENTS
from receivers.http_site import api_site
from receivers.otlp_grpc import OtlpGrpcConfig, OtlpGrpcReceiver
from receivers.otlp_http import OtlpHttpConfig, OtlpHttpReceiver
from tests.conftest import make_config

ANY_PORT = Endpoint("127.0.0.1", 0)


def _grpc(port: int) -> Any:
    return OtlpGrpcReceiver(OtlpGrpcConfig(endpoint=Endpoint("127.0.0.1", port)))


def _http(port: int) -> Any:
    return OtlpHttpReceiver(OtlpHttpConfig(endpoint=Endpoint("127.0.0.1", port)))


async def _no_tools(name: str, args: dict[str, Any]) -> dict[str, Any]:
    return {}


def _api(port: int) -> Any:
    config, edge = ApiConfig(endpoint=Endpoint("127.0.0.1", port)), EdgePolicy()
    site = api_site(config, edge)
    return HttpApi(
        config, site=site, store=Store(StoreConfig()), status=dict, tools=_no_tools, edge=edge
    )


def _port(component: Any) -> int:
    port = (
        component.port if isinstance(component, HttpApi) else next(iter(component.bound().values()))
    )
    assert isinstance(port, int)
    return port


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


# A config for every receiver type in the component table: a new one must be added here.
SAMPLES: dict[str, dict[str, Any]] = {
    "otlp": {
        "protocols": {
            "grpc": {"endpoint": "127.0.0.1:0"},
            "http": {"endpoint": "127.0.0.1:0"},
        }
    },
    "filelog": {"include": ["{tmp}/*.log"]},
    "sshlog": {"host": "127.0.0.1", "port": 9, "user": "nobody", "path": "/var/log/app.log"},
    "gitwatch": {"repositories": ["{tmp}"]},
}


def test_every_receiver_in_the_table_has_a_sample() -> None:
    assert set(SAMPLES) == set(COMPONENTS.receivers)


@pytest.mark.parametrize("kind", sorted(SAMPLES))
async def test_lifecycle_of_every_receiver_in_the_table(kind: str, tmp_path: Path) -> None:
    factory = COMPONENTS.receivers[kind]
    raw = json.loads(json.dumps(SAMPLES[kind]).replace("{tmp}", str(tmp_path)))
    errors: list[str] = []
    config = load_section(factory.config_class, raw, f"receivers.{kind}", errors)
    assert errors == [] and config is not None
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    edge = EdgePolicy()
    await factory.build(config, kind, edge).stop()  # safe without start
    first = factory.build(config, kind, edge)
    assert first.endpoints() == factory.endpoints(config, kind)  # the load-time check's view
    await first.start(pipeline.lane(kind))
    assert all(part["status"] != "stopped" for part in first.stats().values())
    await first.stop()
    await first.stop()  # idempotent
    assert all(part["status"] == "stopped" for part in first.stats().values())
    again = factory.build(config, kind, edge)
    await again.start(pipeline.lane(kind))
    await again.stop()


async def test_lifecycle_of_the_api_server_and_its_intake() -> None:
    pipeline = Pipeline(Store(StoreConfig()), queue=QueueConfig(), redactor=None)
    parts = COMPONENTS.api_server(
        ApiConfig(endpoint=ANY_PORT),
        store=pipeline.store,
        status=dict,
        tools=_no_tools,
        edge=EdgePolicy(),
    )
    api, intake = parts.server, parts.intake
    await api.stop()
    await intake.stop()  # both safe without start
    await intake.start(pipeline.lane(intake.name))
    await api.start()
    assert api.port and intake.stats()["native"]["status"] == "running"
    await api.stop()
    await intake.stop()
    await intake.stop()
    assert api.port is None and intake.stats()["native"]["status"] == "stopped"


async def test_lifecycle_of_every_service_the_daemon_runs(tmp_path: Path) -> None:
    """The API server, the GC policy and TracePulse, as the daemon builds them from the table."""
    services = Daemon(make_config(tmp_path), COMPONENTS).services
    assert {service.name for service in services} == {"api", "web", "gc", "pulse"}
    for service in services:
        await service.stop()  # safe without start
        assert service.stats()["status"] == "stopped", service.name
        await service.start()
        assert service.stats()["status"] == "running", service.name
        await service.stop()
        await service.stop()  # idempotent
        assert service.stats()["status"] == "stopped", service.name
        await service.start()  # and again
        await service.stop()
