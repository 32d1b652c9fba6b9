"""The daemon's own config sections: service (API, queue, store, pipelines), redaction,
interact. Component sections (receivers) are declared beside their components."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from collector.config.values import Duration, Endpoint, positive

__all__ = [
    "ApiConfig",
    "AuthConfig",
    "CommandConfig",
    "Config",
    "CorsConfig",
    "HistoryConfig",
    "InteractConfig",
    "PipelineConfig",
    "PulseConfig",
    "PulseEmailConfig",
    "PulseRuleConfig",
    "PulseServiceConfig",
    "PulseSlackConfig",
    "QueueConfig",
    "RedactionConfig",
    "ServiceConfig",
    "StoreConfig",
]


@dataclass(slots=True)
class CorsConfig:
    """Browser origins that may send data (a request with any other Origin that could change
    state is refused). ``*`` is a wildcard: ``http://localhost:*``. Extensions (the Gasoline
    extension's ID depends on where it was loaded from) may send telemetry, never act."""

    allowed_origins: list[str] = field(
        default_factory=lambda: ["http://localhost:*", "http://127.0.0.1:*", "chrome-extension://*"]
    )
    allowed_headers: list[str] = field(default_factory=list)
    max_age: int = 7200


@dataclass(slots=True)
class AuthConfig:
    """A bearer token every port then requires; needed when any port binds beyond loopback.
    The ``GASOLINE_TOKEN`` environment variable, when set, takes its place."""

    token: str | None = None

    def validate(self, path: str) -> list[str]:
        if self.token is not None and len(self.token) < 16:
            return [f"{path}.token: must be at least 16 characters"]
        return []


@dataclass(slots=True)
class ApiConfig:
    """The native API on :7890: event intake, queries, status. ``allowed_hosts``,
    ``header_timeout`` and ``auth`` apply to every port the daemon serves."""

    endpoint: Endpoint = Endpoint("127.0.0.1", 7890)
    max_batch_events: int = 10_000
    max_request_body_size: int = 32 * 1024 * 1024
    cors: CorsConfig = field(default_factory=CorsConfig)
    # Browser origins besides the daemon's own page whose scripts may read answers.
    read_origins: list[str] = field(default_factory=list)
    # Host names served besides loopback ones (DNS rebinding is refused by this check).
    allowed_hosts: list[str] = field(default_factory=list)
    header_timeout: Duration = Duration(10)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # The web page's live timeline: open streams at once, and events a second per stream
    # (more arriving than that are counted as dropped for that stream).
    max_live_streams: int = 8
    max_live_events_per_s: int = 2000

    def validate(self, path: str) -> list[str]:
        errors = positive(path, "max_batch_events", self.max_batch_events)
        errors += positive(path, "max_live_streams", self.max_live_streams)
        errors += positive(path, "max_live_events_per_s", self.max_live_events_per_s)
        errors += positive(path, "header_timeout", self.header_timeout)
        for i, host in enumerate(self.allowed_hosts):
            if not re.fullmatch(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]", host):
                errors.append(
                    f"{path}.allowed_hosts[{i}]: {host!r} is not a host name or address "
                    "(no scheme, port or wildcard; IPv6 in brackets)"
                )
        return errors + positive(path, "max_request_body_size", self.max_request_body_size)


@dataclass(slots=True)
class QueueConfig:
    """The bounded queue between receivers and the stores."""

    max_items: int = 1_000_000
    # Plain lines wait to be parsed, and hold their characters meanwhile: a bound in
    # bytes keeps a file read from its start (lines offered far faster than parsed) from
    # growing the daemon past its store's budget.
    max_line_bytes: int = 64 * 1024 * 1024
    when_full: Literal["drop_newest"] = "drop_newest"

    def validate(self, path: str) -> list[str]:
        return positive(path, "max_items", self.max_items) + positive(
            path, "max_line_bytes", self.max_line_bytes
        )


