"""Throughput of receivers.log_parser.LineParser on a mixed corpus of real-world line shapes.

Prints lines/s (best and median of --runs) and µs/line for the whole corpus in two orders,
then per shape, then MultilineGrouper.feed; it never asserts timings.

* bursts: runs of --burst lines from one shape, runs shuffled. This is what the collector
  sees from several sources: each tailer hands over what one file or pipe had buffered.
* interleaved: every line a random shape. A worst case: with ~20 formats alternating line by
  line, CPU caches and branch predictors keep missing (each extra format in the mix costs).

Run from the repository root: ``.venv/bin/python bench/parser_bench.py [--lines N]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from receivers.log_parser import LineParser, MultilineGrouper, parser

_BASE_S = 1_704_207_845  # 2024-01-02T15:04:05Z
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Gen:
    """Random but plausible field values; seeded so runs are comparable.

    The clock advances 0-20 ms per line (~100 lines per second of log time), the density of a
    source busy enough for parser throughput to matter.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.t_ms = _BASE_S * 1000

    def tick(self) -> int:
        self.t_ms += self.rng.randint(0, 20)
        return self.t_ms // 1000

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(n * 4) | 1:0{n}x}"

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def iso(self, frac: int = 3, zone: str = "Z", sep: str = "T") -> str:
        t = time.gmtime(self.tick())
        base = time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", t)
        if frac:
            base += "." + str(self.rng.randrange(10**frac)).zfill(frac)
        return base + zone

    def clf(self) -> str:
        t = time.gmtime(self.tick())
        return (
            f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            + time.strftime("%H:%M:%S", t)
            + " +0000"
        )

    def status(self) -> int:
        return self.rng.choice((200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 503))

    def path(self) -> str:
        return self.rng.choice(("/", "/api/users", "/api/orders/42", "/static/app.js", "/login"))

    def level(self) -> str:
        return self.rng.choice(("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"))


def _shapes(g: _Gen) -> dict[str, Callable[[], str]]:
    ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
    return {
        "nginx_combined": lambda: (
            f"10.0.{g.rng.randrange(255)}.{g.rng.randrange(255)} - - [{g.clf()}] "
            f'"GET {g.path()} HTTP/1.1" {g.status()} {g.rng.randrange(99999)} '
            f'"https://example.com/" "{ua}"'
        ),
        "morgan_dev": lambda: (
            f"GET {g.path()} {g.status()} {g.rng.random() * 50:.3f} ms - {g.rng.randrange(9999)}"
        ),
        "werkzeug": lambda: (
            f'127.0.0.1 - - [{g.clf()[:11]} {g.clf()[12:20]}] "GET {g.path()} HTTP/1.1" '
            f"{g.status()} -"
        ),
        "python_logging": lambda: (
            f"{g.iso(3, '', ' ').replace('.', ',')} - myapp.views - {g.level()} - "
            f"handled request user_id={g.rng.randrange(1000)}"
        ),
        "go_log": lambda: (
            f"{g.iso(0, '', ' ').replace('-', '/')} server.go:42: accepted connection "
            f"from 10.0.0.{g.rng.randrange(255)}:{g.rng.randrange(65535)}"
        ),
        "slog_text": lambda: (
            f'time={g.iso()} level={g.level()} msg="request done" method=GET '
            f"path={g.path()} status={g.status()} trace_id={g.hex(32)} span_id={g.hex(16)}"
        ),
        "slog_json": lambda: (
            f'{{"time":"{g.iso(6)}","level":"{g.level()}","msg":"request done",'
            f'"method":"GET","path":"{g.path()}","status":{g.status()},'
            f'"trace_id":"{g.hex(32)}","span_id":"{g.hex(16)}"}}'
        ),
        "pino": lambda: (
            f'{{"level":30,"time":{g.tick() * 1000 + g.t_ms % 1000},"pid":4242,'
            f'"hostname":"web-1","reqId":"req-{g.rng.randrange(9999)}",'
            f'"req":{{"method":"GET","url":"{g.path()}"}},"msg":"request completed"}}'
        ),
        "bunyan": lambda: (
            f'{{"name":"api","hostname":"web-1","pid":77,"level":50,'
            f'"msg":"upstream timeout","time":"{g.iso()}","v":0}}'
        ),
        "structlog": lambda: (
            f'{{"event":"order placed","order_id":{g.rng.randrange(99999)},'
            f'"request_id":"{g.uuid()}","level":"info","timestamp":"{g.iso(6)}"}}'
        ),
        "otel_json": lambda: (
            f'{{"timestamp":"{g.iso(9)}","severity_text":"ERROR","severity_number":17,'
            f'"body":"payment failed","trace_id":"{g.hex(32)}","span_id":"{g.hex(16)}",'
            f'"attributes":{{"service.name":"checkout","http.route":"/pay"}}}}'
        ),
        "ecs": lambda: (
            f'{{"@timestamp":"{g.iso()}","log.level":"warn","message":"slow query",'
            f'"ecs.version":"1.6.0","trace.id":"{g.hex(32)}","service.name":"db"}}'
        ),
        "spring_boot": lambda: (
            f"{g.iso(3, '+00:00')} {g.level():>5} 4242 --- [nio-8080-exec-{g.rng.randrange(9)}] "
            f"c.e.demo.OrderController : order {g.rng.randrange(9999)} processed "
            f"[traceId={g.hex(32)} spanId={g.hex(16)}]"
        ),
        "nginx_error": lambda: (
            f"{g.iso(0, '', ' ').replace('-', '/')} [error] 1234#0: *{g.rng.randrange(999)} "
            f"connect() failed (111: Connection refused) while connecting to upstream, "
            f'client: 10.0.0.1, server: _, request: "GET {g.path()} HTTP/1.1"'
        ),
        "syslog_3164": lambda: (
            f"<38>Jan  {g.rng.randrange(1, 10)} 15:04:{g.rng.randrange(60):02d} web-1 "
            f"sshd[{g.rng.randrange(9999)}]: Accepted publickey for deploy from 10.0.0.9"
        ),
        "syslog_5424": lambda: (
            f"<165>1 {g.iso()} web-1.example.com api {g.rng.randrange(9999)} ID47 "
            f'[exampleSDID@32473 iut="3" eventSource="Application"] request failed'
        ),
        "rails_logger": lambda: (
            f"I, [{g.iso(6, '')} #1234]  INFO -- : Completed 200 OK in 12ms request_id={g.uuid()}"
        ),
        "plain_uuid": lambda: f"worker picked up job {g.uuid()} from queue default (attempt 1)",
        "xray": lambda: (
            f"{g.iso()} INFO handled X-Amzn-Trace-Id: Root=1-{g.hex(8)}-{g.hex(24)};"
            f"Parent={g.hex(16)};Sampled=1"
        ),
    }


