"""Test runs and code changes: which tests failed, and what changed between the last run
where a failing test passed and the first where it failed.

Reads only events: ``gasoline test`` sends one per run (``gasoline.test.kind: test_run``,
with the run's HEAD, branch and uncommitted files) and one per test case, linked to their
spans; git events (``source: "git"``) come from the run's own snapshot and the
``gitwatch`` receiver. Changes are ranked by whether they touch the failing code: the
files a failure names (``code.filepath``, paths in its message and stack trace), then
files in the same directory or with the same name.

``change_evidence(store, trace_id)`` is what a causality answer cites: for a trace holding
failing tests (a ``gasoline test`` run, whose test spans are the parents of the backend
requests they made), the ranked changes since each failing test last passed.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Required

from collector.bounded import Answer
from collector.filters import TimelineFilter
from collector.model import Record, SpanKind
from collector.query import ObservePage, iso_time
from collector.scan import newest_matches
from collector.store import Store

__all__ = [
    "ChangesAnswer",
    "TestRun",
    "analyze_changes",
    "change_evidence",
    "test_runs",
    "tests_view",
]


class ChangesAnswer(Answer, total=False):
    """``analyze type=changes``: what changed between the last passing run of the failing
    tests and the failing run, ranked (``changes``); ``status`` says when it cannot."""

    status: Required[str]  # ok | no_passing_run | no_failing_run | no_failing_test
    note: str
    failing_tests: list[dict[str, Any]]
    failing_paths: list[str]
    good_run: dict[str, Any] | None
    bad_run: dict[str, Any]
    changes: Required[list[dict[str, Any]]]
    most_likely: str


_MAX_RUNS = 200
_MAX_CHANGES = 20
_SLACK_NS = 2_000_000_000  # commit times are in whole seconds
_FAILED = frozenset(("fail", "error"))
_PATH = re.compile(
    r"(?:[A-Za-z]:)?[\w@~+./\\-]*[\w-]\.(?:py|pyi|js|mjs|cjs|jsx|ts|tsx|go|java|kt|rb|rs|php|cs|c|cc|cpp|h|hpp|swift|scala|vue|svelte)\b"
)


@dataclass(slots=True)
class TestRun:
    """One ``gasoline test`` run and its test cases (events)."""

    __test__ = False  # not a test class, for pytest's collection

    record: Record
    cases: list[Record] = field(default_factory=list)

    @property
    def repo(self) -> str:
        a = self.record.attributes
        return str(a.get("vcs.repository.path") or a.get("process.working_directory") or "")

    def failing(self) -> list[Record]:
        return [c for c in self.cases if _outcome(c) in _FAILED]

    def outcome_of(self, name: str) -> str | None:
        return next((_outcome(c) for c in self.cases if _case_name(c) == name), None)

    def summary(self) -> dict[str, Any]:
        a = self.record.attributes
        return {
            "trace_id": self.record.trace_id.hex() if self.record.trace_id else None,
            "time": iso_time(self.record.time_ns),
            "status": a.get("test.suite.run.status"),
            "summary": a.get("gasoline.test.summary"),
            "command": a.get("process.command_line"),
            "repository": self.repo or None,
            "branch": a.get("vcs.ref.head.name"),
            "revision": a.get("vcs.ref.head.revision"),
        }


def _outcome(case: Record) -> str:
    return str(case.attributes.get("gasoline.test.outcome", ""))


def _case_name(case: Record) -> str:
    return str(case.attributes.get("test.case.name", ""))


def test_runs(store: Store, *, limit: int = _MAX_RUNS) -> list[TestRun]:
    """The newest runs first, each with its cases."""
    f = TimelineFilter(source="test", kinds=frozenset({"event"}), limit=limit)
    f.record_match = lambda r: r.attributes.get("gasoline.test.kind") == "test_run"
    runs = []
    for _, _, item in newest_matches(store, f, limit).items:
        assert isinstance(item, Record)
        run = TestRun(item)
        if item.trace_id is not None:
            run.cases = [
                r
                for r in store.records.by_trace(item.trace_id)
                if r.source == "test" and r.attributes.get("gasoline.test.kind") == "test_case"
            ]
        runs.append(run)
    return runs


def tests_view(store: Store, f: TimelineFilter, **_: Any) -> ObservePage:
    """``observe what=tests``: the newest runs, each with its failures, and for each
    failure the backend traces it caused (by trace context, or inferred by time)."""
    runs = test_runs(store, limit=f.limit)
    answer = []
    for run in runs:
        failures = []
        for case in run.failing()[:10]:
            failures.append(
                {
                    **_case_item(case),
                    "backend_traces": _backend_traces(store, case),
                }
            )
        answer.append({**run.summary(), "failures": failures})
    return {"runs": answer, "metadata": {"total_count": len(answer), "cursor_next": None}}


def _case_item(case: Record) -> dict[str, Any]:
    a = case.attributes
    return {
        "test": _case_name(case),
        "outcome": _outcome(case),
        "message": _cut(a.get("gasoline.test.message"), 500),
        "assertion": _cut(a.get("gasoline.test.assertion"), 1000),
        "file": a.get("code.filepath"),
        "line": a.get("code.lineno"),
        "span_id": case.span_id.hex() if case.span_id else None,
    }


def _cut(value: Any, limit: int) -> str | None:
    """A failure's text for an answer: its start (a pytest diff can run to kilobytes)."""
    if not value:
        return None
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _backend_traces(store: Store, case: Record) -> list[dict[str, Any]]:
    """SERVER spans under the test's span (its own requests), else roots of other traces
    that started while the test ran on this machine, flagged ``inferred``."""
    found: list[dict[str, Any]] = []
    if case.trace_id is None or case.span_id is None:
        return found
    for span in store.spans.trace(case.trace_id):
        if span.parent_id == case.span_id and span.kind == SpanKind.SERVER:
            found.append(
                {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "linked_by": "trace_context",
                    "service": span.service,
                    "name": span.name,
                }
            )
    if found:
        return found
    duration = int(float(case.attributes.get("duration_ms", 0)) * 1e6)
    window = TimelineFilter(
        kinds=frozenset({"span"}), since_ns=case.time_ns, until_ns=case.time_ns + duration
    )
    for _, _, item in newest_matches(store, window, 50).items:
        if isinstance(item, Record) or item.trace_id == case.trace_id or not item.is_root:
            continue
        found.append(
            {
                "trace_id": item.trace_id.hex(),
                "span_id": item.span_id.hex(),
                "linked_by": "inferred",
                "reason": "started on this machine while the test ran",
                "service": item.service,
                "name": item.name,
            }
        )
    return found[:5]


