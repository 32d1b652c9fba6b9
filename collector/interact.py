"""The agent's hands: run an allowlisted command, restart a service, run the tests.

Only what ``interact`` in the config names can run. Output lines become events on the
timeline (source ``interact``), so what a command printed sits beside the traces it
caused; the agent gets the exit code and the last lines. ``run_tests`` runs the test
command through ``gasoline test`` (when the daemon's API is up), so its test cases become
spans of one trace, named in the answer, exactly as when a developer runs it; its output
lines then reach the timeline through that command (service ``tests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Required

from collector.bounded import Answer
from collector.config import CommandConfig, InteractConfig
from collector.errors import QueueFullError
from collector.model import Record
from collector.pipeline import Pipeline

__all__ = ["ACTIONS", "InteractAction", "InteractAnswer", "InteractError", "Interactor"]


class InteractAction(StrEnum):
    """What ``interact`` can do; the MCP schema's ``action`` is generated from this."""

    RUN_COMMAND = "run_command"
    RESTART_SERVICE = "restart_service"
    RUN_TESTS = "run_tests"


ACTIONS = tuple(InteractAction)
_TAIL_LINES = 40
_MAX_LINE = 500
_BATCH = 200


class InteractAnswer(Answer, total=False):
    """``interact``: what ran, how it ended, and its last lines (all lines went to the
    timeline, source ``interact``, under ``event_id``)."""

    action: Required[str]
    name: Required[str]
    command: Required[str]
    exit_code: Required[int | None]
    timed_out: Required[bool]
    duration_ms: Required[float]
    output_lines: Required[int]
    output_tail: Required[list[str]]
    event_id: Required[str]
    trace_id: str  # the trace the run was given (``gasoline test``'s), if any


class InteractError(ValueError):
    """Refused or impossible; the message says how to allow or fix it."""


class Interactor:
    def __init__(
        self,
        config: InteractConfig,
        pipeline: Pipeline,
        *,
        config_source: str,
        api_url: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``api_url()``: the daemon's API URL once bound, for ``gasoline test``."""
        self._config = config
        self._pipeline = pipeline
        self._where = config_source
        self._api_url = api_url

    def _lookup(self, action: str, name: str | None) -> tuple[str, CommandConfig]:
        if action == "run_tests":
            if self._config.test_command is None:
                raise InteractError(
                    "no test command is configured; add `interact: {test_command: {run: "
                    f"'pytest -x'}}}}` to {self._where}"
                )
            return "tests", self._config.test_command
        if action not in ("run_command", "restart_service"):
            raise InteractError(f"action: {action!r} must be one of {', '.join(ACTIONS)}")
        table = self._config.commands if action == "run_command" else self._config.services
        key = "commands" if action == "run_command" else "services"
        if not name or name not in table:
            allowed = ", ".join(sorted(table)) or "none yet"
            raise InteractError(
                f"{name!r} is not allowed (allowed {key}: {allowed}); to allow it, add "
                f"`interact: {{{key}: {{{name or 'NAME'}: {{run: '...'}}}}}}` to {self._where}"
            )
        return name, table[name]

    async def run(self, action: str, name: str | None) -> InteractAnswer:
        label, command = self._lookup(action, name)
        started = time.monotonic()
        url = self._api_url() if action == "run_tests" else None
        argv = ["/bin/sh", "-c", command.run]
        trace_id = None
        if url is not None:
            # The product's own command, in this interpreter: the run becomes a trace.
            trace_id = secrets.token_hex(16)
            argv = [sys.executable, "-m", "gasoline", "test", "--url", url, "--service", label]
            argv += ["--trace-id", trace_id, "--", "/bin/sh", "-c", command.run]
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=command.cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # so a timeout can stop the whole process group
        )
        tail: deque[str] = deque(maxlen=_TAIL_LINES)
        counts = {"lines": 0}
        pending: list[Record] = []

        def emit(record: Record) -> None:
            pending.append(record)
            if len(pending) >= _BATCH:
                self._offer(pending)

        async def pump(stream: asyncio.StreamReader | None, level: str) -> None:
            assert stream is not None
            async for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip("\n")[:_MAX_LINE]
                counts["lines"] += 1
                tail.append(line)
                if trace_id is not None:
                    continue  # gasoline test ships the lines itself
                emit(
                    Record(
                        time.time_ns(),
                        "interact",
                        level,
                        line,
                        service=label,
                        tags=("interact", f"{action}:{label}"),
                    )
                )

        timed_out = False
        try:
            async with asyncio.timeout(command.timeout):
                await asyncio.gather(pump(process.stdout, "info"), pump(process.stderr, "warn"))
                await process.wait()
        except TimeoutError:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        seconds = time.monotonic() - started
        code = process.returncode
        outcome = (
            f"timed out after {command.timeout:g} s"
            if timed_out
            else f"exited with {code} after {seconds:.1f} s"
        )
        final = Record(
            time.time_ns(),
            "interact",
            "info" if code == 0 else "error",
            f"{action} {label}: `{command.run}` {outcome}",
            service=label,
            trace_id=bytes.fromhex(trace_id) if trace_id else None,
            tags=("interact", f"{action}:{label}"),
            attributes={"exit_code": code, "duration_ms": round(seconds * 1000, 1)},
        )
        emit(final)
        self._offer(pending)
        answer: InteractAnswer = {
            "action": action,
            "name": label,
            "command": command.run,
            "exit_code": code,
            "timed_out": timed_out,
            "duration_ms": round(seconds * 1000, 1),
            "output_lines": counts["lines"],
            "output_tail": list(tail),
            "event_id": str(final.id),
        }
        if trace_id:
            answer["trace_id"] = trace_id
        return answer

    def _offer(self, pending: list[Record]) -> None:
        if pending:
            with contextlib.suppress(QueueFullError):  # counted as dropped by the pipeline
                self._pipeline.offer_records(list(pending))
            pending.clear()
