"""One git repository through the ``git`` command: where it is, HEAD, commits between two
revisions, uncommitted changes; each as a native event (``source: "git"``).

Standard library only: ``gasoline test`` uses it in the wrapper, the ``gitwatch`` receiver
in the daemon. Every git call has a timeout and a bounded output; a failing call yields
nothing rather than an exception past this module (the caller counts it)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FileChange", "GitError", "Repo", "Status", "find_repo"]

_TIMEOUT_S = 20.0
_MAX_COMMITS = 50
_MAX_FILES = 200
_SEP = "\x1f"
_ENV = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
# Git runs here on its own, in whatever repository a command was started in: no program a
# repository's config names runs (an fsmonitor hook here; external diffs and textconv
# filters are turned off where diffs are made).
_SAFE = ("-c", "core.fsmonitor=false")


class GitError(Exception):
    """A git command failed; the message names the command and repository."""


@dataclass(slots=True, frozen=True)
class FileChange:
    path: str
    added: int | None  # None for binary files
    deleted: int | None
    state: str = "M"  # porcelain letter: M, A, D, R, ?? (untracked)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "added": self.added,
            "deleted": self.deleted,
            "state": self.state,
        }


@dataclass(slots=True)
class Status:
    """Uncommitted changes against HEAD: tracked files with their diffstat, and untracked."""

    files: list[FileChange] = field(default_factory=list)

    def fingerprint(self) -> tuple[tuple[str, int | None, int | None, str], ...]:
        return tuple((f.path, f.added, f.deleted, f.state) for f in self.files)

    def summary(self) -> str:
        added = sum(f.added or 0 for f in self.files)
        deleted = sum(f.deleted or 0 for f in self.files)
        n = len(self.files)
        return f"{n} file{'s' if n != 1 else ''} changed (+{added} -{deleted})"


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *_SAFE, *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=_TIMEOUT_S,
            env=_ENV,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"git {args[0]} in {root}: {exc}") from None
    if done.returncode != 0:
        raise GitError(f"git {args[0]} in {root}: {done.stderr.strip()[:300]}")
    return done.stdout


def find_repo(path: Path) -> Repo | None:
    """The repository ``path`` is in, or None (not a repository, or git is missing)."""
    try:
        out = _git(path, "rev-parse", "--show-toplevel", "--absolute-git-dir")
    except GitError:
        return None
    lines = out.splitlines()
    if len(lines) < 2:
        return None
    return Repo(Path(lines[0]), Path(lines[1]))


class Repo:
    """A repository's work tree (``root``) and git directory (``git_dir``)."""

    def __init__(self, root: Path, git_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir

    def moved_files(self) -> tuple[Path, ...]:
        """The files whose stat tells that something moved: HEAD (branch switch), its
        reflog (every commit, checkout, reset), the index (staging, and most git commands)."""
        return (self.git_dir / "HEAD", self.git_dir / "logs" / "HEAD", self.git_dir / "index")

    def head(self) -> tuple[str, str]:
        """(commit sha, branch name; "" when detached); ("", "") before the first commit."""
        try:
            sha = _git(self.root, "rev-parse", "--verify", "-q", "HEAD").strip()
        except GitError:
            sha = ""
        try:
            branch = _git(self.root, "symbolic-ref", "-q", "--short", "HEAD").strip()
        except GitError:
            branch = ""
        return sha, branch

    def commits(self, old: str, new: str) -> list[dict[str, Any]]:
        """Commits reachable from ``new`` and not from ``old`` (all of ``new``'s history
        when ``old`` is ""), newest first, at most 50, each with its files' diffstat."""
        span = f"{old}..{new}" if old else new
        out = _git(
            self.root,
            "log",
            f"-{_MAX_COMMITS}",
            "--no-color",
            "--numstat",
            "--no-ext-diff",
            "--no-textconv",
            f"--format=%x1e%H{_SEP}%an{_SEP}%ae{_SEP}%at{_SEP}%s",
            span,
        )
        commits = []
        for block in out.split("\x1e")[1:]:
            head, _, rest = block.partition("\n")
            sha, author, email, when, subject = [*head.split(_SEP), "", "", "", ""][:5]
            files = [_numstat(line) for line in rest.splitlines() if line.strip()]
            commits.append(
                {
                    "sha": sha,
                    "author": author,
                    "email": email,
                    "time_s": int(when) if when.isdigit() else 0,
                    "subject": subject,
                    "files": [f.as_json() for f in files[:_MAX_FILES]],
                }
            )
        return commits

    def status(self) -> Status:
        """Uncommitted changes: ``git status`` (which refreshes the index's stat cache, so
        the next one is cheap) and ``git diff --numstat HEAD`` for the diffstat."""
        states: dict[str, str] = {}
        out = _git(self.root, "status", "--porcelain=v1", "-z", "--untracked-files=normal")
        entries = out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            i += 1
            if len(entry) < 4:
                continue
            code, path = entry[:2], entry[3:]
            if "R" in code or "C" in code:
                i += 1  # the rename's source path follows
            states[path] = "??" if code == "??" else code.strip()[:1] or "M"
        if not states:
            return Status()
        stats: dict[str, FileChange] = {}
        try:
            diff = _git(
                self.root,
                "diff",
                "--numstat",
                "--no-renames",
                "--no-ext-diff",
                "--no-textconv",
                "HEAD",
            )
        except GitError:  # no commit yet
            diff = ""
        for line in diff.splitlines():
            change = _numstat(line)
            stats[change.path] = change
        files = []
        for path, state in sorted(states.items())[:_MAX_FILES]:
            known = stats.get(path)
            added = known.added if known else _count_lines(self.root / path, state)
            files.append(FileChange(path, added, known.deleted if known else 0, state))
        return Status(files)


def _numstat(line: str) -> FileChange:
    added, deleted, path = [*line.split("\t", 2), "", ""][:3]
    return FileChange(
        path, int(added) if added.isdigit() else None, int(deleted) if deleted.isdigit() else None
    )


def _count_lines(path: Path, state: str) -> int | None:
    """Lines of an untracked file (its whole content is the change), up to 1 MiB."""
    if state != "??":
        return None
    try:
        with path.open("rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return None
    return None if b"\0" in data else data.count(b"\n")
