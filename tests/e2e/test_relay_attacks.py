"""Hostile clients that try to make the proxy and the server read a frame differently."""

from __future__ import annotations

import asyncio
import logging
import struct

import pytest
from imtegrity_proxy.client import FlapStream, SignonFailed
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
