"""Protocol-level tests for inputs that broke AIM clients, servers and IM proxies."""

from __future__ import annotations

import pytest
from imtegrity_proxy.protocol.enums import Charset
from imtegrity_proxy.protocol.icbm import (
    encode_icbm_receive,
    encode_icbm_send,
    parse_icbm_receive,
    parse_icbm_send,
    text_message_tlvs,
)
from imtegrity_proxy.protocol.oservice import encode_service_request, parse_redirect
from imtegrity_proxy.protocol.rendezvous import Capability, parse_rendezvous
from imtegrity_proxy.protocol.signon import (
    encode_cookie_hello,
    parse_hello,
    parse_login_reply,
    parse_signoff,
    rewrite_bos_address,
)
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs, find_tlv, parse_tlvs
from imtegrity_proxy.protocol.userinfo import UserInfo, normalize_screen_name

from tests.unit.protocol_vectors import (
    COOKIE_256,
    ICBM_COOKIE,
    MESSAGE_ASCII,
    MESSAGE_UCS2,
    VECTORS_BY_NAME,
    h,
)


def _icbm_send_bytes(tlvs: bytes) -> bytes:
    return h("0004 0006 0000 00000021") + ICBM_COOKIE + h("0001 05") + b"lab02" + tlvs


# A UCS-2 message ("asdasd") followed by an empty "store if offline" TLV 0x06.
UCS2_WITH_STORE = h(
    "0002 001a 0501 0002 0106 0101 0010 0002 0000 0061 0073 0064 0061 0073 0064 0006 0000"
)


def test_ucs2_message_with_empty_store_tlv() -> None:
    raw = _icbm_send_bytes(UCS2_WITH_STORE)
    icbm = parse_icbm_send(parse_snac(raw))
    message = icbm.message
    assert message is not None
    assert message.markup == "asdasd"
    assert message.plain == "asdasd"
    assert message.charset_name == "ucs-2"
    assert [tlv.type for tlv in icbm.tlvs] == [0x0002, 0x0006]
    assert icbm.tlvs[1].value == b""
    assert encode_icbm_send(0x21, icbm.cookie, icbm.screen_name, icbm.tlvs) == raw
    assert parse_snac(raw).to_bytes() == raw


# libpurple's feature bytes 01 01 01 02, an HTML body with charset 0x0000,
# then empty TLVs 0x03 (ask for an ack) and 0x06 (store if offline).
HTML = b"<HTML><BODY>test</BODY></HTML>"
LIBPURPLE_HTML_TLVS = (
    h("0002 002e 0501 0004 01010102 0101 0022 0000 0000") + HTML + h("0003 0000 0006 0000")
)


def test_html_message_with_libpurple_features() -> None:
    raw = _icbm_send_bytes(LIBPURPLE_HTML_TLVS)
    icbm = parse_icbm_send(parse_snac(raw))
    message = icbm.message
    assert message is not None
    assert message.markup == HTML.decode()
    assert message.plain == "test"
    assert message.charset_name == "ascii"
    assert message.fragments[0].data == h("01010102")
    assert message.parts[0].raw == HTML
    assert [tlv.type for tlv in icbm.tlvs] == [0x0002, 0x0003, 0x0006]
    assert icbm.wants_ack
    assert encode_tlvs(icbm.tlvs) == LIBPURPLE_HTML_TLVS
    assert encode_icbm_send(0x21, icbm.cookie, icbm.screen_name, icbm.tlvs) == raw


COOKIE_LENGTHS = range(1, 1001)


def _cookie(length: int) -> bytes:
    return bytes((index * 7 + length) % 256 for index in range(length))


def test_cookie_hello_any_length() -> None:
    for length in COOKIE_LENGTHS:
        cookie = _cookie(length)
        raw = encode_cookie_hello(cookie)
        assert raw == h("00000001 0006") + length.to_bytes(2, "big") + cookie, length
        hello = parse_hello(raw)
        assert hello.cookie == cookie, length


def test_cookie_login_reply_any_length() -> None:
    for length in COOKIE_LENGTHS:
        cookie = _cookie(length)
        tlvs = (Tlv(0x0005, b"127.0.0.1:5190"), Tlv(0x0006, cookie))
        reply = parse_login_reply(parse_tlvs(encode_tlvs(tlvs)))
        assert reply.cookie == cookie, length
        rewritten = encode_tlvs(rewrite_bos_address(reply.tlvs, b"127.0.0.2:5191"))
        assert rewritten.endswith(h("0006") + length.to_bytes(2, "big") + cookie), length


def test_cookie_redirect_any_length() -> None:
    for length in COOKIE_LENGTHS:
        cookie = _cookie(length)
        body = encode_tlvs(
            (Tlv(0x000D, h("0010")), Tlv(0x0005, b"127.0.0.1"), Tlv(0x0006, cookie))
        )
        redirect = parse_redirect(Snac(0x0001, 0x0005, 0, 3, body))
        assert redirect.cookie == cookie, length
        rewritten = parse_tlvs(redirect.with_address(b"127.0.0.2:5191"))
        assert rewritten[2] == Tlv(0x0006, cookie), length


