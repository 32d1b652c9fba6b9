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
        assert policy.sweeps == 1 and gc.get_freeze_count() > 0
    finally:
        await policy.stop()
    assert gc.get_freeze_count() == 0


async def test_survivors_of_a_full_collection_are_frozen_at_once() -> None:
    """So the next automatic full collection walks only what is newer."""
    policy = GcPolicy()
    await policy.start()
    try:
        assert gc.get_freeze_count() == 0
        kept = [_Node() for _ in range(1000)]
        dead = _Node()
        dead_ref = weakref.ref(dead)
        del dead
        gc.collect()  # what the interpreter does on its own as objects pile up
        assert dead_ref() is None  # garbage is collected first,
        assert gc.get_freeze_count() >= len(kept)  # the survivors frozen right after
        assert policy.freezes >= 1
    finally:
        await policy.stop()
    assert gc.get_freeze_count() == 0


async def test_daemon_reports_gc_and_leaves_nothing_frozen(gasoline: Running) -> None:
    _, status = await gasoline.get_json("/daemon/status")
    assert set(status["services"]["gc"]) == {"status", "freezes", "sweeps", "last_sweep_ms"}
    await gasoline.daemon.stop()
    assert gc.get_freeze_count() == 0
