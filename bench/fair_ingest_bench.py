"""Fair ingest benchmark: OTLP/gRPC and OTLP/HTTP, alone and flooding together.

Each scenario runs against a fresh ``gasoline serve`` (port 0s, stopped with SIGINT), with
one ``otlp_load.py`` process per protocol, both starting at the same instant:

- ``grpc``, ``http``: one protocol alone, at ``--concurrency`` requests in flight;
- ``together``: both at ``--concurrency``;
- ``http-flood``, ``grpc-flood``: that protocol at ``--flood-concurrency``, the other at
  ``--concurrency``, with the queue small enough (``--flood-queue-items``) to fill.

Per protocol it prints acknowledged spans/s, acknowledged requests/s, refused requests
(retryable errors) and request latency p50/p95/p99, each the median of ``--repeats`` runs
(the machine may be shared), and the daemon's drops per receiver from /daemon/status.

    python bench/fair_ingest_bench.py                      # every scenario, 3 runs each
    python bench/fair_ingest_bench.py --scenarios together http-flood --repeats 5 --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

import otlp_load  # noqa: E402
from ingest_bench import running_daemon  # noqa: E402

__all__ = ["SCENARIOS", "main", "run_scenario"]

SCENARIOS = ("grpc", "http", "together", "http-flood", "grpc-flood")
_PROTOCOLS = ("grpc", "http")
# HTTP sends request numbers from here on, so the two loads never share a trace id.
_HTTP_START_SEQ = 10_000_000
_START_DELAY_S = 3.0  # time for both load processes to load their pool before sending


def _concurrency(scenario: str, args: argparse.Namespace) -> dict[str, int]:
    if scenario in _PROTOCOLS:
        return {scenario: args.concurrency}
    if scenario == "together":
        return {p: args.concurrency for p in _PROTOCOLS}
    flooding = scenario.removesuffix("-flood")
    return {p: args.flood_concurrency if p == flooding else args.concurrency for p in _PROTOCOLS}


def _write_config(directory: str, scenario: str, args: argparse.Namespace) -> str:
    items = args.flood_queue_items if scenario.endswith("-flood") else args.queue_items
    path = os.path.join(directory, f"{scenario}.yaml")
    data = tempfile.mkdtemp(prefix=f"{scenario}-data-", dir=directory)  # fresh for each run
    with open(path, "w") as f:
        f.write(
            "service:\n"
            f"  queue: {{max_items: {items}}}\n"
            f"  store: {{max_spans: {args.max_spans}, max_traces: {args.max_spans}, "
            "max_records: 1000,\n"
            f"          history: {{dir: '{data}'}}}}\n"
        )
    return path


def run_scenario(scenario: str, args: argparse.Namespace, tmp: str) -> dict[str, Any]:
    """One run of ``scenario``: per-protocol load summaries and the daemon's drops."""
    config = _write_config(tmp, scenario, args)
    with running_daemon(config, os.path.join(tmp, f"daemon-{scenario}.log")) as daemon:
        start_at = time.time() + _START_DELAY_S
        loads: dict[str, subprocess.Popen[str]] = {}
        for protocol, concurrency in _concurrency(scenario, args).items():
            target = ["--grpc", daemon.grpc] if protocol == "grpc" else ["--http", daemon.http]
            start_seq = 0 if protocol == "grpc" else _HTTP_START_SEQ
            cmd = [
                sys.executable,
                str(BENCH_DIR / "otlp_load.py"),
                *target,
                "--duration",
                str(args.duration),
                "--concurrency",
                str(concurrency),
                "--pool-cache",
                args.pool_cache,
                "--start-seq",
                str(start_seq),
                "--start-at",
                str(start_at),
                "--json",
            ]
            loads[protocol] = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        out: dict[str, Any] = {}
        for protocol, process in loads.items():
            stdout, stderr = process.communicate(timeout=args.duration + 120)
            if process.returncode not in (0, 1) or not stdout.strip():
                raise RuntimeError(f"{protocol} load failed ({process.returncode}): {stderr}")
            out[protocol] = json.loads(stdout.strip().splitlines()[-1])
        status = daemon.status()
    out["dropped"] = status["pipeline"]["dropped"]
    out["receivers"] = status["pipeline"].get("receivers", {})
    return out


_FIGURES = {
    "spans/s": lambda s: s["ok_spans_per_s"],
    "req/s": lambda s: s["ok_requests"] / s["elapsed_s"],
    "refused/s": lambda s: s["failed_requests"] / s["elapsed_s"],
    "p50 ms": lambda s: s["latency_ms"]["p50"],
    "p95 ms": lambda s: s["latency_ms"]["p95"],
    "p99 ms": lambda s: s["latency_ms"]["p99"],
}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per protocol, the median of each figure over the runs."""
    return {
        protocol: {
            name: round(statistics.median(figure(run[protocol]) for run in runs), 1)
            for name, figure in _FIGURES.items()
        }
        for protocol in _PROTOCOLS
        if protocol in runs[0]
    }


def _print_table(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"median of {args.repeats} runs of {args.duration:g} s; concurrency {args.concurrency}, "
        f"flood {args.flood_concurrency}; queue {args.queue_items} items "
        f"({args.flood_queue_items} in floods)"
    )
    header = f"{'scenario':<12}{'protocol':<9}" + "".join(f"{name:>12}" for name in _FIGURES)
    print(header)
    for scenario, result in results.items():
        for protocol, figures in result["median"].items():
            cells = "".join(f"{figures[name]:>12,.1f}" for name in _FIGURES)
            print(f"{scenario:<12}{protocol:<9}{cells}")
        last = result["runs"][-1]
        if last["dropped"] or last["receivers"]:
            print(f"{'':<12}last run: dropped {last['dropped']}; receivers {last['receivers']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario (3)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run (8)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument(
        "--flood-concurrency", type=int, default=64, help="the flooding protocol's (64)"
    )
    parser.add_argument(
        "--queue-items", type=int, default=1_000_000, help="service.queue.max_items (1000000)"
    )
    parser.add_argument(
        "--flood-queue-items",
        type=int,
        default=20_000,
        help="service.queue.max_items in floods, small enough to fill (20000)",
    )
    parser.add_argument(
        "--max-spans", type=int, default=4_000_000, help="store limit: spans and traces"
    )
    parser.add_argument("--pool-cache", help="the load generator's pool pickle (a temp file)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gasoline-fair-") as tmp:
        if args.pool_cache is None:
            args.pool_cache = os.path.join(tmp, "pool.pickle")
        otlp_load.load_or_build_pool(256, cache=args.pool_cache)  # once, before the loads
        results: dict[str, dict[str, Any]] = {}
        for scenario in args.scenarios:
            runs = [run_scenario(scenario, args, tmp) for _ in range(args.repeats)]
            results[scenario] = {"median": summarize(runs), "runs": runs}
            if not args.json:
                print(f"{scenario}: {summarize(runs)}", file=sys.stderr)
    if args.json:
        for result in results.values():
            for run in result["runs"]:
                for protocol in _PROTOCOLS:
                    run.get(protocol, {}).pop("pool", None)
        print(json.dumps(results))
    else:
        _print_table(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
