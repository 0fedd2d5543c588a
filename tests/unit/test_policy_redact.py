"""Redaction of IM and chat text: markup stays valid, tags stay untouched, charsets fit."""

from __future__ import annotations

import re

import pytest
from imtegrity_proxy.policy.redact import (
    redact_chat,
    redact_icbm,
    redact_message_body,
    redact_text,
    visible_characters,
)
from imtegrity_proxy.protocol.buffer import u16
from imtegrity_proxy.protocol.chat import (
    ENCODING_TLV,
    LANGUAGE_TLV,
    MESSAGE_INFO_TLV,
    TEXT_TLV,
    encode_chat_send,
    parse_chat_send,
)
from imtegrity_proxy.protocol.enums import Charset, IcbmTlv
from imtegrity_proxy.protocol.icbm import (
    Fragment,
    encode_icbm_send,
    parse_icbm_send,
    parse_message_body,
)
from imtegrity_proxy.protocol.snac import parse_snac
from imtegrity_proxy.protocol.text import markup_to_plain
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs, find_tlv, parse_tlvs

DIGITS = re.compile(r"\d{4,}")
BLOCK = "\u2588"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("call 12345 now", f"call {BLOCK * 5} now"),
        ("<b>12345</b>", f"<b>{BLOCK * 5}</b>"),
        ('<FONT COLOR="#123456">x 98765</FONT>', f'<FONT COLOR="#123456">x {BLOCK * 5}</FONT>'),
        ("<a href='tel:55512345'>55512345</a>", f"<a href='tel:55512345'>{BLOCK * 8}</a>"),
        ("12<b>34</b>56", f"{BLOCK * 2}<b>{BLOCK * 2}</b>{BLOCK * 2}"),
        ("plain 1 < 2 and 123456", f"plain 1 < 2 and {BLOCK * 6}"),
        ("<!-- 99999 --><i>11111</i>", f"<!-- 99999 --><i>{BLOCK * 5}</i>"),
    ],
)
def test_redact_text_only_in_text_nodes(markup: str, expected: str) -> None:
    assert redact_text(markup, DIGITS, BLOCK) == expected


def test_redact_entity_replaced_whole() -> None:
    pattern = re.compile(r"A&B")
    redacted = redact_text("<b>A&amp;B</b> and A&amp;C", pattern, "*")
    assert redacted == "<b>***</b> and A&amp;C"
    assert markup_to_plain(redacted) == "*** and A&C"


def test_redact_replacement_escaped_in_markup() -> None:
    redacted = redact_text("<b>secret</b>", re.compile("secret"), "<")
    assert redacted == "<b>&lt;&lt;&lt;&lt;&lt;&lt;</b>"
    assert markup_to_plain(redacted) == "<<<<<<"


def test_line_breaks_from_tags_match_but_stay() -> None:
    visible = visible_characters("a<br>b")
    assert visible.text == "a\nb"
    assert visible.spans[1] is None
    assert redact_text("a<br>b", re.compile(r"a\nb"), "*") == "*<br>*"


def test_visible_text_matches_markup_to_plain() -> None:
    markup = (
        '<HTML><BODY BGCOLOR="#ffffff"><FONT>Caf&eacute; &#8364;5 &lt;ok&gt;</FONT></BODY></HTML>'
    )
    assert visible_characters(markup).text == markup_to_plain(markup)


def fragment(charset: int, text_bytes: bytes, subset: int = 0) -> bytes:
    return Fragment(0x01, 0x01, u16(charset) + u16(subset) + text_bytes).to_bytes()


FEATURES = Fragment(0x05, 0x01, b"\x01\x01\x02").to_bytes()


def test_ascii_fragment_moves_to_ucs2() -> None:
    body = parse_message_body(FEATURES + fragment(Charset.ASCII, b"acct 123456"))
    value = redact_message_body(body, DIGITS, BLOCK)
    redacted = parse_message_body(value)
    assert value.startswith(FEATURES)  # the features fragment is kept byte for byte
    assert redacted.parts[0].charset == Charset.UCS2
    assert redacted.parts[0].subset == 0
    assert redacted.plain == f"acct {BLOCK * 6}"


def test_ascii_replacement_stays_ascii() -> None:
    body = parse_message_body(FEATURES + fragment(Charset.ASCII, b"acct 123456", subset=7))
    redacted = parse_message_body(redact_message_body(body, DIGITS, "*"))
    assert redacted.parts[0].charset == Charset.ASCII
    assert redacted.parts[0].subset == 7
    assert redacted.parts[0].raw == b"acct ******"


