"""The one static table of components this build runs, as the OTel Collector's builder
writes ``components.go``.

Adding a receiver means a module under ``receivers/`` with a config dataclass and a class
that implements ``collector.component.Receiver``, plus one line in ``RECEIVERS`` below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from collector.component import (
    ApiParts,
    Components,
    McpStdio,
    Receiver,
    ReceiverFactory,
    ToolRunner,
)
from collector.config import ApiConfig
from collector.config.sections import PulseServiceConfig
from collector.edge import EdgePolicy
from collector.store import Store
from exporters.http_api import HttpApi
from exporters.pulse_delivery import notifiers
from exporters.web_page import WebPage
from receivers.file_tail import FileLogConfig, FileLogReceiver
from receivers.git_watch import GitWatchConfig, GitWatchReceiver
from receivers.http_guard import origin_matcher
from receivers.http_site import api_site
from receivers.native import NativeReceiver
from receivers.otlp import OtlpConfig, OtlpReceiver, otlp_endpoints
from receivers.otlp_codec import restore_span_detail
from receivers.ssh_tail import SshLogConfig

__all__ = ["COMPONENTS", "RECEIVERS"]

RECEIVERS: dict[str, ReceiverFactory[Any]] = {
    "otlp": ReceiverFactory(
        OtlpConfig,
        lambda config, name, edge: OtlpReceiver(config, name=name, edge=edge),
        otlp_endpoints,
    ),
    "filelog": ReceiverFactory(
        FileLogConfig, lambda config, name, edge: FileLogReceiver(config, name=name)
    ),
    "sshlog": ReceiverFactory(SshLogConfig, lambda config, name, edge: sshlog(config, name)),
    "gitwatch": ReceiverFactory(
        GitWatchConfig, lambda config, name, edge: GitWatchReceiver(config, name=name)
    ),
}


def sshlog(config: SshLogConfig, name: str) -> Receiver:
    """asyncssh (and cryptography) load only when an ``sshlog`` receiver is configured."""
    from receivers.ssh_tail.receiver import SshLogReceiver

    return SshLogReceiver(config, name=name)


def api_server(
    config: ApiConfig,
    *,
    store: Store,
    status: Callable[[], dict[str, Any]],
    tools: ToolRunner,
    edge: EdgePolicy,
    declared: Mapping[str, PulseServiceConfig] | None = None,
) -> ApiParts:
    """The HTTP API, and the native event intake and the web page mounted on the same
    site (port); ``declared``: TracePulse's system map, shown on the page's service map."""
    site = api_site(config, edge)
    intake = NativeReceiver(max_batch_events=config.max_batch_events)
    site.mount(intake.routes())
    page = WebPage(
        config,
        site=site,
        store=store,
        edge=edge,
        readers=origin_matcher(config.read_origins),
        declared=declared,
    )
    api = HttpApi(config, site=site, store=store, status=status, tools=tools, edge=edge)
    return ApiParts(api, intake, (page,))


def mcp_stdio() -> McpStdio:
    """MCP over stdio, imported on first use: the MCP library is heavy."""
    import exporters.mcp_stdio

    return exporters.mcp_stdio


COMPONENTS = Components(
    receivers=RECEIVERS,
    processors=("redaction",),
    api_server=api_server,
    mcp_stdio=mcp_stdio,
    notifiers=notifiers,
    span_detail=restore_span_detail,
)
