"""Durable history at scale: bytes per record, ingest rate, query latency, restart time.

In one process, the daemon's own path: a ``Pipeline`` (default redaction) over a
``Store`` whose history lives in a temporary directory. ``--lines`` realistic, varied
plain log lines (access logs, app logs, JSON logs, logfmt with random trace ids, SQL,
multi-line Python tracebacks; six services, timestamps 1 ms apart, as at 1,000 lines/s)
are offered in batches of 1,000 as ``gasoline-run`` would, with one OTLP span per five
lines (``otlp_load``'s pool, decoded as the receiver does) beside them. Then:

- ingest rate: lines/s by wall time to everything stored (the pipeline paces a flood of
  lines, so this is not all CPU) and by the process's CPU time; RSS growth;
- disk bytes per record (blocks; the write-ahead file too);
- filtered timeline (``query.timeline``: service+level, source+level, text, a time
  range in the middle of the data) and records-by-trace-id (random ids from the
  logfmt/JSON lines, most of them on disk), p50 and max over ``--queries`` runs;
- restart: closing the store, opening the directory again (heads, Bloom filters, the
  write-ahead file), and the first query after it;
- the same figures extrapolated to 24 h at 1,000 lines/s (86.4 M records).

``--spans N`` measures spans alone instead: N spans (``otlp_load``'s pool, decoded with
redaction as the receiver does) into a store with the history off, then on (the write-ahead
file synced every second, as the daemon does); spans/s both ways, bytes per span on disk,
the restart (every span read back into the memory tier, up to ``max_spans``) and trace by
id after it (with each span's detail decoded), extrapolated to 24 h at 200 spans/s.

``--compare`` measures the blocks as the history writes them, compressed each way
(zstandard levels 3-19, a 128 MiB window with long-distance matching, blocks four times
larger, a trained dictionary): file bytes per record and the seal's CPU per block; then
the candidate stores (zstandard columns with and without a trained dictionary, and
DuckDB if it is installed: ``pip install duckdb``).

On 2026-12-07 (2 cores, shared with other work), ``--lines 2000000``: 34.8 bytes per
record on disk, 2.77 GiB for 24 h at 1,000 lines/s; text filter p50 21 ms (common words),
71 ms (a word no line holds), 132 ms (a rare id), with 121 blocks and 425 k records in
memory (skipping 5,227 blocks' heads for an absent word takes ~13 ms); records by trace
id p50 2.8 ms; restart 18 ms. ``--lines 500000 --spans-per-line 0``, history off / on
back to back: 25.3-25.6 k / 20.4 k lines/s.

    python bench/retention_bench.py                  # 10 M lines + 2 M spans
    python bench/retention_bench.py --quick          # 500 k lines, ~1 minute
    python bench/retention_bench.py --spans 1000000  # spans: history off vs on, restart
    python bench/retention_bench.py --compare --lines 300000
"""

from __future__ import annotations

import argparse
import array
import asyncio
import gc
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

from collector.config import HistoryConfig, QueueConfig, RedactionConfig, StoreConfig  # noqa: E402
from collector.daemon import rss_bytes  # noqa: E402
from collector.filters import TimelineFilter  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.query import timeline  # noqa: E402
from collector.redact import Redactor  # noqa: E402
from collector.store import Store  # noqa: E402
from receivers.log_records import LogLines  # noqa: E402

SERVICES = ("api", "web", "worker", "db", "auth", "billing")
PATHS = ("/api/users", "/api/orders/{}", "/login", "/static/app.{}.js", "/api/cart", "/health")
WORDS = [
    "user",
    "order",
    "payment",
    "cache",
    "request",
    "session",
    "retry",
    "timeout",
    "connect",
    "query",
    "render",
    "invoice",
    "queue",
    "job",
    "export",
    "import",
    "sync",
]
T0 = 1_796_000_000.0  # a fixed start, so every run makes the same data
DAY_LINES = 86_400_000


