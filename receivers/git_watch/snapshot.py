"""The git state of a test run's working directory, taken by ``gasoline test`` at every run:
HEAD, branch, uncommitted changes, and the commits and branch switch since the previous run
in that repository (remembered in a small state file), as ``source: "git"`` events plus the
attributes the run's span carries."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from receivers.git_watch.repo import GitError, find_repo
from receivers.git_watch.watch import checkout_event, commit_event, uncommitted_event

__all__ = ["Snapshot", "take_snapshot"]


@dataclass(slots=True)
class Snapshot:
    events: list[dict[str, Any]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def take_snapshot(cwd: Path, state_file: Path) -> Snapshot:
    """Empty when ``cwd`` is in no repository; ``error`` says what failed otherwise."""
    repo = find_repo(cwd)
    if repo is None:
        return Snapshot()
    try:
        state = json.loads(state_file.read_text())
        if not isinstance(state, dict):
            state = {}
    except (OSError, ValueError):
        state = {}
    snap = Snapshot()
    try:
        head = repo.head()
        last = state.get(str(repo.root))
        if isinstance(last, list) and len(last) == 2 and tuple(last) != head:
            old = (str(last[0]), str(last[1]))
            if old[1] != head[1]:
                snap.events.append(checkout_event(repo, old, head))
            if head[0] and old[0]:
                with contextlib.suppress(GitError):  # old may be gone (rebased, gc'd)
                    commits = repo.commits(old[0], head[0])
                    snap.events.extend(commit_event(repo, head[1], c) for c in reversed(commits))
        status = repo.status()
    except GitError as exc:
        return Snapshot(error=str(exc))
    event = uncommitted_event(repo, head, status)
    snap.events.append(event)
    snap.attributes = {
        "vcs.repository.path": str(repo.root),
        "vcs.ref.head.name": head[1],
        "vcs.ref.head.revision": head[0],
        "gasoline.git.uncommitted": json.dumps(event["metadata"]["git.files"]),
    }
    state[str(repo.root)] = list(head)
    with contextlib.suppress(OSError):
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(f".{state_file.name}.{os.getpid()}")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_file)
    return snap
