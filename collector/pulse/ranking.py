"""Hypotheses for one incident, ranked by explainable rules (no language model).

Each suspect is a service: the failing one and every service its ``depends_on`` reaches
(declared or observed). Its score adds up evidence, each piece with the reason it adds:

- errors of its own in the window (more for a dependency than for the failing service,
  which reports the symptom; a little more the deeper it sits),
- the causality engine blaming it (its ``root_cause`` or ranked ``hypotheses``),
- being slow in the linked traces (most of a trace's time is its own), more so when the
  incident is a timeout,
- a recent change (git or change/deploy/config events) touching its mapped file or
  functions,
- people's feedback on earlier reports of the same signature (confirmed up, rejected
  down).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.pulse.sysmap import SystemMap
from collector.pulse.trigger import Trigger

__all__ = ["Change", "Evidence", "ServiceFacts", "rank"]

_ERRORS_DEPENDENCY = 0.25
_ERRORS_SYMPTOM = 0.15
_DEPTH_STEP = 0.05
_BLAMED = 0.25
_BLAMED_SYMPTOM = 0.1  # the engine naming the service that reported it says little
_SLOW = 0.4
_SLOW_TIMEOUT = 0.2
_CHANGED = 0.35
_FUNCTION_NAMED = 0.05
_SYMPTOM_SERVICE = 0.05
_CONFIRMED = 0.25
_REJECTED = 0.4
_SLOW_SHARE = 0.5
_TIMEOUT_WORDS = re.compile(r"time[ _-]?out|deadline|slow|latency", re.IGNORECASE)


@dataclass(slots=True)
class ServiceFacts:
    """What the linked data says about one service."""

    errors: int = 0
    first_error: str | None = None
    error_refs: list[str] = field(default_factory=list)  # span:<id> or record:<id>
    ref_traces: dict[str, str] = field(default_factory=dict)  # ref -> its trace id, if any
    self_share: float = 0.0  # of the slowest linked trace's duration
    blamed: float = 0.0  # the causality engine's confidence that it is the cause
    blamed_by: str | None = None


@dataclass(slots=True)
class Change:
    """A code or config change the store holds."""

    id: str
    time_ms: int
    message: str
    text: str  # everything searchable: message, files, diff


@dataclass(slots=True)
class Evidence:
    service: str
    score: float = 0.0
    evidence: list[dict[str, Any]] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def add(self, points: float, reason: str, item: dict[str, Any] | None = None) -> None:
        self.score += points
        self.reasoning.append(f"{'+' if points >= 0 else '-'}{abs(points):.2f} {reason}")
        if item is not None:
            self.evidence.append(item)


def rank(
    trigger: Trigger,
    system: SystemMap,
    facts: Mapping[str, ServiceFacts],
    changes: list[Change],
    feedback: Mapping[str, Mapping[str, int]],
) -> list[dict[str, Any]]:
    """The hypotheses, best first: ``{key, cause, service, confidence, evidence,
    reasoning}``; ``feedback`` maps a hypothesis key to counts of ``confirmed`` and
    ``rejected`` for this signature."""
    distance = dict(system.walk(trigger.service))
    # Callers of the failing service only pass its failure on: they are no suspects.
    upstream = {s for s in facts if s not in distance and trigger.service in dict(system.walk(s))}
    suspects = list(distance) + sorted(s for s in facts if s not in distance and s not in upstream)
    timeout = bool(_TIMEOUT_WORDS.search(f"{trigger.error_code} {trigger.event_type}"))
    ranked: list[tuple[float, int, dict[str, Any]]] = []
    for order, service in enumerate(suspects):
        found = Evidence(service)
        d = distance.get(service)
        fact = facts.get(service, ServiceFacts())
        if fact.errors:
            if d == 0:
                found.add(_ERRORS_SYMPTOM, f"{fact.errors} error(s) of its own in the window")
            else:
                depth = _DEPTH_STEP * min(d or 0, 4)
                found.add(
                    _ERRORS_DEPENDENCY + depth,
                    f"{fact.errors} error(s) in a dependency"
                    + (f" {d} step(s) down the map" if d else " seen in the linked traces"),
                )
            found.evidence.append(
                {
                    "type": "errors",
                    "count": fact.errors,
                    "first": fact.first_error,
                    "refs": fact.error_refs[:5],
                    "ref_traces": {
                        ref: fact.ref_traces[ref]
                        for ref in fact.error_refs[:5]
                        if ref in fact.ref_traces
                    },
                }
            )
        if fact.blamed > 0:
            found.add(
                (_BLAMED if d != 0 else _BLAMED_SYMPTOM) * fact.blamed,
                f"the causality engine names it ({fact.blamed_by})",
                {"type": "causality", "cause": fact.blamed_by, "confidence": fact.blamed},
            )
        if fact.self_share >= _SLOW_SHARE and d != 0:
            found.add(
                _SLOW,
                f"{fact.self_share:.0%} of the linked trace's time is spent in it",
                {"type": "latency", "self_share": round(fact.self_share, 3)},
            )
            if timeout:
                found.add(_SLOW_TIMEOUT, "the incident is a timeout and it is slow")
        _changes(found, system, service, changes)
        if d == 0:
            found.add(_SYMPTOM_SERVICE, "it is where the incident was reported")
        votes = feedback.get(f"service:{service}", {})
        if votes.get("confirmed"):
            found.add(
                _CONFIRMED * votes["confirmed"],
                f"people confirmed it {votes['confirmed']} time(s) for this signature",
            )
        if votes.get("rejected"):
            found.add(
                -_REJECTED * votes["rejected"],
                f"people rejected it {votes['rejected']} time(s) for this signature",
            )
        if not found.evidence and d != 0:
            continue  # a quiet dependency is not a hypothesis
        ranked.append((found.score, -order, _hypothesis(found, votes)))
    ranked.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [h for _, _, h in ranked]


def _changes(found: Evidence, system: SystemMap, service: str, changes: list[Change]) -> None:
    declared = system.declared.get(service)
    if declared is None:
        return
    for change in changes:
        touched = declared.file is not None and declared.file in change.text
        named = [f for f in declared.functions if re.search(rf"\b{re.escape(f)}\b", change.text)]
        if not touched and not named:
            continue
        what = declared.file if touched else ", ".join(named)
        found.add(
            _CHANGED + (_FUNCTION_NAMED if named else 0.0),
            f"recent change {change.id} touches {what}",
            {
                "type": "change",
                "id": change.id,
                "message": change.message,
                "timestamp": change.time_ms,
                "touches": what,
            },
        )
        found.changes.append(change)
        return  # the newest touching change is the evidence; older ones add nothing


def _hypothesis(found: Evidence, votes: Mapping[str, int]) -> dict[str, Any]:
    kinds = [e["type"] for e in found.evidence]
    if "change" in kinds:
        change = next(e for e in found.evidence if e["type"] == "change")
        cause = f"{found.service}: recent change {change['id']} to {change['touches']}"
    elif "latency" in kinds:
        cause = f"{found.service} is slow"
    elif "errors" in kinds or "causality" in kinds:
        first = next((e.get("first") for e in found.evidence if e.get("first")), None)
        cause = f"{found.service} fails" + (f": {first}" if first else "")
    else:
        cause = f"{found.service} (where the incident was reported; no other evidence)"
    hypothesis: dict[str, Any] = {
        "key": f"service:{found.service}",
        "cause": cause,
        "service": found.service,
        "confidence": round(min(0.99, max(0.01, found.score)), 3),
        "evidence": found.evidence,
        "reasoning": found.reasoning,
    }
    if votes:
        hypothesis["feedback"] = dict(votes)
    return hypothesis
