"""Content rules through the proxy: block, redact and flag, in IMs and chat, ASCII and UCS-2.

Alice signs on through the proxy; Bob is an external party on the server
directly. The archive must keep what the sender wrote, with the action and the
rule, whatever the receiver got.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from imtegrity_proxy.client import AimClient, ChatRoom, ReceivedMessage
from imtegrity_proxy.protocol import chat, icbm
from imtegrity_proxy.protocol.enums import ChatSubtype, ErrorCode, Family, IcbmSubtype
from imtegrity_proxy.protocol.oservice import parse_error
from imtegrity_proxy.relay.inject import TO_CLIENT_REQUEST_IDS

from tests.e2e.policy_proxy import PolicyProxy, drain, running_proxy, sequence_gaps, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e

RULES = [
    {
        "name": "no-guarantees",
        "pattern": "(?i)guaranteed? returns?",
        "action": "block",
        "notice": "Promissory language is not allowed.",
    },
    {"name": "secret-ru", "pattern": "секрет", "action": "block"},
    {"name": "account-numbers", "pattern": r"\b\d{8,12}\b", "action": "redact"},
    {
        "name": "tax-ids",
        "pattern": r"\b\d{3}-\d{2}-\d{4}\b",
        "action": "redact",
        "replacement": "*",
        "applies_to": ["im"],
    },
    {"name": "insider", "pattern": "(?i)insider", "action": "flag"},
]


def content_policy(alice: str) -> dict[str, object]:
    return {"identities": {alice: "alice.smith@bank.example"}, "rules": RULES}


async def received_ims(client: AimClient) -> list[ReceivedMessage]:
    """Read until quiet; return every IM that arrived, decoded."""
    messages = []
    for snac in snacs_of(await drain(client.bos), Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT):
        parsed = icbm.parse_icbm_receive(snac)
        body = parsed.message
        assert body is not None
        received = ReceivedMessage(parsed.screen_name, body.plain, body.markup, body.charset_name)
        messages.append(received)
    return messages


def last_record(proxy: PolicyProxy, **fields: object) -> dict[str, object]:
    found = proxy.records(**fields)
    assert found, f"no archive record with {fields}"
    return found[-1]


async def test_im_block_ascii_and_ucs2(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, content_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        request_id = await local.send_im(bob, "We offer GUARANTEED returns!")
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        assert parse_error(errors[0]).code == ErrorCode.REQUEST_DENIED
        notices = snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
        assert len(notices) == 1
        notice = icbm.parse_icbm_receive(notices[0])
        assert notice.screen_name == bob
        assert notice.message is not None
        assert notice.message.plain == "[notice] Promissory language is not allowed."
        assert notices[0].request_id >= TO_CLIENT_REQUEST_IDS

        await local.send_im(bob, "это секрет")
        ucs2_notices = await received_ims(local)
        assert [m.text for m in ucs2_notices] == [
            "[notice] This message was blocked by the compliance policy (rule secret-ru)."
        ]
        assert await received_ims(remote) == []

        blocked = proxy.records(kind="message", action="blocked")
        assert [r["text"] for r in blocked] == ["We offer GUARANTEED returns!", "это секрет"]
        assert [r["rule"] for r in blocked] == ["no-guarantees", "secret-ru"]
        assert [r["charset"] for r in blocked] == ["ascii", "ucs-2"]
        notice_records = proxy.records(kind="notice")
        assert [r["rule"] for r in notice_records] == ["no-guarantees", "secret-ru"]
        assert sequence_gaps(local.bos.received) == []
        await local.close()
        await remote.close()


async def test_im_redact_keeps_markup_and_charset(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, content_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await local.send_im(bob, "account 12345678 please")
        html = (
            '<HTML><BODY><FONT COLOR="#123456789">acct 123456789 &amp; more</FONT></BODY></HTML>'
        )
        await local.send_im(bob, html)
        await local.send_im(bob, "tax id 123-45-6789")
        await local.send_im(bob, "номер 12345678 👋")
        got = await received_ims(remote)

        assert got[0].text == "account ████████ please"
        assert got[0].charset == "ucs-2"  # ASCII cannot hold U+2588, so the fragment moved
        assert got[1].html == (
            '<HTML><BODY><FONT COLOR="#123456789">acct █████████ &amp; more</FONT></BODY></HTML>'
        )
        assert got[2].text == "tax id ***********"
        assert got[2].charset == "ascii"
        assert got[3].text == "номер ████████ 👋"
        assert got[3].charset == "ucs-2"
        assert len(got) == 4

        redacted = proxy.records(kind="message", action="redacted")
        assert [r["text"] for r in redacted] == [
            "account 12345678 please",
            "acct 123456789 & more",
            "tax id 123-45-6789",
            "номер 12345678 👋",
        ]
        assert [r["rule"] for r in redacted] == [
            "account-numbers",
            "account-numbers",
            "tax-ids",
            "account-numbers",
        ]
        assert redacted[1]["html"] == html
        assert redacted[3]["details"]["delivered_text"] == "номер ████████ 👋"
        assert await received_ims(local) == []  # redactions without a notice are silent
        await local.close()
        await remote.close()


async def test_im_flag_delivers_unchanged(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, content_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        await local.send_im(bob, "any insider news?")
        await local.send_im(bob, "инсайдер? Insider!")
        got = await received_ims(remote)
        assert [m.text for m in got] == ["any insider news?", "инсайдер? Insider!"]
        flagged = proxy.records(kind="message", action="flagged")
        assert [r["rule"] for r in flagged] == ["insider", "insider"]
        assert [r["charset"] for r in flagged] == ["ascii", "ucs-2"]
        assert await received_ims(local) == []
        await local.close()
        await remote.close()


async def test_inbound_im_rules(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, content_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        await remote.send_im(alice, "guaranteed return, trust me")
        await remote.send_im(alice, "my account 1234567890")
        await remote.send_im(alice, "insider tip")
        got = await received_ims(local)
        assert [(m.sender, m.text) for m in got] == [
            (bob, "[notice] Promissory language is not allowed."),
            (bob, "my account ██████████"),
            (bob, "insider tip"),
        ]
        assert await received_ims(remote) == []  # the external sender gets no notice
        inbound = proxy.records(kind="message", direction="inbound")
        assert [(r["action"], r["rule"]) for r in inbound] == [
            ("blocked", "no-guarantees"),
            ("redacted", "account-numbers"),
            ("flagged", "insider"),
        ]
        assert inbound[0]["text"] == "guaranteed return, trust me"
        assert inbound[1]["text"] == "my account 1234567890"
        await local.close()
        await remote.close()


async def chat_messages(room: ChatRoom) -> list[tuple[str, str, str]]:
    """Read until quiet; return (sender, text, encoding) of each room message from others."""
    own = room.client.screen_name.lower()
    found = []
    for snac in snacs_of(await drain(room.stream), Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT):
        message = chat.parse_chat_receive(snac)
        sender = message.sender.screen_name if message.sender is not None else ""
        if sender.replace(" ", "").lower() != own:
            found.append((sender, message.plain, message.encoding or ""))
    return found


async def test_chat_rules_both_directions(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    room_name = unique_screen_name("room")
    async with running_proxy(oscar_server, tmp_path, content_policy(alice)) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        local_room = await local.join_chat(room_name)
        remote_room = await remote.join_chat(room_name)
        await drain(local_room.stream)
        await drain(remote_room.stream)

        await local_room.send("guaranteed returns in here")
        frames = await drain(local_room.stream)
        errors = snacs_of(frames, Family.CHAT, ChatSubtype.ERROR)
        assert len(errors) == 1
        shown = [
            chat.parse_chat_receive(snac).plain
            for snac in snacs_of(frames, Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT)
        ]
        assert shown == ["[notice] Promissory language is not allowed."]

        await local_room.send("account 12345678")
        await local_room.send("номер 12345678")
        await local_room.send("insider info")
        assert await chat_messages(remote_room) == [
            (alice, "account ████████", "unicode-2-0"),
            (alice, "номер ████████", "unicode-2-0"),
            (alice, "insider info", "us-ascii"),
        ]

        await remote_room.send("guaranteed returns from me")
        await remote_room.send("мой секрет")
        await remote_room.send("call 123456789")
        assert await chat_messages(local_room) == [
            ("IMtegrity", "[notice] Promissory language is not allowed.", "us-ascii"),
            (
                "IMtegrity",
                "[notice] A message from "
                + bob
                + " was blocked by the compliance policy (rule secret-ru).",
                "us-ascii",
            ),
            (bob, "call █████████", "unicode-2-0"),
        ]

        records = proxy.records(kind="chat")
        assert [(r["direction"], r["action"], r["rule"], r["text"]) for r in records] == [
            ("outbound", "blocked", "no-guarantees", "guaranteed returns in here"),
            ("outbound", "redacted", "account-numbers", "account 12345678"),
            ("outbound", "redacted", "account-numbers", "номер 12345678"),
            ("outbound", "flagged", "insider", "insider info"),
            ("inbound", "blocked", "no-guarantees", "guaranteed returns from me"),
            ("inbound", "blocked", "secret-ru", "мой секрет"),
            ("inbound", "redacted", "account-numbers", "call 123456789"),
        ]
        assert all(r["room"] == room_name for r in records)
        assert all(r["identity"] == "alice.smith@bank.example" for r in records)
        assert sequence_gaps(local_room.stream.received) == []
        await local.close()
        await remote.close()
