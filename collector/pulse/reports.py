"""Reports on disk and their feedback: one JSON file per report under ``reports_dir``,
written atomically (temp file, fsync, rename) so a crash never leaves half a report, and
read back at start so reports and feedback survive restarts. Also the Markdown form."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ReportBook", "markdown"]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VERDICTS = ("confirm", "reject")


class ReportBook:
    """The reports kept, newest last. Loop-only; file writes go through a thread."""

    def __init__(self, directory: Path, *, max_reports: int) -> None:
        self.directory = directory
        self.max_reports = max_reports
        self.reports: dict[str, dict[str, Any]] = {}
        self.unreadable = 0

    def load(self) -> None:
        """Read every report kept (blocking: call it in a thread, once, at start)."""
        if not self.directory.is_dir():
            return  # made by the first write
        found = []
        for path in self.directory.glob("*.json"):
            try:
                report = json.loads(path.read_text())
            except (OSError, ValueError):
                self.unreadable += 1
                continue
            if isinstance(report, dict) and isinstance(report.get("id"), str):
                found.append(report)
        for report in sorted(found, key=lambda r: r.get("created_ms", 0)):
            self.reports[report["id"]] = report

    def get(self, report_id: str) -> dict[str, Any] | None:
        return self.reports.get(report_id) if _ID.match(report_id) else None

    def newest(self, limit: int) -> list[dict[str, Any]]:
        return list(reversed(list(self.reports.values())[-limit:]))

    def put(self, report: dict[str, Any]) -> list[str]:
        """Keep ``report``; the ids of reports dropped to stay within ``max_reports``."""
        self.reports[report["id"]] = report
        dropped = []
        while len(self.reports) > self.max_reports:
            oldest = next(iter(self.reports))
            del self.reports[oldest]
            dropped.append(oldest)
        return dropped

    def write(self, report_id: str, text: str, dropped: list[str]) -> None:
        """Write a report's JSON ``text`` atomically (a temp file of its own, fsync,
        rename) and delete ``dropped`` (blocking: use a thread)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / f"{report_id}.json"
        temp = self.directory / f"{report_id}.{secrets.token_hex(4)}.tmp"
        try:
            with open(temp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, final)
        finally:
            temp.unlink(missing_ok=True)
        for old in dropped:
            (self.directory / f"{old}.json").unlink(missing_ok=True)

    def votes(self, signature: str) -> dict[str, dict[str, int]]:
        """Feedback given on every report of ``signature``: hypothesis key -> counts of
        ``confirmed`` and ``rejected``."""
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for report in self.reports.values():
            if report.get("signature") != signature:
                continue
            for item in report.get("feedback", []):
                verdict = "confirmed" if item.get("verdict") == "confirm" else "rejected"
                if item.get("verdict") in VERDICTS and isinstance(item.get("hypothesis"), str):
                    counts[item["hypothesis"]][verdict] += 1
        return {key: dict(c) for key, c in counts.items()}


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown, for e-mail and for people reading the JSON's ``markdown``."""
    incident = report.get("incident", {})
    lines = [
        f"# {incident.get('event_type', 'Incident')} in {incident.get('service') or '?'}"
        f" ({incident.get('error_code') or 'no code'})",
        "",
        f"- Report: `{report.get('id')}`, {report.get('created')}",
        f"- Correlation id: `{incident.get('correlation_id')}`; priority "
        f"{incident.get('priority')}; seen {incident.get('occurrences', 1)} time(s)",
        f"- Status: {report.get('status') or 'unknown'}",
        "",
        "## Hypotheses",
    ]
    for i, h in enumerate(report.get("hypotheses", []), 1):
        lines.append(f"{i}. **{h.get('cause')}** — confidence {h.get('confidence')}")
        lines += [f"   - {reason}" for reason in h.get("reasoning", [])]
    if not report.get("hypotheses"):
        lines.append("None: nothing linked to the incident shows a failure.")
    chain = report.get("chain") or []
    if chain:
        lines += ["", "## Chain (symptom → cause)"]
        lines += [
            f"- {c.get('service')} `{c.get('name')}` {c.get('status', '')} "
            f"{c.get('duration_ms', '')} ms (span {c.get('span_id')})"
            for c in chain
        ]
    changes = report.get("relevant_changes") or []
    if changes:
        lines += ["", "## Relevant changes"]
        lines += [
            f"- `{c.get('id')}` {c.get('message')} (touches {', '.join(c.get('services', []))})"
            for c in changes
        ]
    sysmap = report.get("system_map") or {}
    if sysmap.get("declared_unseen") or sysmap.get("seen_undeclared"):
        lines += ["", "## System map"]
        lines += [
            f"- declared but not seen in spans: {e['from']} → {e['to']}"
            for e in sysmap.get("declared_unseen", [])
        ]
        lines += [
            f"- seen in spans but not declared: {e['from']} → {e['to']}"
            for e in sysmap.get("seen_undeclared", [])
        ]
    checks = report.get("next_checks") or []
    if checks:
        lines += ["", "## Next checks"] + [f"- {c}" for c in checks]
    feedback = report.get("feedback_applied") or []
    if feedback:
        lines += ["", "## Feedback applied"] + [f"- {f}" for f in feedback]
    return "\n".join(lines) + "\n"