@pytest.mark.parametrize(
    ("formatted", "normalised"),
    [("L A B 0 2", "lab02"), ("Foo Bar", "foobar"), ("foobar", "foobar"), ("LAB02", "lab02")],
)
def test_screen_name_normalisation(formatted: str, normalised: str) -> None:
    assert normalize_screen_name(formatted) == normalised


def test_screen_name_formatted_kept() -> None:
    hello = parse_hello(encode_cookie_hello(b"c"))
    assert hello.screen_name is None
    info = UserInfo("L A B 0 2", 0, ())
    raw = encode_icbm_receive(1, ICBM_COOKIE, info, ())
    received = parse_icbm_receive(parse_snac(raw))
    assert received.screen_name == "L A B 0 2"
    assert normalize_screen_name(received.screen_name) == normalize_screen_name("lab02")


def test_chat_redirect_keeps_field_order() -> None:
    request = parse_snac(VECTORS_BY_NAME["service request for chat"].raw)
    assert request.to_bytes() == encode_service_request(5, 0x000E, parse_tlvs(request.body[2:]))
    redirect = parse_redirect(parse_snac(VECTORS_BY_NAME["redirect"].raw))
    assert redirect.family == 0x000E
    rewritten = redirect.with_address(b"127.0.0.1:5191")
    tlvs = parse_tlvs(rewritten)
    assert [tlv.type for tlv in tlvs] == [0x000D, 0x0005, 0x0006]
    assert tlvs[0] == redirect.tlvs[0]
    assert tlvs[1].value == b"127.0.0.1:5191"
    assert tlvs[2] == redirect.tlvs[2]
    assert rewritten.startswith(h("000d 0002 000e 0005 000e"))
    assert rewritten.endswith(h("0006 0100") + COOKIE_256)


def test_sender_info_creation_time_tlv() -> None:
    raw = VECTORS_BY_NAME["ICBM receive with TLV 0x0002 in sender info"].raw
    icbm = parse_icbm_receive(parse_snac(raw))
    assert icbm.sender is not None
    assert find_tlv(icbm.sender.tlvs, 0x0002) == h("5f5e1000")
    assert icbm.tlvs == (Tlv(0x0002, MESSAGE_ASCII),)
    assert icbm.message is not None
    assert icbm.message.plain == "hello"


def test_sender_info_tlv_shaped_like_message() -> None:
    # The sender's TLV 0x0002 here is itself a valid message body with other text,
    # so reading the first TLV 0x0002 of the whole SNAC would return "wrong".
    decoy = h("0501 0001 01 0101 0009 0000 0000") + b"wrong"
    sender = UserInfo("lab02", 0, (Tlv(0x0002, decoy),))
    raw = encode_icbm_receive(1, ICBM_COOKIE, sender, text_message_tlvs("right"))
    icbm = parse_icbm_receive(parse_snac(raw))
    assert icbm.message is not None
    assert icbm.message.plain == "right"
    assert icbm.sender == sender


def test_signoff_reason_from_second_signon() -> None:
    reply = parse_signoff(h("0001 0005") + b"lab02" + h("0009 0002 0001"))
    assert find_tlv(reply.tlvs, 0x0009) == h("0001")
    assert reply.screen_name == "lab02"
    assert not reply.succeeded


def test_cyrillic_and_emoji_never_cut() -> None:
    raw = VECTORS_BY_NAME["ICBM send UCS-2 Cyrillic and emoji"].raw
    icbm = parse_icbm_send(parse_snac(raw))
    message = icbm.message
    assert message is not None
    assert message.markup == "Привет 😀"
    assert message.markup[-1] == "\U0001f600"
    assert message.parts[0].charset == Charset.UCS2
    assert message.parts[0].raw == MESSAGE_UCS2[13:]
    assert encode_icbm_send(10, icbm.cookie, icbm.screen_name, icbm.tlvs) == raw


def test_long_cyrillic_emoji_text_kept_whole() -> None:
    text = "Съешь же ещё этих мягких французских булок 😀🇺🇦 " * 6
    raw = encode_icbm_send(1, ICBM_COOKIE, "lab02", text_message_tlvs(text))
    message = parse_icbm_send(parse_snac(raw)).message
    assert message is not None
    assert message.markup == text
    assert len(message.markup) == len(text)
    assert message.charset_name == "ucs-2"


def test_send_file_proposal_decoded() -> None:
    icbm = parse_icbm_send(parse_snac(VECTORS_BY_NAME["ICBM send Send File proposal"].raw))
    rendezvous = parse_rendezvous(icbm)
    assert rendezvous is not None
    assert rendezvous.kind is Capability.SEND_FILE
    assert str(rendezvous.capability) == "09461343-4c7f-11d1-8222-444553540000"
    assert rendezvous.file_name == "report.pdf"
    assert rendezvous.file_size == 12345
    assert icbm.screen_name == "lab03"
    assert find_tlv(rendezvous.tlvs, 0x0003) == h("7f000001")
    assert rendezvous.port == 5190
