"""The daemon: pipeline, stores, receivers and the API server, started and stopped together."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from typing import Any

from collector import VERSION
from collector.analysis.skew import skew_report
from collector.component import Components, Receiver, Service, receiver_type
from collector.config import Config
from collector.edge import EdgePolicy
from collector.gc_policy import GcPolicy
from collector.interact import Interactor
from collector.pipeline import Pipeline
from collector.pulse import Pulse
from collector.query import recent_trees
from collector.redact import Redactor
from collector.store import Store
from collector.tools import Toolbox

__all__ = ["VERSION", "Daemon"]

_SWEEP_INTERVAL_S = 5.0
_SKEW_TRACES = 200  # clock skew is estimated over the newest traces


class Daemon:
    """Everything ``gasoline serve`` runs. ``start()`` returns once every port is bound."""

    def __init__(self, config: Config, components: Components) -> None:
        """``config`` comes from ``load_config`` with the same ``components``."""
        self.config = config
        self.store = Store(config.service.store)
        self._span_detail = components.span_detail
        redactor = Redactor(config.redaction) if config.redaction is not None else None
        self.pipeline = Pipeline(self.store, queue=config.service.queue, redactor=redactor)
        self.edge = EdgePolicy.for_daemon(config.service.api)
        self.receivers: list[Receiver] = [
            components.receivers[receiver_type(name)].build(config.receivers[name], name, self.edge)
            for name in config.enabled_receivers()
        ]
        self.edge.admit_binds(
            [config.service.api.endpoint.host]
            + [e.host for r in self.receivers for _, e in r.endpoints()]
        )
        interactor = Interactor(
            config.interact, self.pipeline, config_source=config.source, api_url=self._api_url
        )
        self.tools = Toolbox(self.store, self.pipeline, interactor=interactor)
        self.pulse = Pulse(
            config.pulse, self.store, self.tools.run, components.notifiers(config.pulse)
        )
        api = components.api_server(
            config.service.api,
            store=self.store,
            status=self.status,
            tools=self.tools.run,
            edge=self.edge,
            declared=self.pulse.declared,
        )
        self.api = api.server
        self.receivers.append(api.intake)
        self.tools.pulse = self.pulse
        self.pipeline.watch(self.pulse.watch)
        self.services: list[Service] = [self.api, *api.services, GcPolicy(), self.pulse]
        self._started_at = time.time()
        self._sweeper: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None

    def _api_url(self) -> str | None:
        """The API's URL once bound (``interact run_tests`` hands it to ``gasoline test``)."""
        port = self.api.port
        host = self.config.service.api.endpoint.host
        if port is None:
            return None
        host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
        return f"http://{host}:{port}"

    @property
    def ports(self) -> dict[str, int]:
        """Bound ports by name (grpc, http, api)."""
        ports = {k: v for r in self.receivers for k, v in r.bound().items()}
        if self.api.port is not None:
            ports["api"] = self.api.port
        return ports

    async def start(self) -> None:
        """Bind everything or nothing: on failure, what started is stopped again."""
        history = self.store.open_history(self._span_detail)
        if history is not None:
            self.pipeline.resume_ids(history.next_id)
            self._syncer = asyncio.create_task(
                self._sync(float(history.config.sync_interval)), name="gasoline-history-sync"
            )
        await self.pipeline.start()
        try:
            for receiver in self.receivers:
                await receiver.start(self.pipeline.lane(receiver.name))
            for service in self.services:
                await service.start()
        except BaseException:
            await self.stop()
            raise
        self._started_at = time.time()
        self._sweeper = asyncio.create_task(self._sweep(), name="gasoline-ttl-sweeper")

    async def stop(self) -> None:
        """Stop intake first, then store what is queued. Idempotent."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for service in reversed(self.services):
            await service.stop()
        for receiver in self.receivers:
            await receiver.stop()
        await self.pipeline.stop()
        if self._syncer is not None:
            self._syncer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._syncer
            self._syncer = None
        self.store.close()

    async def _sweep(self) -> None:
        """Expire data past its TTL even when nothing new arrives."""
        while True:
            await asyncio.sleep(_SWEEP_INTERVAL_S)
            self.store.evict_expired(time.time_ns())

    async def _sync(self, interval_s: float) -> None:
        """Sync the history to disk every ``interval_s``, so a crash loses at most that."""
        while True:
            await asyncio.sleep(interval_s)
            self.store.flush()

    def status(self) -> dict[str, Any]:
        spans = self.store.spans
        records = self.store.records
        limits = self.config.service.store
        return {
            "status": "ok",
            "version": VERSION,
            "pid": os.getpid(),
            "uptime_s": round(time.time() - self._started_at, 1),
            "config": self.config.source,
            "ports": self.ports,
            "receivers": {name: part for r in self.receivers for name, part in r.stats().items()},
            "services": {service.name: service.stats() for service in self.services},
            "pipeline": self.pipeline.stats(),
            "accounting": self.pipeline.accounting(),
            "edge": self.edge.stats(),
            "store": {
                "spans": spans.span_count,
                "traces": spans.trace_count,
                "records": records.memory_count,
                "limits": {
                    "max_spans": limits.max_spans,
                    "max_traces": limits.max_traces,
                    "max_spans_per_trace": limits.max_spans_per_trace,
                    "max_records": limits.max_records,
                    "max_value_chars": limits.max_value_chars,
                    "max_record_bytes": limits.max_record_bytes,
                    "ttl_s": float(limits.ttl),
                },
                "bytes": {
                    "used": self.store.budget.used,
                    "budget": self.store.budget.limit,
                    "spans": spans.nbytes,
                    "records": records.nbytes,
                },
                "truncated_values": records.truncated_values,
                "evicted": {
                    "spans": {k.value: v for k, v in spans.evicted_spans.items()},
                    "traces": {k.value: v for k, v in spans.evicted_traces.items()},
                    "records": {k.value: v for k, v in records.evicted.items()},
                },
                "dropped": {"spans": {k.value: v for k, v in spans.dropped.items()}},
                "history": self.store.history_stats(),
            },
            "clock_skew": skew_report(
                recent_trees(self.store, limit=_SKEW_TRACES, with_records=False)
            ),
            "memory": {"rss_bytes": rss_bytes()},
        }


def rss_bytes() -> int:
    """Current resident set size (Linux), else the peak as the OS reports it."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
