"""Migration (0x0001/0x0012) and a redirect from a fake upstream.

Open OSCAR Server never migrates a session, so a small fake upstream of our
own sends the frames; the relay must rewrite them like a redirect.
"""

from __future__ import annotations

import asyncio
import struct

import pytest
from imtegrity_proxy.client import FlapStream
from imtegrity_proxy.protocol.enums import Channel, Family, OServiceSubtype
from imtegrity_proxy.protocol.flap import FlapReader, encode_flap
from imtegrity_proxy.protocol.oservice import parse_migration, parse_redirect
from imtegrity_proxy.protocol.signon import encode_cookie_hello, encode_hello, parse_hello
from imtegrity_proxy.protocol.snac import encode_snac
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs

pytestmark = pytest.mark.e2e

MIGRATION_COOKIE = bytes(range(40))
REDIRECT_COOKIE = b"redirect-cookie-" * 3


class FakeUpstream:
    """Answers a cookie hello with a migration and a redirect, then records hellos."""

    def __init__(self) -> None:
        self.hellos: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flap = FlapReader()
        writer.write(encode_flap(Channel.SIGNON, 100, encode_hello()))
        while (frame := flap.next_frame()) is None:
            flap.feed(await reader.read(4096))
        self.hellos.append(parse_hello(frame.payload).cookie or b"")
        port = self.server.sockets[0].getsockname()[1]
        address = f"127.0.0.1:{port}".encode()
        migration = struct.pack(">HHH", 2, Family.ICBM, Family.LOCATE) + encode_tlvs(
            (Tlv(0x0005, address), Tlv(0x0006, MIGRATION_COOKIE))
        )
        redirect = encode_tlvs(
            (
                Tlv(0x000D, b"\x00\x0e"),
                Tlv(0x0005, address),
                Tlv(0x0006, REDIRECT_COOKIE),
                Tlv(0x008E, b"\x00"),
            )
        )
        writer.write(
            encode_flap(
                Channel.DATA,
                101,
                encode_snac(
                    Family.OSERVICE, OServiceSubtype.MIGRATE_GROUPS, 0x80000001, migration
                ),
            )
        )
        writer.write(
            encode_flap(
                Channel.DATA,
                102,
                encode_snac(Family.OSERVICE, OServiceSubtype.SERVICE_RESPONSE, 7, redirect),
            )
        )
        await writer.drain()
        await reader.read(4096)
        writer.close()


async def test_migration_and_redirect_rewritten(proxy_factory):
    fake = FakeUpstream()
    port = await fake.start()
    proxy = await proxy_factory(upstream={"servers": [f"127.0.0.1:{port}"]})
    client = await FlapStream.open("127.0.0.1", proxy.port)
    await client.read()
    await client.send(Channel.SIGNON, encode_cookie_hello(b"unknown-cookie"))
    migration = parse_migration(await client.read_snac(Family.OSERVICE, 0x0012))
    redirect = parse_redirect(await client.read_snac(Family.OSERVICE, 0x0005))
    await client.close()
    assert migration.families == (Family.ICBM, Family.LOCATE)
    assert (migration.host, migration.port) == ("127.0.0.1", proxy.port)
    assert migration.cookie == MIGRATION_COOKIE
    assert [t.type for t in redirect.tlvs] == [0x000D, 0x0005, 0x0006, 0x008E]
    assert (redirect.host, redirect.port) == ("127.0.0.1", proxy.port)
    assert redirect.cookie == REDIRECT_COOKIE
    # Both cookies now lead to the fake upstream, unchanged.
    for cookie in (MIGRATION_COOKIE, REDIRECT_COOKIE):
        stream = await FlapStream.open("127.0.0.1", proxy.port)
        await stream.read()
        await stream.send(Channel.SIGNON, encode_cookie_hello(cookie))
        await stream.read_snac(Family.OSERVICE, 0x0012)
        await stream.close()
    assert fake.hellos == [b"unknown-cookie", MIGRATION_COOKIE, REDIRECT_COOKIE]
    sequences = [f.sequence for f in client.received]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
