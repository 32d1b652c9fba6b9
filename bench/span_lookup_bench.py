"""Trace by id once its spans have left memory: answered from the span blocks on disk.

In one process, the daemon's own path: ``--spans`` spans (``otlp_load``'s pool, decoded
with redaction as the receiver does) go into a ``Store`` whose memory tier holds
``--max-spans`` of them and whose history lives in a temporary directory (the
write-ahead file synced every second, as the daemon does). Then ``Store.spans.trace``
(each span's detail decoded too, as a trace page does) is timed, p50 and p95 over
``--queries`` traces chosen at random:

- on disk only, first look: the groups of chunks it needs are not among the few kept
  decompressed, so each is read and decompressed (how many: ``blocks read``, and of
  them ``groups read``);
- on disk only, asked again: as a trace page asks for the spans more than once;
- in memory, for comparison;
- an id no block holds (every block's index says no).

It also prints spans/s into the store with the history on (sealing builds the index),
bytes per span on disk and the share of it the index and group table take (the same
arrays are what each block keeps in memory).

    python bench/span_lookup_bench.py                   # 2 M spans, 100 k in memory
    python bench/span_lookup_bench.py --spans 200000    # ~1 minute
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

from collector.config import HistoryConfig, RedactionConfig, StoreConfig  # noqa: E402
from collector.redact import Redactor  # noqa: E402
from collector.store import Store  # noqa: E402


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(ordered[len(ordered) // 2] * 1e3, 2),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1e3, 2),
        "max_ms": round(ordered[-1] * 1e3, 2),
    }


def _timed(look: Callable[[bytes], int], trace_ids: list[bytes]) -> dict[str, Any]:
    samples, spans = [], 0
    for trace_id in trace_ids:
        t0 = time.perf_counter()
        spans += look(trace_id)
        samples.append(time.perf_counter() - t0)
    return {**_quantiles(samples), "spans_per_trace": round(spans / len(trace_ids), 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import otlp_load

    from receivers.otlp_codec import decode_traces, restore_span_detail

    redactor = Redactor(RedactionConfig())
    pool = otlp_load.load_or_build_pool(64, seed=args.seed)
    requests = max(1, args.spans // otlp_load.SPANS_PER_REQUEST)
    data = Path(args.dir or tempfile.mkdtemp(prefix="gasoline-span-lookup-"))
    config = StoreConfig(
        max_spans=args.max_spans,
        max_bytes=2**40,  # the span count bounds memory here, not bytes
        history=HistoryConfig(dir=str(data), max_bytes=2**40),
    )
    out: dict[str, Any] = {"spans": requests * otlp_load.SPANS_PER_REQUEST}
    store = Store(config)
    try:
        store.open_history(restore_span_detail)
        history = store.spans.history
        assert history is not None, "the span history did not open"
        picked: list[bytes] = []
        gc.collect()
        started, cpu0 = time.perf_counter(), time.process_time()
        synced = started
        for i in range(requests):
            batch = decode_traces(otlp_load.payload(pool, i), redactor=redactor).batch
            if i % 7 == 0:
                picked.append(batch.trace_ids[len(batch) // 2])
            store.spans.add(batch, time.time_ns())
            if time.perf_counter() - synced >= 1.0:
                store.flush()
                synced = time.perf_counter()
        store.flush()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
        out["ingest"] = {
            "spans_per_s": round(out["spans"] / elapsed),
            "spans_per_cpu_s": round(out["spans"] / cpu),
        }
        index_bytes = sum(
            4 * len(b.firsts or ()) + 2 * len(b.first_groups or ()) + 4 * len(b.lasts or ())
            for b in history.blocks
        )
        group_bytes = 12 * sum(b.groups for b in history.blocks)
        stats = history.stats()
        out["disk"] = {
            "blocks": stats["blocks"],
            "bytes_per_span": stats["bytes_per_span"],
            "index_bytes_per_span": round(index_bytes / max(1, stats["spans"]), 2),
            "group_table_bytes_per_span": round(group_bytes / max(1, stats["spans"]), 3),
            "groups_per_block": round(sum(b.groups for b in history.blocks) / stats["blocks"], 1),
        }
        out["memory_spans"] = store.spans.span_count
        on_disk = list({t: None for t in picked if not store.spans.trace_span_count(t)})
        in_memory = [t for t in picked if store.spans.trace_span_count(t)]
        rng = random.Random(args.seed)
        disk_sample = rng.sample(on_disk, min(args.queries, len(on_disk)))
        memory_sample = rng.sample(in_memory, min(args.queries, len(in_memory)))

        def look(trace_id: bytes) -> int:
            spans = store.spans.trace(trace_id)
            assert spans and all(s.detail().attributes is not None for s in spans), trace_id
            return len(spans)

        read_before, groups_before = history.blocks_read, history.groups_read
        out["on disk, first look"] = _timed(look, disk_sample)
        out["on disk, first look"]["blocks_read_per_trace"] = round(
            (history.blocks_read - read_before) / len(disk_sample), 2
        )
        out["on disk, first look"]["groups_read_per_trace"] = round(
            (history.groups_read - groups_before) / len(disk_sample), 2
        )
        samples, spans = [], 0
        for trace_id in disk_sample[: args.queries // 4]:
            look(trace_id)
            t0 = time.perf_counter()
            spans += look(trace_id)
            samples.append(time.perf_counter() - t0)
        out["on disk, asked again"] = {
            **_quantiles(samples),
            "spans_per_trace": round(spans / len(samples), 1),
        }
        out["in memory"] = _timed(look, memory_sample)
        unknown = [os.urandom(16) for _ in range(args.queries)]
        read_before = history.blocks_read
        out["unknown id"] = _timed(lambda t: len(store.spans.trace(t)), unknown)
        out["unknown id"]["blocks_read"] = history.blocks_read - read_before
    finally:
        store.close()
        if not args.dir:
            shutil.rmtree(data, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--max-spans", type=int, default=100_000, help="the memory tier")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="keep the history here (default: a temporary one)")
    print(json.dumps(run(parser.parse_args()), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
