"""Sign-on through the proxy against Open OSCAR Server: both styles, every port,
later connections kept on the proxy, and a prompt error when upstream is down."""

from __future__ import annotations

import asyncio
import logging

import pytest
from imtegrity_proxy.client import AimClient, SignonFailed, login
from imtegrity_proxy.protocol.enums import Family, SignonErrorCode
from imtegrity_proxy.protocol.tlv import find_tlv, parse_tlvs

from tests.fixtures.oscar import unique_screen_name
from tests.fixtures.peers import free_port

pytestmark = pytest.mark.e2e


def peer_port(client: AimClient) -> int:
    return client.bos.writer.get_extra_info("peername")[1]


@pytest.mark.parametrize("style", ["bucp", "old-style"])
async def test_signon_styles_reach_bos_through_proxy(proxy_factory, oscar_server, style, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory()
    name = unique_screen_name()
    client = await AimClient.sign_on(
        "127.0.0.1", proxy.port, name, "pw", style=style, local_addr=oscar_server.source_address()
    )
    try:
        session = await oscar_server.async_wait_for_session(name)
        assert peer_port(client) == proxy.port
        # The server sees the proxy's source address, not the client's.
        remote = session["instances"][0]["remote_addr"]
        assert remote in proxy.server.config.upstream.source_addresses
        assert "cookie accepted: BOS connection" in caplog.text
        signons = proxy.records_of("signon")
        assert len(signons) == 1
        assert signons[0]["details"]["style"] == style
        assert signons[0]["local"] == name.lower()
    finally:
        await client.close()


async def test_signon_on_every_port_keeps_that_port(proxy_factory, oscar_server):
    ports = [free_port(), free_port()]
    proxy = await proxy_factory(listen={"ports": ports})
    for port in ports:
        result = await login(
            "127.0.0.1", port, unique_screen_name(), "pw", local_addr=oscar_server.source_address()
        )
        assert result.host == "127.0.0.1"
        assert result.port == port
    assert proxy.ports == ports


async def test_advertised_host_replaces_local_address(proxy_factory, oscar_server):
    proxy = await proxy_factory(advertise={"host": "aim-proxy.example.test"})
    result = await login(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        "pw",
        local_addr=oscar_server.source_address(),
    )
    assert result.host == "aim-proxy.example.test"
    assert result.port == proxy.port


async def test_chat_connection_goes_through_proxy(proxy_factory, oscar_server, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory()
    client = await AimClient.sign_on(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        "pw",
        local_addr=oscar_server.source_address(),
    )
    try:
        room = await client.join_chat("relay-room")
        assert room.stream.writer.get_extra_info("peername")[1] == proxy.port
        assert f"redirect for family 0x{Family.CHAT:04x} rewritten" in caplog.text
        assert f"cookie accepted: family 0x{Family.CHAT:04x}" in caplog.text
    finally:
        await client.close()


async def test_upstream_down_gives_prompt_signon_error(proxy_factory, oscar_server):
    dead = f"127.0.0.1:{free_port()}"
    proxy = await proxy_factory(upstream={"servers": [dead]})
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(SignonFailed) as failure:
        await login("127.0.0.1", proxy.port, unique_screen_name(), "pw")
    assert failure.value.code == SignonErrorCode.SERVICE_TEMPORARILY_UNAVAILABLE
    assert loop.time() - started < 2


async def test_old_style_upstream_down_gives_error(proxy_factory):
    proxy = await proxy_factory(upstream={"servers": [f"127.0.0.1:{free_port()}"]})
    with pytest.raises(SignonFailed) as failure:
        await login("127.0.0.1", proxy.port, unique_screen_name(), "pw", style="old-style")
    assert failure.value.code == SignonErrorCode.SERVICE_TEMPORARILY_UNAVAILABLE


async def test_second_login_server_used_when_first_down(proxy_factory, oscar_server):
    dead = f"127.0.0.1:{free_port()}"
    proxy = await proxy_factory(upstream={"servers": [dead, oscar_server.address]})
    result = await login(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        "pw",
        local_addr=oscar_server.source_address(),
    )
    assert result.port == proxy.port


async def test_screen_name_formatting_is_one_identity(proxy_factory, own_oscar_server):
    oscar_server = own_oscar_server
    proxy = await proxy_factory(
        upstream={"servers": [oscar_server.address]},
        policy={"identities": {"Foo Bar Itg": "emp-1001"}},
    )
    for typed in ("Foo Bar Itg", "foobaritg"):
        client = await AimClient.sign_on(
            "127.0.0.1", proxy.port, typed, "pw", local_addr=oscar_server.source_address()
        )
        await client.close()
        await oscar_server.async_wait_for_session(typed, online=False)
    await asyncio.sleep(0.3)
    signons = proxy.records_of("signon")
    assert [r["local"] for r in signons] == ["foobaritg", "foobaritg"]
    assert [r["identity"] for r in signons] == ["emp-1001", "emp-1001"]
    assert all(r["local_display"].replace(" ", "").lower() == "foobaritg" for r in signons)


async def test_signing_on_twice_keeps_sessions_apart(proxy_factory, own_oscar_server):
    oscar_server = own_oscar_server
    proxy = await proxy_factory(upstream={"servers": [oscar_server.address]})
    name = unique_screen_name()
    # Open OSCAR Server v0.22.0 tells a session it ends why (TLV 0x09, one byte) only
    # when that session signed on with a multi-connection flag other than 0x00. So
    # both clients send 0x03, which requests one session at a time.
    first = await AimClient.sign_on(
        "127.0.0.1",
        proxy.port,
        name,
        "pw",
        local_addr=oscar_server.source_address(),
        multi_connection=0x03,
    )
    # Like a real client, the first one keeps reading, and leaves when signed off.
    signed_off = asyncio.create_task(_wait_for_signoff(first))
    second = await AimClient.sign_on(
        "127.0.0.1",
        proxy.port,
        name,
        "pw",
        local_addr=oscar_server.source_address(),
        multi_connection=0x03,
    )
    try:
        payload = await signed_off
        assert payload
        reason = find_tlv(parse_tlvs(payload), 0x0009)
        assert reason == b"\x01"
        await first.close()
        await oscar_server.async_wait_for_session(name)
    finally:
        await second.close()
        await first.close()
    await asyncio.sleep(0.3)
    signons = proxy.records_of("signon")
    assert len({r["session"] for r in signons}) == 2
    signoffs = proxy.records_of("signoff")
    sessions_signed_off = {r["session"] for r in signoffs}
    assert sessions_signed_off == {r["session"] for r in signons}
    [first_signoff] = [r for r in signoffs if r["session"] == signons[0]["session"]]
    assert first_signoff["details"] is not None
    assert first_signoff["details"]["reason"] == 1


async def _wait_for_signoff(client: AimClient, timeout: float = 10) -> bytes | None:
    """Return the channel-4 payload the server sent the first session, if any."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                frame = await client.bos.read(timeout)
            except ConnectionError:
                return b""
            if frame.channel == 4:
                return frame.payload
