"""Tests for the health server (imtegrity_proxy.health) and the metrics it serves."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from imtegrity_proxy.health import HealthServer
from imtegrity_proxy.metrics import ProxyMetrics

Check = Callable[[], Awaitable[bool]]


def constant_check(result: bool) -> Check:
    async def check() -> bool:
        return result

    return check


async def raising_check() -> bool:
    raise ConnectionRefusedError("socks proxy refused")


async def slow_check() -> bool:
    await asyncio.sleep(10)
    return True


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Awaitable[HealthServer]]]:
    started: list[HealthServer] = []

    async def start(
        checks: list[tuple[str, Check]] | None = None, **options: float
    ) -> HealthServer:
        server = HealthServer("127.0.0.1", 0, ProxyMetrics(), checks or [], **options)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def fetch(server: HealthServer, path: str) -> tuple[int, str, str]:
    """Return (status, content type header, body) of a GET on the server."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


async def fetch_json(server: HealthServer, path: str) -> tuple[int, dict[str, object]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{server.port}{path}") as response,
    ):
        return response.status, await response.json()


# ---- /healthz and lifecycle ------------------------------------------------------------


async def test_healthz_ok(start_server: Callable[..., Awaitable[HealthServer]]) -> None:
    server = await start_server()
    status, content_type, body = await fetch(server, "/healthz")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert body == "ok\n"


async def test_free_port_reported(start_server: Callable[..., Awaitable[HealthServer]]) -> None:
    server = await start_server()
    assert 0 < server.port < 65536


async def test_port_before_start_raises() -> None:
    server = HealthServer("127.0.0.1", 0, ProxyMetrics(), [])
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port


async def test_stop_releases_port() -> None:
    server = HealthServer("127.0.0.1", 0, ProxyMetrics(), [])
    await server.start()
    port = server.port
    await server.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)
    await server.stop()


async def test_busy_port_raises_oserror() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HealthServer("127.0.0.1", taken.getsockname()[1], ProxyMetrics(), [])
        with pytest.raises(OSError):
            await server.start()


async def test_unknown_path_404(start_server: Callable[..., Awaitable[HealthServer]]) -> None:
    server = await start_server()
    status, _, _ = await fetch(server, "/admin")
    assert status == 404


# ---- /readyz ---------------------------------------------------------------------------


async def test_readyz_not_ready_at_start(
    start_server: Callable[..., Awaitable[HealthServer]],
) -> None:
    server = await start_server([("archive", constant_check(True))])
    status, body = await fetch_json(server, "/readyz")
    assert status == 503
    assert body == {
        "ready": False,
        "failed": [{"check": "relay", "reason": "not accepting clients"}],
    }


async def test_readyz_ready_when_checks_pass(
    start_server: Callable[..., Awaitable[HealthServer]],
) -> None:
    checks = [("archive", constant_check(True)), ("socks", constant_check(True))]
    server = await start_server(checks)
    server.set_ready(True)
    status, body = await fetch_json(server, "/readyz")
    assert status == 200
    assert body == {"ready": True, "failed": []}


async def test_readyz_names_each_failed_check(
    start_server: Callable[..., Awaitable[HealthServer]],
) -> None:
    checks = [
        ("archive", constant_check(False)),
        ("listener", constant_check(True)),
        ("socks", raising_check),
        ("upstream", slow_check),
    ]
    server = await start_server(checks, check_timeout_seconds=0.2)
    server.set_ready(True)
    status, body = await fetch_json(server, "/readyz")
    assert status == 503
    assert body["ready"] is False
    assert body["failed"] == [
        {"check": "archive", "reason": "returned false"},
        {"check": "socks", "reason": "raised ConnectionRefusedError: socks proxy refused"},
        {"check": "upstream", "reason": "timed out after 0.2 s"},
    ]


async def test_readyz_fails_after_set_ready_false(
    start_server: Callable[..., Awaitable[HealthServer]],
) -> None:
    server = await start_server()
    server.set_ready(True)
    ready_status, _ = await fetch_json(server, "/readyz")
    server.set_ready(False)
    draining_status, body = await fetch_json(server, "/readyz")
    assert ready_status == 200
    assert draining_status == 503
    assert body["failed"] == [{"check": "relay", "reason": "not accepting clients"}]
    assert server.ready is False


async def test_readiness_change_logged_once(
    start_server: Callable[..., Awaitable[HealthServer]], caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server([("archive", constant_check(False))])
    server.set_ready(True)
    with caplog.at_level("INFO", logger="imtegrity.health"):
        for _ in range(3):
            await fetch_json(server, "/readyz")
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "archive: returned false" in warnings[0].getMessage()


# ---- /metrics and ProxyMetrics -------------------------------------------------------


async def test_metrics_endpoint_shows_counters(
    start_server: Callable[..., Awaitable[HealthServer]],
) -> None:
    server = await start_server()
    server.metrics.signon("allowed")
    server.metrics.signon("allowed")
    server.metrics.signon("denied")
    status, content_type, body = await fetch(server, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    assert 'imtegrity_signons_total{result="allowed"} 2.0' in body
    assert 'imtegrity_signons_total{result="denied"} 1.0' in body


def test_metrics_attributes_rendered() -> None:
    metrics = ProxyMetrics()
    metrics.message("outbound", "blocked")
    metrics.bytes_relayed("inbound", 1500)
    metrics.bytes_relayed("inbound", 500)
    metrics.upstream_connect_failure("timeout")
    metrics.rendezvous_blocked()
    metrics.disclaimer()
    metrics.archive_failure()
    text = metrics.render_prometheus().decode()
    assert 'imtegrity_messages_total{action="blocked",direction="outbound"} 1.0' in text
    assert 'imtegrity_relayed_bytes_total{direction="inbound"} 2000.0' in text
    assert 'imtegrity_upstream_connect_failures_total{reason="timeout"} 1.0' in text
    assert "imtegrity_rendezvous_blocked_total 1.0" in text
    assert "imtegrity_disclaimers_total 1.0" in text
    assert "imtegrity_archive_failures_total 1.0" in text


def test_active_sessions_gauge() -> None:
    metrics = ProxyMetrics()
    metrics.session_opened()
    metrics.session_opened()
    metrics.session_opened()
    metrics.session_closed()
    text = metrics.render_prometheus().decode()
    assert "# TYPE imtegrity_sessions_active gauge" in text
    assert "imtegrity_sessions_active 2.0" in text


def test_histograms_rendered() -> None:
    metrics = ProxyMetrics()
    metrics.archive_commit(0.003)
    metrics.upstream_connect(0.2, via="socks")
    metrics.upstream_connect(0.02, via="direct")
    text = metrics.render_prometheus().decode()
    assert 'imtegrity_archive_commit_duration_seconds_bucket{le="0.0025"} 0.0' in text
    assert 'imtegrity_archive_commit_duration_seconds_bucket{le="0.005"} 1.0' in text
    assert "imtegrity_archive_commit_duration_seconds_sum 0.003" in text
    assert 'imtegrity_upstream_connect_duration_seconds_count{via="socks"} 1.0' in text
    assert 'imtegrity_upstream_connect_duration_seconds_count{via="direct"} 1.0' in text


def test_metrics_instances_independent() -> None:
    first = ProxyMetrics()
    second = ProxyMetrics()
    first.signon("allowed")
    assert b"imtegrity_signons_total" in first.render_prometheus()
    assert b"imtegrity_signons_total" not in second.render_prometheus()
