"""Memory of ``gasoline serve`` under two floods that grow it when only counts bound it.

Each phase starts a fresh daemon (127.0.0.1, port 0s, stopped with SIGINT) whose store
has a byte budget of ``--budget-mib``, and prints its resident memory (``VmRSS`` from
``/proc/<pid>/status``) while the flood runs, beside what the store says it keeps:

1. ``events``: ``--events`` native events of ``--event-mib`` MiB each to ``POST /event``
   (the daemon's per-value caps are raised to let them through whole), ``--concurrency``
   requests in flight.
2. ``trace``: ``--trace-requests`` OTLP/HTTP requests of ``--spans-per-request`` spans of
   one trace, each span with ``--span-attr-bytes`` of random hex in an attribute; all
   but the first ``max_spans_per_trace`` spans are dropped.
3. ``file``: a ``--file-mib`` MiB log file of varied lines (``retention_bench``'s mix:
   access logs, app logs, JSON, logfmt, SQL, tracebacks) read from its start by a
   ``filelog`` receiver, until every line is parsed (``sent`` counts lines parsed).

A summary gives the budget, RSS before the flood, peak RSS (``VmHWM``), RSS at the end,
and the store's bytes, evictions and drops. Linux only (reads ``/proc``).

    python bench/memory_bench.py                      # both phases, ~1 minute
    python bench/memory_bench.py --phases events --budget-mib 32 --events 200
    python bench/memory_bench.py --phases file --budget-mib 512 --file-mib 300
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

from ingest_bench import Daemon, running_daemon  # noqa: E402
from retention_bench import make_lines  # noqa: E402

MIB = 1024 * 1024
SPANS_PER_TRACE = 1000


def vm_bytes(pid: int, field: str) -> int:
    """``VmRSS`` or ``VmHWM`` (peak) of a process, in bytes."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB$", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


class Sampler:
    """Samples the daemon's RSS and store every ``interval`` s on a thread, printing rows."""

    def __init__(self, daemon: Daemon, interval: float, *, quiet: bool) -> None:
        self.daemon = daemon
        self.interval = interval
        self.quiet = quiet
        self.samples: list[dict[str, Any]] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = time.monotonic()

    def __enter__(self) -> Sampler:
        if not self.quiet:
            print(f"{'t s':>6} {'sent':>7} {'RSS MiB':>8} {'store MiB':>9} {'evicted':>8}")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        store = self.daemon.status()["store"]
        row = {
            "t_s": round(time.monotonic() - self._started, 1),
            "sent": self.sent,
            "rss": vm_bytes(self.daemon.process.pid, "VmRSS"),
            "store_bytes": store.get("bytes", {}).get("used"),
            "evicted": _evicted(store),
        }
        self.samples.append(row)
        if not self.quiet:
            used = "-" if row["store_bytes"] is None else f"{row['store_bytes'] / MIB:.1f}"
            print(
                f"{row['t_s']:>6} {row['sent']:>7} {row['rss'] / MIB:>8.1f} {used:>9} "
                f"{row['evicted']:>8}",
                flush=True,
            )


def _evicted(store: dict[str, Any]) -> int:
    return sum(count for kind in ("spans", "records") for count in store["evicted"][kind].values())


def _config(directory: str, name: str, budget_mib: int, event_mib: float) -> str:
    value_chars = int(event_mib * MIB) + 65_536
    path = os.path.join(directory, f"{name}.yaml")
    with open(path, "w") as f:
        if name == "file":
            log = os.path.join(directory, "big.log")
            f.write(
                f"receivers:\n  filelog/big:\n    include: ['{log}']\n"
                "    start_at: beginning\n    service: big\n"
                f"    storage_dir: '{os.path.join(directory, 'file-state')}'\n"
            )
        f.write(
            "service:\n  store:\n"
            f"    max_bytes: {budget_mib * MIB}\n"
            f"    max_value_chars: {value_chars}\n"
            f"    max_record_bytes: {min(budget_mib * MIB, 2 * value_chars + MIB)}\n"
            f"    max_spans_per_trace: {SPANS_PER_TRACE}\n"
            f"    history: {{dir: '{os.path.join(directory, name + '-data')}'}}\n"
        )
        if name == "file":
            f.write("  pipelines:\n    logs:\n      receivers: [otlp, filelog/big]\n")
    return path


def _write_log(path: str, mib: float) -> int:
    """A log file of about ``mib`` MiB of varied lines; returns its line count."""
    size = lines = 0
    with open(path, "w") as f:
        for _, batch, _ in make_lines(10**9, seed=7):
            text = "\n".join(batch) + "\n"
            f.write(text)
            size += len(text)
            lines += text.count("\n")
            if size >= mib * MIB:
                return lines
    return lines


def _read_file(daemon: Daemon, lines: int, sampler: Sampler) -> int:
    """Wait until the daemon has parsed (or dropped) all ``lines``; returns those dropped."""
    while True:
        accounting = daemon.status()["accounting"]["lines"]
        dropped = sum(accounting["dropped"].values())
        sampler.sent = accounting["parsed"]
        if accounting["parsed"] + dropped >= lines:
            return dropped
        time.sleep(0.2)


