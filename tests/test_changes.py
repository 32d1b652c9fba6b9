"""Good run, breaking commit, bad run: ``analyze changes`` names the commit and the file;
``observe tests`` and ``observe changes`` show the runs and the git events; the evidence
a causality answer can cite. Real git, real pytest through ``gasoline test``."""

from __future__ import annotations

from pathlib import Path

from collector.analysis.changes import change_evidence
from tests.conftest import Running, wait_for
from tests.test_gasoline_test import bare_python, run_test_command
from tests.test_git_watch import git

__all__ = ["bare_python"]  # the fixture, shared

APP = 'def total(prices):\n    return sum(p["amount"] for p in prices)\n'
BROKEN = 'def total(prices):\n    return sum(p["price"] for p in prices)\n'
TEST = (
    "from app import total\n\n\n"
    "def test_total():\n"
    '    assert total([{"amount": 2}, {"amount": 3}]) == 5\n\n\n'
    "def test_unrelated():\n"
    "    assert True\n"
)


def _runs(gasoline: Running) -> int:
    return sum(
        1
        for r in gasoline.daemon.pipeline.store.records.iter_newest_first()
        if r.attributes.get("gasoline.test.kind") == "test_run"
    )


async def test_analyze_changes_names_the_breaking_commit_and_file(
    gasoline: Running, bare_python: str, tmp_path: Path
) -> None:
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text(APP)
    (repo / "test_app.py").write_text(TEST)
    (repo / "docs.md").write_text("# Shop\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "shop")
    pytest_cmd = (bare_python, "-m", "pytest", "-q", "-p", "no:cacheprovider")

    code, out, err = await run_test_command(gasoline, repo, *pytest_cmd)
    assert code == 0, out + err
    await wait_for(lambda: _runs(gasoline) == 1)

    (repo / "app.py").write_text(BROKEN)
    # Authored long before the good run (as a rebased or cherry-picked commit is): the bad
    # run reports it among the commits since the previous run, whatever its date.
    git(repo, "commit", "-q", "--date=2020-01-01T12:00:00", "-am", "Read prices from the new field")
    breaking = git(repo, "rev-parse", "HEAD").strip()
    (repo / "docs.md").write_text("# Shop\n\nPrices are in cents.\n")
    git(repo, "commit", "-q", "-am", "Document prices")
    (repo / "notes.txt").write_text("todo\n")  # uncommitted, unrelated

    code, out, err = await run_test_command(gasoline, repo, *pytest_cmd)
    assert code == 1 and "KeyError" in out
    await wait_for(lambda: _runs(gasoline) == 2)
    await gasoline.settled()

    answer = await gasoline.daemon.tools.run("analyze", {"type": "changes"})
    assert answer["status"] == "ok", answer
    assert [t["test"] for t in answer["failing_tests"]] == ["test_app.py::test_total"]
    assert "app.py" in answer["failing_paths"]
    top = answer["changes"][0]
    assert top["kind"] == "commit" and top["revision"] == breaking
    assert top["subject"] == "Read prices from the new field"
    assert top["touches_failing_code"] is True
    assert [f["path"] for f in top["files"] if f["touches_failing_code"]] == ["app.py"]
    others = {c.get("subject") or c["kind"]: c for c in answer["changes"][1:]}
    assert others["Document prices"]["touches_failing_code"] is False
    assert [f["path"] for f in others["uncommitted"]["files"]] == ["notes.txt"]
    assert breaking[:10] in answer["most_likely"]

    bad = answer["bad_run"]["trace_id"]
    [evidence] = change_evidence(gasoline.daemon.store, bytes.fromhex(bad))
    assert breaking[:10] in evidence["cause"] and evidence["evidence"]["files"] == ["app.py"]

    tests = await gasoline.daemon.tools.run("observe", {"what": "tests"})
    newest, oldest = tests["runs"]
    assert oldest["status"] == "success" and newest["status"] == "failure"
    [failure] = newest["failures"]
    assert failure["test"] == "test_app.py::test_total" and "KeyError" in failure["message"]

    changes = await gasoline.daemon.tools.run("observe", {"what": "changes"})
    messages = [e["message"] for e in changes["events"]]
    assert any("Read prices from the new field" in m for m in messages)
    assert any(m.startswith("uncommitted changes: 1 file") for m in messages)


async def test_no_failing_run_says_so(gasoline: Running) -> None:
    answer = await gasoline.daemon.tools.run("analyze", {"type": "changes"})
    assert answer["status"] == "no_failing_run" and answer["changes"] == []
