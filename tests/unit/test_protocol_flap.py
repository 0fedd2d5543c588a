"""FLAP frames: byte vectors, incremental feeding, framer limits and renumbering."""

from __future__ import annotations

import itertools

import pytest
from imtegrity_proxy.protocol.enums import Channel
from imtegrity_proxy.protocol.errors import ProtocolError
from imtegrity_proxy.protocol.flap import Flap, FlapReader, SequenceRenumberer, encode_flap

from tests.unit.protocol_vectors import FLAP_VECTORS, FlapVector, h

NEXT_FRAME_START = h("2a 02 00")


def _name(vector: FlapVector) -> str:
    return vector.name


@pytest.mark.parametrize("vector", FLAP_VECTORS, ids=_name)
def test_flap_encode(vector: FlapVector) -> None:
    frame = vector.frame
    assert encode_flap(frame.channel, frame.sequence, frame.payload) == vector.raw
    assert frame.to_bytes() == vector.raw


@pytest.mark.parametrize("vector", FLAP_VECTORS, ids=_name)
def test_flap_feed_whole(vector: FlapVector) -> None:
    reader = FlapReader()
    reader.feed(vector.raw)
    assert reader.next_frame() == vector.frame
    assert reader.next_frame() is None
    assert reader.buffered == 0


@pytest.mark.parametrize("vector", FLAP_VECTORS, ids=_name)
def test_flap_feed_byte_by_byte(vector: FlapVector) -> None:
    reader = FlapReader()
    for index in range(len(vector.raw) - 1):
        reader.feed(vector.raw[index : index + 1])
        assert reader.next_frame() is None
    reader.feed(vector.raw[-1:])
    assert reader.next_frame() == vector.frame
    assert reader.buffered == 0


@pytest.mark.parametrize("vector", FLAP_VECTORS, ids=_name)
def test_flap_feed_with_trailing_bytes(vector: FlapVector) -> None:
    reader = FlapReader()
    reader.feed(vector.raw + NEXT_FRAME_START)
    assert reader.next_frame() == vector.frame
    assert reader.next_frame() is None
    assert reader.buffered == len(NEXT_FRAME_START)


@pytest.mark.parametrize("vector", FLAP_VECTORS, ids=_name)
def test_flap_reserialise(vector: FlapVector) -> None:
    reader = FlapReader()
    reader.feed(vector.raw)
    frame = reader.next_frame()
    assert frame is not None
    assert frame.to_bytes() == vector.raw


def test_flap_feed_all_vectors_in_one_stream() -> None:
    reader = FlapReader()
    reader.feed(b"".join(vector.raw for vector in FLAP_VECTORS))
    assert reader.frames() == [vector.frame for vector in FLAP_VECTORS]
    assert reader.buffered == 0


def test_flap_channel_kind() -> None:
    assert Flap(2, 0, b"").channel_kind is Channel.DATA
    assert Flap(7, 0, b"").channel_kind == 7
    assert not isinstance(Flap(7, 0, b"").channel_kind, Channel)


def test_flap_encode_wraps_sequence() -> None:
    assert encode_flap(2, 0x10000, b"") == h("2a 02 0000 0000")
    assert encode_flap(2, 0x10001, b"") == h("2a 02 0001 0000")


def test_flap_encode_payload_too_long() -> None:
    with pytest.raises(ProtocolError, match="too long"):
        encode_flap(2, 0, bytes(0x10000))


@pytest.mark.parametrize("marker", [h("00"), h("2b"), h("ff")])
def test_flap_bad_marker_one_byte(marker: bytes) -> None:
    reader = FlapReader()
    reader.feed(marker)
    with pytest.raises(ProtocolError, match="start marker") as caught:
        reader.next_frame()
    assert "0x002a" in str(caught.value)
    assert f"0x{marker[0]:04x}" in str(caught.value)


def test_flap_bad_marker_full_header() -> None:
    reader = FlapReader()
    reader.feed(h("16 03 01 0200 01"))  # a TLS ClientHello record header
    with pytest.raises(ProtocolError, match="start marker"):
        reader.next_frame()


def test_flap_bad_marker_after_good_frame() -> None:
    reader = FlapReader()
    reader.feed(h("2a 05 0001 0000") + b"G")
    assert reader.next_frame() == Flap(5, 1, b"")
    with pytest.raises(ProtocolError, match="start marker"):
        reader.next_frame()


def test_flap_length_over_limit_before_payload() -> None:
    reader = FlapReader(max_payload=0x0400)
    reader.feed(h("2a 02 0001 0401"))
    with pytest.raises(ProtocolError, match="over the limit") as caught:
        reader.next_frame()
    assert "0x0400" in str(caught.value)
    assert "0x0401" in str(caught.value)


def test_flap_length_at_limit_accepted() -> None:
    reader = FlapReader(max_payload=0x0004)
    reader.feed(h("2a 02 0001 0004 01020304"))
    assert reader.next_frame() == Flap(2, 1, h("01020304"))


def test_flap_incomplete_header_waits() -> None:
    reader = FlapReader()
    reader.feed(h("2a 02 00"))
    assert reader.next_frame() is None
    assert reader.buffered == 3


@pytest.mark.parametrize("limit", [0, -1, 0x10000])
def test_flap_reader_limit_out_of_range(limit: int) -> None:
    with pytest.raises(ValueError, match="max_payload"):
        FlapReader(max_payload=limit)


