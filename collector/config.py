"""Config: OTel-Collector-shaped YAML into typed dataclasses, validated before anything binds.

The embedded defaults are complete, so no file is needed. A user file
(``--config FILE`` or ``~/.gasoline/config.yaml``) is merged over them key by key.
Every problem is collected with its dotted key path and raised as one ``ConfigError``.

Component configs (receivers, exporters) are plain dataclasses declared beside their
component; ``load_section`` turns a mapping into any of them, so adding a component
means adding its module and a registry entry in ``collector.component``.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from collector.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ApiConfig",
    "CommandConfig",
    "Config",
    "CorsConfig",
    "Duration",
    "Endpoint",
    "InteractConfig",
    "PipelineConfig",
    "QueueConfig",
    "RedactionConfig",
    "ServiceConfig",
    "StoreConfig",
    "load_config",
    "load_section",
]

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


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``host:port`` as written in config; port 0 asks the OS for a free port."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class Duration(float):
    """Seconds, written in config as ``90``, ``"500ms"``, ``"30s"``, ``"15m"`` or ``"24h"``."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@dataclass(slots=True)
class CorsConfig:
    """Origins may use ``*`` as a wildcard, e.g. ``http://localhost:*``."""

    allowed_origins: list[str] = field(
        default_factory=lambda: ["http://localhost:*", "http://127.0.0.1:*"]
    )
    allowed_headers: list[str] = field(default_factory=list)
    max_age: int = 7200


@dataclass(slots=True)
class ApiConfig:
    """The native API on :7890: event intake, queries, status."""

    endpoint: Endpoint = Endpoint("127.0.0.1", 7890)
    max_batch_events: int = 10_000
    max_request_body_size: int = 32 * 1024 * 1024
    cors: CorsConfig = field(default_factory=CorsConfig)

    def validate(self, path: str) -> list[str]:
        errors = _positive(path, "max_batch_events", self.max_batch_events)
        return errors + _positive(path, "max_request_body_size", self.max_request_body_size)


@dataclass(slots=True)
class QueueConfig:
    """The bounded queue between receivers and the stores."""

    max_items: int = 1_000_000
    when_full: Literal["drop_newest"] = "drop_newest"

    def validate(self, path: str) -> list[str]:
        return _positive(path, "max_items", self.max_items)


@dataclass(slots=True)
class StoreConfig:
    """Memory bounds; the oldest data is evicted first, and everything older than ``ttl``."""

    max_spans: int = 1_000_000
    max_traces: int = 200_000
    max_spans_per_trace: int = 20_000
    max_records: int = 500_000
    ttl: Duration = Duration(24 * 3600)

    def validate(self, path: str) -> list[str]:
        errors: list[str] = []
        for name in ("max_spans", "max_traces", "max_spans_per_trace", "max_records", "ttl"):
            errors += _positive(path, name, getattr(self, name))
        return errors


@dataclass(slots=True)
class RedactionConfig:
    """Attribute keys matching any pattern (case-insensitive search) have their value replaced."""

    key_patterns: list[str] = field(
        default_factory=lambda: [
            "authorization",
            "cookie",
            "password",
            "passwd",
            "secret",
            "token",
            "api[-_.]?key",
            "private[-_.]?key",
            "session[-_.]?id",
        ]
    )
    replacement: str = "[REDACTED]"

    def validate(self, path: str) -> list[str]:
        errors = []
        for i, pattern in enumerate(self.key_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                errors.append(f"{path}.key_patterns[{i}]: {pattern!r} is not a regex ({exc})")
        return errors


@dataclass(slots=True)
class CommandConfig:
    """A command an agent may run through ``interact``: a shell line, run as given."""

    run: str
    cwd: str | None = None
    timeout: Duration = Duration(300)

    def validate(self, path: str) -> list[str]:
        errors = [] if self.run.strip() else [f"{path}.run: must not be empty"]
        return errors + _positive(path, "timeout", self.timeout)


@dataclass(slots=True)
class InteractConfig:
    """What ``interact`` may do: nothing unless listed here."""

    commands: dict[str, CommandConfig] = field(default_factory=dict)
    services: dict[str, CommandConfig] = field(default_factory=dict)
    test_command: CommandConfig | None = None


@dataclass(slots=True)
class PipelineConfig:
    receivers: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ServiceConfig:
    api: ApiConfig = field(default_factory=ApiConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    pipelines: dict[str, PipelineConfig] = field(default_factory=dict)


@dataclass(slots=True)
class Config:
    """The whole config. Component sections stay raw here and are typed by their component."""

    receivers: dict[str, Any]
    processors: dict[str, Any]
    exporters: dict[str, Any]
    service: ServiceConfig
    redaction: RedactionConfig | None
    interact: InteractConfig = field(default_factory=InteractConfig)
    source: str = "embedded defaults"

    def enabled_receivers(self) -> list[str]:
        """Receivers named by at least one pipeline, in first-mention order."""
        names: list[str] = []
        for pipeline in self.service.pipelines.values():
            names += [n for n in pipeline.receivers if n not in names]
        return names


T = TypeVar("T")


def load_section(cls: type[T], data: Any, path: str, errors: list[str]) -> T | None:
    """Build dataclass ``cls`` from ``data``; append problems (with dotted paths) to ``errors``.

    Unknown keys are errors. Missing keys take the dataclass default. A dataclass may
    define ``validate(path) -> list[str]`` for checks across its own fields.
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        errors.append(f"{path}: expected a mapping, got {_describe(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    known = {f.name for f in fields}
    required = {
        f.name
        for f in fields
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    for key in data:
        if key not in known:
            allowed = ", ".join(sorted(known)) or "none"
            errors.append(f"{_join(path, str(key))}: unknown key (allowed: {allowed})")
    missing = sorted(required - set(data))
    for name in missing:
        errors.append(f"{_join(path, name)}: required")
    if missing:
        return None
    kwargs: dict[str, Any] = {}
    failed = False
    for name in known:
        if name in data:
            before = len(errors)
            value = _convert(hints[name], data[name], _join(path, name), errors)
            if len(errors) == before:
                kwargs[name] = value
            else:
                failed = True  # keep the default so the other fields are still checked
    if not required <= set(kwargs):
        return None  # a required field had the wrong type: reported above
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        errors.extend(validate(path))
    return None if failed else obj


def load_config(
    path: Path | None = None,
    *,
    ports: Mapping[str, int] | None = None,
) -> Config:
    """Load the embedded defaults, merge ``path`` (or ``~/.gasoline/config.yaml``) over them.

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
    return _build(data, source)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file ({exc.strerror})"]) from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML ({exc})"]) from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError([f"{path}: expected a mapping at the top level, got {_describe(loaded)}"])
    return loaded


