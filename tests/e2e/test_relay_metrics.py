"""The health server's /metrics and /readyz after real sessions through the proxy."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from imtegrity_proxy.client import SignonFailed, login

from tests.e2e.test_relay_failures import set_immutable
from tests.e2e.test_relay_messages import pair
from tests.fixtures.oscar import unique_screen_name
from tests.fixtures.peers import free_port

pytestmark = pytest.mark.e2e


async def fetch(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


def sample(metrics: str, name: str, *labels: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name) and all(label in line for label in labels):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{metrics}")


async def test_metrics_count_a_session(proxy_factory, oscar_server):
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    try:
        await alice.send_im(bob.screen_name, "counted")
        await bob.receive_im()
        status, during = await fetch(proxy.health_port, "/metrics")
    finally:
        await alice.close()
        await bob.close()
    assert status == 200
    assert sample(during, "imtegrity_sessions_active") >= 2
    assert sample(during, "imtegrity_signons_total", 'result="success"') == 2
    assert sample(during, "imtegrity_messages_total", 'direction="outbound"') == 1
    assert sample(during, "imtegrity_messages_total", 'direction="inbound"') == 1
    assert sample(during, "imtegrity_relayed", 'direction="outbound"') > 0
    assert sample(during, "imtegrity_archive_commit_duration", "_count") >= 4


async def test_metrics_count_upstream_failure(proxy_factory):
    proxy = await proxy_factory(upstream={"servers": [f"127.0.0.1:{free_port()}"]})
    with pytest.raises(SignonFailed):
        await login("127.0.0.1", proxy.port, unique_screen_name(), "pw")
    _, metrics = await fetch(proxy.health_port, "/metrics")
    assert sample(metrics, "imtegrity_upstream_connect_failures_total", 'reason="refused"') == 1


async def test_readyz_fails_when_archive_cannot_write(proxy_factory):
    proxy = await proxy_factory()
    status, _ = await fetch(proxy.health_port, "/readyz")
    assert status == 200
    files = [proxy.archive_path, Path(f"{proxy.archive_path}-wal")]
    set_immutable(files, True)
    try:
        status, body = await fetch(proxy.health_port, "/readyz")
    finally:
        set_immutable(files, False)
    assert status == 503
    assert "archive" in body
    status, _ = await fetch(proxy.health_port, "/readyz")
    assert status == 200
