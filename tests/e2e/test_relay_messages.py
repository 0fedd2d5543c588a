"""Messages through the proxy against Open OSCAR Server: every charset, both
directions, chat rooms, byte-for-byte relay, and exactly one archive record each."""

from __future__ import annotations

import asyncio

import pytest
from imtegrity_proxy.client import AimClient, login
from imtegrity_proxy.protocol.enums import Channel, Family, IcbmSubtype
from imtegrity_proxy.protocol.icbm import parse_icbm_send
from imtegrity_proxy.protocol.signon import parse_hello
from imtegrity_proxy.protocol.snac import parse_snac
from imtegrity_proxy.protocol.tlv import Tlv

from tests.fixtures.oscar import start_oscar_server, unique_screen_name
from tests.fixtures.proxy import TcpTap, split_frames

pytestmark = pytest.mark.e2e

TEXTS = {
    "ascii": ("Quarterly numbers attached.", "ascii"),
    "latin-1": ("Café au lait, 4,50 €?".replace("€", "EUR"), "latin-1"),
    "ucs-2": ("Привет, мир 😀 ok", "ucs-2"),
    "html": ("<HTML><BODY>see <b>bold</b> &amp; more</BODY></HTML>", "ascii"),
}


async def pair(proxy, oscar_server, direct_sender: bool = False):
    sender_name, receiver_name = unique_screen_name("Snd"), unique_screen_name("Rcv")
    host, port = ("127.0.0.1", proxy.port)
    sender_host, sender_port = (
        (oscar_server.host, oscar_server.port) if direct_sender else (host, port)
    )
    sender = await AimClient.sign_on(
        sender_host, sender_port, sender_name, "pw", local_addr=oscar_server.source_address()
    )
    receiver = await AimClient.sign_on(
        host, port, receiver_name, "pw", local_addr=oscar_server.source_address()
    )
    await oscar_server.async_wait_for_session(receiver_name)
    await oscar_server.async_wait_for_session(sender_name)
    return sender, receiver


@pytest.mark.parametrize("case", sorted(TEXTS))
async def test_message_both_directions_archived_once(proxy_factory, oscar_server, case):
    text, charset = TEXTS[case]
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    try:
        await alice.send_im(bob.screen_name, text)
        to_bob = await bob.receive_im()
        await bob.send_im(alice.screen_name, text)
        to_alice = await alice.receive_im()
    finally:
        await alice.close()
        await bob.close()
    assert to_bob.html == text
    assert to_alice.html == text
    messages = proxy.records_of("message")
    assert len(messages) == 4
    by_key = {(r["local"], r["direction"]): r for r in messages}
    assert set(by_key) == {
        (alice.screen_name.lower(), "outbound"),
        (bob.screen_name.lower(), "inbound"),
        (bob.screen_name.lower(), "outbound"),
        (alice.screen_name.lower(), "inbound"),
    }
    for record in messages:
        assert record["html"] == text
        assert record["text"] == to_bob.text
        assert record["charset"] == charset
        assert record["action"] == "delivered"


async def test_message_from_direct_user_archived_once(proxy_factory, oscar_server):
    proxy = await proxy_factory()
    outsider, insider = await pair(proxy, oscar_server, direct_sender=True)
    try:
        await outsider.send_im(insider.screen_name, "from outside the proxy")
        received = await insider.receive_im()
    finally:
        await outsider.close()
        await insider.close()
    assert received.text == "from outside the proxy"
    messages = proxy.records_of("message")
    assert len(messages) == 1
    assert messages[0]["direction"] == "inbound"
    assert messages[0]["remote"] == outsider.screen_name.lower()


async def test_server_injected_message_archived(proxy_factory, oscar_server):
    proxy = await proxy_factory()
    name = unique_screen_name()
    client = await AimClient.sign_on(
        "127.0.0.1", proxy.port, name, "pw", local_addr=oscar_server.source_address()
    )
    try:
        await oscar_server.async_wait_for_session(name)
        await oscar_server.async_send_instant_message("ApiSender", name, "via the API")
        received = await client.receive_im()
    finally:
        await client.close()
    assert received.text == "via the API"
    [record] = proxy.records_of("message")
    assert record["remote"] == "apisender"
    assert record["text"] == "via the API"


async def test_chat_messages_archived_with_room(proxy_factory, oscar_server):
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    try:
        room_a = await alice.join_chat("compliance-room")
        room_b = await bob.join_chat("compliance-room")
        await asyncio.sleep(0.3)
        await room_a.send("chat text Ж")
        received = await room_b.receive()
    finally:
        await alice.close()
        await bob.close()
    assert received.text == "chat text Ж"
    chats = proxy.records_of("chat")
    assert len(chats) == 2
    assert {r["direction"] for r in chats} == {"outbound", "inbound"}
    assert all(r["room"] == "compliance-room" for r in chats)
    assert all(r["text"] == "chat text Ж" for r in chats)
    assert all(r["charset"] == "ucs-2" for r in chats)


