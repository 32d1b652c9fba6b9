"""The ``otlp`` receiver, shaped like the OTel Collector's: gRPC and HTTP protocols."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collector.component import Sink
from collector.config import Endpoint
from collector.edge import EdgePolicy
from receivers.otlp_grpc import OtlpGrpcConfig, OtlpGrpcReceiver
from receivers.otlp_http import OtlpHttpConfig, OtlpHttpReceiver

__all__ = ["OtlpConfig", "OtlpProtocols", "OtlpReceiver", "otlp_endpoints"]


@dataclass(slots=True)
class OtlpProtocols:
    """Set a protocol to null to turn it off."""

    grpc: OtlpGrpcConfig | None = field(default_factory=OtlpGrpcConfig)
    http: OtlpHttpConfig | None = field(default_factory=OtlpHttpConfig)


@dataclass(slots=True)
class OtlpConfig:
    protocols: OtlpProtocols = field(default_factory=OtlpProtocols)


def otlp_endpoints(config: OtlpConfig, name: str) -> list[tuple[str, Endpoint]]:
    """(label, endpoint) of each enabled protocol, for the port-clash check at load."""
    base = f"receivers.{name}.protocols"
    protocols = (("grpc", config.protocols.grpc), ("http", config.protocols.http))
    return [(f"{base}.{key}.endpoint", p.endpoint) for key, p in protocols if p is not None]


class OtlpReceiver:
    """Starts the configured protocols; if one cannot start, none stays running."""

    def __init__(
        self, config: OtlpConfig, *, name: str = "otlp", edge: EdgePolicy | None = None
    ) -> None:
        self.name = name
        base = f"receivers.{name}.protocols"
        self.parts: list[OtlpGrpcReceiver | OtlpHttpReceiver] = []
        if config.protocols.grpc is not None:
            self.parts.append(
                OtlpGrpcReceiver(
                    config.protocols.grpc, name=f"{name}/grpc", path=f"{base}.grpc", edge=edge
                )
            )
        if config.protocols.http is not None:
            self.parts.append(
                OtlpHttpReceiver(
                    config.protocols.http, name=f"{name}/http", path=f"{base}.http", edge=edge
                )
            )

    def endpoints(self) -> list[tuple[str, Endpoint]]:
        return [pair for part in self.parts for pair in part.endpoints()]

    def bound(self) -> dict[str, int]:
        return {k: v for part in self.parts for k, v in part.bound().items()}

    def stats(self) -> dict[str, dict[str, Any]]:
        return {
            part.name: {
                "status": "running" if part.bound() else "stopped",
                "ports": part.bound(),
                "counts": dict(part.counts),
            }
            for part in self.parts
        }

    async def start(self, sink: Sink) -> None:
        try:
            for part in self.parts:
                await part.start(sink.lane(part.name))  # gRPC and HTTP share fairly
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        for part in self.parts:
            await part.stop()
