"""ICBM: channel-1 text in every charset, typing, host acks and rendezvous."""

from __future__ import annotations

import uuid

import pytest
from imtegrity_proxy.protocol.enums import Charset, TypingEvent, coerce
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.icbm import (
    Icbm,
    encode_icbm_send,
    encode_message_body,
    parse_host_ack,
    parse_icbm_receive,
    parse_icbm_send,
    parse_message_body,
    parse_typing,
)
from imtegrity_proxy.protocol.rendezvous import (
    Capability,
    parse_rendezvous,
    parse_rendezvous_block,
)
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv

from tests.unit.protocol_vectors import (
    ICBM_COOKIE,
    MESSAGE_ASCII,
    RENDEZVOUS_COOKIE,
    SEND_FILE,
    VECTORS_BY_NAME,
    h,
)


def _send(name: str) -> Icbm:
    return parse_icbm_send(parse_snac(VECTORS_BY_NAME[name].raw))


@pytest.mark.parametrize(
    ("name", "text", "charset_name"),
    [
        ("ICBM send ASCII with ack request", "hello", "ascii"),
        ("ICBM send UTF-8 under charset 0x0000", "héllo ✓", "utf-8"),
        ("ICBM send UCS-2 Cyrillic and emoji", "Привет 😀", "ucs-2"),
        ("ICBM send Latin-1", "café", "latin-1"),
        ("ICBM send two text fragments", "Hello, мир", "mixed"),
    ],
)
def test_icbm_message_text(name: str, text: str, charset_name: str) -> None:
    message = _send(name).message
    assert message is not None
    assert message.markup == text
    assert message.plain == text
    assert message.charset_name == charset_name


def test_icbm_fragments_kept() -> None:
    message = _send("ICBM send two text fragments").message
    assert message is not None
    assert [(f.id, f.version) for f in message.fragments] == [(5, 1), (1, 1), (1, 1)]
    assert [part.charset for part in message.parts] == [Charset.ASCII, Charset.UCS2]
    assert message.parts[1].raw == h("043c 0438 0440")


def test_icbm_ack_request() -> None:
    assert _send("ICBM send ASCII with ack request").wants_ack
    assert not _send("ICBM send Latin-1").wants_ack


def test_icbm_with_message_keeps_other_tlvs() -> None:
    icbm = _send("ICBM send ASCII with ack request")
    replaced = icbm.with_message(encode_message_body("bye"))
    assert [tlv.type for tlv in replaced.tlvs] == [0x0002, 0x0003]
    assert replaced.tlvs[1] == icbm.tlvs[1]
    assert replaced.cookie == icbm.cookie
    assert replaced.message is not None
    assert replaced.message.markup == "bye"


def test_icbm_receive_sender() -> None:
    raw = VECTORS_BY_NAME["ICBM receive with TLV 0x0002 in sender info"].raw
    icbm = parse_icbm_receive(parse_snac(raw))
    assert icbm.sender is not None
    assert icbm.sender.screen_name == "lab02"
    assert [tlv.type for tlv in icbm.sender.tlvs] == [0x0001, 0x0002, 0x0003]
    assert icbm.tlvs == (Tlv(0x0002, MESSAGE_ASCII),)


def test_icbm_receive_stored_ucs2() -> None:
    icbm = parse_icbm_receive(parse_snac(VECTORS_BY_NAME["ICBM receive stored UCS-2"].raw))
    assert icbm.message is not None
    assert icbm.message.markup == "Привет 😀"
    assert icbm.message.charset_name == "ucs-2"
    assert [tlv.type for tlv in icbm.tlvs] == [0x0002, 0x0016]


def test_icbm_auto_response() -> None:
    body = ICBM_COOKIE + h("0001 05") + b"lab02" + h("0004 0000")
    icbm = parse_icbm_send(Snac(0x0004, 0x0006, 0, 1, body))
    assert icbm.auto_response
    assert icbm.message is None


def test_icbm_message_absent_on_channel_2() -> None:
    assert _send("ICBM send Send File proposal").message is None


@pytest.mark.parametrize(
    ("text", "charset", "raw"),
    [
        ("hi", Charset.ASCII, b"hi"),
        ("café", Charset.LATIN1, h("636166e9")),
        ("мир", Charset.UCS2, h("043c 0438 0440")),
        ("😀", Charset.UCS2, h("d83d de00")),
    ],
)
def test_encode_message_body_charset(text: str, charset: Charset, raw: bytes) -> None:
    body = encode_message_body(text)
    length = (4 + len(raw)).to_bytes(2, "big")
    assert body == h("0501 0001 01 0101") + length + charset.to_bytes(2, "big") + h("0000") + raw


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (h("05"), "fragment version"),
        (h("0501 00"), "fragment data length"),
        (h("0501 0002 01"), "fragment data"),
        (h("0101 0001 00"), "text charset"),
        (h("0101 0003 0000 00"), "text charset subset"),
    ],
)
def test_message_body_truncated(data: bytes, field: str) -> None:
    with pytest.raises(ProtocolError, match=f"{field} is truncated"):
        parse_message_body(data)


