"""Git repositories on the timeline: the ``gitwatch`` receiver over real repositories made
with the real ``git`` (commit, edit, branch switch, a directory that is no repository),
and ``gasoline test``'s own snapshot of its working directory."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from receivers.git_watch.repo import find_repo
from receivers.git_watch.watch import RepoWatch
from tests.conftest import Running, wait_for

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> str:
    import os

    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    ).stdout


def make_repo(path: Path) -> Path:
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("def total(items):\n    return sum(items)\n")
    git(path, "add", "app.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def git_events(gasoline: Running, kind: str) -> list[Any]:
    return [
        r
        for r in gasoline.daemon.pipeline.store.records.iter_newest_first()
        if r.source == "git" and r.attributes.get("git.event") == kind
    ]


def has(gasoline: Running, kind: str, match: Callable[[Any], bool]) -> Callable[[], bool]:
    return lambda: any(match(r) for r in git_events(gasoline, kind))


async def test_commits_edits_and_branch_switches_become_git_events(
    start_daemon: Callable[..., Any], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "shop")
    plain = tmp_path / "plain"
    plain.mkdir()
    gasoline = await start_daemon(
        f"""
        receivers:
          gitwatch:
            repositories: [{repo}, {plain}]
            poll_interval: 50ms
            status_interval: 200ms
            debounce: 100ms
        service:
          pipelines:
            logs:
              receivers: [otlp, gitwatch]
        """
    )
    _, status = await gasoline.get_json("/daemon/status")
    part = status["receivers"]["gitwatch"]
    assert part["status"] == "degraded"  # one directory is not a repository
    assert part["repositories"] == [str(repo)]
    assert part["not_repositories"] == [f"{plain}: not in a git repository"]

    (repo / "app.py").write_text("def total(items):\n    return sum(items) + 1\n")
    git(repo, "commit", "-q", "-am", "off by one")
    sha = git(repo, "rev-parse", "HEAD").strip()
    await wait_for(has(gasoline, "commit", lambda r: r.attributes["vcs.ref.head.revision"] == sha))
    [commit] = git_events(gasoline, "commit")
    assert "off by one" in commit.message and commit.attributes["vcs.ref.head.name"] == "main"
    assert commit.attributes["git.files"] == [
        {"path": "app.py", "added": 1, "deleted": 1, "state": "M"}
    ]

    (repo / "app.py").write_text("def total(items):\n    return 0\n\n\n")
    (repo / "new.py").write_text("x = 1\n")
    await wait_for(
        has(gasoline, "uncommitted", lambda r: len(r.attributes["git.files"]) == 2), timeout=10
    )
    [dirty] = [
        r for r in git_events(gasoline, "uncommitted") if len(r.attributes["git.files"]) == 2
    ]
    files = {f["path"]: f for f in dirty.attributes["git.files"]}
    assert files["app.py"]["added"] == 3 and files["app.py"]["deleted"] == 1
    assert files["new.py"]["state"] == "??" and files["new.py"]["added"] == 1
    assert dirty.message == "uncommitted changes: 2 files changed (+4 -1)"

    git(repo, "stash", "-u", "-q")
    git(repo, "checkout", "-q", "-b", "feature")
    await wait_for(
        has(gasoline, "checkout", lambda r: r.attributes["vcs.ref.head.name"] == "feature")
    )
    [switch] = git_events(gasoline, "checkout")
    assert switch.message == "switched to feature (from main)"


def test_an_idle_repository_runs_git_only_on_the_slow_cadence(tmp_path: Path) -> None:
    found = find_repo(make_repo(tmp_path / "idle"))
    assert found is not None
    watch = RepoWatch(found, status_interval=30.0, debounce=1.0)
    assert watch.due(0.0)
    assert watch.poll(0.0) == []  # clean at the first look: nothing to report
    polls = [t / 10 for t in range(1, 290)]  # 29 s of polls ten times a second
    assert not any(watch.due(t) for t in polls)
    assert watch.git_runs == 1
    assert watch.due(31.0)  # the slow cadence


def test_a_directory_outside_any_repository(tmp_path: Path) -> None:
    assert find_repo(tmp_path) is None


async def test_gasoline_run_reports_the_git_state_of_its_working_directory(
    gasoline: Running, tmp_path: Path
) -> None:
    import asyncio
    import os
    import sys

    repo = make_repo(tmp_path / "svc")
    (repo / "app.py").write_text("def total(items):\n    return 0\n")  # dirty at start
    child = "import sys, subprocess; sys.stdin.readline(); subprocess.run(['git', 'commit', '-qam', 'zero'], check=True)"
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("gasoline-run")),
        "--url",
        gasoline.api,
        sys.executable,
        "-c",
        child,
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        stdin=asyncio.subprocess.PIPE,
    )
    await wait_for(
        has(gasoline, "uncommitted", lambda r: r.attributes["vcs.repository.path"] == str(repo))
    )
    [dirty] = git_events(gasoline, "uncommitted")
    assert [f["path"] for f in dirty.attributes["git.files"]] == ["app.py"]
    assert proc.stdin is not None
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    assert await proc.wait() == 0
    await wait_for(has(gasoline, "commit", lambda r: r.attributes["git.subject"] == "zero"))


def test_git_runs_no_program_the_repository_config_names(tmp_path: Path) -> None:
    """The watcher runs git by itself in whatever directory a command starts in: a
    repository's own config (an fsmonitor hook, an external diff, a textconv driver) must
    not make it run a program."""
    repo = make_repo(tmp_path / "hostile")
    ran = tmp_path / "ran"
    program = tmp_path / "program.sh"
    program.write_text(f'#!/bin/sh\necho "$0 $*" >> {ran}\ncat "$1" 2>/dev/null\n')
    program.chmod(0o755)
    git(repo, "config", "core.fsmonitor", str(program))
    git(repo, "config", "diff.external", str(program))
    git(repo, "config", "diff.shout.textconv", str(program))
    (repo / ".gitattributes").write_text("*.py diff=shout\n")
    (repo / "app.py").write_text("def total(items):\n    return sum(items) + 1\n")
    found = find_repo(repo)
    assert found is not None
    status = found.status()
    assert [f.path for f in status.files if f.path == "app.py"] == ["app.py"]
    sha, _ = found.head()
    assert found.commits("", sha)
    assert not ran.exists(), ran.read_text()
    # The same repository does run them for git itself: the check above could fail.
    git(repo, "diff", "HEAD")
    assert ran.exists()
