"""Frames the proxy adds to a connection: notices, disclaimers and errors.

Injected SNACs get request ids from ranges of their own, away from the small
counters clients use: 0x7F000000 and up toward the server, 0xFF000000 and up
toward the client (top bit set, as on server-initiated SNACs). Every ICBM the
proxy sends upstream requests a server ack (TLV 0x03), so the server replies
to each one exactly once, with an ack or an error that echoes the request id.
``Injector.consume_reply`` recognises those replies so the relay withholds
them from the client. FrameSink numbers injected frames and renumbers withheld
ones, so neither peer sees a gap in the FLAP sequence.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from ..protocol.buffer import u16
from ..protocol.chat import (
    CHAT_CHANNEL,
    ENCODING_TLV,
    LANGUAGE_TLV,
    MESSAGE_INFO_TLV,
    SENDER_INFO_TLV,
    TEXT_TLV,
)
from ..protocol.enums import Channel, ChatSubtype, ErrorCode, Family, IcbmSubtype
from ..protocol.errors import ProtocolError
from ..protocol.icbm import (
    COOKIE_SIZE,
    encode_icbm_receive,
    encode_icbm_send,
    parse_host_ack,
    text_message_tlvs,
)
from ..protocol.oservice import encode_error, parse_error
from ..protocol.snac import Snac, encode_snac
from ..protocol.tlv import Tlv, encode_tlvs
from ..protocol.userinfo import UserInfo
from .frames import FrameSink

log = logging.getLogger("imtegrity.policy")

TO_SERVER_REQUEST_IDS = 0x7F00_0000
TO_CLIENT_REQUEST_IDS = 0xFF00_0000
REQUEST_ID_RANGE = 0x0100_0000

# Upstream injections without a reply yet, per connection. The server replies to
# each one at once, so only a server that stops replying fills this. The oldest
# entry is then forgotten, and its late reply would reach the client.
MAX_PENDING_REPLIES = 256

# Chat public flag (TLV 0x01 of a chat message), which Open OSCAR Server sends.
CHAT_PUBLIC_TLV = 0x0001


# A screen name in a user info block or an ICBM send has a u8 length.
MAX_SCREEN_NAME_BYTES = 0xFF


def fits_screen_name(name: str) -> bool:
    """Return True when ``name`` encodes to a screen name field (at most 255 bytes of UTF-8).

    A name decoded from invalid UTF-8 contains U+FFFD for each bad byte, which takes
    three bytes again, so a name that arrived in 255 bytes may not fit.
    """
    return len(name.encode("utf-8")) <= MAX_SCREEN_NAME_BYTES


def new_cookie() -> bytes:
    """Return a random 8-byte ICBM cookie; the proxy never reuses one."""
    return os.urandom(COOKIE_SIZE)


def encode_notice_im(request_id: int, cookie: bytes, sender: str, text: str) -> bytes:
    """Build an ICBM receive (0x0004/0x0007) that shows ``text`` as a message from ``sender``."""
    sender_info = UserInfo(sender, 0, ())
    return encode_icbm_receive(request_id, cookie, sender_info, text_message_tlvs(text))


def encode_notice_chat(request_id: int, cookie: bytes, sender: str, text: str) -> bytes:
    """Build a chat receive (0x000E/0x0006) from ``sender``, ASCII or UCS-2, in the TLV
    order Open OSCAR Server uses (sender info, public flag, message info)."""
    if text.isascii():
        raw, encoding = text.encode("ascii"), b"us-ascii"
    else:
        raw, encoding = text.encode("utf-16-be"), b"unicode-2-0"
    info = (Tlv(TEXT_TLV, raw), Tlv(ENCODING_TLV, encoding), Tlv(LANGUAGE_TLV, b"en"))
    tlvs = (
        Tlv(SENDER_INFO_TLV, UserInfo(sender, 0, ()).to_bytes()),
        Tlv(CHAT_PUBLIC_TLV, b""),
        Tlv(MESSAGE_INFO_TLV, encode_tlvs(info)),
    )
    body = cookie + u16(CHAT_CHANNEL) + encode_tlvs(tlvs)
    return encode_snac(Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT, request_id, body)


@dataclass(frozen=True, slots=True)
class PendingReply:
    cookie: bytes
    recipient: str
    purpose: str


class Injector:
    """Injected frames of one connection, and the server replies they are owed."""

    def __init__(
        self, to_client: FrameSink, to_server: Callable[[], FrameSink], connection_id: int
    ) -> None:
        self._to_client = to_client
        self._to_server = to_server
        self._connection_id = connection_id
        self._server_ids = 0
        self._client_ids = 0
        self._pending: OrderedDict[int, PendingReply] = OrderedDict()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _next_server_id(self) -> int:
        request_id = TO_SERVER_REQUEST_IDS + self._server_ids
        self._server_ids = (self._server_ids + 1) % REQUEST_ID_RANGE
        return request_id

    def _next_client_id(self) -> int:
        request_id = TO_CLIENT_REQUEST_IDS + self._client_ids
        self._client_ids = (self._client_ids + 1) % REQUEST_ID_RANGE
        return request_id

    # Toward the client

    def notice_im(self, sender: str, text: str) -> None:
        """Show ``text`` to the local user as a message from ``sender``.

        A notice that cannot be encoded (a sender name over 255 bytes, or text
        over a TLV's 65535 bytes) is skipped with a log line.
        """
        try:
            snac = encode_notice_im(self._next_client_id(), new_cookie(), sender, text)
        except (ValueError, ProtocolError) as error:
            self._skip("IM notice", error)
            return
        self._to_client.inject(Channel.DATA, snac)

    def notice_chat(self, sender: str, text: str) -> None:
        """Show ``text`` to the local user as a chat room message from ``sender``.

        A notice that cannot be encoded is skipped with a log line.
        """
        try:
            snac = encode_notice_chat(self._next_client_id(), new_cookie(), sender, text)
        except (ValueError, ProtocolError) as error:
            self._skip("chat notice", error)
            return
        self._to_client.inject(Channel.DATA, snac)

    def _skip(self, kind: str, error: Exception) -> None:
        log.error(
            "%s not sent: it cannot be encoded: %s: %s (conn=%s)",
            kind,
            type(error).__name__,
            error,
            self._connection_id,
        )

    def error(self, family: int, request_id: int, code: int = ErrorCode.REQUEST_DENIED) -> None:
        """Reply to the client's request ``request_id`` with an error SNAC of ``family``."""
        self._to_client.inject(Channel.DATA, encode_error(family, request_id, code))

    # Toward the server

    def send_im(self, recipient: str, text: str, purpose: str) -> None:
        """Send ``text`` to ``recipient`` as an IM from the local user, asking for an ack."""
        request_id = self._next_server_id()
        cookie = new_cookie()
        tlvs = text_message_tlvs(text, ack=True)
        snac = encode_icbm_send(request_id, cookie, recipient, tlvs)
        self._to_server().inject(Channel.DATA, snac)
        self._pending[request_id] = PendingReply(cookie, recipient, purpose)
        while len(self._pending) > MAX_PENDING_REPLIES:
            self._pending.popitem(last=False)

    def consume_reply(self, snac: Snac) -> bool:
        """Return True when ``snac`` replies to an injected ICBM; it must not reach the client."""
        if snac.family != Family.ICBM:
            return False
        if snac.subtype not in (IcbmSubtype.ERROR, IcbmSubtype.HOST_ACK):
            return False
        pending = self._pending.get(snac.request_id)
        if pending is None:
            return False
        if snac.subtype == IcbmSubtype.HOST_ACK and parse_host_ack(snac).cookie != pending.cookie:
            return False
        del self._pending[snac.request_id]
        if snac.subtype == IcbmSubtype.ERROR:
            code = parse_error(snac).code
            log.warning(
                "the server rejected the %s to %s with ICBM error 0x%04x (conn=%s)",
                pending.purpose,
                pending.recipient,
                code,
                self._connection_id,
            )
        return True
