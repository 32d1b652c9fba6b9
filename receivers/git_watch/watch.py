"""Watching one repository cheaply, and what it reports as native events (``source: "git"``).

Idle cost: each ``poll`` stats three files (HEAD, its reflog, the index) and compares their
(mtime, size, inode) with the last poll; it runs ``git`` only when one of them moved or when
the slow cadence (``status_interval``) is due. Editing a work-tree file touches none of them,
so such edits are seen on that cadence: watching 50,000 files for edits (inotify on every
directory, or a full ``git status`` each second) would cost more, idle, than the edits are
worth between two test runs. ``gasoline test`` takes a snapshot of its own at every run, so a
run always knows its uncommitted changes. Uncommitted changes are reported after ``debounce``
seconds without a move, and only when they differ from the last report (files and diffstat).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from receivers.git_watch.repo import GitError, Repo, Status, find_repo

__all__ = ["RepoWatch", "WorkdirWatch", "checkout_event", "commit_event", "uncommitted_event"]

_StatKey = tuple[tuple[int, int, int], ...]


def _base(repo: Repo, branch: str, sha: str) -> dict[str, Any]:
    return {
        "vcs.repository.path": str(repo.root),
        "vcs.ref.head.name": branch,
        "vcs.ref.head.revision": sha,
    }


def commit_event(repo: Repo, branch: str, commit: dict[str, Any]) -> dict[str, Any]:
    files = commit["files"]
    return {
        "timestamp": commit["time_s"] * 1000 or time.time_ns() // 1_000_000,
        "source": "git",
        "level": "info",
        "message": f"commit {commit['sha'][:10]} on {branch or 'detached HEAD'}: "
        f"{commit['subject']} ({len(files)} file{'s' if len(files) != 1 else ''})",
        "service": repo.root.name,
        "tags": ["git:commit"],
        "metadata": {
            **_base(repo, branch, commit["sha"]),
            "git.event": "commit",
            "git.author": commit["author"],
            "git.subject": commit["subject"],
            "git.files": files,
        },
    }


def checkout_event(repo: Repo, old: tuple[str, str], new: tuple[str, str]) -> dict[str, Any]:
    name = new[1] or f"detached HEAD {new[0][:10]}"
    return {
        "timestamp": time.time_ns() // 1_000_000,
        "source": "git",
        "level": "info",
        "message": f"switched to {name} (from {old[1] or old[0][:10] or 'nothing'})",
        "service": repo.root.name,
        "tags": ["git:checkout"],
        "metadata": {
            **_base(repo, new[1], new[0]),
            "git.event": "checkout",
            "git.previous.name": old[1],
            "git.previous.revision": old[0],
        },
    }


def uncommitted_event(repo: Repo, head: tuple[str, str], status: Status) -> dict[str, Any]:
    return {
        "timestamp": time.time_ns() // 1_000_000,
        "source": "git",
        "level": "info",
        "message": f"uncommitted changes: {status.summary()}"
        if status.files
        else "no uncommitted changes",
        "service": repo.root.name,
        "tags": ["git:uncommitted"],
        "metadata": {
            **_base(repo, head[1], head[0]),
            "git.event": "uncommitted",
            "git.files": [f.as_json() for f in status.files],
        },
    }


class RepoWatch:
    """The state of one watched repository; ``poll`` is called on a cadence by one thread.

    The first poll records HEAD and reports the uncommitted changes found then, if any."""

    def __init__(self, repo: Repo, *, status_interval: float, debounce: float) -> None:
        self.repo = repo
        self.status_interval = status_interval
        self.debounce = debounce
        self.git_runs = 0
        self.errors = 0
        self.last_error = ""
        self._key: _StatKey | None = None
        self._head: tuple[str, str] | None = None
        self._reported: tuple[Any, ...] | None = None
        self._moved_at = 0.0  # when a stat last changed (monotonic)
        self._status_due = 0.0

    def _stat(self) -> _StatKey:
        key = []
        for path in self.repo.moved_files():
            try:
                st = os.stat(path)
                key.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                key.append((0, 0, 0))
        return tuple(key)

    def due(self, now: float) -> bool:
        """Cheap: whether ``poll`` would run git now (three stats)."""
        key = self._stat()
        if key != self._key:
            self._key = key
            self._moved_at = now
            self._status_due = min(self._status_due, now + self.debounce)
            return True
        return now >= self._status_due and now - self._moved_at >= self.debounce

    def poll(self, now: float) -> list[dict[str, Any]]:
        """The events since the last poll (runs git; call when ``due``)."""
        try:
            return self._poll(now)
        except GitError as exc:
            self.errors += 1
            self.last_error = str(exc)
            self._status_due = now + self.status_interval
            return []

    def _poll(self, now: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        self.git_runs += 1
        head = self.repo.head()
        if self._head is not None and head != self._head:
            if head[1] != self._head[1]:
                events.append(checkout_event(self.repo, self._head, head))
            elif head[0]:
                commits = self.repo.commits(self._head[0], head[0])
                events.extend(commit_event(self.repo, head[1], c) for c in reversed(commits))
        first = self._head is None
        self._head = head
        if now - self._moved_at >= self.debounce or first:
            status = self.repo.status()
            self._status_due = now + self.status_interval
            fingerprint = (head[0], status.fingerprint())
            if fingerprint != self._reported:
                if status.files or not first:
                    events.append(uncommitted_event(self.repo, head, status))
                self._reported = fingerprint
        return events


class WorkdirWatch:
    """The repository of a wrapped command's working directory, watched for as long as the
    command runs (``gasoline-run``): ``tick`` is called often by the wrapper's shipper
    thread and looks at most every ``poll_interval`` seconds. The repository is found on
    the first look, so the command starts without waiting for git."""

    def __init__(
        self,
        cwd: Path,
        *,
        poll_interval: float = 1.0,
        status_interval: float = 30.0,
        debounce: float = 2.0,
    ) -> None:
        self.cwd = cwd
        self.poll_interval = poll_interval
        self._options = {"status_interval": status_interval, "debounce": debounce}
        self._watch: RepoWatch | None = None
        self._searched = False
        self._next = 0.0

    def tick(self, now: float) -> list[dict[str, Any]]:
        if now < self._next:
            return []
        self._next = now + self.poll_interval
        if not self._searched:
            self._searched = True
            repo = find_repo(self.cwd)
            if repo is not None:
                self._watch = RepoWatch(repo, **self._options)
        if self._watch is None or not self._watch.due(now):
            return []
        return self._watch.poll(now)
