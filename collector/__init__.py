"""Gasoline's core: the data model, pipeline, stores, query, config, daemon and CLI.

Nothing in this package speaks a wire protocol; receivers and exporters do.
"""

__all__ = ["VERSION"]

VERSION = "0.1.0"
