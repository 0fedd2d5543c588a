"""The user info block that ICBM, chat and self-info SNACs embed.

Layout: screen name (u8 length), warning level (u16), TLV count (u16), then that
many TLVs. The TLVs must be skipped as one counted block: TLV 0x0002 inside it
is a creation time, not message text.
"""

from __future__ import annotations

from dataclasses import dataclass

from .buffer import ByteReader, u16
from .tlv import Tlvs, encode_tlvs, read_counted_tlvs


@dataclass(frozen=True, slots=True)
class UserInfo:
    screen_name: str
    warning_level: int
    tlvs: Tlvs

    def to_bytes(self) -> bytes:
        # NOTE: a name decoded from invalid UTF-8 re-encodes to other bytes, and one
        # over 255 bytes raises ValueError, so relay the received bytes instead.
        name = self.screen_name.encode("utf-8")
        return (
            bytes([len(name)])
            + name
            + u16(self.warning_level)
            + u16(len(self.tlvs))
            + encode_tlvs(self.tlvs)
        )


def read_user_info(reader: ByteReader) -> UserInfo:
    name = decode_screen_name(reader.u8_string("user info screen name"))
    warning = reader.u16("user info warning level")
    count = reader.u16("user info TLV count")
    return UserInfo(name, warning, read_counted_tlvs(reader, count))


def decode_screen_name(raw: bytes) -> str:
    """Decode a screen name; names are ASCII in practice, UTF-8 is accepted."""
    return raw.decode("utf-8", errors="replace")


def normalize_screen_name(name: str) -> str:
    """Return the comparison form: lower case with spaces removed.

    Each character is lowered on its own and keeps its length, as Go's
    ``strings.ToLower`` does in Open OSCAR Server: Python's ``"İ".lower()`` is
    two characters ("i" and U+0307), which would name another account than the
    server's "i".
    """
    return "".join(_lower_one(char) for char in name if char != " ")


def _lower_one(char: str) -> str:
    lowered = char.lower()
    return lowered if len(lowered) == 1 else lowered[0]
