"""What a failure's words say about where it came from.

Some errors are typical consequences of a failure elsewhere: a circuit breaker that is
open, a deadline that passed while a callee was still working, a connection pool with
no free connection, an upstream's 5xx relayed. Others say a process died (the kernel's
OOM killer, a panic, a signal) or a peer could not be reached at all. And some events
are changes (a config reload, a deploy) that can explain a consequence. The patterns
here are the words real runtimes, drivers and proxies use (Python, Go, Java, Node,
gRPC, PostgreSQL, Envoy/nginx); matching is case-insensitive.
"""

from __future__ import annotations

import re
from enum import StrEnum

from collector.model import Record

__all__ = [
    "Consequence",
    "consequence_of",
    "is_change",
    "is_connection_failure",
    "is_generic",
    "is_process_death",
    "shares_resource",
]


class Consequence(StrEnum):
    """Kinds of errors that usually propagate a failure from elsewhere."""

    BREAKER = "circuit_breaker_open"
    POOL = "pool_exhausted"
    DEADLINE = "deadline_exceeded"
    UPSTREAM = "upstream_error_relayed"


_BREAKER = re.compile(r"circuit|breaker", re.I)
_POOL = re.compile(
    r"\bpool\b|pooltimeout|too many (clients|connections)|remaining connection slots|"
    r"connection limit|no (free|available) connection",
    re.I,
)
_DEADLINE = re.compile(r"deadline|timed? ?out|timeout|canceled|cancelled", re.I)
_UPSTREAM = re.compile(r"upstream|bad gateway|service unavailable|gateway timeout", re.I)
_CONNECTION = re.compile(
    r"refused|econnrefused|reset by peer|econnreset|unreachable|no route to host|"
    r"name or service not known|getaddrinfo|nodename nor servname|broken pipe|"
    r"connection (closed|aborted|lost)|unexpected eof|\beof\b",
    re.I,
)
_PROCESS_DEATH = re.compile(
    r"^killed$|\bkilled\b.*\b(signal|process)\b|out of memory|oom[- ]?kill|"
    r"\bpanic:|fatal error:|segmentation fault|sigsegv|sigkill|core dumped|"
    r"process exited|exited with (code|status)|exit status \d|terminated by signal|"
    r"javascript heap out of memory|java\.lang\.outofmemoryerror",
    re.I,
)
_DEATH_WORDS = (
    "kill", "memory", "oom", "panic", "fatal", "segmentation", "sigsegv", "core dumped",
    "exit", "terminated",
)  # fmt: skip
_GENERIC = re.compile(
    r"^(internal( server)? error|server error|unknown error|error( status)?|http \d{3}|"
    r"failed|failure|exception|unhandled exception|call to .* failed|)\.?$",
    re.I,
)
_CHANGE_TYPES = frozenset(
    {
        "config",
        "configuration",
        "deploy",
        "deployment",
        "release",
        "rollout",
        "change",
        "migration",
        "feature_flag",
        "flag",
        "git",
        "commit",
    }
)
_CHANGE_WORDS = re.compile(
    r"config(uration)? (reload|change|update)|reloaded|deploy(ed|ment)?\b|rolled out|"
    r"rollout|release[d]?\b|migrat(ion|ed)|feature flag|\bset [\w.]+ \S+ -> ",
    re.I,
)
_RESOURCES = ("pool", "connection", "timeout", "limit", "thread", "worker", "memory", "replica")


def consequence_of(text: str) -> Consequence | None:
    """The consequence kind a failure message (with its exception type) names, if any.
    A pool timeout is a pool problem, not a deadline."""
    if _BREAKER.search(text):
        return Consequence.BREAKER
    if _POOL.search(text):
        return Consequence.POOL
    if _DEADLINE.search(text):
        return Consequence.DEADLINE
    if _UPSTREAM.search(text):
        return Consequence.UPSTREAM
    return None


def is_connection_failure(text: str) -> bool:
    """The peer could not be reached or dropped the connection: blame the peer."""
    return bool(_CONNECTION.search(text))


def is_process_death(message: str) -> bool:
    """A line saying a process died: killed, OOM, panic, a fatal signal, an exit."""
    lowered = message.lower()
    if not any(word in lowered for word in _DEATH_WORDS):  # most lines: no regex at all
        return False
    return bool(_PROCESS_DEATH.search(message.strip()))


def is_generic(message: str) -> bool:
    """A failure message that says only that something failed, not what."""
    return bool(_GENERIC.match(message.strip()))


def is_change(record: Record) -> bool:
    """A config reload, deploy, release, migration, flag flip or commit."""
    if record.source == "git":
        return True
    kind = record.attributes.get("type") if isinstance(record.attributes, dict) else None
    if isinstance(kind, str) and kind.lower() in _CHANGE_TYPES:
        return True
    return record.kind == "event" and bool(_CHANGE_WORDS.search(record.message))


def shares_resource(change: str, failure: str) -> bool:
    """Whether a change and a failure speak of the same kind of resource (a pool, its
    connections, a timeout, a limit), so the change may explain the failure."""
    change, failure = change.lower(), failure.lower()
    return any(word in change and word in failure for word in _RESOURCES)
