"""A scripted AIM client on the protocol package, for the demo, benchmarks and tests.

It signs on (BUCP with strong or weak MD5, or the old-style channel-1 login),
opens the BOS connection with the cookie it was handed, and can send and
receive instant messages, join chat rooms through a redirect, and send raw
frames. It follows every address the server (or the proxy) hands out, exactly
as a real client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import struct
from dataclasses import dataclass

from .protocol import chat, icbm, oservice, signon
from .protocol.enums import Channel, ChatSubtype, Family, IcbmSubtype, OServiceSubtype
from .protocol.flap import Flap, FlapReader, encode_flap
from .protocol.snac import Snac, encode_snac, parse_snac
from .protocol.tlv import Tlvs

# (family, version, tool id, tool version) of an AIM 5.x client, sent in client-online.
CLIENT_VERSIONS = ((0x0001, 4), (0x0002, 1), (0x0003, 1), (0x0004, 1), (0x0009, 1), (0x0013, 3))
PRIVATE_EXCHANGE = 4
DEFAULT_TIMEOUT = 10.0


class SignonFailed(Exception):
    """The server (or the proxy) refused the sign-on."""

    def __init__(self, code: int | None, url: str | None) -> None:
        self.code = code
        self.url = url
        shown = "none" if code is None else f"0x{code:04x}"
        super().__init__(f"sign-on refused with error code {shown}")


class FlapStream:
    """One TCP connection that speaks FLAP, with its own outgoing sequence numbers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._flap = FlapReader()
        self._sequence = itertools.count(int.from_bytes(os.urandom(2), "big"))
        self._request_ids = itertools.count(1)
        self.received: list[Flap] = []
        self.sent: list[bytes] = []

    @classmethod
    async def open(
        cls, host: str, port: int, local_addr: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> FlapStream:
        local = (local_addr, 0) if local_addr else None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout
        )
        return cls(reader, writer)

    def next_request_id(self) -> int:
        return next(self._request_ids)

    async def send(self, channel: int, payload: bytes) -> None:
        data = encode_flap(channel, next(self._sequence), payload)
        self.sent.append(data)
        self.writer.write(data)
        await self.writer.drain()

    async def send_snac(self, snac_bytes: bytes) -> None:
        await self.send(Channel.DATA, snac_bytes)

    async def read(self, timeout: float = DEFAULT_TIMEOUT) -> Flap:
        async with asyncio.timeout(timeout):
            while (frame := self._flap.next_frame()) is None:
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionError("connection closed by the peer")
                self._flap.feed(data)
        self.received.append(frame)
        return frame

    async def read_snac(self, family: int, subtype: int, timeout: float = DEFAULT_TIMEOUT) -> Snac:
        """Read frames until a SNAC of (family, subtype) arrives; others are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.read(timeout)
                if frame.channel != Channel.DATA:
                    continue
                snac = parse_snac(frame.payload)
                if (snac.family, snac.subtype) == (family, subtype):
                    return snac

    async def close(self) -> None:
        if self.writer.is_closing():
            return
        with contextlib.suppress(OSError):
            await self.send(Channel.SIGNOFF, b"")
        self.writer.close()
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), 5)


@dataclass(frozen=True)
class LoginResult:
    screen_name: str
    host: str
    port: int
    cookie: bytes


async def login(
    host: str,
    port: int,
    screen_name: str,
    password: str,
    *,
    style: str = "bucp",
    strong: bool = True,
    local_addr: str | None = None,
    multi_connection: int | None = None,
) -> LoginResult:
    """Run the login connection; return where BOS is and the cookie to present there.

    ``multi_connection`` is sent as BUCP TLV 0x4A (see
    ``signon.encode_login_request``); the old-style login has no such field.
    """
    stream = await FlapStream.open(host, port, local_addr)
    try:
        await stream.read()  # the server's channel-1 hello
        if style == "old-style":
            reply = await _old_style_login(stream, screen_name, password)
        else:
            reply = await _bucp_login(stream, screen_name, password, strong, multi_connection)
    finally:
        await stream.close()
    if not reply.succeeded:
        raise SignonFailed(reply.error_code, reply.error_url)
    return LoginResult(
        reply.screen_name or screen_name,
        reply.bos_host or host,
        reply.bos_port or port,
        reply.cookie or b"",
    )


async def _bucp_login(
    stream: FlapStream,
    screen_name: str,
    password: str,
    strong: bool,
    multi_connection: int | None = None,
) -> signon.LoginReply:
    await stream.send(Channel.SIGNON, signon.encode_hello())
    await stream.send_snac(signon.encode_challenge_request(stream.next_request_id(), screen_name))
    frame = await _next_data(stream)
    snac = parse_snac(frame.payload)
    if snac.subtype == 0x0003:
        return signon.parse_bucp_login_reply(snac)
    key = signon.parse_challenge_response(snac)
    digest = signon.login_hash(key, password, strong)
    request = signon.encode_login_request(
        stream.next_request_id(),
        screen_name,
        digest,
        strong=strong,
        multi_connection=multi_connection,
    )
    await stream.send_snac(request)
    return signon.parse_bucp_login_reply(await stream.read_snac(Family.BUCP, 0x0003))


async def _old_style_login(
    stream: FlapStream, screen_name: str, password: str
) -> signon.LoginReply:
    await stream.send(Channel.SIGNON, signon.encode_old_style_login(screen_name, password))
    while True:
        frame = await stream.read()
        if frame.channel == Channel.SIGNOFF:
            return signon.parse_signoff(frame.payload)


async def _next_data(stream: FlapStream) -> Flap:
    while True:
        frame = await stream.read()
        if frame.channel == Channel.DATA:
            return frame
        if frame.channel == Channel.SIGNOFF:
            raise ConnectionError("the server closed the login connection")


async def open_service(
    host: str, port: int, cookie: bytes, local_addr: str | None = None
) -> FlapStream:
    """Open a BOS or service connection with ``cookie`` and send client-online."""
    stream = await FlapStream.open(host, port, local_addr)
    try:
        await stream.read()  # channel-1 hello
        await stream.send(Channel.SIGNON, signon.encode_cookie_hello(cookie))
        await stream.read_snac(Family.OSERVICE, OServiceSubtype.HOST_ONLINE)
        await stream.send_snac(_client_online(stream.next_request_id()))
    except BaseException:
        await stream.close()
        raise
    return stream


def _client_online(request_id: int) -> bytes:
    body = b"".join(
        struct.pack(">HHHH", family, version, 0x0110, 0x08E5)
        for family, version in CLIENT_VERSIONS
    )
    return encode_snac(Family.OSERVICE, OServiceSubtype.CLIENT_ONLINE, request_id, body)


@dataclass(frozen=True)
class ReceivedMessage:
    sender: str
    text: str
    html: str
    charset: str


class AimClient:
    """A signed-on user: the BOS connection plus any service connections it opened."""

    def __init__(self, screen_name: str, bos: FlapStream, local_addr: str | None) -> None:
        self.screen_name = screen_name
        self.bos = bos
        self.local_addr = local_addr
        self.services: list[FlapStream] = []

    @classmethod
    async def sign_on(
        cls,
        host: str,
        port: int,
        screen_name: str,
        password: str,
        *,
        style: str = "bucp",
        strong: bool = True,
        local_addr: str | None = None,
        multi_connection: int | None = None,
    ) -> AimClient:
        result = await login(
            host,
            port,
            screen_name,
            password,
            style=style,
            strong=strong,
            local_addr=local_addr,
            multi_connection=multi_connection,
        )
        bos = await open_service(result.host, result.port, result.cookie, local_addr)
        return cls(result.screen_name, bos, local_addr)

    async def send_im(self, recipient: str, text: str, *, ack: bool = False) -> int:
        """Send a channel-1 IM; return its SNAC request id."""
        return await self.send_im_tlvs(recipient, icbm.text_message_tlvs(text, ack=ack))

    async def send_im_tlvs(self, recipient: str, tlvs: Tlvs, channel: int = 1) -> int:
        request_id = self.bos.next_request_id()
        snac = icbm.encode_icbm_send(request_id, os.urandom(8), recipient, tlvs, channel)
        await self.bos.send_snac(snac)
        return request_id

    async def receive_im(self, timeout: float = DEFAULT_TIMEOUT) -> ReceivedMessage:
        snac = await self.bos.read_snac(Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT, timeout)
        message = icbm.parse_icbm_receive(snac)
        body = message.message
        if body is None:
            return ReceivedMessage(message.screen_name, "", "", "none")
        return ReceivedMessage(message.screen_name, body.plain, body.markup, body.charset_name)

    async def request_service(self, family: int, tlvs: Tlvs = ()) -> FlapStream:
        """Ask BOS for a service, follow the redirect, and open that connection."""
        request_id = self.bos.next_request_id()
        await self.bos.send_snac(oservice.encode_service_request(request_id, family, tlvs))
        snac = await self.bos.read_snac(Family.OSERVICE, OServiceSubtype.SERVICE_RESPONSE)
        redirect = oservice.parse_redirect(snac)
        if redirect.host is None or redirect.cookie is None:
            raise ConnectionError("the redirect carried no address or cookie")
        port = redirect.port or self.bos.writer.get_extra_info("peername")[1]
        stream = await open_service(redirect.host, port, redirect.cookie, self.local_addr)
        self.services.append(stream)
        return stream

    async def join_chat(self, room: str) -> ChatRoom:
        """Create or find a room through chat navigation, then join it."""
        nav = await self.request_service(Family.CHAT_NAV)
        await nav.send_snac(chat.encode_create_room(nav.next_request_id(), PRIVATE_EXCHANGE, room))
        info = chat.parse_nav_info_room(await nav.read_snac(Family.CHAT_NAV, 0x0009))
        tlv = oservice.chat_room_tlv(info.exchange, info.cookie, info.instance)
        stream = await self.request_service(Family.CHAT, (tlv,))
        return ChatRoom(self, stream, info.name or room)

    async def close(self) -> None:
        for stream in self.services:
            await stream.close()
        await self.bos.close()


class ChatRoom:
    def __init__(self, client: AimClient, stream: FlapStream, name: str) -> None:
        self.client = client
        self.stream = stream
        self.name = name

    async def send(self, text: str) -> None:
        request_id = self.stream.next_request_id()
        await self.stream.send_snac(chat.encode_chat_send(request_id, os.urandom(8), text))

    async def receive(self, timeout: float = DEFAULT_TIMEOUT) -> ReceivedMessage:
        """Return the next room message from someone else (own reflections are skipped)."""
        own = self.client.screen_name.replace(" ", "").lower()
        while True:
            snac = await self.stream.read_snac(
                Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT, timeout
            )
            message = chat.parse_chat_receive(snac)
            sender = message.sender.screen_name if message.sender else ""
            if sender.replace(" ", "").lower() != own:
                return ReceivedMessage(sender, message.plain, message.text, message.charset_name)
