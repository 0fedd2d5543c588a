"""Hostile clients that try to make the proxy and the server read a frame differently."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest
from imtegrity_proxy.client import FlapStream, SignonFailed, login
from imtegrity_proxy.protocol import signon
from imtegrity_proxy.protocol.buffer import u16
from imtegrity_proxy.protocol.enums import Channel, Family
from imtegrity_proxy.protocol.icbm import text_message_tlvs
from imtegrity_proxy.protocol.tlv import encode_tlvs

from tests.e2e.test_relay_messages import pair
from tests.fixtures.oscar import unique_screen_name

pytestmark = pytest.mark.e2e


async def test_client_snac_flag_8000_closes_connection(proxy_factory, oscar_server, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    name = bob.screen_name.encode()
    body = (
        b"\x11" * 8
        + u16(1)
        + bytes([len(name)])
        + name
        + encode_tlvs(text_message_tlvs("hidden from the proxy"))
    )
    # The server ignores the flag and reads this body; the proxy must not skip it.
    header = struct.pack(">HHHI", Family.ICBM, 0x0006, 0x8000, 77)
    try:
        await alice.bos.send(Channel.DATA, header + u16(len(body)) + body + b"\x00\x99\x00\x00")
        with pytest.raises(ConnectionError):
            async with asyncio.timeout(5):
                while True:
                    await alice.bos.read(5)
        with pytest.raises(TimeoutError):
            await bob.receive_im(timeout=1)
    finally:
        await alice.close()
        await bob.close()
    assert "client protocol error: client SNAC with flag 0x8000" in caplog.text
    assert proxy.records_of("message") == []


async def test_second_challenge_for_other_name_rejected(proxy_factory, oscar_server):
    allowed, other = unique_screen_name("Ok"), unique_screen_name("No")
    proxy = await proxy_factory(policy={"identities": {allowed: "emp-1"}, "unregistered": "deny"})
    stream = await FlapStream.open("127.0.0.1", proxy.port, oscar_server.source_address())
    await stream.read()
    await stream.send(Channel.SIGNON, signon.encode_hello())
    await stream.send_snac(signon.encode_challenge_request(1, allowed))
    await stream.read_snac(Family.BUCP, 0x0007)
    await stream.send_snac(signon.encode_challenge_request(2, other))
    with pytest.raises(ConnectionError):
        await stream.read_snac(Family.BUCP, 0x0007, timeout=5)
    await stream.close()
    sessions = await oscar_server.async_sessions()
    assert other.lower() not in {s["screen_name"].lower() for s in sessions["sessions"]}
    assert proxy.records_of("signon") == []


async def test_login_request_for_other_name_rejected(proxy_factory, oscar_server):
    allowed, other = unique_screen_name("Ok"), unique_screen_name("No")
    proxy = await proxy_factory(policy={"identities": {allowed: "emp-1"}, "unregistered": "deny"})
    stream = await FlapStream.open("127.0.0.1", proxy.port, oscar_server.source_address())
    await stream.read()
    await stream.send(Channel.SIGNON, signon.encode_hello())
    await stream.send_snac(signon.encode_challenge_request(1, allowed))
    key = signon.parse_challenge_response(await stream.read_snac(Family.BUCP, 0x0007))
    digest = signon.login_hash(key, "pw")
    await stream.send_snac(signon.encode_login_request(2, other, digest))
    with pytest.raises((ConnectionError, SignonFailed)):
        await stream.read_snac(Family.BUCP, 0x0003, timeout=5)
    await stream.close()
    assert proxy.records_of("signon") == []


async def test_silent_login_server_skipped(proxy_factory, oscar_server, caplog):
    """A fake upstream that accepts and never sends its hello; no real server does that."""
    caplog.set_level(logging.INFO, logger="imtegrity")
    silent_clients: list[asyncio.StreamWriter] = []

    async def silent(reader, writer):
        silent_clients.append(writer)
        await reader.read(100)

    fake = await asyncio.start_server(silent, "127.0.0.1", 0)
    fake_address = f"127.0.0.1:{fake.sockets[0].getsockname()[1]}"
    proxy = await proxy_factory(
        upstream={"servers": [fake_address, oscar_server.address], "connect_timeout_seconds": 1}
    )
    try:
        result = await login(
            "127.0.0.1",
            proxy.port,
            unique_screen_name(),
            "pw",
            local_addr=oscar_server.source_address(),
        )
    finally:
        fake.close()
        for writer in silent_clients:
            writer.close()
    assert result.port == proxy.port
    assert f"upstream {fake_address} failed: timed out" in caplog.text


async def test_slow_hello_hits_handshake_deadline(proxy_factory, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory(relay={"handshake_timeout_seconds": 1.5})
    stream = await FlapStream.open("127.0.0.1", proxy.port)
    await stream.read()
    started = asyncio.get_running_loop().time()
    with pytest.raises(ConnectionError):
        # One byte of the hello a second: each read resets an idle timer, not this one.
        for byte in bytes([0x2A, 1, 0, 1, 0, 4]):
            stream.writer.write(bytes([byte]))
            await stream.writer.drain()
            await asyncio.sleep(0.5)
        await stream.read(timeout=5)
    assert asyncio.get_running_loop().time() - started < 4
    assert "sign-on or cookie hand-off not finished within 2s" in caplog.text


async def test_connections_over_limit_closed(proxy_factory, oscar_server, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory(relay={"max_connections": 2})
    held = [await FlapStream.open("127.0.0.1", proxy.port) for _ in range(2)]
    for stream in held:
        await stream.read()
    extra = await FlapStream.open("127.0.0.1", proxy.port)
    with pytest.raises(ConnectionError):
        await extra.read(timeout=5)
    assert "rejected 1 connections: relay.max_connections (2) are open" in caplog.text
    for stream in held:
        await stream.close()
    await asyncio.sleep(0.2)
    result = await login(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        "pw",
        local_addr=oscar_server.source_address(),
    )
    assert result.port == proxy.port


async def test_unknown_cookie_refused_when_unregistered_denied(proxy_factory, oscar_server):
    name = unique_screen_name()
    proxy = await proxy_factory(policy={"identities": {name: "emp-9"}, "unregistered": "deny"})
    # A cookie the server issued directly, not through the proxy.
    direct = await login(
        oscar_server.host, oscar_server.port, name, "pw", local_addr=oscar_server.source_address()
    )
    stream = await FlapStream.open("127.0.0.1", proxy.port)
    await stream.read()
    await stream.send(Channel.SIGNON, signon.encode_cookie_hello(direct.cookie))
    with pytest.raises(ConnectionError):
        await stream.read(timeout=5)
    [denied] = proxy.records_of("denied")
    assert denied["details"]["reason"] == "unknown cookie"
    sessions = await oscar_server.async_sessions()
    assert name.lower() not in {s["screen_name"].lower() for s in sessions["sessions"]}
