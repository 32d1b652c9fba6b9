"""One exception tree for the whole collector.

CollectorError
 +-- ConfigError          a config file or flag is wrong; names every bad key
 +-- ReceiverStartError   a receiver could not bind or open its source
 +-- DecodeError          a request body is not what its content type promises
 +-- QueueFullError       the pipeline accepted nothing; the sender should retry
 +-- ExportError          a forwarder failed; ``retryable`` says whether to retry
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CollectorError",
    "ConfigError",
    "DecodeError",
    "ExportError",
    "QueueFullError",
    "ReceiverStartError",
]


class CollectorError(Exception):
    """Base of every error Gasoline raises on purpose."""


class ConfigError(CollectorError):
    """All problems found in a config, each prefixed with its dotted key path."""

    def __init__(self, problems: Sequence[str], *, source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"invalid config{where}:\n  " + "\n  ".join(self.problems))


class ReceiverStartError(CollectorError):
    """A receiver could not start, e.g. ``otlp_http: cannot bind 127.0.0.1:4318: ...``."""


class DecodeError(CollectorError):
    """The payload could not be decoded; the message says what was expected."""


class QueueFullError(CollectorError):
    """The pipeline is shedding load; retry after ``retry_after_s`` seconds."""

    def __init__(self, message: str, *, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ExportError(CollectorError):
    """A forwarder could not deliver a batch."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
