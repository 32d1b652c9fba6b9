"""``FileLogConfig``: what to tail, where to start, and where offsets persist."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from collector.config import Duration

__all__ = ["FileLogConfig"]

_MIN_POLL_S = 0.01


@dataclass(slots=True)
class FileLogConfig:
    """One ``receivers.filelog/<name>`` section.

    ``include``/``exclude`` are globs (``**`` allowed). Files present at start begin at
    ``start_at``; files that appear later are read from their beginning. ``storage_dir``
    defaults to ``~/.gasoline/filelog/<instance name>``.
    """

    include: list[str] | None = None  # required; None so a bad value still validates
    exclude: list[str] = field(default_factory=list)
    start_at: Literal["end", "beginning"] = "end"
    poll_interval: Duration = Duration(0.1)
    service: str = ""
    tags: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    fingerprint_size: int = 1000
    max_line_bytes: int = 64 * 1024
    storage_dir: str | None = None
    max_batch_lines: int = 10_000

    def validate(self, path: str) -> list[str]:
        errors: list[str] = []
        if self.include is None:
            errors.append(f"{path}.include: required (a list of globs)")
        elif not self.include:
            errors.append(f"{path}.include: must list at least one glob")
        for key, globs in (("include", self.include or []), ("exclude", self.exclude)):
            for i, glob in enumerate(globs):
                if isinstance(glob, str) and not glob.strip():
                    errors.append(f"{path}.{key}[{i}]: must not be empty")
        if self.poll_interval < _MIN_POLL_S:
            errors.append(
                f"{path}.poll_interval: {float(self.poll_interval)!r}s is too short "
                f"(expected at least 10ms)"
            )
        for i, pattern in enumerate(self.patterns):
            if not isinstance(pattern, str):
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(f"{path}.patterns[{i}]: {pattern!r} is not a regex ({exc})")
        for name in ("fingerprint_size", "max_line_bytes", "max_batch_lines"):
            value = getattr(self, name)
            if isinstance(value, int) and value <= 0:
                errors.append(f"{path}.{name}: {value!r} must be greater than 0")
        if self.storage_dir is not None and not self.storage_dir.strip():
            errors.append(f"{path}.storage_dir: must not be empty (omit it for the default)")
        return errors

    def storage_path(self, instance: str) -> Path:
        """Directory of the offsets checkpoint for receiver instance ``instance``."""
        if self.storage_dir is not None:
            return Path(self.storage_dir).expanduser()
        safe = instance.replace("/", "_")
        return Path("~/.gasoline/filelog").expanduser() / safe
