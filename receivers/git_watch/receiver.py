"""``gitwatch``: the daemon's receiver for configured repositories. Commits, branch
switches and uncommitted changes become events with ``source: "git"`` (see ``watch``).

Every ``poll_interval`` the loop stats three files per repository on the event loop (a few
microseconds); git itself runs on a worker thread, only for a repository that moved or
whose ``status_interval`` is due."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.component import Sink
from collector.config import Duration, Endpoint
from collector.errors import CollectorError, DecodeError
from collector.events import parse_event
from collector.model import DropReason
from receivers.git_watch.repo import find_repo
from receivers.git_watch.watch import RepoWatch

__all__ = ["GitWatchConfig", "GitWatchReceiver"]


@dataclass(slots=True)
class GitWatchConfig:
    """One ``receivers.gitwatch`` section: the repositories (any directory inside one) to
    watch, how often to look at them, and the quiet time before uncommitted changes are
    reported."""

    repositories: list[str] = field(default_factory=list)
    poll_interval: Duration = Duration(1.0)
    status_interval: Duration = Duration(30.0)
    debounce: Duration = Duration(2.0)

    def validate(self, path: str) -> list[str]:
        errors = []
        if not self.repositories:
            errors.append(f"{path}.repositories: must list at least one directory")
        for name in ("poll_interval", "status_interval"):
            if getattr(self, name) < 0.05:
                errors.append(f"{path}.{name}: too short (expected at least 50ms)")
        for i, repo in enumerate(self.repositories):
            if isinstance(repo, str) and not Path(repo).expanduser().is_dir():
                errors.append(f"{path}.repositories[{i}]: {repo!r} is not a directory")
        return errors


class GitWatchReceiver:
    """Watches ``config.repositories``; a directory that is not in a repository is
    reported in ``stats`` (status ``degraded``) and skipped, the others are watched."""

    def __init__(self, config: GitWatchConfig, *, name: str = "gitwatch") -> None:
        self.name = name
        self.config = config
        self._watches: list[RepoWatch] = []
        self._not_repos: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._sink: Sink | None = None
        self._events = 0
        self._refused = 0

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return []

    def bound(self) -> dict[str, int]:
        return {}

    def stats(self) -> dict[str, dict[str, Any]]:
        status = "stopped" if self._task is None else "degraded" if self._not_repos else "running"
        part: dict[str, Any] = {
            "status": status,
            "counts": {
                "events": self._events,
                "refused": self._refused,
                "git_runs": sum(w.git_runs for w in self._watches),
                "git_errors": sum(w.errors for w in self._watches),
            },
            "repositories": [str(w.repo.root) for w in self._watches],
        }
        if self._not_repos:
            part["not_repositories"] = self._not_repos
        errors = [w.last_error for w in self._watches if w.last_error]
        if errors:
            part["last_error"] = errors[-1]
        return {self.name: part}

    async def start(self, sink: Sink) -> None:
        if self._task is not None:
            return
        self._sink = sink
        self._watches, self._not_repos = [], []
        seen = set()
        for raw in self.config.repositories:
            repo = await asyncio.to_thread(find_repo, Path(raw).expanduser())
            if repo is None:
                self._not_repos.append(f"{raw}: not in a git repository")
            elif repo.root not in seen:
                seen.add(repo.root)
                self._watches.append(
                    RepoWatch(
                        repo,
                        status_interval=self.config.status_interval,
                        debounce=self.config.debounce,
                    )
                )
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-poll")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._sink = None

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            for watch in self._watches:
                if watch.due(now):
                    events = await asyncio.to_thread(watch.poll, now)
                    self._offer(events)
            await asyncio.sleep(self.config.poll_interval)

    def _offer(self, events: list[dict[str, Any]]) -> None:
        sink = self._sink
        if not events or sink is None:
            return
        now = time.time_ns()
        try:
            records = [parse_event(e, "git", now) for e in events]
        except DecodeError:
            self._refused += len(events)
            sink.count_dropped("records", DropReason.INVALID, len(events))
            return
        try:
            sink.offer_records(records)
        except CollectorError:
            self._refused += len(records)  # the pipeline counted the drop
            return
        self._events += len(records)
