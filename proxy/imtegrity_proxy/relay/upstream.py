"""Opening connections to the upstream OSCAR servers, directly or through SOCKS proxies.

With ``upstream.socks`` set, every upstream connection (login, BOS, chat and
every other service) goes through the configured SOCKS proxies, tried in order
for each connection. ``socks.py`` implements the SOCKS side. Without
``upstream.socks``, connections go directly to the servers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from ..config import SocksConfig, UpstreamConfig
from ..metrics import ProxyMetrics
from .socks import SocksEndpoint, SocksFailure, open_socks_connection, probe_socks_proxy

log = logging.getLogger("imtegrity.upstream")


class UpstreamError(Exception):
    """No connection to an upstream server. ``reason`` is a short fixed string.

    ``proxy`` describes the SOCKS proxy that failed (``socks5 host:port``), or is
    None for a direct connection. Neither carries credentials.
    """

    def __init__(
        self, target: str, reason: str, detail: str = "", proxy: str | None = None
    ) -> None:
        self.target = target
        self.reason = reason
        self.detail = detail
        self.proxy = proxy
        where = f"{target} via {proxy}" if proxy else target
        super().__init__(f"{where}: {reason}" + (f" ({detail})" if detail else ""))


class SocksUnavailableError(Exception):
    """No configured SOCKS proxy accepted a connection (the readiness check)."""


@dataclass(frozen=True, slots=True)
class UpstreamStream:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    address: tuple[str, int]
    via: str


class UpstreamConnector:
    """Connect directly or through SOCKS proxies, spreading connections across source addresses.

    With SOCKS proxies configured, creating the connector reads their passwords
    and registers them for log redaction; it raises ``ConfigError`` when one is
    missing.
    """

    def __init__(self, config: UpstreamConfig, metrics: ProxyMetrics) -> None:
        self._config = config
        self._metrics = metrics
        self._sources = itertools.cycle(config.source_addresses or [None])
        self._socks: SocksConfig | None = config.socks
        proxies = config.socks.proxies if config.socks is not None else []
        self._socks_endpoints = [SocksEndpoint(proxy) for proxy in proxies]
        if self._socks_endpoints:
            described = ", ".join(endpoint.description for endpoint in self._socks_endpoints)
            log.info("upstream connections go through SOCKS proxies, in order: %s", described)

    @property
    def login_servers(self) -> list[tuple[str, int]]:
        return self._config.server_addresses()

    @property
    def readiness_check(self) -> Callable[[], Awaitable[bool]] | None:
        """The /readyz check of the SOCKS proxies, or None unless ``check_in_readiness`` is set."""
        if self._socks is None or not self._socks.check_in_readiness:
            return None
        return self.check_socks_ready

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
        """Open one upstream connection; raise UpstreamError when it fails."""
        if self._socks is not None:
            return await self._connect_via_socks(self._socks, host, port)
        return await self._connect_direct(host, port)

    async def _connect_direct(self, host: str, port: int) -> UpstreamStream:
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

    async def _connect_via_socks(self, socks: SocksConfig, host: str, port: int) -> UpstreamStream:
        """Try each SOCKS proxy in order; raise the last failure as an UpstreamError."""
        target = f"{host}:{port}"
        source = next(self._sources)
        error: UpstreamError | None = None
        for endpoint in self._socks_endpoints:
            if error is not None:
                log.warning("%s, trying the next SOCKS proxy", error)
            started = time.perf_counter()
            try:
                reader, writer = await open_socks_connection(
                    endpoint,
                    host,
                    port,
                    connect_timeout=socks.connect_timeout_seconds,
                    handshake_timeout=socks.handshake_timeout_seconds,
                    local_host=source,
                )
            except SocksFailure as failure:
                self._metrics.upstream_connect_failure(failure.reason)
                error = UpstreamError(target, failure.reason, failure.detail, endpoint.description)
                continue
            elapsed = time.perf_counter() - started
            self._metrics.upstream_connect(elapsed, "socks")
            log.debug("connected to %s via %s in %.3f s", target, endpoint.description, elapsed)
            return UpstreamStream(reader, writer, (host, port), endpoint.description)
        assert error is not None, "upstream.socks.proxies has at least one entry"
        raise error

    async def check_socks_ready(self) -> bool:
        """Return True once any SOCKS proxy accepts a connection (and a SOCKS5 greeting).

        The proxies are probed at once, so a proxy that does not reply does not
        hide a working one behind its timeout. Raises ``SocksUnavailableError``
        naming each proxy and its failure when none works; /readyz shows that text.
        """
        assert self._socks is not None, "check_socks_ready needs upstream.socks"
        socks = self._socks
        probes = {
            asyncio.create_task(
                probe_socks_proxy(
                    endpoint,
                    connect_timeout=socks.connect_timeout_seconds,
                    handshake_timeout=socks.handshake_timeout_seconds,
                )
            ): endpoint
            for endpoint in self._socks_endpoints
        }
        try:
            for finished in asyncio.as_completed(probes):
                try:
                    await finished
                # This proxy failed; its task keeps the failure for the message below.
                except SocksFailure:
                    continue
                return True
        finally:
            for task in probes:
                task.cancel()
            await asyncio.gather(*probes, return_exceptions=True)
        raise SocksUnavailableError(self._describe_probe_failures(probes))

    @staticmethod
    def _describe_probe_failures(probes: dict[asyncio.Task[None], SocksEndpoint]) -> str:
        parts = []
        for task, endpoint in probes.items():
            failure = task.exception() if task.done() and not task.cancelled() else None
            parts.append(f"{endpoint.description}: {failure or 'not checked'}")
        return "no SOCKS proxy accepts connections: " + "; ".join(parts)
