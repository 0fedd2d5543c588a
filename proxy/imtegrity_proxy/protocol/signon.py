"""Sign-on: the channel-1 hello, BUCP (family 0x0017) and the old-style login.

A client's first frame on every connection is channel 1 with version 1 and
TLVs. On the login connection those TLVs are empty (BUCP follows on channel 2)
or hold TLV 0x01 screen name and TLV 0x02 roasted password (old-style login,
answered on channel 4). On a service connection they hold TLV 0x06, the cookie
that a sign-on reply or redirect handed out.

Passwords, roasted passwords, MD5 hashes and cookies are kept as bytes and
never put into a repr or an error message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from .address import parse_address
from .buffer import ByteReader, u16, u32
from .enums import BucpSubtype, Family, SignonTlv
from .errors import ProtocolError
from .snac import Snac, encode_snac, expect_snac
from .tlv import Tlv, Tlvs, encode_tlvs, find_tlv, read_tlvs_to_end, replace_tlv
from .userinfo import decode_screen_name

FLAP_VERSION = 1
AIM_MD5_STRING = b"AOL Instant Messenger (SM)"
ROAST_TABLE = bytes.fromhex("f32681c43986db9271a3b9e6537a957c")
# BUCP login request TLV: the client's multi-connection flag (u8).
MULTI_CONNECTION_TLV = 0x004A


class HelloKind(Enum):
    """Kind of connection that a client's channel-1 hello starts."""

    BUCP = "bucp"
    OLD_STYLE_LOGIN = "old-style"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    tlvs: Tlvs

    @property
    def kind(self) -> HelloKind:
        if find_tlv(self.tlvs, SignonTlv.COOKIE) is not None:
            return HelloKind.SERVICE
        if find_tlv(self.tlvs, SignonTlv.SCREEN_NAME) is not None:
            return HelloKind.OLD_STYLE_LOGIN
        return HelloKind.BUCP

    @property
    def screen_name(self) -> str | None:
        raw = find_tlv(self.tlvs, SignonTlv.SCREEN_NAME)
        return None if raw is None else decode_screen_name(raw)

    @property
    def cookie(self) -> bytes | None:
        return find_tlv(self.tlvs, SignonTlv.COOKIE)

    def __repr__(self) -> str:
        return f"Hello(version={self.version}, kind={self.kind.value}, tlvs={len(self.tlvs)})"


def parse_hello(payload: bytes) -> Hello:
    """Parse a channel-1 payload: u32 version, then TLVs."""
    reader = ByteReader(payload, "channel-1 hello")
    version = reader.u32("FLAP version")
    if version != FLAP_VERSION:
        raise ProtocolError("channel-1 hello version", expected=FLAP_VERSION, actual=version)
    return Hello(version, read_tlvs_to_end(reader))


def encode_hello(tlvs: Tlvs = ()) -> bytes:
    return u32(FLAP_VERSION) + encode_tlvs(tlvs)


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """A BUCP 0x0017/0x0002 login request, without its secrets."""

    screen_name: str
    hash_style: str  # "strong" (TLV 0x4C present), "weak" or "none"
    client_id: str | None


def parse_challenge_request(snac: Snac) -> str:
    """Return the screen name of a BUCP 0x0017/0x0006 challenge request."""
    tlvs = _bucp_tlvs(snac, BucpSubtype.CHALLENGE_REQUEST)
    return _require_screen_name(tlvs, "BUCP challenge request")


def parse_login_request(snac: Snac) -> LoginRequest:
    tlvs = _bucp_tlvs(snac, BucpSubtype.LOGIN_REQUEST)
    name = _require_screen_name(tlvs, "BUCP login request")
    if find_tlv(tlvs, SignonTlv.PASSWORD_HASH) is None:
        style = "none"
    elif find_tlv(tlvs, SignonTlv.STRONG_HASH) is not None:
        style = "strong"
    else:
        style = "weak"
    client_raw = find_tlv(tlvs, SignonTlv.CLIENT_ID_STRING)
    client = None if client_raw is None else client_raw.decode("utf-8", "replace")
    return LoginRequest(name, style, client)


def _bucp_tlvs(snac: Snac, subtype: BucpSubtype) -> Tlvs:
    expect_snac(snac, Family.BUCP, subtype, "BUCP")
    return read_tlvs_to_end(ByteReader(snac.body, f"BUCP 0x{subtype:04x} TLVs"))


def _require_screen_name(tlvs: Tlvs, context: str) -> str:
    raw = find_tlv(tlvs, SignonTlv.SCREEN_NAME)
    if not raw:
        raise ProtocolError(f"{context} has no screen name TLV", expected=SignonTlv.SCREEN_NAME)
    return decode_screen_name(raw)


@dataclass(frozen=True, slots=True)
class LoginReply:
    """A sign-on reply: BUCP 0x0017/0x0003 body or an old-style channel-4 payload."""

    tlvs: Tlvs
    screen_name: str | None = None
    bos_host: str | None = None
    bos_port: int | None = None
    error_code: int | None = None
    error_url: str | None = None
    cookie: bytes | None = field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.cookie is not None and self.bos_host is not None


def parse_login_reply(tlvs: Tlvs) -> LoginReply:
    name = find_tlv(tlvs, SignonTlv.SCREEN_NAME)
    address = find_tlv(tlvs, SignonTlv.BOS_ADDRESS)
    host, port = parse_address(address) if address else (None, None)
    code = find_tlv(tlvs, SignonTlv.ERROR_CODE)
    url = find_tlv(tlvs, SignonTlv.ERROR_URL)
    return LoginReply(
        tlvs=tlvs,
        screen_name=None if name is None else decode_screen_name(name),
        bos_host=host,
        bos_port=port,
        error_code=_u16_value(code),
        error_url=None if url is None else url.decode("utf-8", "replace"),
        cookie=find_tlv(tlvs, SignonTlv.COOKIE),
    )


