"""Byte vectors of OSCAR frames and messages, each with its decoded value.

Every row pairs wire bytes with the value a parser must return and, where the
protocol package has an encoder, the call that must produce the same bytes.
The bytes are written out by hand from the OSCAR layouts (FLAP header, SNAC
header, TLV, ICBM, rendezvous, chat), never produced by the code under test,
so a row can catch a wrong encoder as well as a wrong parser. Lengths are
written in hex next to the bytes they count.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from imtegrity_proxy.protocol.buffer import u16
from imtegrity_proxy.protocol.chat import (
    ChatMessage,
    RoomInfo,
    encode_chat_send,
    parse_chat_receive,
    parse_chat_send,
    parse_room_info,
)
from imtegrity_proxy.protocol.flap import Flap
from imtegrity_proxy.protocol.icbm import (
    HostAck,
    Icbm,
    TypingNotification,
    encode_icbm_receive,
    encode_icbm_send,
    encode_message_body,
    encode_typing,
    parse_host_ack,
    parse_icbm_receive,
    parse_icbm_send,
    parse_typing,
    text_message_tlvs,
)
from imtegrity_proxy.protocol.oservice import (
    ErrorSnac,
    Migration,
    Redirect,
    ServiceRequest,
    chat_room_tlv,
    encode_error,
    encode_service_request,
    parse_error,
    parse_migration,
    parse_redirect,
    parse_self_info,
    parse_service_request,
)
from imtegrity_proxy.protocol.rendezvous import (
    Rendezvous,
    encode_send_file_proposal,
    parse_rendezvous_block,
)
from imtegrity_proxy.protocol.signon import (
    Hello,
    LoginReply,
    LoginRequest,
    encode_bucp_login_failure,
    encode_challenge_request,
    encode_cookie_hello,
    encode_hello,
    encode_login_request,
    encode_old_style_failure,
    encode_old_style_login,
    parse_bucp_login_reply,
    parse_challenge_request,
    parse_challenge_response,
    parse_hello,
    parse_login_request,
    parse_signoff,
)
from imtegrity_proxy.protocol.snac import Snac, encode_snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs
from imtegrity_proxy.protocol.userinfo import UserInfo


def h(text: str) -> bytes:
    """Return the bytes written as hex digits in ``text``; whitespace is ignored."""
    return bytes.fromhex(text)


# Values shared by several rows.
COOKIE_256 = bytes(range(256))
COOKIE_UUID = b"6ba7b810-9dad-11d1-80b4-00c04fd430c8"
ICBM_COOKIE = h("01 02 03 04 05 06 07 08")
CHAT_COOKIE = h("11 12 13 14 15 16 17 18")
RENDEZVOUS_COOKIE = h("a1 a2 a3 a4 a5 a6 a7 a8")
ROOM_COOKIE = "!aol://2719:10-4-lab"
PASSWORD = "hunter2!"
# The old-style login XORs the password with the 16-byte table F3 26 81 C4 39 86
# DB 92 71 A3 B9 E6 53 7A 95 7C. These bytes are "hunter2!" XORed with it by hand.
ROASTED_PASSWORD = h("9b 53 ef b0 5c f4 e9 b3")
CHALLENGE_KEY = b"3141592653"
AIM_MD5_STRING = b"AOL Instant Messenger (SM)"
# BUCP login hashes as AIM clients compute them: the strong form hashes MD5(password).
PASSWORD_MD5 = hashlib.md5(PASSWORD.encode(), usedforsecurity=False).digest()
STRONG_HASH = hashlib.md5(
    CHALLENGE_KEY + PASSWORD_MD5 + AIM_MD5_STRING, usedforsecurity=False
).digest()
WEAK_HASH = hashlib.md5(
    CHALLENGE_KEY + PASSWORD.encode() + AIM_MD5_STRING, usedforsecurity=False
).digest()
CLIENT_ID = b"IMtegrity scripted client"
ERROR_URL = b"https://example.org/err/5"

SEND_FILE = h("09461343 4c7f 11d1 8222 444553540000")
DIRECT_IM = h("09461345 4c7f 11d1 8222 444553540000")
GET_FILE = h("09461348 4c7f 11d1 8222 444553540000")
CHAT_INVITE = h("748f2420 6287 11d1 8222 444553540000")


# FLAP frames: the whole frame and the Flap it decodes to.


@dataclass(frozen=True)
class FlapVector:
    name: str
    raw: bytes
    frame: Flap


MAX_PAYLOAD_BYTES = b"\x5a" * 0xFFFF

FLAP_VECTORS = [
    FlapVector("sign-on", h("2a 01 1234 0004 00000001"), Flap(1, 0x1234, h("00000001"))),
    FlapVector(
        "SNAC data",
        h("2a 02 1235 000a 0001 0017 0000 00000000"),
        Flap(2, 0x1235, h("0001 0017 0000 00000000")),
    ),
    FlapVector("error", h("2a 03 0001 0000"), Flap(3, 0x0001, b"")),
    FlapVector(
        "sign-off", h("2a 04 fffe 0006 0009 0002 0001"), Flap(4, 0xFFFE, h("0009 0002 0001"))
    ),
    FlapVector("keep-alive at sequence 0xffff", h("2a 05 ffff 0000"), Flap(5, 0xFFFF, b"")),
    FlapVector("sequence 0 after the wrap", h("2a 02 0000 0000"), Flap(2, 0x0000, b"")),
    FlapVector("unknown channel", h("2a 07 0042 0002 abcd"), Flap(7, 0x0042, h("abcd"))),
    FlapVector(
        "max payload", h("2a 02 0100 ffff") + MAX_PAYLOAD_BYTES, Flap(2, 0x0100, MAX_PAYLOAD_BYTES)
    ),
]


# SNACs: the FLAP payload and the Snac it decodes to.


@dataclass(frozen=True)
class SnacVector:
    name: str
    raw: bytes
    snac: Snac


SNAC_VECTORS = [
    SnacVector("plain", h("0004 0006 0000 00000001 cafe"), Snac(4, 6, 0, 1, h("cafe"))),
    SnacVector(
        "flag 0x8000 block in prefix",
        h("0001 0003 8000 00000002 0006 0001 0002 0004 0001 0002"),
        Snac(1, 3, 0x8000, 2, h("0001 0002"), prefix=h("0006 0001 0002 0004")),
    ),
    SnacVector(
        "flag 0x8000 with empty block",
        h("0001 0003 8001 00000006 0000 ff"),
        Snac(1, 3, 0x8001, 6, h("ff"), prefix=h("0000")),
    ),
    SnacVector("flag 0x0001", h("0002 0006 0001 00000003 00"), Snac(2, 6, 1, 3, h("00"))),
    SnacVector(
        "server initiated", h("0001 0013 0000 80000004"), Snac(1, 0x13, 0, 0x80000004, b"")
    ),
    SnacVector(
        "unknown family and subtype",
        h("7777 4242 0000 00000005 0102"),
        Snac(0x7777, 0x4242, 0, 5, h("0102")),
    ),
]


# TLV lists: the bytes and the ordered tuple they decode to.


@dataclass(frozen=True)
class TlvVector:
    name: str
    raw: bytes
    tlvs: tuple[Tlv, ...]


TLV_VECTORS = [
    TlvVector("empty", b"", ()),
    TlvVector(
        "duplicates", h("0001 0001 61 0001 0001 62"), (Tlv(0x0001, b"a"), Tlv(0x0001, b"b"))
    ),
    TlvVector(
        "unknown types",
        h("abcd 0002 0102 fffe 0001 03"),
        (Tlv(0xABCD, h("0102")), Tlv(0xFFFE, h("03"))),
    ),
    TlvVector(
        "zero-length values", h("0003 0000 0006 0000"), (Tlv(0x0003, b""), Tlv(0x0006, b""))
    ),
    TlvVector(
        "order kept",
        h("000d 0002 000e 0005 0001 7a 0006 0001 79 0001 0001 78"),
        (Tlv(0x000D, h("000e")), Tlv(0x0005, b"z"), Tlv(0x0006, b"y"), Tlv(0x0001, b"x")),
    ),
]


# Messages: the FLAP payload, its parser and decoded value, an encoder call that
# must produce the payload, and a serialiser that must turn the decoded value
# back into the payload. Either of the last two is None where the package has
# no encoder or the decoded value leaves fields out (hashes, for instance).


@dataclass(frozen=True)
class MessageVector:
    name: str
    raw: bytes
    parse: Callable[[bytes], Any]
    value: Any
    encode: Callable[[], bytes] | None = None
    serialise: Callable[[Any], bytes] | None = None


def _snac_parser(parse: Callable[[Snac], Any]) -> Callable[[bytes], Any]:
    return lambda payload: parse(parse_snac(payload))


def _tlv_body_serialiser(family: int, subtype: int, request_id: int) -> Callable[[Any], bytes]:
    """Serialise a decoded value whose SNAC body is nothing but its ``tlvs``."""
    return lambda value: encode_snac(family, subtype, request_id, encode_tlvs(value.tlvs))


def _icbm_send_serialiser(request_id: int) -> Callable[[Icbm], bytes]:
    return lambda icbm: encode_icbm_send(
        request_id, icbm.cookie, icbm.screen_name, icbm.tlvs, icbm.channel
    )


def _chat_serialiser(subtype: int, request_id: int) -> Callable[[ChatMessage], bytes]:
    def serialise(message: ChatMessage) -> bytes:
        body = message.cookie + u16(message.channel) + encode_tlvs(message.tlvs)
        return encode_snac(0x000E, subtype, request_id, body)

    return serialise


def _migration_serialiser(migration: Migration) -> bytes:
    families = u16(len(migration.families)) + b"".join(u16(f) for f in migration.families)
    return encode_snac(0x0001, 0x0012, 0x80000003, families + encode_tlvs(migration.tlvs))


def _host_ack_serialiser(ack: HostAck) -> bytes:
    name = ack.screen_name.encode()
    body = ack.cookie + u16(ack.channel) + bytes([len(name)]) + name
    return encode_snac(0x0004, 0x000C, 0x00000008, body)


# Sign-on.

LOGIN_SUCCESS_TLVS = (
    h("0001 0005")
    + b"lab02"
    + h("0005 000e")
    + b"127.0.0.1:5190"
    + h("0006 0100")
    + COOKIE_256
    + h("0011 0011")
    + b"lab02@example.org"
    + h("008e 0001 00")
)
LOGIN_SUCCESS = LoginReply(
    tlvs=(
        Tlv(0x0001, b"lab02"),
        Tlv(0x0005, b"127.0.0.1:5190"),
        Tlv(0x0006, COOKIE_256),
        Tlv(0x0011, b"lab02@example.org"),
        Tlv(0x008E, h("00")),
    ),
    screen_name="lab02",
    bos_host="127.0.0.1",
    bos_port=5190,
    cookie=COOKIE_256,
)
LOGIN_FAILURE_TLVS = h("0001 0005") + b"lab02" + h("0004 0019") + ERROR_URL + h("0008 0002 0005")
LOGIN_FAILURE = LoginReply(
    tlvs=(Tlv(0x0001, b"lab02"), Tlv(0x0004, ERROR_URL), Tlv(0x0008, h("0005"))),
    screen_name="lab02",
    error_code=0x0005,
    error_url=ERROR_URL.decode(),
)

SIGNON_VECTORS = [
    MessageVector(
        "hello BUCP",
        h("00000001"),
        parse_hello,
        Hello(1, ()),
        encode=encode_hello,
        serialise=lambda hello: encode_hello(hello.tlvs),
    ),
    MessageVector(
        "hello BUCP with TLV 0x8003",
        h("00000001 8003 0004 00100000"),
        parse_hello,
        Hello(1, (Tlv(0x8003, h("00100000")),)),
        encode=lambda: encode_hello((Tlv(0x8003, h("00100000")),)),
        serialise=lambda hello: encode_hello(hello.tlvs),
    ),
    MessageVector(
        "hello old-style login",
        h("00000001 0001 0005")
        + b"lab02"
        + h("0002 0008")
        + ROASTED_PASSWORD
        + h("0003 0019")
        + CLIENT_ID,
        parse_hello,
        Hello(
            1,
            (Tlv(0x0001, b"lab02"), Tlv(0x0002, ROASTED_PASSWORD), Tlv(0x0003, CLIENT_ID)),
        ),
        encode=lambda: encode_old_style_login("lab02", PASSWORD),
        serialise=lambda hello: encode_hello(hello.tlvs),
    ),
    MessageVector(
        "hello 256-byte cookie",
        h("00000001 0006 0100") + COOKIE_256,
        parse_hello,
        Hello(1, (Tlv(0x0006, COOKIE_256),)),
        encode=lambda: encode_cookie_hello(COOKIE_256),
        serialise=lambda hello: encode_hello(hello.tlvs),
    ),
    MessageVector(
        "hello UUID-string cookie",
        h("00000001 0006 0024") + COOKIE_UUID,
        parse_hello,
        Hello(1, (Tlv(0x0006, COOKIE_UUID),)),
        encode=lambda: encode_cookie_hello(COOKIE_UUID),
        serialise=lambda hello: encode_hello(hello.tlvs),
    ),
    MessageVector(
        "BUCP challenge request",
        h("0017 0006 0000 00000001 0001 0005") + b"lab02",
        _snac_parser(parse_challenge_request),
        "lab02",
        encode=lambda: encode_challenge_request(1, "lab02"),
        serialise=lambda name: encode_challenge_request(1, name),
    ),
    MessageVector(
        "BUCP challenge response",
        h("0017 0007 0000 00000001 000a") + CHALLENGE_KEY,
        _snac_parser(parse_challenge_response),
        CHALLENGE_KEY,
        serialise=lambda key: encode_snac(0x0017, 0x0007, 1, u16(len(key)) + key),
    ),
    MessageVector(
        "BUCP login request strong hash",
        h("0017 0002 0000 00000002 0001 0005")
        + b"lab02"
        + h("0003 0019")
        + CLIENT_ID
        + h("0025 0010")
        + STRONG_HASH
        + h("004c 0000"),
        _snac_parser(parse_login_request),
        LoginRequest("lab02", "strong", CLIENT_ID.decode()),
        encode=lambda: encode_login_request(2, "lab02", STRONG_HASH, strong=True),
    ),
    MessageVector(
        "BUCP login request weak hash",
        h("0017 0002 0000 00000003 0001 0005")
        + b"lab02"
        + h("0003 0019")
        + CLIENT_ID
        + h("0025 0010")
        + WEAK_HASH,
        _snac_parser(parse_login_request),
        LoginRequest("lab02", "weak", CLIENT_ID.decode()),
        encode=lambda: encode_login_request(3, "lab02", WEAK_HASH, strong=False),
    ),
    MessageVector(
        "BUCP login reply success",
        h("0017 0003 0000 00000002") + LOGIN_SUCCESS_TLVS,
        _snac_parser(parse_bucp_login_reply),
        LOGIN_SUCCESS,
        serialise=_tlv_body_serialiser(0x0017, 0x0003, 2),
    ),
    MessageVector(
        "BUCP login reply failure",
        h("0017 0003 0000 00000002") + LOGIN_FAILURE_TLVS,
        _snac_parser(parse_bucp_login_reply),
        LOGIN_FAILURE,
        encode=lambda: encode_bucp_login_failure(2, "lab02", 5, ERROR_URL.decode()),
        serialise=_tlv_body_serialiser(0x0017, 0x0003, 2),
    ),
    MessageVector(
        "channel-4 login reply success",
        LOGIN_SUCCESS_TLVS,
        parse_signoff,
        LOGIN_SUCCESS,
        serialise=lambda reply: encode_tlvs(reply.tlvs),
    ),
    MessageVector(
        "channel-4 login reply failure",
        LOGIN_FAILURE_TLVS,
        parse_signoff,
        LOGIN_FAILURE,
        encode=lambda: encode_old_style_failure("lab02", 5, ERROR_URL.decode()),
        serialise=lambda reply: encode_tlvs(reply.tlvs),
    ),
    MessageVector(
        "channel-4 sign-off notice",
        h("0009 0002 0001"),
        parse_signoff,
        LoginReply(tlvs=(Tlv(0x0009, h("0001")),)),
        serialise=lambda reply: encode_tlvs(reply.tlvs),
    ),
]


# Family 0x0001: redirect, migration, self info, service request, errors.

REDIRECT_TLVS = (
    h("000d 0002 000e") + h("0005 000e") + b"127.0.0.1:5190" + h("0006 0100") + COOKIE_256
)
ROOM_TLV_VALUE = h("0004 14") + ROOM_COOKIE.encode() + h("0000")
SELF_INFO = UserInfo(
    "L A B 0 2",
    0,
    (Tlv(0x0001, h("0010")), Tlv(0x0003, h("5f5e1000")), Tlv(0x0005, h("5f000000"))),
)

OSERVICE_VECTORS = [
    MessageVector(
        "redirect",
        h("0001 0005 0000 00000007") + REDIRECT_TLVS,
        _snac_parser(parse_redirect),
        Redirect(
            tlvs=(
                Tlv(0x000D, h("000e")),
                Tlv(0x0005, b"127.0.0.1:5190"),
                Tlv(0x0006, COOKIE_256),
            ),
            family=0x000E,
            host="127.0.0.1",
            port=5190,
            cookie=COOKIE_256,
        ),
        serialise=_tlv_body_serialiser(0x0001, 0x0005, 7),
    ),
    MessageVector(
        "migration",
        h("0001 0012 0000 80000003 0002 0001 0004 0005 000e")
        + b"127.0.0.1:5191"
        + h("0006 0024")
        + COOKIE_UUID,
        _snac_parser(parse_migration),
        Migration(
            families=(0x0001, 0x0004),
            tlvs=(Tlv(0x0005, b"127.0.0.1:5191"), Tlv(0x0006, COOKIE_UUID)),
            host="127.0.0.1",
            port=5191,
            cookie=COOKIE_UUID,
        ),
        serialise=_migration_serialiser,
    ),
    MessageVector(
        "self info",
        h("0001 000f 0000 00000004 09")
        + b"L A B 0 2"
        + h("0000 0003 0001 0002 0010 0003 0004 5f5e1000 0005 0004 5f000000"),
        _snac_parser(parse_self_info),
        SELF_INFO,
        serialise=lambda info: encode_snac(0x0001, 0x000F, 4, info.to_bytes()),
    ),
    MessageVector(
        "service request for chat",
        h("0001 0004 0000 00000005 000e 0001 0019") + ROOM_TLV_VALUE,
        _snac_parser(parse_service_request),
        ServiceRequest(0x000E, (Tlv(0x0001, ROOM_TLV_VALUE),), 4, ROOM_COOKIE, 0),
        encode=lambda: encode_service_request(5, 0x000E, (chat_room_tlv(4, ROOM_COOKIE, 0),)),
        serialise=lambda request: encode_service_request(5, request.family, request.tlvs),
    ),
    MessageVector(
        "error service unavailable",
        h("0001 0001 0000 00000005 0005"),
        _snac_parser(parse_error),
        ErrorSnac(0x0005, ()),
        encode=lambda: encode_error(0x0001, 5, 0x0005),
        serialise=lambda error: encode_error(0x0001, 5, error.code, error.tlvs),
    ),
    MessageVector(
        "error not logged on with subcode",
        h("0004 0001 0000 00000008 0004 0008 0002 0001"),
        _snac_parser(parse_error),
        ErrorSnac(0x0004, (Tlv(0x0008, h("0001")),)),
        encode=lambda: encode_error(0x0004, 8, 0x0004, (Tlv(0x0008, h("0001")),)),
        serialise=lambda error: encode_error(0x0004, 8, error.code, error.tlvs),
    ),
]


# ICBM channel 1: TLV 0x02 contains fragments, 05 01 features then 01 01 text
# (u16 charset, u16 subset, text).

MESSAGE_ASCII = h("0501 0001 01 0101 0009 0000 0000") + b"hello"
MESSAGE_UTF8_UNDER_ASCII = h("0501 0001 01 0101 000e 0000 0000") + "héllo ✓".encode()
# "Привет 😀" in UTF-16BE: the emoji is the surrogate pair D83D DE00.
MESSAGE_UCS2 = h("0501 0001 01 0101 0016 0002 0000 041f 0440 0438 0432 0435 0442 0020 d83d de00")
MESSAGE_LATIN1 = h("0501 0001 01 0101 0008 0003 0000 636166e9")
MESSAGE_TWO_PARTS = (
    h("0501 0001 01 0101 000b 0000 0000") + b"Hello, " + h("0101 000a 0002 0000 043c 0438 0440")
)
SENDER_INFO = UserInfo(
    "lab02",
    0,
    (Tlv(0x0001, h("0010")), Tlv(0x0002, h("5f5e1000")), Tlv(0x0003, h("5f5e1001"))),
)
SENDER_INFO_BYTES = (
    h("05") + b"lab02" + h("0000 0003 0001 0002 0010 0002 0004 5f5e1000 0003 0004 5f5e1001")
)


def _text_send_encoder(request_id: int, text: str) -> Callable[[], bytes]:
    return lambda: encode_icbm_send(request_id, ICBM_COOKIE, "lab02", text_message_tlvs(text))


def _icbm_send_vector(
    name: str, request_id: int, message: bytes, encoded_text: str | None
) -> MessageVector:
    raw = (
        h(f"0004 0006 0000 {request_id:08x}")
        + ICBM_COOKIE
        + h("0001 05")
        + b"lab02"
        + u16(0x0002)
        + u16(len(message))
        + message
    )
    encode = None if encoded_text is None else _text_send_encoder(request_id, encoded_text)
    return MessageVector(
        name,
        raw,
        _snac_parser(parse_icbm_send),
        Icbm(ICBM_COOKIE, 1, "lab02", (Tlv(0x0002, message),)),
        encode=encode,
        serialise=_icbm_send_serialiser(request_id),
    )


RENDEZVOUS_SEND_FILE_TLVS = (
    h("000a 0002 0001")
    + h("0003 0004 7f000001")
    + h("0005 0002 1446")
    + h("000f 0000")
    + h("2711 0013 0001 0001 00003039")
    + b"report.pdf\x00"
)
RENDEZVOUS_SEND_FILE = h("0000") + RENDEZVOUS_COOKIE + SEND_FILE + RENDEZVOUS_SEND_FILE_TLVS
SEND_FILE_PROPOSAL_TLV = encode_send_file_proposal(
    RENDEZVOUS_COOKIE, "report.pdf", 12345, h("7f000001"), 5190
)

ICBM_VECTORS = [
    MessageVector(
        "ICBM send ASCII with ack request",
        h("0004 0006 0000 00000008")
        + ICBM_COOKIE
        + h("0001 05")
        + b"lab02"
        + h("0002 0012")
        + MESSAGE_ASCII
        + h("0003 0000"),
        _snac_parser(parse_icbm_send),
        Icbm(ICBM_COOKIE, 1, "lab02", (Tlv(0x0002, MESSAGE_ASCII), Tlv(0x0003, b""))),
        encode=lambda: encode_icbm_send(
            8, ICBM_COOKIE, "lab02", text_message_tlvs("hello", ack=True)
        ),
        serialise=_icbm_send_serialiser(8),
    ),
    _icbm_send_vector("ICBM send UTF-8 under charset 0x0000", 9, MESSAGE_UTF8_UNDER_ASCII, None),
    _icbm_send_vector("ICBM send UCS-2 Cyrillic and emoji", 10, MESSAGE_UCS2, "Привет 😀"),
    _icbm_send_vector("ICBM send Latin-1", 11, MESSAGE_LATIN1, "café"),
    _icbm_send_vector("ICBM send two text fragments", 12, MESSAGE_TWO_PARTS, None),
    MessageVector(
        "ICBM receive with TLV 0x0002 in sender info",
        h("0004 0007 0000 8000000a")
        + ICBM_COOKIE
        + h("0001")
        + SENDER_INFO_BYTES
        + h("0002 0012")
        + MESSAGE_ASCII,
        _snac_parser(parse_icbm_receive),
        Icbm(ICBM_COOKIE, 1, "lab02", (Tlv(0x0002, MESSAGE_ASCII),), SENDER_INFO),
        encode=lambda: encode_icbm_receive(
            0x8000000A, ICBM_COOKIE, SENDER_INFO, (Tlv(0x0002, encode_message_body("hello")),)
        ),
        serialise=lambda icbm: encode_icbm_receive(
            0x8000000A, icbm.cookie, icbm.sender, icbm.tlvs, icbm.channel
        ),
    ),
    MessageVector(
        "ICBM receive stored UCS-2",
        h("0004 0007 0000 8000000b")
        + ICBM_COOKIE
        + h("0001 05")
        + b"lab03"
        + h("0000 0000 0002 001f")
        + MESSAGE_UCS2
        + h("0016 0004 5f5e1000"),
        _snac_parser(parse_icbm_receive),
        Icbm(
            ICBM_COOKIE,
            1,
            "lab03",
            (Tlv(0x0002, MESSAGE_UCS2), Tlv(0x0016, h("5f5e1000"))),
            UserInfo("lab03", 0, ()),
        ),
        encode=lambda: encode_icbm_receive(
            0x8000000B,
            ICBM_COOKIE,
            UserInfo("lab03", 0, ()),
            (*text_message_tlvs("Привет 😀"), Tlv(0x0016, h("5f5e1000"))),
        ),
        serialise=lambda icbm: encode_icbm_receive(
            0x8000000B, icbm.cookie, icbm.sender, icbm.tlvs, icbm.channel
        ),
    ),
    MessageVector(
        "ICBM send Send File proposal",
        h("0004 0006 0000 0000000f")
        + RENDEZVOUS_COOKIE
        + h("0002 05")
        + b"lab03"
        + h("0005 0049")
        + RENDEZVOUS_SEND_FILE,
        _snac_parser(parse_icbm_send),
        Icbm(RENDEZVOUS_COOKIE, 2, "lab03", (Tlv(0x0005, RENDEZVOUS_SEND_FILE),)),
        encode=lambda: encode_icbm_send(
            0x0F,
            RENDEZVOUS_COOKIE,
            "lab03",
            (SEND_FILE_PROPOSAL_TLV,),
            channel=2,
        ),
        serialise=_icbm_send_serialiser(0x0F),
    ),
    MessageVector(
        "typing",
        h("0004 0014 0000 00000010 0000000000000000 0001 05") + b"lab03" + h("0002"),
        _snac_parser(parse_typing),
        TypingNotification(bytes(8), 1, "lab03", 2),
        encode=lambda: encode_typing(0x10, bytes(8), "lab03", 2),
        serialise=lambda typing: encode_typing(
            0x10, typing.cookie, typing.screen_name, typing.event
        ),
    ),
    MessageVector(
        "host ack",
        h("0004 000c 0000 00000008") + ICBM_COOKIE + h("0001 05") + b"lab02",
        _snac_parser(parse_host_ack),
        HostAck(ICBM_COOKIE, 1, "lab02"),
        serialise=_host_ack_serialiser,
    ),
]


# Rendezvous blocks (the value of ICBM channel-2 TLV 0x05).

RENDEZVOUS_VECTORS = [
    MessageVector(
        "rendezvous Send File",
        RENDEZVOUS_SEND_FILE,
        parse_rendezvous_block,
        Rendezvous(
            0,
            RENDEZVOUS_COOKIE,
            uuid.UUID(bytes=SEND_FILE),
            (
                Tlv(0x000A, h("0001")),
                Tlv(0x0003, h("7f000001")),
                Tlv(0x0005, h("1446")),
                Tlv(0x000F, b""),
                Tlv(0x2711, h("0001 0001 00003039") + b"report.pdf\x00"),
            ),
            file_name="report.pdf",
            file_size=12345,
            file_count=1,
        ),
        encode=lambda: SEND_FILE_PROPOSAL_TLV.value,
    ),
    MessageVector(
        "rendezvous Direct IM",
        h("0000") + RENDEZVOUS_COOKIE + DIRECT_IM + h("000a 0002 0001 0003 0004 7f000001"),
        parse_rendezvous_block,
        Rendezvous(
            0,
            RENDEZVOUS_COOKIE,
            uuid.UUID(bytes=DIRECT_IM),
            (Tlv(0x000A, h("0001")), Tlv(0x0003, h("7f000001"))),
        ),
    ),
    MessageVector(
        "rendezvous Get File",
        h("0000") + RENDEZVOUS_COOKIE + GET_FILE + h("000a 0002 0001 0005 0002 1446"),
        parse_rendezvous_block,
        Rendezvous(
            0,
            RENDEZVOUS_COOKIE,
            uuid.UUID(bytes=GET_FILE),
            (Tlv(0x000A, h("0001")), Tlv(0x0005, h("1446"))),
        ),
    ),
    MessageVector(
        "rendezvous chat invitation",
        h("0000")
        + RENDEZVOUS_COOKIE
        + CHAT_INVITE
        + h("000a 0002 0001 000c 0007")
        + b"join us"
        + h("2711 0019")
        + ROOM_TLV_VALUE,
        parse_rendezvous_block,
        Rendezvous(
            0,
            RENDEZVOUS_COOKIE,
            uuid.UUID(bytes=CHAT_INVITE),
            (Tlv(0x000A, h("0001")), Tlv(0x000C, b"join us"), Tlv(0x2711, ROOM_TLV_VALUE)),
        ),
    ),
    MessageVector(
        "rendezvous cancel",
        h("0001") + RENDEZVOUS_COOKIE + SEND_FILE,
        parse_rendezvous_block,
        Rendezvous(1, RENDEZVOUS_COOKIE, uuid.UUID(bytes=SEND_FILE), ()),
    ),
]


# Chat: message info TLV 0x05 contains 0x01 text, 0x02 encoding name, 0x03 language.

CHAT_INFO_ASCII = h("0001 0005") + b"hello" + h("0002 0008") + b"us-ascii" + h("0003 0002") + b"en"
CHAT_INFO_UCS2 = (
    h("0001 000c 041f 0440 0438 0432 0435 0442")
    + h("0002 000b")
    + b"unicode-2-0"
    + h("0003 0002")
    + b"en"
)
CHAT_INFO_LATIN1 = h("0001 0004 636166e9 0002 000a") + b"iso-8859-1" + h("0003 0002") + b"en"
CHAT_SENDER = UserInfo("lab02", 0, (Tlv(0x0001, h("0010")),))
CHAT_SENDER_BYTES = h("05") + b"lab02" + h("0000 0001 0001 0002 0010")

CHAT_VECTORS = [
    MessageVector(
        "chat send us-ascii",
        h("000e 0005 0000 0000000b")
        + CHAT_COOKIE
        + h("0003 0001 0000 0006 0000 0005 001b")
        + CHAT_INFO_ASCII,
        _snac_parser(parse_chat_send),
        ChatMessage(
            CHAT_COOKIE,
            3,
            (Tlv(0x0001, b""), Tlv(0x0006, b""), Tlv(0x0005, CHAT_INFO_ASCII)),
            b"hello",
            "hello",
            "us-ascii",
            "ascii",
        ),
        encode=lambda: encode_chat_send(0x0B, CHAT_COOKIE, "hello"),
        serialise=_chat_serialiser(0x0005, 0x0B),
    ),
    MessageVector(
        "chat send unicode-2-0",
        h("000e 0005 0000 0000000c")
        + CHAT_COOKIE
        + h("0003 0001 0000 0006 0000 0005 0025")
        + CHAT_INFO_UCS2,
        _snac_parser(parse_chat_send),
        ChatMessage(
            CHAT_COOKIE,
            3,
            (Tlv(0x0001, b""), Tlv(0x0006, b""), Tlv(0x0005, CHAT_INFO_UCS2)),
            h("041f 0440 0438 0432 0435 0442"),
            "Привет",
            "unicode-2-0",
            "ucs-2",
        ),
        encode=lambda: encode_chat_send(0x0C, CHAT_COOKIE, "Привет"),
        serialise=_chat_serialiser(0x0005, 0x0C),
    ),
    MessageVector(
        "chat receive iso-8859-1",
        h("000e 0006 0000 0000000d")
        + CHAT_COOKIE
        + h("0003 0003 0010")
        + CHAT_SENDER_BYTES
        + h("0001 0000 0005 001c")
        + CHAT_INFO_LATIN1,
        _snac_parser(parse_chat_receive),
        ChatMessage(
            CHAT_COOKIE,
            3,
            (Tlv(0x0003, CHAT_SENDER_BYTES), Tlv(0x0001, b""), Tlv(0x0005, CHAT_INFO_LATIN1)),
            h("636166e9"),
            "café",
            "iso-8859-1",
            "latin-1",
            CHAT_SENDER,
        ),
        serialise=_chat_serialiser(0x0006, 0x0D),
    ),
    MessageVector(
        "chat room info",
        h("000e 0002 0000 0000000e") + ROOM_TLV_VALUE + h("02 0001 006a 0003") + b"lab",
        _snac_parser(parse_room_info),
        RoomInfo(4, ROOM_COOKIE, 0, "lab"),
    ),
]

MESSAGE_VECTORS = (
    SIGNON_VECTORS + OSERVICE_VECTORS + ICBM_VECTORS + RENDEZVOUS_VECTORS + CHAT_VECTORS
)
VECTORS_BY_NAME = {vector.name: vector for vector in MESSAGE_VECTORS}
