"""The console commands: ``gasoline`` (the daemon and its CLI) and ``gasoline-run``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from collector.cli import main as collector_main
from collector.component import Components
from receivers.run_wrapper.cli import main as run

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
    """``gasoline``: serve the daemon, and look at what it holds from a terminal."""
    return collector_main(components, argv, extension_dir=extension_dir)
