"""Jittered exponential backoff between reconnect attempts."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """``initial`` doubling up to ``maximum``, each delay scaled by a random factor in
    ``1 ± jitter`` so many tailers restarted together do not reconnect in lockstep.

    ``random`` is injectable for tests; ``reset()`` after a successful connection.
    """

    __slots__ = ("_attempt", "_initial", "_jitter", "_maximum", "_random")

    def __init__(
        self,
        initial: float,
        maximum: float,
        *,
        jitter: float = 0.1,
        random: Callable[[], float] = random.random,
    ) -> None:
        if initial <= 0 or maximum < initial or not 0 <= jitter < 1:
            raise ValueError("need 0 < initial <= maximum and 0 <= jitter < 1")
        self._initial = initial
        self._maximum = maximum
        self._jitter = jitter
        self._random = random
        self._attempt = 0

    @property
    def maximum(self) -> float:
        return self._maximum

    def next(self) -> float:
        """The delay before the next attempt; each call doubles the base, up to ``maximum``."""
        base = min(self._maximum, self._initial * 2.0 ** min(self._attempt, 62))
        self._attempt += 1
        return self.jittered(base)

    def jittered(self, base: float) -> float:
        return base * (1.0 + self._jitter * (2.0 * self._random() - 1.0))

    def reset(self) -> None:
        self._attempt = 0