# Sequence renumbering. Each helper frame carries its incoming number as its
# payload, so a test can tell which frame came out.


def _frame(sequence: int) -> Flap:
    return Flap(2, sequence, sequence.to_bytes(2, "big"))


def _assert_consecutive(sequences: list[int]) -> None:
    for previous, current in itertools.pairwise(sequences):
        assert current == (previous + 1) % 0x10000, sequences


def test_renumber_unchanged_without_injection() -> None:
    renumberer = SequenceRenumberer()
    for sequence in range(0xFFFD, 0xFFFF + 4):
        frame = _frame(sequence % 0x10000)
        relayed = renumberer.relay(frame)
        assert relayed is frame
        assert relayed.to_bytes() == frame.to_bytes()


def test_renumber_after_injection() -> None:
    renumberer = SequenceRenumberer()
    sent = [renumberer.relay(_frame(100)), renumberer.relay(_frame(101))]
    sent.append(renumberer.inject(2, b"notice"))
    sent += [renumberer.relay(_frame(102)), renumberer.relay(_frame(103))]
    _assert_consecutive([frame.sequence for frame in sent])
    assert sent[2].payload == b"notice"
    assert sent[3].payload == _frame(102).payload
    assert sent[3].to_bytes() == h("2a 02 0067 0002 0066")


def test_renumber_after_drop() -> None:
    renumberer = SequenceRenumberer()
    sent = [renumberer.relay(_frame(100))]
    renumberer.drop(_frame(101))
    sent += [renumberer.relay(_frame(102)), renumberer.relay(_frame(103))]
    _assert_consecutive([frame.sequence for frame in sent])
    assert sent[1].payload == _frame(102).payload
    assert sent[1].to_bytes() == h("2a 02 0065 0002 0066")


def test_renumber_drop_then_inject_restores_numbers() -> None:
    renumberer = SequenceRenumberer()
    renumberer.relay(_frame(7))
    renumberer.drop(_frame(8))
    notice = renumberer.inject(2, b"blocked")
    after = renumberer.relay(_frame(9))
    assert notice.sequence == 8
    assert after.sequence == 9


def test_renumber_injection_across_wrap() -> None:
    renumberer = SequenceRenumberer()
    sent = [renumberer.relay(_frame(0xFFFE))]
    sent += [renumberer.inject(2, b"a"), renumberer.inject(2, b"b")]
    sent += [renumberer.relay(_frame(0xFFFF)), renumberer.relay(_frame(0x0000))]
    sequences = [frame.sequence for frame in sent]
    _assert_consecutive(sequences)
    assert sequences == [0xFFFE, 0xFFFF, 0x0000, 0x0001, 0x0002]
    assert sent[-1].to_bytes()[:6] == h("2a 02 0002 0002")


def test_renumber_drops_across_wrap() -> None:
    renumberer = SequenceRenumberer()
    sent = [renumberer.relay(_frame(0x0001))]
    renumberer.drop(_frame(0x0002))
    renumberer.drop(_frame(0x0003))
    sent.append(renumberer.relay(_frame(0x0004)))
    assert [frame.sequence for frame in sent] == [0x0001, 0x0002]
    renumberer = SequenceRenumberer()
    sent = [renumberer.relay(_frame(0xFFFF))]
    renumberer.drop(_frame(0x0000))
    sent.append(renumberer.relay(_frame(0x0001)))
    assert [frame.sequence for frame in sent] == [0xFFFF, 0x0000]


def test_renumber_injection_before_first_frame() -> None:
    renumberer = SequenceRenumberer()
    sent = [renumberer.inject(4, b"")]
    sent += [renumberer.relay(_frame(5000)), renumberer.relay(_frame(5001))]
    _assert_consecutive([frame.sequence for frame in sent])
    assert sent[1].payload == _frame(5000).payload


def test_renumber_rebase_after_own_hello() -> None:
    # The proxy sends its own hello first, then drops the server's hello (0xfffe).
    renumberer = SequenceRenumberer()
    hello = renumberer.inject(1, h("00000001"))
    renumberer.rebase(0xFFFE, hello.sequence)
    sent = [hello, renumberer.relay(_frame(0xFFFF)), renumberer.relay(_frame(0x0000))]
    sent.append(renumberer.inject(2, b"notice"))
    sent.append(renumberer.relay(_frame(0x0001)))
    assert [frame.sequence for frame in sent] == [1, 2, 3, 4, 5]
    assert sent[1].payload == _frame(0xFFFF).payload


def test_renumber_rebase_keeps_incoming_gap() -> None:
    renumberer = SequenceRenumberer()
    renumberer.rebase(0x0010, 0x0100)
    assert renumberer.relay(_frame(0x0012)).sequence == 0x0102
    assert renumberer.relay(_frame(0x0013)).sequence == 0x0103


def test_renumber_mixed_long_run() -> None:
    renumberer = SequenceRenumberer()
    sent: list[Flap] = []
    incoming = 0xFF00
    for step in range(600):
        frame = _frame(incoming % 0x10000)
        incoming += 1
        if step % 7 == 3:
            renumberer.drop(frame)
        else:
            sent.append(renumberer.relay(frame))
        if step % 5 == 1:
            sent.append(renumberer.inject(2, b"injected"))
    _assert_consecutive([frame.sequence for frame in sent])
    assert renumberer.last_sent == sent[-1].sequence
