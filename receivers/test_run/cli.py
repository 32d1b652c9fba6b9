"""``gasoline test CMD [ARGS...]``: run a test command as ``gasoline-run`` does, as one trace.

The run gets a root span whose context the command finds in ``TRACEPARENT`` (and
``TRACESTATE``, passed on when the wrapper itself ran inside a trace). After the command
exits, its test cases become spans of that trace, read from, best first: the
``gasoline_pytest`` plugin's results (pytest needs nothing installed: the plugin is put on
``PYTHONPATH`` and enabled by ``PYTEST_PLUGINS`` for this run only), the JUnit XML reports
named by ``--junit`` or found at the usual paths, and, for ``node --test``, Node's own JUnit
reporter (added as a second reporter beside the one that prints). The spans and the git
state of the working directory go to the daemon's ``POST /v1/tests`` and ``POST /events``
through the wrapper's delivery: spooled when the daemon is down, replayed later.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from receivers.run_wrapper.cli import build_parser, command_of, run_wrapped
from receivers.run_wrapper.spool import Batch
from receivers.test_run.cases import TestCase, discover_junit, read_junit, read_plugin_results
from receivers.test_run.pytest_plugin import PLUGIN_DIR, PLUGIN_MODULE

__all__ = ["main"]

_DESCRIPTION = """\
Run a test command (pytest, node --test, npm test, go test, anything that writes JUnit XML)
exactly as gasoline-run does (same output, exit code, signals, shipping of its output), as
one trace: the run is a root span whose context the command gets in TRACEPARENT; every test
case becomes a span of that trace with its status, file and line, duration, failure message
and assertion. Requests a test makes with that context (an instrumented client reads
TRACEPARENT; under pytest it names the running test's span) land under the test's span.

Test results: pytest's come from a plugin enabled for this run only (PYTEST_PLUGINS, its
directory on PYTHONPATH; nothing is installed in the project's environment); node --test
gets Node's JUnit reporter as a second reporter; other runners: the JUnit XML reports named
by --junit, or written during the run at the usual paths (junit.xml, report.xml,
test-results/**/*.xml, target/surefire-reports/*.xml, ...). The git state of the working
directory (HEAD, branch, uncommitted changes, commits since the previous run there) is sent
with every run. Test events have source "test", git events source "git".
"""


def _parser() -> argparse.ArgumentParser:
    parser = build_parser(
        prog="gasoline test",
        usage="gasoline test [options] CMD [ARGS...]",
        description=_DESCRIPTION,
    )
    parser.add_argument(
        "--junit",
        action="append",
        type=Path,
        default=[],
        metavar="PATH",
        help="a JUnit XML report the command writes (repeatable; default: the usual paths)",
    )
    parser.add_argument(
        "--trace-id",
        type=_trace_id,
        metavar="HEX",
        help="the run's trace id, 32 hex digits (default: the trace of $TRACEPARENT, else new)",
    )
    parser.add_argument(
        "--no-pytest-plugin",
        action="store_true",
        help="do not enable the pytest plugin (results then come from JUnit XML only)",
    )
    return parser


def _trace_id(text: str) -> str:
    if len(text) != 32 or text.strip("0123456789abcdef") or not text.strip("0"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a trace id (32 lowercase hex digits)")
    return text


def _node_test(command: list[str], report: Path) -> list[str]:
    """``node ... --test ...`` without a reporter of its own gets Node's JUnit reporter as
    a second one; the first is what Node prints by default (spec on a terminal, else tap)."""
    name = os.path.basename(command[0])
    if not name.startswith("node") or "--test" not in command:
        return command
    if any(a.startswith("--test-reporter") for a in command):
        return command
    shown = "spec" if os.isatty(1) else "tap"
    at = command.index("--test") + 1
    added = [
        f"--test-reporter={shown}",
        "--test-reporter-destination=stdout",
        "--test-reporter=junit",
        f"--test-reporter-destination={report}",
    ]
    return [*command[:at], *added, *command[at:]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status is the command's (see --help)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.flush_spool = False
    command = command_of(parser, args)
    cwd = Path.cwd()
    work = Path(tempfile.mkdtemp(prefix="gasoline-test-"))
    results = work / "pytest-results.jsonl"
    node_report = work / "node-junit.xml"
    trace_id, span_id, parent = secrets.token_hex(16), secrets.token_hex(8), ""
    inherited = os.environ.get("TRACEPARENT", "").split("-")
    if args.trace_id:
        trace_id = args.trace_id
    elif len(inherited) == 4 and len(inherited[1]) == 32 and len(inherited[2]) == 16:
        trace_id, parent = inherited[1], inherited[2]
    env = dict(os.environ)
    env["TRACEPARENT"] = f"00-{trace_id}-{span_id}-01"
    if not args.no_pytest_plugin:
        env["GASOLINE_TEST_RESULTS"] = str(results)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")) if p
        )
        plugins = [p for p in os.environ.get("PYTEST_PLUGINS", "").split(",") if p.strip()]
        env["PYTEST_PLUGINS"] = ",".join([*plugins, PLUGIN_MODULE])
    run_command = _node_test(command, node_report)
    service = args.service or os.path.basename(command[0])
    start_ns = time.time_ns()

    def finish(code: int, end_ns: int) -> list[Batch]:
        # On the shipper's thread, after the command's output was shipped; imported here
        # for the same reason the shipper is (the command starts first).
        from receivers.test_run.finish import run_batches

        return run_batches(
            cwd=cwd,
            work=work,
            state_file=args.spool_dir / "git-heads.json",
            command=command,
            service=service,
            trace=(trace_id, span_id, parent),
            times=(start_ns, end_ns),
            exit_code=code,
            cases=_cases(results, node_report, args.junit, cwd, start_ns),
            git=not args.no_git,
        )

    code = run_wrapped(args, run_command, env=env, finish=finish, prog="gasoline test")
    if code in (126, 127) and work.exists():  # perhaps never started: nothing to report
        shutil.rmtree(work, ignore_errors=True)
    return code


def _cases(
    results: Path, node_report: Path, named: list[Path], cwd: Path, start_ns: int
) -> tuple[list[TestCase], str]:
    cases = read_plugin_results(results)
    if cases:
        return cases, "pytest-plugin"
    reports = [node_report] if node_report.exists() else []
    reports += discover_junit(cwd, start_ns, named)
    for path in reports:
        try:
            cases += read_junit(path, start_ns)
        except ValueError as exc:
            print(f"gasoline test: {exc}", file=sys.stderr, flush=True)
    return cases, "junit" if cases else "none"
