"""The proxy reaches Open OSCAR Server through Debian's dante SOCKS server.

The proxy runs in this process (``ProxyServer``), so caplog captures its log
records before the log handler's redaction. Each test starts its own Open OSCAR Server:
through dante every login comes from dante's address (127.0.0.1), and the server
allows 10 logins per source address before it slows them down.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from imtegrity_proxy.client import AimClient, SignonFailed
from imtegrity_proxy.config import parse_config
from imtegrity_proxy.protocol.enums import SignonErrorCode
from imtegrity_proxy.relay.app import ProxyServer

from tests.fixtures.oscar import OscarServer, unique_screen_name
from tests.fixtures.peers import free_port
from tests.fixtures.proxy import proxy_config
from tests.fixtures.socks import SocksServer

pytestmark = [
    pytest.mark.e2e,
    # relay/socks.py hands python-socks a connected socket; see the NOTE there.
    pytest.mark.filterwarnings("ignore:The '_socket' argument is deprecated:DeprecationWarning"),
]

LOOPBACK = "127.0.0.1"
# A name for the OSCAR server that only dante may resolve: the test blocks its
# resolution inside this process, so a session works only if dante resolved it.
REMOTE_NAME = "localhost"
CLIENT_PASSWORD = "ignored-by-the-server"
SERVICE_UNAVAILABLE = SignonErrorCode.SERVICE_TEMPORARILY_UNAVAILABLE
# How soon a client must see the error when the SOCKS path fails fast.
PROMPT_SECONDS = 3.0
# Upstream connections of one full session: a login and a BOS connection per
# user, then chat navigation and the chat room for each of the two users.
SESSION_CONNECTIONS = 8


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


@contextlib.asynccontextmanager
async def running_proxy(
    tmp_path: Path, servers: list[str], proxies: list[dict[str, Any]], **socks: Any
) -> AsyncIterator[ProxyServer]:
    """Start the proxy with ``upstream.socks`` set to ``proxies`` and ``socks`` options."""
    data = proxy_config(
        tmp_path,
        servers,
        [],
        upstream={"socks": {"proxies": proxies, **socks}},
        logging={"level": "debug"},
    )
    proxy = ProxyServer(parse_config(data))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop(grace_seconds=1)


def dante_entry(dante: SocksServer, version: int, **options: Any) -> dict[str, Any]:
    """An ``upstream.socks.proxies`` entry for dante's listener without authentication."""
    return {"version": version, "host": dante.host, "port": dante.port, **options}


def dante_auth_entry(dante: SocksServer, **password_source: str) -> dict[str, Any]:
    """An entry for dante's username/password listener; pass password_file or password_env."""
    return {
        "version": 5,
        "host": dante.host,
        "port": dante.auth_port,
        "username": dante.username,
        **password_source,
    }


def write_password(path: Path, password: str) -> str:
    path.write_text(password + "\n")
    return str(path)


async def sign_on(proxy: ProxyServer, screen_name: str, style: str = "bucp") -> AimClient:
    return await AimClient.sign_on(
        LOOPBACK, proxy.ports[0], screen_name, CLIENT_PASSWORD, style=style
    )


async def sign_on_and_off(proxy: ProxyServer, oscar: OscarServer) -> None:
    """Sign one new user on through the proxy, check that the server lists it, sign off."""
    screen_name = unique_screen_name("Again")
    client = await sign_on(proxy, screen_name)
    try:
        assert await oscar.async_wait_for_session(screen_name) is not None
    finally:
        await client.close()


async def expect_service_unavailable(proxy: ProxyServer) -> float:
    """Sign on, expect the service-unavailable error, and return how long it took."""
    started = time.monotonic()
    with pytest.raises(SignonFailed) as refused:
        await sign_on(proxy, unique_screen_name("Fail"))
    elapsed = time.monotonic() - started
    assert refused.value.code == SERVICE_UNAVAILABLE
    return elapsed


def log_lines(caplog: pytest.LogCaptureFixture, *fragments: str) -> list[str]:
    """Messages of captured records that contain every fragment."""
    messages = [record.getMessage() for record in caplog.records]
    return [message for message in messages if all(f in message for f in fragments)]


def dante_connect_lines(dante: SocksServer, port: int) -> list[str]:
    """dante's log lines for connections it opened to ``127.0.0.1:port``."""
    destination = SocksServer.log_address(LOOPBACK, port)
    return [
        line
        for line in dante.log_text().splitlines()
        if "tcp/connect [" in line and line.endswith(destination)
    ]