def test_latin1_fragment_kept() -> None:
    body = parse_message_body(FEATURES + fragment(Charset.LATIN1, "Café 123456".encode("latin-1")))
    redacted = parse_message_body(redact_message_body(body, DIGITS, "#"))
    assert redacted.parts[0].charset == Charset.LATIN1
    assert redacted.parts[0].raw == "Café ######".encode("latin-1")


def test_ucs2_with_surrogate_pair() -> None:
    text = "номер 123456 👋"
    body = parse_message_body(FEATURES + fragment(Charset.UCS2, text.encode("utf-16-be")))
    redacted = parse_message_body(redact_message_body(body, DIGITS, BLOCK))
    assert redacted.parts[0].charset == Charset.UCS2
    assert redacted.plain == f"номер {BLOCK * 6} 👋"


def test_only_changed_fragments_rewritten() -> None:
    first = fragment(Charset.ASCII, b"<b>hello ")
    second = fragment(Charset.UCS2, "мир 123456</b>".encode("utf-16-be"))
    body = parse_message_body(FEATURES + first + second)
    value = redact_message_body(body, DIGITS, BLOCK)
    assert value.startswith(FEATURES + first)
    redacted = parse_message_body(value)
    assert redacted.markup == f"<b>hello мир {BLOCK * 6}</b>"


def test_match_across_fragments() -> None:
    first = fragment(Charset.ASCII, b"code 12")
    second = fragment(Charset.ASCII, b"3456 end")
    body = parse_message_body(FEATURES + first + second)
    redacted = parse_message_body(redact_message_body(body, DIGITS, "*"))
    assert [part.text for part in redacted.parts] == ["code **", "**** end"]


def test_redact_icbm_keeps_head_and_other_tlvs() -> None:
    body = FEATURES + fragment(Charset.ASCII, b"pin 998877")
    tlvs = (Tlv(IcbmTlv.MESSAGE, body), Tlv(IcbmTlv.REQUEST_HOST_ACK, b""), Tlv(0x0006, b""))
    snac = parse_snac(encode_icbm_send(9, b"\x01" * 8, "Bob Smith", tlvs))
    icbm = parse_icbm_send(snac)
    new_body = redact_icbm(snac.body, icbm, DIGITS, "*")
    redacted = parse_icbm_send(snac.with_body(new_body))
    assert redacted.cookie == icbm.cookie
    assert redacted.screen_name == "Bob Smith"
    assert [tlv.type for tlv in redacted.tlvs] == [0x0002, 0x0003, 0x0006]
    assert redacted.message is not None
    assert redacted.message.plain == "pin ******"


def test_redact_chat_switches_encoding() -> None:
    snac = parse_snac(encode_chat_send(3, b"\x02" * 8, "call 1234567"))
    message = parse_chat_send(snac)
    redacted = parse_chat_send(snac.with_body(redact_chat(snac.body, message, DIGITS, BLOCK)))
    assert redacted.plain == f"call {BLOCK * 7}"
    assert redacted.encoding == "unicode-2-0"
    info = parse_tlvs(find_tlv(redacted.tlvs, MESSAGE_INFO_TLV) or b"")
    assert [tlv.type for tlv in info] == [TEXT_TLV, ENCODING_TLV, LANGUAGE_TLV]


def test_redact_chat_keeps_ascii() -> None:
    snac = parse_snac(encode_chat_send(3, b"\x02" * 8, "call 1234567"))
    message = parse_chat_send(snac)
    redacted = parse_chat_send(snac.with_body(redact_chat(snac.body, message, DIGITS, "x")))
    assert redacted.plain == "call xxxxxxx"
    assert redacted.encoding == "us-ascii"


def test_redact_chat_adds_encoding_when_missing() -> None:
    info = encode_tlvs((Tlv(TEXT_TLV, b"pin 4444"),))
    body = b"\x03" * 8 + u16(3) + encode_tlvs((Tlv(MESSAGE_INFO_TLV, info),))
    snac = parse_snac(u16(0x000E) + u16(0x0005) + u16(0) + bytes(4) + body)
    message = parse_chat_send(snac)
    redacted = parse_chat_send(snac.with_body(redact_chat(snac.body, message, DIGITS, BLOCK)))
    assert redacted.encoding == "unicode-2-0"
    assert redacted.plain == f"pin {BLOCK * 4}"
