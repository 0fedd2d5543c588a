"""Chat (family 0x000E): room messages and room info.

Send (0x000E/0x0005): cookie (8 bytes), channel (u16, 3), TLVs: 0x01 public,
0x02 whisper target, 0x06 reflect, 0x05 message info. Receive (0x000E/0x0006) adds TLV 0x03, the
sender's user info. The message info holds TLVs 0x01 text, 0x02 encoding name
and 0x03 language.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .buffer import ByteReader, u16
from .enums import ChatSubtype, Family
from .errors import ProtocolError
from .snac import Snac, encode_snac, expect_snac
from .text import decode_chat_text, markup_to_plain
from .tlv import Tlv, Tlvs, encode_tlvs, find_tlv, parse_tlvs, read_counted_tlvs, read_tlvs_to_end
from .userinfo import UserInfo, decode_screen_name, read_user_info

CHAT_CHANNEL = 0x0003
PUBLIC_TLV = 0x0001
WHISPER_TLV = 0x0002
MESSAGE_INFO_TLV = 0x0005
SENDER_INFO_TLV = 0x0003
TEXT_TLV = 0x0001
ENCODING_TLV = 0x0002
LANGUAGE_TLV = 0x0003
ROOM_NAME_TLVS = (0x00D3, 0x006A)
NAV_ROOM_INFO_TLV = 0x0004


@dataclass(frozen=True, slots=True)
class ChatMessage:
    cookie: bytes = field(repr=False)
    channel: int
    tlvs: Tlvs
    raw_text: bytes = field(repr=False)
    text: str = field(repr=False)
    encoding: str | None
    charset_name: str
    sender: UserInfo | None = None

    @property
    def plain(self) -> str:
        return markup_to_plain(self.text)

    @property
    def whisper_target(self) -> str | None:
        """The one user a whisper goes to, or None for a message to the whole room.

        Open OSCAR Server v0.22.0 (``ChatService.ChannelMsgToHost``) sends a
        message to one user when TLV 0x02 names one and the public flag TLV 0x01
        is absent, so the same test decides here.
        """
        raw = find_tlv(self.tlvs, WHISPER_TLV)
        if raw is None or find_tlv(self.tlvs, PUBLIC_TLV) is not None:
            return None
        return decode_screen_name(raw)


def parse_chat_send(snac: Snac) -> ChatMessage:
    _expect(snac, ChatSubtype.CHANNEL_MSG_TO_HOST)
    return _parse_chat(snac.body, "chat send")


def parse_chat_receive(snac: Snac) -> ChatMessage:
    _expect(snac, ChatSubtype.CHANNEL_MSG_TO_CLIENT)
    return _parse_chat(snac.body, "chat receive")


def _parse_chat(body: bytes, context: str) -> ChatMessage:
    reader = ByteReader(body, context)
    cookie = reader.take(8, "chat cookie")
    channel = reader.u16("chat channel")
    tlvs = read_tlvs_to_end(reader)
    info_raw = find_tlv(tlvs, MESSAGE_INFO_TLV)
    info = parse_tlvs(info_raw, "chat message info") if info_raw is not None else ()
    raw_text = find_tlv(info, TEXT_TLV) or b""
    encoding_raw = find_tlv(info, ENCODING_TLV)
    encoding = None if encoding_raw is None else encoding_raw.decode("ascii", "replace")
    text, charset_name = decode_chat_text(encoding, raw_text)
    sender_raw = find_tlv(tlvs, SENDER_INFO_TLV)
    sender = None
    if sender_raw is not None:
        sender = read_user_info(ByteReader(sender_raw, "chat sender info"))
    return ChatMessage(cookie, channel, tlvs, raw_text, text, encoding, charset_name, sender)


def encode_chat_send(
    request_id: int, cookie: bytes, text: str, whisper_to: str | None = None
) -> bytes:
    """Build a chat send (used by the scripted client): ASCII or UCS-2.

    With ``whisper_to``, the message goes to that user only: TLV 0x02 names
    the user and the public flag is left out.
    """
    if text.isascii():
        raw, encoding = text.encode("ascii"), b"us-ascii"
    else:
        raw, encoding = text.encode("utf-16-be"), b"unicode-2-0"
    info = encode_tlvs((Tlv(TEXT_TLV, raw), Tlv(ENCODING_TLV, encoding), Tlv(LANGUAGE_TLV, b"en")))
    if whisper_to is None:
        audience = Tlv(PUBLIC_TLV, b"")
    else:
        audience = Tlv(WHISPER_TLV, whisper_to.encode("utf-8"))
    tlvs = (audience, Tlv(0x0006, b""), Tlv(MESSAGE_INFO_TLV, info))
    body = cookie + u16(CHAT_CHANNEL) + encode_tlvs(tlvs)
    return encode_snac(Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_HOST, request_id, body)


@dataclass(frozen=True, slots=True)
class RoomInfo:
    exchange: int
    cookie: str
    instance: int
    name: str | None


def parse_room_info(snac: Snac) -> RoomInfo:
    """Decode 0x000E/0x0002, which names the room of a chat connection."""
    _expect(snac, ChatSubtype.ROOM_INFO_UPDATE)
    return parse_room_info_body(snac.body)


def parse_room_info_body(body: bytes) -> RoomInfo:
    """Decode the room info layout that 0x000E/0x0002 and chat navigation share."""
    reader = ByteReader(body, "chat room info")
    exchange = reader.u16("chat exchange")
    cookie = reader.u8_string("chat room cookie").decode("utf-8", "replace")
    instance = reader.u16("chat instance")
    reader.u8("chat detail level")
    tlvs = read_counted_tlvs(reader, reader.u16("chat room TLV count"))
    name = None
    for tlv_type in ROOM_NAME_TLVS:
        raw = find_tlv(tlvs, tlv_type)
        if raw is not None:
            name = raw.decode("utf-8", "replace")
            break
    return RoomInfo(exchange, cookie, instance, name)


def encode_create_room(request_id: int, exchange: int, name: str) -> bytes:
    """Build chat navigation 0x000D/0x0008, which creates or finds a room by name."""
    cookie = b"create"
    tlvs = (Tlv(ROOM_NAME_TLVS[0], name.encode("utf-8")),)
    body = (
        u16(exchange)
        + bytes([len(cookie)])
        + cookie
        + u16(0xFFFF)
        + b"\x01"
        + u16(len(tlvs))
        + encode_tlvs(tlvs)
    )
    return encode_snac(Family.CHAT_NAV, 0x0008, request_id, body)


def parse_nav_info_room(snac: Snac) -> RoomInfo:
    """Decode the room of a chat navigation reply 0x000D/0x0009 (TLV 0x04)."""
    if snac.family != Family.CHAT_NAV or snac.subtype != 0x0009:
        raise ProtocolError(
            "expected chat navigation info",
            expected=(Family.CHAT_NAV << 16) | 0x0009,
            actual=(snac.family << 16) | snac.subtype,
        )
    tlvs = read_tlvs_to_end(ByteReader(snac.body, "chat navigation info"))
    raw = find_tlv(tlvs, NAV_ROOM_INFO_TLV)
    if raw is None:
        raise ProtocolError("chat navigation info has no room TLV", expected=NAV_ROOM_INFO_TLV)
    return parse_room_info_body(raw)


def _expect(snac: Snac, subtype: ChatSubtype) -> None:
    expect_snac(snac, Family.CHAT, subtype, "chat")


def room_name_from_cookie(cookie: str) -> str:
    """Take the room name from a chat cookie of the form ``exchange-instance-name``.

    Clients and servers agree only on the third segment being the name; a cookie
    of another shape is returned whole.
    """
    parts = cookie.split("-", 2)
    return parts[2] if len(parts) == 3 and parts[2] else cookie
