"""The sign-off reason of channel-4 TLV 0x09, in either length servers send."""

from __future__ import annotations

import pytest
from imtegrity_proxy.protocol.tlv import Tlv
from imtegrity_proxy.relay.inspect import _disconnect_reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [(b"\x01", 1), (b"\x00\x01", 1), (b"", None), (b"\x00\x00\x01", None)],
)
def test_disconnect_reason_lengths(value: bytes, reason: int | None) -> None:
    assert _disconnect_reason((Tlv(0x0009, value),)) == reason
