"""Config loading: defaults, merging, flags, and errors that name the key."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest

from collector.config import load_config
from collector.daemon import Daemon
from collector.errors import ConfigError, ReceiverStartError
from collector.tools import ToolInputError
from gasoline.components import COMPONENTS
from tests.conftest import make_config

EXAMPLES = Path(__file__).parent.parent / "otel-config-examples"


def test_embedded_defaults_bind_localhost_standard_ports(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert config.enabled_receivers() == ["otlp"]
    assert float(config.service.store.ttl) == 24 * 3600
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    config = load_config(path, components=COMPONENTS)
    assert str(config.service.api.endpoint) == "127.0.0.1:7890"
    assert str(config.receivers["otlp"].protocols.grpc.endpoint) == "127.0.0.1:4317"


def test_user_file_merges_over_defaults_and_flags_override_ports(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("service:\n  store:\n    ttl: 90m\n    max_spans: 10\n")
    config = load_config(path, components=COMPONENTS, ports={"grpc": 5317, "api": 0})
    assert float(config.service.store.ttl) == 5400 and config.service.store.max_spans == 10
    assert config.service.store.max_traces == 200_000
    assert str(config.receivers["otlp"].protocols.grpc.endpoint) == "127.0.0.1:5317"
    assert config.service.api.endpoint.port == 0


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("gasoline*.yaml")), ids=lambda p: p.name)
def test_every_gasoline_example_loads(example: Path) -> None:
    config = load_config(example, components=COMPONENTS)
    assert config.source == str(example)


INVALID = [
    (
        "receivers: {otlp: {protocols: {http: {endpoint: '127.0.0.1:70000'}}}}",
        "receivers.otlp.protocols.http.endpoint: '70000' is not a port (expected 0-65535)",
    ),
    (
        "receivers: {otlp: {protocols: {grpc: {endpoint: nonsense}}}}",
        "receivers.otlp.protocols.grpc.endpoint: 'nonsense' is not an endpoint (expected host:port)",
    ),
    (
        "receivers: {otlp: {protocols: {grpc: {max_recv_msg_size_mib: big}}}}",
        "receivers.otlp.protocols.grpc.max_recv_msg_size_mib: expected an integer, got 'big'",
    ),
    (
        "receivers: {otlp: {protocols: {grpc: {colour: red}}}}",
        "receivers.otlp.protocols.grpc.colour: unknown key (allowed: endpoint, max_recv_msg_size_mib)",
    ),
    (
        "receivers: {kafka: {}}",
        "receivers.kafka: unknown receiver (known: otlp, filelog, sshlog, gitwatch)",
    ),
    (
        "service: {store: {ttl: forever}}",
        "service.store.ttl: 'forever' is not a duration (expected e.g. 30s, 15m, 24h)",
    ),
    ("service: {store: {max_spans: 0}}", "service.store.max_spans: 0 must be greater than 0"),
    ("service: {store: {max_bytes: 0}}", "service.store.max_bytes: 0 must be greater than 0"),
    (
        "service: {store: {max_value_chars: -1}}",
        "service.store.max_value_chars: -1 must be greater than 0",
    ),
    (
        "service: {store: {max_bytes: 1000, max_record_bytes: 2000}}",
        "service.store.max_record_bytes: 2000 is more than service.store.max_bytes (1000)",
    ),
    (
        "service: {queue: {when_full: block_forever}}",
        "service.queue.when_full: 'block_forever' must be 'drop_newest'",
    ),
    (
        "service: {pipelines: {traces: {receivers: [jaeger]}}}",
        "service.pipelines.traces.receivers[0]: 'jaeger' is not defined under receivers",
    ),
    (
        "service: {pipelines: {profiles: {receivers: [otlp]}}}",
        "service.pipelines.profiles: unknown signal (expected traces, logs or metrics)",
    ),
    (
        "processors: {redaction: {key_patterns: ['(']}}",
        "processors.redaction.key_patterns[0]: '(' is not a regex",
    ),
    ("processors: {batch: {}}", "processors.batch: unknown processor (known: redaction)"),
    (
        "service: {pipelines: {logs: {processors: []}}}",
        "service.pipelines.logs.processors: redaction is listed for traces but not here",
    ),
    ("exporters: {clickhouse: {}}", "exporters.clickhouse: unknown exporter"),
    (
        "recievers: {}",
        "recievers: unknown key (allowed: receivers, processors, exporters, service, interact, backend, pulse)",
    ),
    (
        "service: {api: {endpoint: '127.0.0.1:4317'}}",
        "receivers.otlp.protocols.grpc.endpoint: port 4317 is already used by service.api.endpoint",
    ),
    ("- just\n- a list\n", "expected a mapping at the top level, got a list"),
    ("receivers: [otlp", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), INVALID, ids=[m[:40] for _, m in INVALID])
def test_invalid_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text))
    with pytest.raises(ConfigError) as info:
        load_config(path, components=COMPONENTS)
    assert message in str(info.value)


async def test_redaction_runs_only_where_the_pipelines_list_it(tmp_path: Path) -> None:
    listed = tmp_path / "listed.yaml"
    listed.write_text("processors: {redaction: null}\n")
    assert (
        Daemon(load_config(listed, components=COMPONENTS), COMPONENTS).pipeline.redactor is not None
    )
    unlisted = tmp_path / "unlisted.yaml"
    unlisted.write_text(
        "service: {pipelines: {traces: {processors: []}, logs: {processors: []}}}\n"
    )
    daemon = Daemon(load_config(unlisted, components=COMPONENTS), COMPONENTS)
    assert daemon.pipeline.redactor is None
    with pytest.raises(ToolInputError, match="redaction is off"):
        await daemon.tools.run("configure", {"action": "redaction"})


@pytest.mark.parametrize("text", ["servce: {}\n", "receivers: [otlp\n"])
def test_config_errors_name_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, components=COMPONENTS)
    assert str(path) in str(info.value).splitlines()[0]
    assert "<unicode string>" not in str(info.value)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("service: {store: {max_spans: -1, max_traces: x}, api: {nope: 1}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, components=COMPONENTS)
    assert len(info.value.problems) == 3


async def test_port_in_use_fails_start_with_the_endpoint_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for key, label in (("grpc", "otlp/grpc"), ("http", "otlp/http"), ("api", "api")):
            ports = {"grpc": 0, "http": 0, "api": 0, key: port}
            path = tmp_path / "c.yaml"
            path.write_text("{}\n")
            daemon = Daemon(load_config(path, components=COMPONENTS, ports=ports), COMPONENTS)
            with pytest.raises(ReceiverStartError) as info:
                await daemon.start()
            message = str(info.value)
            assert message.startswith(
                f"{label}: cannot bind 127.0.0.1:{port}: address already in use"
            )
            assert "another gasoline may be running" in message
            assert daemon.ports == {}
