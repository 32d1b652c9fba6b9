"""``gasoline-run`` benchmark: end-to-end lines/s, pass-through overhead, line-to-queryable latency.

Starts ``gasoline serve`` (port 0s, a temporary config with a large record store) as a
subprocess and reads its ``API http://...`` line. Prints figures; asserts nothing.

1. Throughput: a child prints ``--lines`` (500,000) lines as fast as it can through the
   wrapper; lines/s = lines / (start to all records queryable in the daemon).
2. Overhead: 1,000,000 lines to /dev/null, bare command versus through the wrapper (pipes
   mode), median of ``--repeat`` runs taken round-robin: the child's own run time (start to
   its last write) and the wrapper's total wall time (which includes delivering everything
   to the daemon).
   Target: child time within 10 % of bare.
3. Latency: a child writes timestamped lines at ``--rate`` (200/s) for 5 s; a poller on
   ``/buffers/timeline`` notes when each becomes queryable; p50/p99. Target p50 10 ms.

    python bench/run_wrapper_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
WRAPPER = [
    sys.executable,
    "-c",
    "import sys; from receivers.run_wrapper.cli import main; sys.exit(main())",
]
_API_RE = re.compile(r"API\s+(http://\S+)")


def start_daemon(tmp: Path) -> tuple[subprocess.Popen[str], str]:
    config = tmp / "gasoline.yaml"
    config.write_text(
        "service:\n"
        f"  store: {{max_records: 3000000, history: {{dir: '{tmp / 'data'}'}}}}\n"
        "  queue: {max_items: 3000000}\n"
    )
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("gasoline")), "serve", "--config", str(config),
         "--grpc-port", "0", "--http-port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _API_RE.search(line)
        if match:
            return proc, match.group(1)
    raise SystemExit("gasoline serve exited without printing its API URL")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.load(resp)


def records(api: str) -> int:
    return int(get_json(api + "/daemon/status")["store"]["records"])


def wait_records(api: str, target: int, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while records(api) < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {records(api)} of {target} records arrived")
        time.sleep(0.005)
    return time.monotonic()


def wait_idle(api: str, timeout: float = 120.0) -> None:
    """Until the daemon has parsed and stored everything it accepted."""
    deadline = time.monotonic() + timeout
    while get_json(api + "/daemon/status")["pipeline"]["queue"]["depth"]:
        if time.monotonic() > deadline:
            raise SystemExit("the daemon did not drain its queue")
        time.sleep(0.01)


def child_code(lines: int, done_file: str = "") -> str:
    code = (
        "import sys\nw = sys.stdout.write\n"
        f"for i in range({lines}): w(f'bench line {{i}} some text\\n')\n"
    )
    if done_file:
        code += "sys.stdout.flush()\nimport time\n"
        code += f"open({done_file!r}, 'w').write(repr(time.time()))\n"
    return code


def throughput(api: str, tmp: Path, lines: int) -> None:
    before = records(api)
    start = time.monotonic()
    subprocess.run(
        [*WRAPPER, "--url", api, "--spool-dir", str(tmp / "spool"), "--service", "tput",
         "--flush-timeout", "60", sys.executable, "-c", child_code(lines)],
        stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    exited = time.monotonic()
    done = wait_records(api, before + lines)
    took = done - start
    print(
        f"throughput: {lines} lines in {took:.2f} s = {lines / took:,.0f} lines/s "
        f"end to end (wrapper exited after {exited - start:.2f} s)"
    )


def overhead(api: str, tmp: Path, lines: int, repeat: int) -> None:
    done_file = str(tmp / "done")

    def one(cmd: list[str], *, through_cat: bool = False) -> tuple[float, float]:
        wait_idle(api)  # no variant runs while the daemon still parses the previous one
        t0 = time.time()
        if through_cat:
            child = subprocess.Popen(cmd, stdout=subprocess.PIPE)
            subprocess.run(["cat"], stdin=child.stdout, stdout=subprocess.DEVNULL, check=True)
            child.wait()
        else:
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        t1 = time.time()
        return float(Path(done_file).read_text()) - t0, t1 - t0

    bare_cmd = [sys.executable, "-c", child_code(lines, done_file)]
    wrapped_cmd = [*WRAPPER, "--url", api, "--spool-dir", str(tmp / "spool"),
                   "--service", "overhead", "--flush-timeout", "60", *bare_cmd]  # fmt: skip
    down_cmd = [*WRAPPER, "--url", "http://127.0.0.1:9", "--spool-dir", str(tmp / "spool-down"),
                "--flush-timeout", "0", *bare_cmd]  # fmt: skip
    variants: dict[str, Callable[[], tuple[float, float]]] = {
        "bare > /dev/null": lambda: one(bare_cmd),
        "bare | cat > /dev/null": lambda: one(bare_cmd, through_cat=True),
        "gasoline-run, daemon up": lambda: one(wrapped_cmd),
        "gasoline-run, daemon down": lambda: one(down_cmd),
    }
    # Round-robin, so a machine that speeds up or slows down affects every variant alike.
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, run in variants.items():
            runs[name].append(run())
    print(f"overhead: {lines:,} lines, {repeat} runs each; % against bare | cat (a pipe, as the")
    print("  wrapper always puts one in front of the child); median, then the fastest run")
    for stat in (statistics.median, min):
        base = stat(c for c, _ in runs["bare | cat > /dev/null"])
        for name, results in runs.items():
            child = stat(c for c, _ in results)
            wall = stat(w for _, w in results)
            print(
                f"  {stat.__name__:6} {name:28} child done {child:6.3f} s "
                f"({(child / base - 1) * 100:+6.1f} %)   wall {wall:6.3f} s "
                f"({(wall / base - 1) * 100:+6.1f} %)"
            )


def latency(api: str, tmp: Path, rate: int, seconds: float) -> None:
    n = int(rate * seconds)
    code = (
        "import json, time\n"
        f"start = time.monotonic()\n"
        f"for i in range({n}):\n"
        f"    time.sleep(max(0.0, start + i / {rate} - time.monotonic()))\n"
        "    print(json.dumps({'msg': f'lat {i}', 'sent_ns': time.time_ns()}), flush=True)\n"
    )
    seen: dict[str, int] = {}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            since = int(time.time() * 1000) - 500
            doc = get_json(f"{api}/buffers/timeline?service=lat&limit=20&since={since}")
            now = time.time_ns()
            for event in doc["events"]:
                seen.setdefault(event["message"], now)
            time.sleep(0.001)

    poller = threading.Thread(target=poll)
    poller.start()
    proc = subprocess.Popen(
        [*WRAPPER, "--url", api, "--spool-dir", str(tmp / "spool"), "--service", "lat",
         sys.executable, "-c", code],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    sent = {}
    for line in proc.stdout:
        doc = json.loads(line)
        sent[doc["msg"]] = doc["sent_ns"]
    proc.wait()
    deadline = time.monotonic() + 10
    while len(seen) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    poller.join()
    lat = sorted((seen[m] - t) / 1e6 for m, t in sent.items() if m in seen)
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    print(
        f"latency ({n} lines at {rate}/s, {len(lat)} seen): p50 {p50:.1f} ms, p99 {p99:.1f} ms "
        "(write to queryable via /buffers/timeline, including ~1 ms poll interval)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--overhead-lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument(
        "--phases", default="latency,throughput,overhead", help="comma-separated, in order"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        daemon, api = start_daemon(tmp)
        try:
            print(f"daemon at {api}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
            for phase in args.phases.split(","):
                if phase == "latency":
                    latency(api, tmp, args.rate, 5.0)
                elif phase == "throughput":
                    throughput(api, tmp, args.lines)
                elif phase == "overhead":
                    overhead(api, tmp, args.overhead_lines, args.repeat)
        finally:
            daemon.terminate()
            daemon.wait(10)


if __name__ == "__main__":
    main()