def _failing_paths(cases: list[Record], repo: str) -> list[str]:
    paths: list[str] = []
    for case in cases:
        a = case.attributes
        texts = [str(a.get("code.filepath") or ""), str(a.get("gasoline.test.message") or "")]
        texts.append(str(a.get("gasoline.test.stacktrace") or ""))
        for text in texts:
            for match in _PATH.finditer(text):
                path = _relative(match.group(0), repo)
                if path not in paths:
                    paths.append(path)
    return paths


def _relative(path: str, repo: str) -> str:
    path = path.replace("\\", "/")
    if repo and path.startswith(repo.rstrip("/") + "/"):
        return path[len(repo.rstrip("/")) + 1 :]
    return path.lstrip("./") if path.startswith("./") else path


def _touch(path: str, failing: list[str]) -> tuple[int, str]:
    """(score, why) of a changed file against the failing code's paths."""
    best = (0, "")
    for target in failing:
        if path == target or target.endswith("/" + path) or path.endswith("/" + target):
            return 3, "is named by the failure (its file or stack trace)"
        if posixpath.basename(path) == posixpath.basename(target):
            best = max(best, (2, f"same file name as {target}, named by the failure"))
        elif posixpath.dirname(path) and posixpath.dirname(path) == posixpath.dirname(target):
            best = max(best, (1, f"in the same directory as {target}"))
    return best


def _git_events(store: Store, repo: str, since_ns: int, until_ns: int) -> list[Record]:
    f = TimelineFilter(
        source="git", kinds=frozenset({"event"}), since_ns=since_ns, until_ns=until_ns, limit=500
    )
    f.record_match = lambda r: not repo or r.attributes.get("vcs.repository.path") == repo
    return [r for _, _, r in newest_matches(store, f, 500).items if isinstance(r, Record)]


def _uncommitted(run: TestRun) -> dict[str, dict[str, Any]]:
    try:
        files = json.loads(str(run.record.attributes.get("gasoline.git.uncommitted") or "[]"))
    except ValueError:
        return {}
    return {str(f["path"]): f for f in files if isinstance(f, dict) and "path" in f}


def _changes(
    store: Store, good: TestRun | None, bad: TestRun, failing: list[str]
) -> list[dict[str, Any]]:
    since = good.record.time_ns - _SLACK_NS if good else bad.record.time_ns - 86_400 * 10**9
    good_rev = good.record.attributes.get("vcs.ref.head.revision") if good else None
    changes: list[dict[str, Any]] = []
    seen: set[str] = set()
    # Commits the bad run reported itself (since the previous run there) are in its trace,
    # whatever their author dates; the rest are found by time.
    reported = [
        r
        for r in store.records.by_trace(bad.record.trace_id or b"")
        if r.source == "git" and r.attributes.get("git.event") == "commit"
    ]
    for event in [*reported, *_git_events(store, bad.repo, since, bad.record.time_ns)]:
        a = event.attributes
        kind = a.get("git.event")
        if kind == "commit":
            sha = str(a.get("vcs.ref.head.revision"))
            if sha in seen or sha == good_rev:
                continue
            seen.add(sha)
            changes.append(
                _scored(
                    {
                        "kind": "commit",
                        "revision": sha,
                        "subject": a.get("git.subject"),
                        "author": a.get("git.author"),
                        "branch": a.get("vcs.ref.head.name"),
                        "time": iso_time(event.time_ns),
                        "event_id": str(event.id),
                    },
                    a.get("git.files") or [],
                    failing,
                )
            )
        elif kind == "checkout" and event.time_ns > (good.record.time_ns if good else 0):
            changes.append(
                {
                    "kind": "checkout",
                    "message": event.message,
                    "time": iso_time(event.time_ns),
                    "event_id": str(event.id),
                    "score": 1,
                    "touches_failing_code": False,
                    "files": [],
                }
            )
    before = _uncommitted(good) if good else {}
    dirty = [f for path, f in _uncommitted(bad).items() if before.get(path) != f]
    if dirty:
        changes.append(
            _scored(
                {
                    "kind": "uncommitted",
                    "revision": bad.record.attributes.get("vcs.ref.head.revision"),
                    "time": iso_time(bad.record.time_ns),
                },
                dirty,
                failing,
            )
        )
    changes.sort(key=lambda c: (c["score"], c["time"]), reverse=True)
    return changes[:_MAX_CHANGES]


