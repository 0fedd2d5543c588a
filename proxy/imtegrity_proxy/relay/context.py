"""Everything the connections of one proxy process share."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from ..archive import Archive, ArchiveRecord
from ..config import Config
from ..metrics import ProxyMetrics
from ..policy.runtime import PolicyRuntime
from ..telemetry import ProxyTelemetry
from .cookies import CookieStore
from .upstream import UpstreamConnector


@dataclass
class RelayContext:
    config: Config
    archive: Archive
    metrics: ProxyMetrics
    cookies: CookieStore
    connector: UpstreamConnector
    policy: PolicyRuntime
    telemetry: ProxyTelemetry
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_connection_id(self) -> int:
        return next(self._ids)

    async def archive_record(self, record: ArchiveRecord) -> int:
        """Commit a record and time it; raises ArchiveError when it was not committed."""
        started = time.perf_counter()
        try:
            record_id = await self.archive.append(record)
        except Exception:
            self.metrics.archive_failure()
            raise
        self.metrics.archive_commit(time.perf_counter() - started)
        return record_id

    @classmethod
    def create(
        cls,
        config: Config,
        archive: Archive,
        metrics: ProxyMetrics,
        telemetry: ProxyTelemetry | None = None,
    ) -> RelayContext:
        """Build the shared state. ``telemetry`` defaults to one that exports nothing."""
        relay = config.relay
        return cls(
            config=config,
            archive=archive,
            metrics=metrics,
            cookies=CookieStore(relay.cookie_ttl_seconds, relay.max_cookies),
            connector=UpstreamConnector(config.upstream, metrics),
            policy=PolicyRuntime(config.policy),
            telemetry=telemetry if telemetry is not None else ProxyTelemetry(),
        )