@dataclass(slots=True)
class HistoryConfig:
    """Records kept on disk across restarts: sealed into compressed blocks under ``dir``,
    the oldest block removed first once they pass ``max_bytes`` or ``max_age``; every
    batch is appended to a write-ahead file first, synced every ``sync_interval``."""

    enabled: bool = True
    dir: str = "~/.gasoline/data"
    # 24 h at 1,000 varied lines/s is ~2.8 GiB at ~35 bytes a record (retention_bench)
    max_bytes: int = 4 * 1024 * 1024 * 1024
    max_age: Duration = Duration(24 * 3600)
    block_records: int = 16_384
    sync_interval: Duration = Duration(1.0)
    # Spans' blocks may use this share of max_bytes; records use the rest (all of it
    # while spans use less). 24 h at 200 spans/s is ~1.1 GiB at ~65 bytes a span
    # (retention_bench --spans): at 0.3 a whole day of both fits the default max_bytes
    # (spans up to 1.2 GiB, records the ~2.9 GiB they leave).
    span_share: float = 0.3

    def validate(self, path: str) -> list[str]:
        errors: list[str] = []
        for name in ("max_bytes", "max_age", "block_records", "sync_interval"):
            errors += positive(path, name, getattr(self, name))
        if not self.dir.strip():
            errors.append(f"{path}.dir: must name a directory (default ~/.gasoline/data)")
        if not 0 < self.span_share < 1:
            errors.append(
                f"{path}.span_share: {self.span_share} must be between 0 and 1 (the share "
                "of max_bytes span blocks may use)"
            )
        if self.block_records > 65_535:
            errors.append(
                f"{path}.block_records: {self.block_records} is more than 65535 records "
                "in one block"
            )
        if self.sync_interval > 1.0:
            errors.append(
                f"{path}.sync_interval: {float(self.sync_interval)} s is more than 1 s; "
                "a crash would lose more than the last second"
            )
        return errors


@dataclass(slots=True)
class StoreConfig:
    """Memory bounds; the oldest data is evicted first, and everything older than ``ttl``.

    ``max_bytes`` bounds spans and records together (their estimated size as kept);
    ``max_value_chars`` cuts any one string of an event or log record, and
    ``max_record_bytes`` the whole of one, at ingest.
    """

    max_spans: int = 1_000_000
    max_traces: int = 200_000
    max_spans_per_trace: int = 20_000
    max_records: int = 500_000
    max_bytes: int = 512 * 1024 * 1024
    max_value_chars: int = 65_536
    max_record_bytes: int = 1024 * 1024
    ttl: Duration = Duration(24 * 3600)
    history: HistoryConfig = field(default_factory=HistoryConfig)

    def validate(self, path: str) -> list[str]:
        errors: list[str] = []
        for name in (
            "max_spans",
            "max_traces",
            "max_spans_per_trace",
            "max_records",
            "max_bytes",
            "max_value_chars",
            "max_record_bytes",
            "ttl",
        ):
            errors += positive(path, name, getattr(self, name))
        if self.max_record_bytes > self.max_bytes:
            errors.append(
                f"{path}.max_record_bytes: {self.max_record_bytes} is more than "
                f"{path}.max_bytes ({self.max_bytes}); one record must fit in the store"
            )
        return errors


@dataclass(slots=True)
class RedactionConfig:
    """Attribute keys matching any pattern (case-insensitive search) have their value
    replaced; secret-looking text (passwords, tokens, keys) everywhere too, and e-mail
    addresses if ``emails`` is on."""

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
    emails: bool = False

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
        return errors + positive(path, "timeout", self.timeout)


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
    """The whole config, typed once at load: ``receivers`` maps each enabled receiver's
    name to its type's config dataclass (from the component table); the one processor is
    ``redaction`` (None when no pipeline lists it)."""

    receivers: dict[str, Any]
    service: ServiceConfig
    redaction: RedactionConfig | None
    interact: InteractConfig = field(default_factory=InteractConfig)
    source: str = "embedded defaults"
    pulse: PulseConfig = field(default_factory=lambda: PulseConfig())

    def enabled_receivers(self) -> list[str]:
        """Receivers named by at least one pipeline, in first-mention order."""
        names: list[str] = []
        for pipeline in self.service.pipelines.values():
            names += [n for n in pipeline.receivers if n not in names]
        return names


