"""A full day of durable history on disk, and the daemon's query paths over it.

``retention_bench.py`` measures 10 M records and extrapolates; this builds the whole
day (86.4 M records at 1,000/s over 24 h, and with ``--spans`` 17.3 M spans at 200/s)
in a temporary directory and measures what a restarted daemon does with it:

- **Build.** ``retention_bench.make_lines``'s varied lines (access logs, app logs, JSON
  and logfmt with trace ids, SQL, tracebacks; six services, one of them read over
  SSH) are parsed, capped and redacted as the pipeline does, one batch a second, and
  written through ``History.append`` with the clock at the batch's time (so the files
  are the ones the daemon writes; ``max_age`` and ``max_bytes`` are raised so nothing is
  evicted). Spans (``otlp_load``'s pool, decoded as the OTLP receiver does) go through
  ``SpanHistory.append``. The day is cut into parts of whole blocks, built by
  ``--workers`` processes at ``nice 10``, each in its own directory; their blocks are
  then moved into one.
- **Restart.** A ``Store`` opened on that directory as the daemon opens it
  (``Store.open_history`` with the OTLP codec's span decoder): the time taken and the
  RSS after it.
- **Queries**, through the ``observe`` tool as an agent calls it: the timeline filtered
  by service, by level, by source, by a minute in the middle of the day, by a rare and
  a common text, by a service's errors in an hour of the day (from the disk tier), by a
  source and a service that no row of the day has together; the blocks a rare text
  opens; a trace by id (``what: trace``) and ``RecordStore.by_trace`` for trace ids from
  across the day; with ``--spans``, ``SpanStore.trace``. Each kind runs ``--queries``
  times or until ``--budget`` seconds are spent, whichever is first.

The README quotes the figures of a full day, with the command.

    python bench/day_bench.py --hours 1           # 3.6 M records, a few minutes
    python bench/day_bench.py --spans             # the full day, about 65 minutes
    python bench/day_bench.py --hours 1 --keep /tmp/day1   # keep it; a rerun reuses it
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import otlp_load  # noqa: E402
import retention_bench  # noqa: E402

from collector.config import Duration, HistoryConfig, RedactionConfig, StoreConfig  # noqa: E402
from collector.daemon import rss_bytes  # noqa: E402
from collector.limits import ValueLimits, cap_record  # noqa: E402
from collector.redact import Redactor  # noqa: E402
from collector.store import BlockChunk, History, SpanChunk, SpanHistory, Store  # noqa: E402
from collector.tools.observe import observe  # noqa: E402
from receivers.log_records import LogLines  # noqa: E402
from receivers.otlp_codec import decode_traces, restore_span_detail  # noqa: E402

RATE = 1000  # records a second, one batch a second
SPAN_RATE = 200
POOL = 64  # otlp_load requests in the pool; the trace ids change every pass over it
# Records of one part: whole blocks (a block is sealed at the batch that reaches
# block_records: 17 batches of 1,000), so the parts' blocks are those of one run.
BLOCK_BATCHES = -(-HistoryConfig().block_records // RATE)
PART_RECORDS = BLOCK_BATCHES * RATE * 100
SECONDS_PER_REQUEST = otlp_load.SPANS_PER_REQUEST / SPAN_RATE
SPANS_PER_BLOCK_REQUESTS = HistoryConfig().block_records // otlp_load.SPANS_PER_REQUEST
SSH_SOURCE = "ssh:db-1:/var/log/postgresql/postgresql.log"
SAMPLES_PER_PART = 40  # trace ids kept per part, to look up later
MANIFEST = "day_bench.json"


@dataclass(slots=True)
class Part:
    """A slice of the day one worker builds: records ``first`` onwards (0-based, so ids
    start at ``first + 1``) and span requests ``first_request`` onwards."""

    index: int
    first: int
    records: int
    first_request: int
    requests: int
    start_s: float  # the time of record ``first``
    day_start_s: float
    seed: int


def history_config(directory: Path) -> HistoryConfig:
    """The default history, but holding everything the bench writes."""
    return HistoryConfig(dir=str(directory), max_bytes=2**40, max_age=Duration(30 * 86_400))


# -- build ---------------------------------------------------------------------------


def plan(records: int, spans: bool, start_s: float, seed: int) -> list[Part]:
    seconds = records / RATE
    total_requests = int(seconds * SPAN_RATE / otlp_load.SPANS_PER_REQUEST) if spans else 0

    def first_request(first: int) -> int:  # whole span blocks a part, too
        at = int(first / RATE / SECONDS_PER_REQUEST)
        return min(total_requests, at // SPANS_PER_BLOCK_REQUESTS * SPANS_PER_BLOCK_REQUESTS)

    parts = []
    for index, first in enumerate(range(0, records, PART_RECORDS)):
        n = min(PART_RECORDS, records - first)
        lo = first_request(first)
        hi = total_requests if first + n >= records else first_request(first + n)
        start = start_s + first / RATE
        parts.append(Part(index, first, n, lo, hi - lo, start, start_s, seed * 1000 + index))
    return parts


def build_part(job: tuple[Path, Part]) -> dict[str, Any]:
    """Write one part's records and spans into ``directory``/parts/<index> as the daemon
    would; the trace ids it sampled and the CPU it took."""
    root, part = job
    cpu0 = time.process_time()
    directory = root / "parts" / str(part.index)
    config = history_config(directory)
    history = History(config, Counter())
    history.open()
    spans = SpanHistory(config, restore_span_detail) if part.requests else None
    if spans is not None:
        spans.open(max_spans=0, not_before_ns=0)
        pool = otlp_load.load_or_build_pool(POOL, cache=str(root / "otlp-pool.pickle"))
    redactor = Redactor(RedactionConfig())
    store_config = StoreConfig()
    limits = ValueLimits(store_config.max_value_chars, store_config.max_record_bytes)
    sources = {
        s: LogLines(service=s)
        if s != "db"
        else LogLines(
            service=s,
            source=SSH_SOURCE,
            attributes={"log.file.path": SSH_SOURCE.split(":", 2)[2], "host.name": "db-1"},
        )
        for s in retention_bench.SERVICES
    }
    rng = random.Random(part.seed)
    record_traces: list[str] = []
    span_traces: list[str] = []
    keep_every = max(1, part.records // RATE // SAMPLES_PER_PART)
    request, last_request = part.first_request, part.first_request + part.requests
    next_id = part.first + 1
    now_ns = int(part.start_s * 1e9)

    def add_spans(until_s: float) -> None:
        """The span requests received by ``until_s``, at 200 spans a second."""
        nonlocal request
        while spans is not None and request < last_request:
            if part.day_start_s + request * SECONDS_PER_REQUEST > until_s:
                return
            batch = decode_traces(otlp_load.payload(pool, request), redactor=redactor).batch
            spans.append(SpanChunk(request, batch, now_ns), now_ns)
            if request % 16 == 0:
                span_traces.append(batch.trace_ids[0].hex())
            request += 1

    retention_bench.T0 = part.start_s  # make_lines stamps its lines from T0
    for n, (service, lines, _) in enumerate(retention_bench.make_lines(part.records, part.seed)):
        now_ns = int((part.start_s + n + 1) * 1e9)  # a second's lines arrive together
        records = sources[service].records(lines, now_ns=now_ns)
        for record in records:
            record.id = next_id
            next_id += 1
            cap_record(record, limits)
        redactor.redact_records(records)
        history.append(records, now_ns)
        if n % keep_every == 0:
            traced = [r.trace_id for r in records if r.trace_id is not None]
            if traced:
                record_traces.append(rng.choice(traced).hex())
        add_spans(now_ns / 1e9)
    add_spans(float("inf"))
    history.close(now_ns)
    if spans is not None:
        spans.close(now_ns)
    return {
        "index": part.index,
        "records": part.records,
        "spans": spans.sealed_spans if spans is not None else 0,
        "record_traces": record_traces,
        "span_traces": rng.sample(span_traces, min(len(span_traces), SAMPLES_PER_PART)),
        "cpu_s": time.process_time() - cpu0,
    }


def build(root: Path, records: int, args: argparse.Namespace) -> dict[str, Any]:
    """The day, in parts on ``--workers`` processes, moved into ``root``/history."""
    start_s = float(int(time.time()) - records // RATE)  # the day ends now
    parts = plan(records, args.spans, start_s, args.seed)
    if args.spans:
        otlp_load.load_or_build_pool(POOL, cache=str(root / "otlp-pool.pickle"))
    print(f"building {records:,} records{' and spans' if args.spans else ''} in {root}")
    print(f"  {len(parts)} part(s) on {args.workers} processes (nice 10)", flush=True)
    started = time.perf_counter()
    done: list[dict[str, Any]] = []
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=os.nice, initargs=(10,)) as pool:
        for result in pool.imap_unordered(build_part, [(root, p) for p in parts]):
            done.append(result)
            made = sum(d["records"] for d in done)
            elapsed = time.perf_counter() - started
            left = elapsed / made * (records - made)
            print(
                f"  {made / records:6.1%}  {made:>12,} records  {made / elapsed:8,.0f}/s  "
                f"{elapsed / 60:5.1f} min, about {left / 60:.1f} min to go",
                flush=True,
            )
    history = root / "history"
    (history / "blocks").mkdir(parents=True)
    (history / "spans").mkdir()
    number = 0
    for part in parts:
        directory = root / "parts" / str(part.index)
        for block in (directory / "blocks").glob("*.blk"):
            block.rename(history / "blocks" / block.name)
        for block in sorted((directory / "spans").glob("*.sblk")) if part.requests else ():
            number += 1
            block.rename(history / "spans" / f"{number:020d}.sblk")
    shutil.rmtree(root / "parts")
    done.sort(key=lambda d: int(d["index"]))
    return {
        "records": records,
        "spans": sum(int(d["spans"]) for d in done),
        "start_s": start_s,
        "build_s": time.perf_counter() - started,
        "build_cpu_s": sum(float(d["cpu_s"]) for d in done),
        "workers": args.workers,
        "record_traces": [t for d in done for t in d["record_traces"]],
        "span_traces": [t for d in done for t in d["span_traces"]],
    }


# -- queries -------------------------------------------------------------------------


@dataclass(slots=True)
class Timing:
    """One kind of query: how many ran, the first (cold) one, p50, p95 and max (ms),
    and what the last one found."""

    name: str
    n: int
    first_ms: float
    p50_ms: float
    p95_ms: float
    max_ms: float
    found: str


def timed(
    name: str, query: Callable[[int], str], args: argparse.Namespace, budget_s: float
) -> Timing:
    """``query(i)`` (which says what it found) up to ``--queries`` times or ``budget_s``."""
    samples: list[float] = []
    found = ""
    spent = 0.0
    while len(samples) < args.queries and (spent < budget_s or len(samples) < 3):
        t0 = time.perf_counter()
        found = query(len(samples))
        samples.append(time.perf_counter() - t0)
        spent += samples[-1]
    ms = sorted(s * 1e3 for s in samples)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return Timing(name, len(ms), samples[0] * 1e3, statistics.median(ms), p95, ms[-1], found)


def query_figures(
    store: Store, day: dict[str, Any], args: argparse.Namespace
) -> tuple[list[Timing], list[str]]:
    """The queries' timings, and the rare texts asked."""
    rng = random.Random(args.seed)
    start_s = float(day["start_s"])
    seconds = int(day["records"]) // RATE
    record_traces = [bytes.fromhex(t) for t in day["record_traces"]]
    span_traces = [bytes.fromhex(t) for t in day["span_traces"]]
    rng.shuffle(record_traces)
    rng.shuffle(span_traces)

    def timeline(make: Callable[[int], dict[str, Any]]) -> Callable[[int], str]:
        def run(i: int) -> str:
            answer = observe(store, (), {"what": "timeline", "filter": make(i), "limit": 100})
            total = answer["metadata"].get("total_count", 0)
            exact = "" if answer["metadata"].get("total_count_exact", True) else "+"
            return f"{len(answer.get('events', []))} events of {total}{exact}"

        return run

    def minute(i: int) -> dict[str, Any]:
        at = start_s + seconds / 4 + rng.random() * seconds / 2
        return {"since": str(int(at * 1000)), "until": str(int((at + 60) * 1000))}

    rare_texts: list[str] = []

    def rare(i: int) -> dict[str, Any]:
        rare_texts.append(f"id={rng.randrange(10**6)} took")
        return {"text": rare_texts[-1]}

    services = retention_bench.SERVICES
    hours = random.Random(args.seed + 1)  # apart, so the other queries stay the same

    def service_errors(i: int) -> dict[str, Any]:
        at = start_s + seconds / 4 + hours.random() * seconds / 2
        window = {"since": str(int(at * 1000)), "until": str(int((at + 3600) * 1000))}
        return {"service": services[i % 6], "level": "error", **window}

    queries: list[tuple[str, Callable[[int], str], float]] = [
        ("timeline service=<one of 6>", timeline(lambda i: {"service": services[i % 6]}), 1),
        ("timeline level=error", timeline(lambda i: {"level": "error"}), 1),
        ("timeline source=ssh (db)", timeline(lambda i: {"source": SSH_SOURCE}), 1),
        (
            "timeline source=ssh service=api (none)",  # a whole day that no row matches
            timeline(lambda i: {"source": SSH_SOURCE, "service": "api"}),
            1,
        ),
        ("timeline a minute mid-day", timeline(minute), 1),
        ("timeline common text 'timeout'", timeline(lambda i: {"text": "timeout"}), 1),
        ("timeline rare text 'id=N took'", timeline(rare), 1),
        ("timeline an hour's errors of a service", timeline(service_errors), 1),
    ]
    if record_traces:

        def by_trace(i: int) -> str:
            found = store.records.by_trace(record_traces[i % len(record_traces)])
            return f"{len(found)} records"

        def trace_view(i: int) -> str:
            trace_id = record_traces[-1 - i % len(record_traces)].hex()
            answer = observe(store, (), {"what": "trace", "filter": {"trace_id": trace_id}})
            return "found" if answer.get("trace") else "not found"

        queries += [
            ("records by trace id (by_trace)", by_trace, 1),
            ("observe what=trace, a log's trace", trace_view, 1),
        ]
    if span_traces:

        def span_trace(i: int) -> str:
            found = store.spans.trace(span_traces[i % len(span_traces)])
            return f"{len(found)} spans"

        queries.append(("spans of a trace (SpanStore.trace)", span_trace, 1))
    return [timed(name, q, args, args.budget * weight) for name, q, weight in queries], rare_texts


