"""The console commands: ``gasoline`` (the daemon and its CLI, ``gasoline test``) and
``gasoline-run``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from receivers.run_wrapper.cli import main as run

if TYPE_CHECKING:
    from collector.component import Components

__all__ = ["extension_dir", "main", "run"]


def components() -> Components:
    """The component table, imported by the commands that run a daemon only: the CLI's
    queries (``gasoline status``, ``traces``, ...) start without loading every receiver."""
    from gasoline.components import COMPONENTS

    return COMPONENTS


def extension_dir() -> Path:
    """The browser extension's directory: the copy the wheel ships inside this package
    (``pyproject.toml`` force-includes it), else, in a source checkout or an editable
    install, the repository's ``extension/``."""
    here = Path(__file__).resolve().parent
    shipped = here / "extension"
    return shipped if shipped.is_dir() else here.parent / "extension"


def main(argv: Sequence[str] | None = None) -> int:
    """``gasoline``: serve the daemon, and look at what it holds from a terminal;
    ``gasoline test CMD`` runs a test command as a trace (``receivers.test_run``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["test"]:
        from receivers.test_run.cli import main as test_main

        return test_main(args[1:])
    # Imported here: the wrapped commands (gasoline-run, gasoline test) start without it.
    from collector.cli import main as collector_main

    return collector_main(components, argv, extension_dir=extension_dir)
