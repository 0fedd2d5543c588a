"""Family 0x0001: service requests, redirects, migration, self info and errors.

A redirect (0x0001/0x0005) and a migration (0x0001/0x0012) hand the client a
new address in TLV 0x05 and a cookie in TLV 0x06. The proxy replaces only TLV
0x05 and keeps every other TLV in its order, because some clients need TLV
0x0D first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .address import parse_address
from .buffer import ByteReader, u16
from .enums import Family, OServiceSubtype, RedirectTlv
from .errors import ProtocolError
from .snac import Snac, encode_snac, expect_snac
from .tlv import Tlv, Tlvs, encode_tlvs, find_tlv, read_tlvs_to_end, replace_tlv
from .userinfo import UserInfo, read_user_info


@dataclass(frozen=True, slots=True)
class Redirect:
    """Decoded 0x0001/0x0005 body."""

    tlvs: Tlvs
    family: int | None
    host: str | None
    port: int | None
    cookie: bytes | None = field(default=None, repr=False)

    def with_address(self, address: bytes) -> bytes:
        """Return the body with TLV 0x05 replaced."""
        return encode_tlvs(replace_tlv(self.tlvs, RedirectTlv.ADDRESS, address))


def parse_redirect(snac: Snac) -> Redirect:
    _expect(snac, OServiceSubtype.SERVICE_RESPONSE)
    tlvs = read_tlvs_to_end(ByteReader(snac.body, "service redirect TLVs"))
    family_raw = find_tlv(tlvs, RedirectTlv.FAMILY)
    address = find_tlv(tlvs, RedirectTlv.ADDRESS)
    host, port = parse_address(address) if address else (None, None)
    return Redirect(
        tlvs=tlvs,
        family=_u16_or_none(family_raw, "redirect TLV 0x000d family"),
        host=host,
        port=port,
        cookie=find_tlv(tlvs, RedirectTlv.COOKIE),
    )


@dataclass(frozen=True, slots=True)
class Migration:
    """Decoded 0x0001/0x0012 body: the families that move, then TLVs."""

    families: tuple[int, ...]
    tlvs: Tlvs
    host: str | None
    port: int | None
    cookie: bytes | None = field(default=None, repr=False)

    def with_address(self, address: bytes) -> bytes:
        head = u16(len(self.families)) + b"".join(u16(f) for f in self.families)
        return head + encode_tlvs(replace_tlv(self.tlvs, RedirectTlv.ADDRESS, address))


def parse_migration(snac: Snac) -> Migration:
    _expect(snac, OServiceSubtype.MIGRATE_GROUPS)
    reader = ByteReader(snac.body, "migration")
    count = reader.u16("migration family count")
    families = tuple(reader.u16("migration family") for _ in range(count))
    tlvs = read_tlvs_to_end(reader)
    address = find_tlv(tlvs, RedirectTlv.ADDRESS)
    host, port = parse_address(address) if address else (None, None)
    return Migration(families, tlvs, host, port, find_tlv(tlvs, RedirectTlv.COOKIE))


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """Decoded 0x0001/0x0004: the family asked for, and for chat the room."""

    family: int
    tlvs: Tlvs
    chat_exchange: int | None = None
    chat_cookie: str | None = None
    chat_instance: int | None = None


def parse_service_request(snac: Snac) -> ServiceRequest:
    _expect(snac, OServiceSubtype.SERVICE_REQUEST)
    reader = ByteReader(snac.body, "service request")
    family = reader.u16("service request family")
    tlvs = read_tlvs_to_end(reader)
    room = find_tlv(tlvs, RedirectTlv.ROOM_INFO)
    if family != Family.CHAT or room is None:
        return ServiceRequest(family, tlvs)
    room_reader = ByteReader(room, "chat room TLV 0x0001")
    exchange = room_reader.u16("chat exchange")
    cookie = room_reader.u8_string("chat room cookie").decode("utf-8", "replace")
    instance = room_reader.u16("chat instance")
    return ServiceRequest(family, tlvs, exchange, cookie, instance)


def parse_self_info(snac: Snac) -> UserInfo:
    """Decode 0x0001/0x000F, which carries the user's own formatted screen name."""
    _expect(snac, OServiceSubtype.USER_INFO_UPDATE)
    return read_user_info(ByteReader(snac.body, "self info"))


@dataclass(frozen=True, slots=True)
class ErrorSnac:
    code: int
    tlvs: Tlvs


def parse_error(snac: Snac) -> ErrorSnac:
    """Decode an error SNAC (any family, subtype 0x0001)."""
    reader = ByteReader(snac.body, "error SNAC")
    code = reader.u16("error code")
    return ErrorSnac(code, read_tlvs_to_end(reader))


def encode_error(family: int, request_id: int, code: int, tlvs: Tlvs = ()) -> bytes:
    """An error SNAC that echoes ``request_id`` so the client matches it to its request."""
    return encode_snac(family, 0x0001, request_id, u16(code) + encode_tlvs(tlvs))


def encode_service_request(request_id: int, family: int, tlvs: Tlvs = ()) -> bytes:
    body = u16(family) + encode_tlvs(tlvs)
    return encode_snac(Family.OSERVICE, OServiceSubtype.SERVICE_REQUEST, request_id, body)


def chat_room_tlv(exchange: int, cookie: str, instance: int) -> Tlv:
    raw = cookie.encode("utf-8")
    return Tlv(RedirectTlv.ROOM_INFO, u16(exchange) + bytes([len(raw)]) + raw + u16(instance))


def _expect(snac: Snac, subtype: OServiceSubtype) -> None:
    expect_snac(snac, Family.OSERVICE, subtype, "OSERVICE")


def _u16_or_none(raw: bytes | None, field_name: str) -> int | None:
    if raw is None:
        return None
    if len(raw) != 2:
        raise ProtocolError(f"{field_name} length", expected=2, actual=len(raw))
    return int.from_bytes(raw, "big")


__all__ = [
    "ErrorSnac",
    "Migration",
    "Redirect",
    "ServiceRequest",
    "chat_room_tlv",
    "encode_error",
    "encode_service_request",
    "parse_error",
    "parse_migration",
    "parse_redirect",
    "parse_self_info",
    "parse_service_request",
]
