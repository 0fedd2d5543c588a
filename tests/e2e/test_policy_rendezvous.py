"""Rendezvous policy through the proxy: file transfers are blocked by default, invitations pass."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from imtegrity_proxy.client import AimClient
from imtegrity_proxy.metrics import ProxyMetrics
from imtegrity_proxy.protocol import icbm
from imtegrity_proxy.protocol.buffer import u16
from imtegrity_proxy.protocol.enums import Family, IcbmChannel, IcbmSubtype, IcbmTlv
from imtegrity_proxy.protocol.rendezvous import (
    Capability,
    encode_send_file_proposal,
    parse_rendezvous,
)
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs

from tests.e2e.policy_proxy import drain, running_proxy, sequence_gaps, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name

pytestmark = pytest.mark.e2e

FILE_NAME = "q3-report.xlsx"
FILE_SIZE = 48213


async def propose_file(sender: AimClient, recipient: str) -> int:
    proposal = encode_send_file_proposal(os.urandom(8), FILE_NAME, FILE_SIZE, bytes(4), 5190)
    return await sender.send_im_tlvs(recipient, (proposal,), channel=IcbmChannel.RENDEZVOUS)


async def invite_to_chat(sender: AimClient, recipient: str) -> int:
    room = b"4-0-chatroom"
    service_data = u16(4) + bytes([len(room)]) + room + u16(0)
    tlvs = (Tlv(0x000A, u16(1)), Tlv(0x2711, service_data))
    head = u16(0) + os.urandom(8) + Capability.CHAT_INVITE.value.bytes
    invitation = Tlv(IcbmTlv.RENDEZVOUS, head + encode_tlvs(tlvs))
    return await sender.send_im_tlvs(recipient, (invitation,), channel=IcbmChannel.RENDEZVOUS)


async def received(client: AimClient) -> list[icbm.Icbm]:
    frames = await drain(client.bos)
    found = snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
    return [icbm.parse_icbm_receive(snac) for snac in found]


def rendezvous_blocked(metrics: ProxyMetrics) -> float:
    """Return the blocked-rendezvous counter; Prometheus omits a counter never incremented."""
    text = metrics.render_prometheus().decode()
    found = re.search(r"^imtegrity_rendezvous_blocked_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def identities(alice: str) -> dict[str, str]:
    return {alice: "alice.smith@bank.example"}


async def test_send_file_blocked_by_default(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, {"identities": identities(alice)}) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        request_id = await propose_file(local, bob)
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        notices = [
            icbm.parse_icbm_receive(snac)
            for snac in snacs_of(frames, Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
        ]
        assert len(notices) == 1
        assert notices[0].screen_name == bob
        assert notices[0].message is not None
        assert notices[0].message.plain == (
            f'[notice] a file transfer of "{FILE_NAME}" ({FILE_SIZE} bytes) to {bob} was '
            "blocked. File transfers and direct connections are not allowed by the "
            "compliance policy."
        )
        assert await received(remote) == []

        await propose_file(remote, alice)
        shown = await received(local)
        assert len(shown) == 1
        assert shown[0].channel == IcbmChannel.IM
        assert shown[0].message is not None
        assert shown[0].message.plain.startswith(f"[notice] {bob} proposed a file transfer")

        attempts = proxy.records(kind="rendezvous")
        assert [(r["direction"], r["action"]) for r in attempts] == [
            ("outbound", "blocked"),
            ("inbound", "blocked"),
        ]
        for attempt in attempts:
            assert attempt["details"]["file_name"] == FILE_NAME
            assert attempt["details"]["file_size"] == FILE_SIZE
            assert attempt["details"]["service"] == "send_file"
            assert attempt["local"] == alice.lower()
            assert attempt["remote"] == bob.lower()
            assert attempt["identity"] == "alice.smith@bank.example"
        assert rendezvous_blocked(proxy.server.metrics) == 2
        assert sequence_gaps(local.bos.received) == []
        await local.close()
        await remote.close()


async def test_send_file_allowed_for_identity(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    policy = {
        "identities": identities(alice),
        "rendezvous": {"allow_identities": ["alice.smith@bank.example"]},
    }
    async with running_proxy(oscar_server, tmp_path, policy) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)

        await propose_file(local, bob)
        got = await received(remote)
        assert len(got) == 1
        assert got[0].channel == IcbmChannel.RENDEZVOUS
        proposal = parse_rendezvous(got[0])
        assert proposal is not None
        assert proposal.kind is Capability.SEND_FILE
        assert proposal.file_name == FILE_NAME
        assert await received(local) == []

        attempts = proxy.records(kind="rendezvous")
        assert [(r["direction"], r["action"]) for r in attempts] == [("outbound", "delivered")]
        assert attempts[0]["details"]["file_name"] == FILE_NAME
        await local.close()
        await remote.close()


async def test_chat_invitation_passes(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    async with running_proxy(oscar_server, tmp_path, {"identities": identities(alice)}) as proxy:
        local = await proxy.sign_on(alice)
        remote = await proxy.sign_on_external(bob)
        await invite_to_chat(local, bob)
        got = await received(remote)
        assert len(got) == 1
        invitation = parse_rendezvous(got[0])
        assert invitation is not None
        assert invitation.kind is Capability.CHAT_INVITE
        attempts = proxy.records(kind="rendezvous")
        assert [(r["action"], r["details"]["service"]) for r in attempts] == [
            ("delivered", "chat_invite")
        ]
        assert rendezvous_blocked(proxy.server.metrics) == 0
        await local.close()
        await remote.close()
