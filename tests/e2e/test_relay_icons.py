"""Buddy icons (BART, family 0x0010) on their own connection through the proxy."""

from __future__ import annotations

import logging
import struct

import pytest
from imtegrity_proxy.protocol.buffer import ByteReader
from imtegrity_proxy.protocol.enums import Family
from imtegrity_proxy.protocol.snac import encode_snac

from tests.e2e.test_relay_messages import pair

pytestmark = pytest.mark.e2e

BUDDY_ICON = 0x0001
ICON = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x00" + bytes(
    range(64)
)


async def test_icon_upload_and_download_through_proxy(proxy_factory, oscar_server, caplog):
    caplog.set_level(logging.INFO, logger="imtegrity")
    proxy = await proxy_factory()
    alice, bob = await pair(proxy, oscar_server)
    try:
        upload = await alice.request_service(Family.BART)
        download = await bob.request_service(Family.BART)
        body = struct.pack(">HH", BUDDY_ICON, len(ICON)) + ICON
        await upload.send_snac(encode_snac(Family.BART, 0x0002, upload.next_request_id(), body))
        reply = ByteReader((await upload.read_snac(Family.BART, 0x0003)).body, "upload reply")
        code = reply.u8("code")
        icon_type, flags = reply.u16("type"), reply.u8("flags")
        icon_hash = reply.u8_string("hash")
        name = alice.screen_name.encode()
        query = (
            bytes([len(name)])
            + name
            + b"\x01"
            + struct.pack(">HB", icon_type, flags)
            + bytes([len(icon_hash)])
            + icon_hash
        )
        await download.send_snac(
            encode_snac(Family.BART, 0x0004, download.next_request_id(), query)
        )
        answer = ByteReader((await download.read_snac(Family.BART, 0x0005)).body, "download")
        answer.u8_string("screen name")
        answer.u16("type")
        answer.u8("flags")
        answer.u8_string("hash")
        data = answer.u16_string("icon data")
    finally:
        await alice.close()
        await bob.close()
    assert code == 0
    assert icon_type == BUDDY_ICON
    assert data == ICON
    for stream in (upload, download):
        assert stream.writer.get_extra_info("peername")[1] == proxy.port
    assert caplog.text.count(f"cookie accepted: family 0x{Family.BART:04x}") == 2
