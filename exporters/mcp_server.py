"""The MCP server: the five tools (observe, analyze, configure, generate, interact) for an
agent, over stdio.

Tools run on a ``ToolBackend``: in process against an embedded daemon, or forwarded to
a running daemon's ``POST /v1/tools/{name}``, so several agents share one daemon's data.
Arguments are validated against the schemas below by the SDK; what they mean is checked
by the toolbox, and either way the agent gets an error result saying what to change.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Any, Literal, Protocol

import aiohttp
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp.types import (
    INVALID_REQUEST,
    PARSE_ERROR,
    CallToolResult,
    ErrorData,
    JSONRPCError,
    TextContent,
    jsonrpc_message_adapter,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from collector.edge import client_headers
from collector.tools import (
    Analysis,
    Buffer,
    ConfigureAction,
    Format,
    Generator,
    InteractAction,
    Op,
    ToolInputError,
    View,
)

__all__ = [
    "MAX_LINE_BYTES",
    "DaemonTools",
    "LocalTools",
    "ToolBackend",
    "build_server",
    "serve_stdio",
]


def _inline(vocabulary: type[StrEnum]) -> WithJsonSchema:
    """The vocabulary's values written into the argument's schema, as a Literal would be,
    rather than as a ``$defs`` entry carrying the enum's docstring."""
    return WithJsonSchema({"enum": [v.value for v in vocabulary], "type": "string"})


# The tools' vocabularies, declared once in collector.tools; the schemas list their values.
ViewArg = Annotated[View, _inline(View)]
AnalysisArg = Annotated[Analysis, _inline(Analysis)]
ConfigureActionArg = Annotated[ConfigureAction, _inline(ConfigureAction)]
BufferArg = Annotated[Buffer, _inline(Buffer)]
OpArg = Annotated[Op, _inline(Op)]
GeneratorArg = Annotated[Generator, _inline(Generator)]
FormatArg = Annotated[Format, _inline(Format)]
InteractActionArg = Annotated[InteractAction, _inline(InteractAction)]
Level = Literal["debug", "info", "warn", "error", "critical"]
TraceIdArg = Annotated[
    str | None, Field(description="The trace: 32 hex digits, or a unique prefix of 8 or more.")
]
SpanIdArg = Annotated[
    str | None, Field(description="Or a span of the trace, e.g. an error span from observe errors.")
]
EventIdArg = Annotated[
    str | None, Field(description="Or a log record or event id linked to the trace.")
]

_WHAT = (
    "timeline: spans, logs and events merged, newest page, oldest first. logs: log records "
    "and events only. traces: one line per trace (root, services, duration, errors). trace: "
    "one trace as a compact tree (needs filter.trace_id; repeated calls folded; 50 lines a "
    "page, after_cursor for more). errors: "
    "error spans, exceptions and error logs, newest first. network_waterfall: HTTP calls "
    "with timings and the server span that answered. actions: browser user actions. "
    "websocket_events. services: services and who calls whom. reports: TracePulse's "
    "incident reports, newest first, one summary each (incident, top hypothesis, "
    "delivery); analyze type='report' gives one in full."
)
_ANALYSIS = (
    "causality: why a trace failed or was slow (by trace_id, span_id, event_id, or since/"
    "until for what broke in a window): status (failed|slow|degraded|ok) and "
    "status_reason; hypotheses ranked [{cause, confidence 0-1, evidence, reasoning, "
    "service}] from spans, logs, browser events, process deaths, span links, latency over "
    "each operation's recent p50 and config/deploy changes; root_cause (the first), the "
    "blamed service, the chain from symptom to cause, critical path, latency breakdown; "
    "errors a span answering successfully recovered from are listed apart as handled. "
    "latency: where the time went, including repeated sequential calls (N+1). correlate: "
    "everything linked to a trace or correlation id, and how. regression: operations "
    "slower or failing more than in the baseline (configure set_baseline first). compare: "
    "trace_id against compare_to (span by span: added, missing, slower with delta, new "
    "errors) or against the checkpoint named by baseline. report: one TracePulse "
    "incident report (report_id): ranked hypotheses, chain, changes."
)
_ACTION = (
    "clear: empty a buffer. noise_rule: hide matching items from answers (op add, remove, "
    "list). custom_event: put an event on the timeline, optionally on a trace. "
    "save_checkpoint: save current per-operation latency and error figures as NAME. "
    "set_baseline: make the current figures (or checkpoint NAME) the baseline for analyze "
    "regression. redaction: list or add attribute-key patterns whose values are replaced "
    "with [REDACTED]; remove only patterns added at run time (the config's stay). feedback: "
    "confirm or reject a hypothesis of a TracePulse report (report_id, hypothesis, "
    "verdict), and/or add a note; later reports of the same incident rank by it."
)
_GENERATE = (
    "reproduction: the trace's browser actions and HTTP requests as a runnable script "
    "(format curl, playwright or python). test: a test asserting the behaviour that failed "
    "(pytest or playwright); it fails until the bug is fixed. pr_summary: Markdown with the "
    "root cause, the chain and the latency breakdown. timeline_report: Markdown timeline."
)
_INTERACT = (
    "run_command: run a command allowlisted under interact.commands in the config. "
    "restart_service: run the restart command of a service under interact.services. "
    "run_tests: run interact.test_command. Output lines go onto the timeline (source "
    "interact); the answer has the exit code and the last lines."
)


