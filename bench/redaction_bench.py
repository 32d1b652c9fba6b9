"""What redaction at ingest costs: span requests decoded without and with the redactor
(interleaved, same requests), clean and with one planted secret, and log records.

The span requests are ``otlp_load``'s pool (512 spans each, realistic attributes and
SQL); a planted secret is a ``password=...`` in one span's status message, so the scan
points at that span and only it is decoded, redacted and the request encoded again.
Times are the CPU time of the measuring thread (medians), so other load on the machine
disturbs them little.

    python bench/redaction_bench.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import otlp_load

from collector.config import RedactionConfig
from collector.redact import Redactor
from receivers.log_records import LogLines
from receivers.otlp_codec import decode_traces

_LINES = (
    "2026-12-07T10:00:{s:02d}.123Z INFO [http] GET /api/orders/{n} 200 in {ms} ms",
    'level=info ts=2026-12-07T10:00:{s:02d}Z msg="order placed" order_id={n} amount=19.99',
    '{{"level":"warn","time":"2026-12-07T10:00:{s:02d}Z","msg":"slow query","ms":{ms}}}',
    "2026-12-07 10:00:{s:02d},001 ERROR app.payments: charge failed for order {n}: declined",
)


def _planted(raw: bytes) -> bytes:
    request = ExportTraceServiceRequest.FromString(raw)
    span = request.resource_spans[0].scope_spans[0].spans[0]
    span.status.message = "login failed password=hunter2"
    return bytes(request.SerializeToString())


def _median_us(values: list[float]) -> float:
    return round(statistics.median(values) * 1e6, 1)


def spans(pool: otlp_load.Pool, rounds: int, redactor: Redactor) -> dict[str, Any]:
    """Per request: decode alone, decode with the redactor; clean and planted."""
    raws = [bytes(raw) for raw in pool.raw[:64]]
    planted = [_planted(raw) for raw in raws]
    times: dict[str, list[float]] = {k: [] for k in ("off", "on", "off+1", "on+1")}
    for _ in range(rounds):
        for clean, dirty in zip(raws, planted, strict=True):
            for key, raw, with_redactor in (
                ("off", clean, None),
                ("on", clean, redactor),
                ("off+1", dirty, None),
                ("on+1", dirty, redactor),
            ):
                raw = bytes(bytearray(raw))  # a fresh object, as a request body is
                t0 = time.thread_time()
                decode_traces(raw, redactor=with_redactor)
                times[key].append(time.thread_time() - t0)
    us = {key: _median_us(values) for key, values in times.items()}
    return {
        "spans_per_request": otlp_load.SPANS_PER_REQUEST,
        "us_per_request": us,
        "scan_pct_clean": round(100 * (us["on"] / us["off"] - 1), 1),
        "redact_pct_one_secret": round(100 * (us["on+1"] / us["off+1"] - 1), 1),
    }


def records(rounds: int, redactor: Redactor) -> dict[str, Any]:
    """Per plain log line: parsing, and the redaction stage after it."""
    rng = random.Random(1)
    lines = [
        rng.choice(_LINES).format(s=i % 60, n=i, ms=rng.randint(1, 900)) for i in range(10_000)
    ]
    parser = LogLines(service="api")
    parse_s: list[float] = []
    redact_s: list[float] = []
    for _ in range(rounds):
        for i in range(0, len(lines), 500):
            t0 = time.thread_time()
            batch = parser.records(lines[i : i + 500])
            t1 = time.thread_time()
            redactor.redact_records(batch)
            t2 = time.thread_time()
            parse_s.append((t1 - t0) / 500)
            redact_s.append((t2 - t1) / 500)
    return {"parse_us_per_line": _median_us(parse_s), "redact_us_per_line": _median_us(redact_s)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over 64 requests (5)")
    parser.add_argument("--pool-cache", help="otlp_load's pool pickle, built if missing")
    args = parser.parse_args(argv)
    pool = otlp_load.load_or_build_pool(64, seed=1, cache=args.pool_cache)
    redactor = Redactor(RedactionConfig())
    result = {
        "spans": spans(pool, args.rounds, redactor),
        "records": records(args.rounds, redactor),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
