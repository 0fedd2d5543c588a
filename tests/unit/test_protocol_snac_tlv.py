"""SNAC headers, TLV lists and the tolerant enum conversion."""

from __future__ import annotations

import pytest
from imtegrity_proxy.protocol import enums
from imtegrity_proxy.protocol.enums import Channel, Family, SignonTlv, coerce
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.snac import encode_snac, parse_snac
from imtegrity_proxy.protocol.tlv import (
    Tlv,
    encode_tlvs,
    find_tlv,
    parse_tlvs,
    remove_tlv,
    replace_tlv,
)

from tests.unit.protocol_vectors import SNAC_VECTORS, TLV_VECTORS, SnacVector, TlvVector, h


def _snac_name(vector: SnacVector) -> str:
    return vector.name


def _tlv_name(vector: TlvVector) -> str:
    return vector.name


@pytest.mark.parametrize("vector", SNAC_VECTORS, ids=_snac_name)
def test_snac_parse(vector: SnacVector) -> None:
    assert parse_snac(vector.raw) == vector.snac


@pytest.mark.parametrize("vector", SNAC_VECTORS, ids=_snac_name)
def test_snac_to_bytes(vector: SnacVector) -> None:
    assert vector.snac.to_bytes() == vector.raw


@pytest.mark.parametrize("vector", SNAC_VECTORS, ids=_snac_name)
def test_snac_reserialise(vector: SnacVector) -> None:
    assert parse_snac(vector.raw).to_bytes() == vector.raw


@pytest.mark.parametrize("vector", [v for v in SNAC_VECTORS if not v.snac.prefix], ids=_snac_name)
def test_snac_encode(vector: SnacVector) -> None:
    snac = vector.snac
    encoded = encode_snac(snac.family, snac.subtype, snac.request_id, snac.body, snac.flags)
    assert encoded == vector.raw


def test_snac_flags() -> None:
    more = parse_snac(h("0002 0006 0001 00000003"))
    single = parse_snac(h("0002 0006 8000 00000003 0000"))
    assert more.more_replies
    assert not single.more_replies


def test_snac_prefix_kept_on_new_body() -> None:
    snac = parse_snac(h("0001 0003 8000 00000002 0006 0001 0002 0004 0001 0002"))
    changed = snac.with_body(h("beef"))
    assert changed.prefix == snac.prefix
    assert changed.to_bytes() == h("0001 0003 8000 00000002 0006 0001 0002 0004 beef")


def test_snac_family_kind() -> None:
    assert parse_snac(h("0004 0006 0000 00000001")).family_kind is Family.ICBM
    assert parse_snac(h("7777 0006 0000 00000001")).family_kind == 0x7777


@pytest.mark.parametrize(
    "raw",
    [b"", h("0004"), h("0004 0006 0000 000000")],
    ids=["empty", "family only", "nine bytes"],
)
def test_snac_header_truncated(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="SNAC header is truncated"):
        parse_snac(raw)


@pytest.mark.parametrize(
    "raw",
    [
        h("0001 0003 8000 00000002"),
        h("0001 0003 8000 00000002 00"),
        h("0001 0003 8000 00000002 0006 0001"),
    ],
    ids=["no length", "half a length", "short block"],
)
def test_snac_prefix_truncated(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="0x8000 block"):
        parse_snac(raw)


@pytest.mark.parametrize("vector", TLV_VECTORS, ids=_tlv_name)
def test_tlv_parse(vector: TlvVector) -> None:
    assert parse_tlvs(vector.raw) == vector.tlvs


@pytest.mark.parametrize("vector", TLV_VECTORS, ids=_tlv_name)
def test_tlv_encode(vector: TlvVector) -> None:
    assert encode_tlvs(vector.tlvs) == vector.raw


@pytest.mark.parametrize("vector", TLV_VECTORS, ids=_tlv_name)
def test_tlv_reserialise(vector: TlvVector) -> None:
    assert encode_tlvs(parse_tlvs(vector.raw)) == vector.raw


@pytest.mark.parametrize(
    "raw",
    [h("00"), h("0001"), h("0001 00"), h("0001 0002 61"), h("0001 0000 0002")],
    ids=["half a type", "type only", "half a length", "short value", "second TLV cut"],
)
def test_tlv_truncated(raw: bytes) -> None:
    with pytest.raises(ProtocolError, match="truncated"):
        parse_tlvs(raw)


def test_tlv_find_first_of_duplicates() -> None:
    tlvs = parse_tlvs(h("0001 0001 61 0001 0001 62"))
    assert find_tlv(tlvs, 0x0001) == b"a"
    assert find_tlv(tlvs, 0x0002) is None


def test_tlv_replace_keeps_order() -> None:
    tlvs = parse_tlvs(h("000d 0002 000e 0005 0001 7a 0006 0001 79"))
    replaced = replace_tlv(tlvs, 0x0005, b"127.0.0.1:5191")
    assert [tlv.type for tlv in replaced] == [0x000D, 0x0005, 0x0006]
    assert replaced[1].value == b"127.0.0.1:5191"
    assert replaced[0] == tlvs[0]
    assert replaced[2] == tlvs[2]


def test_tlv_remove_every_copy() -> None:
    tlvs = parse_tlvs(h("0001 0001 61 0003 0000 0001 0001 62"))
    assert remove_tlv(tlvs, 0x0001) == (Tlv(0x0003, b""),)


def test_tlv_value_too_long_to_encode() -> None:
    with pytest.raises(ProtocolError, match="too long"):
        Tlv(0x0002, bytes(0x10000)).to_bytes()


def test_tlv_max_value_length() -> None:
    raw = h("0002 ffff") + bytes(0xFFFF)
    assert parse_tlvs(raw) == (Tlv(0x0002, bytes(0xFFFF)),)
    assert Tlv(0x0002, bytes(0xFFFF)).to_bytes() == raw


# Enums: a known code becomes a member, an unknown code stays a plain int.

ENUM_CLASSES = [
    value
    for value in vars(enums).values()
    if isinstance(value, type) and issubclass(value, enums.IntEnum) and value is not enums.IntEnum
]


@pytest.mark.parametrize("enum", ENUM_CLASSES, ids=lambda enum: enum.__name__)
def test_coerce_known_code(enum: type[enums.IntEnum]) -> None:
    for member in enum:
        result = coerce(enum, int(member))
        assert result is member


@pytest.mark.parametrize("enum", ENUM_CLASSES, ids=lambda enum: enum.__name__)
def test_coerce_unknown_code(enum: type[enums.IntEnum]) -> None:
    unknown = max(int(member) for member in enum) + 0x0100
    result = coerce(enum, unknown)
    assert result == unknown
    assert type(result) is int


def test_coerce_examples() -> None:
    assert coerce(Channel, 5) is Channel.KEEPALIVE
    assert coerce(SignonTlv, 0x0006) is SignonTlv.COOKIE
    assert coerce(Family, 0x4242) == 0x4242


def test_unknown_codes_relayed_unchanged() -> None:
    raw = h("4242 4343 0000 00000001 abcd 0003 010203 0000 0000")
    snac = parse_snac(raw)
    tlvs = parse_tlvs(snac.body)
    assert snac.family_kind == 0x4242
    assert coerce(SignonTlv, tlvs[0].type) == 0xABCD
    assert encode_snac(snac.family, snac.subtype, snac.request_id, encode_tlvs(tlvs)) == raw
    assert snac.to_bytes() == raw
