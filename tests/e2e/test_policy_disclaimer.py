"""Disclaimers through the proxy against Open OSCAR Server: who sees what, and how often.

Alice signs on through the proxy; Bob is an external party signed on to the
server directly. Each test reads every frame both clients receive, so "exactly
once" means no other IM arrived before the connection went quiet.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from imtegrity_proxy.client import AimClient
from imtegrity_proxy.protocol import icbm
from imtegrity_proxy.protocol.enums import Family, IcbmSubtype
from imtegrity_proxy.protocol.snac import encode_snac
from imtegrity_proxy.relay.inject import TO_CLIENT_REQUEST_IDS

from tests.e2e.policy_proxy import drain, running_proxy, sequence_gaps, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e

OUTBOUND = "Outbound notice: {local} ({identity}) to {remote} on {date}, recorded."
INBOUND = "Inbound notice: {remote} to {local} at {time} {timezone}, recorded."


def policy(alice: str, scope: str, **disclaimer: object) -> dict[str, object]:
    return {
        "identities": {alice: "alice.smith@bank.example"},
        "disclaimer": {"outbound": OUTBOUND, "inbound": INBOUND, "scope": scope, **disclaimer},
    }


async def ims(client: AimClient) -> list[tuple[str, str]]:
    """Read until quiet; return (sender, plain text) of every IM that arrived."""
    frames = await drain(client.bos)
    found = []
    for snac in snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT):
        message = icbm.parse_icbm_receive(snac)
        body = message.message
        found.append((message.screen_name, body.plain if body is not None else ""))
    return found


def server_complaints(oscar: OscarServer, screen_name: str) -> list[str]:
    """Return the server's error and warning log lines about ``screen_name``."""
    lines = oscar.log_path.read_text(errors="replace").splitlines()
    name = f"screenName={screen_name.lower()}"
    return [
        line for line in lines if name in line and ("level=ERROR" in line or "level=WARN" in line)
    ]


def outbound_text(alice: str, bob: str, date: str) -> str:
    return f"Outbound notice: {alice} (alice.smith@bank.example) to {bob} on {date}, recorded."


async def test_outbound_disclaimer_once_per_day(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice, "conversation-day")) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        expected = outbound_text(alice, bob, today)

        await local.send_im(bob, "first message")
        assert await ims(remote) == [(alice, expected), (alice, "first message")]
        assert await ims(local) == [(bob, "[notice] " + expected)]

        await local.send_im(bob, "second message")
        assert await ims(remote) == [(alice, "second message")]
        await remote.send_im(alice, "a reply")
        assert await ims(local) == [(bob, "a reply")]
        assert await ims(remote) == []

        disclaimers = proxy.records(kind="disclaimer")
        assert len(disclaimers) == 1
        assert disclaimers[0]["direction"] == "outbound"
        assert disclaimers[0]["remote"] == bob.lower()
        assert disclaimers[0]["text"] == expected
        assert disclaimers[0]["identity"] == "alice.smith@bank.example"
        messages = proxy.records(kind="message")
        assert [m["text"] for m in messages] == ["first message", "second message", "a reply"]
        assert all(m["identity"] == "alice.smith@bank.example" for m in messages)
        first_disclaimer_id = disclaimers[0]["id"]
        assert first_disclaimer_id < messages[0]["id"]
        await local.close()
        await remote.close()


