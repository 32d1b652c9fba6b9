"""Recognising a file across renames: the first N bytes, plus its inode.

A path says nothing about identity (rotation moves names around) and an inode alone can be
reused after a delete. The fingerprint is the first ``size`` bytes; while a file is shorter
than that, fingerprints are compared by prefix, so a growing file keeps matching itself.
"""

from __future__ import annotations

import os

__all__ = ["GZIP_MAGIC", "fingerprint_matches", "read_fingerprint"]

GZIP_MAGIC = b"\x1f\x8b"


def read_fingerprint(fd: int, size: int) -> bytes:
    """The first ``size`` bytes of the open file ``fd`` (fewer if it is shorter). Blocks on I/O."""
    data = os.pread(fd, size, 0)
    return data


def fingerprint_matches(known: bytes, current: bytes) -> bool:
    """True when one is a prefix of the other: same file, possibly grown since.

    An empty fingerprint matches anything, so callers pair it with the inode.
    """
    if len(known) <= len(current):
        return current.startswith(known)
    return known.startswith(current)
