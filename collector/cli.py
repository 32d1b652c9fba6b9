"""``gasoline``: serve the daemon, and look at what it holds from a terminal."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import os
import shutil
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from collector.component import MCP_HTTP_PATH, Components
from collector.config import load_config
from collector.daemon import VERSION, Daemon
from collector.edge import client_headers, daemon_url
from collector.errors import CollectorError, ReceiverStartError
from collector.render import render_status, render_timeline, render_trace, render_traces

__all__ = ["main"]

_DEFAULT_URL = "http://127.0.0.1:7890"


def main(
    components: Callable[[], Components],
    argv: Sequence[str] | None = None,
    *,
    extension_dir: Callable[[], Path] | None = None,
) -> int:
    """The ``gasoline`` command. ``components()`` gives the component table; it is called
    only by the commands that run a daemon, so ``gasoline status`` loads no receiver.
    ``extension_dir()``, when given, finds the browser extension the distribution ships."""
    parser = _parser(components, extension_dir)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except CollectorError as exc:
        print(f"gasoline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser(
    components: Callable[[], Components], extension_dir: Callable[[], Path] | None = None
) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gasoline",
        description="Local OpenTelemetry collector bridge: receives OTLP traces and logs, "
        "plain logs and browser events, and shows what happened, in what order, and why.",
        epilog="gasoline test CMD [ARGS...] runs a test command as one trace, each test case "
        "a span (gasoline test --help).",
    )
    parser.add_argument("--version", action="version", version=f"gasoline {VERSION}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the daemon (OTLP gRPC :4317, OTLP HTTP :4318, API :7890)",
        description="Run the daemon in the foreground until Ctrl-C. Uses the embedded "
        "defaults, merged with ~/.gasoline/config.yaml or --config. Port 0 picks a free "
        "port; the bound ports are printed.",
    )
    serve.add_argument("--config", type=Path, metavar="FILE", help="config file (YAML)")
    serve.add_argument("--grpc-port", type=int, metavar="N", help="OTLP/gRPC port (4317)")
    serve.add_argument("--http-port", type=int, metavar="N", help="OTLP/HTTP port (4318)")
    serve.add_argument("--api-port", type=int, metavar="N", help="native API port (7890)")
    serve.set_defaults(run=functools.partial(_serve, components=components))

    mcp = commands.add_parser(
        "mcp",
        help="MCP server on stdio for an AI agent",
        description="Serve the observe, analyze, configure, generate and interact tools over "
        "MCP on stdio, for "
        'an agent\'s MCP config: {"command": "gasoline", "args": ["mcp"]}. If a daemon '
        "answers at --url (or $GASOLINE_URL, or the configured API endpoint), its data is "
        "served and any number of agents share it; otherwise this process runs the "
        "receivers itself, on the configured ports. Logs go to stderr only.",
    )
    mcp.add_argument("--config", type=Path, metavar="FILE", help="config file (YAML)")
    mcp.add_argument("--url", help="a running daemon's API URL to bridge to")
    mcp.set_defaults(run=functools.partial(_mcp, components=components))

    url_help = f"daemon API URL (default: $GASOLINE_URL or {_DEFAULT_URL})"
    status = commands.add_parser(
        "status",
        help="show the daemon's ports, counts, drops and memory",
        description="Show the running daemon's receivers, ports, stored counts, drops, "
        "evictions and memory. Spans, records and plain lines are counted apart, each as a "
        "sum that holds: accepted = stored + queued + dropped + evicted (lines: parsed "
        "instead of stored and evicted; the records made of them are counted under records).",
    )
    status.add_argument("--url", help=url_help)
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(run=_status)

    traces = commands.add_parser(
        "traces",
        help="list the newest traces",
        description="List the newest traces: id, duration, span and error counts, root span.",
    )
    traces.add_argument("--url", help=url_help)
    traces.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    traces.add_argument("--json", action="store_true", help="print the raw JSON")
    traces.set_defaults(run=_traces)

    events = commands.add_parser(
        "timeline",
        help="show spans, logs and events merged, newest page, oldest first",
        description="The merged timeline (GET /buffers/timeline): one line per span, log "
        "record or event. Filters narrow it; --cursor pages back in time.",
    )
    events.add_argument("--url", help=url_help)
    for name, text in (
        ("service", "only this service"),
        ("source", "only this source (otlp, browser, backend, interact, ...)"),
        ("level", "at least this level (debug, info, warn, error, critical)"),
        ("text", "messages containing this (case-insensitive)"),
        ("trace-id", "only this trace"),
        ("since", "not before: ms since the epoch or ISO 8601"),
        ("cursor", "the cursor printed under the previous page"),
    ):
        events.add_argument(f"--{name}", help=text)
    events.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    events.add_argument("--json", action="store_true", help="print the raw JSON")
    events.set_defaults(run=_timeline)

    trace = commands.add_parser(
        "trace",
        help="show one trace as a span tree with timings",
        description="Show a trace as a tree: service, span name, duration, a bar for where "
        "it sits in time, errors marked; then the trace's log records and events.",
    )
    trace.add_argument(
        "trace_id", metavar="TRACE_ID", help="32 hex digits, or a unique prefix of 8 or more"
    )
    trace.add_argument("--url", help=url_help)
    trace.add_argument(
        "--limit", type=int, default=1000, help="spans per page (default 1000, up to 10000)"
    )
    trace.add_argument("--cursor", help="the next page: the cursor the last page printed")
    trace.add_argument("--json", action="store_true", help="print the raw JSON")
    trace.set_defaults(run=_trace)
    if extension_dir is not None:
        _add_extension_command(commands, extension_dir)
    return parser


def _add_extension_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    extension_dir: Callable[[], Path],
) -> None:
    extension = commands.add_parser(
        "extension",
        help="print the path of the browser extension to load unpacked",
        description="Print the directory of the browser extension installed with this "
        "package (in a source checkout, its extension/): load it with chrome://extensions "
        "-> Developer mode -> Load unpacked, or chromium --load-extension=PATH.",
    )

    def show(args: argparse.Namespace) -> int:
        path = extension_dir()
        if not (path / "manifest.json").is_file():
            print(f"gasoline: the browser extension is not installed at {path}", file=sys.stderr)
            return 1
        print(path)
        return 0

    extension.set_defaults(run=show)


def _serve(args: argparse.Namespace, *, components: Callable[[], Components]) -> int:
    ports = {
        key: value
        for key, value in (
            ("grpc", args.grpc_port),
            ("http", args.http_port),
            ("api", args.api_port),
        )
        if value is not None
    }
    for key, value in ports.items():
        if not 0 <= value <= 65535:
            print(f"gasoline: --{key}-port {value} is not a port (0-65535)", file=sys.stderr)
            return 2
    # Before the MCP SDK's own logging setup (a handler at INFO) can claim the root logger.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="gasoline: %(message)s")
    table = components()
    config = load_config(args.config, components=table, ports=ports)
    return asyncio.run(_run_daemon(Daemon(config, table)))


async def _run_daemon(daemon: Daemon) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await daemon.start()
    host = daemon.config.service.api.endpoint.host
    labels = {"grpc": "OTLP/gRPC ", "http": "OTLP/HTTP ", "api": "API       "}
    print(f"gasoline {VERSION} serving (config: {daemon.config.source})")
    for key, port in daemon.ports.items():
        scheme = "" if key == "grpc" else "http://"
        print(f"  {labels[key]} {scheme}{_host(daemon, key, host)}:{port}")
    if "api" in daemon.ports:
        print(f"  MCP (HTTP) http://{host}:{daemon.ports['api']}{MCP_HTTP_PATH}")
        page = f"http://{host}:{daemon.ports['api']}/"
        # With a token, a browser signs in once through the link (the token becomes a cookie).
        sign_in = "?token=<the token>" if daemon.edge.token_required else ""
        print(f"  Web page   {page}{sign_in}")
    history = daemon.store.history_stats()
    print(f"  History    {history.get('dir') if history['state'] == 'ok' else history['state']}")
    print("ready; Ctrl-C to stop", flush=True)
    await stop.wait()
    print("stopping", flush=True)
    await daemon.stop()
    return 0


def _mcp(args: argparse.Namespace, *, components: Callable[[], Components]) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="gasoline: %(message)s")
    table = components()
    config = load_config(args.config, components=table)
    explicit = _given_url(args)
    endpoint = config.service.api.endpoint
    url = explicit or f"http://{endpoint.host}:{endpoint.port}"
    if _is_daemon(url):
        print(f"gasoline mcp: serving the daemon at {url}", file=sys.stderr)
        asyncio.run(table.mcp_stdio().serve_remote(url, version=VERSION))
        return 0
    if explicit:
        print(f"gasoline mcp: no Gasoline daemon answers at {url}", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_serve_mcp_embedded(Daemon(config, table), table))
    except ReceiverStartError:
        # Another agent's `gasoline mcp` may have bound the ports a moment ago: share it.
        if not _is_daemon(url):
            raise
    print(f"gasoline mcp: serving the daemon at {url}", file=sys.stderr)
    asyncio.run(table.mcp_stdio().serve_remote(url, version=VERSION))
    return 0


def _is_daemon(url: str) -> bool:
    try:
        request = urllib.request.Request(f"{url}/daemon/status", headers=client_headers())
        with urllib.request.urlopen(request, timeout=1) as response:
            return "version" in json.load(response)
    except (OSError, ValueError):
        return False


async def _serve_mcp_embedded(daemon: Daemon, components: Components) -> int:
    mcp = components.mcp_stdio()
    await daemon.start()
    ports = ", ".join(f"{k} {v}" for k, v in daemon.ports.items())
    print(f"gasoline mcp: no daemon running; receivers started here ({ports})", file=sys.stderr)
    try:
        await mcp.serve_local(daemon.tools.run, version=VERSION)
    finally:
        await daemon.stop()
    return 0


def _host(daemon: Daemon, key: str, default: str) -> str:
    for receiver in daemon.receivers:
        for label, endpoint in receiver.endpoints():
            if label.endswith(f".{key}.endpoint"):
                return endpoint.host
    return default


def _given_url(args: argparse.Namespace) -> str | None:
    """The daemon URL from ``--url`` or ``GASOLINE_URL``, checked; None if neither is set."""
    for where, text in (("--url", args.url), ("GASOLINE_URL", os.environ.get("GASOLINE_URL"))):
        if text:
            try:
                return daemon_url(text)
            except ValueError as exc:
                raise CollectorError(f"{where}: {exc}") from None
    return None


def _get(args: argparse.Namespace, path: str) -> Any:
    base = _given_url(args) or _DEFAULT_URL
    url = base + path
    try:
        request = urllib.request.Request(url, headers=client_headers())
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        raise CollectorError(f"{message} (HTTP {exc.code} from {url})") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CollectorError(
            f"cannot reach the daemon at {base} ({reason}); start it with `gasoline serve`, "
            "or point --url / GASOLINE_URL at it"
        ) from None


def _status(args: argparse.Namespace) -> int:
    status = _get(args, "/daemon/status")
    print(json.dumps(status, indent=2) if args.json else render_status(status))
    return 0


def _traces(args: argparse.Namespace) -> int:
    answer = _get(args, f"/v1/traces?limit={args.limit}")
    print(json.dumps(answer, indent=2) if args.json else render_traces(answer["traces"]))
    return 0


def _timeline(args: argparse.Namespace) -> int:
    params = {
        "service": args.service,
        "source": args.source,
        "level": args.level,
        "text": args.text,
        "trace_id": args.trace_id,
        "since": args.since,
        "cursor": args.cursor,
        "limit": str(args.limit),
    }
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    answer = _get(args, f"/buffers/timeline?{query}")
    print(json.dumps(answer, indent=2) if args.json else render_timeline(answer))
    return 0


def _trace(args: argparse.Namespace) -> int:
    trace_id = urllib.parse.quote(args.trace_id.strip(), safe="")
    page = {"limit": str(args.limit), "cursor": args.cursor}
    query = urllib.parse.urlencode({k: v for k, v in page.items() if v is not None})
    doc = _get(args, f"/v1/traces/{trace_id}?{query}")
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        width = shutil.get_terminal_size((120, 40)).columns
        print(render_trace(doc, width=width, color=sys.stdout.isatty()))
    return 0
