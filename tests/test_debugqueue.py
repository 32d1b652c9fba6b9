"""The DebugQueue helper against a running daemon: the event becomes a report; a daemon
that is down or refuses the event makes ``log`` return False, never raise."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from gasoline import debugqueue
from tests.conftest import Running, wait_for


async def test_log_triggers_a_report(start_daemon: Callable[..., Any]) -> None:
    running: Running = await start_daemon("pulse: {settle: 10ms}\n")
    ok = await asyncio.to_thread(
        debugqueue.log,
        "SESSION_DROP",
        {"service": "SessionManager", "errorCode": "TIMEOUT", "correlationId": "dq-1"},
        "critical",
        url=running.api,
    )
    assert ok is True
    await wait_for(lambda: len(running.daemon.pulse.book.reports) == 1)
    [report] = running.daemon.pulse.book.newest(1)
    assert report["incident"]["correlation_id"] == "dq-1"
    assert report["incident"]["priority"] == "critical"


async def test_log_never_raises(gasoline: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    refused = await asyncio.to_thread(
        debugqueue.log,
        "X",
        {"service": "S"},
        url=gasoline.api,  # no errorCode: a 400
    )
    assert refused is False
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # bound, never listening
        down = await asyncio.to_thread(
            debugqueue.log, "X", {"service": "S", "errorCode": "E"}, url=dead
        )
    assert down is False
    monkeypatch.setenv("OTEL_SERVICE_NAME", "FromEnv")
    odd = await asyncio.to_thread(debugqueue.log, "X", {"errorCode": object()}, url="not a url")
    assert odd is False
    assert gasoline.daemon.pulse.counts["triggers"] == 0
