"""The daemon's side of ``gasoline test``: ``POST /v1/tests`` takes a run's spans as an
OTLP trace request, protobuf or JSON (the shared OTLP codec decodes them, redacting as it
does) and derives the run's
events (``source: "test"``): one per test case and one for the run, linked to their spans,
so the timeline, ``observe tests`` and ``analyze changes`` read them without decoding spans."""

from __future__ import annotations

from typing import Any

from collector.model import Record, SpanBatch
from collector.redact import Redactor
from receivers.otlp_codec.spans import decode_traces

__all__ = ["decode_test_run"]

_LEVELS = {"fail": "error", "error": "error", "skipped": "debug"}
_WORDS = {"pass": "PASSED", "fail": "FAILED", "error": "ERROR", "skipped": "SKIPPED"}
_KEPT_PREFIXES = ("test.", "code.", "vcs.", "gasoline.", "process.")


def decode_test_run(
    body: bytes, redactor: Redactor | None, *, is_json: bool = False
) -> tuple[SpanBatch, list[Record], int, str]:
    """(spans, their events, spans rejected, the first rejection's message); raises
    ``DecodeError`` when the body is not an OTLP trace request."""
    decoded = decode_traces(body, is_json=is_json, redactor=redactor)
    batch = decoded.batch
    records = []
    for i in range(len(batch)):
        detail = batch.detail.span_detail(i)
        attrs = detail.attributes
        for event in detail.events:
            if event.name == "exception" and event.attributes.get("exception.stacktrace"):
                attrs = {
                    **attrs,
                    "gasoline.test.stacktrace": event.attributes["exception.stacktrace"],
                }
        record = _record(batch, i, attrs)
        if record is not None:
            records.append(record)
    return batch, records, decoded.rejected, decoded.error


def _record(batch: SpanBatch, i: int, attrs: dict[str, Any]) -> Record | None:
    kept = {k: v for k, v in attrs.items() if k.startswith(_KEPT_PREFIXES)}
    kept["duration_ms"] = round((batch.ends[i] - batch.starts[i]) / 1e6, 3)
    if "test.case.name" in attrs:
        outcome = str(attrs.get("gasoline.test.outcome", attrs.get("test.case.result.status")))
        message = f"{_WORDS.get(outcome, outcome)} {attrs['test.case.name']}"
        if attrs.get("gasoline.test.message"):
            message += f": {str(attrs['gasoline.test.message']).splitlines()[0][:300]}"
        kind = "test_case"
        level = _LEVELS.get(outcome, "info")
    elif attrs.get("gasoline.test.run"):
        status = attrs.get("test.suite.run.status", "")
        command = str(attrs.get("process.command_line", ""))[:200]
        message = (
            f"test run {'passed' if status == 'success' else 'failed'}: "
            f"{attrs.get('gasoline.test.summary', '')} ({command})"
        )
        kind = "test_run"
        level = "info" if status == "success" else "error"
    else:
        return None
    return Record(
        time_ns=batch.starts[i],
        source="test",
        level=level,
        message=message,
        service=batch.services[i],
        trace_id=batch.trace_ids[i],
        span_id=batch.span_ids[i],
        attributes={"gasoline.test.kind": kind, **kept},
        kind="event",
    )
