"""Chat (family 0x000E): room messages with their encoding names, and room info."""

from __future__ import annotations

import pytest
from imtegrity_proxy.protocol.chat import (
    encode_chat_send,
    parse_chat_receive,
    parse_chat_send,
    parse_room_info,
)
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.text import decode_chat_text

from tests.unit.protocol_vectors import CHAT_COOKIE, ROOM_TLV_VALUE, VECTORS_BY_NAME, h


def test_chat_send_ascii() -> None:
    message = parse_chat_send(parse_snac(VECTORS_BY_NAME["chat send us-ascii"].raw))
    assert message.text == "hello"
    assert message.encoding == "us-ascii"
    assert message.charset_name == "ascii"
    assert message.sender is None


def test_chat_send_unicode() -> None:
    message = parse_chat_send(parse_snac(VECTORS_BY_NAME["chat send unicode-2-0"].raw))
    assert message.text == "Привет"
    assert message.encoding == "unicode-2-0"
    assert message.charset_name == "ucs-2"


def test_chat_receive_latin1_with_sender() -> None:
    message = parse_chat_receive(parse_snac(VECTORS_BY_NAME["chat receive iso-8859-1"].raw))
    assert message.text == "café"
    assert message.encoding == "iso-8859-1"
    assert message.charset_name == "latin-1"
    assert message.sender is not None
    assert message.sender.screen_name == "lab02"


def test_chat_emoji_roundtrip() -> None:
    message = parse_chat_send(parse_snac(encode_chat_send(1, CHAT_COOKIE, "ok 😀 да")))
    assert message.text == "ok 😀 да"
    assert message.raw_text == "ok 😀 да".encode("utf-16-be")


def test_chat_html_plain() -> None:
    info = h("0001 001a") + b"<HTML><B>hi</B> all</HTML>" + h("0002 0008") + b"us-ascii"
    body = CHAT_COOKIE + h("0003 0005 002a") + info
    message = parse_chat_send(Snac(0x000E, 0x0005, 0, 1, body))
    assert message.text == "<HTML><B>hi</B> all</HTML>"
    assert message.plain == "hi all"


def test_chat_without_message_info() -> None:
    message = parse_chat_send(Snac(0x000E, 0x0005, 0, 1, CHAT_COOKIE + h("0003 0001 0000")))
    assert message.text == ""
    assert message.raw_text == b""
    assert message.encoding is None


@pytest.mark.parametrize(
    ("encoding", "data", "text", "name"),
    [
        (None, b"hi", "hi", "ascii"),
        ("US-ASCII", "h\u00e9".encode(), "h\u00e9", "utf-8"),
        ("us-ascii", h("68e9"), "h\u00e9", "latin-1"),
        ("unicode-2-0", h("0068 00e9"), "h\u00e9", "ucs-2"),
        ("iso-8859-1", h("68e9"), "h\u00e9", "latin-1"),
    ],
)
def test_decode_chat_text(encoding: str | None, data: bytes, text: str, name: str) -> None:
    assert decode_chat_text(encoding, data) == (text, name)


def test_chat_message_info_truncated() -> None:
    body = CHAT_COOKIE + h("0003 0005 0003 0001 00")
    with pytest.raises(ProtocolError, match="chat message info"):
        parse_chat_send(Snac(0x000E, 0x0005, 0, 1, body))


def test_chat_wrong_subtype() -> None:
    with pytest.raises(ProtocolError, match="chat subtype 0x0006"):
        parse_chat_receive(Snac(0x000E, 0x0005, 0, 1, b""))


def test_room_info_name() -> None:
    info = parse_room_info(parse_snac(VECTORS_BY_NAME["chat room info"].raw))
    assert info.name == "lab"
    assert info.exchange == 4
    assert info.cookie == "!aol://2719:10-4-lab"


def test_room_info_prefers_tlv_00d3() -> None:
    tlvs = h("006a 0003") + b"old" + h("00d3 0003") + b"new"
    body = ROOM_TLV_VALUE + h("02 0002") + tlvs
    assert parse_room_info(Snac(0x000E, 0x0002, 0, 1, body)).name == "new"


def test_room_info_without_name() -> None:
    body = ROOM_TLV_VALUE + h("02 0000")
    assert parse_room_info(Snac(0x000E, 0x0002, 0, 1, body)).name is None
