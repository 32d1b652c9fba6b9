"""The system map: the services a team declares (``depends_on``, ``file``, ``functions``)
merged with the calls observed in spans (a parent span of one service with a child of
another), flagging declared edges never seen and seen edges never declared."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from collector.config.sections import PulseServiceConfig
from collector.config.values import load_section
from collector.errors import ConfigError

__all__ = ["SystemMap", "load_map_file"]


@dataclass(slots=True)
class SystemMap:
    """Declared services, and observed (caller, callee) edges."""

    declared: dict[str, PulseServiceConfig]
    observed: set[tuple[str, str]] = field(default_factory=set)

    def depends_on(self, service: str) -> list[str]:
        """Direct dependencies: declared ones, then observed callees not declared."""
        declared = self.declared.get(service)
        deps = list(declared.depends_on) if declared is not None else []
        deps += sorted(b for a, b in self.observed if a == service and b not in deps)
        return deps

    def walk(self, service: str) -> list[tuple[str, int]]:
        """Every service reachable from ``service`` through ``depends_on`` (breadth
        first), with its distance; ``service`` itself first, at 0."""
        seen = {service: 0}
        queue = deque([service])
        while queue:
            current = queue.popleft()
            for dep in self.depends_on(current):
                if dep not in seen:
                    seen[dep] = seen[current] + 1
                    queue.append(dep)
        return list(seen.items())

    def document(self) -> dict[str, Any]:
        """The merged map, as reports and the web page show it."""
        declared_edges = {(a, b) for a, s in self.declared.items() for b in s.depends_on}
        names = sorted(set(self.declared) | {n for e in self.observed for n in e})
        return {
            "services": [
                {
                    "name": name,
                    "declared": name in self.declared,
                    "depends_on": self.depends_on(name),
                    "file": self.declared[name].file if name in self.declared else None,
                    "functions": list(self.declared[name].functions)
                    if name in self.declared
                    else [],
                }
                for name in names
            ],
            "edges": [
                {
                    "from": a,
                    "to": b,
                    "declared": (a, b) in declared_edges,
                    "observed": (a, b) in self.observed,
                }
                for a, b in sorted(declared_edges | self.observed)
            ],
            "declared_unseen": [
                {"from": a, "to": b} for a, b in sorted(declared_edges - self.observed)
            ],
            "seen_undeclared": [
                {"from": a, "to": b} for a, b in sorted(self.observed - declared_edges)
            ],
        }


def load_map_file(path: str) -> dict[str, PulseServiceConfig]:
    """The brief's map file: ``services: {Name: {depends_on, file, functions}}``.
    ``ConfigError`` names the key (``pulse.map_file``) and what is wrong."""
    where = "pulse.map_file"
    try:
        data = yaml.safe_load(Path(path).expanduser().read_text())
    except OSError as exc:
        raise ConfigError([f"{where}: cannot read {path} ({exc.strerror})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{where}: {path} is not valid YAML ({exc})"]) from exc
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise ConfigError([f"{where}: {path} must hold a mapping 'services: {{Name: ...}}'"])
    errors: list[str] = []
    services: dict[str, PulseServiceConfig] = {}
    for name, raw in data["services"].items():
        section = load_section(PulseServiceConfig, raw, f"{where}({path}).services.{name}", errors)
        if section is not None:
            services[str(name)] = section
    for name, service in services.items():
        for dep in service.depends_on:
            if dep not in services:
                errors.append(
                    f"{where}({path}).services.{name}.depends_on: {dep!r} is not declared"
                )
    if errors:
        raise ConfigError(errors)
    return services
