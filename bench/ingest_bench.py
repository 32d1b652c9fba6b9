"""End-to-end ingest benchmark for ``gasoline serve``: throughput, latency, memory, lookups.

Phases (each against a fresh daemon on 127.0.0.1 with port 0s, stopped with SIGINT):

1. gRPC throughput: ``otlp_load.py`` in another process sends for ``--duration`` s; spans
   per second counted in the store (store.spans delta over the load's first send to the
   moment the pipeline queue was seen empty); request latency from the load generator.
2. Fill to ``--fill-spans`` (1,000,000) over gRPC with the store limit 10% above, then
   RSS per stored span and ``--lookups`` sequential ``GET /v1/traces/{id}`` of random
   trace ids that were sent.
3. HTTP/protobuf throughput, as 1.
4. In-process (a child Python process): a ``Store`` filled with the same requests via
   ``decode_traces`` + ``SpanStore.add``; RSS per span; ``SpanStore.trace`` and
   ``query.trace_document`` latency; a per-span memory breakdown of the store.

    python bench/ingest_bench.py                 # everything, ~2-3 minutes
    python bench/ingest_bench.py --json --duration 10
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import http.client
import itertools
import json
import os
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:0] = [str(BENCH_DIR), str(REPO)]

import otlp_load  # noqa: E402

_PORT_LINES = {
    "grpc": re.compile(r"OTLP/gRPC\s+(\S+):(\d+)"),
    "http": re.compile(r"OTLP/HTTP\s+(http://\S+)"),
    "api": re.compile(r"API\s+(http://\S+)"),
}


# -- the daemon -----------------------------------------------------------------------


@dataclass(slots=True)
class Daemon:
    process: subprocess.Popen[bytes]
    grpc: str
    http: str
    api: str

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.api + "/daemon/status", timeout=10) as response:
            data: dict[str, Any] = json.load(response)
        return data


# The byte budget is set out of the way: the phases bound the store by span count.
_MAX_BYTES = 1 << 40


def _write_config(directory: str, name: str, max_spans: int, max_traces: int) -> str:
    path = os.path.join(directory, f"{name}.yaml")
    with open(path, "w") as f:
        f.write(
            "service:\n"
            f"  store: {{max_spans: {max_spans}, max_traces: {max_traces}, max_records: 1000,\n"
            f"          max_bytes: {_MAX_BYTES},\n"
            f"          history: {{dir: '{os.path.join(directory, name + '-data')}'}}}}\n"
        )
    return path


@contextlib.contextmanager
def running_daemon(config: str, log_path: str, *, timeout_s: float = 30.0) -> Iterator[Daemon]:
    """``gasoline serve`` on port 0s; yields once it printed ``ready``; always SIGINTs it."""
    cmd = [
        sys.executable,
        "-m",
        "gasoline",
        "serve",
        "--config",
        config,
        "--grpc-port",
        "0",
        "--http-port",
        "0",
        "--api-port",
        "0",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log)
    try:
        assert process.stdout is not None
        fd = process.stdout.fileno()
        out = b""
        end = time.monotonic() + timeout_s
        while b"ready" not in out and time.monotonic() < end:
            readable, _, _ = select.select([fd], [], [], 0.5)
            if readable:
                data = os.read(fd, 65536)
                if not data:
                    break
                out += data
            elif process.poll() is not None:
                break
        text = out.decode(errors="replace")
        found: dict[str, str] = {}
        for key, pattern in _PORT_LINES.items():
            if m := pattern.search(text):
                found[key] = f"{m.group(1)}:{m.group(2)}" if key == "grpc" else m.group(1)
        if "ready" not in text or set(found) != set(_PORT_LINES):
            raise RuntimeError(f"daemon did not start: {text!r}; see {log_path}")
        yield Daemon(process, found["grpc"], found["http"], found["api"])
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _wait_queue_empty(daemon: Daemon, timeout_s: float = 60.0) -> dict[str, Any]:
    end = time.monotonic() + timeout_s
    status = daemon.status()
    while status["pipeline"]["queue"]["depth"] and time.monotonic() < end:
        time.sleep(0.05)
        status = daemon.status()
    return status


def _load(
    target: list[str], common: list[str], extra: list[str], timeout_s: float
) -> dict[str, Any]:
    """Run otlp_load.py in its own process and return its JSON summary."""
    cmd = [sys.executable, str(BENCH_DIR / "otlp_load.py"), *target, *common, *extra, "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        raise RuntimeError(f"load generator failed ({done.returncode}): {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


class StatusPoller:
    """Samples /daemon/status every ``interval_s`` in a thread: store, queue depth, RSS."""

    def __init__(self, daemon: Daemon, interval_s: float = 1.0) -> None:
        self.daemon = daemon
        self.interval_s = interval_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        t0 = time.time()
        while not self._stop.wait(self.interval_s):
            try:
                s = self.daemon.status()
            except OSError:
                continue
            self.samples.append(
                {
                    "t": round(time.time() - t0, 2),
                    "stored": s["store"]["spans"],
                    "accepted": s["pipeline"]["accepted"].get("spans", 0),
                    "queue_depth": s["pipeline"]["queue"]["depth"],
                    "rss_mb": round(s["memory"]["rss_bytes"] / 1e6),
                }
            )


def _rate_spread(samples: list[dict[str, Any]], until_s: float) -> dict[str, float]:
    """Min / median / max of the stored-spans rate between consecutive samples while
    the load ran (intervals ending after ``until_s`` are left out)."""
    rates = sorted(
        (b["stored"] - a["stored"]) / (b["t"] - a["t"])
        for a, b in itertools.pairwise(samples)
        if b["t"] <= until_s and b["t"] > a["t"]
    )
    if not rates:
        return {}
    return {
        "min": round(rates[0]),
        "median": round(rates[len(rates) // 2]),
        "max": round(rates[-1]),
    }


def _spans_evicted(status: dict[str, Any]) -> int:
    return int(sum(status["store"]["evicted"]["spans"].values()))


# -- phases ---------------------------------------------------------------------------


def throughput_phase(
    transport: str, args: argparse.Namespace, tmp: str, common: list[str]
) -> dict[str, Any]:
    """Load for --duration s into a store big enough to evict nothing."""
    limit = args.throughput_max_spans
    config = _write_config(tmp, f"throughput-{transport}", limit, limit)
    with running_daemon(config, os.path.join(tmp, f"daemon-{transport}.log")) as daemon:
        before = daemon.status()
        target = ["--grpc", daemon.grpc] if transport == "grpc" else ["--http", daemon.http]
        profiler = _start_py_spy(args, daemon, transport)
        try:
            t_poll = time.time()
            with StatusPoller(daemon) as poller:
                load = _load(
                    target,
                    common,
                    ["--duration", str(args.duration), "--drain-url", daemon.api],
                    timeout_s=args.duration + 240,
                )
        finally:
            profile = _stop_py_spy(profiler)
        after = _wait_queue_empty(daemon)
    stored = after["store"]["spans"] - before["store"]["spans"]
    wall = load["drained_at"] - load["started_at"]
    return {
        "transport": transport,
        "duration_s": args.duration,
        "concurrency": args.concurrency,
        "wall_s_incl_drain": round(wall, 3),
        "drain_s": round(load["drained_at"] - load["finished_at"], 3),
        "stored_spans": stored,
        "stored_spans_per_s": round(stored / wall, 1),
        "sent_spans_per_s": load["sent_spans_per_s"],
        "acked_spans_per_s": load["ok_spans_per_s"],
        "requests_per_s": load["requests_per_s"],
        "failed_requests": load["failed_requests"],
        "errors": load["errors"],
        "latency_ms": load["latency_ms"],
        "dropped": after["pipeline"]["dropped"],
        "evicted_spans": _spans_evicted(after),
        "rss_baseline_bytes": before["memory"]["rss_bytes"],
        "rss_after_bytes": after["memory"]["rss_bytes"],
        "rss_bytes_per_span": round(
            (after["memory"]["rss_bytes"] - before["memory"]["rss_bytes"]) / max(1, stored), 1
        ),
        "max_queue_depth": max((x["queue_depth"] for x in poller.samples), default=0),
        "stored_spans_per_s_1s": _rate_spread(poller.samples, load["finished_at"] - t_poll),
        "status_samples": poller.samples,
        "py_spy": profile,
    }


def fill_and_lookup_phase(
    args: argparse.Namespace, tmp: str, common: list[str], pool: otlp_load.Pool
) -> dict[str, Any]:
    """Fill to --fill-spans over gRPC (limit 10% above), measure RSS, then HTTP lookups."""
    fill = args.fill_spans
    config = _write_config(tmp, "fill", int(fill * 1.1), fill)
    ids_file = os.path.join(tmp, "trace-ids-{}.txt")
    with running_daemon(config, os.path.join(tmp, "daemon-fill.log")) as daemon:
        before = daemon.status()
        base_spans = before["store"]["spans"]
        next_seq = 0
        loads = []
        status = before
        for attempt in range(4):  # top up if requests failed; bounded
            missing = fill - (status["store"]["spans"] - base_spans)
            if missing <= 0:
                break
            n = pool.requests_for(missing, start=next_seq)
            load = _load(
                ["--grpc", daemon.grpc],
                common,
                [
                    "--requests",
                    str(n),
                    "--duration",
                    "180",
                    "--start-seq",
                    str(next_seq),
                    "--trace-ids-out",
                    ids_file.format(attempt),
                    "--drain-url",
                    daemon.api,
                ],
                timeout_s=400,
            )
            loads.append(load)
            next_seq = load["next_seq"]
            status = _wait_queue_empty(daemon)
        stored = status["store"]["spans"] - base_spans
        rss_delta = status["memory"]["rss_bytes"] - before["memory"]["rss_bytes"]
        trace_ids: list[str] = []
        for attempt in range(len(loads)):
            with open(ids_file.format(attempt)) as f:
                trace_ids += [line.strip() for line in f if line.strip()]
        profiler = _start_py_spy(args, daemon, "lookup")
        try:
            lookups = _http_lookups(daemon.api, trace_ids, args.lookups, args.seed)
        finally:
            lookup_profile = _stop_py_spy(profiler)
        final = daemon.status()
    first = loads[0]
    return {
        "stored_spans": stored,
        "stored_traces": status["store"]["traces"],
        "evicted_spans": _spans_evicted(final),
        "fill_wall_s": round(first["drained_at"] - first["started_at"], 3),
        "fill_stored_spans_per_s": round(
            first["ok_spans"] / max(1e-9, first["drained_at"] - first["started_at"]), 1
        ),
        "fill_latency_ms": first["latency_ms"],
        "rss_baseline_bytes": before["memory"]["rss_bytes"],
        "rss_after_bytes": status["memory"]["rss_bytes"],
        "rss_bytes_per_span": round(rss_delta / max(1, stored), 1),
        "rss_after_lookups_bytes": final["memory"]["rss_bytes"],
        "lookup_http": lookups,
        "py_spy": lookup_profile,
    }


def _http_lookups(api: str, trace_ids: list[str], n: int, seed: int) -> dict[str, Any]:
    """``n`` sequential GET /v1/traces/{id} on one keep-alive connection."""
    if not trace_ids:
        return {"count": 0}
    rng = random.Random(seed)
    picks = [rng.choice(trace_ids) for _ in range(n)]
    host, port = api.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    latencies: list[float] = []
    spans = 0
    statuses: dict[int, int] = {}
    try:
        for tid in picks:
            t0 = time.perf_counter()
            conn.request("GET", f"/v1/traces/{tid}")
            response = conn.getresponse()
            body = response.read()
            latencies.append(time.perf_counter() - t0)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status == 200:
                spans += json.loads(body)["span_count"]
    finally:
        conn.close()
    latencies.sort()
    return {
        "count": n,
        "statuses": statuses,
        "mean_spans_per_trace": round(spans / max(1, statuses.get(200, 0)), 1),
        **_quantiles_ms(latencies),
    }


def _quantiles_ms(sorted_s: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(otlp_load.percentile(sorted_s, 50) * 1e3, 3),
        "p90_ms": round(otlp_load.percentile(sorted_s, 90) * 1e3, 3),
        "p99_ms": round(otlp_load.percentile(sorted_s, 99) * 1e3, 3),
        "max_ms": round(sorted_s[-1] * 1e3, 3) if sorted_s else 0.0,
    }


def _start_py_spy(
    args: argparse.Namespace, daemon: Daemon, name: str
) -> tuple[subprocess.Popen[bytes], str] | None:
    """py-spy record of the daemon until stopped (at most 10 min), if --py-spy DIR was given."""
    if not args.py_spy:
        return None
    exe = Path(sys.executable).with_name("py-spy")
    out = os.path.join(args.py_spy, f"daemon-{name}.txt")
    os.makedirs(args.py_spy, exist_ok=True)
    cmd = [
        str(exe) if exe.exists() else "py-spy",
        "record",
        "--pid",
        str(daemon.process.pid),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        out,
        "--nonblocking",
        "--duration",
        "600",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # let it attach before the load starts
    return proc, out


def _stop_py_spy(profiler: tuple[subprocess.Popen[bytes], str] | None) -> dict[str, Any] | None:
    if profiler is None:
        return None
    proc, out = profiler
    proc.send_signal(signal.SIGINT)  # py-spy writes what it has on Ctrl-C
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    if not os.path.exists(out):
        return {"error": "py-spy wrote nothing (not installed, or no ptrace permission?)"}
    return {"raw": out, **summarize_collapsed(out)}


def summarize_collapsed(path: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [re.sub(r":\d+\)$", ")", fr) for fr in stack.split(";")]
            total += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                incl[frame] = incl.get(frame, 0) + count

    def table(d: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [(name, round(100 * c / max(1, total), 1)) for name, c in ranked]

    return {"samples": total, "self_pct": table(own), "inclusive_pct": table(incl)}


# -- in-process store measurement (runs in a child process) ---------------------------


def in_process(args: argparse.Namespace) -> dict[str, Any]:
    """Fill a Store with --fill-spans decoded spans, then time lookups; RSS per span."""
    import cProfile
    import pstats

    from collector.config import RedactionConfig, StoreConfig
    from collector.daemon import rss_bytes
    from collector.query import trace_document
    from collector.redact import Redactor
    from collector.store import Store
    from receivers.otlp_codec import decode_traces

    pool = otlp_load.load_or_build_pool(args.requests_pool, seed=args.seed, cache=args.pool_cache)
    n_requests = pool.requests_for(args.fill_spans)
    limit = int(args.fill_spans * 1.1)
    store = Store(StoreConfig(max_spans=limit, max_traces=limit, max_bytes=_MAX_BYTES))
    redactor = Redactor(RedactionConfig())  # the default config's processor, as Pipeline does
    profiler = cProfile.Profile() if args.cprofile else None

    gc.collect()
    rss_before = rss_bytes()
    decode_s = add_s = 0.0
    for seq in range(n_requests):
        raw = otlp_load.payload(pool, seq)
        if raw is pool.raw[seq % len(pool)]:
            raw = bytes(bytearray(raw))  # the daemon gets a fresh object per request
        if profiler:
            profiler.enable()
        t0 = time.perf_counter()
        batch = decode_traces(raw, redactor=redactor).batch
        t1 = time.perf_counter()
        store.spans.add(batch, time.time_ns())
        t2 = time.perf_counter()
        if profiler:
            profiler.disable()
        decode_s += t1 - t0
        add_s += t2 - t1
        del raw, batch
    gc.collect()
    rss_after = rss_bytes()
    stored = store.spans.span_count

    ids = otlp_load.trace_ids_for(pool, range(n_requests))
    rng = random.Random(args.seed)
    picks = [rng.choice(ids) for _ in range(args.lookups)]
    t_trace: list[float] = []
    t_doc: list[float] = []
    t_json: list[float] = []
    span_total = 0
    lookup_profile = cProfile.Profile() if args.cprofile else None
    for tid in picks:
        t0 = time.perf_counter()
        spans = store.spans.trace(tid)
        t1 = time.perf_counter()
        if lookup_profile:
            lookup_profile.enable()
        t2 = time.perf_counter()
        doc = trace_document(store, tid)
        t3 = time.perf_counter()
        json.dumps(doc)
        t4 = time.perf_counter()
        if lookup_profile:
            lookup_profile.disable()
        t_trace.append(t1 - t0)
        t_doc.append(t3 - t2)
        t_json.append(t4 - t2)
        span_total += len(spans)
    for values in (t_trace, t_doc, t_json):
        values.sort()

    result: dict[str, Any] = {
        "requests": n_requests,
        "stored_spans": stored,
        "stored_traces": store.spans.trace_count,
        "encoded_bytes_per_span": round(pool.total_bytes / pool.total_spans, 1),
        "decode_add_spans_per_s": round(stored / max(1e-9, decode_s + add_s), 1),
        "decode_us_per_request": round(decode_s / n_requests * 1e6, 1),
        "add_us_per_request": round(add_s / n_requests * 1e6, 1),
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "rss_bytes_per_span": round((rss_after - rss_before) / max(1, stored), 1),
        "memory_breakdown_bytes_per_span": _store_breakdown(store),
        "lookups": args.lookups,
        "mean_spans_per_trace": round(span_total / max(1, len(picks)), 1),
        "trace": _quantiles_ms(t_trace),
        "trace_document": _quantiles_ms(t_doc),
        "trace_document_json": _quantiles_ms(t_json),
    }
    if profiler and lookup_profile:
        for name, prof in (("ingest", profiler), ("lookup", lookup_profile)):
            path = os.path.join(args.cprofile, f"inprocess-{name}.txt")
            os.makedirs(args.cprofile, exist_ok=True)
            with open(path, "w") as f:
                pstats.Stats(prof, stream=f).sort_stats("tottime").print_stats(25)
            result[f"cprofile_{name}"] = path
    return result


def _store_breakdown(store: Any) -> dict[str, float]:
    """Approximate bytes per stored span by component (getsizeof; shared objects once)."""
    spans = store.spans
    n = max(1, spans.span_count)
    sizes: dict[str, int] = {}
    seen: set[int] = set()

    def add(key: str, obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        sizes[key] = sizes.get(key, 0) + sys.getsizeof(obj)

    for chunk in spans._chunks:
        add("ids (trace/span/parent bytes)", chunk.trace_ids)
        add("ids (trace/span/parent bytes)", chunk.span_ids)
        add("ids (trace/span/parent bytes)", chunk.parent_ids)
        add("times (starts/ends arrays)", chunk.starts)
        add("times (starts/ends arrays)", chunk.ends)
        add("names/services index arrays", chunk.name_index)
        add("names/services index arrays", chunk.service_index)
        add("names/services tables", chunk.names)
        add("names/services tables", chunk.services)
        for s in (*chunk.names, *chunk.services):
            add("names/services tables", s)
        add("kinds/statuses", chunk.kinds)
        add("kinds/statuses", chunk.statuses)
        add("chunk objects", chunk)
        detail = chunk.detail
        add("detail: request bytes (zlib)", detail._packed)
        if detail._plain is not None:
            add("detail: decompressed cache", detail._plain)
        add("detail: span byte ranges", detail._ranges)
        if detail._kept is not None:
            add("detail: span byte ranges", detail._kept)
        add("detail: owners", detail._owners)
        add("detail: groups (resource bytes)", detail._groups)
        for group in detail._groups:
            add("detail: groups (resource bytes)", group)
            add("detail: groups (resource bytes)", group[0])
            add("detail: groups (resource bytes)", group[1])
        add("chunk objects", detail)
    add("trace index dict", spans._traces)
    for tid, refs in spans._traces.items():
        add("trace index keys (bytes)", tid)
        add("trace index ref arrays", refs)
    add("chunk objects", spans._by_seq)
    out = {k: round(v / n, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])}
    out["total (getsizeof)"] = round(sum(sizes.values()) / n, 1)
    return out


def in_process_phase(args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--in-process-worker",
        "--fill-spans",
        str(args.fill_spans),
        "--lookups",
        str(args.lookups),
        "--requests-pool",
        str(args.requests_pool),
        "--seed",
        str(args.seed),
        "--pool-cache",
        args.pool_cache,
    ]
    if args.cprofile:
        cmd += ["--cprofile", args.cprofile]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"in-process worker failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- report ---------------------------------------------------------------------------


def _dropped(dropped: dict[str, dict[str, int]]) -> int:
    return sum(sum(reasons.values()) for reasons in dropped.values())


def _report(r: dict[str, Any]) -> str:
    lines = []
    pool = r["pool"]
    lines.append(
        f"pool: {pool['requests']} requests, {pool['spans']:,} spans, {pool['bytes_per_span']} "
        f"B/span encoded; concurrency {r['concurrency']}; 2-core box, load generator "
        "in its own process"
    )
    lines.append("")
    lines.append(f"{'metric':<56} {'value':>18}  target")
    lines.append("-" * 86)

    def row(name: str, value: str, target: str = "") -> None:
        lines.append(f"{name:<56} {value:>18}  {target}")

    for t in ("grpc", "http"):
        p = r.get(f"throughput_{t}")
        if not p:
            continue
        label = "gRPC" if t == "grpc" else "HTTP/protobuf"
        row(
            f"{label}: stored spans/s ({p['stored_spans']:,} in {p['wall_s_incl_drain']} s)",
            f"{p['stored_spans_per_s']:,.0f}",
            ">= 100,000" if t == "grpc" else "",
        )
        spread = p["stored_spans_per_s_1s"]
        if spread:
            row(
                f"{label}: stored spans/s per ~1 s, min / median / max",
                f"{spread['min'] / 1e3:.0f}k / {spread['median'] / 1e3:.0f}k / "
                f"{spread['max'] / 1e3:.0f}k",
            )
        row(f"{label}: acked spans/s (load generator)", f"{p['acked_spans_per_s']:,.0f}")
        row(
            f"{label}: request latency p50 / p99 ms",
            f"{p['latency_ms']['p50']:.1f} / {p['latency_ms']['p99']:.1f}",
        )
        row(f"{label}: failed requests {p['errors'] or ''}", f"{p['failed_requests']:,}")
        row(
            f"{label}: spans dropped by daemon / evicted",
            f"{_dropped(p['dropped']):,} / {p['evicted_spans']}",
        )
        row(
            f"{label}: max queue depth (1 Hz) / drain s",
            f"{p['max_queue_depth']:,} / {p['drain_s']}",
        )
        row(
            f"{label}: RSS bytes/span at {p['stored_spans']:,} spans",
            f"{p['rss_bytes_per_span']:,.0f}",
        )
    f = r.get("fill")
    if f:
        row(
            f"daemon RSS bytes/span at {f['stored_spans']:,} spans",
            f"{f['rss_bytes_per_span']:,.0f}",
            "<= 400",
        )
        row(
            "daemon RSS baseline -> filled (MB)",
            f"{f['rss_baseline_bytes'] / 1e6:.0f} -> {f['rss_after_bytes'] / 1e6:.0f}",
        )
        lk = f["lookup_http"]
        row(
            f"HTTP GET /v1/traces/{{id}} p50 / p99 ms (n={lk['count']})",
            f"{lk['p50_ms']:.2f} / {lk['p99_ms']:.2f}",
            "p99 < 5",
        )
        row(
            "HTTP lookup statuses / mean spans per trace",
            f"{lk['statuses']} / {lk['mean_spans_per_trace']}",
        )
    i = r.get("in_process")
    if i:
        row(
            f"in-process RSS bytes/span at {i['stored_spans']:,} spans",
            f"{i['rss_bytes_per_span']:,.0f}",
            "<= 400",
        )
        row("in-process decode_traces+add spans/s (1 core)", f"{i['decode_add_spans_per_s']:,.0f}")
        for key, name in (
            ("trace", "SpanStore.trace()"),
            ("trace_document", "trace_document()"),
            ("trace_document_json", "trace_document() + json.dumps"),
        ):
            row(
                f"in-process {name} p50 / p99 ms",
                f"{i[key]['p50_ms']:.3f} / {i[key]['p99_ms']:.3f}",
                "p99 < 5" if key == "trace_document" else "",
            )
        lines.append("")
        lines.append("in-process store memory by component (getsizeof, bytes/span):")
        for name, value in i["memory_breakdown_bytes_per_span"].items():
            lines.append(f"  {name:<40} {value:>8.1f}")
    for key, what in (
        ("throughput_grpc", "gRPC load"),
        ("throughput_http", "HTTP load"),
        ("fill", "HTTP trace lookups"),
    ):
        spy = (r.get(key) or {}).get("py_spy")
        if not spy:
            continue
        lines.append("")
        if "self_pct" not in spy:
            lines.append(f"py-spy during {what}: {spy.get('error')}")
            continue
        lines.append(f"py-spy, daemon during {what} ({spy['samples']} samples), top self %:")
        lines += [f"  {pct:5.1f}%  {name}" for name, pct in spy["self_pct"]]
        lines.append("  top inclusive %:")
        lines += [f"  {pct:5.1f}%  {name}" for name, pct in spy["inclusive_pct"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds of load per throughput phase (default 20)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument(
        "--requests-pool",
        type=int,
        default=256,
        metavar="K",
        help="distinct pre-built requests (default 256)",
    )
    parser.add_argument(
        "--fill-spans",
        type=int,
        default=1_000_000,
        help="spans stored before measuring RSS and lookups (1,000,000)",
    )
    parser.add_argument(
        "--throughput-max-spans",
        type=int,
        default=10_000_000,
        help="store limit during throughput phases, so nothing is evicted",
    )
    parser.add_argument("--lookups", type=int, default=2000, help="trace lookups (2000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--phases",
        default="grpc,fill,http,inprocess",
        help="comma-separated subset of grpc,fill,http,inprocess",
    )
    parser.add_argument(
        "--py-spy", metavar="DIR", help="py-spy record the daemon during throughput phases into DIR"
    )
    parser.add_argument(
        "--cprofile", metavar="DIR", help="cProfile the in-process ingest and lookup loops into DIR"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--in-process-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pool-cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.in_process_worker:
        print(json.dumps(in_process(args)))
        return 0

    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gasoline-bench-") as tmp:
        args.pool_cache = os.path.join(tmp, "pool.pickle")
        t0 = time.perf_counter()
        pool = otlp_load.load_or_build_pool(
            args.requests_pool, seed=args.seed, cache=args.pool_cache
        )
        common = [
            "--concurrency",
            str(args.concurrency),
            "--requests-pool",
            str(args.requests_pool),
            "--seed",
            str(args.seed),
            "--pool-cache",
            args.pool_cache,
        ]
        report: dict[str, Any] = {
            "concurrency": args.concurrency,
            "pool": {
                "requests": len(pool),
                "spans": pool.total_spans,
                "bytes_per_span": round(pool.total_bytes / pool.total_spans, 1),
                "build_s": round(time.perf_counter() - t0, 2),
            },
        }
        steps: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
            ("grpc", "throughput_grpc", lambda: throughput_phase("grpc", args, tmp, common)),
            ("fill", "fill", lambda: fill_and_lookup_phase(args, tmp, common, pool)),
            ("http", "throughput_http", lambda: throughput_phase("http", args, tmp, common)),
            ("inprocess", "in_process", lambda: in_process_phase(args, tmp)),
        ]
        for phase, key, run in steps:
            if phase in phases:
                if not args.json:
                    print(f"[{time.monotonic() - started:6.1f}s] phase {phase} ...", flush=True)
                report[key] = run()
    report["total_s"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(report))
    else:
        print()
        print(_report(report))
        print(f"\ntotal {report['total_s']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
