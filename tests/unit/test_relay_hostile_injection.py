"""Injected frames that cannot be encoded, and a ValueError inside a handler."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from imtegrity_proxy.protocol.flap import Flap
from imtegrity_proxy.relay.inject import Injector, fits_screen_name
from imtegrity_proxy.relay.inspect import Inspector


def test_fits_screen_name() -> None:
    assert fits_screen_name("a" * 255)
    assert not fits_screen_name("a" * 256)
    assert not fits_screen_name("\ufffd" * 86)


class RecordingSink:
    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def inject(self, channel: int, payload: bytes) -> None:
        self.frames.append(payload)


def test_unencodable_notice_skipped(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordingSink()
    injector = Injector(sink, lambda: sink, 7)  # type: ignore[arg-type]
    injector.notice_im("\ufffd" * 200, "text")
    assert sink.frames == []
    assert "IM notice not sent" in caplog.text
    injector.notice_im("IMtegrity", "text")
    assert len(sink.frames) == 1


# A ValueError inside a handler


class RecordingFrameSink(RecordingSink):
    def __init__(self) -> None:
        super().__init__()
        self.dropped: list[Flap] = []
        self.relayed: list[Flap] = []

    def drop(self, frame: Flap) -> None:
        self.dropped.append(frame)

    def relay(self, frame: Flap) -> None:
        self.relayed.append(frame)


def stub_connection() -> SimpleNamespace:
    to_client, to_server = RecordingFrameSink(), RecordingFrameSink()
    log = SimpleNamespace(errors=[])
    log.error = lambda message, *args: log.errors.append(message % args)
    return SimpleNamespace(
        id=1, to_client=to_client, _to_server=lambda: to_server, to_server=to_server, log=log
    )


async def test_value_error_withholds_frame() -> None:
    conn = stub_connection()
    inspector = Inspector(conn)  # type: ignore[arg-type]
    frame = Flap(2, 1, b"")

    async def failing() -> None:
        raise ValueError("bytes must be in range(0, 256)")

    await inspector._guard("server", frame, failing())
    assert conn.to_client.dropped == [frame]
    assert "the frame is withheld" in conn.log.errors[0]


async def test_value_error_after_forward_keeps_frame() -> None:
    conn = stub_connection()
    inspector = Inspector(conn)  # type: ignore[arg-type]
    frame = Flap(2, 1, b"")

    async def forward_then_fail() -> None:
        inspector._forward_to_server(frame)
        raise ValueError("late failure")

    await inspector._guard("client", frame, forward_then_fail())
    assert conn.to_server.relayed == [frame]
    assert conn.to_server.dropped == []
    assert "already handled" in conn.log.errors[0]
