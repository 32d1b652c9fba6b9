"""A pytest plugin that ``gasoline test`` enables for one run (``PYTEST_PLUGINS``).

Standard library only, and Python 3.8 syntax (annotations are never evaluated): it runs
in the user's interpreter, which has none of Gasoline's dependencies. Per test it writes
one JSON line to the file named by ``GASOLINE_TEST_RESULTS`` (appended, so xdist workers
may share it): the node id, file and line, outcome, times, and the failure's message,
assertion and traceback. While a test runs, ``TRACEPARENT`` names the test's own span
(trace of the run, a span id chosen here), so an instrumented client in the test process
sends its requests as children of the test; the ``gasoline_traceparent`` fixture returns
the same value.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from collections.abc import Generator
from typing import Any

import pytest

__all__ = ["gasoline_traceparent"]

_RESULTS = "GASOLINE_TEST_RESULTS"
_MAX_TEXT = 8192
_state: dict[str, dict[str, Any]] = {}
_broken: list[OSError] = []


def _run_context() -> list[str] | None:
    parts = os.environ.get("TRACEPARENT", "").split("-")
    return parts if len(parts) == 4 and len(parts[1]) == 32 else None


# The run's context, read once: the plugin changes TRACEPARENT for each test.
_RUN = _run_context()


def _write(entry: dict[str, Any]) -> None:
    """Append one result; a failure to write (the results file's directory gone) says so
    once and stops recording, never failing the user's test run."""
    path = os.environ.get(_RESULTS)
    if not path or _broken:
        return
    line = (json.dumps(entry) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        _broken.append(exc)
        sys.stderr.write(f"gasoline test: test results not recorded: {exc}\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    parent = _RUN
    span_id = secrets.token_hex(8)
    path, line, _ = item.location
    state: dict[str, Any] = {
        "nodeid": item.nodeid,
        "name": item.name,
        "file": path,
        "abs_file": str(getattr(item, "path", getattr(item, "fspath", ""))),
        "line": (line + 1) if line is not None else None,
        "suite": item.nodeid.rsplit("::", 1)[0],
        "span_id": span_id,
        "start_ns": time.time_ns(),
        "status": "pass",
    }
    _state[item.nodeid] = state
    saved = os.environ.get("TRACEPARENT")
    if parent is not None:
        os.environ["TRACEPARENT"] = f"00-{parent[1]}-{span_id}-01"
    try:
        yield
    finally:
        if parent is not None:
            if saved is None:
                os.environ.pop("TRACEPARENT", None)
            else:
                os.environ["TRACEPARENT"] = saved
        state["end_ns"] = time.time_ns()
        _write(_state.pop(item.nodeid, state))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _state.get(report.nodeid)
    if state is None:
        return
    if report.failed:
        state["status"] = "fail" if report.when == "call" else "error"
        _failure(state, report)
    elif report.skipped and state["status"] == "pass":
        state["status"] = "skipped"
        longrepr = report.longrepr
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            state["message"] = str(longrepr[2])[:_MAX_TEXT]


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        now = time.time_ns()
        entry: dict[str, Any] = {
            "nodeid": report.nodeid,
            "name": report.nodeid,
            "file": report.nodeid.split("::")[0],
            "suite": report.nodeid,
            "span_id": secrets.token_hex(8),
            "start_ns": now,
            "end_ns": now,
            "status": "error",
        }
        _failure(entry, report)
        _write(entry)


def _failure(state: dict[str, Any], report: Any) -> None:
    if "message" in state and state["status"] == "error":
        return  # the first failure (setup) says why; teardown errors after it add nothing
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None) or str(report.longrepr).strip().splitlines()[-1:]
    state["message"] = (message if isinstance(message, str) else " ".join(message))[:_MAX_TEXT]
    if crash is not None:
        state["crash_path"] = str(getattr(crash, "path", ""))
        state["crash_line"] = getattr(crash, "lineno", None)
    state["stacktrace"] = str(report.longreprtext)[-_MAX_TEXT:]
    if re.fullmatch(r"\S+:\d+", state["message"]):
        # A setup error (a missing fixture) has a location for a message: say why instead.
        reasons = [ln[1:].strip() for ln in state["stacktrace"].splitlines() if ln[:1] == "E"]
        if reasons:
            state["message"] = reasons[0][:_MAX_TEXT]
    first = state["message"].split("\n", 1)[0]
    if first.startswith(("assert ", "AssertionError")):
        state["assertion"] = state["message"]
    if state["status"] == "error" and report.when:
        state["phase"] = report.when


@pytest.fixture
def gasoline_traceparent() -> str | None:
    """The W3C traceparent of the running test's span (None outside ``gasoline test``)."""
    return os.environ.get("TRACEPARENT") if _RUN is not None else None