def _override_port(data: dict[str, Any], key: str, port: int) -> None:
    if key == "api":
        section = data.setdefault("service", {}).setdefault("api", {}) or {}
    else:
        protocols = data.setdefault("receivers", {}).setdefault("otlp", {}) or {}
        section = (protocols.setdefault("protocols", {}) or {}).setdefault(key, {}) or {}
    endpoint = str(section.get("endpoint", "127.0.0.1:0"))
    host = endpoint.rsplit(":", 1)[0] if ":" in endpoint else endpoint
    section["endpoint"] = f"{host}:{port}"


_TOP_LEVEL = ("receivers", "processors", "exporters", "service", "interact", "backend")


def _build(data: dict[str, Any], source: str) -> Config:
    errors: list[str] = []
    for key in data:
        if key not in _TOP_LEVEL:
            errors.append(f"{key}: unknown key (allowed: {', '.join(_TOP_LEVEL)})")
    sections: dict[str, dict[str, Any]] = {}
    for key in ("receivers", "processors", "exporters"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            errors.append(f"{key}: expected a mapping, got {_describe(value)}")
            value = {}
        sections[key] = value
    if "backend" in data:
        _expand_backend_logs(data, sections["receivers"], errors)
    service = load_section(ServiceConfig, data.get("service"), "service", errors)
    interact = load_section(InteractConfig, data.get("interact"), "interact", errors)

    from collector.component import PROCESSORS, RECEIVERS, check_components, receiver_type

    redaction: RedactionConfig | None = None
    for name, value in sections["processors"].items():
        if name not in PROCESSORS:
            errors.append(f"processors.{name}: unknown processor (known: {', '.join(PROCESSORS)})")
        elif name == "redaction":
            redaction = load_section(RedactionConfig, value, f"processors.{name}", errors)
    for name in sections["exporters"]:
        errors.append(f"exporters.{name}: unknown exporter (none are available in this version)")
    for name in sections["receivers"]:
        if receiver_type(name) not in RECEIVERS:
            errors.append(f"receivers.{name}: unknown receiver (known: {', '.join(RECEIVERS)})")
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
    if errors or service is None or interact is None:
        raise ConfigError(errors)
    config = Config(
        receivers=sections["receivers"],
        processors=sections["processors"],
        exporters=sections["exporters"],
        service=service,
        redaction=redaction,
        interact=interact,
        source=source,
    )
    check_components(config, errors)
    if errors:
        raise ConfigError(errors)
    return config


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


def _convert(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path, errors)
    if origin is Literal:
        if value not in args:
            choices = " or ".join(repr(a) for a in args)
            errors.append(f"{path}: {value!r} must be {choices}")
        return value
    if origin is list:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {_describe(value)}")
            return []
        return [_convert(args[0], v, f"{path}[{i}]", errors) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            errors.append(f"{path}: expected a mapping, got {_describe(value)}")
            return {}
        return {str(k): _convert(args[1], v, _join(path, str(k)), errors) for k, v in value.items()}
    if tp is Endpoint:
        return _endpoint(value, path, errors)
    if tp is Duration:
        return _duration(value, path, errors)
    if dataclasses.is_dataclass(tp):
        return load_section(tp, value, path, errors)  # type: ignore[arg-type]
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{path}: expected true or false, got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {_describe(value)}")
            return value
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {_describe(value)}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"config field type {tp!r} at {path} is not supported")


def _endpoint(value: Any, path: str, errors: list[str]) -> Endpoint:
    text = str(value)
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        errors.append(f"{path}: {text!r} is not an endpoint (expected host:port)")
        return Endpoint("127.0.0.1", 0)
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        errors.append(f"{path}: {port_text!r} is not a port (expected 0-65535)")
        return Endpoint(host, 0)
    return Endpoint(host.strip("[]"), port)


def _duration(value: Any, path: str, errors: list[str]) -> Duration:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Duration(value)
    match = _DURATION.match(str(value))
    if match is None:
        errors.append(f"{path}: {value!r} is not a duration (expected e.g. 30s, 15m, 24h)")
        return Duration(0)
    return Duration(float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def _positive(path: str, name: str, value: float) -> list[str]:
    return [] if value > 0 else [f"{path}.{name}: {value!r} must be greater than 0"]


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r}"