def test_message_body_unknown_charset() -> None:
    body = parse_message_body(h("0101 0006 0009 0000") + b"ok")
    assert body.markup == "ok"
    assert body.charset_name == "unknown-0x0009"


def test_message_body_invalid_ucs2_marked() -> None:
    body = parse_message_body(h("0101 0007 0002 0000 0041 d8"))
    assert body.markup.startswith("A")
    assert "\ufffd" in body.markup
    assert body.charset_name == "ucs-2 (invalid bytes replaced)"


def test_message_body_no_text() -> None:
    body = parse_message_body(h("0501 0001 01"))
    assert body.markup == ""
    assert body.charset_name == "none"


@pytest.mark.parametrize("size", [0, 7, 9])
def test_icbm_cookie_size_checked(size: int) -> None:
    with pytest.raises(ProtocolError, match="ICBM cookie length"):
        encode_icbm_send(1, bytes(size), "lab02", ())


@pytest.mark.parametrize(
    "body",
    [h("0102030405060708 00"), h("0102030405060708 0001 05 6c6162"), h("01020304")],
    ids=["half a channel", "short name", "short cookie"],
)
def test_icbm_send_truncated(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        parse_icbm_send(Snac(0x0004, 0x0006, 0, 1, body))


def test_icbm_send_wrong_subtype() -> None:
    with pytest.raises(ProtocolError, match="ICBM subtype 0x0006") as caught:
        parse_icbm_send(Snac(0x0004, 0x0007, 0, 1, b""))
    assert "expected 0x40006" in str(caught.value)
    assert "got 0x40007" in str(caught.value)


def test_typing_event() -> None:
    typing = parse_typing(parse_snac(VECTORS_BY_NAME["typing"].raw))
    assert coerce(TypingEvent, typing.event) is TypingEvent.TYPING
    assert typing.screen_name == "lab03"


def test_host_ack_fields() -> None:
    ack = parse_host_ack(parse_snac(VECTORS_BY_NAME["host ack"].raw))
    assert ack.cookie == ICBM_COOKIE
    assert ack.channel == 1
    assert ack.screen_name == "lab02"


# Rendezvous (ICBM channel 2).


def test_rendezvous_send_file() -> None:
    rendezvous = parse_rendezvous(_send("ICBM send Send File proposal"))
    assert rendezvous is not None
    assert rendezvous.kind is Capability.SEND_FILE
    assert rendezvous.type == 0
    assert rendezvous.cookie == RENDEZVOUS_COOKIE
    assert rendezvous.file_name == "report.pdf"
    assert rendezvous.file_size == 12345
    assert rendezvous.file_count == 1
    assert rendezvous.port == 5190


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("rendezvous Direct IM", Capability.DIRECT_IM),
        ("rendezvous Get File", Capability.GET_FILE),
        ("rendezvous chat invitation", Capability.CHAT_INVITE),
        ("rendezvous cancel", Capability.SEND_FILE),
    ],
)
def test_rendezvous_kind(name: str, kind: Capability) -> None:
    rendezvous = parse_rendezvous_block(VECTORS_BY_NAME[name].raw)
    assert rendezvous.kind is kind
    assert rendezvous.file_name is None


def test_rendezvous_unknown_capability() -> None:
    capability = h("00112233 4455 6677 8899 aabbccddeeff")
    rendezvous = parse_rendezvous_block(h("0000") + RENDEZVOUS_COOKIE + capability)
    assert rendezvous.kind is None
    assert rendezvous.capability == uuid.UUID(bytes=capability)


def test_rendezvous_port_wrong_length() -> None:
    block = h("0000") + RENDEZVOUS_COOKIE + SEND_FILE + h("0005 0001 14")
    assert parse_rendezvous_block(block).port is None


def test_rendezvous_short_service_data() -> None:
    block = h("0000") + RENDEZVOUS_COOKIE + SEND_FILE + h("2711 0004 0001 0001")
    with pytest.raises(ProtocolError, match="total size is truncated"):
        parse_rendezvous_block(block)


def test_rendezvous_file_name_without_nul() -> None:
    block = h("0000") + RENDEZVOUS_COOKIE + SEND_FILE + h("2711 000b 0001 0001 00000400") + b"a.b"
    rendezvous = parse_rendezvous_block(block)
    assert rendezvous.file_name == "a.b"
    assert rendezvous.file_size == 0x400


def test_rendezvous_missing_block() -> None:
    icbm = Icbm(RENDEZVOUS_COOKIE, 2, "lab03", (Tlv(0x0003, b""),))
    with pytest.raises(ProtocolError, match="no rendezvous TLV"):
        parse_rendezvous(icbm)


def test_rendezvous_not_on_channel_1() -> None:
    assert parse_rendezvous(_send("ICBM send Latin-1")) is None


@pytest.mark.parametrize("size", [0, 9, 25])
def test_rendezvous_block_truncated(size: int) -> None:
    block = (h("0000") + RENDEZVOUS_COOKIE + SEND_FILE)[:size]
    with pytest.raises(ProtocolError, match="truncated"):
        parse_rendezvous_block(block)