class ToolBackend(Protocol):
    async def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """Run a tool; raise ``ToolError`` with a message the agent can act on."""
        ...


class LocalTools:
    """Tools run in this process, against the embedded daemon's toolbox."""

    def __init__(self, run: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]) -> None:
        self._run = run

    async def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self._run(name, args)
        except ToolInputError as exc:
            raise ToolError(str(exc)) from None


class DaemonTools:
    """Tools forwarded to a running ``gasoline serve`` over its HTTP API."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=60), headers=client_headers()
            )
        url = f"{self.api_url}/v1/tools/{name}"
        try:
            async with self._session.post(url, json=args) as response:
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ToolError(
                f"the Gasoline daemon at {self.api_url} did not answer "
                f"({exc or type(exc).__name__}); is `gasoline serve` still running?"
            ) from None
        if response.status != 200:
            raise ToolError(str(answer.get("error", answer)))
        return dict(answer)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Filter(BaseModel):
    """Which items to include. Every field is optional; all given must match."""

    model_config = ConfigDict(extra="forbid")

    trace_id: str | None = Field(
        None, description="A trace id: 32 hex digits, or a unique prefix of 8 or more."
    )
    correlation_id: str | None = Field(
        None, description="A request or correlation id carried by events and logs."
    )
    source: str | None = Field(
        None, description="Where items came from: otlp, browser, backend, test, git, custom."
    )
    service: str | None = Field(None, description="A service name, as in service.name.")
    level: Level | None = Field(None, description="Minimum level: 'warn' includes error too.")
    url: str | None = Field(None, description="Substring of the HTTP URL or route.")
    method: str | None = Field(None, description="HTTP method, e.g. POST.")
    status: str | int | None = Field(
        None, description="HTTP status: 500, '5xx' or a range '400-599'."
    )
    tags: list[str] | None = Field(None, description="Tags that must all be present.")
    since: str | float | None = Field(
        None, description="Not before: ms since the epoch or ISO 8601."
    )
    until: str | float | None = Field(
        None, description="Not after: ms since the epoch or ISO 8601."
    )
    text: str | None = Field(None, description="Case-insensitive substring of the message.")


class NoiseRuleArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str | None = Field(None, description="Regex searched in the message or span name.")
    source: str | None = None
    service: str | None = None
    level: Level | None = None


class EventArgs(BaseModel):
    """A native event, as the /event API takes it."""

    model_config = ConfigDict(extra="forbid")

    message: str
    level: Level = "info"
    source: str = "custom"
    timestamp: float | None = Field(None, description="ms since the epoch; default now.")
    trace_id: str | None = Field(None, description="Put the event on this trace.")
    span_id: str | None = None
    correlation_id: str | None = None
    service: str | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None


def _result(answer: dict[str, Any]) -> CallToolResult:
    """Compact JSON for the agent's context, plus the same as structured content."""
    text = json.dumps(answer, separators=(",", ":"), default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=answer)


def _args(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, BaseModel):
            value = value.model_dump(exclude_none=True)
        elif isinstance(value, StrEnum):
            value = value.value
        if value is not None:
            out[key] = value
    return out


