"""Secrets are replaced before anything is stored: attribute keys that look like credentials."""

from __future__ import annotations

import re
from typing import Any

from collector.config import RedactionConfig

__all__ = ["Redactor"]


class Redactor:
    """Decides which attribute keys hold secrets and replaces their values."""

    __slots__ = ("_key", "replacement")

    def __init__(self, config: RedactionConfig) -> None:
        self._key = re.compile("|".join(f"(?:{p})" for p in config.key_patterns), re.IGNORECASE)
        self.replacement = config.replacement

    def is_secret_key(self, key: str) -> bool:
        return self._key.search(key) is not None

    def redact_mapping(self, attributes: dict[str, Any]) -> int:
        """Replace secret values in place, descending into nested mappings; return the count."""
        count = 0
        for key, value in attributes.items():
            if self._key.search(key) is not None:
                attributes[key] = self.replacement
                count += 1
            elif isinstance(value, dict):
                count += self.redact_mapping(value)
        return count
