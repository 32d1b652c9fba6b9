"""What starts an incident: a stored record that carries the DebugQueue shape
(``eventType``, ``correlationId``, ``details``), whether it came through
``POST /webhook/event`` or as an OTel log record with those attributes, or a record or
failed span that a ``pulse.rules`` entry matches. One way in: the pipeline's watcher."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.config.sections import PulseRuleConfig
from collector.model import Record, SpanBatch, SpanKind, StatusCode

__all__ = ["PRIORITIES", "Trigger", "rule_matches_spans", "trigger_of"]

PRIORITIES = ("low", "normal", "high", "critical")
_LEVELS_THAT_TRIGGER = frozenset(("error", "critical"))


@dataclass(slots=True)
class Trigger:
    """One incident signal. ``signature`` groups repeats of the same failure."""

    event_type: str
    correlation_id: str | None
    service: str
    error_code: str
    time_ns: int
    via: str  # webhook, log, rule
    priority: str = "normal"
    details: dict[str, Any] = field(default_factory=dict)
    trace_id: bytes | None = None

    @property
    def signature(self) -> str:
        return f"{self.event_type}|{self.service}|{self.error_code}"


def trigger_of(record: Record, rules: list[PulseRuleConfig]) -> Trigger | None:
    """The trigger ``record`` carries, if any: its own DebugQueue attributes first, then
    the first log rule that matches it."""
    attrs = record.attributes
    event_type = attrs.get("eventType", attrs.get("event.type"))
    if isinstance(event_type, str) and event_type:
        details = _details(attrs)
        service = details.get("service") or record.service
        correlation = attrs.get("correlationId", attrs.get("correlation.id"))
        priority = attrs.get("priority")
        return Trigger(
            event_type=event_type,
            correlation_id=str(correlation) if correlation else record.correlation_id,
            service=str(service or ""),
            error_code=str(details.get("errorCode", "")),
            time_ns=record.time_ns,
            via="webhook" if "webhook" in record.tags else "log",
            priority=priority if priority in PRIORITIES else "normal",
            details=details,
            trace_id=record.trace_id,
        )
    if record.level not in _LEVELS_THAT_TRIGGER:
        return None
    for rule in rules:
        if rule.kind != "log" or (rule.service is not None and rule.service != record.service):
            continue
        code = _error_code(record)
        if rule.error_code is not None and not (
            rule.error_code == code or rule.error_code in record.message
        ):
            continue
        return Trigger(
            event_type=rule.event_type,
            correlation_id=record.correlation_id,
            service=record.service,
            error_code=rule.error_code or code or "",
            time_ns=record.time_ns,
            via="rule",
            details={"message": record.message[:500]},
            trace_id=record.trace_id,
        )
    return None


def rule_matches_spans(batch: SpanBatch, rules: list[PulseRuleConfig]) -> Iterator[Trigger]:
    """Triggers for failed SERVER spans of ``batch`` that a trace rule matches (one per
    trace and rule). Cheap when nothing failed: one scan of the status column."""
    trace_rules = [r for r in rules if r.kind == "trace"]
    if not trace_rules or StatusCode.ERROR not in batch.statuses:
        return
    seen: set[tuple[bytes, str]] = set()
    for i, status in enumerate(batch.statuses):
        if status != StatusCode.ERROR or batch.kinds[i] != SpanKind.SERVER:
            continue
        for rule in trace_rules:
            if rule.service is not None and rule.service != batch.services[i]:
                continue
            if rule.route is not None and not _on_route(batch, i, rule.route):
                continue
            key = (batch.trace_ids[i], rule.event_type)
            if key in seen:
                continue
            seen.add(key)
            yield Trigger(
                event_type=rule.event_type,
                correlation_id=None,
                service=batch.services[i],
                error_code=rule.route or batch.names[i],
                time_ns=batch.ends[i],
                via="rule",
                details={"span": batch.names[i]},
                trace_id=batch.trace_ids[i],
            )


def _on_route(batch: SpanBatch, i: int, route: str) -> bool:
    name = batch.names[i]
    if name == route or name.endswith(" " + route):
        return True
    attributes = batch.detail.span_detail(i).attributes
    return attributes.get("http.route") == route


def _details(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """``details`` as a map attribute, or flattened as ``details.<key>`` attributes."""
    nested = attrs.get("details")
    details: dict[str, Any] = dict(nested) if isinstance(nested, Mapping) else {}
    for key, value in attrs.items():
        if key.startswith("details."):
            details.setdefault(key[len("details.") :], value)
    return details


def _error_code(record: Record) -> str | None:
    for key in ("errorCode", "error.code", "error_code", "code"):
        value = record.attributes.get(key)
        if value is not None:
            return str(value)
    return None