def build_server(backend: ToolBackend, *, version: str) -> MCPServer:
    # Argument errors reach the agent as pydantic words them; its documentation links
    # (pydantic's documented switch, read when an error is first shown) are noise there.
    os.environ.setdefault("PYDANTIC_ERRORS_INCLUDE_URL", "0")
    server = MCPServer(
        "gasoline",
        version=version,
        instructions=(
            "Gasoline holds what the user's running system said: OpenTelemetry spans and "
            "logs from the backends, browser events, plain logs, as trace trees. Start with "
            "observe(what='errors') or observe(what='traces'); for a failed trace call "
            "analyze(type='causality', trace_id=...) to get the root cause, the chain from "
            "the symptom to it, the critical path and the latency breakdown."
        ),
    )

    @server.tool(structured_output=False)
    async def observe(
        what: Annotated[ViewArg, Field(description=_WHAT)] = View.TIMELINE,
        filter: Filter | None = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="Items per page.")] = 20,
        after_cursor: Annotated[
            str | None,
            Field(description="metadata.cursor_next of the previous answer, for the next page."),
        ] = None,
        span_ids: Annotated[
            list[str] | None,
            Field(
                description="For what='trace': span ids to show with full attributes and events."
            ),
        ] = None,
        event_ids: Annotated[
            list[str] | None,
            Field(
                description="Ids of log records or events from an earlier answer, to show in "
                "full (a long message is cut in lists; this shows every line). Replaces what.",
                max_length=20,
            ),
        ] = None,
    ) -> CallToolResult:
        """See what happened: timelines, traces, errors, network calls, services."""
        return _result(
            await backend.call(
                "observe",
                _args(
                    what=what,
                    filter=filter,
                    limit=limit,
                    after_cursor=after_cursor,
                    span_ids=span_ids,
                    event_ids=event_ids,
                ),
            )
        )

    @server.tool(structured_output=False)
    async def analyze(
        type: Annotated[AnalysisArg, Field(description=_ANALYSIS)],
        trace_id: TraceIdArg = None,
        span_id: SpanIdArg = None,
        event_id: EventIdArg = None,
        correlation_id: Annotated[
            str | None, Field(description="For correlate: a request or correlation id.")
        ] = None,
        baseline: Annotated[
            str | None,
            Field(description="For regression: a checkpoint name; default the baseline."),
        ] = None,
        since: Annotated[
            str | float | None,
            Field(
                description="For causality without an id: the window's start, ms since the "
                "epoch or ISO 8601 (default 5 minutes before until)."
            ),
        ] = None,
        until: Annotated[
            str | float | None,
            Field(description="For causality without an id: the window's end (default now)."),
        ] = None,
        compare_to: Annotated[
            str | None,
            Field(description="For compare: the trace id to compare trace_id against."),
        ] = None,
        report_id: Annotated[
            str | None, Field(description="For report: an id from observe what='reports'.")
        ] = None,
    ) -> CallToolResult:
        """Explain why something failed or was slow."""
        return _result(
            await backend.call(
                "analyze",
                _args(
                    type=type,
                    trace_id=trace_id,
                    span_id=span_id,
                    event_id=event_id,
                    correlation_id=correlation_id,
                    baseline=baseline,
                    since=since,
                    until=until,
                    compare_to=compare_to,
                    report_id=report_id,
                ),
            )
        )

    @server.tool(structured_output=False)
    async def configure(
        action: Annotated[ConfigureActionArg, Field(description=_ACTION)],
        buffer: Annotated[BufferArg | None, Field(description="For clear; default all.")] = None,
        op: Annotated[
            OpArg | None,
            Field(description="For noise_rule (default add) and redaction (default list)."),
        ] = None,
        rule: NoiseRuleArgs | None = None,
        rule_id: Annotated[str | None, Field(description="For noise_rule op=remove.")] = None,
        event: EventArgs | None = None,
        name: Annotated[
            str | None,
            Field(description="Checkpoint name for save_checkpoint, or set_baseline from it."),
        ] = None,
        pattern: Annotated[
            str | None, Field(description="For redaction add/remove: a regex on attribute keys.")
        ] = None,
        report_id: Annotated[str | None, Field(description="For feedback: the report.")] = None,
        hypothesis: Annotated[
            str | None, Field(description="For feedback: a hypothesis key of the report.")
        ] = None,
        verdict: Annotated[
            Literal["confirm", "reject"] | None, Field(description="For feedback.")
        ] = None,
        note: Annotated[str | None, Field(description="For feedback: a note.")] = None,
    ) -> CallToolResult:
        """Change what Gasoline keeps and shows; save checkpoints and the baseline."""
        args = _args(
            action=action,
            buffer=buffer,
            op=op,
            rule=rule,
            rule_id=rule_id,
            event=event,
            name=name,
            pattern=pattern,
            report_id=report_id,
            hypothesis=hypothesis,
            verdict=verdict,
            note=note,
        )
        return _result(await backend.call("configure", args))

    @server.tool(structured_output=False)
    async def generate(
        type: Annotated[GeneratorArg, Field(description=_GENERATE)],
        trace_id: TraceIdArg = None,
        span_id: SpanIdArg = None,
        event_id: EventIdArg = None,
        format: Annotated[
            FormatArg | None,
            Field(description="Output format; the default suits the trace."),
        ] = None,
        base_url: Annotated[
            str | None,
            Field(description="Send requests here instead, e.g. http://localhost:8000."),
        ] = None,
    ) -> CallToolResult:
        """Turn a trace into something to run or read: a reproduction, a test, a summary."""
        args = _args(
            type=type,
            trace_id=trace_id,
            span_id=span_id,
            event_id=event_id,
            format=format,
            base_url=base_url,
        )
        return _result(await backend.call("generate", args))

    @server.tool(structured_output=False)
    async def interact(
        action: Annotated[InteractActionArg, Field(description=_INTERACT)],
        name: Annotated[
            str | None, Field(description="The command or service name from the config.")
        ] = None,
    ) -> CallToolResult:
        """Act on the system: run an allowlisted command, restart a service, run the tests."""
        return _result(await backend.call("interact", _args(action=action, name=name)))

    return server


