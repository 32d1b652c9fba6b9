"""Garbage collection for a process that holds millions of long-lived objects.

The stores keep millions of records alive for hours, and every full collection would
walk all of them (about 0.6 s per million objects on the reference machine) for
nothing: they are freed by reference counting when evicted. So the policy moves what is
alive into the permanent generation (``gc.freeze``) right after every automatic full
collection (what survived one is long-lived, and is then walked once, not at every 25%
of growth: a flood of a million log lines took seconds of collections before) and every
``freeze_s``; automatic collections only walk what is newer. Cycles that become garbage
while frozen are reclaimed by one full collection every ``sweep_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

__all__ = ["GcPolicy"]


class GcPolicy:
    """Owns one task; ``stop()`` unfreezes, so the process is left as it was found."""

    def __init__(self, *, freeze_s: float = 60.0, sweep_s: float = 3600.0) -> None:
        self.freeze_s = freeze_s
        self.sweep_s = sweep_s
        self.freezes = 0
        self.sweeps = 0
        self.last_sweep_s = 0.0
        self._task: asyncio.Task[None] | None = None

    name = "gc"

    async def start(self) -> None:
        if self._task is None:
            self.follow_collections()
            self._task = asyncio.create_task(self._run(), name="gasoline-gc-policy")

    def follow_collections(self) -> None:
        """Freeze the survivors of every automatic full collection from now on (``start``
        does this; without an event loop, this is all of the policy there is)."""
        if self._after_collection not in gc.callbacks:
            gc.callbacks.append(self._after_collection)

    async def stop(self) -> None:
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        gc.unfreeze()

    def freeze(self) -> None:
        gc.freeze()
        self.freezes += 1

    def sweep(self) -> None:
        """One full collection over everything, then freeze the survivors again."""
        started = time.perf_counter()
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self.sweeps += 1
        self.last_sweep_s = time.perf_counter() - started

    def _after_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self.freeze()

    def stats(self) -> dict[str, str | float | int]:
        # Not gc.get_freeze_count(): it walks every frozen object (30 ms at 3 million).
        return {
            "status": "stopped" if self._task is None else "running",
            "freezes": self.freezes,
            "sweeps": self.sweeps,
            "last_sweep_ms": round(self.last_sweep_s * 1000, 1),
        }

    async def _run(self) -> None:
        next_sweep = time.monotonic() + self.sweep_s
        while True:
            await asyncio.sleep(self.freeze_s)
            if time.monotonic() >= next_sweep:
                self.sweep()
                next_sweep = time.monotonic() + self.sweep_s
            else:
                self.freeze()
