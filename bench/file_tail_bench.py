"""File tailer benchmark: line-to-queryable latency and big-file throughput.

Runs an in-process daemon with a ``filelog`` receiver on the default poll interval
(100 ms unless ``--poll`` says otherwise). Prints figures; asserts nothing.

* latency: a thread appends one timestamped line every ``1/--rate`` seconds; a watcher
  task checks the store every millisecond and records when each line became queryable.
* throughput: a ``--big-mb`` file of ``--line-bytes`` lines is read from the beginning;
  lines/s and MB/s are measured until the receiver reports every line delivered.

Usage: python bench/file_tail_bench.py [--rate 200] [--seconds 5] [--big-mb 200]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from collector.config import load_config
from collector.daemon import Daemon
from gasoline.components import COMPONENTS
from receivers.file_tail import FileLogReceiver

_SEQ = re.compile(r"seq (\d+)")


def _daemon(tmp: Path, log: Path, *, name: str, poll: str, start_at: str) -> Daemon:
    config = tmp / f"{name}.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            receivers:
              filelog/{name}:
                include: [{log}]
                start_at: {start_at}
                poll_interval: {poll}
                service: {name}
                storage_dir: {tmp / "state" / name}
            service:
              store:
                max_records: 50000
                history: {{dir: '{tmp / f"{name}-data"}'}}
              queue:
                max_items: 50000
              pipelines:
                logs:
                  receivers: [otlp, filelog/{name}]
            """
        )
    )
    return Daemon(
        load_config(config, components=COMPONENTS, ports={"grpc": 0, "http": 0, "api": 0}),
        COMPONENTS,
    )


async def _latency(tmp: Path, *, rate: float, seconds: float, poll: str) -> None:
    log = tmp / "latency.log"
    log.write_text("")
    daemon = _daemon(tmp, log, name="latency", poll=poll, start_at="end")
    await daemon.start()
    total = int(rate * seconds)
    written: dict[int, float] = {}
    seen: dict[int, float] = {}

    def write() -> None:
        interval = 1.0 / rate
        next_at = time.perf_counter()
        with log.open("a") as fh:
            for i in range(total):
                next_at += interval
                delay = next_at - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                written[i] = time.perf_counter()
                fh.write(f"{time.time():.6f} INFO seq {i} request handled\n")
                fh.flush()

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    last_id = 0
    deadline = time.perf_counter() + seconds + 10
    try:
        while len(seen) < total and time.perf_counter() < deadline:
            newest = last_id
            for record in daemon.store.records.iter_newest_first():
                if record.id <= last_id:
                    break
                newest = max(newest, record.id)
                match = _SEQ.search(record.message)
                if match is not None:
                    seen.setdefault(int(match.group(1)), time.perf_counter())
            last_id = newest
            await asyncio.sleep(0.001)
    finally:
        writer.join()
        await daemon.stop()
    latencies = sorted((seen[i] - written[i]) * 1000 for i in seen if i in written)
    if not latencies:
        print("latency: no line became visible")
        return
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"latency  poll={poll} rate={rate:.0f} lines/s for {seconds:.0f}s: "
        f"{len(latencies)}/{total} seen, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"max {latencies[-1]:.1f} ms"
    )


async def _throughput(tmp: Path, *, megabytes: int, line_bytes: int, poll: str) -> None:
    log = tmp / "big.log"
    filler = "x" * max(0, line_bytes - 40)
    lines = 0
    with log.open("w") as fh:
        while fh.tell() < megabytes * 1_000_000:
            fh.write(
                "".join(
                    f"2024-05-01T12:00:00Z INFO seq {i} {filler}\n"
                    for i in range(lines, lines + 1000)
                )
            )
            lines += 1000
    size = log.stat().st_size
    daemon = _daemon(tmp, log, name="big", poll=poll, start_at="beginning")
    started = time.perf_counter()
    await daemon.start()
    [receiver] = [r for r in daemon.receivers if isinstance(r, FileLogReceiver)]
    try:
        while receiver.counts["records"] < lines:
            await asyncio.sleep(0.01)
        await daemon.pipeline.drained()
        elapsed = time.perf_counter() - started
    finally:
        await daemon.stop()
    print(
        f"throughput  {size / 1e6:.0f} MB, {lines} lines of {line_bytes} B: {elapsed:.2f} s, "
        f"{lines / elapsed:,.0f} lines/s, {size / 1e6 / elapsed:.1f} MB/s"
    )


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gasoline-filelog-bench-") as tmp:
        await _latency(Path(tmp), rate=args.rate, seconds=args.seconds, poll=args.poll)
        for line_bytes in (args.line_bytes, 1000):
            with tempfile.TemporaryDirectory(dir=tmp) as sub:
                await _throughput(
                    Path(sub), megabytes=args.big_mb, line_bytes=line_bytes, poll=args.poll
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="lines/s for latency")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--poll", default="100ms", help="poll_interval")
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--line-bytes", type=int, default=120)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