def measure(root: Path, day: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Open the day as the daemon does, then query it (in a process of its own, so its
    RSS is what a daemon's would be)."""
    rss_before = rss_bytes()
    t0 = time.perf_counter()
    store = Store(StoreConfig(history=history_config(root / "history")))
    history = store.open_history(restore_span_detail)
    restart_s = time.perf_counter() - t0
    rss_open = rss_bytes()
    if history is None or not history.active:
        raise SystemExit(f"the history did not open: {history.state if history else 'off'}")
    blocks = sum(f.stat().st_size for f in (root / "history" / "blocks").iterdir())
    span_blocks = sum(f.stat().st_size for f in (root / "history" / "spans").iterdir())
    timings, rare_texts = query_figures(store, day, args)
    # What a rare text costs is the blocks its text index admits: each is opened.
    opened = [
        sum(isinstance(c, BlockChunk) for c in history.chunks_newest_first(2**63, text))
        for text in rare_texts
    ]
    figures = {
        "records_on_disk": history.sealed_records,
        "record_blocks": len(history.blocks),
        "spans_on_disk": store.spans.history.sealed_spans if store.spans.history else 0,
        "spans_restored_to_memory": store.spans.restored,
        "record_bytes": blocks,
        "span_bytes": span_blocks,
        "restart_s": restart_s,
        "rss_before_open": rss_before,
        "rss_after_open": rss_open,
        "rss_after_queries": rss_bytes(),
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "queries": [asdict(t) for t in timings],
        "rare_text_blocks": statistics.mean(opened),
        "trace_filter_bytes": sum(len(h.bloom) for h in history.blocks),
        "text_filter_bytes": sum(len(h.text_bloom) for h in history.blocks),
    }
    store.close()
    return figures


# -- report --------------------------------------------------------------------------


def report(day: dict[str, Any], f: dict[str, Any]) -> None:
    mib, gib = 2**20, 2**30
    records, spans = int(f["records_on_disk"]), int(f["spans_on_disk"])
    hours = int(day["records"]) / RATE / 3600
    print(f"\n{hours:g} h: {records:,} records, {spans:,} spans on disk")
    minutes = float(day["build_s"]) / 60
    cpu = float(day["build_cpu_s"]) / 60
    print(f"build      {minutes:.1f} min ({cpu:.1f} min of CPU on {day['workers']} processes)")
    per_span = f", {f['span_bytes'] / spans:.1f} B/span" if spans else ""
    print(
        f"disk       {f['record_bytes'] / gib:.2f} GiB records in {f['record_blocks']:,} blocks "
        f"({f['record_bytes'] / records:.1f} B/record) + {f['span_bytes'] / gib:.2f} GiB "
        f"spans{per_span}; {(f['record_bytes'] + f['span_bytes']) / gib:.2f} GiB in all"
    )
    print(
        f"restart    {f['restart_s']:.2f} s (Store.open_history; "
        f"{f['spans_restored_to_memory']:,} spans read back into memory)"
    )
    print(
        f"RSS        {f['rss_before_open'] / mib:,.0f} MiB before open, "
        f"{f['rss_after_open'] / mib:,.0f} after, {f['rss_after_queries'] / mib:,.0f} after "
        f"the queries, peak {f['rss_peak'] / mib:,.0f}; the blocks' filters "
        f"{f['trace_filter_bytes'] / mib:,.0f} MiB of trace ids, "
        f"{f['text_filter_bytes'] / mib:,.0f} MiB of text ({f['text_filter_bytes'] / records:.2f} "
        "B/record)"
    )
    print(f"\n{'query':38} {'n':>4} {'first':>9} {'p50':>9} {'p95':>9} {'max':>9}  last found")
    for q in f["queries"]:
        print(
            f"{q['name']:38} {q['n']:>4} {q['first_ms']:>9.1f} {q['p50_ms']:>9.1f} "
            f"{q['p95_ms']:>9.1f} {q['max_ms']:>9.1f}  {q['found']}"
        )
    print("(milliseconds; timeline pages of 100 through the observe tool)")
    print(
        f"a rare text opens {f['rare_text_blocks']:.1f} blocks on average (those its text "
        f"index admits, of {f['record_blocks']:,})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[-3:]) if __doc__ else None,
    )
    parser.add_argument("--hours", type=float, default=24.0, help="of records at 1,000/s")
    parser.add_argument("--records", type=int, help="this many records instead (1,000/s)")
    parser.add_argument("--spans", action="store_true", help="200 spans/s beside the records")
    parser.add_argument("--workers", type=int, default=2, help="build processes (default 2)")
    parser.add_argument("--queries", type=int, default=50, help="of each kind (default 50)")
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds per kind of query, at least 3 run"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", metavar="DIR", help="build in DIR and keep it; if DIR holds a build, reuse it"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    records = args.records or int(args.hours * 3600 * RATE)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gasoline-day-"))
    try:
        manifest = root / MANIFEST
        if manifest.exists():
            day = json.loads(manifest.read_text())
            print(f"reusing the build in {root} ({day['records']:,} records)")
        else:
            root.mkdir(parents=True, exist_ok=True)
            day = build(root, records, args)
            manifest.write_text(json.dumps(day))
        with multiprocessing.get_context("spawn").Pool(1) as fresh:  # a daemon's RSS
            figures = fresh.apply(measure, (root, day, args))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report(day, figures)
    if args.json:
        print(json.dumps({"build": {k: v for k, v in day.items() if "traces" not in k}, **figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
