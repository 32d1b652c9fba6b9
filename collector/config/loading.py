"""Loading: the embedded defaults, the user's file merged over them key by key, flag
overrides, the seeds' ``backend: logs`` short form, and the checks across sections."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from collector.component import Components, receiver_type
from collector.config.sections import (
    Config,
    InteractConfig,
    PulseConfig,
    RedactionConfig,
    ServiceConfig,
)
from collector.config.values import Endpoint, describe, load_section
from collector.errors import ConfigError

__all__ = ["DEFAULT_CONFIG_PATH", "load_config"]

DEFAULT_CONFIG_PATH = Path("~/.gasoline/config.yaml")

_DEFAULTS_YAML = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:4317
      http:
        endpoint: 127.0.0.1:4318
processors:
  redaction: {}
exporters: {}
service:
  api:
    endpoint: 127.0.0.1:7890
  pipelines:
    traces:
      receivers: [otlp]
      processors: [redaction]
    logs:
      receivers: [otlp]
      processors: [redaction]
    metrics:
      receivers: [otlp]
"""


def load_config(
    path: Path | None = None,
    *,
    components: Components,
    ports: Mapping[str, int] | None = None,
) -> Config:
    """Load the embedded defaults, merge ``path`` (or ``~/.gasoline/config.yaml``) over them.

    Each enabled receiver's section is typed here, once, by its entry in ``components``.
    ``ports`` overrides endpoint ports from flags: keys ``grpc``, ``http``, ``api``.
    Raises ``ConfigError`` listing every problem; nothing has bound yet when it does.
    """
    data: dict[str, Any] = yaml.safe_load(_DEFAULTS_YAML)
    source = "embedded defaults"
    if path is None and DEFAULT_CONFIG_PATH.expanduser().is_file():
        path = DEFAULT_CONFIG_PATH.expanduser()
    if path is not None:
        user = _read_yaml(path)
        data = _merge(data, user)
        source = str(path)
    for key, port in (ports or {}).items():
        _override_port(data, key, port)
    return _build(data, source, components)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read config file ({exc.strerror})"], source=str(path)) from exc
    try:
        loaded = yaml.safe_load(_named(text, path))
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML ({exc})"], source=str(path)) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            [f"expected a mapping at the top level, got {describe(loaded)}"], source=str(path)
        )
    return loaded


def _named(text: str, path: Path) -> io.StringIO:
    """The text as a stream PyYAML names by its file in error marks (a plain string is
    ``<unicode string>`` there)."""
    stream = io.StringIO(text)
    stream.name = str(path)
    return stream


def _override_port(data: dict[str, Any], key: str, port: int) -> None:
    if key == "api":
        section = data.setdefault("service", {}).setdefault("api", {}) or {}
    else:
        protocols = data.setdefault("receivers", {}).setdefault("otlp", {}) or {}
        section = (protocols.setdefault("protocols", {}) or {}).setdefault(key, {}) or {}
    endpoint = str(section.get("endpoint", "127.0.0.1:0"))
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    section["endpoint"] = f"{host}:{port}"


def _redaction_listed(service: ServiceConfig, errors: list[str]) -> bool:
    """Whether the traces and logs pipelines run ``redaction``: both or neither, since it
    runs at ingest for every signal alike (metrics are only counted, never stored)."""
    signals = [name for name in ("traces", "logs") if name in service.pipelines]
    listed = [name for name in signals if "redaction" in service.pipelines[name].processors]
    for name in signals:
        if listed and name not in listed:
            errors.append(
                f"service.pipelines.{name}.processors: redaction is listed for "
                f"{' and '.join(listed)} but not here; it applies to traces and logs alike, "
                "so list it in both pipelines (or in neither to turn it off)"
            )
    return bool(listed)


_TOP_LEVEL = ("receivers", "processors", "exporters", "service", "interact", "backend", "pulse")


