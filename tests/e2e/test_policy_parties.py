"""Remote-party rules through the proxy: ordered allow and deny, in IMs and chat rooms."""

from __future__ import annotations

from pathlib import Path

import pytest
from imtegrity_proxy.client import AimClient
from imtegrity_proxy.protocol import chat, icbm
from imtegrity_proxy.protocol.enums import ChatSubtype, Family, IcbmSubtype

from tests.e2e.policy_proxy import drain, running_proxy, sequence_gaps, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e


def party_policy(alice: str) -> dict[str, object]:
    return {
        "identities": {alice: "alice.smith@bank.example"},
        "groups": {"traders": ["alice.smith@bank.example"]},
        "remote_parties": [
            {"name": "compliance-desk", "action": "allow", "local": "*", "remote": "compliance*"},
            {
                "name": "no-competitors",
                "action": "deny",
                "local": "group:traders",
                "remote": "comp*",
                "notice": "Contact with competitors is not allowed.",
            },
            {"name": "no-rumor-rooms", "action": "deny", "room": "rumor*"},
        ],
    }


async def ims(client: AimClient) -> list[tuple[str, str]]:
    """Read until quiet; return (sender, plain text) of every IM that arrived."""
    found = []
    for snac in snacs_of(await drain(client.bos), Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT):
        message = icbm.parse_icbm_receive(snac)
        body = message.message
        found.append((message.screen_name, body.plain if body is not None else ""))
    return found


async def test_denied_party_both_directions(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, rival, desk = (unique_screen_name(p) for p in ("Al", "Comp", "Compliance"))
    async with running_proxy(oscar_server, tmp_path, party_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        competitor = await proxy.sign_on_external(rival)
        compliance = await proxy.sign_on_external(desk)

        request_id = await local.send_im(rival, "want to compare prices?")
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        notices = snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
        assert len(notices) == 1
        notice = icbm.parse_icbm_receive(notices[0])
        assert notice.screen_name == rival
        assert notice.message is not None
        assert notice.message.plain == "[notice] Contact with competitors is not allowed."

        await competitor.send_im(alice, "psst, prices?")
        assert await ims(local) == [(rival, "[notice] Contact with competitors is not allowed.")]
        assert await ims(competitor) == []

        # The allow rule comes first, so "compliance*" passes although it matches "comp*".
        await local.send_im(desk, "reporting a contact attempt")
        assert await ims(compliance) == [(alice, "reporting a contact attempt")]

        blocked = proxy.records(action="blocked")
        assert [(r["direction"], r["remote"], r["rule"]) for r in blocked] == [
            ("outbound", rival.lower(), "no-competitors"),
            ("inbound", rival.lower(), "no-competitors"),
        ]
        assert [r["text"] for r in blocked] == ["want to compare prices?", "psst, prices?"]
        delivered = proxy.records(kind="message", action="delivered")
        assert [r["remote"] for r in delivered] == [desk.lower()]
        assert sequence_gaps(local.bos.received) == []
        for client in (local, competitor, compliance):
            await client.close()


async def test_denied_chat_room(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    room_name = unique_screen_name("rumor")
    async with running_proxy(oscar_server, tmp_path, party_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        local_room = await local.join_chat(room_name)
        remote_room = await remote.join_chat(room_name)
        await drain(local_room.stream)
        await drain(remote_room.stream)

        await local_room.send("heard anything?")
        frames = await drain(local_room.stream)
        assert len(snacs_of(frames, Family.CHAT, ChatSubtype.ERROR)) == 1
        shown = [
            chat.parse_chat_receive(snac).plain
            for snac in snacs_of(frames, Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT)
        ]
        assert shown == [
            "[notice] Chat in " + room_name + " is not allowed (rule no-rumor-rooms)."
        ]
        remote_frames = await drain(remote_room.stream)
        assert snacs_of(remote_frames, Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT) == []

        await remote_room.send("big merger coming")
        await remote_room.send("tell nobody")
        frames = await drain(local_room.stream)
        shown = [
            chat.parse_chat_receive(snac).plain
            for snac in snacs_of(frames, Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT)
        ]
        assert len(shown) == 1  # one notice per room, and no room message
        assert shown[0].startswith(f"[notice] Messages in {room_name} are withheld")

        records = proxy.records(kind="chat")
        assert [(r["direction"], r["action"], r["rule"]) for r in records] == [
            ("outbound", "blocked", "no-rumor-rooms"),
            ("inbound", "blocked", "no-rumor-rooms"),
            ("inbound", "blocked", "no-rumor-rooms"),
        ]
        assert [r["text"] for r in records] == [
            "heard anything?",
            "big merger coming",
            "tell nobody",
        ]
        assert sequence_gaps(local_room.stream.received) == []
        await local.close()
        await remote.close()
