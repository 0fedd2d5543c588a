"""FLAP framing: the 6-byte header that carries every OSCAR payload.

Header: 0x2A, channel (u8), sequence (u16), payload length (u16), big-endian.
The length field is 16 bits, so no payload can exceed 0xFFFF bytes; the reader
enforces a configurable cap at or below that, checked as soon as the header is
complete, so a hostile peer cannot make the buffer grow past one frame.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .enums import Channel, coerce
from .errors import ProtocolError

START_MARKER = 0x2A
HEADER = struct.Struct(">BBHH")
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 0xFFFF
SEQUENCE_MODULUS = 0x10000


@dataclass(frozen=True, slots=True)
class Flap:
    """One FLAP frame."""

    channel: int
    sequence: int
    payload: bytes

    @property
    def channel_kind(self) -> Channel | int:
        return coerce(Channel, self.channel)

    def to_bytes(self) -> bytes:
        return encode_flap(self.channel, self.sequence, self.payload)

    def with_sequence(self, sequence: int) -> Flap:
        return Flap(self.channel, sequence, self.payload)

    def with_payload(self, payload: bytes) -> Flap:
        return Flap(self.channel, self.sequence, payload)

    def __repr__(self) -> str:
        # A payload can contain message text, hashes and cookies, so show only its size.
        return (
            f"Flap(channel={self.channel}, sequence=0x{self.sequence:04x}, "
            f"payload={len(self.payload)} bytes)"
        )


def encode_flap(channel: int, sequence: int, payload: bytes) -> bytes:
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(
            "FLAP payload too long to encode", expected=MAX_PAYLOAD, actual=len(payload)
        )
    header = HEADER.pack(START_MARKER, channel, sequence % SEQUENCE_MODULUS, len(payload))
    return header + payload


class FlapReader:
    """Incremental FLAP decoder: feed bytes, take whole frames.

    ``next_frame`` returns None until a whole frame is buffered. The buffer never
    holds more than one header plus ``max_payload`` bytes of a frame that is not
    yet complete, plus whatever the caller fed after it.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if not 0 < max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be in 1..{MAX_PAYLOAD}, got {max_payload}")
        self._buffer = bytearray()
        self._max_payload = max_payload

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_frame(self) -> Flap | None:
        if len(self._buffer) < HEADER_SIZE:
            if self._buffer and self._buffer[0] != START_MARKER:
                self._raise_bad_marker()
            return None
        marker, channel, sequence, length = HEADER.unpack_from(self._buffer)
        if marker != START_MARKER:
            self._raise_bad_marker()
        if length > self._max_payload:
            raise ProtocolError(
                "FLAP payload length over the limit", expected=self._max_payload, actual=length
            )
        end = HEADER_SIZE + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[HEADER_SIZE:end])
        del self._buffer[:end]
        return Flap(channel, sequence, payload)

    def frames(self) -> list[Flap]:
        """Take every whole frame buffered so far."""
        result = []
        while (frame := self.next_frame()) is not None:
            result.append(frame)
        return result

    def _raise_bad_marker(self) -> None:
        raise ProtocolError("FLAP start marker", expected=START_MARKER, actual=self._buffer[0])


class SequenceRenumberer:
    """Map one direction's sequence numbers after the proxy injects or drops frames.

    The receiving peer expects each frame's number to be the previous one plus
    one (mod 2**16). ``offset`` is how far the outgoing numbering is ahead of the
    incoming one: +1 for each injected frame, -1 for each dropped frame.
    """

    def __init__(self) -> None:
        self._offset = 0
        self._last_sent: int | None = None
        self._relayed = False

    @property
    def last_sent(self) -> int | None:
        return self._last_sent

    def relay(self, frame: Flap) -> Flap:
        """Renumber a frame that passes through; unchanged while nothing was injected."""
        if not self._relayed and self._last_sent is not None:
            # Frames were injected before the first relayed one, so the peer's
            # numbering starts at them and this frame must follow the last one.
            self._offset = self._last_sent + 1 - frame.sequence
        self._relayed = True
        sequence = (frame.sequence + self._offset) % SEQUENCE_MODULUS
        self._last_sent = sequence
        return frame if sequence == frame.sequence else frame.with_sequence(sequence)

    def inject(self, channel: int, payload: bytes) -> Flap:
        """Number a frame the proxy adds to this direction.

        Before any frame went this way it numbers from 1, and the first relayed
        frame then follows the injected ones.
        """
        base = self._last_sent if self._last_sent is not None else 0
        sequence = (base + 1) % SEQUENCE_MODULUS
        self._offset += 1
        self._last_sent = sequence
        return Flap(channel, sequence, payload)

    def rebase(self, incoming: int, outgoing: int) -> None:
        """Make the frame after ``incoming`` go out as the one after ``outgoing``.

        Used when the proxy answered for the peer (its own hello) and then drops
        the peer's version of that frame.
        """
        self._offset = (outgoing - incoming) % SEQUENCE_MODULUS
        self._last_sent = outgoing
        self._relayed = True

    def drop(self, frame: Flap) -> None:
        """Account for a frame the proxy withholds from this direction."""
        self._offset -= 1
