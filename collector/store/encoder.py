"""Blocks encoded in a child process, so sealing does not take the daemon's GIL.

Encoding a block of 16,384 records holds the GIL for ~130 ms (its columns, ~65 ms; its
text index, ~65 ms) besides ~170 ms of compression that releases it: in a thread of the
daemon that came straight off ingest (bench/retention_bench.py, history off / on). The
child is handed the block's write-ahead rows (bytes the loop encoded already), decodes
them, encodes and compresses the block and hands back its bytes and head; the sealing
thread only waits, then writes the file. The child is started on the first block and
lives as long as the history; if it dies, it is started again, and a block it took
with it is encoded in the thread instead, so nothing is lost. Where no child can be
started (a daemonic process may not have children), blocks are encoded in the thread.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from collector.store.blocks import BlockHead, decode_lines, encode_block

__all__ = ["BlockEncoder", "encode_rows_block"]

_WATCH_S = 0.5


def encode_rows_block(rows: list[bytes], sealed_ns: int) -> tuple[bytes, BlockHead]:
    """A block's file bytes and head from the write-ahead rows of its records."""
    return encode_block(decode_lines(rows), sealed_ns)


def _exit_with(parent: int) -> None:
    """In the child: exit once the daemon is gone, even by ``kill -9`` (a pool's worker
    would otherwise wait for work forever, holding the daemon's output open)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_WATCH_S)
        os._exit(0)

    threading.Thread(target=watch, name="gasoline-seal-watch", daemon=True).start()


class BlockEncoder:
    """Encodes blocks in a child process. Used by the sealing thread alone (``encode``),
    and closed once that thread is done."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self.restarts = 0
        """How many times the child died and was started again."""

    def encode(self, rows: list[bytes], sealed_ns: int) -> tuple[bytes, BlockHead]:
        if self._pool is None and not multiprocessing.current_process().daemon:
            context = multiprocessing.get_context("spawn")  # the daemon has threads
            self._pool = ProcessPoolExecutor(
                1, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),)
            )
        if self._pool is not None:
            try:
                return self._pool.submit(encode_rows_block, rows, sealed_ns).result()
            except BrokenProcessPool:
                self.restarts += 1
                self.close()
            except OSError:
                self.close()  # no child could be started: the thread does it, and tries again
        return encode_rows_block(rows, sealed_ns)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
