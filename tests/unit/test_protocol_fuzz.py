"""Hypothesis tests: every parser returns a value or raises ProtocolError.

Any other exception (IndexError, struct.error, UnicodeDecodeError, ValueError,
AssertionError from a library) fails the test. Inputs are arbitrary bytes,
byte vectors with random edits, and bytes built from valid pieces, so the
fuzzer also reaches the fields behind a well-formed header.

The default profile runs 200 examples per test. Set HYPOTHESIS_PROFILE=deep for
20000 examples per test.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imtegrity_proxy.protocol.address import parse_address
from imtegrity_proxy.protocol.chat import parse_chat_receive, parse_chat_send, parse_room_info
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.flap import Flap, FlapReader, encode_flap
from imtegrity_proxy.protocol.icbm import (
    parse_host_ack,
    parse_icbm_receive,
    parse_icbm_send,
    parse_message_body,
    parse_typing,
)
from imtegrity_proxy.protocol.oservice import (
    parse_error,
    parse_migration,
    parse_redirect,
    parse_self_info,
    parse_service_request,
)
from imtegrity_proxy.protocol.rendezvous import parse_rendezvous, parse_rendezvous_block
from imtegrity_proxy.protocol.signon import (
    parse_bucp_login_reply,
    parse_challenge_request,
    parse_challenge_response,
    parse_hello,
    parse_login_reply,
    parse_login_request,
    parse_signoff,
)
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.text import decode_chat_text, decode_fragment_text, markup_to_plain
from imtegrity_proxy.protocol.tlv import Tlv, encode_tlvs, parse_tlvs

from tests.unit.protocol_vectors import (
    FLAP_VECTORS,
    MESSAGE_VECTORS,
    SNAC_VECTORS,
    TLV_VECTORS,
    h,
)

settings.register_profile(
    "protocol-fast",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ = settings.get_profile(
    "deep" if os.environ.get("HYPOTHESIS_PROFILE") == "deep" else "protocol-fast"
)


# Strategies.

# TLV types the parsers look for, so that built inputs reach their decoders.
INTERESTING_TLV_TYPES = [
    0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0008, 0x0009, 0x000D,
    0x000F, 0x0011, 0x0025, 0x004C, 0x006A, 0x008E, 0x00D3, 0x2711,
]  # fmt: skip

# Pieces of valid structures: ICBM fragments, charsets, markup and addresses.
PIECES = [
    h("0501 0001 01"),
    h("0101 0004 0000 0000"),
    h("0101 0006 0002 0000 d83d"),
    h("0101 0005 0000 0000 ff"),
    h("0000 0000 0000 0000"),
    h("0001 0001"),
    h("09461343 4c7f 11d1 8222 444553540000"),
    h("0001 0001 00003039"),
    b"<HTML><BODY>",
    b"<![foo[",
    b"<!",
    b"&#",
    b"</",
    b"127.0.0.1:5190",
    b"[::1]:",
    b":",
    b"\x00",
    b"unicode-2-0",
    b"iso-8859-1",
]


def tlv_bytes() -> st.SearchStrategy[bytes]:
    types = st.sampled_from(INTERESTING_TLV_TYPES) | st.integers(0, 0xFFFF)
    return st.builds(lambda t, v: Tlv(t, v).to_bytes(), types, st.binary(max_size=64))


def structured_bytes() -> st.SearchStrategy[bytes]:
    """Bytes glued from valid TLVs, known pieces, small integers and noise."""
    piece = st.one_of(
        tlv_bytes(),
        st.sampled_from(PIECES),
        st.integers(0, 0xFFFF).map(lambda value: value.to_bytes(2, "big")),
        st.integers(0, 0xFF).map(lambda value: bytes([value])),
        st.binary(max_size=16),
    )
    return st.lists(piece, max_size=12).map(b"".join)


def nested_tlv_bytes() -> st.SearchStrategy[bytes]:
    """TLV lists whose values are themselves built bytes, one level deep."""
    inner = st.one_of(st.binary(max_size=32), structured_bytes())
    types = st.sampled_from(INTERESTING_TLV_TYPES)
    one = st.builds(lambda t, v: Tlv(t, v[:0xFFFF]).to_bytes(), types, inner)
    return st.lists(one, max_size=6).map(b"".join)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with random edits: cut, overwrite, insert or delete bytes."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        edit = draw(st.sampled_from(["cut", "set", "insert", "delete"]))
        index = draw(st.integers(0, len(data)))
        if edit == "cut":
            del data[index:]
        elif edit == "set" and index < len(data):
            data[index] = draw(st.integers(0, 0xFF))
        elif edit == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "delete":
            del data[index : index + draw(st.integers(1, 8))]
    return bytes(data)


SNAC_PAYLOAD_SEEDS = [vector.raw for vector in MESSAGE_VECTORS] + [v.raw for v in SNAC_VECTORS]
# The bytes after a 10-byte SNAC header; rows that are not SNACs give odd seeds, which is fine.
MESSAGE_BODY_SEEDS = [vector.raw[10:] for vector in MESSAGE_VECTORS]
TLV_SEEDS = [vector.raw for vector in TLV_VECTORS] + [
    vector.raw for vector in MESSAGE_VECTORS if vector.name.startswith("channel-4")
]


def fuzz_bytes(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300), structured_bytes(), nested_tlv_bytes(), mutated(seeds)
    )


def snac_bodies() -> st.SearchStrategy[bytes]:
    return fuzz_bytes(MESSAGE_BODY_SEEDS)


def _assert_parses_or_raises(parse: Callable[..., Any], *args: Any) -> Any:
    """Call ``parse``; a ProtocolError is an accepted outcome, and returns None."""
    try:
        return parse(*args)
    except ProtocolError:
        return None


def _snac(family: int, subtype: int, body: bytes) -> Snac:
    return Snac(family, subtype, 0, 0, body)


# Framing.


@FUZZ
@given(st.lists(st.binary(max_size=40) | mutated([v.raw for v in FLAP_VECTORS[:7]]), max_size=8))
def test_fuzz_flap_reader(chunks: list[bytes]) -> None:
    reader = FlapReader()
    frame_bytes = 0
    try:
        for chunk in chunks:
            reader.feed(chunk)
            for frame in reader.frames():
                frame_bytes += 6 + len(frame.payload)
    except ProtocolError:
        return
    assert frame_bytes + reader.buffered == sum(len(chunk) for chunk in chunks)


@FUZZ
@given(fuzz_bytes(SNAC_PAYLOAD_SEEDS))
def test_fuzz_parse_snac(payload: bytes) -> None:
    snac = _assert_parses_or_raises(parse_snac, payload)
    if snac is not None:
        assert snac.to_bytes() == payload


@FUZZ
@given(fuzz_bytes(TLV_SEEDS))
def test_fuzz_parse_tlvs(data: bytes) -> None:
    tlvs = _assert_parses_or_raises(parse_tlvs, data)
    if tlvs is not None:
        assert encode_tlvs(tlvs) == data


# Sign-on.


@FUZZ
@given(fuzz_bytes([vector.raw for vector in MESSAGE_VECTORS if vector.name.startswith("hello")]))
def test_fuzz_parse_hello(payload: bytes) -> None:
    hello = _assert_parses_or_raises(parse_hello, payload)
    if hello is not None:
        assert hello.kind is not None
        assert hello.screen_name is None or isinstance(hello.screen_name, str)
        assert repr(hello)


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_challenge_request(body: bytes) -> None:
    _assert_parses_or_raises(parse_challenge_request, _snac(0x0017, 0x0006, body))


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_challenge_response(body: bytes) -> None:
    _assert_parses_or_raises(parse_challenge_response, _snac(0x0017, 0x0007, body))


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_login_request(body: bytes) -> None:
    _assert_parses_or_raises(parse_login_request, _snac(0x0017, 0x0002, body))


@FUZZ
@given(st.lists(st.builds(Tlv, st.sampled_from(INTERESTING_TLV_TYPES), snac_bodies())))
def test_fuzz_parse_login_reply(tlvs: list[Tlv]) -> None:
    _assert_parses_or_raises(parse_login_reply, tuple(tlvs))


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_bucp_login_reply(body: bytes) -> None:
    _assert_parses_or_raises(parse_bucp_login_reply, _snac(0x0017, 0x0003, body))


@FUZZ
@given(fuzz_bytes(TLV_SEEDS))
def test_fuzz_parse_signoff(payload: bytes) -> None:
    _assert_parses_or_raises(parse_signoff, payload)


# Family 0x0001.


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_redirect(body: bytes) -> None:
    redirect = _assert_parses_or_raises(parse_redirect, _snac(0x0001, 0x0005, body))
    if redirect is not None:
        assert encode_tlvs(redirect.tlvs) == body


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_migration(body: bytes) -> None:
    migration = _assert_parses_or_raises(parse_migration, _snac(0x0001, 0x0012, body))
    if migration is None:
        return
    addresses = [tlv.value for tlv in migration.tlvs if tlv.type == 0x0005]
    if len(set(addresses)) == 1:
        assert migration.with_address(addresses[0]) == body
    # Every TLV 0x05 is rewritten, so a duplicate cannot carry a second address.
    rewritten = parse_migration(_snac(0x0001, 0x0012, migration.with_address(b"proxy:1")))
    assert [t.value for t in rewritten.tlvs if t.type == 0x0005] == [b"proxy:1"] * len(addresses)


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_service_request(body: bytes) -> None:
    _assert_parses_or_raises(parse_service_request, _snac(0x0001, 0x0004, body))


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_self_info(body: bytes) -> None:
    _assert_parses_or_raises(parse_self_info, _snac(0x0001, 0x000F, body))


@FUZZ
@given(snac_bodies(), st.integers(0, 0xFFFF))
def test_fuzz_parse_error(body: bytes, family: int) -> None:
    _assert_parses_or_raises(parse_error, _snac(family, 0x0001, body))


# ICBM, rendezvous and text.


def _read_message(icbm: Any) -> None:
    """Touch every derived field of an ICBM, as the archive does."""
    message = _assert_parses_or_raises(lambda: icbm.message)
    if message is not None:
        assert isinstance(message.plain, str)
        assert isinstance(message.markup, str)
        assert isinstance(message.charset_name, str)
    _assert_parses_or_raises(parse_rendezvous, icbm)


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_icbm_send(body: bytes) -> None:
    icbm = _assert_parses_or_raises(parse_icbm_send, _snac(0x0004, 0x0006, body))
    if icbm is not None:
        _read_message(icbm)


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_icbm_receive(body: bytes) -> None:
    icbm = _assert_parses_or_raises(parse_icbm_receive, _snac(0x0004, 0x0007, body))
    if icbm is not None:
        _read_message(icbm)


@FUZZ
@given(fuzz_bytes([h("0501 0001 01 0101 0009 0000 0000") + b"hello"]))
def test_fuzz_parse_message_body(data: bytes) -> None:
    body = _assert_parses_or_raises(parse_message_body, data)
    if body is not None:
        assert isinstance(body.plain, str)
        assert isinstance(body.charset_name, str)


@FUZZ
@given(fuzz_bytes([vector.raw for vector in MESSAGE_VECTORS if vector.name.startswith("rend")]))
def test_fuzz_parse_rendezvous_block(data: bytes) -> None:
    rendezvous = _assert_parses_or_raises(parse_rendezvous_block, data)
    if rendezvous is not None:
        assert rendezvous.kind is None or rendezvous.kind.value == rendezvous.capability
        assert rendezvous.port is None or 0 <= rendezvous.port <= 0xFFFF


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_typing(body: bytes) -> None:
    _assert_parses_or_raises(parse_typing, _snac(0x0004, 0x0014, body))


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_host_ack(body: bytes) -> None:
    _assert_parses_or_raises(parse_host_ack, _snac(0x0004, 0x000C, body))


@FUZZ
@given(st.integers(0, 0xFFFF) | st.sampled_from([0, 2, 3]), st.binary(max_size=64))
def test_fuzz_decode_fragment_text(charset: int, data: bytes) -> None:
    text, name = decode_fragment_text(charset, data)
    assert isinstance(text, str)
    assert name


@FUZZ
@given(st.none() | st.text(max_size=20) | st.sampled_from(["unicode-2-0", "iso-8859-1"]),
       st.binary(max_size=64))  # fmt: skip
def test_fuzz_decode_chat_text(encoding: str | None, data: bytes) -> None:
    text, name = decode_chat_text(encoding, data)
    assert isinstance(text, str)
    assert name


MARKUP_PIECES = ["<html>", "<body>", "<br>", "</p>", "<![", "<![if", "<!", "<!--", "&#", "&amp",
                 "<a href='", "<font", ">", "]]>", "<?", "</"]  # fmt: skip


@FUZZ
@given(st.lists(st.sampled_from(MARKUP_PIECES) | st.text(max_size=8), max_size=12).map("".join))
def test_fuzz_markup_to_plain(text: str) -> None:
    assert isinstance(markup_to_plain(text), str)


# Chat.


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_chat_send(body: bytes) -> None:
    message = _assert_parses_or_raises(parse_chat_send, _snac(0x000E, 0x0005, body))
    if message is not None:
        assert isinstance(message.plain, str)


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_chat_receive(body: bytes) -> None:
    message = _assert_parses_or_raises(parse_chat_receive, _snac(0x000E, 0x0006, body))
    if message is not None:
        assert isinstance(message.plain, str)


@FUZZ
@given(snac_bodies())
def test_fuzz_parse_room_info(body: bytes) -> None:
    _assert_parses_or_raises(parse_room_info, _snac(0x000E, 0x0002, body))


@FUZZ
@given(st.binary(max_size=40) | st.lists(st.sampled_from(PIECES[-8:]) | st.text(max_size=6).map(
    lambda text: text.encode()), max_size=5).map(b"".join))  # fmt: skip
def test_fuzz_parse_address(raw: bytes) -> None:
    address = _assert_parses_or_raises(parse_address, raw)
    if address is not None:
        host, port = address
        assert host
        assert port is None or 0 < port <= 0xFFFF


# Round trips.

TLVS = st.lists(st.builds(Tlv, st.integers(0, 0xFFFF), st.binary(max_size=300)), max_size=20)


@FUZZ
@given(TLVS)
def test_roundtrip_tlv_list(tlvs: list[Tlv]) -> None:
    encoded = encode_tlvs(tlvs)
    assert parse_tlvs(encoded) == tuple(tlvs)
    assert encode_tlvs(parse_tlvs(encoded)) == encoded


FRAMES = st.lists(
    st.builds(Flap, st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.binary(max_size=600)),
    min_size=1,
    max_size=8,
)


@FUZZ
@given(FRAMES, st.data())
def test_roundtrip_flap_frames(frames: list[Flap], data: st.DataObject) -> None:
    stream = b"".join(encode_flap(f.channel, f.sequence, f.payload) for f in frames)
    reader = FlapReader()
    decoded: list[Flap] = []
    position = 0
    while position < len(stream):
        size = data.draw(st.integers(1, max(1, len(stream) - position)))
        reader.feed(stream[position : position + size])
        position += size
        decoded += reader.frames()
    assert decoded == frames
    assert reader.buffered == 0
    assert b"".join(frame.to_bytes() for frame in decoded) == stream
