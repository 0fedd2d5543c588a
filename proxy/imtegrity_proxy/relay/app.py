"""The proxy process: listeners, the health server, signals, policy reload and a graceful drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time

from ..archive import Archive, ArchiveError
from ..config import Config, ConfigError, PolicyConfig
from ..health import HealthServer
from ..metrics import ProxyMetrics
from ..policy.reload import DEFAULT_INTERVAL_SECONDS, PolicyReloader
from ..telemetry import ProxyTelemetry
from .connection import Connection
from .context import RelayContext

log = logging.getLogger("imtegrity.relay")


class ProxyServer:
    """Every listener of one proxy, sharing one archive, cookie store and metrics."""

    def __init__(self, config: Config, telemetry: ProxyTelemetry | None = None) -> None:
        """Set up the proxy. ``telemetry`` defaults to one built from the OTEL_* variables."""
        self.config = config
        self.telemetry = telemetry if telemetry is not None else ProxyTelemetry.from_environment()
        self.metrics = ProxyMetrics(self.telemetry.resource, self.telemetry.metric_readers)
        self.context: RelayContext | None = None
        self.health: HealthServer | None = None
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self._rejected = 0
        self._rejected_logged_at = -60.0

    @property
    def ports(self) -> list[int]:
        """Bound listener ports, in the order of ``listen.ports``."""
        return [s.sockets[0].getsockname()[1] for s in self._servers if s.sockets]

    async def start(self) -> None:
        archive_config = self.config.archive
        archive = await Archive.open(
            archive_config.path,
            max_batch=archive_config.max_batch,
            max_delay=archive_config.max_delay_ms / 1000,
        )
        try:
            self.context = RelayContext.create(self.config, archive, self.metrics, self.telemetry)
        # A SOCKS password file or variable is missing (UpstreamConnector reads it).
        except ConfigError:
            await archive.close()
            raise
        host = self.config.listen.host
        for port in self.config.listen.ports:
            server = await asyncio.start_server(self._accept, host, port, reuse_address=True)
            self._servers.append(server)
            log.info("listening on %s:%d", host, port)
        checks = [("listeners", self._listening), ("archive", archive.check_writable)]
        # With upstream.socks.check_in_readiness, /readyz also checks the SOCKS proxies.
        socks_check = self.context.connector.readiness_check
        if socks_check is not None:
            checks.append(("socks", socks_check))
        health = self.config.health
        self.health = HealthServer(health.host, health.port, self.metrics, checks)
        await self.health.start()
        self.health.set_ready(True)
        log.info("proxy started: upstream %s", ", ".join(self.config.upstream.servers))

    async def _listening(self) -> bool:
        return bool(self._servers) and all(s.is_serving() for s in self._servers)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.context is not None
        if len(self._connections) >= self.config.relay.max_connections:
            self._reject_over_limit(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)  # type: ignore[arg-type]
        try:
            await Connection(self.context, reader, writer).run()
        finally:
            self._connections.discard(task)  # type: ignore[arg-type]

    def _reject_over_limit(self, writer: asyncio.StreamWriter) -> None:
        """Close a connection over relay.max_connections, logging at most once a minute."""
        writer.close()
        self._rejected += 1
        now = time.monotonic()
        if now - self._rejected_logged_at >= 60:
            log.warning(
                "rejected %d connections: relay.max_connections (%d) are open",
                self._rejected,
                self.config.relay.max_connections,
            )
            self._rejected = 0
            self._rejected_logged_at = now

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop accepting, let sessions drain for the grace period, then close the rest."""
        grace = (
            self.config.relay.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        )
        if self.health is not None:
            self.health.set_ready(False)
        for server in self._servers:
            server.close()
        open_connections = set(self._connections)
        log.info("stopping: %d open connections, %.0fs to drain", len(open_connections), grace)
        if open_connections:
            _, pending = await asyncio.wait(open_connections, timeout=grace or None)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.info("closed %d connections at the end of the grace period", len(pending))
        await self._close_services()
        log.info("proxy stopped")

    def apply_policy(self, policy: PolicyConfig) -> None:
        """Make ``policy`` apply to the next message of every connection."""
        self.config = self.config.model_copy(update={"policy": policy})
        if self.context is not None:
            self.context.config = self.config
            self.context.policy.replace(policy)

    async def _close_services(self) -> None:
        if self.context is not None:
            await self.context.archive.close()
        if self.health is not None:
            await self.health.stop()
        # Both block while the OTLP exporters send what is left, so not on the event loop.
        await asyncio.to_thread(self.telemetry.shutdown)
        await asyncio.to_thread(self.metrics.shutdown)


async def serve(
    config: Config,
    stop: asyncio.Event | None = None,
    config_path: str | os.PathLike[str] | None = None,
    reload_interval: float = DEFAULT_INTERVAL_SECONDS,
) -> int:
    """Run the proxy until SIGTERM or SIGINT (or until ``stop`` is set).

    With ``config_path``, the policy is reloaded when that file changes (checked
    every ``reload_interval`` seconds) and on SIGHUP.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    server = ProxyServer(config)
    try:
        await server.start()
    except (OSError, ArchiveError, ConfigError) as error:
        log.error("could not start: %s", error)
        await server.stop(grace_seconds=0)
        return 1
    watcher = _watch_policy(server, config_path, reload_interval)
    await stop.wait()
    log.info("stop requested")
    if watcher is not None:
        watcher.cancel()
    await server.stop()
    return 0


def _watch_policy(
    server: ProxyServer, config_path: str | os.PathLike[str] | None, interval: float
) -> asyncio.Task[None] | None:
    """Start the policy reloader and route SIGHUP to it; return its task, if any."""
    loop = asyncio.get_running_loop()
    if config_path is None:

        def ignore_hangup() -> None:
            log.warning("SIGHUP ignored: the proxy runs without a config file to reload")

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, ignore_hangup)
        return None
    reloader = PolicyReloader(config_path, server.apply_policy, interval)
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, reloader.request)
    return asyncio.create_task(reloader.run(), name="policy-reloader")


def run(config: Config, config_path: str | os.PathLike[str] | None = None) -> int:
    return asyncio.run(serve(config, config_path=config_path))
