"""Byte-level proof that injected and withheld frames leave no gap in either FLAP sequence.

A real ``Connection`` and its inspector run against recording writers in place
of the client and server sockets, with a real archive. Each test feeds frames
in, then decodes every byte the proxy wrote to each side.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy.archive import Archive, export_records
from imtegrity_proxy.config import parse_config
from imtegrity_proxy.metrics import ProxyMetrics
from imtegrity_proxy.protocol.enums import Channel, Family, IcbmSubtype, IcbmTlv
from imtegrity_proxy.protocol.flap import Flap, FlapReader, SequenceRenumberer
from imtegrity_proxy.protocol.icbm import (
    encode_icbm_receive,
    encode_icbm_send,
    parse_icbm_receive,
    parse_icbm_send,
    text_message_tlvs,
)
from imtegrity_proxy.protocol.oservice import encode_error
from imtegrity_proxy.protocol.snac import Snac, encode_snac, parse_snac
from imtegrity_proxy.protocol.tlv import find_tlv
from imtegrity_proxy.protocol.userinfo import UserInfo
from imtegrity_proxy.relay.connection import Connection
from imtegrity_proxy.relay.context import RelayContext
from imtegrity_proxy.relay.frames import FrameSink
from imtegrity_proxy.relay.inject import TO_CLIENT_REQUEST_IDS, TO_SERVER_REQUEST_IDS

DISCLAIMER = "Supervised conversation with {remote}."


class RecordingWriter:
    """Stands in for an asyncio.StreamWriter and keeps every byte written."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.data = bytearray()
        self._peer = peer

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        return None

    async def wait_closed(self) -> None:
        return None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer, "sockname": ("127.0.0.1", 5190)}.get(name, default)

    def frames(self) -> list[Flap]:
        reader = FlapReader()
        reader.feed(bytes(self.data))
        frames = reader.frames()
        assert reader.buffered == 0
        return frames


@dataclass
class Relay:
    conn: Connection
    to_client: RecordingWriter
    to_server: RecordingWriter
    archive_path: Path
    client_sequence: itertools.count[int]
    server_sequence: itertools.count[int]

    async def from_client(self, snac: bytes) -> None:
        sequence = next(self.client_sequence) % 0x10000
        await self.conn.inspector.from_client(Flap(Channel.DATA, sequence, snac))

    async def from_server(self, snac: bytes) -> None:
        sequence = next(self.server_sequence) % 0x10000
        await self.conn.inspector.from_server(Flap(Channel.DATA, sequence, snac))


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    config = parse_config(
        {
            "policy": {
                "identities": {"alice": "alice@bank.example"},
                "disclaimer": {"outbound": DISCLAIMER, "inbound": DISCLAIMER},
                "rules": [{"name": "no-alpha", "pattern": "alpha", "action": "block"}],
            }
        }
    )
    archive_path = tmp_path / "archive.sqlite3"
    archive = await Archive.open(archive_path, max_batch=8, max_delay=0)
    context = RelayContext.create(config, archive, ProxyMetrics())
    to_client = RecordingWriter(("127.0.0.9", 40001))
    conn = Connection(context, asyncio.StreamReader(), to_client)  # type: ignore[arg-type]
    to_server = RecordingWriter(("127.0.0.1", 5190))
    conn.to_server = FrameSink(to_server, "outbound", context.metrics)  # type: ignore[arg-type]
    conn.state.role = "bos"
    conn.state.set_screen_name("Alice")
    # Both directions near the top of the sequence space, so the tests also wrap.
    client_sequence = itertools.count(0xFFFC)
    server_sequence = itertools.count(0xFFFA)
    conn._to_server().relay(Flap(Channel.SIGNON, next(client_sequence), b"\x00\x00\x00\x01"))
    conn.to_client.relay(Flap(Channel.SIGNON, next(server_sequence), b"\x00\x00\x00\x01"))
    try:
        yield Relay(conn, to_client, to_server, archive_path, client_sequence, server_sequence)
    finally:
        await archive.close()


