"""SNAC: the header of every channel-2 FLAP payload.

Header: family (u16), subtype (u16), flags (u16), request id (u32). Flag 0x8000
means a TLV block with a u16 byte length precedes the body; flag 0x0001 means
more SNACs with the same request id follow. Replies echo the request id, and
the server sets the top bit of the request id on SNACs it starts itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .buffer import ByteReader
from .enums import Family, coerce
from .errors import ProtocolError

HEADER = struct.Struct(">HHHI")
HEADER_SIZE = HEADER.size
FLAG_MORE_REPLIES = 0x0001
FLAG_OPTIONAL_TLVS = 0x8000
SERVER_INITIATED = 0x80000000


@dataclass(frozen=True, slots=True)
class Snac:
    """One SNAC. ``prefix`` is the raw length-prefixed block of flag 0x8000."""

    family: int
    subtype: int
    flags: int
    request_id: int
    body: bytes
    prefix: bytes = b""

    @property
    def family_kind(self) -> Family | int:
        return coerce(Family, self.family)

    @property
    def more_replies(self) -> bool:
        return bool(self.flags & FLAG_MORE_REPLIES)

    def to_bytes(self) -> bytes:
        header = HEADER.pack(self.family, self.subtype, self.flags, self.request_id)
        return header + self.prefix + self.body

    def with_body(self, body: bytes) -> Snac:
        return Snac(self.family, self.subtype, self.flags, self.request_id, body, self.prefix)

    def __repr__(self) -> str:
        return (
            f"Snac(0x{self.family:04x}/0x{self.subtype:04x}, flags=0x{self.flags:04x}, "
            f"request_id=0x{self.request_id:08x}, body={len(self.body)} bytes)"
        )


def parse_snac(payload: bytes) -> Snac:
    """Parse a channel-2 FLAP payload."""
    if len(payload) < HEADER_SIZE:
        raise ProtocolError(
            "SNAC header is truncated",
            expected=f"{HEADER_SIZE} bytes",
            actual=f"{len(payload)} bytes",
        )
    family, subtype, flags, request_id = HEADER.unpack_from(payload)
    prefix = b""
    body_start = HEADER_SIZE
    if flags & FLAG_OPTIONAL_TLVS:
        reader = ByteReader(payload, "SNAC 0x8000 block", HEADER_SIZE)
        reader.u16_string("SNAC 0x8000 block")
        body_start = reader.offset
        prefix = payload[HEADER_SIZE:body_start]
    return Snac(family, subtype, flags, request_id, payload[body_start:], prefix)


def expect_snac(snac: Snac, family: int, subtype: int, label: str) -> None:
    """Raise ProtocolError unless ``snac`` is (family, subtype); ``label`` names the family."""
    if snac.family != family or snac.subtype != subtype:
        raise ProtocolError(
            f"expected {label} subtype 0x{subtype:04x}",
            expected=(family << 16) | subtype,
            actual=(snac.family << 16) | snac.subtype,
        )


def encode_snac(family: int, subtype: int, request_id: int, body: bytes, flags: int = 0) -> bytes:
    return HEADER.pack(family, subtype, flags, request_id) + body
