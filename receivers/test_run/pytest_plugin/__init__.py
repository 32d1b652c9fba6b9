"""The directory ``gasoline test`` puts on the command's ``PYTHONPATH`` for that run only, so
the user's own interpreter can load ``gasoline_pytest`` (``PYTEST_PLUGINS``) with nothing
installed in the project's environment."""

from pathlib import Path

__all__ = ["PLUGIN_DIR", "PLUGIN_MODULE"]

PLUGIN_DIR = Path(__file__).resolve().parent
PLUGIN_MODULE = "gasoline_pytest"
