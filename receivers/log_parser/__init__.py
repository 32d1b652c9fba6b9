"""Log line parsing for every plain-log source: one line (or grouped record) in, fields out.

JSON (OTel, ECS, Bunyan, Pino, structlog, slog, ...), logfmt, user regexes and common text
shapes (access logs, syslog, Rails, Go, Python, Java, nginx) become a :class:`ParsedLine`
with UTC epoch-ns time, a normalised level, the message, trace/span/request ids and the
remaining fields as attributes. Standard library only.
"""

from __future__ import annotations

from .levels import normalize_level
from .multiline import MultilineGrouper
from .parser import LineParser
from .record import ParsedLine
from .timestamps import parse_timestamp

__all__ = [
    "LineParser",
    "MultilineGrouper",
    "ParsedLine",
    "normalize_level",
    "parse_timestamp",
]
