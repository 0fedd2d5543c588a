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
from imtegrity_proxy.protocol import chat, icbm, oservice, signon
from imtegrity_proxy.protocol.enums import (
    Channel,
    ChatSubtype,
    Family,
    IcbmSubtype,
    OServiceSubtype,
)
from imtegrity_proxy.protocol.flap import Flap
from imtegrity_proxy.protocol.tlv import Tlv

from tests.e2e.policy_proxy import PolicyProxy, drain, running_proxy, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e

SECRET_RULE = {"name": "no-secrets", "pattern": "(?i)secret", "action": "block"}
UNREADABLE = "unreadable-message"


def policy(alice: str, **fields: Any) -> dict[str, Any]:
    return {"identities": {alice: "alice@bank.example"}, "rules": [SECRET_RULE], **fields}


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
