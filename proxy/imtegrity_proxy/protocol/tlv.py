"""TLVs: type (u16), length (u16), value.

TLVs are kept as an ordered tuple, never a dict: some clients depend on their
order, duplicates occur, and a frame the proxy does not change must serialise
back to the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .buffer import ByteReader, u16
from .errors import ProtocolError

MAX_VALUE = 0xFFFF


@dataclass(frozen=True, slots=True)
class Tlv:
    type: int
    value: bytes

    def to_bytes(self) -> bytes:
        if len(self.value) > MAX_VALUE:
            raise ProtocolError(
                "TLV value too long to encode", expected=MAX_VALUE, actual=len(self.value)
            )
        return u16(self.type) + u16(len(self.value)) + self.value

    def __repr__(self) -> str:
        # Values can hold passwords, hashes and cookies, so a repr shows only the size.
        return f"Tlv(type=0x{self.type:04x}, length={len(self.value)})"


Tlvs = tuple[Tlv, ...]


def read_tlv(reader: ByteReader) -> Tlv:
    tlv_type = reader.u16("TLV type")
    return Tlv(tlv_type, reader.u16_string(f"TLV 0x{tlv_type:04x} value"))


def parse_tlvs(data: bytes, context: str = "TLV list") -> Tlvs:
    """Parse TLVs that fill ``data`` exactly."""
    reader = ByteReader(data, context)
    return read_tlvs_to_end(reader)


def read_tlvs_to_end(reader: ByteReader) -> Tlvs:
    tlvs = []
    while reader.remaining:
        tlvs.append(read_tlv(reader))
    return tuple(tlvs)


def read_counted_tlvs(reader: ByteReader, count: int) -> Tlvs:
    """Read exactly ``count`` TLVs (a block preceded by a u16 count)."""
    return tuple(read_tlv(reader) for _ in range(count))


def read_length_prefixed_tlvs(reader: ByteReader, field: str) -> Tlvs:
    """Read a TLV block preceded by its u16 byte length."""
    block = reader.u16_string(field)
    return parse_tlvs(block, field)


def encode_tlvs(tlvs: Iterable[Tlv]) -> bytes:
    return b"".join(tlv.to_bytes() for tlv in tlvs)


def find_tlv(tlvs: Sequence[Tlv], tlv_type: int) -> bytes | None:
    """Return the value of the first TLV of ``tlv_type``, or None."""
    for tlv in tlvs:
        if tlv.type == tlv_type:
            return tlv.value
    return None


def replace_tlv(tlvs: Sequence[Tlv], tlv_type: int, value: bytes) -> Tlvs:
    """Replace the value of every TLV of ``tlv_type``, keeping order and the rest."""
    return tuple(Tlv(t.type, value) if t.type == tlv_type else t for t in tlvs)


def remove_tlv(tlvs: Sequence[Tlv], tlv_type: int) -> Tlvs:
    return tuple(t for t in tlvs if t.type != tlv_type)
