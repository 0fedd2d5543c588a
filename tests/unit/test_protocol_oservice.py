"""Family 0x0001: redirects, migration, service requests, self info and errors."""

from __future__ import annotations

import pytest
from imtegrity_proxy.protocol.address import format_address, parse_address
from imtegrity_proxy.protocol.enums import ErrorCode, coerce
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.oservice import (
    encode_error,
    encode_service_request,
    parse_error,
    parse_migration,
    parse_redirect,
    parse_self_info,
    parse_service_request,
)
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv, parse_tlvs
from imtegrity_proxy.protocol.userinfo import normalize_screen_name

from tests.unit.protocol_vectors import COOKIE_256, COOKIE_UUID, VECTORS_BY_NAME, h


def _parse(name: str) -> Snac:
    return parse_snac(VECTORS_BY_NAME[name].raw)


def test_redirect_with_address() -> None:
    redirect = parse_redirect(_parse("redirect"))
    body = redirect.with_address(b"127.0.0.2:5191")
    expected = h("000d 0002 000e 0005 000e") + b"127.0.0.2:5191" + h("0006 0100") + COOKIE_256
    assert body == expected


def test_redirect_with_longer_address() -> None:
    redirect = parse_redirect(_parse("redirect"))
    body = redirect.with_address(b"localhost:65535")
    tlvs = parse_tlvs(body)
    assert [tlv.type for tlv in tlvs] == [0x000D, 0x0005, 0x0006]
    assert tlvs[1].value == b"localhost:65535"
    assert tlvs[2].value == COOKIE_256


def test_redirect_extra_tlvs_kept() -> None:
    body = (
        h("000d 0002 0010 0005 0009") + b"127.0.0.1" + h("0006 0002 abcd 008d 0000 008e 0001 00")
    )
    redirect = parse_redirect(Snac(0x0001, 0x0005, 0, 9, body))
    assert redirect.family == 0x0010
    assert redirect.port is None
    rewritten = redirect.with_address(b"127.0.0.1:5190")
    expected = (
        h("000d 0002 0010 0005 000e")
        + b"127.0.0.1:5190"
        + h("0006 0002 abcd 008d 0000 008e 0001 00")
    )
    assert rewritten == expected


def test_redirect_family_length() -> None:
    with pytest.raises(ProtocolError, match="0x000d family length"):
        parse_redirect(Snac(0x0001, 0x0005, 0, 9, h("000d 0001 0e")))


def test_redirect_wrong_subtype() -> None:
    with pytest.raises(ProtocolError, match="OSERVICE subtype 0x0005"):
        parse_redirect(Snac(0x0001, 0x0004, 0, 9, b""))


def test_migration_with_address() -> None:
    migration = parse_migration(_parse("migration"))
    body = migration.with_address(b"127.0.0.2:5191")
    expected = h("0002 0001 0004 0005 000e") + b"127.0.0.2:5191" + h("0006 0024") + COOKIE_UUID
    assert body == expected


@pytest.mark.parametrize("body", [h("00"), h("0002 0001"), h("0001 0004 0005")])
def test_migration_truncated(body: bytes) -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        parse_migration(Snac(0x0001, 0x0012, 0, 1, body))


def test_service_request_chat_room() -> None:
    request = parse_service_request(_parse("service request for chat"))
    assert request.family == 0x000E
    assert request.chat_exchange == 4
    assert request.chat_cookie == "!aol://2719:10-4-lab"
    assert request.chat_instance == 0


def test_service_request_other_family() -> None:
    snac = parse_snac(encode_service_request(6, 0x0010, (Tlv(0x008C, b""),)))
    request = parse_service_request(snac)
    assert request.family == 0x0010
    assert request.tlvs == (Tlv(0x008C, b""),)
    assert request.chat_cookie is None


def test_service_request_room_truncated() -> None:
    snac = Snac(0x0001, 0x0004, 0, 6, h("000e 0001 0003 0004 05"))
    with pytest.raises(ProtocolError, match="chat room cookie"):
        parse_service_request(snac)


def test_self_info_formatted_name() -> None:
    info = parse_self_info(_parse("self info"))
    assert info.screen_name == "L A B 0 2"
    assert normalize_screen_name(info.screen_name) == "lab02"
    assert [tlv.type for tlv in info.tlvs] == [0x0001, 0x0003, 0x0005]


def test_self_info_tlv_count_too_high() -> None:
    body = h("05") + b"lab02" + h("0000 0002 0001 0002 0010")
    with pytest.raises(ProtocolError, match="truncated"):
        parse_self_info(Snac(0x0001, 0x000F, 0, 1, body))


def test_error_echoes_request_id() -> None:
    snac = parse_snac(encode_error(0x0004, 0x1234ABCD, ErrorCode.REQUEST_DENIED))
    assert snac.request_id == 0x1234ABCD
    assert (snac.family, snac.subtype) == (0x0004, 0x0001)
    assert parse_error(snac).code == 0x000D


def test_error_code_coerced() -> None:
    error = parse_error(_parse("error not logged on with subcode"))
    assert coerce(ErrorCode, error.code) is ErrorCode.NOT_LOGGED_ON
    assert coerce(ErrorCode, 0x00FF) == 0x00FF


def test_error_without_code() -> None:
    with pytest.raises(ProtocolError, match="error code is truncated"):
        parse_error(Snac(0x0004, 0x0001, 0, 1, h("00")))


@pytest.mark.parametrize(
    ("raw", "host", "port"),
    [
        (b"127.0.0.1:5190", "127.0.0.1", 5190),
        (b"127.0.0.1", "127.0.0.1", None),
        (b"localhost:443", "localhost", 443),
        (b"[::1]:5190", "::1", 5190),
        (b"::1", "::1", None),
        (b"[::1]", "::1", None),
    ],
)
def test_address_parse(raw: bytes, host: str, port: int | None) -> None:
    assert parse_address(raw) == (host, port)


@pytest.mark.parametrize(
    ("host", "port", "raw"),
    [
        ("127.0.0.1", 5190, b"127.0.0.1:5190"),
        ("127.0.0.1", None, b"127.0.0.1"),
        ("::1", 5190, b"[::1]:5190"),
    ],
)
def test_address_format(host: str, port: int | None, raw: bytes) -> None:
    assert format_address(host, port) == raw


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b"", "no host"),
        (b":5190", "no host"),
        (b"[]:5190", "no host"),
        (b"127.0.0.1:0", "port is invalid"),
        (b"127.0.0.1:65536", "port is invalid"),
        (b"127.0.0.1:-1", "port is invalid"),
        (b"127.0.0.1:51x0", "port is invalid"),
        (b"[::1]:", "port is invalid"),
        (b"127.0.0.1:", "port is invalid"),
        (b"[::1]5190", "after the bracket"),
        (b"[::1:5190", "no closing bracket"),
        ("h\xf6st:5190".encode("latin-1"), "not ASCII"),
    ],
)
def test_address_invalid(raw: bytes, rule: str) -> None:
    with pytest.raises(ProtocolError, match=rule):
        parse_address(raw)