async def exchange_im_and_chat(proxy: ProxyServer, oscar: OscarServer) -> None:
    """Two users sign on, exchange an IM each way, join a room and chat."""
    alice_name, bob_name = unique_screen_name("Alice"), unique_screen_name("Bob")
    alice = await sign_on(proxy, alice_name)
    bob = await sign_on(proxy, bob_name, style="old-style")
    try:
        await oscar.async_wait_for_session(alice_name)
        await oscar.async_wait_for_session(bob_name)

        await alice.send_im(bob_name, "hello through SOCKS")
        to_bob = await bob.receive_im()
        await bob.send_im(alice_name, "hello back")
        to_alice = await alice.receive_im()
        assert to_bob.text == "hello through SOCKS"
        assert to_alice.text == "hello back"

        room = f"socks {unique_screen_name('Room')}"
        alice_room = await alice.join_chat(room)
        bob_room = await bob.join_chat(room)
        text = await chat_until_received(alice_room.send, bob_room.receive, "room hello")
        assert text == "room hello"
    finally:
        await alice.close()
        await bob.close()


async def chat_until_received(
    send: Callable[[str], Any], receive: Callable[..., Any], text: str
) -> str:
    """Send ``text`` until the other member receives it: joining takes a moment to settle."""
    for _ in range(5):
        await send(text)
        try:
            message = await receive(timeout=1.0)
        # The receiver was not a member yet; send again.
        except TimeoutError:
            continue
        return str(message.text)
    raise AssertionError(f"the room never delivered {text!r}")


