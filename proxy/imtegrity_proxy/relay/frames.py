"""Reading FLAP frames from a stream and writing them, renumbered, to a peer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

from ..metrics import ProxyMetrics
from ..protocol.errors import ProtocolError
from ..protocol.flap import Flap, FlapReader, SequenceRenumberer

READ_SIZE = 64 * 1024
T = TypeVar("T")


def blame(side: str, parse: Callable[[bytes], T], data: bytes) -> T:
    """Run a parser on bytes from ``side`` ("client" or "server"), blaming it for errors."""
    try:
        return parse(data)
    except ProtocolError as error:
        raise error.for_side(side) from error


class IdleTimeout(Exception):
    """A peer sent nothing for the configured idle time."""


class FrameSource:
    """Whole FLAP frames from one peer; errors blame that peer's ``side``.

    ``idle_seconds`` (0 for none) bounds the wait for the next bytes; OSCAR
    clients send a channel-5 keep-alive about once a minute, so a live client
    is never idle for long.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        side: str,
        max_payload: int,
        idle_seconds: float = 0,
    ) -> None:
        self._reader = reader
        self._side = side
        self._flap = FlapReader(max_payload)
        self._idle = idle_seconds or None

    async def next(self) -> Flap | None:
        """Return the next frame, or None at a clean end of stream."""
        while True:
            try:
                frame = self._flap.next_frame()
            except ProtocolError as error:
                raise error.for_side(self._side) from error
            if frame is not None:
                return frame
            try:
                data = await asyncio.wait_for(self._reader.read(READ_SIZE), self._idle)
            except TimeoutError as error:
                raise IdleTimeout(f"{self._side} idle for {self._idle:.0f}s") from error
            if not data:
                return self._at_end()
            self._flap.feed(data)

    async def expect(self, channel: int) -> Flap:
        """Return the next frame, which must be on ``channel``."""
        frame = await self.next()
        if frame is None:
            raise ProtocolError("connection closed before the expected frame").for_side(self._side)
        if frame.channel != channel:
            error = ProtocolError(
                "unexpected FLAP channel", expected=channel, actual=frame.channel
            )
            raise error.for_side(self._side)
        return frame

    def _at_end(self) -> None:
        if self._flap.buffered:
            error = ProtocolError(
                "connection closed inside a FLAP frame",
                actual=f"{self._flap.buffered} bytes buffered",
            )
            raise error.for_side(self._side)
        return None


class FrameSink:
    """Frames to one peer. Injected and dropped frames are renumbered away."""

    def __init__(
        self, writer: asyncio.StreamWriter, direction: str, metrics: ProxyMetrics
    ) -> None:
        self._writer = writer
        self._direction = direction
        self._metrics = metrics
        self.sequence = SequenceRenumberer()

    @property
    def writer(self) -> asyncio.StreamWriter:
        return self._writer

    def relay(self, frame: Flap) -> None:
        self._write(self.sequence.relay(frame))

    def inject(self, channel: int, payload: bytes) -> None:
        self._write(self.sequence.inject(channel, payload))

    def drop(self, frame: Flap) -> None:
        self.sequence.drop(frame)

    async def drain(self) -> None:
        await self._writer.drain()

    def _write(self, frame: Flap) -> None:
        data = frame.to_bytes()
        self._writer.write(data)
        self._metrics.bytes_relayed(self._direction, len(data))  # type: ignore[arg-type]

    async def close(self) -> None:
        if self._writer.is_closing():
            return
        self._writer.close()
        # The peer may already be gone; closing is best effort.
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(self._writer.wait_closed(), timeout=5)
