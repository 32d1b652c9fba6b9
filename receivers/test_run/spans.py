"""A test run as OTLP/JSON spans: the run's root span (the context the command got in
``TRACEPARENT``), a span per suite, a span per test case, with OTel's test semantic
conventions (``test.case.name``, ``test.case.result.status``, ``test.suite.name``,
``test.suite.run.status``) and ``code.filepath``/``code.lineno``. Standard library only."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from receivers.test_run.cases import TestCase

__all__ = ["RunInfo", "counts", "run_request"]

_OUTCOMES = ("pass", "fail", "error", "skipped")


@dataclass(slots=True)
class RunInfo:
    trace_id: str
    span_id: str
    parent_span_id: str
    command: list[str]
    service: str
    start_ns: int
    end_ns: int
    exit_code: int
    report: str  # where the cases came from: pytest-plugin, junit, none
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": str(value)}


def _attrs(attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": k, "value": _value(v)}
        for k, v in attributes.items()
        if v is not None and v != "" and v != []
    ]


def _span(
    info: RunInfo,
    span_id: str,
    parent: str,
    name: str,
    start: int,
    end: int,
    attributes: dict[str, Any],
    error: str = "",
    events: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": info.trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(max(start, end)),
        "attributes": _attrs(attributes),
        "status": {"code": 2, "message": error[:2048]} if error else {"code": 0},
    }
    if parent:
        span["parentSpanId"] = parent
    if events:
        span["events"] = events
    return span


def counts(cases: list[TestCase]) -> dict[str, int]:
    return {o: sum(1 for c in cases if c.status == o) for o in _OUTCOMES}


def run_request(info: RunInfo, cases: list[TestCase]) -> bytes:
    """The OTLP/JSON ``ExportTraceServiceRequest`` of the run and its cases."""
    tally = counts(cases)
    failed = info.exit_code != 0 or tally["fail"] or tally["error"]
    run_status = "failure" if failed else "success"
    summary = ", ".join(f"{n} {o}" for o, n in tally.items() if n) or "no test results found"
    spans = [
        _span(
            info,
            info.span_id,
            info.parent_span_id,
            f"test run: {' '.join(info.command)[:200]}",
            info.start_ns,
            info.end_ns,
            {
                "test.suite.run.status": run_status,
                "process.command_line": " ".join(info.command),
                "process.exit.code": info.exit_code,
                "gasoline.test.run": True,
                "gasoline.test.report": info.report,
                "gasoline.test.summary": summary,
                **{f"gasoline.test.{o}": n for o, n in tally.items()},
                **info.attributes,
            },
            f"exit code {info.exit_code}; {summary}" if failed else "",
        )
    ]
    suites: dict[str, list[TestCase]] = {}
    for case in cases:
        suites.setdefault(case.suite, []).append(case)
    for suite, members in suites.items():
        suite_id = secrets.token_hex(8)
        bad = [c for c in members if c.status in ("fail", "error")]
        spans.append(
            _span(
                info,
                suite_id,
                info.span_id,
                suite or "tests",
                min(c.start_ns for c in members),
                max(c.end_ns for c in members),
                {
                    "test.suite.name": suite,
                    "test.suite.run.status": "failure" if bad else "success",
                },
                f"{len(bad)} of {len(members)} failed" if bad else "",
            )
        )
        for case in members:
            spans.append(_case_span(info, suite_id, case))
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": _attrs({"service.name": info.service})},
                    "scopeSpans": [{"scope": {"name": "gasoline.test"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def _case_span(info: RunInfo, suite_id: str, case: TestCase) -> dict[str, Any]:
    failed = case.status in ("fail", "error")
    events = None
    if failed:
        events = [
            {
                "timeUnixNano": str(case.end_ns),
                "name": "exception",
                "attributes": _attrs(
                    {
                        "exception.message": case.message,
                        "exception.stacktrace": case.stacktrace,
                    }
                ),
            }
        ]
    return _span(
        info,
        case.span_id or secrets.token_hex(8),
        suite_id,
        case.name,
        case.start_ns,
        case.end_ns,
        {
            "test.case.name": case.name,
            "test.suite.name": case.suite,
            "test.case.result.status": "fail"
            if failed
            else None
            if case.status == "skipped"
            else "pass",
            "gasoline.test.outcome": case.status,
            "code.filepath": case.file,
            "code.lineno": case.line,
            "gasoline.test.message": case.message,
            "gasoline.test.assertion": case.assertion,
            "gasoline.test.timing": None if case.timed else "laid out from reported durations",
        },
        case.message if failed else "",
        events,
    )
