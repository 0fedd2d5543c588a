"""`make demo`: the proxy end to end against a local Open OSCAR Server.

It starts Open OSCAR Server on loopback, starts `imtegrity-proxy serve` in
front of it, signs on two scripted users through the proxy (one with BUCP, one
with the old-style login), has them exchange instant messages in both
directions (ASCII, HTML, Latin-1, and UCS-2 with Cyrillic and an emoji) and
chat in a room, stops the proxy, and prints the verified archive.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imtegrity_proxy.client import AimClient  # noqa: E402

from tests.fixtures.oscar import start_oscar_server  # noqa: E402
from tests.fixtures.peers import free_port  # noqa: E402

PROXY = Path(sys.executable).parent / "imtegrity-proxy"
CONVERSATION = [
    ("alice", "Hello Bob, this conversation is archived."),
    ("bob", "<HTML><BODY>Got it, <b>thanks</b>!</BODY></HTML>"),
    ("alice", "Café prices in Zürich: 4,50 CHF"),
    ("bob", "Привет, Алиса 👋"),
]


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def start_proxy(workdir: Path, upstream: str) -> tuple[subprocess.Popen[bytes], int, Path]:
    port, health = free_port(), free_port()
    archive = workdir / "archive.sqlite3"
    config = workdir / "proxy.yaml"
    # Every listener of the demo stays on loopback.
    config.write_text(
        f"listen: {{host: 127.0.0.1, ports: [{port}]}}\n"
        f"upstream: {{servers: ['{upstream}']}}\n"
        f"archive: {{path: '{archive}'}}\n"
        f"health: {{host: 127.0.0.1, port: {health}}}\n"
    )
    command = [str(PROXY), "serve", "--config", str(config)]
    log = (workdir / "proxy.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process, port, archive


def wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the proxy exited early with status {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"the proxy did not listen on port {port} within 20 s")


async def converse(port: int) -> None:
    alice = await AimClient.sign_on("127.0.0.1", port, "Alice Demo", "demo-password")
    bob = await AimClient.sign_on(
        "127.0.0.1", port, "bobdemo", "demo-password", style="old-style", local_addr="127.0.0.2"
    )
    print(
        f"signed on through the proxy: {alice.screen_name!r} (BUCP), "
        f"{bob.screen_name!r} (old-style)"
    )
    users = {"alice": (alice, bob, "bobdemo"), "bob": (bob, alice, "alicedemo")}
    await asyncio.sleep(0.5)
    for who, text in CONVERSATION:
        sender, receiver, recipient = users[who]
        await sender.send_im(recipient, text)
        received = await receiver.receive_im()
        print(
            f"{sender.screen_name} -> {receiver.screen_name}: {received.text!r} "
            f"[{received.charset}]"
        )
    room_alice = await alice.join_chat("demo room")
    room_bob = await bob.join_chat("demo room")
    await asyncio.sleep(0.5)
    await room_alice.send("Good morning, room!")
    message = await room_bob.receive()
    print(f"chat {room_bob.name!r}: {message.sender}: {message.text!r}")
    await alice.close()
    await bob.close()
    await asyncio.sleep(0.5)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="imtegrity-demo-"))
    say("starting Open OSCAR Server on loopback")
    server = start_oscar_server(workdir / "oscar-server")
    print(f"Open OSCAR Server listens on {server.address}")
    try:
        say("starting imtegrity-proxy in front of it")
        proxy, port, archive = start_proxy(workdir, server.address)
        print(f"proxy listens on 127.0.0.1:{port}; log in {workdir / 'proxy.log'}")
        try:
            say("two scripted users sign on through the proxy and talk")
            asyncio.run(converse(port))
        finally:
            proxy.send_signal(signal.SIGTERM)
            proxy.wait(timeout=60)
    finally:
        server.close()
    say("archive verify")
    subprocess.run([str(PROXY), "archive", "verify", "--archive", str(archive)], check=True)
    say("archive export --format jsonl")
    subprocess.run([str(PROXY), "archive", "export", "--archive", str(archive)], check=True)
    print(f"\narchive: {archive}\nlogs and server files: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