def make_lines(n: int, seed: int) -> Iterator[tuple[str, list[str], list[bytes]]]:
    """Batches of 1,000 lines: (service, lines, trace ids the lines carry)."""
    rng = random.Random(seed)
    batch: list[str] = []
    traces: list[bytes] = []
    service = SERVICES[0]
    for i in range(n):
        t = T0 + i / 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
        level = rng.choices(("INFO", "DEBUG", "WARN", "ERROR"), (70, 15, 10, 5))[0]
        k = rng.random()
        if k < 0.25:
            clf = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
            path = rng.choice(PATHS).format(rng.randrange(10_000))
            status = rng.choice((200, 200, 200, 201, 304, 404, 500))
            line = (
                f'10.0.{rng.randrange(4)}.{rng.randrange(255)} - - [{clf}] "GET {path} HTTP/1.1" '
                f'{status} {rng.randrange(100_000)} "-" "Mozilla/5.0 (X11; Linux x86_64)"'
            )
        elif k < 0.5:
            line = (
                f"{stamp} {level} {rng.choice(WORDS)}.{rng.choice(WORDS)}: {rng.choice(WORDS)} "
                f"{rng.choice(WORDS)} id={rng.randrange(10**6)} took {rng.randrange(2000)}ms"
            )
        elif k < 0.7:
            trace = rng.randbytes(16)
            traces.append(trace)
            line = json.dumps(
                {
                    "ts": stamp,
                    "level": level.lower(),
                    "msg": f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
                    "user_id": rng.randrange(10**5),
                    "duration_ms": round(rng.random() * 300, 2),
                    "trace_id": trace.hex(),
                }
            )
        elif k < 0.85:
            trace = rng.randbytes(16)
            traces.append(trace)
            line = (
                f'time={stamp} level={level.lower()} msg="{rng.choice(WORDS)} {rng.choice(WORDS)}" '
                f"trace_id={trace.hex()} span_id={rng.randbytes(8).hex()} "
                f"dur={rng.randrange(900)}ms"
            )
        elif k < 0.95:
            line = (
                f"{stamp} DEBUG sql: SELECT id, name, email FROM users WHERE id = "
                f"{rng.randrange(10**6)} AND org_id = {rng.randrange(1000)} "
                f"LIMIT {rng.randrange(1, 100)}"
            )
        else:
            line = (
                f"{stamp} ERROR handler failed\nTraceback (most recent call last):\n"
                f'  File "/app/{rng.choice(WORDS)}.py", line {rng.randrange(500)}, in handle\n'
                f"    return self.{rng.choice(WORDS)}(req)\nKeyError: '{rng.choice(WORDS)}'"
            )
        batch.append(line)
        if len(batch) == 1000:
            yield service, batch, traces
            batch, traces = [], []
            service = rng.choice(SERVICES)
    if batch:
        yield service, batch, traces


def quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1e3, 2),
        "max_ms": round(ordered[-1] * 1e3, 2),
    }