async def test_unchanged_frames_relay_byte_for_byte(proxy_factory, tmp_path):
    # A server of its own that hands out the tap's port, so BOS also passes the tap.
    tap = await TcpTap().start()
    server = start_oscar_server(tmp_path / "tapped-oscar", advertised_port=tap.port)
    tap.target = (server.host, server.port)
    proxy = await proxy_factory(upstream={"servers": [tap.address]})
    try:
        alice, bob = await pair(proxy, server)
        try:
            await alice.send_im(bob.screen_name, "byte for byte")
            await bob.receive_im()
            await asyncio.sleep(0.2)
        finally:
            await alice.close()
            await bob.close()
    finally:
        await tap.close()
        server.close()
    # Client to server: every byte the client sent on BOS reached the server as sent.
    sent = b"".join(alice.bos.sent)
    assert [d for d in tap.to_server if d.startswith(alice.bos.sent[0])] == [sent]
    # Server to client: channel and payload unchanged; sequences keep one offset.
    bob_stream = next(d for d in tap.to_client if _holds_im_for(d))
    from_server = split_frames(bob_stream)[1:]
    to_client = bob.bos.received[1:]
    assert len(to_client) >= 3
    pairs = list(zip(from_server, to_client, strict=False))
    assert [(s.channel, s.payload) for s, _ in pairs] == [(c.channel, c.payload) for _, c in pairs]
    offsets = {(c.sequence - s.sequence) % 0x10000 for s, c in pairs}
    assert len(offsets) == 1


def _holds_im_for(data: bytes) -> bool:
    for frame in split_frames(data):
        if frame.channel != Channel.DATA:
            continue
        snac = parse_snac(frame.payload)
        if (snac.family, snac.subtype) == (Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT):
            return True
    return False


@pytest.mark.parametrize("length", [1, 36, 256, 600])
async def test_cookie_bytes_pass_through(proxy_factory, oscar_server, length):
    """Cookies of any length reach the server exactly as the client presents them."""
    tap = await TcpTap((oscar_server.host, oscar_server.port)).start()
    proxy = await proxy_factory(upstream={"servers": [tap.address]})
    result = await login(
        "127.0.0.1",
        proxy.port,
        unique_screen_name(),
        "pw",
        local_addr=oscar_server.source_address(),
    )
    # The real cookie from the server passes unchanged to the client.
    login_reply = split_frames(tap.to_client[0])
    assert any(result.cookie in frame.payload for frame in login_reply)
    # A made-up cookie of another length reaches the default upstream byte for byte.
    cookie = (b"c00kie-" * 100)[:length]
    stream = await _present_cookie(proxy.port, cookie)
    await stream.close()
    await asyncio.sleep(0.1)
    await tap.close()
    hellos = [split_frames(data)[0] for data in tap.to_server[1:] if data]
    presented = [parse_hello(frame.payload).cookie for frame in hellos]
    assert cookie in presented


async def _present_cookie(port: int, cookie: bytes):
    from imtegrity_proxy.client import FlapStream
    from imtegrity_proxy.protocol.signon import encode_cookie_hello

    stream = await FlapStream.open("127.0.0.1", port)
    await stream.read()
    await stream.send(Channel.SIGNON, encode_cookie_hello(cookie))
    # The server answers an unknown cookie by closing; wait for that or a frame.
    try:
        await stream.read(timeout=3)
    except (ConnectionError, TimeoutError):
        pass
    return stream


async def test_empty_tlvs_and_ucs2_case_relayed(proxy_factory, tmp_path):
    """UCS-2 "asdasd" with an empty store-offline TLV reaches the server as sent, and both
    records keep the text."""
    # A server of its own that hands out the tap's port, so BOS also passes the tap.
    tap = await TcpTap().start()
    server = start_oscar_server(tmp_path / "tapped-oscar", advertised_port=tap.port)
    tap.target = (server.host, server.port)
    proxy = await proxy_factory(upstream={"servers": [tap.address]})
    body = bytes.fromhex("0501000201060101001000020000006100730064006100730064")
    sent_tlvs = (Tlv(0x0002, body), Tlv(0x0006, b""))

    try:
        alice, bob = await pair(proxy, server)
        try:
            await alice.send_im_tlvs(bob.screen_name, sent_tlvs)
            received = await bob.receive_im()
            await asyncio.sleep(0.2)
        finally:
            await alice.close()
            await bob.close()
    finally:
        await tap.close()
        server.close()

    # The server received both TLVs as the client sent them.
    at_server = [
        parse_icbm_send(snac)
        for data in tap.to_server
        for snac in _snacs(data, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_HOST)
    ]
    assert [icbm.tlvs for icbm in at_server] == [sent_tlvs]
    assert at_server[0].screen_name == bob.screen_name
    assert received.text == "asdasd"

    records = proxy.records_of("message")
    assert [(r["direction"], r["text"], r["charset"]) for r in records] == [
        ("outbound", "asdasd", "ucs-2"),
        ("inbound", "asdasd", "ucs-2"),
    ]


def _snacs(data: bytes, family: int, subtype: int):
    for frame in split_frames(data):
        if frame.channel != Channel.DATA:
            continue
        snac = parse_snac(frame.payload)
        if (snac.family, snac.subtype) == (family, subtype):
            yield snac
