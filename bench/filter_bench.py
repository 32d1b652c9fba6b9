"""A day's Bloom filters asked at once (``FilterShelf``) against asking each block's.

A day of history is ~5,200 blocks (bench/day_bench.py), each with a trace filter
(16 KiB: ~5,700 trace ids at 16 bits a key, a power of two) and a text filter (~15,000
keys at 16 bits: ~30 KiB, a length that varies with the block's keys). This builds
``--blocks`` of them (random bits at 25% density, about what 8 or 4 probes a key leave)
and times, per lookup, p50 over ``--queries``:

- a trace id that 3 blocks hold, and one that none does;
- a rare text that no block holds (``TextQuery``);

each asked of every head in a Python loop (``BlockHead.may_hold``/``may_contain``, as the
history did) and of the shelf (``FilterShelf.admitted``, then sorted by block as the
history does). Every answer is checked against the loop's. It also prints what adding a
block and dropping the oldest cost, and the RSS before and after the heads' filters are
shelved (the heads then keep views into the shelf: no second copy).

``--text-keys-spread`` sets how far blocks' text key counts spread (a fraction of the
mean, uniform): the more distinct filter lengths, the fewer blocks a slice covers.

    python bench/filter_bench.py                         # 5,200 blocks, ~1 minute
    python bench/filter_bench.py --text-keys-spread 0.5  # lengths of 2,800 kinds
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

from collector.daemon import rss_bytes  # noqa: E402
from collector.store.blocks import BLOOM_PROBES, BlockHead, Probe, TextQuery  # noqa: E402
from collector.store.filter_shelf import FilterShelf  # noqa: E402

TRACE_BYTES = 16 * 1024
TEXT_KEYS = 15_000
TEXT_BITS_PER_KEY = 16  # as blocks write them


def _bits(rng: random.Random, nbytes: int) -> bytes:
    """Random bytes with a quarter of their bits set."""
    a, b = rng.getrandbits(nbytes * 8), rng.getrandbits(nbytes * 8)
    return (a & b).to_bytes(nbytes, "little")


def _set(bloom: bytes, probes: list[tuple[int, int]]) -> bytes:
    out = bytearray(bloom)
    for at, bit in probes:
        out[at] |= bit
    return bytes(out)


def _head(first_id: int, bloom: bytes, text_bloom: bytes) -> BlockHead:
    tables: dict[str, list[str]] = {"source": [], "level": [], "service": [], "kind": []}
    return BlockHead(
        first_id=first_id,
        last_id=first_id + 16_383,
        count=16_384,
        min_ns=0,
        max_ns=0,
        sealed_ns=0,
        tables=tables,
        bloom=bloom,
        columns=[],
        body_offset=0,
        body_crc=0,
        file_bytes=0,
        text_bloom=text_bloom,
    )


def _attach_bloom(head: BlockHead, bloom: bytes | memoryview) -> None:
    head.bloom = bloom


def _attach_text_bloom(head: BlockHead, text_bloom: bytes | memoryview) -> None:
    head.text_bloom = text_bloom


def _p50_us(ask: Callable[[], object], queries: int) -> float:
    samples = []
    for _ in range(queries):
        t0 = time.perf_counter()
        ask()
        samples.append(time.perf_counter() - t0)
    return round(statistics.median(samples) * 1e6, 1)


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    held_key = os.urandom(16)
    holders = set(rng.sample(range(args.blocks), 3))
    lo = int(TEXT_KEYS * (1 - args.text_keys_spread / 2))
    hi = int(TEXT_KEYS * (1 + args.text_keys_spread / 2))
    traces: FilterShelf[BlockHead] = FilterShelf(_attach_bloom)
    texts: FilterShelf[BlockHead] = FilterShelf(_attach_text_bloom)
    rss0, shelve_s, shelved = rss_bytes(), 0.0, []
    for i in range(args.blocks):  # as a restart reads them: one head at a time
        bloom = _bits(rng, TRACE_BYTES)
        if i in holders:
            bloom = _set(bloom, Probe(held_key).probes(TRACE_BYTES))
        text_bytes = max(64, -(-rng.randint(lo, hi) * TEXT_BITS_PER_KEY // 64) * 8)
        head = _head(i * 16_384 + 1, bloom, _bits(rng, text_bytes))
        t0 = time.perf_counter()
        traces.add(head, head.bloom, BLOOM_PROBES)
        texts.add(head, head.text_bloom, head.text_probes)
        shelve_s += time.perf_counter() - t0
        shelved.append(head)
    filter_bytes = sum(len(h.bloom) + len(h.text_bloom) for h in shelved)
    out: dict[str, Any] = {
        "blocks": args.blocks,
        "filter_mib": round(filter_bytes / 2**20, 1),
        "rss_growth_mib": round((rss_bytes() - rss0) / 2**20, 1),
        "text_filter_lengths": len({len(h.text_bloom) for h in shelved}),
    }
    # The history before: each head with its own bytes, asked in a loop. Each lookup
    # makes its query afresh, as the history does (its probes per filter length).
    heads = [_head(h.first_id, bytes(h.bloom), bytes(h.text_bloom)) for h in shelved]
    absent = os.urandom(16)
    rare = "readTimeoutError"
    lookups: dict[str, tuple[FilterShelf[BlockHead], Callable[[], Probe | TextQuery]]] = {
        "trace held by 3 blocks": (traces, lambda: Probe(held_key)),
        "trace no block holds": (traces, lambda: Probe(absent)),
        "rare text no block holds": (texts, lambda: TextQuery(rare)),
    }

    def loop(
        over: list[BlockHead], make: Callable[[], Probe | TextQuery]
    ) -> Callable[[], list[BlockHead]]:
        def ask() -> list[BlockHead]:
            query = make()
            if isinstance(query, Probe):
                return [h for h in over if h.may_hold(query)]
            return [h for h in over if h.may_contain(query)]

        return ask

    def shelf(
        filters: FilterShelf[BlockHead], make: Callable[[], Probe | TextQuery]
    ) -> Callable[[], list[BlockHead]]:
        return lambda: sorted(filters.admitted(make()), key=lambda h: h.first_id)

    out["per_lookup_us"] = {}
    for name, (filters, make) in lookups.items():
        expected = [h.first_id for h in loop(heads, make)()]
        assert [h.first_id for h in shelf(filters, make)()] == expected, name
        assert [h.first_id for h in loop(shelved, make)()] == expected, name  # views, too
        out["per_lookup_us"][name] = {
            "blocks_admitted": len(expected),
            "per_head_loop": _p50_us(loop(heads, make), args.queries),
            "shelf": _p50_us(shelf(filters, make), args.queries),
        }
    del heads
    out["per_block_us"] = {"shelve_both_filters": round(shelve_s / args.blocks * 1e6, 1)}
    adds, drops = [], []
    for i in range(args.queries):  # a day's steady state: a block in, the oldest out
        head = _head((args.blocks + i) * 16_384 + 1, _bits(rng, TRACE_BYTES), _bits(rng, 22_528))
        t0 = time.perf_counter()
        traces.add(head, head.bloom, BLOOM_PROBES)
        texts.add(head, head.text_bloom, head.text_probes)
        t1 = time.perf_counter()
        traces.drop(shelved[i])
        texts.drop(shelved[i])
        t2 = time.perf_counter()
        adds.append(t1 - t0)
        drops.append(t2 - t1)
    out["per_block_us"]["add_both_filters_p50"] = round(statistics.median(adds) * 1e6, 1)
    out["per_block_us"]["add_both_filters_max"] = round(max(adds) * 1e6, 1)  # a chunk grew
    out["per_block_us"]["drop_oldest_p50"] = round(statistics.median(drops) * 1e6, 1)
    out["per_block_us"]["drop_oldest_max"] = round(max(drops) * 1e6, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=5200)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--text-keys-spread", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    print(json.dumps(run(parser.parse_args()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
