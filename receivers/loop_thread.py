"""An event loop on a thread of its own, for a server that must not share the daemon's loop.

grpc.aio takes one new call per turn of the loop it runs on, and each call needs a few
more turns. On the daemon's loop a turn lasts as long as the decoding of every HTTP
request that arrived meanwhile, so while OTLP/HTTP was busy gRPC got about a tenth of
HTTP's throughput, whatever its own number of connections. On a loop of its own its
turns are short; the interpreter's lock shares the CPU between the receivers' threads,
and only the decoded batch crosses back to the daemon's loop, where the pipeline lives
(``call_on``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "call_on"]

_T = TypeVar("_T")


class LoopThread:
    """A thread running an event loop until ``close()``."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` on this thread's loop and await its result from the caller's."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    async def close(self) -> None:
        """Cancel what still runs on the loop, stop it and wait for the thread. Idempotent."""
        if self.loop.is_closed():
            return
        await self.run(_cancel_others())
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join)
        self.loop.close()


async def _cancel_others() -> None:
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def call_on(loop: asyncio.AbstractEventLoop, fn: Callable[..., _T], *args: Any) -> _T:
    """Run ``fn(*args)`` on ``loop``, from a coroutine on another loop's thread; its result
    or exception comes back here. ``fn`` runs in one go, as a callback of ``loop``."""
    future: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn(*args))
            except Exception as exc:
                future.set_exception(exc)

    loop.call_soon_threadsafe(run)
    return await asyncio.wrap_future(future)
