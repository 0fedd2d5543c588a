"""Sign-on: channel-1 hello, BUCP challenge and login, login replies, channel 4."""

from __future__ import annotations

import hashlib

import pytest
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.signon import (
    HelloKind,
    encode_cookie_hello,
    login_hash,
    parse_bucp_login_reply,
    parse_hello,
    parse_login_reply,
    parse_login_request,
    parse_signoff,
    rewrite_bos_address,
    roast_password,
)
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs, find_tlv, parse_tlvs

from tests.unit.protocol_vectors import (
    CHALLENGE_KEY,
    COOKIE_256,
    COOKIE_UUID,
    LOGIN_SUCCESS_TLVS,
    PASSWORD,
    ROASTED_PASSWORD,
    STRONG_HASH,
    VECTORS_BY_NAME,
    WEAK_HASH,
    h,
)

ROAST_TABLE = h("f3 26 81 c4 39 86 db 92 71 a3 b9 e6 53 7a 95 7c")
AIM_MD5_STRING = b"AOL Instant Messenger (SM)"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("hello BUCP", HelloKind.BUCP),
        ("hello BUCP with TLV 0x8003", HelloKind.BUCP),
        ("hello old-style login", HelloKind.OLD_STYLE_LOGIN),
        ("hello 256-byte cookie", HelloKind.SERVICE),
        ("hello UUID-string cookie", HelloKind.SERVICE),
    ],
)
def test_hello_kind(name: str, kind: HelloKind) -> None:
    assert parse_hello(VECTORS_BY_NAME[name].raw).kind is kind


def test_hello_old_style_fields() -> None:
    hello = parse_hello(VECTORS_BY_NAME["hello old-style login"].raw)
    assert hello.screen_name == "lab02"
    assert hello.cookie is None
    assert find_tlv(hello.tlvs, 0x0002) == ROASTED_PASSWORD


@pytest.mark.parametrize("cookie", [COOKIE_256, COOKIE_UUID], ids=["256 bytes", "UUID string"])
def test_hello_cookie_exact(cookie: bytes) -> None:
    raw = encode_cookie_hello(cookie)
    hello = parse_hello(raw)
    assert hello.cookie == cookie
    assert hello.screen_name is None
    assert raw[4:8] == h("0006") + len(cookie).to_bytes(2, "big")


def test_hello_wrong_version() -> None:
    with pytest.raises(ProtocolError, match="hello version") as caught:
        parse_hello(h("00000002"))
    assert "expected 0x0001" in str(caught.value)
    assert "got 0x0002" in str(caught.value)


@pytest.mark.parametrize("raw", [b"", h("000000"), h("00000001 0006 0010 00")])
def test_hello_truncated(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        parse_hello(raw)


def test_roast_password_vector() -> None:
    assert roast_password(PASSWORD) == ROASTED_PASSWORD


def test_roast_password_wraps_table() -> None:
    password = "abcdefghijklmnopqrst"
    expected = bytes(
        byte ^ ROAST_TABLE[index % 16] for index, byte in enumerate(password.encode())
    )
    roasted = roast_password(password)
    assert roasted == expected
    assert roasted[16] == ord("q") ^ 0xF3


def test_login_hash_strong() -> None:
    password_md5 = hashlib.md5(PASSWORD.encode(), usedforsecurity=False).digest()
    expected = hashlib.md5(
        CHALLENGE_KEY + password_md5 + AIM_MD5_STRING, usedforsecurity=False
    ).digest()
    assert login_hash(CHALLENGE_KEY, PASSWORD, strong=True) == expected
    assert login_hash(CHALLENGE_KEY, PASSWORD) == STRONG_HASH


def test_login_hash_weak() -> None:
    expected = hashlib.md5(
        CHALLENGE_KEY + PASSWORD.encode() + AIM_MD5_STRING, usedforsecurity=False
    ).digest()
    assert login_hash(CHALLENGE_KEY, PASSWORD, strong=False) == expected
    assert login_hash(CHALLENGE_KEY, PASSWORD, strong=False) == WEAK_HASH


@pytest.mark.parametrize(
    ("name", "password_hash"),
    [("BUCP login request strong hash", STRONG_HASH), ("BUCP login request weak hash", WEAK_HASH)],
)
def test_login_request_carries_hash(name: str, password_hash: bytes) -> None:
    tlvs = parse_tlvs(parse_snac(VECTORS_BY_NAME[name].raw).body)
    assert find_tlv(tlvs, 0x0025) == password_hash


def test_login_request_without_hash() -> None:
    body = encode_tlvs((Tlv(0x0001, b"lab02"),))
    request = parse_login_request(Snac(0x0017, 0x0002, 0, 1, body))
    assert request.hash_style == "none"
    assert request.client_id is None


@pytest.mark.parametrize("body", [b"", h("0001 0000"), h("0003 0001 41")])
def test_login_request_without_screen_name(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="no screen name"):
        parse_login_request(Snac(0x0017, 0x0002, 0, 1, body))


def test_login_request_wrong_subtype() -> None:
    with pytest.raises(ProtocolError, match="BUCP subtype 0x0002") as caught:
        parse_login_request(Snac(0x0017, 0x0006, 0, 1, h("0001 0001 61")))
    assert "expected 0x170002" in str(caught.value)
    assert "got 0x170006" in str(caught.value)


def test_login_reply_success_fields() -> None:
    reply = parse_bucp_login_reply(parse_snac(VECTORS_BY_NAME["BUCP login reply success"].raw))
    assert reply.succeeded
    assert reply.bos_host == "127.0.0.1"
    assert reply.bos_port == 5190
    assert reply.cookie == COOKIE_256
    assert reply.error_code is None


def test_login_reply_failure_fields() -> None:
    reply = parse_signoff(VECTORS_BY_NAME["channel-4 login reply failure"].raw)
    assert not reply.succeeded
    assert reply.error_code == 0x0005
    assert reply.error_url == "https://example.org/err/5"
    assert reply.cookie is None


def test_login_reply_address_without_port() -> None:
    reply = parse_login_reply((Tlv(0x0005, b"127.0.0.1"), Tlv(0x0006, b"c")))
    assert reply.bos_host == "127.0.0.1"
    assert reply.bos_port is None
    assert reply.succeeded


@pytest.mark.parametrize("value", [b"", h("05"), h("000005")])
def test_login_reply_error_code_length(value: bytes) -> None:
    with pytest.raises(ProtocolError, match="error code length"):
        parse_login_reply((Tlv(0x0008, value),))


def test_rewrite_bos_address_keeps_rest() -> None:
    tlvs = parse_tlvs(LOGIN_SUCCESS_TLVS)
    rewritten = encode_tlvs(rewrite_bos_address(tlvs, b"127.0.0.2:5191"))
    expected = (
        h("0001 0005")
        + b"lab02"
        + h("0005 000e")
        + b"127.0.0.2:5191"
        + h("0006 0100")
        + COOKIE_256
        + h("0011 0011")
        + b"lab02@example.org"
        + h("008e 0001 00")
    )
    assert rewritten == expected


def test_signoff_notice_reason() -> None:
    reply = parse_signoff(VECTORS_BY_NAME["channel-4 sign-off notice"].raw)
    assert find_tlv(reply.tlvs, 0x0009) == h("0001")
    assert not reply.succeeded
    assert reply.error_code is None


@pytest.mark.parametrize("raw", [h("00"), h("0009 0002 00")])
def test_signoff_truncated(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        parse_signoff(raw)