def _scored(change: dict[str, Any], files: list[Any], failing: list[str]) -> dict[str, Any]:
    shown = []
    score = 0
    reasons = []
    for f in files:
        if not isinstance(f, dict):
            continue
        path = str(f.get("path", ""))
        touch, why = _touch(path, failing)
        score = max(score, touch)
        if why:
            reasons.append(f"{path} {why}")
        shown.append({**f, "touches_failing_code": touch == 3})
    shown.sort(key=lambda f: not f["touches_failing_code"])
    change.update(
        files=shown[:50],
        score=score,
        touches_failing_code=score == 3,
        reasoning="; ".join(reasons[:5]) or "touches none of the files the failure names",
    )
    return change


def analyze_changes(store: Store, args: dict[str, Any]) -> ChangesAnswer:
    """``analyze type=changes``: for the failing tests of a run (``trace_id``, default the
    newest run with failures; ``test`` to name one), what changed between the last run
    where each passed and that run, ranked by whether it touches the failing code."""
    runs = test_runs(store)
    trace_id = args.get("trace_id")
    if trace_id:
        bad = next(
            (r for r in runs if r.record.trace_id and r.record.trace_id.hex() == trace_id), None
        )
    else:
        bad = next((r for r in runs if r.failing()), None)
    if bad is None:
        return {
            "status": "no_failing_run",
            "note": "no test run with failures is stored (run the tests with `gasoline test CMD`)",
            "changes": [],
        }
    failing = bad.failing()
    if args.get("test"):
        failing = [c for c in failing if str(args["test"]) in _case_name(c)]
    if not failing:
        return {"status": "no_failing_test", "bad_run": bad.summary(), "changes": []}
    names = [_case_name(c) for c in failing]
    earlier = [r for r in runs if r.record.time_ns < bad.record.time_ns and r.repo == bad.repo]
    good = next((r for r in earlier if any(r.outcome_of(n) == "pass" for n in names)), None)
    paths = _failing_paths(failing, bad.repo)
    changes = _changes(store, good, bad, paths)
    answer: ChangesAnswer = {
        "status": "ok" if good else "no_passing_run",
        "failing_tests": [_case_item(c) for c in failing[:10]],
        "failing_paths": paths[:20],
        "good_run": good.summary() if good else None,
        "bad_run": bad.summary(),
        "changes": changes,
    }
    if changes and changes[0]["touches_failing_code"]:
        top = changes[0]
        answer["most_likely"] = (
            f"{top['kind']} {str(top.get('revision') or '')[:10]} "
            f"{top.get('subject') or ''}".strip()
            + f": {top['reasoning']}"
        )
    if good is None:
        answer["note"] = (
            "no earlier run where these tests passed is stored; changes of the 10 days "
            "before the failing run are listed"
        )
    return answer


def change_evidence(store: Store, trace_id: bytes) -> list[dict[str, Any]]:
    """For a causality answer: the changes that touched the failing code of the failing
    tests in ``trace_id`` (empty when the trace holds no failing test). Each item:
    ``{cause, confidence, evidence, reasoning}``, highest confidence first."""
    run = next(
        (
            r
            for r in store.records.by_trace(trace_id)
            if r.source == "test" and r.attributes.get("gasoline.test.kind") == "test_run"
        ),
        None,
    )
    if run is None:
        return []
    answer = analyze_changes(store, {"trace_id": trace_id.hex()})
    items = []
    for change in answer["changes"]:
        if change["score"] < 2:
            continue
        items.append(
            {
                "cause": f"{change['kind']} {str(change.get('revision') or '')[:10]} "
                f"{change.get('subject') or ''}".strip(),
                "confidence": 0.8 if change["touches_failing_code"] else 0.4,
                "evidence": {
                    "kind": "code_change",
                    "event_id": change.get("event_id"),
                    "files": [f["path"] for f in change["files"] if f["touches_failing_code"]],
                },
                "reasoning": change["reasoning"],
            }
        )
    return items