def parse_bucp_login_reply(snac: Snac) -> LoginReply:
    return parse_login_reply(_bucp_tlvs(snac, BucpSubtype.LOGIN_RESPONSE))


def parse_signoff(payload: bytes) -> LoginReply:
    """Parse a channel-4 payload: an old-style login reply or a sign-off notice."""
    return parse_login_reply(read_tlvs_to_end(ByteReader(payload, "channel-4 TLVs")))


def rewrite_bos_address(tlvs: Tlvs, address: bytes) -> Tlvs:
    """Replace TLV 0x05, keeping every other TLV and the order."""
    return replace_tlv(tlvs, SignonTlv.BOS_ADDRESS, address)


def _u16_value(raw: bytes | None) -> int | None:
    if raw is None:
        return None
    if len(raw) != 2:
        raise ProtocolError("TLV 0x0008 error code length", expected=2, actual=len(raw))
    return int.from_bytes(raw, "big")


def failure_tlvs(screen_name: str, code: int, url: str) -> Tlvs:
    """TLVs of a sign-on failure reply that clients display: 0x01, 0x08 code, 0x04 URL."""
    return (
        Tlv(SignonTlv.SCREEN_NAME, screen_name.encode("utf-8")),
        Tlv(SignonTlv.ERROR_URL, url.encode("utf-8")),
        Tlv(SignonTlv.ERROR_CODE, u16(code)),
    )


def encode_bucp_login_failure(request_id: int, screen_name: str, code: int, url: str) -> bytes:
    """Build a 0x0017/0x0003 SNAC that reports a failed sign-on and echoes the request id."""
    body = encode_tlvs(failure_tlvs(screen_name, code, url))
    return encode_snac(Family.BUCP, BucpSubtype.LOGIN_RESPONSE, request_id, body)


def encode_old_style_failure(screen_name: str, code: int, url: str) -> bytes:
    """Build the channel-4 payload that reports a failed old-style sign-on."""
    return encode_tlvs(failure_tlvs(screen_name, code, url))


# Client-side builders, used by the scripted client in tests, the demo and benchmarks.


def encode_challenge_request(request_id: int, screen_name: str) -> bytes:
    tlvs = (Tlv(SignonTlv.SCREEN_NAME, screen_name.encode("utf-8")),)
    return encode_snac(Family.BUCP, BucpSubtype.CHALLENGE_REQUEST, request_id, encode_tlvs(tlvs))


def parse_challenge_response(snac: Snac) -> bytes:
    """Return the key of a BUCP 0x0017/0x0007 challenge response."""
    expect_snac(snac, Family.BUCP, BucpSubtype.CHALLENGE_RESPONSE, "BUCP")
    return ByteReader(snac.body, "BUCP challenge key").u16_string("challenge key")


def login_hash(key: bytes, password: str, strong: bool = True) -> bytes:
    """Compute the MD5 login hash of TLV 0x25; the strong form hashes MD5(password)."""
    secret = password.encode("utf-8")
    if strong:
        secret = hashlib.md5(secret).digest()  # noqa: S324 - fixed by the protocol
    return hashlib.md5(key + secret + AIM_MD5_STRING).digest()  # noqa: S324


def encode_login_request(
    request_id: int,
    screen_name: str,
    password_hash: bytes,
    *,
    strong: bool = True,
    multi_connection: int | None = None,
) -> bytes:
    """Build a BUCP login request (0x0017/0x0002).

    ``multi_connection`` adds TLV 0x4A, one byte: 0x00 for a client without
    multi-connection support, 0x01 for one that allows several sessions, 0x03
    for one that wants a single session. Open OSCAR Server v0.22.0 sends a
    session that it ends for a newer sign-on the reason in channel-4 TLV 0x09
    only when that session's flag is not 0x00.
    """
    tlvs = [
        Tlv(SignonTlv.SCREEN_NAME, screen_name.encode("utf-8")),
        Tlv(SignonTlv.CLIENT_ID_STRING, b"IMtegrity scripted client"),
        Tlv(SignonTlv.PASSWORD_HASH, password_hash),
    ]
    if strong:
        tlvs.append(Tlv(SignonTlv.STRONG_HASH, b""))
    if multi_connection is not None:
        tlvs.append(Tlv(MULTI_CONNECTION_TLV, bytes([multi_connection])))
    body = encode_tlvs(tlvs)
    return encode_snac(Family.BUCP, BucpSubtype.LOGIN_REQUEST, request_id, body)


def roast_password(password: str) -> bytes:
    """XOR the password with the fixed 16-byte table of the old-style login."""
    raw = password.encode("utf-8")
    return bytes(byte ^ ROAST_TABLE[i % len(ROAST_TABLE)] for i, byte in enumerate(raw))


def encode_old_style_login(screen_name: str, password: str) -> bytes:
    tlvs = (
        Tlv(SignonTlv.SCREEN_NAME, screen_name.encode("utf-8")),
        Tlv(SignonTlv.ROASTED_PASSWORD, roast_password(password)),
        Tlv(SignonTlv.CLIENT_ID_STRING, b"IMtegrity scripted client"),
    )
    return encode_hello(tlvs)


def encode_cookie_hello(cookie: bytes) -> bytes:
    return encode_hello((Tlv(SignonTlv.COOKIE, cookie),))