def im_send(request_id: int, text: str, recipient: str = "bob", *, ack: bool = False) -> bytes:
    return encode_icbm_send(request_id, bytes(8), recipient, text_message_tlvs(text, ack=ack))


def im_receive(text: str, sender: str = "bob") -> bytes:
    tlvs = text_message_tlvs(text)
    return encode_icbm_receive(0x8000_0000, bytes(8), UserInfo(sender, 0, ()), tlvs)


def assert_consecutive(frames: list[Flap], first: int) -> None:
    expected = [(first + offset) % 0x10000 for offset in range(len(frames))]
    assert [frame.sequence for frame in frames] == expected


def snacs(frames: list[Flap]) -> list[Snac]:
    return [parse_snac(frame.payload) for frame in frames if frame.channel == Channel.DATA]


async def test_outbound_injections_keep_sequences(relay: Relay) -> None:
    await relay.from_client(im_send(2, "hello bob"))  # disclaimer injected before it
    await relay.from_client(im_send(3, "alpha plans"))  # blocked: withheld
    await relay.from_client(im_send(4, "second"))

    upstream = relay.to_server.frames()
    assert_consecutive(upstream, 0xFFFC)  # 0xFFFC .. 0x0000: wraps through 0xFFFF
    sent = [parse_icbm_send(snac) for snac in snacs(upstream)]
    texts = [icbm.message.plain for icbm in sent if icbm.message is not None]
    assert texts == ["Supervised conversation with bob.", "hello bob", "second"]
    disclaimer_snac = snacs(upstream)[0]
    assert disclaimer_snac.request_id == TO_SERVER_REQUEST_IDS
    assert find_tlv(sent[0].tlvs, IcbmTlv.REQUEST_HOST_ACK) == b""
    assert sent[0].cookie != bytes(8)
    assert [snac.request_id for snac in snacs(upstream)[1:]] == [2, 4]
    # The user's own messages leave byte for byte as they came.
    assert upstream[2].payload == im_send(2, "hello bob")

    downstream = relay.to_client.frames()
    assert_consecutive(downstream, 0xFFFA)
    kinds = [(snac.family, snac.subtype) for snac in snacs(downstream)]
    assert kinds == [
        (Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT),  # the disclaimer, shown as a notice
        (Family.ICBM, IcbmSubtype.ERROR),  # the error reply to request 3
        (Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT),  # the notice for request 3
    ]
    notice_ids = [snacs(downstream)[0].request_id, snacs(downstream)[2].request_id]
    assert all(request_id >= TO_CLIENT_REQUEST_IDS for request_id in notice_ids)
    assert snacs(downstream)[1].request_id == 3


async def test_injected_frame_acks_withheld(relay: Relay) -> None:
    await relay.from_client(im_send(2, "hello bob", ack=True))
    injected = parse_icbm_send(snacs(relay.to_server.frames())[0])
    before = len(relay.to_client.frames())

    ack_body = injected.cookie + b"\x00\x01" + b"\x03bob"
    await relay.from_server(
        encode_snac(Family.ICBM, IcbmSubtype.HOST_ACK, TO_SERVER_REQUEST_IDS, ack_body)
    )
    own_ack = bytes(8) + b"\x00\x01" + b"\x03bob"
    await relay.from_server(encode_snac(Family.ICBM, IcbmSubtype.HOST_ACK, 2, own_ack))
    await relay.from_server(im_receive("a reply"))

    downstream = relay.to_client.frames()
    assert_consecutive(downstream, 0xFFFA)
    after = snacs(downstream[before:])
    assert [(snac.subtype, snac.request_id) for snac in after] == [
        (IcbmSubtype.HOST_ACK, 2),
        (IcbmSubtype.CHANNEL_MSG_TO_CLIENT, 0x8000_0000),
    ]
    assert relay.conn.inspector.enforcer.injector.pending == 0


