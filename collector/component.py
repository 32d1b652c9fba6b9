"""What a component is, and which components exist.

Receivers push into a ``Sink``; exporters read a ``StoreView``. The registry names each
component's class by import path, so ``collector`` never imports ``receivers`` or
``exporters`` statically and adding a component is a module plus one entry here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from collector.model import DropReason, Record, SpanBatch

if TYPE_CHECKING:
    from collector.config import Config, Endpoint
    from collector.edge import EdgePolicy
    from collector.redact import Redactor

__all__ = [
    "API_SERVER",
    "LISTENING_RECEIVERS",
    "MCP_HTTP_PATH",
    "MCP_SERVER",
    "NATIVE_INTAKE_ROUTES",
    "PROCESSORS",
    "RECEIVERS",
    "LineSource",
    "Receiver",
    "Sink",
    "build_receiver",
    "check_components",
    "receiver_type",
    "resolve",
]

RECEIVERS: dict[str, str] = {
    "otlp": "receivers.otlp:OtlpReceiver",
    "filelog": "receivers.file_tail:FileLogReceiver",
    "sshlog": "receivers.ssh_tail:SshLogReceiver",
}
# Receivers that listen on ports: built with the daemon's ``EdgePolicy`` (``edge=``).
LISTENING_RECEIVERS = frozenset(("otlp",))
PROCESSORS: tuple[str, ...] = ("redaction",)
# The daemon's own HTTP server and the native event intake it mounts.
API_SERVER = "exporters.http_api:HttpApi"
NATIVE_INTAKE_ROUTES = "receivers.native:routes"
# The MCP server module: build_server, serve_stdio, LocalTools, DaemonTools.
MCP_SERVER = "exporters.mcp_server"
# Where the API server serves the same tools over MCP's streamable HTTP transport.
MCP_HTTP_PATH = "/mcp"


class LineSource(Protocol):
    """Turns one source's plain log lines into records (``receivers.log_records.LogLines``)."""

    def records(
        self, lines: Sequence[str], *, now_ns: int | None = None, last: bool = True
    ) -> list[Record]:
        """Records for the next lines of one offer (``last``: no more follow in it);
        ``now_ns`` is the time of lines without their own. At most ``len(lines) + 1``
        records: a source that groups multi-line records may hand over one it held."""
        ...


class Sink(Protocol):
    """Where receivers put what they decoded. No method blocks."""

    @property
    def redactor(self) -> Redactor | None:
        """Receivers that keep data encoded (spans) redact it with this as they decode;
        the sink redacts everything else before storing it."""
        ...

    def lane(self, receiver: str) -> Sink:
        """This sink as receiver ``receiver`` offers to it: its own share of the queue,
        whoever else floods, and its own counts (a receiver with parts gives each one)."""
        ...

    def offer_spans(self, batch: SpanBatch) -> int:
        """Accept the whole batch and return its size, or raise ``QueueFullError``.
        The caller must not touch ``batch`` afterwards."""
        ...

    def offer_records(self, records: Sequence[Record]) -> int:
        """Accept all records, set each one's ``id``, and return how many; or raise
        ``QueueFullError``."""
        ...

    def offer_lines(
        self, source: LineSource, lines: Sequence[str], *, observed_ns: int | None = None
    ) -> int:
        """Accept plain log lines, to be parsed by ``source`` off the producer's path, and
        return how many; or raise ``QueueFullError``. ``observed_ns`` (default: now) is when
        they were captured. The caller must not change ``lines`` afterwards. A list entry
        may be a record the caller grouped already; the pipeline counts its lines."""
        ...

    def offer_metrics(self, data_points: int) -> int:
        """Count accepted metric data points (they are not stored yet)."""
        ...

    def count_dropped(self, signal: str, reason: DropReason, count: int) -> None:
        """Count items a receiver refused, e.g. spans with malformed ids."""
        ...


class Receiver(Protocol):
    """Brings data in. Built from its config dataclass: ``cls(config, name=...)``."""

    name: str

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        """(label, endpoint) pairs this receiver will bind, for the port-clash check."""
        ...

    def bound(self) -> dict[str, int]:
        """Label -> the port actually bound; empty until started."""
        ...

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per part (e.g. ``otlp/grpc``, ``filelog/app``): at least ``status`` (running,
        stopped, reconnecting, ...) and ``counts``; anything else worth showing in
        ``/daemon/status`` (files and their progress, a circuit breaker's state)."""
        ...

    async def start(self, sink: Sink) -> None:
        """Return once bound; raise ``ReceiverStartError`` otherwise."""
        ...

    async def stop(self) -> None:
        """Idempotent and safe without ``start()``; stops accepting and cancels own tasks."""
        ...


def resolve(path: str) -> Any:
    """Import ``module:attribute``."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def receiver_type(name: str) -> str:
    """Config keys may name instances, as in the Collector: ``filelog/auth`` is a filelog."""
    return name.partition("/")[0]


def _receiver_class(name: str) -> Any:
    return resolve(RECEIVERS[receiver_type(name)])


def build_receiver(name: str, raw: Any, *, edge: EdgePolicy) -> Receiver:
    """Build receiver ``name`` from its raw config section (already checked by the loader);
    one that listens serves only what ``edge`` allows."""
    from collector.config import load_section

    cls = _receiver_class(name)
    errors: list[str] = []
    config = load_section(cls.config_class, raw, f"receivers.{name}", errors)
    assert config is not None and not errors, errors
    listening = receiver_type(name) in LISTENING_RECEIVERS
    receiver: Receiver = cls(config, name=name, edge=edge) if listening else cls(config, name=name)
    return receiver


def check_components(config: Config, errors: list[str]) -> None:
    """Type every enabled component's section and refuse two components on one port."""
    from collector.config import load_section

    claimed: dict[tuple[str, int], str] = {}

    def claim(label: str, endpoint: Endpoint) -> None:
        if endpoint.port == 0:
            return
        key = (endpoint.host, endpoint.port)
        if key in claimed:
            errors.append(f"{label}: port {endpoint.port} is already used by {claimed[key]}")
        else:
            claimed[key] = label

    claim("service.api.endpoint", config.service.api.endpoint)
    for name in config.enabled_receivers():
        cls = _receiver_class(name)
        before = len(errors)
        path = f"receivers.{name}"
        section = load_section(cls.config_class, config.receivers.get(name), path, errors)
        if section is None or len(errors) > before:
            continue
        for label, endpoint in cls(section, name=name).endpoints():
            claim(label, endpoint)
