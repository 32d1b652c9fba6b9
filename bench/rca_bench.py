"""Root-cause accuracy of ``analyze type=causality`` on the corpus in rca_scenarios.py.

Each scenario goes into a fresh in-process ``Store`` the way the daemon stores data:
its spans are encoded as OTLP ``ExportTraceServiceRequest`` protobufs (one request per
trace and service) and decoded by the OTLP codec, its log records and events are added
with ids, earlier traces first. Then the ``analyze`` tool runs with the scenario's
question (a trace id, an event id, or a time window) and the answer is scored:

- top-1: the answer's ``root_cause`` is the expected culprit (for a healthy or
  recovered request: there is no root cause);
- top-3: the culprit is among the first three ``hypotheses``;
- status: the answer's ``status`` is the expected one; service: the blamed ``service``;
- false failures: answers saying ``failed`` about a request that did not fail.

The tuning set and the held-out set are reported apart; only the tuning set was looked
at while the analysis was tuned.

    python bench/rca_bench.py            # both sets, one line per miss
    python bench/rca_bench.py -v         # one line per scenario
    python bench/rca_bench.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR), str(BENCH_DIR.parent)]

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import (  # noqa: E402
    ResourceSpans,
    ScopeSpans,
    Span,
    Status,
)
from otlp_load import attributes  # noqa: E402
from rca_scenarios import HELD_OUT, TUNING, Rec, Scenario, Sp  # noqa: E402

from collector.config import StoreConfig  # noqa: E402
from collector.errors import CollectorError  # noqa: E402
from collector.model import Record  # noqa: E402
from collector.store import Store  # noqa: E402
from collector.tools.analyze import analyze  # noqa: E402
from receivers.otlp_codec import decode_traces  # noqa: E402

MS = 1_000_000
_KINDS = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


class Loaded:
    """A scenario in a store: the ids given to its traces and spans, its records."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        self.scenario = scenario
        rng = random.Random(seed)
        self.store = Store(StoreConfig(max_bytes=1 << 30))
        self.t0 = (time.time_ns() // MS - 600_000) * MS  # main starts 10 minutes ago
        traces: dict[str, tuple[float, list[Sp]]] = {}
        for i, (start, spans) in enumerate(scenario.history):
            traces[f"hist{i}"] = (start, spans)
        for name, spans in scenario.others.items():
            traces[name] = (0.0, spans)
        traces["main"] = (0.0, scenario.main)
        self.trace_ids = {name: rng.randbytes(16) for name in traces}
        self.span_ids = {
            f"{name}/{sp.key}": rng.randbytes(8)
            for name, (_, spans) in traces.items()
            for sp in spans
        }
        for name, (offset, spans) in traces.items():  # dict order: history, others, main
            self._add_trace(name, offset, spans)
        self.record_ids: dict[str, int] = {}
        records = [self._record(i + 1, r) for i, r in enumerate(scenario.records)]
        if records:
            self.store.records.add(records, time.time_ns())

    def ns(self, ms: float) -> int:
        return self.t0 + int(ms * MS)

    def _add_trace(self, name: str, offset: float, spans: list[Sp]) -> None:
        by_service: dict[str, list[Span]] = {}
        for sp in spans:
            span = Span(
                trace_id=self.trace_ids[name],
                span_id=self.span_ids[f"{name}/{sp.key}"],
                parent_span_id=self.span_ids[f"{name}/{sp.parent}"] if sp.parent else b"",
                name=sp.name,
                kind=_KINDS[sp.kind],  # type: ignore[arg-type]
                start_time_unix_nano=self.ns(offset + sp.start),
                end_time_unix_nano=self.ns(offset + sp.end),
                attributes=attributes(sp.attrs),
            )
            if sp.error is not None:
                span.status.CopyFrom(Status(code=2, message=sp.error))
            elif sp.ok:
                span.status.CopyFrom(Status(code=1))
            if sp.exc is not None:
                event = span.events.add()
                event.name = "exception"
                event.time_unix_nano = self.ns(offset + sp.end)
                event.attributes.extend(
                    attributes({"exception.type": sp.exc[0], "exception.message": sp.exc[1]})
                )
            for event_name, at, attrs in sp.events:
                event = span.events.add()
                event.name = event_name
                event.time_unix_nano = self.ns(offset + at)
                event.attributes.extend(attributes(attrs))
            for ref in sp.links:
                link = span.links.add()
                link.trace_id = self.trace_ids[ref.split("/")[0]]
                link.span_id = self.span_ids[ref]
            by_service.setdefault(sp.service, []).append(span)
        for service, items in by_service.items():
            resource = {"service.name": service}
            if service == "browser":
                resource["telemetry.sdk.language"] = "webjs"
            request = ExportTraceServiceRequest(
                resource_spans=[
                    ResourceSpans(
                        resource=Resource(attributes=attributes(resource)),
                        scope_spans=[ScopeSpans(spans=items)],
                    )
                ]
            )
            batch = decode_traces(request.SerializeToString()).batch
            self.store.spans.add(batch, time.time_ns())

    def _record(self, record_id: int, r: Rec) -> Record:
        trace_id = span_id = None
        if r.span is not None:
            trace_id = self.trace_ids[r.span.split("/")[0]]
            span_id = self.span_ids[r.span]
        elif r.trace is not None:
            trace_id = self.trace_ids[r.trace]
        self.record_ids[r.message] = record_id
        return Record(
            time_ns=self.ns(r.at),
            source=r.source,
            level=r.level,
            message=r.message,
            service=r.service,
            trace_id=trace_id,
            span_id=span_id,
            attributes=dict(r.attrs),
            kind=r.kind,
            id=record_id,
        )

    def question(self) -> dict[str, Any]:
        ask = self.scenario.ask
        if ask == "window":
            return {
                "type": "causality",
                "since": self.t0 // MS - 300_000,
                "until": self.t0 // MS + 60_000,
            }
        if ask.startswith("event:"):
            text = ask.removeprefix("event:")
            record_id = next(i for m, i in self.record_ids.items() if text in m)
            return {"type": "causality", "event_id": str(record_id)}
        return {"type": "causality", "trace_id": self.trace_ids["main"].hex()}

    def matches(self, cause: dict[str, Any] | None) -> bool:
        """Whether ``cause`` (a hypothesis' ``cause`` or the answer's ``root_cause``) is
        the scenario's culprit."""
        culprit = self.scenario.expect.culprit
        if culprit is None:
            return cause is None
        if cause is None:
            return False
        if culprit.startswith("record:"):
            return culprit.removeprefix("record:") in str(cause.get("message", "")) and bool(
                cause.get("record_id")
            )
        return cause.get("span_id") == self.span_ids[culprit].hex()


async def score(scenario: Scenario, seed: int) -> dict[str, Any]:
    loaded = Loaded(scenario, seed)
    with tempfile.TemporaryDirectory() as baselines:
        try:
            answer = await analyze(loaded.store, Path(baselines), loaded.question())
        except CollectorError as exc:  # a question the analysis cannot take counts as a miss
            answer = {"status": f"error: {exc}"}
    expect = scenario.expect
    hypotheses = answer.get("hypotheses", [])
    top3 = [h.get("cause") for h in hypotheses[:3]]
    root = answer.get("root_cause")
    healthy = expect.culprit is None
    return {
        "name": scenario.name,
        "class": scenario.klass,
        "top1": loaded.matches(root),
        "top3": loaded.matches(root) or (not healthy and any(loaded.matches(c) for c in top3)),
        "status": answer.get("status"),
        "status_ok": answer.get("status") == expect.status,
        "service": answer.get("service"),
        "service_ok": healthy or answer.get("service") == expect.service,
        "false_failure": expect.status != "failed" and answer.get("status") == "failed",
        "expected": {"culprit": expect.culprit, "status": expect.status, "service": expect.service},
        "got": (
            None
            if root is None
            else {k: root.get(k) for k in ("service", "name", "message", "confidence")}
        ),
        "bytes": len(json.dumps(answer, separators=(",", ":"), default=str)),
    }


async def run_set(scenarios: list[Scenario]) -> dict[str, Any]:
    rows = [await score(s, seed) for seed, s in enumerate(scenarios)]
    n = len(rows)
    healthy = [r for r in rows if r["expected"]["status"] != "failed"]
    return {
        "scenarios": n,
        "top1": sum(r["top1"] for r in rows) / n,
        "top3": sum(r["top3"] for r in rows) / n,
        "status": sum(r["status_ok"] for r in rows) / n,
        "service": sum(r["service_ok"] for r in rows) / n,
        "false_failure_rate": sum(r["false_failure"] for r in healthy) / max(1, len(healthy)),
        "not_failed_scenarios": len(healthy),
        "max_answer_bytes": max(r["bytes"] for r in rows),
        "rows": rows,
    }


def _line(r: dict[str, Any]) -> str:
    marks = "".join(
        "." if ok else "x" for ok in (r["top1"], r["top3"], r["status_ok"], r["service_ok"])
    )
    got = r["got"]
    said = "no root cause" if got is None else f"{got['service']} {got['name'] or ''}: "
    said += "" if got is None else str(got["message"])[:70]
    return (
        f"  {marks} [{r['class']}] {r['name']}: status {r['status']}, service {r['service']}; "
        f"said {said}; expected {r['expected']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="a line per scenario")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--set", choices=("tuning", "held-out", "both"), default="both", help="which set to run"
    )
    args = parser.parse_args(argv)
    sets = {"tuning": TUNING, "held-out": HELD_OUT}
    chosen = sets if args.set == "both" else {args.set: sets[args.set]}
    results = {name: asyncio.run(run_set(scenarios)) for name, scenarios in chosen.items()}
    if args.json:
        print(json.dumps(results, indent=1, default=str))
        return 0
    print("legend: top-1 top-3 status service ('.' right, 'x' wrong)")
    for name, r in results.items():
        print(
            f"{name}: {r['scenarios']} scenarios  top-1 {r['top1']:.0%}  top-3 {r['top3']:.0%}  "
            f"status {r['status']:.0%}  blamed service {r['service']:.0%}  false failures "
            f"{r['false_failure_rate']:.0%} of {r['not_failed_scenarios']}  largest answer "
            f"{r['max_answer_bytes']:,} B"
        )
        for row in r["rows"]:
            if args.verbose or not (row["top1"] and row["status_ok"] and row["service_ok"]):
                print(_line(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
