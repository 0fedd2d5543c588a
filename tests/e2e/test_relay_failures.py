"""Bad input, a failing archive, shutdown and secrets, against Open OSCAR Server."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml
from imtegrity_proxy.client import AimClient, FlapStream
from imtegrity_proxy.protocol.enums import Channel, ErrorCode, Family
from imtegrity_proxy.protocol.oservice import parse_error
from imtegrity_proxy.protocol.signon import ROAST_TABLE, encode_challenge_request, login_hash

from tests.e2e.test_relay_messages import pair
from tests.fixtures.oscar import unique_screen_name
from tests.fixtures.proxy import proxy_config

pytestmark = pytest.mark.e2e


async def raw_connection(port: int) -> FlapStream:
    stream = await FlapStream.open("127.0.0.1", port)
    await stream.read()  # the proxy's hello
    return stream


async def test_bad_start_marker_closes_only_that_connection(proxy_factory, oscar_server, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    bad = await raw_connection(proxy.port)
    try:
        bad.writer.write(b"\x00" * 16)
        await bad.writer.drain()
        with pytest.raises(ConnectionError):
            await bad.read(timeout=5)
        await alice.send_im(bob.screen_name, "still working")
        received = await bob.receive_im()
    finally:
        await alice.close()
        await bob.close()
    assert received.text == "still working"
    lines = [r.getMessage() for r in caplog.records if "protocol error" in r.getMessage()]
    assert lines == [
        "closing: client protocol error: FLAP start marker (expected 0x002a, got 0x0000)"
    ]
    record = next(r for r in caplog.records if "protocol error" in r.getMessage())
    assert record.connection_id is not None


async def test_oversized_frame_closes_connection(proxy_factory, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory(relay={"max_frame_payload": 1024})
    bad = await raw_connection(proxy.port)
    bad.writer.write(bytes([0x2A, 1, 0, 1, 0x10, 0x00]))  # announces 4096 bytes
    await bad.writer.drain()
    with pytest.raises(ConnectionError):
        await bad.read(timeout=5)
    assert "FLAP payload length over the limit (expected 0x0400, got 0x1000)" in caplog.text


async def test_truncated_snac_closes_connection(proxy_factory, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory()
    bad = await raw_connection(proxy.port)
    await bad.send(Channel.SIGNON, b"\x00\x00\x00\x01")
    await bad.send(Channel.DATA, b"\x00\x17\x00")  # 3 bytes of a 10-byte SNAC header
    with pytest.raises(ConnectionError):
        await bad.read(timeout=5)
    assert "client protocol error: SNAC header is truncated" in caplog.text


async def test_server_garbage_closes_one_connection(proxy_factory, caplog):
    """A fake upstream: no real OSCAR server sends a broken frame on purpose."""
    caplog.set_level(logging.INFO, logger="imtegrity")

    async def broken_server(reader, writer):
        writer.write(bytes([0x2A, 1, 0, 1, 0, 4]) + b"\x00\x00\x00\x01")
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        await reader.read(100)
        writer.close()

    fake = await asyncio.start_server(broken_server, "127.0.0.1", 0)
    fake_port = fake.sockets[0].getsockname()[1]
    proxy = await proxy_factory(upstream={"servers": [f"127.0.0.1:{fake_port}"]})
    try:
        stream = await raw_connection(proxy.port)
        await stream.send(Channel.SIGNON, b"\x00\x00\x00\x01")
        await stream.send_snac(encode_challenge_request(1, "someone"))
        with pytest.raises(ConnectionError):
            await stream.read(timeout=5)
    finally:
        fake.close()
    assert "closing: server protocol error: FLAP start marker" in caplog.text


def set_immutable(paths: list[Path], enabled: bool) -> None:
    flag = "+i" if enabled else "-i"
    for path in paths:
        if path.exists():
            subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


async def test_archive_failure_blocks_message_and_tells_sender(proxy_factory, oscar_server):
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    files = [proxy.archive_path, Path(f"{proxy.archive_path}-wal")]
    try:
        await alice.send_im(bob.screen_name, "archived first")
        await bob.receive_im()
        set_immutable(files, True)
        try:
            request_id = await alice.send_im(bob.screen_name, "must not leave unarchived")
            error_snac = await alice.bos.read_snac(Family.ICBM, 0x0001, timeout=10)
            with pytest.raises(TimeoutError):
                await bob.receive_im(timeout=1.5)
        finally:
            set_immutable(files, False)
        await alice.send_im(bob.screen_name, "archived again")
        after = await bob.receive_im()
    finally:
        await alice.close()
        await bob.close()
    assert error_snac.request_id == request_id
    assert parse_error(error_snac).code == ErrorCode.SERVICE_UNAVAILABLE
    assert after.text == "archived again"
    texts = [r["text"] for r in proxy.records_of("message")]
    assert "must not leave unarchived" not in texts
    assert texts.count("archived again") == 2
    # No gap: the frames Alice received, the injected error included, are numbered in order.
    sequences = [f.sequence for f in alice.bos.received]
    assert all((b - a) % 0x10000 == 1 for a, b in itertools.pairwise(sequences))


async def test_secrets_never_reach_the_log(proxy_factory, oscar_server, caplog):
    caplog.set_level(logging.DEBUG)
    proxy = await proxy_factory()
    password = "Sw0rdfish-Secret!"
    alice = await AimClient.sign_on(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        password,
        local_addr=oscar_server.source_address(),
    )
    bob = await AimClient.sign_on(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        password,
        style="old-style",
        local_addr=oscar_server.source_address(),
    )
    message = "confidential-merger-text"
    try:
        await oscar_server.async_wait_for_session(bob.screen_name)
        await alice.send_im(bob.screen_name, message)
        await bob.receive_im()
    finally:
        await alice.close()
        await bob.close()
    # The BOS hello is FLAP header (6), version (4), TLV 0x06 header (4), then the cookie.
    cookie = alice.bos.sent[0][14:]
    assert len(cookie) > 0
    roasted = bytes(b ^ ROAST_TABLE[i % 16] for i, b in enumerate(password.encode()))
    forbidden = [password, message, cookie.hex(), roasted.hex(), repr(cookie)[2:40]]
    forbidden += [login_hash(b"", password).hex()]
    text = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    for secret in forbidden:
        assert secret not in text


async def test_sigterm_drains_then_exits(tmp_path, oscar_server):
    config = proxy_config(
        tmp_path,
        [oscar_server.address],
        [oscar_server.source_address()],
        relay={"shutdown_grace_seconds": 2},
    )
    config_path = tmp_path / "proxy.yaml"
    config_path.write_text(yaml.safe_dump(config))
    proxy_bin = Path(sys.executable).parent / "imtegrity-proxy"
    log_path = tmp_path / "proxy.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(proxy_bin), "serve", "--config", str(config_path)], stdout=log, stderr=log
        )
    port = config["listen"]["ports"][0]
    health = f"http://127.0.0.1:{config['health']['port']}/readyz"
    try:
        await _wait_ready(health)
        client = await AimClient.sign_on(
            "127.0.0.1", port, unique_screen_name(), "pw", local_addr=oscar_server.source_address()
        )
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        async with aiohttp.ClientSession() as http, http.get(health) as response:
            assert response.status == 503
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)
        # The open session still works during the grace period, then is closed.
        assert not client.bos.writer.is_closing()
        with pytest.raises(ConnectionError):
            async with asyncio.timeout(6):
                while True:
                    await client.bos.read(timeout=6)
        assert await asyncio.to_thread(process.wait, 10) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
    log_text = log_path.read_text()
    assert "stopping: 2 open connections" in log_text or "stopping: 1 open connections" in log_text
    assert "proxy stopped" in log_text


async def _wait_ready(url: str, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


async def test_idle_client_is_closed(proxy_factory, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory(relay={"idle_timeout_seconds": 1})
    idle = await raw_connection(proxy.port)
    with pytest.raises(ConnectionError):
        await idle.read(timeout=5)
    assert "closing: client idle for 1s" in caplog.text
