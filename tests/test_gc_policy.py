"""The GC policy: survivors frozen, cycles that died while frozen reclaimed by a sweep."""

from __future__ import annotations

import gc
import weakref

from collector.gc_policy import GcPolicy
from tests.conftest import Running


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


async def test_freeze_then_sweep_reclaims_cycles_that_died_while_frozen() -> None:
    policy = GcPolicy()
    try:
        node = _Node()
        alive = weakref.ref(node)
        policy.freeze()
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert alive() is not None  # frozen: automatic and explicit collections skip it
        policy.sweep()
        assert alive() is None
        assert policy.stats()["sweeps"] == 1 and gc.get_freeze_count() > 0
    finally:
        await policy.stop()
    assert gc.get_freeze_count() == 0


async def test_daemon_reports_gc_and_leaves_nothing_frozen(gasoline: Running) -> None:
    _, status = await gasoline.get_json("/daemon/status")
    assert set(status["memory"]["gc"]) == {"frozen_objects", "sweeps", "last_sweep_ms"}
    await gasoline.daemon.stop()
    assert gc.get_freeze_count() == 0
