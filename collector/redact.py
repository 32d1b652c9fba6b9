"""Secrets are replaced before anything is stored: attribute keys that look like credentials."""

from __future__ import annotations

import re
from typing import Any

from collector.config import RedactionConfig

__all__ = ["Redactor"]

_MAX_REMEMBERED_KEYS = 10_000


class Redactor:
    """Decides which attribute keys hold secrets and replaces their values."""

    __slots__ = ("_decisions", "_key", "patterns", "replacement")

    def __init__(self, config: RedactionConfig) -> None:
        self.replacement = config.replacement
        self.patterns: list[str] = []
        self._key = re.compile("(?!)")
        self._decisions: dict[str, bool] = {}
        self.set_patterns(config.key_patterns)

    def set_patterns(self, patterns: list[str]) -> None:
        """Replace the key patterns; applies to everything read from now on.
        Raises ``re.error`` for a bad pattern, leaving the old ones in place."""
        compiled = re.compile("|".join(f"(?:{p})" for p in patterns) or "(?!)", re.IGNORECASE)
        self.patterns = list(patterns)
        self._key = compiled
        self._decisions.clear()

    def is_secret_key(self, key: str) -> bool:
        """Attribute keys repeat endlessly, so each decision is remembered (boundedly)."""
        decision = self._decisions.get(key)
        if decision is None:
            decision = self._key.search(key) is not None
            if len(self._decisions) >= _MAX_REMEMBERED_KEYS:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def redact_mapping(self, attributes: dict[str, Any]) -> int:
        """Replace secret values in place, descending into nested mappings; return the count."""
        count = 0
        for key, value in attributes.items():
            if self.is_secret_key(key):
                attributes[key] = self.replacement
                count += 1
            elif isinstance(value, dict):
                count += self.redact_mapping(value)
        return count
