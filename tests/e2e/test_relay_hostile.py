"""Hostile input through the proxy against Open OSCAR Server: text on channels
other than 1, bodies the proxy cannot decode, chat room naming, content-rule
spellings, screen names that do not re-encode, whispers and client errors.

Alice signs on through the proxy. Bob, the external party, signs on to the
server directly, so whatever he sends reaches the proxy only as the server
relays it. Open OSCAR Server v0.22.0 copies ICBM TLVs from the sender to the
receiver unchanged (``ICBMService.ChannelMsgToHost``), which lets Bob hand the
proxy bodies that a real client never sends.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy.client import AimClient, FlapStream
from imtegrity_proxy.protocol import chat, icbm, oservice, rendezvous, signon
from imtegrity_proxy.protocol.buffer import u16
from imtegrity_proxy.protocol.enums import (
    Channel,
    ChatSubtype,
    ErrorCode,
    Family,
    IcbmSubtype,
    OServiceSubtype,
)
from imtegrity_proxy.protocol.flap import Flap
from imtegrity_proxy.protocol.oservice import parse_error
from imtegrity_proxy.protocol.snac import encode_snac
from imtegrity_proxy.protocol.tlv import Tlv

from tests.e2e.policy_proxy import PolicyProxy, drain, running_proxy, sequence_gaps, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e

SECRET_RULE = {"name": "no-secrets", "pattern": "(?i)secret", "action": "block"}
UNREADABLE = "unreadable-message"


def policy(alice: str, **fields: Any) -> dict[str, Any]:
    return {"identities": {alice: "alice@bank.example"}, "rules": [SECRET_RULE], **fields}


def icq_tlv(text: bytes, message_type: int = 0x01) -> Tlv:
    """Channel-4 TLV 0x05 from UIN 12345; the encoder adds the closing NUL."""
    return Tlv(0x0005, icbm.encode_icq_message(12345, message_type, 0, text))


def invitation_tlv(text: str) -> Tlv:
    room = u16(4) + bytes([len(b"4-0-desk")]) + b"4-0-desk" + u16(0)
    return rendezvous.encode_chat_invitation(os.urandom(8), room, text)


def incoming(frames: list[Flap]) -> list[icbm.Icbm]:
    """Return the ICBMs among ``frames`` that the client received, decoded."""
    found = snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
    return [icbm.parse_icbm_receive(snac) for snac in found]


def notice_texts(received: list[icbm.Icbm]) -> list[str]:
    return [m.message.plain for m in received if m.message is not None and m.channel == 1]


async def check_still_open(proxy: PolicyProxy, local: AimClient, remote: AimClient) -> None:
    """Bob reaches Alice with a normal IM, so her session was kept open."""
    await remote.send_im(local.screen_name, "still here")
    texts = notice_texts(incoming(await drain(local.bos)))
    assert texts[-1:] == ["still here"]


# Text outside channel 1


async def test_channel4_text_archived_and_ruled(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await remote.send_im_tlvs(alice, (icq_tlv(b"lunch at noon"),), channel=4)
        delivered = incoming(await drain(local.bos))
        assert [m.channel for m in delivered] == [4]
        await remote.send_im_tlvs(alice, (icq_tlv(b"the SECRET plan"),), channel=4)
        withheld = incoming(await drain(local.bos))
        assert [m.channel for m in withheld] == [1]  # only the notice
        assert "no-secrets" in notice_texts(withheld)[0]

        request_id = await local.send_im_tlvs(bob, (icq_tlv(b"a secret for you"),), 4)
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        assert incoming(await drain(remote.bos, quiet=0.3)) == []
        assert sequence_gaps(local.bos.received) == []

    records = proxy.records(kind="message")
    assert [(r["direction"], r["action"], r["text"]) for r in records] == [
        ("inbound", "delivered", "lunch at noon"),
        ("inbound", "blocked", "the SECRET plan"),
        ("outbound", "blocked", "a secret for you"),
    ]
    assert records[0]["charset"] == "ascii"
    assert records[1]["rule"] == "no-secrets"
    assert records[2]["rule"] == "no-secrets"


async def test_chat_invitation_text_archived_and_ruled(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await remote.send_im_tlvs(alice, (invitation_tlv("Join us, Привет"),), channel=2)
        assert [m.channel for m in incoming(await drain(local.bos))] == [2]
        await remote.send_im_tlvs(alice, (invitation_tlv("the <b>secret</b> room"),), channel=2)
        withheld = incoming(await drain(local.bos))
        assert [m.channel for m in withheld] == [1]

    records = proxy.records(kind="rendezvous")
    assert [(r["action"], r["text"]) for r in records] == [
        ("delivered", "Join us, Привет"),
        ("blocked", "the secret room"),
    ]
    assert records[0]["charset"] == "ucs-2"
    assert records[1]["html"] == "the <b>secret</b> room"
    assert records[1]["rule"] == "no-secrets"


async def test_unknown_channel_withheld_as_unreadable(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await remote.send_im_tlvs(alice, icbm.text_message_tlvs("secret on 3"), channel=3)
        received = incoming(await drain(local.bos))
        assert [m.channel for m in received] == [1]
        assert "could not read" in notice_texts(received)[0]
        await check_still_open(proxy, local, remote)

    [record] = proxy.records(kind="message", action="blocked")
    assert record["rule"] == UNREADABLE
    assert record["remote"] == bob.lower()
    assert record["text"] is None
    assert record["details"]["icbm_channel"] == 3


# Bodies the proxy cannot decode

MALFORMED = {
    # A fragment whose length (0x0010) runs past the end of TLV 0x02.
    "fragment-overflow": (1, Tlv(0x0002, bytes.fromhex("0501 0001 01 0101 0010 0000 0000 41"))),
    # A text fragment too short for its charset and subset.
    "truncated-charset": (1, Tlv(0x0002, bytes.fromhex("0501 0001 01 0101 0002 0000"))),
    # A rendezvous ICBM without its rendezvous TLV 0x05.
    "channel2-no-tlv5": (2, Tlv(0x0003, b"")),
    # A channel-4 text without its NUL.
    "channel4-no-nul": (4, Tlv(0x0005, bytes.fromhex("39300000 01 00 0200 6869"))),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_inbound_im_keeps_session(
    oscar_server: OscarServer, tmp_path: Path, case: str
) -> None:
    channel, tlv = MALFORMED[case]
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await remote.send_im_tlvs(alice, (tlv,), channel=channel)
        received = incoming(await drain(local.bos))
        assert [m.channel for m in received] == [1]
        assert "could not read" in notice_texts(received)[0]
        await check_still_open(proxy, local, remote)
        assert sequence_gaps(local.bos.received) == []

    [record] = proxy.records(kind="message", action="blocked")
    assert record["direction"] == "inbound"
    assert record["rule"] == UNREADABLE
    assert record["text"] is None
    assert record["details"]["decode_error"]
    assert record["details"]["icbm_channel"] == channel


async def test_malformed_outbound_im_keeps_session(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        channel, tlv = MALFORMED["fragment-overflow"]
        request_id = await local.send_im_tlvs(bob, (tlv,), channel=channel)
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        assert parse_error(errors[0]).code == ErrorCode.REQUEST_DENIED
        assert incoming(await drain(remote.bos, quiet=0.3)) == []

        await local.send_im(bob, "after the bad one")
        assert notice_texts(incoming(await drain(remote.bos))) == ["after the bad one"]
        assert sequence_gaps(local.bos.received) == []

    [record] = proxy.records(kind="message", action="blocked")
    assert record["direction"] == "outbound"
    assert record["rule"] == UNREADABLE
    assert record["remote"] == bob.lower()
    assert "fragment" in record["details"]["decode_error"]


# Chat room naming


async def test_rejected_chat_request_leaves_no_room_name(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice = unique_screen_name("Al")
    deny_rumor = {"name": "no-rumor-rooms", "action": "deny", "room": "rumor*"}
    async with running_proxy(
        oscar_server, tmp_path, policy(alice, remote_parties=[deny_rumor])
    ) as proxy:
        local = await proxy.sign_on(alice)
        # Open OSCAR Server rejects a service request for SSL (TLV 0x8C) on a listener
        # without SSL, with an OSERVICE error that echoes the request id.
        request_id = local.bos.next_request_id()
        tlvs = (oservice.chat_room_tlv(4, "4-0-harmless", 0), Tlv(0x008C, b""))
        await local.bos.send_snac(oservice.encode_service_request(request_id, Family.CHAT, tlvs))
        error = await local.bos.read_snac(Family.OSERVICE, OServiceSubtype.ERROR)
        assert error.request_id == request_id

        room_stream = await open_room_without_client_online(local, "rumor-desk")
        await room_stream.send_snac(
            chat.encode_chat_send(room_stream.next_request_id(), os.urandom(8), "buy now")
        )
        frames = await drain(room_stream)
        assert snacs_of(frames, Family.CHAT, ChatSubtype.ERROR)
        await room_stream.close()

    [record] = proxy.records(kind="chat")
    assert record["room"] == "rumor-desk"
    assert record["action"] == "blocked"
    assert record["rule"] == "no-rumor-rooms"


async def open_room_without_client_online(client: AimClient, room: str) -> FlapStream:
    """Join ``room`` and open its chat connection, but send no client-online.

    The server then sends no room info update, so the proxy learns the room only
    from the service request.
    """
    nav = await client.request_service(Family.CHAT_NAV)
    await nav.send_snac(chat.encode_create_room(nav.next_request_id(), 4, room))
    info = chat.parse_nav_info_room(await nav.read_snac(Family.CHAT_NAV, 0x0009))
    request_id = client.bos.next_request_id()
    tlv = oservice.chat_room_tlv(info.exchange, info.cookie, info.instance)
    await client.bos.send_snac(oservice.encode_service_request(request_id, Family.CHAT, (tlv,)))
    reply = await client.bos.read_snac(Family.OSERVICE, OServiceSubtype.SERVICE_RESPONSE)
    redirect = oservice.parse_redirect(reply)
    assert redirect.host is not None
    assert redirect.cookie is not None
    port = redirect.port or client.bos.writer.get_extra_info("peername")[1]
    stream = await FlapStream.open(redirect.host, port, client.local_addr)
    client.services.append(stream)
    await stream.read()
    await stream.send(Channel.SIGNON, signon.encode_cookie_hello(redirect.cookie))
    await stream.read_snac(Family.OSERVICE, OServiceSubtype.HOST_ONLINE)
    return stream


# Content rule spellings

SPELLINGS = [
    "se&#99;ret",
    "se&#x63;ret",
    "se<sub></sub>cret",
    "se<!-- x -->cret",
    "se\u00adcret",
    "se\u200bcret",
    "se\u200ccret",
    "se\u200dcret",
    "se\u2060cret",
    "se\ufeffcret",
]


async def test_rule_matches_every_spelling(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        request_ids = [await local.send_im(bob, text) for text in SPELLINGS]
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == request_ids
        assert incoming(await drain(remote.bos, quiet=0.3)) == []

    records = proxy.records(kind="message")
    assert [r["action"] for r in records] == ["blocked"] * len(SPELLINGS)
    assert [r["text"] for r in records] == ["secret"] * len(SPELLINGS)
    assert [r["html"] for r in records] == SPELLINGS


# Screen names that do not re-encode

# 200 bytes that are not UTF-8: each decodes to U+FFFD, three bytes again.
UNENCODABLE_NAME = b"\xff" * 200


async def send_to_raw_name(client: AimClient, name: bytes, text: str) -> int:
    request_id = client.bos.next_request_id()
    tlvs = icbm.text_message_tlvs(text)
    body = os.urandom(8) + u16(1) + bytes([len(name)]) + name
    body += b"".join(tlv.to_bytes() for tlv in tlvs)
    await client.bos.send_snac(
        encode_snac(Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_HOST, request_id, body)
    )
    return request_id


@pytest.mark.parametrize("case", ["notice", "disclaimer"])
async def test_unencodable_recipient_keeps_session(
    oscar_server: OscarServer, tmp_path: Path, case: str
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    fields: dict[str, Any] = {}
    if case == "disclaimer":
        fields["disclaimer"] = {"outbound": "This conversation is recorded."}
    text = "a secret" if case == "notice" else "hello"
    async with running_proxy(oscar_server, tmp_path, policy(alice, **fields)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        request_id = await send_to_raw_name(local, UNENCODABLE_NAME, text)
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        [notice] = incoming(frames)
        assert notice.screen_name == "IMtegrity"

        await local.send_im(bob, "next message")
        received = notice_texts(incoming(await drain(remote.bos)))
        assert received[-1:] == ["next message"]

    [record] = proxy.records(kind="message", action="blocked")
    assert record["direction"] == "outbound"


# Whispers and client errors


async def test_whisper_target_archived_and_ruled(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, rival, carol = (unique_screen_name(p) for p in ("Al", "Rival", "Ca"))
    deny_rival = {"name": "no-rivals", "action": "deny", "remote": "rival*"}
    async with running_proxy(
        oscar_server, tmp_path, policy(alice, remote_parties=[deny_rival])
    ) as proxy:
        local = await proxy.sign_on(alice)
        other = await proxy.sign_on_external(rival)
        friend = await proxy.sign_on_external(carol)
        room_name = unique_screen_name("room")
        local_room = await local.join_chat(room_name)
        rival_room = await other.join_chat(room_name)
        carol_room = await friend.join_chat(room_name)
        await drain(local_room.stream)

        for target in (rival, carol):
            await local_room.stream.send_snac(
                chat.encode_chat_send(
                    local_room.stream.next_request_id(), os.urandom(8), "just you", target
                )
            )
        frames = await drain(local_room.stream)
        assert len(snacs_of(frames, Family.CHAT, ChatSubtype.ERROR)) == 1
        rival_got = snacs_of(await drain(rival_room.stream), Family.CHAT, 6)
        carol_got = snacs_of(await drain(carol_room.stream), Family.CHAT, 6)
        assert rival_got == []
        assert len(carol_got) == 1

    records = proxy.records(kind="chat", direction="outbound")
    assert [(r["remote"], r["action"], r["rule"]) for r in records] == [
        (rival.lower(), "blocked", "no-rivals"),
        (carol.lower(), "delivered", None),
    ]


async def test_client_error_to_denied_party_withheld(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, rival = unique_screen_name("Al"), unique_screen_name("Rival")
    deny_rival = {"name": "no-rivals", "action": "deny", "remote": "rival*"}
    async with running_proxy(
        oscar_server, tmp_path, policy(alice, remote_parties=[deny_rival])
    ) as proxy:
        local = await proxy.sign_on(alice)
        other = await proxy.sign_on_external(rival)
        info = b"\x00\x00free text for you"

        request_id = other.bos.next_request_id()
        await other.bos.send_snac(
            icbm.encode_client_error(request_id, os.urandom(8), 2, alice, 0x0003, info)
        )
        frames = await drain(local.bos)
        assert snacs_of(frames, Family.ICBM, IcbmSubtype.CLIENT_ERR) == []

        request_id = local.bos.next_request_id()
        await local.bos.send_snac(
            icbm.encode_client_error(request_id, os.urandom(8), 2, rival, 0x0003, info)
        )
        frames = await drain(other.bos)
        assert snacs_of(frames, Family.ICBM, IcbmSubtype.CLIENT_ERR) == []

        # The same client error from an allowed party passes, so the check can fail.
        carol = unique_screen_name("Ca")
        friend = await proxy.sign_on_external(carol)
        request_id = friend.bos.next_request_id()
        await friend.bos.send_snac(
            icbm.encode_client_error(request_id, os.urandom(8), 2, alice, 0x0003, info)
        )
        frames = await drain(local.bos)
        assert len(snacs_of(frames, Family.ICBM, IcbmSubtype.CLIENT_ERR)) == 1
        assert sequence_gaps(local.bos.received) == []
