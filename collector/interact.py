"""The agent's hands: run an allowlisted command, restart a service, run the tests.

Only what ``interact`` in the config names can run. Output lines become events on the
timeline (source ``interact``), so what a command printed sits beside the traces it
caused; the agent gets the exit code and the last lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import deque
from enum import StrEnum
from typing import Any

from collector.config import CommandConfig, InteractConfig
from collector.errors import QueueFullError
from collector.model import Record
from collector.pipeline import Pipeline

__all__ = ["ACTIONS", "InteractAction", "InteractError", "Interactor"]


class InteractAction(StrEnum):
    """What ``interact`` can do; the MCP schema's ``action`` is generated from this."""

    RUN_COMMAND = "run_command"
    RESTART_SERVICE = "restart_service"
    RUN_TESTS = "run_tests"


ACTIONS = tuple(InteractAction)
_TAIL_LINES = 40
_MAX_LINE = 500
_BATCH = 200


class InteractError(ValueError):
    """Refused or impossible; the message says how to allow or fix it."""


class Interactor:
    def __init__(self, config: InteractConfig, pipeline: Pipeline, *, config_source: str) -> None:
        self._config = config
        self._pipeline = pipeline
        self._where = config_source

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

    async def run(self, action: str, name: str | None) -> dict[str, Any]:
        label, command = self._lookup(action, name)
        started = time.monotonic()
        process = await asyncio.create_subprocess_shell(
            command.run,
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
            tags=("interact", f"{action}:{label}"),
            attributes={"exit_code": code, "duration_ms": round(seconds * 1000, 1)},
        )
        emit(final)
        self._offer(pending)
        return {
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

    def _offer(self, pending: list[Record]) -> None:
        if pending:
            with contextlib.suppress(QueueFullError):  # counted as dropped by the pipeline
                self._pipeline.offer_records(list(pending))
            pending.clear()