def timed(fn: Callable[[], Any], n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return quantiles(samples)


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


async def ingest(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Lines through the pipeline, spans beside them; what it cost."""
    import otlp_load

    from receivers.otlp_codec import decode_traces

    redactor = Redactor(RedactionConfig())
    pipeline = Pipeline(store, queue=QueueConfig(), redactor=redactor)
    history = store.records.history
    if history is not None:
        pipeline.resume_ids(history.next_id)
    await pipeline.start()
    sources = {s: LogLines(service=s) for s in SERVICES}
    pool = otlp_load.load_or_build_pool(64, seed=args.seed) if args.spans_per_line else None
    span_seq = 0
    spans_due = 0.0
    traces: list[bytes] = []
    span_traces: list[bytes] = []
    gc.collect()
    rss0 = rss_bytes()
    started = time.perf_counter()
    cpu0 = time.process_time()
    sent = 0
    for service, lines, line_traces in make_lines(args.lines, args.seed):
        pipeline.offer_lines(sources[service], lines, observed_ns=int((T0 + sent / 1000) * 1e9))
        sent += len(lines)
        if len(traces) < 10_000 or random.random() < 0.01:
            traces += line_traces[:2]
        spans_due += len(lines) * args.spans_per_line
        while pool is not None and spans_due >= otlp_load.SPANS_PER_REQUEST:
            batch = decode_traces(otlp_load.payload(pool, span_seq), redactor=redactor).batch
            pipeline.offer_spans(batch)
            if span_seq % 50 == 0:
                span_traces.append(batch.trace_ids[0])
            span_seq += 1
            spans_due -= otlp_load.SPANS_PER_REQUEST
        if sent % 20_000 == 0:
            await pipeline.drained()
        if not args.quiet and sent % 1_000_000 == 0:
            rate = sent / (time.perf_counter() - started)
            print(
                f"  {sent:>11,} lines  {rate:,.0f}/s  RSS {rss_bytes() / 2**20:,.0f} MiB",
                flush=True,
            )
    await pipeline.drained()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    await pipeline.stop()
    gc.collect()
    rss1 = rss_bytes()
    lost = sum(pipeline.lost.values()) + sum(pipeline.refused.values())
    return {
        "lines": sent,
        "records": len(store.records),
        "spans": store.spans.span_count,
        "spans_offered": span_seq * otlp_load.SPANS_PER_REQUEST,
        "seconds": round(elapsed, 1),
        "lines_per_s": round(sent / elapsed),
        "cpu_s": round(cpu, 1),
        "lines_per_cpu_s": round(sent / cpu),
        "lost_or_refused": lost,
        "rss_growth_bytes": rss1 - rss0,
        "rss_bytes": rss1,
        "_traces": traces,
        "_span_traces": span_traces,
    }


def query_figures(store: Store, traces: list[bytes], n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    mid_ns = int((T0 + len(store.records) / 2000) * 1e9)
    filters = {
        "service+level": lambda: TimelineFilter(service="billing", level="error", limit=100),
        "source+level": lambda: TimelineFilter(source="backend", level="warn", limit=100),
        "text": lambda: TimelineFilter(text="invoice export", limit=100),
        "text, a word no line holds": lambda: TimelineFilter(text="readTimeoutError", limit=100),
        "text, a rare id": lambda: TimelineFilter(text="id=58751 took", limit=100),
        "time range (middle)": lambda: TimelineFilter(
            since_ns=mid_ns, until_ns=mid_ns + 60 * 10**9, level="error", limit=100
        ),
    }
    out: dict[str, Any] = {}
    for name, make in filters.items():
        out[f"timeline {name}"] = timed(lambda make=make: timeline(store, make()), n)
    picks = [rng.choice(traces) for _ in range(n)] if traces else []
    found = [0]

    def by_trace() -> None:
        found[0] += bool(store.records.by_trace(picks.pop()))

    if picks:
        out["records by trace id"] = timed(by_trace, n)
        out["records by trace id"]["found"] = found[0]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    data = Path(args.dir or tempfile.mkdtemp(prefix="gasoline-retention-"))
    try:
        return measure(args, data)
    finally:
        if not args.dir:
            shutil.rmtree(data, ignore_errors=True)


def measure(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    history = HistoryConfig(
        enabled=not args.no_history,
        dir=str(data),
        max_bytes=int(args.max_gib * 2**30),
        block_records=args.block,
    )
    config = StoreConfig(history=history)
    store = Store(config)
    store.open_history()
    result: dict[str, Any] = {"dir": str(data), "block_records": args.block}
    result["ingest"] = asyncio.run(ingest(store, args))
    traces = result["ingest"].pop("_traces")
    result["ingest"].pop("_span_traces")
    h = store.records.history
    if h is None:
        result["queries"] = query_figures(store, traces, args.queries, args.seed)
        return result
    stats = h.stats(store.records.memory_count)
    result["history"] = {k: stats[k] for k in ("tiers", "disk_bytes", "evicted", "write_errors")}
    records = result["ingest"]["records"]
    result["disk_bytes_per_record"] = round(disk_bytes(data) / records, 1)
    result["queries"] = query_figures(store, traces, args.queries, args.seed)
    t0 = time.perf_counter()
    store.close()
    result["close_s"] = round(time.perf_counter() - t0, 2)
    del store, h
    gc.collect()
    t0 = time.perf_counter()
    again = Store(config)
    again.open_history()
    result["restart_s"] = round(time.perf_counter() - t0, 3)
    t1 = time.perf_counter()
    timeline(again, TimelineFilter(service="api", level="error", limit=100))
    result["first_query_after_restart_ms"] = round((time.perf_counter() - t1) * 1e3, 1)
    result["after_restart_records"] = len(again.records)
    again.close()
    scale = DAY_LINES / records
    blocks = result["history"]["tiers"]["disk"]["blocks"]
    result["per_day"] = {
        "disk_gib": round(disk_bytes(data) * scale / 2**30, 2),
        "blocks": round(blocks * scale),
        "restart_s": round(result["restart_s"] * scale, 1),
    }
    return result


DAY_SPANS = 200 * 86_400


def span_figures(args: argparse.Namespace) -> dict[str, Any]:
    """Spans alone: ingest with the history off and on, disk bytes, restart, trace by id."""
    import otlp_load

    from receivers.otlp_codec import decode_traces, restore_span_detail

    redactor = Redactor(RedactionConfig())
    pool = otlp_load.load_or_build_pool(64, seed=args.seed)
    requests = max(1, args.spans // otlp_load.SPANS_PER_REQUEST)
    data = Path(args.dir or tempfile.mkdtemp(prefix="gasoline-span-history-"))
    config = StoreConfig(history=HistoryConfig(dir=str(data), max_bytes=int(args.max_gib * 2**30)))
    out: dict[str, Any] = {"spans": requests * otlp_load.SPANS_PER_REQUEST}
    traces: list[bytes] = []
    try:
        for label in ("history off", "history on"):
            store = Store(config)
            if label == "history on":
                store.open_history(restore_span_detail)
            gc.collect()
            started = time.perf_counter()
            cpu0 = time.process_time()
            synced = started
            for i in range(requests):
                batch = decode_traces(otlp_load.payload(pool, i), redactor=redactor).batch
                if label == "history on" and i % 20 == 0:
                    traces.append(batch.trace_ids[0])
                store.spans.add(batch, time.time_ns())
                if time.perf_counter() - synced >= 1.0:
                    store.flush()
                    synced = time.perf_counter()
            store.flush()
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu0
            out[label] = {
                "spans_per_s": round(out["spans"] / elapsed),
                "spans_per_cpu_s": round(out["spans"] / cpu),
            }
        span_history = store.spans.history
        assert span_history is not None
        stats = span_history.stats()
        out["disk"] = {k: stats[k] for k in ("spans", "blocks", "bytes", "bytes_per_span")}
        out["disk"]["dir_bytes"] = disk_bytes(data / "spans")
        t0 = time.perf_counter()
        store.close()
        out["close_s"] = round(time.perf_counter() - t0, 2)
        del store, span_history
        gc.collect()
        t0 = time.perf_counter()
        again = Store(config)
        again.open_history(restore_span_detail)
        out["restart_s"] = round(time.perf_counter() - t0, 2)
        out["restored_spans"] = again.spans.span_count
        rng = random.Random(args.seed)
        picks = [rng.choice(traces) for _ in range(args.queries)]
        found = [0]

        def by_trace() -> None:
            spans = again.spans.trace(picks.pop())
            found[0] += bool(spans) and all(s.detail().attributes is not None for s in spans)

        out["trace by id after restart (with detail)"] = timed(by_trace, args.queries)
        out["trace by id after restart (with detail)"]["found"] = found[0]
        again.close()
        out["per_day_at_200_spans_per_s"] = {
            "disk_gib": round(out["disk"]["dir_bytes"] / out["spans"] * DAY_SPANS / 2**30, 2),
        }
    finally:
        if not args.dir:
            shutil.rmtree(data, ignore_errors=True)
    return out


def compare_blocks(args: argparse.Namespace) -> dict[str, Any]:
    """Blocks as the history writes them (``encode_block``: the columns, head, Bloom
    filters and text index), compressed each way: file bytes per record, and the seal's
    CPU time per block of ``--block`` records (in the sealing thread)."""
    import zstandard

    from collector.store.blocks import encode_block, encode_rows

    batches: list[tuple[list[Any], bytes]] = []
    n = 0
    sources = {s: LogLines(service=s) for s in SERVICES}
    for service, lines, _ in make_lines(args.lines, args.seed):
        batch = sources[service].records(lines, now_ns=int(T0 * 1e9))
        for record in batch:
            n += 1
            record.id = n
        batches.append((batch, encode_rows(batch)))
    rows = [row for _, row in batches]

    def blocks(size: int) -> Iterator[list[Any]]:
        """Whole batches, as the history seals them: until ``size`` records."""
        chunk: list[Any] = []
        for batch, _ in batches:
            chunk += batch
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    params = zstandard.ZstdCompressionParameters.from_level
    trained = zstandard.train_dictionary(112_640, rows[: max(1, len(rows) // 10)])
    variants: list[tuple[str, int, zstandard.ZstdCompressor | None]] = [
        ("the history's (level 15, hash and chain tables of 2^20)", args.block, None)
    ]
    variants += [
        (f"level {level}", args.block, zstandard.ZstdCompressor(level=level))
        for level in (3, 6, 9, 12, 15, 19)
    ]
    variants += [
        (
            f"level {level}, 128 MiB window + long-distance matching",
            args.block,
            zstandard.ZstdCompressor(
                compression_params=params(level, window_log=27, enable_ldm=True)
            ),
        )
        for level in (3, 12)
    ]
    variants += [
        (
            f"level {level}, blocks of {4 * args.block:,} records",
            4 * args.block,
            zstandard.ZstdCompressor(level=level),
        )
        for level in (3, 12)
    ]
    variants += [
        (
            f"level {level}, trained dictionary (not readable: measured only)",
            args.block,
            zstandard.ZstdCompressor(level=level, dict_data=trained),
        )
        for level in (3, 12)
    ]
    out: dict[str, Any] = {"records": n, "rows_bytes_per_record": round(sum(map(len, rows)) / n, 1)}
    for name, size, compressor in variants:
        total = 0
        cpu0 = time.process_time()
        for chunk in blocks(size):
            data, _ = encode_block(chunk, 0, compressor=compressor)
            total += len(data)
        cpu = time.process_time() - cpu0
        out[name] = {
            "bytes_per_record": round(total / n, 1),
            "seal_ms_per_block": round(cpu / n * args.block * 1e3),
            "per_day_gib": round(total / n * DAY_LINES / 2**30, 2),
        }
        if not args.quiet:
            print(f"  {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Candidate stores on the same records: bytes per record and write rate."""
    import zstandard

    rows: list[tuple[int, int, str, str, str, bytes]] = []
    source = LogLines(service="api")
    for service, lines, _ in make_lines(args.lines, args.seed):
        for r in source.records(lines, now_ns=0):
            rows.append(
                (len(rows) + 1, r.time_ns, service, r.level, r.message, r.trace_id or bytes(16))
            )
    n = len(rows)
    out: dict[str, Any] = {
        "records": n,
        "text_bytes_per_record": round(sum(len(r[4]) for r in rows) / n, 1),
    }

    def columns(chunk: list[tuple[int, int, str, str, str, bytes]]) -> list[bytes]:
        return [
            array.array("q", [r[0] for r in chunk]).tobytes(),
            array.array("q", [r[1] for r in chunk]).tobytes(),
            "\0".join(r[2] for r in chunk).encode(),
            "\0".join(r[3] for r in chunk).encode(),
            "\0".join(r[4] for r in chunk).encode(),
            b"".join(r[5] for r in chunk),
        ]

    trained = zstandard.train_dictionary(112_640, [r[4].encode() for r in rows[:20_000]])
    for level in (3, 9):
        for name, dictionary in (("", None), (" + trained dictionary", trained)):
            compressor = zstandard.ZstdCompressor(level=level, dict_data=dictionary)
            t0 = time.perf_counter()
            size = sum(
                len(compressor.compress(c))
                for i in range(0, n, args.block)
                for c in columns(rows[i : i + args.block])
            )
            rate = n / (time.perf_counter() - t0)
            out[f"zstd level {level}{name}"] = {
                "bytes_per_record": round(size / n, 1),
                "records_per_s": round(rate),
            }
    try:
        import duckdb  # type: ignore[import-not-found]
    except ImportError:
        out["duckdb"] = "not installed (pip install duckdb)"
        return out
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.duckdb")
        con = duckdb.connect(path)
        con.execute(
            "create table r(id bigint, t bigint, service varchar, level varchar, "
            "message varchar, trace_id blob)"
        )
        few = rows[:5000]
        t0 = time.perf_counter()
        con.executemany("insert into r values (?,?,?,?,?,?)", few)
        executemany_rate = len(few) / (time.perf_counter() - t0)
        con.execute("delete from r")
        t0 = time.perf_counter()
        csv_path = os.path.join(tmp, "r.csv")
        import csv

        for i in range(0, n, args.block):
            with open(csv_path, "w", newline="") as f:
                csv.writer(f).writerows(
                    (r[0], r[1], r[2], r[3], r[4], r[5].hex()) for r in rows[i : i + args.block]
                )
            con.execute(
                "insert into r select id, t, service, level, message, unhex(tid) from "
                "read_csv(?, header=false, delim=',', quote='\"', escape='\"', "
                "columns={'id':'BIGINT','t':'BIGINT','service':'VARCHAR','level':'VARCHAR',"
                "'message':'VARCHAR','tid':'VARCHAR'})",
                [csv_path],
            )
        con.execute("checkpoint")
        rate = n / (time.perf_counter() - t0)
        con.close()
        out["duckdb"] = {
            "bytes_per_record": round(os.path.getsize(path) / n, 1),
            "records_per_s (csv + read_csv)": round(rate),
            "records_per_s (executemany)": round(executemany_rate),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="500,000 lines")
    parser.add_argument("--spans-per-line", type=float, default=0.2)
    parser.add_argument("--block", type=int, default=HistoryConfig().block_records)
    parser.add_argument("--max-gib", type=float, default=2.0, help="history.max_bytes")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="keep the data here (default: a temporary directory)")
    parser.add_argument("--compare", action="store_true", help="measure the candidates")
    parser.add_argument("--spans", type=int, default=0, help="measure N spans alone")
    parser.add_argument(
        "--no-history", action="store_true", help="memory only, for the ingest rate before"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.lines = min(args.lines, 500_000)
    if args.spans:
        result = span_figures(args)
    elif args.compare:
        result = {"blocks": compare_blocks(args), "stores": compare(args)}
    else:
        result = run(args)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
