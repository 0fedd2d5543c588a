"""Protocol errors and reprs: rules and hex values shown, payload bytes never."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from imtegrity_proxy.protocol.address import parse_address
from imtegrity_proxy.protocol.chat import ChatMessage
from imtegrity_proxy.protocol.errors import (
    ClientProtocolError,
    ProtocolError,
    ServerProtocolError,
)
from imtegrity_proxy.protocol.flap import Flap, FlapReader
from imtegrity_proxy.protocol.icbm import (
    HostAck,
    Icbm,
    TypingNotification,
    encode_message_body,
    parse_message_body,
)
from imtegrity_proxy.protocol.oservice import Migration, Redirect
from imtegrity_proxy.protocol.rendezvous import Rendezvous
from imtegrity_proxy.protocol.signon import Hello, LoginReply, parse_login_reply
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.protocol.tlv import Tlv, parse_tlvs

from tests.unit.protocol_vectors import MESSAGE_VECTORS, MessageVector, h

SECRET = b"hunter2-SECRET"
SECRET_TEXT = SECRET.decode()


def _assert_hides_secret(text: str) -> None:
    assert SECRET_TEXT not in text
    assert "hunter2" not in text
    assert SECRET.hex() not in text
    assert repr(SECRET) not in text


def test_error_message_format() -> None:
    error = ProtocolError("FLAP start marker", expected=0x2A, actual=0x16)
    assert str(error) == "FLAP start marker (expected 0x002a, got 0x0016)"
    assert error.rule == "FLAP start marker"
    assert error.expected == 0x2A
    assert error.actual == 0x16


def test_error_message_rule_only() -> None:
    assert str(ProtocolError("address has no host")) == "address has no host"


def test_error_message_text_values() -> None:
    error = ProtocolError("TLV type is truncated", expected="2 bytes", actual="1 bytes")
    assert str(error) == "TLV type is truncated (expected 2 bytes, got 1 bytes)"


@pytest.mark.parametrize(
    ("side", "kind"), [("client", ClientProtocolError), ("server", ServerProtocolError)]
)
def test_error_for_side(side: str, kind: type[ProtocolError]) -> None:
    original = ProtocolError("SNAC header is truncated", expected=10, actual=3)
    blamed = original.for_side(side)
    assert type(blamed) is kind
    assert isinstance(blamed, ProtocolError)
    assert blamed.side == side
    assert str(blamed) == str(original)
    assert blamed.__cause__ is original


def test_error_sides_share_root() -> None:
    assert issubclass(ClientProtocolError, ProtocolError)
    assert issubclass(ServerProtocolError, ProtocolError)
    assert ProtocolError("x").side == "peer"


def test_error_for_unknown_side() -> None:
    with pytest.raises(ValueError, match="side must be"):
        ProtocolError("x").for_side("upstream")


# Inputs that fail to parse while carrying a secret in the payload.
FAILING_INPUTS: list[tuple[str, Callable[[bytes], object], bytes]] = [
    ("TLV value cut", parse_tlvs, h("0025 0020") + SECRET),
    ("TLV after a secret", parse_tlvs, h("0025 000e") + SECRET + h("00")),
    ("SNAC 0x8000 block cut", parse_snac, h("0001 0003 8000 00000001 0040") + SECRET),
    ("address not ASCII", parse_address, SECRET + b"\xff:5190"),
    ("address port", parse_address, b"127.0.0.1:" + SECRET),
    ("address bracket", parse_address, b"[" + SECRET + b"]x"),
    (
        "login reply error code",
        lambda raw: parse_login_reply(parse_tlvs(raw)),
        h("0008 000e") + SECRET,
    ),
    ("message fragment cut", parse_message_body, h("0101 0020 0000 0000") + SECRET),
]


@pytest.mark.parametrize(
    ("parse", "raw"),
    [(parse, raw) for _, parse, raw in FAILING_INPUTS],
    ids=[name for name, _, _ in FAILING_INPUTS],
)
def test_error_hides_payload(parse: Callable[[bytes], object], raw: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse(raw)
    _assert_hides_secret(str(caught.value))
    _assert_hides_secret(repr(caught.value))


def test_error_over_limit_hides_payload() -> None:
    reader = FlapReader(max_payload=8)
    reader.feed(h("2a 02 0001 000e") + SECRET)
    with pytest.raises(ProtocolError, match="over the limit") as caught:
        reader.next_frame()
    _assert_hides_secret(str(caught.value))


def test_error_bad_marker_hides_payload() -> None:
    reader = FlapReader()
    reader.feed(SECRET)
    with pytest.raises(ProtocolError, match="start marker") as caught:
        reader.next_frame()
    _assert_hides_secret(str(caught.value))


@pytest.mark.parametrize("vector", MESSAGE_VECTORS, ids=lambda vector: vector.name)
def test_error_hides_payload_in_every_vector(vector: MessageVector) -> None:
    # Put the secret at every position of the vector and cut the result short,
    # so that each parser fails on payloads that hold the secret.
    raw = vector.raw
    for position in range(len(raw) + 1):
        spiked = raw[:position] + SECRET + raw[position:]
        for cut in (len(spiked) - 1, position + len(SECRET) - 1):
            try:
                vector.parse(spiked[:cut])
            except ProtocolError as error:
                _assert_hides_secret(str(error))


# Reprs: values that can hold secrets or message text show only their size.

SECRET_MESSAGE = encode_message_body(SECRET_TEXT)
CAPABILITY = uuid.UUID("09461343-4c7f-11d1-8222-444553540000")

REPR_OBJECTS: list[tuple[str, object]] = [
    ("Tlv", Tlv(0x0025, SECRET)),
    ("Snac", Snac(0x0004, 0x0006, 0x8000, 1, SECRET, prefix=SECRET)),
    ("Flap", Flap(2, 1, SECRET)),
    ("Hello", Hello(1, (Tlv(0x0006, SECRET), Tlv(0x0002, SECRET)))),
    ("LoginReply", LoginReply(tlvs=(Tlv(0x0006, SECRET),), cookie=SECRET)),
    ("Redirect", Redirect((Tlv(0x0006, SECRET),), 0x000E, "127.0.0.1", 5190, SECRET)),
    ("Migration", Migration((1,), (Tlv(0x0006, SECRET),), "127.0.0.1", 5190, SECRET)),
    ("Icbm", Icbm(SECRET, 1, "lab02", (Tlv(0x0002, SECRET_MESSAGE),))),
    ("MessageBody", parse_message_body(SECRET_MESSAGE)),
    ("Fragment", parse_message_body(SECRET_MESSAGE).fragments[1]),
    ("TextPart", parse_message_body(SECRET_MESSAGE).parts[0]),
    ("TypingNotification", TypingNotification(SECRET, 1, "lab02", 2)),
    ("HostAck", HostAck(SECRET, 1, "lab02")),
    ("Rendezvous", Rendezvous(0, SECRET, CAPABILITY, (Tlv(0x2711, SECRET),))),
    (
        "ChatMessage",
        ChatMessage(SECRET, 3, (Tlv(0x0005, SECRET),), SECRET, SECRET_TEXT, "us-ascii", "ascii"),
    ),
]


@pytest.mark.parametrize(
    "value", [value for _, value in REPR_OBJECTS], ids=[name for name, _ in REPR_OBJECTS]
)
def test_repr_hides_values(value: object) -> None:
    _assert_hides_secret(repr(value))
    _assert_hides_secret(str(value))


def test_repr_shows_sizes() -> None:
    assert repr(Tlv(0x0025, SECRET)) == "Tlv(type=0x0025, length=14)"
    assert repr(Flap(2, 1, SECRET)) == "Flap(channel=2, sequence=0x0001, payload=14 bytes)"