@pytest.fixture
def block_local_resolution(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make ``REMOTE_NAME`` unresolvable in this process; returns the names looked up."""
    looked_up: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(str(host))
        if host == REMOTE_NAME:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (test)")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


async def fetch(port: int, path: str) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"http://{LOOPBACK}:{port}{path}") as response,
    ):
        return response.status, await response.text()


# --------------------------------------------------------------------------- #
# Full sessions
# --------------------------------------------------------------------------- #

DANTE_HAS_NO_SOCKS4A = (
    "dante 1.4.2 does not implement SOCKS4a: it takes the 0.0.0.1 placeholder as the "
    "destination address and replies 0x5B (see test_socks4a_request_reaches_dante)"
)


@pytest.mark.parametrize(
    "flavour",
    [
        "socks4",
        pytest.param(
            "socks4a",
            marks=pytest.mark.xfail(strict=True, raises=SignonFailed, reason=DANTE_HAS_NO_SOCKS4A),
        ),
        "socks5",
        "socks5-auth",
    ],
)
async def test_full_session_through_dante(
    flavour: str,
    tmp_path: Path,
    socks_server: SocksServer,
    oscar_server_factory: Callable[..., OscarServer],
    block_local_resolution: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    oscar = oscar_server_factory()
    # socks4a and socks5 name the server REMOTE_NAME, which only dante can resolve.
    host = LOOPBACK if flavour in ("socks4", "socks5-auth") else REMOTE_NAME
    entry = {
        "socks4": dante_entry(socks_server, 4, remote_dns=False),
        "socks4a": dante_entry(socks_server, 4, remote_dns=True),
        "socks5": dante_entry(socks_server, 5, remote_dns=True),
        "socks5-auth": dante_auth_entry(
            socks_server, password_file=write_password(tmp_path / "pw", socks_server.password)
        ),
    }[flavour]

    async with running_proxy(tmp_path, [f"{host}:{oscar.port}"], [entry]) as proxy:
        await exchange_im_and_chat(proxy, oscar)
        metrics = (await fetch(proxy.config.health.port, "/metrics"))[1]

    assert REMOTE_NAME not in block_local_resolution
    # dante opened every upstream connection: 2 logins, 2 BOS, 2 chat navigation, 2 chat.
    lines = dante_connect_lines(socks_server, oscar.port)
    assert len(lines) == SESSION_CONNECTIONS, "\n".join(lines)
    # Each line is a separate connection from the proxy (dante's client address differs).
    clients = {line.split("tcp/connect [: ")[1].split(" ")[0] for line in lines}
    assert len(clients) == SESSION_CONNECTIONS
    if flavour == "socks5-auth":
        assert all(f"username%{socks_server.username}@" in line for line in lines)
    via = f"127.0.0.1:{entry['port']}"
    connected = log_lines(caplog, "upstream connected", via)
    assert len(connected) == SESSION_CONNECTIONS
    assert (
        f'imtegrity_upstream_connect_duration_seconds_count{{via="socks"}} {SESSION_CONNECTIONS}.0'
        in metrics
    )


async def test_socks4a_request_reaches_dante(
    tmp_path: Path,
    socks_server: SocksServer,
    block_local_resolution: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The proxy sends the SOCKS4a form; dante reads its placeholder address literally."""
    caplog.set_level(logging.INFO)
    port = free_port()
    entry = dante_entry(socks_server, 4, remote_dns=True)
    async with running_proxy(tmp_path, [f"{REMOTE_NAME}:{port}"], [entry]) as proxy:
        elapsed = await expect_service_unavailable(proxy)

    assert elapsed < PROMPT_SECONDS
    assert REMOTE_NAME not in block_local_resolution
    # 0.0.0.1 is the SOCKS4a marker for "a host name follows"; dante tried to reach it.
    socks_server.wait_for_log("tcp/connect", SocksServer.log_address("0.0.0.1", port))
    assert log_lines(caplog, f"via socks4a 127.0.0.1:{socks_server.port}", "destination refused")


# --------------------------------------------------------------------------- #
# Failures: prompt error to the client, a log line naming the proxy, then recovery
# --------------------------------------------------------------------------- #


async def test_wrong_password_then_rotated_file(
    tmp_path: Path,
    socks_server: SocksServer,
    oscar_server_factory: Callable[..., OscarServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    oscar = oscar_server_factory()
    password_file = write_password(tmp_path / "pw", "not-the-password")
    entry = dante_auth_entry(socks_server, password_file=password_file)

    async with running_proxy(tmp_path, [oscar.address], [entry]) as proxy:
        elapsed = await expect_service_unavailable(proxy)
        socks_server.wait_for_log("password authentication failed", socks_server.username)
        # The Secret is fixed: the same proxy reads the new file on the next connection.
        write_password(tmp_path / "pw", socks_server.password)
        await sign_on_and_off(proxy, oscar)

    assert elapsed < PROMPT_SECONDS
    via = f"via socks5 127.0.0.1:{socks_server.auth_port} with authentication"
    assert log_lines(caplog, "upstream unavailable", via, ": authentication failed")


async def test_stopped_dante_then_started(
    tmp_path: Path,
    socks_server: SocksServer,
    oscar_server_factory: Callable[..., OscarServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    oscar = oscar_server_factory()
    entry = dante_entry(socks_server, 5)

    async with running_proxy(tmp_path, [oscar.address], [entry]) as proxy:
        socks_server.stop()
        elapsed = await expect_service_unavailable(proxy)
        socks_server.start()
        await sign_on_and_off(proxy, oscar)

    assert elapsed < PROMPT_SECONDS
    via = f"via socks5 127.0.0.1:{socks_server.port}"
    assert log_lines(caplog, "upstream unavailable", via, ": refused")


async def test_refused_destination_then_allowed(
    tmp_path: Path,
    socks_server_factory: Callable[..., SocksServer],
    oscar_server_factory: Callable[..., OscarServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    oscar = oscar_server_factory()
    dante = socks_server_factory(block=[oscar.port])
    entry = dante_entry(dante, 5)

    async with running_proxy(tmp_path, [oscar.address], [entry]) as proxy:
        elapsed = await expect_service_unavailable(proxy)
        dante.wait_for_log("block(", SocksServer.log_address(LOOPBACK, oscar.port))
        dante.reconfigure(block=[])
        await sign_on_and_off(proxy, oscar)

    assert elapsed < PROMPT_SECONDS
    via = f"via socks5 127.0.0.1:{dante.port}"
    assert log_lines(caplog, "upstream unavailable", via, ": destination refused by proxy")


# --------------------------------------------------------------------------- #
# Several proxies, readiness, credentials, HTTP proxies
# --------------------------------------------------------------------------- #


async def test_second_proxy_used_when_first_is_dead(
    tmp_path: Path,
    socks_server: SocksServer,
    oscar_server_factory: Callable[..., OscarServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    oscar = oscar_server_factory()
    dead_port = free_port()  # nothing listens there
    proxies = [{"version": 5, "host": LOOPBACK, "port": dead_port}, dante_entry(socks_server, 5)]

    async with running_proxy(tmp_path, [oscar.address], proxies) as proxy:
        await sign_on_and_off(proxy, oscar)
        metrics = (await fetch(proxy.config.health.port, "/metrics"))[1]

    # The login and the BOS connection each tried the dead proxy first.
    assert len(log_lines(caplog, f"via socks5 127.0.0.1:{dead_port}: refused")) == 2
    assert len(dante_connect_lines(socks_server, oscar.port)) == 2
    assert 'imtegrity_upstream_connect_failures_total{reason="refused"} 2.0' in metrics


async def test_readyz_checks_socks_proxies(tmp_path: Path, socks_server: SocksServer) -> None:
    dead_port = free_port()
    proxies = [
        {"version": 5, "host": LOOPBACK, "port": dead_port},
        dante_auth_entry(
            socks_server, password_file=write_password(tmp_path / "pw", "readiness-only-password")
        ),
    ]
    servers = [f"{LOOPBACK}:{free_port()}"]
    async with running_proxy(tmp_path, servers, proxies, check_in_readiness=True) as proxy:
        health = proxy.config.health.port
        ready_status, _ = await fetch(health, "/readyz")
        socks_server.stop()
        stopped_status, stopped_body = await fetch(health, "/readyz")
        socks_server.start()
        restarted_status, _ = await fetch(health, "/readyz")

    assert ready_status == 200
    assert stopped_status == 503
    assert f"socks5 127.0.0.1:{dead_port}: refused" in stopped_body
    assert f"127.0.0.1:{socks_server.auth_port} with authentication: refused" in stopped_body
    assert restarted_status == 200


async def test_readyz_ignores_socks_unless_configured(
    tmp_path: Path, socks_server: SocksServer
) -> None:
    entry = dante_entry(socks_server, 5)
    async with running_proxy(tmp_path, [f"{LOOPBACK}:{free_port()}"], [entry]) as proxy:
        socks_server.stop()
        status, _ = await fetch(proxy.config.health.port, "/readyz")
    assert status == 200


async def test_credentials_never_shown(
    tmp_path: Path,
    socks_server: SocksServer,
    oscar_server_factory: Callable[..., OscarServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    oscar = oscar_server_factory()
    wrong_password = "wrong-Secret-4711"
    monkeypatch.setenv("IMTEGRITY_TEST_SOCKS_PASSWORD", wrong_password)
    # The first entry fails authentication, so the failure path logs too.
    proxies = [
        dante_auth_entry(socks_server, password_env="IMTEGRITY_TEST_SOCKS_PASSWORD"),
        dante_auth_entry(
            socks_server, password_file=write_password(tmp_path / "pw", socks_server.password)
        ),
    ]
    async with running_proxy(tmp_path, [oscar.address], proxies) as proxy:
        await sign_on_and_off(proxy, oscar)
        _, metrics = await fetch(proxy.config.health.port, "/metrics")
        _, readyz = await fetch(proxy.config.health.port, "/readyz")
        config_repr = repr(proxy.config) + repr(proxy.context)

    config_file = tmp_path / "proxy.yaml"
    config_file.write_text(yaml.safe_dump(proxy_config(
        tmp_path, [oscar.address], [], upstream={"socks": {"proxies": proxies}}
    )))  # fmt: skip
    check = subprocess.run(
        [sys.executable, "-m", "imtegrity_proxy", "config", "check", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert check.returncode == 0, check.stderr
    assert log_lines(caplog, "authentication failed")  # the failure path did run
    outputs = {
        "log": caplog.text,
        "/metrics": metrics,
        "/readyz": readyz,
        "config check": check.stdout + check.stderr,
        "reprs": config_repr,
    }
    for secret in (socks_server.password, wrong_password):
        for where, text in outputs.items():
            assert secret not in text, f"a SOCKS password appears in the {where}"
    for where in ("log", "/metrics", "config check"):
        assert socks_server.username not in outputs[where], f"the username is in the {where}"


@pytest.mark.parametrize(
    "upstream",
    [
        {"http_proxy": "http://proxy.example:3128"},
        {"socks": {"proxies": [{"url": "https://proxy.example:3128"}]}},
        {"socks": {"proxies": [{"version": "http", "host": "proxy.example"}]}},
    ],
)
def test_config_check_rejects_http_proxy(tmp_path: Path, upstream: dict[str, Any]) -> None:
    config_file = tmp_path / "proxy.yaml"
    config_file.write_text(yaml.safe_dump({"upstream": upstream}))
    check = subprocess.run(
        [sys.executable, "-m", "imtegrity_proxy", "config", "check", str(config_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 2
    assert "only SOCKS4 and SOCKS5 proxies are supported" in check.stderr
