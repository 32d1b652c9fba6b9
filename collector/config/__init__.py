"""Config: OTel-Collector-shaped YAML into typed dataclasses, validated before anything binds.

The embedded defaults are complete, so no file is needed. A user file
(``--config FILE`` or ``~/.gasoline/config.yaml``) is merged over them key by key.
Every problem is collected with its dotted key path and raised as one ``ConfigError``.

Component configs (receivers, exporters) are plain dataclasses declared beside their
component; ``load_section`` turns a mapping into any of them, so adding a component
means adding its module and a line in the component table (``gasoline/components.py``).

``values`` holds the typed values and that loader, ``sections`` the daemon's own
sections, ``loading`` the defaults, merging and cross-section checks.
"""

from collector.config.loading import DEFAULT_CONFIG_PATH, load_config
from collector.config.sections import (
    ApiConfig,
    AuthConfig,
    CommandConfig,
    Config,
    CorsConfig,
    HistoryConfig,
    InteractConfig,
    PipelineConfig,
    QueueConfig,
    RedactionConfig,
    ServiceConfig,
    StoreConfig,
)
from collector.config.values import Duration, Endpoint, load_section

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "ApiConfig",
    "AuthConfig",
    "CommandConfig",
    "Config",
    "CorsConfig",
    "Duration",
    "Endpoint",
    "HistoryConfig",
    "InteractConfig",
    "PipelineConfig",
    "QueueConfig",
    "RedactionConfig",
    "ServiceConfig",
    "StoreConfig",
    "load_config",
    "load_section",
]
