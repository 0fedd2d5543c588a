"""The HTTP server for Kubernetes probes and Prometheus: /healthz, /readyz and /metrics.

- ``/healthz`` returns 200 ``ok`` whenever the event loop can run a handler.
- ``/readyz`` returns 200 only while the relay has called ``set_ready(True)`` and
  every readiness check passes. Otherwise it returns 503, and the JSON body
  names each failed check with the reason.
- ``/metrics`` returns ``ProxyMetrics.render_prometheus()``.

The server starts not ready: the relay calls ``set_ready(True)`` once its
listeners accept connections and ``set_ready(False)`` on SIGTERM, so the
Service stops sending new clients while open sessions drain.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from imtegrity_proxy.log import health_logger
from imtegrity_proxy.metrics import PROMETHEUS_CONTENT_TYPE, ProxyMetrics

__all__ = ["HealthServer", "ReadinessCheck"]

ReadinessCheck = Callable[[], Awaitable[bool]]

# The name /readyz reports while set_ready(False) is in force.
NOT_READY_CHECK = "relay"


class HealthServer:
    """An aiohttp server for /healthz, /readyz and /metrics on one host and port.

    ``readiness_checks`` are (name, coroutine function) pairs. A check fails when
    it returns False, raises, or takes longer than ``check_timeout_seconds``.
    Kubernetes must give the probe more time than that (its ``timeoutSeconds``
    defaults to 1 s). Port 0 binds a free port, which ``port`` then returns.
    """

    def __init__(
        self,
        host: str,
        port: int,
        metrics: ProxyMetrics,
        readiness_checks: Sequence[tuple[str, ReadinessCheck]] = (),
        check_timeout_seconds: float = 3.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.metrics = metrics
        self.readiness_checks = list(readiness_checks)
        self.check_timeout_seconds = check_timeout_seconds
        self._ready = False
        self._last_failures: list[str] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)

    @property
    def ready(self) -> bool:
        """The flag set by ``set_ready``; the checks are run only on a request."""
        return self._ready

    @property
    def port(self) -> int:
        """The bound TCP port; raises ``RuntimeError`` before ``start()``."""
        if self._port is None:
            raise RuntimeError("the health server is not running; call start() first")
        return self._port

    def set_ready(self, ready: bool) -> None:
        """Set whether the relay accepts new clients; /readyz fails while this is False."""
        if ready != self._ready:
            health_logger.info("readiness set to %s", "ready" if ready else "not ready")
        self._ready = ready

    async def start(self) -> None:
        """Bind the port and start serving; raises ``OSError`` when the bind fails."""
        # access_log=None: probes arrive every few seconds and would flood the log.
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        health_logger.info("health server listening on %s port %d", self.host, self._port)

    async def stop(self) -> None:
        """Stop serving and release the port; does nothing when not started."""
        if self._runner is None:
            return
        await self._runner.cleanup()
        self._runner = None
        self._port = None
        health_logger.info("health server stopped")

    async def check_readiness(self) -> list[dict[str, str]]:
        """Run every readiness check at once; return one {check, reason} per failure."""
        failures = []
        if not self._ready:
            failures.append({"check": NOT_READY_CHECK, "reason": "not accepting clients"})
        results = await asyncio.gather(
            *(self._run_check(check) for _, check in self.readiness_checks)
        )
        for (name, _), reason in zip(self.readiness_checks, results, strict=True):
            if reason is not None:
                failures.append({"check": name, "reason": reason})
        self._log_change(failures)
        return failures

    async def _run_check(self, check: ReadinessCheck) -> str | None:
        """Return None when ``check`` passes, else the reason it failed."""
        try:
            async with asyncio.timeout(self.check_timeout_seconds):
                passed = await check()
        except TimeoutError:
            return f"timed out after {self.check_timeout_seconds:g} s"
        # Whatever a check raises, /readyz must return 503, never 500.
        except Exception as error:
            return f"raised {type(error).__name__}: {error}"
        return None if passed else "returned false"

    def _log_change(self, failures: list[dict[str, str]]) -> None:
        """Log when the set of failed checks changes, not on every probe."""
        names = [failure["check"] for failure in failures]
        if names == self._last_failures:
            return
        self._last_failures = names
        if failures:
            details = "; ".join(f"{f['check']}: {f['reason']}" for f in failures)
            health_logger.warning("readiness failed: %s", details)
        else:
            health_logger.info("readiness passed")

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        failures = await self.check_readiness()
        body: dict[str, Any] = {"ready": not failures, "failed": failures}
        return web.json_response(body, status=503 if failures else 200)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render_prometheus(),
            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE},
        )
