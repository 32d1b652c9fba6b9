"""``receivers: {sshlog/<name>: {...}}``: where the remote file is and how to reach it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from collector.config import Duration

__all__ = ["SshLogConfig"]


@dataclass(slots=True)
class SshLogConfig:
    """One remote file on one host.

    Host keys are verified against ``known_hosts`` (default ``~/.ssh/known_hosts``) unless
    ``insecure_skip_host_key_verification`` is set. Without ``key_file`` the SSH agent and
    the default keys in ``~/.ssh`` are tried.
    """

    host: str
    user: str
    path: str
    port: int = 22
    key_file: str | None = None
    known_hosts: str | None = None
    insecure_skip_host_key_verification: bool = False
    start_at: Literal["end", "beginning"] = "end"
    service: str = ""
    tags: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    reconnect_initial: Duration = Duration(5)
    reconnect_max: Duration = Duration(120)
    connect_timeout: Duration = Duration(10)
    poll_interval: Duration = Duration(0.25)

    def validate(self, path: str) -> list[str]:
        errors: list[str] = []
        for name in ("host", "user", "path"):
            if not str(getattr(self, name)).strip():
                errors.append(f"{path}.{name}: must not be empty")
        if isinstance(self.port, int) and not 1 <= self.port <= 65535:
            errors.append(f"{path}.port: {self.port} is not a port (expected 1-65535)")
        for name in ("reconnect_initial", "reconnect_max", "connect_timeout", "poll_interval"):
            value = float(getattr(self, name))
            if value <= 0:
                errors.append(f"{path}.{name}: {value:g}s must be greater than 0")
        if 0 < self.reconnect_max < self.reconnect_initial:
            errors.append(
                f"{path}.reconnect_max: {float(self.reconnect_max):g}s must not be less than "
                f"reconnect_initial ({float(self.reconnect_initial):g}s)"
            )
        for i, pattern in enumerate(self.patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(f"{path}.patterns[{i}]: {pattern!r} is not a regex ({exc})")
        if self.key_file is not None and not self.key_file.strip():
            errors.append(f"{path}.key_file: must not be empty (omit it to use the SSH agent)")
        return errors
