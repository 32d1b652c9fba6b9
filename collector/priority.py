"""Background work yields the CPU to the programs being debugged.

On Linux a thread has its own nice value, so a thread that only has to keep up on average
(parsing a backlog of log lines, shipping output) can run at a lower priority than the
application whose output it handles, and the application is not slowed when cores are
scarce. Elsewhere this does nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["BACKGROUND_NICE", "lower_thread_priority"]

BACKGROUND_NICE = 10


def lower_thread_priority() -> None:
    """Run the calling thread at nice ``BACKGROUND_NICE`` where the OS allows it."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