def _build(data: dict[str, Any], source: str, components: Components) -> Config:
    errors: list[str] = []
    for key in data:
        if key not in _TOP_LEVEL:
            errors.append(f"{key}: unknown key (allowed: {', '.join(_TOP_LEVEL)})")
    sections: dict[str, dict[str, Any]] = {}
    for key in ("receivers", "processors", "exporters"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            errors.append(f"{key}: expected a mapping, got {describe(value)}")
            value = {}
        sections[key] = value
    if "backend" in data:
        _expand_backend_logs(data, sections["receivers"], errors)
    service = load_section(ServiceConfig, data.get("service"), "service", errors)
    interact = load_section(InteractConfig, data.get("interact"), "interact", errors)
    pulse = load_section(PulseConfig, data.get("pulse"), "pulse", errors)

    redaction: RedactionConfig | None = None
    for name, value in sections["processors"].items():
        if name not in components.processors:
            known = ", ".join(components.processors)
            errors.append(f"processors.{name}: unknown processor (known: {known})")
        elif name == "redaction":
            redaction = load_section(RedactionConfig, value, f"processors.{name}", errors)
    for name in sections["exporters"]:
        errors.append(f"exporters.{name}: unknown exporter (none are available in this version)")
    for name in sections["receivers"]:
        if receiver_type(name) not in components.receivers:
            known = ", ".join(components.receivers)
            errors.append(f"receivers.{name}: unknown receiver (known: {known})")
    if service is not None:
        for pname, pipeline in service.pipelines.items():
            if pname not in ("traces", "logs", "metrics"):
                errors.append(
                    f"service.pipelines.{pname}: unknown signal (expected traces, logs or metrics)"
                )
            for kind, names in (
                ("receivers", pipeline.receivers),
                ("processors", pipeline.processors),
                ("exporters", pipeline.exporters),
            ):
                for i, name in enumerate(names):
                    if name not in sections[kind]:
                        errors.append(
                            f"service.pipelines.{pname}.{kind}[{i}]: {name!r} is not defined "
                            f"under {kind}"
                        )
        if not _redaction_listed(service, errors):
            redaction = None
    if errors or service is None or interact is None or pulse is None:
        raise ConfigError(errors, source=source)
    config = Config(
        receivers={},
        service=service,
        redaction=redaction,
        interact=interact,
        source=source,
        pulse=pulse,
    )
    _type_receivers(config, sections["receivers"], components, errors)
    if errors:
        raise ConfigError(errors, source=source)
    return config


def _type_receivers(
    config: Config, raw: dict[str, Any], components: Components, errors: list[str]
) -> None:
    """Type every enabled receiver's ``raw`` section into ``config.receivers`` and refuse
    two components on one port."""
    claimed: dict[tuple[str, int], str] = {}

    def claim(label: str, endpoint: Endpoint) -> None:
        if endpoint.port == 0:
            return
        key = (endpoint.host, endpoint.port)
        if key in claimed:
            errors.append(f"{label}: port {endpoint.port} is already used by {claimed[key]}")
        else:
            claimed[key] = label

    claim("service.api.endpoint", config.service.api.endpoint)
    for name in config.enabled_receivers():
        factory = components.receivers[receiver_type(name)]
        before = len(errors)
        path = f"receivers.{name}"
        section = load_section(factory.config_class, raw.get(name), path, errors)
        if section is None or len(errors) > before:
            continue
        config.receivers[name] = section
        for label, endpoint in factory.endpoints(section, name):
            claim(label, endpoint)


_SHORT_FORM_KEYS = {
    "file": ("type", "path", "tags", "service", "poll_interval_ms", "pattern", "start_at"),
    "ssh": (
        "type",
        "host",
        "port",
        "user",
        "path",
        "auth",
        "tags",
        "service",
        "poll_interval_ms",
        "pattern",
        "start_at",
    ),
}


def _expand_backend_logs(
    data: dict[str, Any], receivers: dict[str, Any], errors: list[str]
) -> None:
    """The seeds' short form ``backend: logs: [{type: file|ssh, ...}]``, as receivers
    ``filelog/backend-N`` and ``sshlog/backend-N`` on the logs pipeline."""
    backend = data["backend"]
    if not isinstance(backend, dict) or set(backend) - {"logs"}:
        errors.append("backend: expected a mapping with only 'logs'")
        return
    entries = backend.get("logs") or []
    if not isinstance(entries, list):
        errors.append("backend.logs: expected a list of log sources")
        return
    pipelines = data.setdefault("service", {}).setdefault("pipelines", {})
    logs = pipelines.setdefault("logs", {})
    names = logs.setdefault("receivers", [])
    for i, entry in enumerate(entries):
        path = f"backend.logs[{i}]"
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in _SHORT_FORM_KEYS:
            errors.append(f"{path}.type: {kind!r} must be 'file' or 'ssh'")
            continue
        unknown = sorted(set(entry) - set(_SHORT_FORM_KEYS[kind]))
        if unknown:
            allowed = ", ".join(_SHORT_FORM_KEYS[kind])
            errors.append(f"{path}.{unknown[0]}: unknown key (allowed: {allowed})")
            continue
        section: dict[str, Any] = {
            k: entry[k]
            for k in ("tags", "service", "start_at", "host", "port", "user")
            if k in entry
        }
        if "pattern" in entry:
            section["patterns"] = [entry["pattern"]]
        if "poll_interval_ms" in entry:
            section["poll_interval"] = f"{entry['poll_interval_ms']}ms"
        if kind == "file":
            section["include"] = [entry.get("path")] if entry.get("path") else []
            name = f"filelog/backend-{i}"
        else:
            section["path"] = entry.get("path")
            auth = entry.get("auth")
            if isinstance(auth, dict) and "key_file" in auth:
                section["key_file"] = auth["key_file"]
            elif isinstance(auth, str) and auth != "agent":
                section["key_file"] = auth
            name = f"sshlog/backend-{i}"
        receivers[name] = section
        names.append(name)


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