def build_corpus(lines: int, seed: int = 7) -> list[tuple[str, str]]:
    """(shape, line) pairs with shapes chosen at random line by line."""
    g = _Gen(seed)
    shapes = _shapes(g)
    names = list(shapes)
    return [(name, shapes[name]()) for name in (g.rng.choice(names) for _ in range(lines))]


def in_bursts(corpus: list[tuple[str, str]], burst: int, seed: int = 11) -> list[str]:
    """The same lines regrouped as runs of ``burst`` lines per shape, runs shuffled.

    This is how a collector sees several sources: each tailer hands over whatever one file or
    pipe had buffered, so consecutive lines mostly share a format.
    """
    by_shape: dict[str, list[str]] = {}
    for name, line in corpus:
        by_shape.setdefault(name, []).append(line)
    runs = [
        group[i : i + burst] for group in by_shape.values() for i in range(0, len(group), burst)
    ]
    random.Random(seed).shuffle(runs)
    return [line for run in runs for line in run]


def _time_once(parse: Callable[[str], object], lines: list[str]) -> float:
    start = time.perf_counter()
    for line in lines:
        parse(line)
    return time.perf_counter() - start


def _report(label: str, parse: Callable[[str], object], lines: list[str], runs: int) -> None:
    times = [_time_once(parse, lines) for _ in range(runs)]
    best, median = min(times), statistics.median(times)
    n = len(lines)
    print(
        f"{label}: best {n / best:,.0f} lines/s ({best / n * 1e6:.2f} us/line), "
        f"median {n / median:,.0f} lines/s ({median / n * 1e6:.2f} us/line)"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--lines", type=int, default=200_000, help="corpus size (default 200000)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per figure (default 3)")
    ap.add_argument(
        "--burst", type=int, default=256, help="lines per source run in the bursts mix (256)"
    )
    args = ap.parse_args(argv)
    runs = max(1, args.runs)

    corpus = build_corpus(args.lines)
    interleaved = [line for _, line in corpus]
    bursts = in_bursts(corpus, max(1, args.burst))
    parse = LineParser().parse
    _time_once(parse, interleaved[:5000])  # warm caches

    build = "interpreted" if parser.__file__.endswith(".py") else "compiled with mypyc"
    print(
        f"python {sys.version.split()[0]}, parser {build}, {len(interleaved)} lines, "
        f"{len(_shapes(_Gen(0)))} shapes"
    )
    _report(f"mixed, bursts of {args.burst} lines per source", parse, bursts, runs)
    _report("mixed, shapes interleaved line by line", parse, interleaved, runs)

    by_shape: dict[str, list[str]] = {}
    for name, line in corpus:
        by_shape.setdefault(name, []).append(line)
    print(f"{'shape':<16} {'lines':>7} {'lines/s':>12} {'us/line':>8}")
    for name, group in sorted(by_shape.items()):
        took = min(_time_once(parse, group) for _ in range(runs))
        n = len(group)
        print(f"{name:<16} {n:>7} {n / took:>12,.0f} {took / n * 1e6:>8.2f}")

    grouper = MultilineGrouper()
    start = time.perf_counter()
    for line in interleaved:
        grouper.feed(line)
    grouper.flush()
    took = time.perf_counter() - start
    n = len(interleaved)
    print(f"MultilineGrouper.feed: {n / took:,.0f} lines/s ({took / n * 1e6:.2f} us/line)")


if __name__ == "__main__":
    main()