MAX_LINE_BYTES = 2**24
"""One JSON-RPC message on stdin, in bytes (16 MiB). A longer line is skipped to its end
and answered with a parse error; the server goes on with the next line."""


class _Sender(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...


class _AsyncStdin:
    """stdin read on the event loop, so stopping the server does not wait for a line.

    The SDK drops a line that is not a JSON-RPC message without a word (and a line over
    the reader's limit would end the server), so this reader answers those itself, as
    JSON-RPC says: ``-32700`` for a line too long or not JSON, ``-32600`` for JSON that is
    not a request, with the request's id when it has one, else null. Only valid
    messages reach the SDK.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader
        self._replies: _Sender | None = None
        self._ready = asyncio.Event()

    def reply_on(self, write: _Sender) -> None:
        """Where error replies go: the server's own write stream."""
        self._replies = write
        self._ready.set()

    def __aiter__(self) -> _AsyncStdin:
        return self

    async def __anext__(self) -> str:
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:  # stdin closed: the last line
                line = exc.partial
                if not line:
                    raise StopAsyncIteration from None
            except asyncio.LimitOverrunError:
                skipped = await self._skip_line()
                await self._reply(
                    PARSE_ERROR,
                    f"line of {skipped} bytes or more is over the {MAX_LINE_BYTES} byte limit "
                    "for one message; it was skipped",
                )
                continue
            text = line.decode("utf-8", "replace")
            if not text.strip():
                continue
            error = _invalid(text)
            if error is None:
                return text
            await self._reply(*error)

    async def _skip_line(self) -> int:
        """Drop the rest of an over-long line, up to and including its newline."""
        skipped = 0
        while True:
            try:
                skipped += len(await self._reader.readuntil(b"\n"))
                return skipped
            except asyncio.LimitOverrunError as exc:
                skipped += len(await self._reader.readexactly(max(1, exc.consumed)))
            except asyncio.IncompleteReadError as exc:
                return skipped + len(exc.partial)

    async def _reply(self, code: int, message: str, request_id: str | int | None = None) -> None:
        await self._ready.wait()
        assert self._replies is not None
        error = JSONRPCError(
            jsonrpc="2.0", id=request_id, error=ErrorData(code=code, message=message)
        )
        await self._replies.send(SessionMessage(error))


def _invalid(text: str) -> tuple[int, str, str | int | None] | None:
    """Why ``text`` is not a JSON-RPC message (code, message, id), or None if it is."""
    try:
        jsonrpc_message_adapter.validate_json(text, by_name=False)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            return PARSE_ERROR, f"not JSON: {exc.errors()[0]['msg']}", None
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            return PARSE_ERROR, "not JSON", None
        request_id = parsed.get("id") if isinstance(parsed, dict) else None
        if isinstance(request_id, bool) or not isinstance(request_id, str | int):
            request_id = None
        return INVALID_REQUEST, "not a JSON-RPC 2.0 request, notification or response", request_id
    return None


async def serve_stdio(server: MCPServer) -> None:
    """Serve MCP on stdin/stdout until stdin closes."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    lowlevel = server._lowlevel_server  # the SDK's own run_stdio_async uses it the same way
    stdin = _AsyncStdin(reader)
    try:
        async with stdio_server(stdin=stdin) as (read, write):  # type: ignore[arg-type]
            stdin.reply_on(write)
            await lowlevel.run(read, write, lowlevel.create_initialization_options())
    finally:
        transport.close()
