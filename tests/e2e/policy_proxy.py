"""An in-process proxy with a given policy in front of the real Open OSCAR Server.

``running_proxy`` starts ``ProxyServer`` in the test's event loop, so a test can
reach into ``proxy.server.context`` (to replace the clock, say). Local users
sign on through the proxy; external parties sign on to the server directly,
as they would from outside the firm. Each proxy spreads its upstream
connections over four fresh loopback source addresses, and every direct
sign-on uses a fresh one, so the server's per-address login limit (a burst of
10, then one a minute) is never reached.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imtegrity_proxy.archive import export_records
from imtegrity_proxy.client import AimClient, FlapStream
from imtegrity_proxy.config import parse_config
from imtegrity_proxy.protocol.enums import Channel
from imtegrity_proxy.protocol.flap import Flap
from imtegrity_proxy.protocol.snac import Snac, parse_snac
from imtegrity_proxy.relay.app import ProxyServer

from tests.fixtures.oscar import OscarServer
from tests.fixtures.peers import free_port

QUIET_SECONDS = 0.7


@dataclass
class PolicyProxy:
    server: ProxyServer
    oscar: OscarServer
    archive_path: Path

    @property
    def port(self) -> int:
        return self.server.ports[0]

    async def sign_on(self, screen_name: str, *, style: str = "bucp") -> AimClient:
        """Sign a local user on through the proxy and wait until the server lists it."""
        client = await AimClient.sign_on(
            "127.0.0.1",
            self.port,
            screen_name,
            "password",
            style=style,
            local_addr=self.oscar.source_address(),
        )
        await self.oscar.async_wait_for_session(screen_name)
        return client

    async def sign_on_external(self, screen_name: str) -> AimClient:
        """Sign an external party on to the server directly, bypassing the proxy."""
        client = await AimClient.sign_on(
            self.oscar.host,
            self.oscar.port,
            screen_name,
            "password",
            local_addr=self.oscar.source_address(),
        )
        await self.oscar.async_wait_for_session(screen_name)
        return client

    def records(self, **fields: Any) -> list[dict[str, Any]]:
        """Return the committed archive records whose fields equal ``fields``."""
        return [
            record
            for record in export_records(self.archive_path)
            if all(record[key] == value for key, value in fields.items())
        ]

    async def wait_for_records(
        self, count: int, timeout: float = 5.0, **fields: Any
    ) -> list[dict[str, Any]]:
        """Poll the archive until ``count`` records match ``fields``; return them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.records(**fields)) < count:
            if loop.time() >= deadline:
                raise AssertionError(f"{len(found)} of {count} records with {fields} archived")
            await asyncio.sleep(0.05)
        return found


def proxy_config(oscar: OscarServer, workdir: Path, policy: dict[str, Any]) -> dict[str, Any]:
    """Return a proxy configuration on loopback with ``policy``."""
    return {
        "listen": {"host": "127.0.0.1", "ports": [free_port()]},
        "upstream": {
            "servers": [oscar.address],
            "source_addresses": [oscar.source_address() for _ in range(4)],
        },
        "archive": {"path": str(workdir / "archive.sqlite3"), "max_delay_ms": 0},
        "health": {"host": "127.0.0.1", "port": free_port()},
        "policy": policy,
    }


@contextlib.asynccontextmanager
async def running_proxy(
    oscar: OscarServer, workdir: Path, policy: dict[str, Any]
) -> AsyncIterator[PolicyProxy]:
    config = parse_config(proxy_config(oscar, workdir, policy))
    server = ProxyServer(config)
    await server.start()
    try:
        yield PolicyProxy(server, oscar, Path(config.archive.path))
    finally:
        await server.stop(grace_seconds=1)


async def drain(stream: FlapStream, quiet: float = QUIET_SECONDS) -> list[Flap]:
    """Read frames until none arrives for ``quiet`` seconds; return them."""
    frames = []
    while True:
        try:
            frames.append(await stream.read(timeout=quiet))
        except TimeoutError:
            return frames


def snacs_of(frames: Iterable[Flap], family: int, subtype: int) -> list[Snac]:
    """Return the SNACs of (family, subtype) among ``frames``, in order."""
    found = []
    for frame in frames:
        if frame.channel != Channel.DATA:
            continue
        snac = parse_snac(frame.payload)
        if (snac.family, snac.subtype) == (family, subtype):
            found.append(snac)
    return found


def sequence_gaps(frames: list[Flap]) -> list[tuple[int, int]]:
    """Return each (previous, next) pair of sequence numbers that is not consecutive."""
    return [
        (before.sequence, after.sequence)
        for before, after in itertools.pairwise(frames)
        if (before.sequence + 1) % 0x10000 != after.sequence
    ]
