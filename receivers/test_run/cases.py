"""Test cases from what runners leave behind: the pytest plugin's JSON lines and JUnit XML
reports (pytest ``--junitxml``, Node's ``--test-reporter=junit``, jest-junit, Vitest's
``junit`` reporter, Maven/Gradle). Standard library only: this runs in the wrapper."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "JUNIT_GLOBS",
    "TestCase",
    "discover_junit",
    "read_junit",
    "read_plugin_results",
    "relative",
]

# Where runners write JUnit XML unless told otherwise, relative to the working directory.
JUNIT_GLOBS = (
    "junit.xml",
    "junit*.xml",
    "report.xml",
    "test-results.xml",
    "junit/*.xml",
    "reports/*.xml",
    "test-results/**/*.xml",
    "test-reports/*.xml",
    "target/surefire-reports/*.xml",
    "build/test-results/**/*.xml",
)
_MAX_TEXT = 8192
_FILE_LINE = re.compile(r"([\w./\\-]+\.\w+):(\d+)")


@dataclass(slots=True)
class TestCase:
    """One test case's result. ``status``: pass, fail, error or skipped; times in ns
    (``timed``: False when a report gave only a duration and the start is laid out)."""

    __test__ = False  # not a test class, for pytest's collection

    name: str
    suite: str
    status: str
    start_ns: int
    end_ns: int
    file: str = ""
    line: int | None = None
    message: str = ""
    assertion: str = ""
    stacktrace: str = ""
    span_id: str = ""
    timed: bool = True


def read_plugin_results(path: Path) -> list[TestCase]:
    """The JSON lines ``gasoline_pytest`` wrote; a torn last line (a killed run) is skipped."""
    cases = []
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    for raw in data.splitlines():
        try:
            e = json.loads(raw)
            cases.append(
                TestCase(
                    name=str(e["nodeid"]),
                    suite=str(e.get("suite", "")),
                    status=str(e["status"]),
                    start_ns=int(e["start_ns"]),
                    end_ns=int(e["end_ns"]),
                    file=str(e.get("file", "")),
                    line=e.get("line") if isinstance(e.get("line"), int) else None,
                    message=str(e.get("message", "")),
                    assertion=str(e.get("assertion", "")),
                    stacktrace=str(e.get("stacktrace", "")),
                    span_id=str(e.get("span_id", "")),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return cases


def discover_junit(cwd: Path, since_ns: int, named: list[Path]) -> list[Path]:
    """The reports to read: those ``named`` (``--junit``), else the usual paths' files
    written during the run (modified at or after ``since_ns``)."""
    if named:
        return [p if p.is_absolute() else cwd / p for p in named]
    found: list[Path] = []
    for pattern in JUNIT_GLOBS:
        for path in sorted(cwd.glob(pattern)):
            try:
                fresh = path.is_file() and path.stat().st_mtime_ns >= since_ns
            except OSError:
                continue
            if fresh and path not in found:
                found.append(path)
    return found


def read_junit(path: Path, run_start_ns: int) -> list[TestCase]:
    """Every ``<testcase>`` of a JUnit XML report; raises ValueError naming the file when
    it is not one. Cases are laid end to end from the run's start by their durations."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ValueError(f"{path}: not a JUnit XML report ({exc})") from None
    cases: list[TestCase] = []
    clock = run_start_ns
    # Node's reporter puts top-level test cases straight under <testsuites>.
    groups = [root] if root.tag == "testsuite" else [root, *root.iter("testsuite")]
    for suite in groups:
        suite_name = suite.get("name", "") if suite.tag == "testsuite" else ""
        suite_file = suite.get("file", "")
        for tc in suite.findall("testcase"):
            seconds = _float(tc.get("time"))
            start, clock = clock, clock + int(seconds * 1e9)
            case = _case(tc, suite_name, suite_file, start, clock)
            cases.append(case)
    return cases


def _case(tc: ET.Element, suite_name: str, suite_file: str, start: int, end: int) -> TestCase:
    classname = tc.get("classname", "")
    name = tc.get("name", "")
    case = TestCase(
        name=f"{classname}.{name}" if classname not in ("", "test") else name,
        suite=suite_name,
        status="pass",
        start_ns=start,
        end_ns=end,
        file=tc.get("file", "") or suite_file,
        line=_int(tc.get("line")),
        timed=False,
    )
    for tag, status in (("failure", "fail"), ("error", "error"), ("skipped", "skipped")):
        found = tc.find(tag)
        if found is not None:
            case.status = status
            text = (found.text or "").strip()
            case.message = (found.get("message") or text.split("\n", 1)[0])[:_MAX_TEXT]
            case.stacktrace = text[-_MAX_TEXT:]
            kind = found.get("type", "")
            if "assert" in (case.message + kind + text[:2000]).lower():
                case.assertion = case.message
            break
    if not case.file and case.stacktrace:
        case.file, case.line = _first_location(case.stacktrace)
    case.suite = case.suite or case.file or classname
    return case


def _first_location(text: str) -> tuple[str, int | None]:
    """The first file:line of a trace that is not inside a runner or node's own code."""
    for match in _FILE_LINE.finditer(text):
        name = match.group(1)
        if "node_modules" in name or name.startswith(("node:", "internal/")):
            continue
        return name, int(match.group(2))
    return "", None


def _float(text: str | None) -> float:
    try:
        value = float(text or 0)
    except ValueError:
        return 0.0
    return value if 0 <= value < 1e7 else 0.0


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


def relative(path: str, cwd: Path) -> str:
    """``path`` relative to ``cwd`` when inside it (reports mix both)."""
    if path and os.path.isabs(path):
        try:
            return str(Path(path).relative_to(cwd))
        except ValueError:
            return path
    return path
