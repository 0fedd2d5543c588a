"""Text outside channel 1: channel-4 (ICQ-style) messages and rendezvous invitations."""

from __future__ import annotations

import os
import re

import pytest
from imtegrity_proxy.policy.redact import (
    RedactionError,
    redact_icq,
    redact_invitation,
)
from imtegrity_proxy.protocol import icbm, rendezvous
from imtegrity_proxy.protocol.buffer import u16
from imtegrity_proxy.protocol.enums import Family, IcbmSubtype
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv
from imtegrity_proxy.relay.enforce import decode_icbm

BLOCK = "\u2588"


def icq(raw: bytes) -> bytes:
    return icbm.encode_icq_message(0x01020304, 0x01, 0x00, raw)


def send(tlvs: tuple[Tlv, ...], channel: int) -> tuple[bytes, icbm.Icbm]:
    snac = parse_snac(icbm.encode_icbm_send(7, os.urandom(8), "bob", tlvs, channel))
    return snac.body, icbm.parse_icbm_send(snac)


def reparse(body: bytes) -> icbm.Icbm:
    """Parse a rewritten ICBM send body."""
    return icbm.parse_icbm_send(Snac(Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_HOST, 0, 7, body))


# Channel 4


def test_icq_message_fields_little_endian() -> None:
    data = bytes.fromhex("39300000 01 02 0300 6869 00")
    message = icbm.parse_icq_message(data)
    assert message.uin == 12345
    assert message.message_type == 0x01
    assert message.flags == 0x02
    assert message.text == "hi"
    assert message.charset_name == "ascii"
    assert icbm.encode_icq_message(12345, 1, 2, b"hi") == data


def test_icq_message_charsets() -> None:
    assert icbm.parse_icq_message(icq("Привет".encode())).charset_name == "utf-8"
    latin = icbm.parse_icq_message(icq("café".encode("latin-1")))
    assert (latin.text, latin.charset_name) == ("café", "latin-1")


def test_icq_fields_become_lines() -> None:
    data = icbm.encode_icq_message(1, 0x04, 0, b"see this\xfehttp://example.test/")
    assert icbm.parse_icq_message(data).plain == "see this\nhttp://example.test/"


def test_icq_empty_text() -> None:
    data = bytes.fromhex("01000000 01 00 0000")
    assert icbm.parse_icq_message(data).text == ""


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        (bytes.fromhex("01000000 01 00 0200 6869"), "text does not end in NUL"),
        (bytes.fromhex("01000000 01 00 0300 680069"), "text does not end in NUL"),
        (bytes.fromhex("01000000 01 00 0300 68 00 00"), "NUL inside the text"),
        (bytes.fromhex("01000000 01 00 0200 6800 ff"), "bytes after the text"),
        (bytes.fromhex("01000000 01 00 0900 6800"), "text is truncated"),
        (bytes.fromhex("01000000 01"), "message flags is truncated"),
    ],
)
def test_icq_message_rejects(data: bytes, rule: str) -> None:
    with pytest.raises(ProtocolError) as error:
        icbm.parse_icq_message(data)
    assert rule in error.value.rule


def test_decode_icbm_every_channel() -> None:
    _, im = send(icbm.text_message_tlvs("one"), 1)
    assert decode_icbm(im).text is not None
    _, ch4 = send((Tlv(0x0005, icq(b"four")),), 4)
    assert decode_icbm(ch4).text is not None
    for channel, tlvs in [(3, icbm.text_message_tlvs("x")), (4, ()), (2, ())]:
        _, other = send(tlvs, channel)
        with pytest.raises(ProtocolError):
            decode_icbm(other)


def test_redact_icq_plain_text() -> None:
    body, message = send((Tlv(0x0005, icq(b"pin 1234 \xe2\x80\x8bok")),), 4)
    text = message.icq_message
    assert text is not None
    new_body = redact_icq(body, message, text, re.compile(r"\d+"), BLOCK)
    redacted = reparse(new_body).icq_message
    assert redacted is not None
    assert redacted.plain == f"pin {BLOCK * 4} ok"
    assert redacted.uin == 0x01020304


def test_redact_icq_refuses_field_types() -> None:
    data = icbm.encode_icq_message(1, 0x04, 0, b"1234\xfehttp://x.test/")
    body, message = send((Tlv(0x0005, data),), 4)
    text = message.icq_message
    assert text is not None
    with pytest.raises(RedactionError):
        redact_icq(body, message, text, re.compile(r"\d+"), BLOCK)


# Chat invitations


def invitation_block(text: str) -> Tlv:
    room = u16(4) + bytes([8]) + b"4-0-desk" + u16(0)
    return rendezvous.encode_chat_invitation(os.urandom(8), room, text)


def test_invitation_text_decoded() -> None:
    _, message = send((invitation_block("Join <b>us</b> Ж"),), 2)
    content = decode_icbm(message)
    assert content.rendezvous is not None
    assert content.rendezvous.kind is rendezvous.Capability.CHAT_INVITE
    assert content.text is not None
    assert content.text.markup == "Join <b>us</b> Ж"
    assert content.text.plain == "Join us Ж"
    assert content.text.charset_name == "ucs-2"


def test_rendezvous_without_invitation_has_no_text() -> None:
    tlv = rendezvous.encode_send_file_proposal(os.urandom(8), "a.txt", 3, b"\x7f\0\0\1", 5190)
    _, message = send((tlv,), 2)
    assert decode_icbm(message).text is None


def test_redact_invitation_switches_to_ucs2() -> None:
    body, message = send((invitation_block("code 4321"),), 2)
    content = decode_icbm(message)
    assert content.rendezvous is not None
    new_body = redact_invitation(body, message, content.rendezvous, re.compile(r"\d+"), BLOCK)
    redacted = decode_icbm(reparse(new_body))
    assert redacted.text is not None
    assert redacted.text.plain == f"code {BLOCK * 4}"
    assert redacted.text.charset_name == "ucs-2"
    assert redacted.rendezvous is not None
    assert redacted.rendezvous.cookie == content.rendezvous.cookie