async def test_injected_frame_errors_withheld(relay: Relay) -> None:
    await relay.from_client(im_send(2, "hello offline", recipient="offline"))
    before = len(relay.to_client.frames())
    await relay.from_server(encode_error(Family.ICBM, TO_SERVER_REQUEST_IDS, 0x0004))
    await relay.from_server(encode_error(Family.ICBM, 2, 0x0004))

    downstream = relay.to_client.frames()
    assert_consecutive(downstream, 0xFFFA)
    after = snacs(downstream[before:])
    assert [(snac.subtype, snac.request_id) for snac in after] == [(IcbmSubtype.ERROR, 2)]


async def test_ack_with_wrong_cookie_passes(relay: Relay) -> None:
    """A reply is withheld only when request id and cookie both match an injected send."""
    await relay.from_client(im_send(2, "hello bob"))
    before = len(relay.to_client.frames())
    forged = b"\xee" * 8 + b"\x00\x01" + b"\x03bob"
    await relay.from_server(
        encode_snac(Family.ICBM, IcbmSubtype.HOST_ACK, TO_SERVER_REQUEST_IDS, forged)
    )
    assert len(relay.to_client.frames()) == before + 1
    assert relay.conn.inspector.enforcer.injector.pending == 1


async def test_inbound_injections_keep_sequences(relay: Relay) -> None:
    await relay.from_server(im_receive("hi alice"))  # inbound disclaimer both ways
    await relay.from_server(im_receive("alpha rumours"))  # blocked: withheld
    await relay.from_server(im_receive("bye"))

    downstream = relay.to_client.frames()
    assert_consecutive(downstream, 0xFFFA)
    received = [parse_icbm_receive(snac) for snac in snacs(downstream)]
    texts = [icbm.message.plain for icbm in received if icbm.message is not None]
    assert texts == [
        "[notice] Supervised conversation with bob.",
        "hi alice",
        "[notice] A message from bob was blocked by the compliance policy (rule no-alpha).",
        "bye",
    ]

    upstream = relay.to_server.frames()
    assert_consecutive(upstream, 0xFFFC)
    sent = [parse_icbm_send(snac) for snac in snacs(upstream)]
    assert [icbm.screen_name for icbm in sent] == ["bob"]
    assert sent[0].message is not None
    assert sent[0].message.plain == "Supervised conversation with bob."

    records = list(export_records(relay.archive_path))
    assert [(r["kind"], r["direction"], r["action"]) for r in records] == [
        ("disclaimer", "inbound", "delivered"),
        ("message", "inbound", "delivered"),
        ("message", "inbound", "blocked"),
        ("notice", "inbound", None),
        ("message", "inbound", "delivered"),
    ]
    assert all(r["identity"] == "alice@bank.example" for r in records)


def test_renumberer_inject_and_drop_bytes() -> None:
    """The renumbering alone: the same numbers whatever mix of inject and drop precedes."""
    renumberer = SequenceRenumberer()
    incoming = [Flap(Channel.DATA, sequence, b"x") for sequence in (0xFFFE, 0xFFFF, 0, 1)]
    out = [renumberer.relay(incoming[0])]
    out.append(renumberer.inject(Channel.DATA, b"injected"))
    renumberer.drop(incoming[1])
    out.append(renumberer.relay(incoming[2]))
    out.append(renumberer.inject(Channel.DATA, b"injected"))
    out.append(renumberer.inject(Channel.DATA, b"injected"))
    out.append(renumberer.relay(incoming[3]))
    assert [frame.to_bytes()[:4] for frame in out] == [
        b"\x2a\x02\xff\xfe",
        b"\x2a\x02\xff\xff",
        b"\x2a\x02\x00\x00",
        b"\x2a\x02\x00\x01",
        b"\x2a\x02\x00\x02",
        b"\x2a\x02\x00\x03",
    ]
