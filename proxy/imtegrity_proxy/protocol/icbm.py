"""ICBM (family 0x0004): instant messages, typing notifications, acks and errors.

Send (0x0004/0x0006): ICBM cookie (8 bytes), channel (u16), screen name (u8
length), TLVs. Receive (0x0004/0x0007): cookie, channel, the sender's user info
block, TLVs. On channel 1 the text is in TLV 0x02 as fragments: id (u8),
version (u8), length (u16), data; 05 01 lists features, and each 01 01 holds
charset (u16), subset (u16) and text. On channel 4 (ICQ-style) the text is in
TLV 0x05, little-endian: sender UIN (u32), message type (u8), flags (u8), then
the text with its u16 length, ending in NUL (Open OSCAR Server v0.22.0,
``wire.ICBMCh4Message``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .buffer import ByteReader, u16
from .enums import Family, IcbmChannel, IcbmSubtype, IcbmTlv
from .errors import ProtocolError
from .snac import Snac, encode_snac, expect_snac
from .text import (
    decode_fragment_text,
    decode_legacy_text,
    encode_fragment_text,
    markup_to_plain,
    remove_invisible,
)
from .tlv import Tlv, Tlvs, encode_tlvs, find_tlv, read_tlvs_to_end, replace_tlv
from .userinfo import UserInfo, decode_screen_name, read_user_info

FEATURES_ID = 0x05
TEXT_ID = 0x01
FRAGMENT_VERSION = 0x01
DEFAULT_FEATURES = b"\x01"
COOKIE_SIZE = 8

# Channel-4 message types: 0x01 is plain text. Other types (URL, authorization
# request, contacts) hold several fields separated by 0xFE.
ICQ_PLAIN_TEXT = 0x01
ICQ_FIELD_SEPARATOR = b"\xfe"


@dataclass(frozen=True, slots=True)
class Fragment:
    """One fragment of ICBM TLV 0x02."""

    id: int
    version: int
    data: bytes = field(repr=False)

    def to_bytes(self) -> bytes:
        return bytes([self.id, self.version]) + u16(len(self.data)) + self.data


@dataclass(frozen=True, slots=True)
class TextPart:
    charset: int
    subset: int
    raw: bytes = field(repr=False)
    text: str = field(repr=False)
    charset_name: str = ""


@dataclass(frozen=True, slots=True)
class MessageBody:
    """Decoded ICBM TLV 0x02: its fragments and the text they carry."""

    fragments: tuple[Fragment, ...]
    parts: tuple[TextPart, ...]

    @property
    def markup(self) -> str:
        return "".join(part.text for part in self.parts)

    @property
    def plain(self) -> str:
        return markup_to_plain(self.markup)

    @property
    def charset_name(self) -> str:
        names = {part.charset_name for part in self.parts}
        if not names:
            return "none"
        return names.pop() if len(names) == 1 else "mixed"

    def __repr__(self) -> str:
        return f"MessageBody(fragments={len(self.fragments)}, parts={len(self.parts)})"


def parse_fragments(data: bytes) -> tuple[Fragment, ...]:
    reader = ByteReader(data, "ICBM TLV 0x0002 fragments")
    fragments = []
    while reader.remaining:
        frag_id = reader.u8("fragment id")
        version = reader.u8("fragment version")
        fragments.append(Fragment(frag_id, version, reader.u16_string("fragment data")))
    return tuple(fragments)


def parse_message_body(data: bytes) -> MessageBody:
    fragments = parse_fragments(data)
    parts = tuple(_text_part(f) for f in fragments if f.id == TEXT_ID)
    return MessageBody(fragments, parts)


def _text_part(fragment: Fragment) -> TextPart:
    reader = ByteReader(fragment.data, "ICBM text fragment")
    charset = reader.u16("text charset")
    subset = reader.u16("text charset subset")
    raw = reader.rest()
    text, name = decode_fragment_text(charset, raw)
    return TextPart(charset, subset, raw, text, name)


def encode_message_body(text: str, features: bytes = DEFAULT_FEATURES) -> bytes:
    charset, raw = encode_fragment_text(text)
    features_fragment = Fragment(FEATURES_ID, FRAGMENT_VERSION, features)
    text_fragment = Fragment(TEXT_ID, FRAGMENT_VERSION, u16(charset) + u16(0) + raw)
    return features_fragment.to_bytes() + text_fragment.to_bytes()


@dataclass(frozen=True, slots=True)
class IcqMessage:
    """Decoded TLV 0x05 of a channel-4 ICBM.

    ``raw`` is the text without its NUL. Channel-4 text is not markup, so
    ``markup`` is the text itself and ``plain`` only drops format characters.
    NOTE: a client that renders channel-4 text as HTML would hide tags that
    rules still see here, so "se<b></b>cret" does not match a rule on "secret".
    """

    uin: int
    message_type: int
    flags: int
    raw: bytes = field(repr=False)
    text: str = field(repr=False)
    charset_name: str

    @property
    def markup(self) -> str:
        return self.text

    @property
    def plain(self) -> str:
        return remove_invisible(self.text)

    def with_raw(self, raw: bytes) -> bytes:
        """Return TLV 0x05 with ``raw`` as the text and every other field kept."""
        return encode_icq_message(self.uin, self.message_type, self.flags, raw)


def parse_icq_message(data: bytes) -> IcqMessage:
    """Decode channel-4 TLV 0x05; raise ProtocolError unless it holds exactly one text.

    For types other than plain text, the 0xFE field separators become line breaks.
    """
    reader = ByteReader(data, "ICBM channel-4 message")
    uin = int.from_bytes(reader.take(4, "sender UIN"), "little")
    message_type = reader.u8("message type")
    flags = reader.u8("message flags")
    length = int.from_bytes(reader.take(2, "text length"), "little")
    raw = reader.take(length, "text")
    if reader.remaining:
        raise ProtocolError(
            "ICBM channel-4 message: bytes after the text", actual=f"{reader.remaining} bytes"
        )
    if raw:
        if raw[-1] != 0:
            raise ProtocolError("ICBM channel-4 message: text does not end in NUL")
        raw = raw[:-1]
    if b"\x00" in raw:
        raise ProtocolError("ICBM channel-4 message: NUL inside the text")
    lines = raw if message_type == ICQ_PLAIN_TEXT else raw.replace(ICQ_FIELD_SEPARATOR, b"\n")
    text, charset_name = decode_legacy_text(lines)
    return IcqMessage(uin, message_type, flags, raw, text, charset_name)


def encode_icq_message(uin: int, message_type: int, flags: int, raw: bytes) -> bytes:
    """Build channel-4 TLV 0x05 around ``raw`` (text bytes without the NUL)."""
    text = raw + b"\x00"
    if len(text) > 0xFFFF:
        raise ProtocolError("ICBM channel-4 text too long", expected=0xFFFF, actual=len(text))
    head = uin.to_bytes(4, "little") + bytes([message_type, flags])
    return head + len(text).to_bytes(2, "little") + text


@dataclass(frozen=True, slots=True)
class Icbm:
    """A decoded ICBM send (outbound) or receive (inbound)."""

    cookie: bytes = field(repr=False)
    channel: int
    screen_name: str
    tlvs: Tlvs
    sender: UserInfo | None = None

    @property
    def message(self) -> MessageBody | None:
        """The channel-1 text, or None for other channels or a missing TLV 0x02."""
        raw = find_tlv(self.tlvs, IcbmTlv.MESSAGE)
        if self.channel != IcbmChannel.IM or raw is None:
            return None
        return parse_message_body(raw)

    @property
    def icq_message(self) -> IcqMessage | None:
        """The channel-4 message, or None for other channels or a missing TLV 0x05."""
        # TLV 0x05 carries the data of both channel 2 and channel 4.
        raw = find_tlv(self.tlvs, IcbmTlv.RENDEZVOUS)
        if self.channel != IcbmChannel.DATA or raw is None:
            return None
        return parse_icq_message(raw)

    @property
    def auto_response(self) -> bool:
        return find_tlv(self.tlvs, IcbmTlv.AUTO_RESPONSE) is not None

    @property
    def wants_ack(self) -> bool:
        return find_tlv(self.tlvs, IcbmTlv.REQUEST_HOST_ACK) is not None

    def with_message(self, body: bytes) -> Icbm:
        tlvs = replace_tlv(self.tlvs, IcbmTlv.MESSAGE, body)
        return Icbm(self.cookie, self.channel, self.screen_name, tlvs, self.sender)


def parse_icbm_send(snac: Snac) -> Icbm:
    _expect(snac, IcbmSubtype.CHANNEL_MSG_TO_HOST)
    reader = ByteReader(snac.body, "ICBM send")
    cookie = reader.take(COOKIE_SIZE, "ICBM cookie")
    channel = reader.u16("ICBM channel")
    name = decode_screen_name(reader.u8_string("recipient screen name"))
    return Icbm(cookie, channel, name, read_tlvs_to_end(reader))


def parse_icbm_receive(snac: Snac) -> Icbm:
    _expect(snac, IcbmSubtype.CHANNEL_MSG_TO_CLIENT)
    reader = ByteReader(snac.body, "ICBM receive")
    cookie = reader.take(COOKIE_SIZE, "ICBM cookie")
    channel = reader.u16("ICBM channel")
    sender = read_user_info(reader)
    return Icbm(cookie, channel, sender.screen_name, read_tlvs_to_end(reader), sender)


def encode_icbm_send(
    request_id: int, cookie: bytes, recipient: str, tlvs: Tlvs, channel: int = IcbmChannel.IM
) -> bytes:
    name = recipient.encode("utf-8")
    body = _cookie(cookie) + u16(channel) + bytes([len(name)]) + name + encode_tlvs(tlvs)
    return encode_snac(Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_HOST, request_id, body)


def encode_icbm_receive(
    request_id: int, cookie: bytes, sender: UserInfo, tlvs: Tlvs, channel: int = IcbmChannel.IM
) -> bytes:
    body = _cookie(cookie) + u16(channel) + sender.to_bytes() + encode_tlvs(tlvs)
    return encode_snac(Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT, request_id, body)


def text_message_tlvs(text: str, *, ack: bool = False) -> Tlvs:
    tlvs = [Tlv(IcbmTlv.MESSAGE, encode_message_body(text))]
    if ack:
        tlvs.append(Tlv(IcbmTlv.REQUEST_HOST_ACK, b""))
    return tuple(tlvs)


@dataclass(frozen=True, slots=True)
class TypingNotification:
    cookie: bytes = field(repr=False)
    channel: int
    screen_name: str
    event: int


def parse_typing(snac: Snac) -> TypingNotification:
    _expect(snac, IcbmSubtype.CLIENT_EVENT)
    reader = ByteReader(snac.body, "typing notification")
    cookie = reader.take(COOKIE_SIZE, "ICBM cookie")
    channel = reader.u16("ICBM channel")
    name = decode_screen_name(reader.u8_string("screen name"))
    return TypingNotification(cookie, channel, name, reader.u16("typing event"))


def encode_typing(request_id: int, cookie: bytes, screen_name: str, event: int) -> bytes:
    name = screen_name.encode("utf-8")
    body = _cookie(cookie) + u16(IcbmChannel.IM) + bytes([len(name)]) + name + u16(event)
    return encode_snac(Family.ICBM, IcbmSubtype.CLIENT_EVENT, request_id, body)


@dataclass(frozen=True, slots=True)
class ClientError:
    """A client's error reply to an ICBM (0x0004/0x000B), relayed by the server to the peer.

    ``info`` is free-form and can carry text, such as an away message.
    """

    cookie: bytes = field(repr=False)
    channel: int
    screen_name: str
    code: int
    info: bytes = field(repr=False)


def parse_client_error(snac: Snac) -> ClientError:
    _expect(snac, IcbmSubtype.CLIENT_ERR)
    reader = ByteReader(snac.body, "ICBM client error")
    cookie = reader.take(COOKIE_SIZE, "ICBM cookie")
    channel = reader.u16("ICBM channel")
    name = decode_screen_name(reader.u8_string("screen name"))
    code = reader.u16("client error code")
    return ClientError(cookie, channel, name, code, reader.rest())


def encode_client_error(
    request_id: int, cookie: bytes, channel: int, screen_name: str, code: int, info: bytes
) -> bytes:
    name = screen_name.encode("utf-8")
    body = _cookie(cookie) + u16(channel) + bytes([len(name)]) + name + u16(code) + info
    return encode_snac(Family.ICBM, IcbmSubtype.CLIENT_ERR, request_id, body)


@dataclass(frozen=True, slots=True)
class HostAck:
    cookie: bytes = field(repr=False)
    channel: int
    screen_name: str


def parse_host_ack(snac: Snac) -> HostAck:
    _expect(snac, IcbmSubtype.HOST_ACK)
    reader = ByteReader(snac.body, "ICBM host ack")
    cookie = reader.take(COOKIE_SIZE, "ICBM cookie")
    channel = reader.u16("ICBM channel")
    return HostAck(cookie, channel, decode_screen_name(reader.u8_string("screen name")))


def _cookie(cookie: bytes) -> bytes:
    if len(cookie) != COOKIE_SIZE:
        raise ProtocolError("ICBM cookie length", expected=COOKIE_SIZE, actual=len(cookie))
    return cookie


def _expect(snac: Snac, subtype: IcbmSubtype) -> None:
    expect_snac(snac, Family.ICBM, subtype, "ICBM")