@dataclass(slots=True)
class PulseRuleConfig:
    """A config trigger: a stored error log of ``service`` (with ``error_code`` in its
    attributes ``errorCode``/``error.code``, or in its message), or a failed SERVER span
    of ``service`` whose name or ``http.route`` is ``route``. It names the incident
    ``event_type``."""

    event_type: str
    kind: Literal["log", "trace"] = "log"
    service: str | None = None
    error_code: str | None = None
    route: str | None = None

    def validate(self, path: str) -> list[str]:
        errors = [] if self.event_type.strip() else [f"{path}.event_type: must not be empty"]
        if self.kind == "log" and self.route is not None:
            errors.append(f"{path}.route: only a rule of kind 'trace' matches a route")
        if self.kind == "trace" and self.error_code is not None:
            errors.append(f"{path}.error_code: only a rule of kind 'log' matches an error code")
        if self.service is None and self.route is None and self.error_code is None:
            errors.append(f"{path}: set at least one of service, error_code, route")
        return errors


@dataclass(slots=True)
class PulseServiceConfig:
    """One service of the system map: what it depends on, and its code."""

    depends_on: list[str] = field(default_factory=list)
    file: str | None = None
    functions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PulseSlackConfig:
    """A Slack incoming webhook (``https://hooks.slack.com/services/...``)."""

    webhook_url: str

    def validate(self, path: str) -> list[str]:
        if not self.webhook_url.startswith(("http://", "https://")):
            return [f"{path}.webhook_url: {self.webhook_url!r} is not an http(s) URL"]
        return []


@dataclass(slots=True)
class PulseEmailConfig:
    """SMTP delivery; ``starttls`` upgrades the connection, and ``username`` logs in with
    ``password`` (or the variable ``password_env`` names)."""

    host: str
    to: list[str]
    sender: str = "gasoline@localhost"
    port: int = 587
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    ca_file: str | None = None  # trust this CA for STARTTLS (an internal one), besides the system's
    timeout: Duration = Duration(10)

    def validate(self, path: str) -> list[str]:
        errors = [] if self.to else [f"{path}.to: list at least one address"]
        if not 0 < self.port < 65536:
            errors.append(f"{path}.port: {self.port} is not a port (1-65535)")
        return errors + positive(path, "timeout", self.timeout)


@dataclass(slots=True)
class PulseConfig:
    """TracePulse: incident reports triggered by events (``POST /webhook/event``, log
    records carrying ``eventType``/``correlationId``, ``rules``), guided by the system
    map (``services``, or the YAML file ``map_file`` names) and recent code changes,
    delivered to Slack and e-mail, kept under ``reports_dir``.

    ``window`` is how far around the trigger linked data is read; ``settle`` how long
    after the trigger the analysis waits for late spans; a trigger with a signature
    (event type, service, error code) already reported less than ``rate_limit`` ago is
    folded into that report (a duplicate when its correlation id is the same)."""

    enabled: bool = True
    services: dict[str, PulseServiceConfig] = field(default_factory=dict)
    map_file: str | None = None
    rules: list[PulseRuleConfig] = field(default_factory=list)
    window: Duration = Duration(300)
    settle: Duration = Duration(0.5)
    rate_limit: Duration = Duration(300)
    changes_lookback: Duration = Duration(7 * 24 * 3600)
    reports_dir: str = "~/.gasoline/data/reports"
    max_reports: int = 1000
    slack: PulseSlackConfig | None = None
    email: PulseEmailConfig | None = None
    retries: int = 5
    retry_backoff: Duration = Duration(0.5)

    def validate(self, path: str) -> list[str]:
        errors: list[str] = []
        for name in ("window", "rate_limit", "changes_lookback", "max_reports", "retry_backoff"):
            errors += positive(path, name, getattr(self, name))
        if self.retries < 0:
            errors.append(f"{path}.retries: {self.retries} must be 0 or more")
        for name, service in self.services.items():
            for i, dep in enumerate(service.depends_on):
                if dep not in self.services:
                    errors.append(
                        f"{path}.services.{name}.depends_on[{i}]: {dep!r} is not a service "
                        "of the map (declare it under pulse.services)"
                    )
        if self.map_file is not None and self.services:
            errors.append(f"{path}.map_file: give the map inline (services) or as a file, not both")
        return errors
