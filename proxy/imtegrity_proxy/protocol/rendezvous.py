"""Rendezvous: ICBM channel 2, where clients propose file transfers, direct IMs
and chat invitations.

TLV 0x05 of the ICBM holds: type (u16: 0 propose, 1 cancel, 2 accept), cookie
(8 bytes), capability (16 bytes), then TLVs: 0x02 proxy IP, 0x03 requester IP,
0x04 verified IP, 0x05 port, 0x0A sequence, 0x0C invitation text, 0x0D its
charset name, 0x0E its language, 0x10 use proxy, and 0x2711 service data. For
Send File the service data is: multiple-files flag (u16), file count (u16),
total size (u32), then the file name ending in NUL.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import Enum

from .buffer import ByteReader, u16, u32
from .enums import IcbmChannel, IcbmTlv
from .errors import ProtocolError
from .icbm import Icbm
from .text import decode_chat_text, markup_to_plain
from .tlv import Tlv, Tlvs, encode_tlvs, find_tlv, read_tlvs_to_end, replace_tlv

SERVICE_DATA_TLV = 0x2711
PORT_TLV = 0x0005
REQUESTER_IP_TLV = 0x0003
INVITATION_TLV = 0x000C
INVITATION_CHARSET_TLV = 0x000D
INVITATION_LANGUAGE_TLV = 0x000E
# Size of the rendezvous block before its TLVs: type, cookie and capability.
BLOCK_HEAD_SIZE = 2 + 8 + 16


@dataclass(frozen=True, slots=True)
class Invitation:
    """The text of rendezvous TLV 0x0C, decoded by the charset name in TLV 0x0D.

    Clients show it as HTML, like IM text. Without TLV 0x0D it is read as
    US-ASCII, with UTF-8 and then ISO-8859-1 for other bytes.
    """

    raw: bytes = field(repr=False)
    encoding: str | None
    markup: str = field(repr=False)
    charset_name: str

    @property
    def plain(self) -> str:
        return markup_to_plain(self.markup)


class Capability(Enum):
    SEND_FILE = uuid.UUID("09461343-4c7f-11d1-8222-444553540000")
    DIRECT_IM = uuid.UUID("09461345-4c7f-11d1-8222-444553540000")
    GET_FILE = uuid.UUID("09461348-4c7f-11d1-8222-444553540000")
    CHAT_INVITE = uuid.UUID("748f2420-6287-11d1-8222-444553540000")


@dataclass(frozen=True, slots=True)
class Rendezvous:
    type: int
    cookie: bytes = field(repr=False)
    capability: uuid.UUID
    tlvs: Tlvs
    file_name: str | None = None
    file_size: int | None = None
    file_count: int | None = None

    @property
    def kind(self) -> Capability | None:
        try:
            return Capability(self.capability)
        except ValueError:
            return None

    @property
    def invitation(self) -> Invitation | None:
        """The invitation text, or None when TLV 0x0C is absent."""
        raw = find_tlv(self.tlvs, INVITATION_TLV)
        if raw is None:
            return None
        encoding_raw = find_tlv(self.tlvs, INVITATION_CHARSET_TLV)
        encoding = None if encoding_raw is None else encoding_raw.decode("ascii", "replace")
        markup, charset_name = decode_chat_text(encoding, raw)
        return Invitation(raw, encoding, markup, charset_name)

    @property
    def port(self) -> int | None:
        raw = find_tlv(self.tlvs, PORT_TLV)
        return int.from_bytes(raw, "big") if raw is not None and len(raw) == 2 else None


def parse_rendezvous(icbm: Icbm) -> Rendezvous | None:
    """Decode the rendezvous block of a channel-2 ICBM; None for other channels."""
    if icbm.channel != IcbmChannel.RENDEZVOUS:
        return None
    raw = find_tlv(icbm.tlvs, IcbmTlv.RENDEZVOUS)
    if raw is None:
        raise ProtocolError("channel-2 ICBM has no rendezvous TLV", expected=IcbmTlv.RENDEZVOUS)
    return parse_rendezvous_block(raw)


def replace_block_tlvs(raw: bytes, tlvs: Tlvs) -> bytes:
    """Return the rendezvous block ``raw`` with its TLVs replaced and its head kept."""
    return raw[:BLOCK_HEAD_SIZE] + encode_tlvs(tlvs)


def with_invitation(
    raw: bytes, rendezvous: Rendezvous, text: bytes, encoding: str | None
) -> bytes:
    """Return the block ``raw`` (parsed as ``rendezvous``) with new invitation text.

    ``encoding`` replaces TLV 0x0D, or is added when the block had none; None
    leaves TLV 0x0D as it was.
    """
    tlvs = replace_tlv(rendezvous.tlvs, INVITATION_TLV, text)
    if encoding is not None:
        value = encoding.encode("ascii")
        if find_tlv(tlvs, INVITATION_CHARSET_TLV) is None:
            tlvs = (*tlvs, Tlv(INVITATION_CHARSET_TLV, value))
        else:
            tlvs = replace_tlv(tlvs, INVITATION_CHARSET_TLV, value)
    return replace_block_tlvs(raw, tlvs)


def encode_chat_invitation(cookie: bytes, room_tlv_value: bytes, text: str) -> Tlv:
    """Build ICBM TLV 0x05 for a chat invitation with text (used by the scripted client).

    ``room_tlv_value`` is the service data: exchange (u16), room cookie (u8
    length) and instance (u16). ASCII text is sent as us-ascii, other text as
    UCS-2 under the name unicode-2-0.
    """
    if text.isascii():
        raw, encoding = text.encode("ascii"), b"us-ascii"
    else:
        raw, encoding = text.encode("utf-16-be"), b"unicode-2-0"
    tlvs = (
        Tlv(0x000A, u16(1)),
        Tlv(INVITATION_TLV, raw),
        Tlv(INVITATION_CHARSET_TLV, encoding),
        Tlv(INVITATION_LANGUAGE_TLV, b"en"),
        Tlv(SERVICE_DATA_TLV, room_tlv_value),
    )
    head = u16(0) + cookie + Capability.CHAT_INVITE.value.bytes
    return Tlv(IcbmTlv.RENDEZVOUS, head + encode_tlvs(tlvs))


def parse_rendezvous_block(raw: bytes) -> Rendezvous:
    reader = ByteReader(raw, "rendezvous block")
    rdv_type = reader.u16("rendezvous type")
    cookie = reader.take(8, "rendezvous cookie")
    capability = uuid.UUID(bytes=reader.take(16, "rendezvous capability"))
    tlvs = read_tlvs_to_end(reader)
    rendezvous = Rendezvous(rdv_type, cookie, capability, tlvs)
    service_data = find_tlv(tlvs, SERVICE_DATA_TLV)
    if rendezvous.kind is Capability.SEND_FILE and service_data:
        return _with_file_info(rendezvous, service_data)
    return rendezvous


def _with_file_info(rendezvous: Rendezvous, data: bytes) -> Rendezvous:
    reader = ByteReader(data, "Send File service data")
    reader.u16("multiple files flag")
    count = reader.u16("file count")
    size = reader.u32("total size")
    name = reader.rest().split(b"\x00", 1)[0].decode("utf-8", "replace")
    return Rendezvous(
        rendezvous.type,
        rendezvous.cookie,
        rendezvous.capability,
        rendezvous.tlvs,
        file_name=name,
        file_size=size,
        file_count=count,
    )


def encode_send_file_proposal(
    cookie: bytes, file_name: str, size: int, requester_ip: bytes, port: int
) -> Tlv:
    """Build ICBM TLV 0x05 for a Send File proposal (used by the scripted client)."""
    service = u16(0x0001) + u16(1) + u32(size) + file_name.encode("utf-8") + b"\x00"
    tlvs = (
        Tlv(0x000A, u16(1)),
        Tlv(REQUESTER_IP_TLV, requester_ip),
        Tlv(PORT_TLV, u16(port)),
        Tlv(0x000F, b""),
        Tlv(SERVICE_DATA_TLV, service),
    )
    head = u16(0) + cookie + Capability.SEND_FILE.value.bytes
    return Tlv(IcbmTlv.RENDEZVOUS, head + encode_tlvs(tlvs))
