"""Policy reload in a running proxy: the next message follows the new policy, no session drops.

The file test runs the real ``imtegrity-proxy serve`` command on a config file
laid out like a Kubernetes ConfigMap volume, and publishes new versions by
swapping its ``..data`` symlink. The SIGHUP test runs ``serve()`` in the test's
event loop with a poll interval of an hour, so only the signal can reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from imtegrity_proxy.archive import export_records
from imtegrity_proxy.client import AimClient
from imtegrity_proxy.config import parse_config
from imtegrity_proxy.protocol import icbm
from imtegrity_proxy.protocol.enums import Family, IcbmSubtype
from imtegrity_proxy.relay.app import serve

from tests.e2e.policy_proxy import drain, proxy_config, sequence_gaps, snacs_of
from tests.fixtures.oscar import OscarServer, unique_screen_name
from tests.unit.test_policy_reload import write_configmap_version

pytestmark = pytest.mark.e2e

PROXY = Path(sys.executable).parent / "imtegrity-proxy"
BLOCK_ALPHA = {"name": "no-alpha", "pattern": "alpha", "action": "block"}


async def ims(client: AimClient) -> list[str]:
    """Read until quiet; return the plain text of every IM that arrived."""
    texts = []
    for snac in snacs_of(await drain(client.bos), Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT):
        body = icbm.parse_icbm_receive(snac).message
        texts.append(body.plain if body is not None else "")
    return texts


async def wait_for_port(port: int, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            assert loop.time() < deadline, f"nothing listens on port {port}"
            await asyncio.sleep(0.1)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


async def wait_for_text(path: Path, text: str, start: int, timeout: float = 10.0) -> str:
    """Wait until ``text`` appears in ``path`` after byte ``start``; return what follows."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        content = path.read_bytes()[start:].decode(errors="replace")
        if text in content:
            return content
        assert loop.time() < deadline, f"{text!r} not logged in {timeout}s:\n{content}"
        await asyncio.sleep(0.1)


def config_text(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)


async def test_file_change_reloads_mid_session(oscar_server: OscarServer, tmp_path: Path) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    volume = tmp_path / "config-volume"
    volume.mkdir()
    data = proxy_config(oscar_server, tmp_path, {"identities": {alice: "alice@bank.example"}})
    write_configmap_version(volume, "v1", config_text(data))
    log_path = tmp_path / "proxy.log"
    command = [str(PROXY), "serve", "--config", str(volume / "proxy.yaml")]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    port = data["listen"]["ports"][0]
    try:
        await wait_for_port(port)
        local = await AimClient.sign_on(
            "127.0.0.1", port, alice, "password", local_addr=oscar_server.source_address()
        )
        remote = await AimClient.sign_on(
            oscar_server.host, oscar_server.port, bob, "password",
            local_addr=oscar_server.source_address(),
        )  # fmt: skip
        await oscar_server.async_wait_for_session(alice)
        await oscar_server.async_wait_for_session(bob)
        await local.send_im(bob, "alpha one")
        assert await ims(remote) == ["alpha one"]

        # Version 2 blocks "alpha" and changes a section that needs a restart.
        mark = log_path.stat().st_size
        data["policy"]["rules"] = [BLOCK_ALPHA]
        data["archive"]["max_batch"] = 8
        write_configmap_version(volume, "v2", config_text(data))
        logged = await wait_for_text(log_path, "policy reloaded", mark)
        assert "changes to archive" in logged
        request_id = await local.send_im(bob, "alpha two")
        frames = await drain(local.bos)
        errors = snacs_of(frames, Family.ICBM, IcbmSubtype.ERROR)
        assert [error.request_id for error in errors] == [request_id]
        assert await ims(remote) == []

        # Version 3 does not validate: it is rejected and version 2 stays.
        mark = log_path.stat().st_size
        data["policy"]["rules"] = [{"name": "broken", "pattern": "(alpha", "action": "block"}]
        write_configmap_version(volume, "v3", config_text(data))
        logged = await wait_for_text(log_path, "rejected; the running policy stays", mark)
        assert "policy.rules[0].pattern: invalid regular expression" in logged
        await local.send_im(bob, "alpha three")
        await local.send_im(bob, "beta")
        assert await ims(remote) == ["beta"]

        assert sequence_gaps(local.bos.received) == []
        assert await oscar_server.async_wait_for_session(alice) is not None
        await local.close()
        await remote.close()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    log_text = log_path.read_text(errors="replace")
    assert log_text.count("client connected") == 3  # login and BOS of Alice, one port probe
    archive = tmp_path / "archive.sqlite3"
    messages = [r for r in export_records(archive) if r["kind"] == "message"]
    assert [(m["text"], m["action"], m["rule"]) for m in messages] == [
        ("alpha one", "delivered", None),
        ("alpha two", "blocked", "no-alpha"),
        ("alpha three", "blocked", "no-alpha"),
        ("beta", "delivered", None),
    ]


async def test_sighup_reloads_policy(
    oscar_server: OscarServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = unique_screen_name("Al"), unique_screen_name("Bo")
    data = proxy_config(oscar_server, tmp_path, {"identities": {alice: "alice@bank.example"}})
    path = tmp_path / "proxy.yaml"
    path.write_text(config_text(data))
    port = data["listen"]["ports"][0]
    stop = asyncio.Event()
    caplog.set_level(logging.INFO, logger="imtegrity.policy")
    task = asyncio.create_task(
        serve(parse_config(data), stop, config_path=path, reload_interval=3600)
    )
    try:
        await wait_for_port(port)
        # serve() installs its SIGHUP handler right after the listeners start.
        while signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:
            await asyncio.sleep(0.01)
        local = await AimClient.sign_on(
            "127.0.0.1", port, alice, "password", local_addr=oscar_server.source_address()
        )
        remote = await AimClient.sign_on(
            oscar_server.host, oscar_server.port, bob, "password",
            local_addr=oscar_server.source_address(),
        )  # fmt: skip
        await oscar_server.async_wait_for_session(alice)
        await oscar_server.async_wait_for_session(bob)

        data["policy"]["rules"] = [BLOCK_ALPHA]
        path.write_text(config_text(data))
        await local.send_im(bob, "alpha before the signal")
        assert await ims(remote) == ["alpha before the signal"]

        os.kill(os.getpid(), signal.SIGHUP)
        while "policy reloaded" not in caplog.text:
            await asyncio.sleep(0.01)
        assert "(SIGHUP)" in caplog.text
        await local.send_im(bob, "alpha after the signal")
        assert await ims(remote) == []
        notices = await ims(local)
        assert notices == [
            "[notice] This message was blocked by the compliance policy (rule no-alpha)."
        ]
        assert sequence_gaps(local.bos.received) == []
        await local.close()
        await remote.close()
    finally:
        stop.set()
        assert await task == 0
