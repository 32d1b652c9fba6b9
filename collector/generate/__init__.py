"""Artifacts written from one trace: a reproduction script, a failing test, a PR summary,
a timeline report.

An agent that found a bug in a trace needs to hand it on: a script that replays what the
user did, a test that fails until the bug is fixed, a description for the pull request.
Everything here is derived from the span tree and its records, never from raw
timestamps alone, so skewed clocks between services do not reorder requests. Secrets
that redaction replaced are never written as if they were real values: scripts read
them from environment variables and say so in the notes.
"""

from __future__ import annotations

from collector.bounded import Answer
from collector.generate.facts import (
    FORMATS,
    GENERATORS,
    REDACTED,
    Facts,
    Format,
    GenerateError,
    Generator,
    check_base_url,
)
from collector.generate.reports import pr_summary, timeline_report
from collector.generate.scripts import REPRODUCTIONS, TESTS
from collector.trace_tree import TraceTree

__all__ = [
    "FORMATS",
    "GENERATORS",
    "REDACTED",
    "Format",
    "GenerateAnswer",
    "GenerateError",
    "Generator",
    "generate",
]


class GenerateAnswer(Answer):
    """``generate``: one artifact, its file name and notes on what it could not rebuild."""

    type: str
    format: str
    filename: str
    content: str
    notes: list[str]


def generate(
    kind: str,
    tree: TraceTree,
    *,
    format: str | None = None,
    base_url: str | None = None,
) -> GenerateAnswer:
    """One artifact of ``kind`` (see ``GENERATORS``) for the trace, in ``format``.

    ``format`` defaults per kind (reproduction: ``playwright`` when the trace has browser
    actions, else ``curl``; test: ``pytest``; the reports: ``markdown``). ``base_url``
    (``scheme://host[:port]``) replaces the scheme, host and port of every request and
    page URL, to aim a reproduction or test at another deployment (a local server, a
    staging host). Returns ``{"type", "format", "filename", "content", "notes"}``.
    """
    if kind not in GENERATORS:
        raise GenerateError(f"unknown generator {kind!r}: use one of {', '.join(GENERATORS)}")
    allowed = FORMATS[Generator(kind)]
    if format is not None and format not in allowed:
        raise GenerateError(
            f"{kind} cannot be written as {format!r}: use format {', '.join(allowed)}"
            " (or leave it out for the default)"
        )
    if base_url is not None:
        check_base_url(base_url)
    facts = Facts.of(tree, base_url)
    if kind not in ("reproduction", "test"):
        facts.notes.clear()  # notes about building requests concern scripts only
    short = tree.trace_id.hex()[:8]
    if kind == "reproduction":
        chosen = format or ("playwright" if facts.actions else "curl")
        content = REPRODUCTIONS[chosen](facts)
        filename = {"curl": "sh", "python": "py", "playwright": "spec.js"}[chosen]
        filename = f"repro_{short}.{filename}"
    elif kind == "test":
        chosen = format or "pytest"
        content = TESTS[chosen](facts)
        filename = f"test_trace_{short}.py" if chosen == "pytest" else f"trace_{short}.spec.js"
    elif kind == "pr_summary":
        chosen = "markdown"
        content = pr_summary(facts)
        filename = f"pr_summary_{short}.md"
    else:
        chosen = "markdown"
        content = timeline_report(facts)
        filename = f"timeline_{short}.md"
    return {
        "type": kind,
        "format": chosen,
        "filename": filename,
        "content": content,
        "notes": facts.notes,
    }
