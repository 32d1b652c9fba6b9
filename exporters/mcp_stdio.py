"""``gasoline mcp``: the MCP server on stdio, over this process's daemon or a running one.

The component table loads this module on first use (``McpStdio`` in
``collector.component``): importing it imports the MCP library, which an idle daemon
should not pay for.
"""

from __future__ import annotations

from collector.component import ToolRunner
from exporters.mcp_server import DaemonTools, LocalTools, build_server, serve_stdio

__all__ = ["serve_local", "serve_remote"]


async def serve_local(tools: ToolRunner, *, version: str) -> None:
    """Serve the tools of the daemon embedded in this process until stdin closes."""
    await serve_stdio(build_server(LocalTools(tools), version=version))


async def serve_remote(url: str, *, version: str) -> None:
    """Serve the tools of the daemon at ``url`` until stdin closes."""
    tools = DaemonTools(url)
    try:
        await serve_stdio(build_server(tools, version=version))
    finally:
        await tools.close()