async def _post_all(url: str, bodies: Any, n: int, concurrency: int, sampler: Sampler) -> int:
    """POST ``n`` bodies from the ``bodies(i)`` factory, ``concurrency`` at a time;
    returns how many were not answered 200."""
    failed = 0
    next_i = 0

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal failed, next_i
        while next_i < n:
            i, next_i = next_i, next_i + 1
            body, content_type = bodies(i)
            headers = {"Content-Type": content_type}
            async with http.post(url, data=io.BytesIO(body), headers=headers) as resp:
                await resp.read()
                failed += resp.status != 200
            sampler.sent += 1

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
    return failed


def _event_body(size: int) -> Any:
    filler = "x" * size

    def body(i: int) -> tuple[bytes, str]:
        event = {"message": f"event {i} " + filler, "source": "custom", "level": "info"}
        return json.dumps(event).encode(), "application/json"

    return body


def _trace_body(spans: int, attr_bytes: int) -> Any:
    trace_id = os.urandom(16)

    def body(i: int) -> tuple[bytes, str]:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        service = resource_spans.resource.attributes.add()
        service.key, service.value.string_value = "service.name", "flood"
        scope_spans = resource_spans.scope_spans.add()
        for k in range(spans):
            span = scope_spans.spans.add()
            span.trace_id, span.span_id = trace_id, os.urandom(8)
            span.name = f"op {k}"
            span.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1000 + k
            span.end_time_unix_nano = span.start_time_unix_nano + 500
            attribute = span.attributes.add()
            attribute.key = "payload"
            attribute.value.string_value = os.urandom(attr_bytes // 2).hex()
        return request.SerializeToString(), "application/x-protobuf"

    return body


def phase(name: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    config = _config(tmp, name, args.budget_mib, args.event_mib)
    if name == "file":
        lines = _write_log(os.path.join(tmp, "big.log"), args.file_mib)
    with running_daemon(config, os.path.join(tmp, f"{name}.log")) as daemon:
        pid = daemon.process.pid
        baseline = vm_bytes(pid, "VmRSS")
        started = time.monotonic()
        with Sampler(daemon, args.interval, quiet=args.json) as sampler:
            if name == "file":
                n = lines
                failed = _read_file(daemon, lines, sampler)
            else:
                if name == "events":
                    url, n = daemon.api + "/event", args.events
                    bodies = _event_body(int(args.event_mib * MIB))
                else:
                    url, n = daemon.http + "/v1/traces", args.trace_requests
                    bodies = _trace_body(args.spans_per_request, args.span_attr_bytes)
                failed = asyncio.run(_post_all(url, bodies, n, args.concurrency, sampler))
        elapsed = time.monotonic() - started
        status = daemon.status()
        store = status["store"]
        return {
            "budget_bytes": args.budget_mib * MIB,
            "requests": n,
            "failed_requests": failed,
            "elapsed_s": round(elapsed, 1),
            "rss_before": baseline,
            "rss_peak": vm_bytes(pid, "VmHWM"),
            "rss_end": vm_bytes(pid, "VmRSS"),
            "store_bytes": store.get("bytes", {}).get("used"),
            "store_spans": store["spans"],
            "store_records": store["records"],
            "evicted": store["evicted"],
            "dropped_spans": store["dropped"]["spans"],
            "samples": sampler.samples,
        }


def _summary(name: str, r: dict[str, Any]) -> str:
    used = "-" if r["store_bytes"] is None else f"{r['store_bytes'] / MIB:.1f}"
    return "\n".join(
        [
            f"{name}: {r['requests']} {'lines' if name == 'file' else 'requests'} in "
            f"{r['elapsed_s']} s, {r['failed_requests']} "
            f"{'dropped' if name == 'file' else 'failed'}",
            f"  budget {r['budget_bytes'] / MIB:.0f} MiB; store keeps {used} MiB "
            f"({r['store_records']} records, {r['store_spans']} spans)",
            f"  RSS before {r['rss_before'] / MIB:.0f} MiB, peak {r['rss_peak'] / MIB:.0f} MiB, "
            f"end {r['rss_end'] / MIB:.0f} MiB",
            f"  evicted {json.dumps(r['evicted'])}; dropped spans {json.dumps(r['dropped_spans'])}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-mib", type=int, default=64, help="store byte budget (64)")
    parser.add_argument("--events", type=int, default=1000, help="events to send (1000)")
    parser.add_argument("--event-mib", type=float, default=1.0, help="size of each event (1)")
    parser.add_argument(
        "--trace-requests", type=int, default=2000, help="span requests to send (2000)"
    )
    parser.add_argument("--spans-per-request", type=int, default=100)
    parser.add_argument("--span-attr-bytes", type=int, default=1000)
    parser.add_argument("--file-mib", type=float, default=300, help="log file size (300)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (4)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--phases", default="events,trace", help="events,trace or one of them")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gasoline-membench-") as tmp:
        for name in args.phases.split(","):
            if name not in ("events", "trace", "file"):
                parser.error(f"--phases: {name!r} is not a phase (events, trace, file)")
            if not args.json:
                print(f"phase {name}", flush=True)
            report[name] = phase(name, args, tmp)
    if args.json:
        print(json.dumps(report))
    else:
        print()
        for name, result in report.items():
            print(_summary(name, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
