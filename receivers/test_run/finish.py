"""What ``gasoline test`` sends once the command has exited: the run's spans (OTLP/JSON to
``POST /v1/tests``) and the git state of its working directory (``POST /events``)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from receivers.git_watch.snapshot import Snapshot, take_snapshot
from receivers.run_wrapper.spool import Batch
from receivers.test_run import TESTS_PATH
from receivers.test_run.cases import TestCase, relative
from receivers.test_run.spans import RunInfo, run_request

__all__ = ["run_batches"]
_EVENTS_PATH = "/v1/events"


def run_batches(
    *,
    cwd: Path,
    work: Path,
    state_file: Path,
    command: list[str],
    service: str,
    trace: tuple[str, str, str],
    times: tuple[int, int],
    exit_code: int,
    cases: tuple[list[TestCase], str],
    git: bool = True,
) -> list[Batch]:
    """The batches to deliver (with the git state when ``git``); removes the run's scratch
    directory ``work``."""
    found, report = cases
    for case in found:
        case.file = relative(case.file, cwd)
    snapshot = take_snapshot(cwd, state_file) if git else Snapshot()
    if snapshot.error:
        print(f"gasoline test: git state not recorded: {snapshot.error}", file=sys.stderr)
    info = RunInfo(
        trace_id=trace[0],
        span_id=trace[1],
        parent_span_id=trace[2],
        command=command,
        service=service,
        start_ns=times[0],
        end_ns=times[1],
        exit_code=exit_code,
        report=report,
        attributes={"process.working_directory": str(cwd), **snapshot.attributes},
    )
    shutil.rmtree(work, ignore_errors=True)
    for event in snapshot.events:  # the git state this run saw joins the run's trace
        event["trace_id"] = trace[0]
    batches = []
    if snapshot.events:
        body = json.dumps({"events": snapshot.events}).encode()
        batches.append(Batch("", body, 0, _EVENTS_PATH))
    batches.append(Batch("", run_request(info, found), 0, TESTS_PATH))
    return batches
