"""Persisted read offsets: ``{"version": 1, "files": [...]}``, written atomically.

The file is written to a temporary name beside it, fsynced, renamed over the old one and
the directory fsynced, so a crash leaves either the old or the new checkpoint, never half.
Both functions block; the tailer calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CHECKPOINT_NAME", "FileCheckpoint", "load_checkpoints", "save_checkpoints"]

CHECKPOINT_NAME = "offsets.json"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class FileCheckpoint:
    """Where reading of one file stopped: everything before ``offset`` was delivered."""

    path: str
    dev: int
    inode: int
    fingerprint: bytes
    offset: int

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "dev": self.dev,
            "inode": self.inode,
            "fingerprint": self.fingerprint.hex(),
            "offset": self.offset,
        }


def load_checkpoints(directory: Path) -> list[FileCheckpoint]:
    """Read the checkpoint in ``directory``; [] if there is none.

    Raises ``ValueError`` for a file that is not a version-1 checkpoint and ``OSError``
    when it cannot be read.
    """
    path = directory / CHECKPOINT_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    try:
        data = json.loads(text)
        if data.get("version") != _VERSION:
            raise ValueError(f"unsupported version {data.get('version')!r}")
        return [
            FileCheckpoint(
                path=str(entry["path"]),
                dev=int(entry["dev"]),
                inode=int(entry["inode"]),
                fingerprint=bytes.fromhex(entry["fingerprint"]),
                offset=int(entry["offset"]),
            )
            for entry in data["files"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a filelog checkpoint ({exc})") from None


def save_checkpoints(directory: Path, entries: list[FileCheckpoint]) -> None:
    """Replace the checkpoint in ``directory`` atomically (tmp file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CHECKPOINT_NAME
    tmp = directory / f".{CHECKPOINT_NAME}.tmp"
    payload = json.dumps({"version": _VERSION, "files": [e.to_json() for e in entries]})
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
