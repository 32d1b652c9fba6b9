"""The ``generate`` tool: a reproduction script, a failing test, a PR summary or a
timeline report from one trace (``collector.generate`` writes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.generate import FORMATS, GENERATORS, Format, GenerateAnswer, Generator
from collector.generate import generate as write
from collector.store import Store
from collector.tools.target import ToolInputError, tree_for

__all__ = ["FORMATS", "GENERATORS", "Format", "GenerateAnswer", "Generator", "generate"]


def generate(store: Store, args: Mapping[str, Any]) -> GenerateAnswer:
    """Artifact ``type`` for the trace the arguments name, in ``format``."""
    kind = args.get("type")
    if kind not in GENERATORS:
        raise ToolInputError(f"type: {kind!r} is not a generator (one of: {', '.join(GENERATORS)})")
    return write(
        str(kind),
        tree_for(store, args),
        format=args.get("format"),
        base_url=args.get("base_url"),
    )
