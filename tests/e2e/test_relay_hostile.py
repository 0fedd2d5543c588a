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

from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy.client import AimClient
from imtegrity_proxy.protocol import icbm
from imtegrity_proxy.protocol.enums import (
    Family,
    IcbmSubtype,
)
from imtegrity_proxy.protocol.flap import Flap

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
