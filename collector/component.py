"""What a component is, and the typed table that says which ones exist.

Receivers push into a ``Sink``; the API server and the MCP server read through the
daemon's tools. ``Components`` is the one table of them: ``collector`` only declares its
shape, and the distribution package ``gasoline`` fills it in (``gasoline/components.py``),
the way the OTel Collector's builder writes ``components.go``. So ``collector`` never
imports ``receivers`` or ``exporters``, and every seam stays visible to grep,
jump-to-definition and mypy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from collector.model import DropReason, Record, SpanBatch, SpanDetailDecoder

if TYPE_CHECKING:
    from collector.config.sections import ApiConfig, PulseConfig, PulseServiceConfig
    from collector.config.values import Endpoint
    from collector.edge import EdgePolicy
    from collector.pulse import Notifier
    from collector.redact import Redactor
    from collector.store import Store

__all__ = [
    "MCP_HTTP_PATH",
    "ApiParts",
    "ApiServer",
    "ApiServerFactory",
    "Components",
    "LineSource",
    "McpStdio",
    "Receiver",
    "ReceiverFactory",
    "Service",
    "Sink",
    "ToolRunner",
    "binds_nothing",
    "receiver_type",
]

# Where the API server serves the same tools over MCP's streamable HTTP transport.
MCP_HTTP_PATH = "/mcp"

C = TypeVar("C")
ToolRunner = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


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
        self,
        source: LineSource,
        lines: Sequence[str],
        *,
        observed_ns: int | None = None,
        kept_on_refusal: bool = False,
    ) -> int:
        """Accept plain log lines, to be parsed by ``source`` off the producer's path, and
        return how many; or raise ``QueueFullError``. ``observed_ns`` (default: now) is when
        they were captured. The caller must not change ``lines`` afterwards. A list entry
        may be a record the caller grouped already; the pipeline counts its lines. With
        ``kept_on_refusal`` the caller keeps refused lines and offers them again (a tailer
        waiting for room), so a refusal is not counted as a drop: it counts its retries."""
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


class Service(Protocol):
    """What the daemon runs beside its receivers (the API server, the GC policy): started
    after the receivers, stopped before them, reported under ``services`` in
    ``/daemon/status``."""

    name: str

    async def start(self) -> None:
        """Return once running (bound, for a server); raise ``ReceiverStartError`` if
        it cannot."""
        ...

    async def stop(self) -> None:
        """Idempotent and safe without ``start()``."""
        ...

    def stats(self) -> dict[str, Any]:
        """At least ``status`` (running, stopped); anything else worth showing."""
        ...


class ApiServer(Service, Protocol):
    """The daemon's HTTP server: query API, tools, MCP over HTTP, and the routes of the
    native intake."""

    port: int | None


@dataclass(frozen=True, slots=True)
class ApiParts:
    """What serves on the API port: the server, the native intake (a receiver the daemon
    starts, stops and reports like the others) and what else is mounted on its site (the
    web page), run as services after the server."""

    server: ApiServer
    intake: Receiver
    services: tuple[Service, ...] = ()


class ApiServerFactory(Protocol):
    def __call__(
        self,
        config: ApiConfig,
        *,
        store: Store,
        status: Callable[[], dict[str, Any]],
        tools: ToolRunner,
        edge: EdgePolicy,
        declared: Mapping[str, PulseServiceConfig] | None = None,
    ) -> ApiParts:
        """The API server for ``config`` and what is served on its site; ``declared`` is
        TracePulse's system map, which the page's service map shows."""
        ...


class McpStdio(Protocol):
    """MCP over stdio (``gasoline mcp``), loaded on first use: the MCP library is heavy."""

    async def serve_local(self, tools: ToolRunner, *, version: str) -> None:
        """Serve ``tools`` of the daemon embedded in this process until stdin closes."""
        ...

    async def serve_remote(self, url: str, *, version: str) -> None:
        """Serve the tools of the daemon at ``url`` until stdin closes."""
        ...


def binds_nothing(config: object, name: str) -> list[tuple[str, Endpoint]]:
    """``ReceiverFactory.endpoints`` of a receiver that listens on no port."""
    return []


@dataclass(frozen=True, slots=True)
class ReceiverFactory(Generic[C]):
    """One receiver type: its config dataclass, how to build it, what it will bind.

    ``endpoints(config, name)`` lists (label, endpoint) pairs for the port-clash check at
    load, without building the receiver. ``build`` gets the daemon's ``EdgePolicy``, which
    a receiver that listens applies to every request.
    """

    config_class: type[C]
    build: Callable[[C, str, EdgePolicy], Receiver]
    endpoints: Callable[[C, str], list[tuple[str, Endpoint]]] = binds_nothing


@dataclass(frozen=True, slots=True)
class Components:
    """Every component the daemon can run; ``gasoline.components.COMPONENTS`` is the one."""

    receivers: Mapping[str, ReceiverFactory[Any]]
    processors: tuple[str, ...]
    api_server: ApiServerFactory
    mcp_stdio: Callable[[], McpStdio]
    # Where TracePulse delivers reports (Slack, e-mail), built from ``pulse``.
    notifiers: Callable[[PulseConfig], list[Notifier]] = lambda config: []
    # Reads back the span detail the durable history kept (the OTLP codec's).
    span_detail: SpanDetailDecoder | None = None


def receiver_type(name: str) -> str:
    """Config keys may name instances, as in the Collector: ``filelog/auth`` is a filelog."""
    return name.partition("/")[0]
