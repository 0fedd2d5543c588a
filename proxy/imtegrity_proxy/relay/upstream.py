"""Opening connections to the upstream OSCAR servers."""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import UpstreamConfig
from ..metrics import ProxyMetrics

log = logging.getLogger("imtegrity.upstream")


class UpstreamError(Exception):
    """No connection to an upstream server. ``reason`` is a short fixed word."""

    def __init__(self, target: str, reason: str, detail: str = "") -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"{target}: {reason}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True, slots=True)
class UpstreamStream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    address: tuple[str, int]
    via: str


class UpstreamConnector:
    """Connect directly, spreading connections across the configured source addresses."""

    def __init__(self, config: UpstreamConfig, metrics: ProxyMetrics) -> None:
        self._config = config
        self._metrics = metrics
        self._sources = itertools.cycle(config.source_addresses or [None])

    @property
    def login_servers(self) -> list[tuple[str, int]]:
        return self._config.server_addresses()

    async def connect_first(self, targets: Sequence[tuple[str, int]]) -> UpstreamStream:
        """Try ``targets`` in order; raise the last UpstreamError when all fail."""
        error: UpstreamError | None = None
        for host, port in targets:
            try:
                return await self.connect(host, port)
            except UpstreamError as failure:
                log.warning("upstream %s failed: %s, trying the next one", failure.target, failure)
                error = failure
        assert error is not None, "connect_first needs at least one target"
        raise error

    async def connect(self, host: str, port: int) -> UpstreamStream:
        target = f"{host}:{port}"
        source = next(self._sources)
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(source, 0) if source else None),
                timeout=self._config.connect_timeout_seconds,
            )
        except TimeoutError as error:
            raise self._failed(target, "timed out") from error
        except ConnectionRefusedError as error:
            raise self._failed(target, "refused") from error
        except socket.gaierror as error:
            raise self._failed(target, "name not resolved", str(error)) from error
        except OSError as error:
            raise self._failed(target, "unreachable", error.strerror or str(error)) from error
        self._metrics.upstream_connect(time.perf_counter() - started, "direct")
        return UpstreamStream(reader, writer, (host, port), "direct")

    def _failed(self, target: str, reason: str, detail: str = "") -> UpstreamError:
        self._metrics.upstream_connect_failure(reason)
        return UpstreamError(target, reason, detail)
