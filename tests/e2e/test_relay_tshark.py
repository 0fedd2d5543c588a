"""Wireshark's AIM dissector decodes the client side of a relayed session."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.test_relay_messages import pair
from tests.fixtures.peers import peer_binary

pytestmark = pytest.mark.e2e


def start_capture(tshark: Path, port: int, output: Path) -> subprocess.Popen[bytes]:
    command = [str(tshark), "-i", "lo", "-f", f"tcp port {port}", "-w", str(output), "-q"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    # tshark prints "Capturing on 'Loopback: lo'" once the capture runs.
    assert process.stderr is not None
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if b"Capturing on" in line:
            return process
    process.kill()
    raise AssertionError("tshark did not start capturing within 10 s")


def decode(tshark: Path, capture: Path, port: int, fields: list[str]) -> list[str]:
    command = [
        str(tshark),
        "-r",
        str(capture),
        "-d",
        f"tcp.port=={port},aim",
        "-Y",
        "aim",
        "-T",
        "fields",
        *[arg for f in fields for arg in ("-e", f)],
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    return result.stdout.splitlines()


async def test_aim_dissector_decodes_relayed_session(proxy_factory, own_oscar_server, tmp_path):
    oscar_server = own_oscar_server
    tshark = peer_binary("tshark", "tshark")
    proxy = await proxy_factory(upstream={"servers": [oscar_server.address]})
    capture = tmp_path / "client-side.pcapng"
    process = start_capture(tshark, proxy.port, capture)
    try:
        alice, bob = await pair(proxy, oscar_server)
        try:
            await alice.send_im(bob.screen_name, "decoded by wireshark")
            await bob.receive_im()
            room = await alice.join_chat("tshark-room")
            await room.send("chat for the dissector")
            await asyncio.sleep(0.5)
        finally:
            await alice.close()
            await bob.close()
        await asyncio.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=10)
    rows = decode(tshark, capture, proxy.port, ["aim.channel", "_ws.malformed", "_ws.expert"])
    assert len(rows) > 20
    channels = {value for row in rows for value in row.split("\t")[0].split(",")}
    assert {"0x01", "0x02"} <= channels
    malformed = [row for row in rows if row.split("\t")[1]]
    assert malformed == []
    families = decode(tshark, capture, proxy.port, ["aim.fnac.family"])
    seen = {value for row in families for value in row.split(",") if value}
    for family in ("0x0001", "0x0004", "0x000e", "0x0017"):
        assert family in seen
