"""The ``interact`` tool: run what the config allowlists (``collector.interact`` runs it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.interact import ACTIONS, InteractAction, InteractAnswer, Interactor
from collector.tools.target import ToolInputError

__all__ = ["ACTIONS", "InteractAction", "InteractAnswer", "interact"]


async def interact(interactor: Interactor | None, args: Mapping[str, Any]) -> InteractAnswer:
    """Run ``action`` (with ``name`` for a command or service) and answer its exit code
    and last lines."""
    if interactor is None:
        raise ToolInputError("interact is not available in this process")
    return await interactor.run(str(args.get("action")), args.get("name"))
