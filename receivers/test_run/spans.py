"""A test run as an OTLP trace request (protobuf): the run's root span (the context the
command got in ``TRACEPARENT``), a span per suite, a span per test case, with OTel's test
semantic conventions (``test.case.name``, ``test.case.result.status``,
``test.suite.name``, ``test.suite.run.status``) and ``code.filepath``/``code.lineno``.
Protobuf, not OTLP/JSON: the daemon decodes 2,000 spans of it in milliseconds, where
mapping JSON to protobuf took a second."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

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


def _attrs(attributes: dict[str, Any]) -> list[KeyValue]:
    out = []
    for key, value in attributes.items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=str(value))
        out.append(KeyValue(key=key, value=any_value))
    return out


def _span(
    info: RunInfo,
    span_id: str,
    parent: str,
    name: str,
    start: int,
    end: int,
    attributes: dict[str, Any],
    error: str = "",
    events: list[Span.Event] | None = None,
) -> Span:
    return Span(
        trace_id=bytes.fromhex(info.trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name,
        kind=Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=start,
        end_time_unix_nano=max(start, end),
        attributes=_attrs(attributes),
        status=Status(code=Status.STATUS_CODE_ERROR, message=error[:2048]) if error else None,
        events=events or [],
    )


def counts(cases: list[TestCase]) -> dict[str, int]:
    return {o: sum(1 for c in cases if c.status == o) for o in _OUTCOMES}


def run_request(info: RunInfo, cases: list[TestCase]) -> bytes:
    """The ``ExportTraceServiceRequest`` of the run and its cases, serialized."""
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
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_attrs({"service.name": info.service})),
                scope_spans=[
                    ScopeSpans(scope=InstrumentationScope(name="gasoline.test"), spans=spans)
                ],
            )
        ]
    )
    return bytes(request.SerializeToString())


def _case_span(info: RunInfo, suite_id: str, case: TestCase) -> Span:
    failed = case.status in ("fail", "error")
    events = None
    if failed:
        events = [
            Span.Event(
                time_unix_nano=case.end_ns,
                name="exception",
                attributes=_attrs(
                    {"exception.message": case.message, "exception.stacktrace": case.stacktrace}
                ),
            )
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