async def test_inbound_disclaimer_once_per_day(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    config = policy(alice, "conversation-day", timezone="Europe/Berlin")
    async with running_proxy(oscar_server, tmp_path, config) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await remote.send_im(alice, "hello from outside")
        seen_by_alice = await ims(local)
        assert len(seen_by_alice) == 2
        assert seen_by_alice[0][0] == bob
        assert seen_by_alice[0][1].startswith(f"[notice] Inbound notice: {bob} to {alice} at ")
        assert seen_by_alice[0][1].endswith(" Europe/Berlin, recorded.")
        assert seen_by_alice[1] == (bob, "hello from outside")
        seen_by_bob = await ims(remote)
        assert seen_by_bob == [(alice, seen_by_alice[0][1].removeprefix("[notice] "))]

        await remote.send_im(alice, "second from outside")
        assert await ims(local) == [(bob, "second from outside")]
        await local.send_im(bob, "answer")
        assert await ims(remote) == [(alice, "answer")]

        disclaimers = proxy.records(kind="disclaimer")
        assert len(disclaimers) == 1
        assert disclaimers[0]["direction"] == "inbound"
        assert disclaimers[0]["details"]["scope"] == "conversation-day"
        await local.close()
        await remote.close()


async def test_day_scope_resets_at_local_midnight(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    config = policy(alice, "conversation-day", timezone="America/New_York")
    async with running_proxy(oscar_server, tmp_path, config) as proxy:
        now = [datetime(2024, 3, 4, 23, 50, tzinfo=UTC)]  # 18:50 in New York
        assert proxy.server.context is not None
        proxy.server.context.policy.clock = lambda: now[0]
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await local.send_im(bob, "evening")
        assert await ims(remote) == [
            (alice, outbound_text(alice, bob, "2024-03-04")),
            (alice, "evening"),
        ]
        await ims(local)

        # Midnight in UTC, but still 19:10 on March 4 in New York: no new disclaimer.
        now[0] = datetime(2024, 3, 5, 0, 10, tzinfo=UTC)
        await local.send_im(bob, "after UTC midnight")
        assert await ims(remote) == [(alice, "after UTC midnight")]

        # 00:10 on March 5 in New York: a new day, so a new disclaimer.
        now[0] = datetime(2024, 3, 5, 5, 10, tzinfo=UTC)
        await local.send_im(bob, "next day")
        assert await ims(remote) == [
            (alice, outbound_text(alice, bob, "2024-03-05")),
            (alice, "next day"),
        ]
        assert await ims(local) == [(bob, "[notice] " + outbound_text(alice, bob, "2024-03-05"))]
        assert len(proxy.records(kind="disclaimer")) == 2
        await local.close()
        await remote.close()


async def test_session_scope_repeats_after_new_signon(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice, "session")) as proxy:
        remote = await proxy.sign_on_external(bob)
        for session in range(2):
            local = await proxy.sign_on(alice)
            await local.send_im(bob, f"session {session} first")
            await local.send_im(bob, f"session {session} second")
            received = await ims(remote)
            assert len(received) == 3
            assert received[0][1].startswith("Outbound notice: ")
            assert received[1:] == [
                (alice, f"session {session} first"),
                (alice, f"session {session} second"),
            ]
            notices = await ims(local)
            assert len(notices) == 1
            assert notices[0][1] == "[notice] " + received[0][1]
            # A reply in the same session brings no second disclaimer either way.
            await remote.send_im(alice, f"session {session} reply")
            assert await ims(local) == [(bob, f"session {session} reply")]
            assert await ims(remote) == []
            await local.close()
            await oscar_server.async_wait_for_session(alice, online=False)
        assert len(proxy.records(kind="disclaimer")) == 2
        await remote.close()


async def test_message_scope_precedes_every_message(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, policy(alice, "message")) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        for number in range(2):
            await local.send_im(bob, f"out {number}")
            received = [text.split(":")[0] for _, text in await ims(remote)]
            assert received == ["Outbound notice", f"out {number}"]
            assert len(await ims(local)) == 1
        for number in range(2):
            await remote.send_im(alice, f"in {number}")
            seen = [text.split(":")[0] for _, text in await ims(local)]
            assert seen == ["[notice] Inbound notice", f"in {number}"]
            assert len(await ims(remote)) == 1
        assert len(proxy.records(kind="disclaimer")) == 4
        await local.close()
        await remote.close()


async def test_injected_frames_leave_no_trace(oscar_server: OscarServer, tmp_path: Path) -> None:
    """Server acks of injected IMs never reach the client, and its sequence has no gap.

    Open OSCAR Server drops IM sends beyond about eight in quick succession (its
    rate class 3), and injected disclaimers count too, so this test sends six.
    """
    alice, bob, offline = (unique_screen_name(p) for p in ("Al", "Bo", "Off"))
    async with running_proxy(oscar_server, tmp_path, policy(alice, "conversation-day")) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        for number in range(3):
            await local.send_im(bob, f"with ack {number}", ack=True)
            await remote.send_im(alice, f"reply {number}")
        request_id = await local.send_im(offline, "nobody home")
        frames = await drain(local.bos)
        await ims(remote)

        acks = snacs_of(frames, Family.ICBM, IcbmSubtype.HOST_ACK)
        assert [ack.request_id for ack in acks] == [2, 3, 4]
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        received = snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
        notices = [snac for snac in received if snac.request_id >= TO_CLIENT_REQUEST_IDS]
        assert len(notices) == 2  # the disclaimers to Bob and to the offline party
        assert len(received) == 2 + 3

        assert sequence_gaps(local.bos.received) == []
        assert await oscar_server.async_wait_for_session(alice) is not None
        # Open OSCAR Server v0.22.0 logs a client's protocol faults as errors or
        # warnings on its session; it does not check incoming sequence numbers.
        assert server_complaints(oscar_server, alice) == []
        await local.close()
        await remote.close()


async def test_disclaimer_over_server_limit_withholds(
    oscar_server: OscarServer, tmp_path: Path
) -> None:
    """The limit the server advertises replaces the configured one once it passes."""
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    long_text = "This conversation is supervised. " * 18  # 594 bytes
    config = {
        "identities": {alice: "alice.smith@bank.example"},
        "disclaimer": {"outbound": long_text, "max_message_bytes": 2000},
    }
    async with running_proxy(oscar_server, tmp_path, config) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        await local.bos.send_snac(
            encode_snac(Family.ICBM, IcbmSubtype.PARAMETER_QUERY, local.bos.next_request_id(), b"")
        )
        await local.bos.read_snac(Family.ICBM, IcbmSubtype.PARAMETER_REPLY)

        request_id = await local.send_im(bob, "must not go out")
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        notices = snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
        assert len(notices) == 1
        notice = icbm.parse_icbm_receive(notices[0]).message
        assert notice is not None
        assert "limit of 512 bytes" in notice.plain
        assert await ims(remote) == []

        blocked = proxy.records(kind="message", action="blocked")
        assert [record["text"] for record in blocked] == ["must not go out"]
        assert proxy.records(kind="disclaimer") == []
        await local.close()
        await remote.close()
