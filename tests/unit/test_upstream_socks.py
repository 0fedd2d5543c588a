"""Tests for the SOCKS side of the upstream connector (imtegrity_proxy.relay.socks).

Byte-level cases run against ``ScriptedSocksServer``, a loopback TCP server of
this file that replies to each read with fixed bytes. It stands in for a SOCKS
server only where dante cannot: SOCKS4a (dante 1.4.2 lacks it), reply codes
dante never sends here, and silent or half-open peers. The end-to-end tests
against dante are in tests/e2e/test_socks_upstream.py.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy.config import ConfigError, SocksProxy, UpstreamConfig
from imtegrity_proxy.metrics import ProxyMetrics
from imtegrity_proxy.relay.socks import (
    AUTHENTICATION_FAILED,
    DESTINATION_REFUSED,
    DESTINATION_UNREACHABLE,
    NAME_NOT_RESOLVED,
    PROXY_ERROR,
    REFUSED,
    TIMED_OUT,
    UNREACHABLE,
    SocksEndpoint,
    SocksFailure,
    SocksParameters,
    classify_proxy_error,
    open_socks_connection,
    probe_socks_proxy,
)
from imtegrity_proxy.relay.upstream import (
    SocksUnavailableError,
    UpstreamConnector,
    UpstreamError,
)
from pydantic import SecretStr
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType

pytestmark = pytest.mark.filterwarnings(
    # relay/socks.py hands python-socks a connected socket; see the NOTE there.
    "ignore:The '_socket' argument is deprecated:DeprecationWarning"
)

LOOPBACK = "127.0.0.1"
PASSWORD = "unit-Secret-0815"
SOCKS5_GRANTED = bytes([5, 0, 0, 1, 127, 0, 0, 1, 0x1F, 0x90])  # bound to 127.0.0.1:8080
SOCKS4_GRANTED = bytes([0, 0x5A, 0x1F, 0x90, 127, 0, 0, 1])


# --------------------------------------------------------------------------- #
# A scripted SOCKS peer
# --------------------------------------------------------------------------- #


@dataclass
class ScriptedSocksServer:
    """Replies to the n-th read of each connection with ``replies[n]``, then echoes.

    ``None`` as a reply closes the connection; a reply list that ends early
    leaves the client waiting, for timeout tests.
    """

    replies: list[bytes | None]
    echo: bool = True
    received: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> ScriptedSocksServer:
        self._server = await asyncio.start_server(self._serve, LOOPBACK, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for reply in self.replies:
                self.received.append(await reader.read(1024))
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
            while self.echo and (data := await reader.read(1024)):
                writer.write(data)
                await writer.drain()
            await reader.read()  # hold the connection until the client leaves
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[..., Any]]:
    servers: list[ScriptedSocksServer] = []

    async def start(replies: list[bytes | None], echo: bool = True) -> ScriptedSocksServer:
        server = await ScriptedSocksServer(replies, echo).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A loopback port with nothing listening (the kernel refuses connections)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    yield port


def endpoint_for(port: int, version: int = 5, **options: Any) -> SocksEndpoint:
    return SocksEndpoint(SocksProxy(version=version, host=LOOPBACK, port=port, **options))


async def open_through(
    endpoint: SocksEndpoint,
    host: str = LOOPBACK,
    port: int = 5190,
    *,
    connect_timeout: float = 5,
    handshake_timeout: float = 5,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await open_socks_connection(
        endpoint,
        host,
        port,
        connect_timeout=connect_timeout,
        handshake_timeout=handshake_timeout,
    )


async def expect_failure(endpoint: SocksEndpoint, **options: Any) -> SocksFailure:
    with pytest.raises(SocksFailure) as failure:
        await open_through(endpoint, **options)
    return failure.value


async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    writer.write(b"ping")
    await writer.drain()
    data = await asyncio.wait_for(reader.readexactly(4), 5)
    writer.close()
    await writer.wait_closed()
    return data


# --------------------------------------------------------------------------- #
# Config -> python-socks parameters
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("options", "password", "expected"),
    [
        (
            {"version": 4, "remote_dns": False},
            None,
            (ProxyType.SOCKS4, None, None, False),
        ),
        (
            {"version": 4, "remote_dns": True, "username": "ops"},
            None,
            (ProxyType.SOCKS4, "ops", None, True),
        ),
        ({"version": 5}, None, (ProxyType.SOCKS5, None, None, True)),
        ({"version": 5, "remote_dns": False}, None, (ProxyType.SOCKS5, None, None, False)),
        (
            {"version": 5, "username": "ops", "password_env": "SOCKS_PW"},
            PASSWORD,
            (ProxyType.SOCKS5, "ops", PASSWORD, True),
        ),
        # SOCKS5 sends a username only with a password (RFC 1929).
        ({"version": 5, "username": "ops"}, None, (ProxyType.SOCKS5, None, None, True)),
    ],
)
def test_parameters_from_config(
    options: dict[str, Any], password: str | None, expected: tuple[Any, ...]
) -> None:
    proxy = SocksProxy(host="socks.example", port=1080, **options)
    secret = None if password is None else SecretStr(password)

    parameters = SocksParameters.from_config(proxy, secret)

    proxy_type, username, expected_password, rdns = expected
    assert parameters.proxy_type is proxy_type
    assert (parameters.host, parameters.port) == ("socks.example", 1080)
    assert parameters.username == username
    password_value = (
        None if parameters.password is None else parameters.password.get_secret_value()
    )
    assert password_value == expected_password
    assert parameters.rdns is rdns


async def test_parameters_create_proxy_keeps_address() -> None:
    parameters = SocksParameters(ProxyType.SOCKS5, "::1", 1081, None, None, True)
    proxy = parameters.create_proxy()
    assert (proxy.proxy_host, proxy.proxy_port) == ("::1", 1081)


def test_parameters_and_endpoint_reprs_hide_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCKS_PW", PASSWORD)
    endpoint = endpoint_for(1080, username="ops", password_env="SOCKS_PW")

    parameters = endpoint.parameters()

    assert parameters.password is not None
    assert parameters.password.get_secret_value() == PASSWORD
    assert PASSWORD not in repr(parameters)
    assert PASSWORD not in repr(endpoint)
    assert repr(endpoint) == "SocksEndpoint('socks5 127.0.0.1:1080 with authentication')"


# --------------------------------------------------------------------------- #
# Credentials: sources, checks and rotation
# --------------------------------------------------------------------------- #


def test_missing_password_variable_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCKS_PW_MISSING", raising=False)
    socks = {
        "proxies": [{"host": LOOPBACK, "username": "ops", "password_env": "SOCKS_PW_MISSING"}]
    }
    config = UpstreamConfig(servers=["127.0.0.1:5190"], socks=socks)
    with pytest.raises(ConfigError) as failure:
        UpstreamConnector(config, ProxyMetrics())
    assert "SOCKS_PW_MISSING" in str(failure.value)


@pytest.mark.parametrize("password", ["", "pässwort", "x" * 256])
def test_password_outside_rfc1929_fails_at_start(tmp_path: Path, password: str) -> None:
    path = tmp_path / "pw"
    path.write_text(password + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as failure:
        endpoint_for(1080, username="ops", password_file=str(path))
    message = str(failure.value)
    assert "1 to 255 ASCII characters" in message
    if password:
        assert password not in message


def test_username_outside_rfc1929_fails_at_start() -> None:
    with pytest.raises(ConfigError) as failure:
        endpoint_for(1080, username="bénédicte")
    assert "SOCKS username for socks5 127.0.0.1:1080" in str(failure.value)


def test_password_file_is_read_again_when_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imtegrity.upstream")
    path = tmp_path / "pw"
    path.write_text("first-password\n")
    endpoint = endpoint_for(1080, username="ops", password_file=str(path))

    first = endpoint.parameters().password
    path.write_text("second-password-longer\n")
    second = endpoint.parameters().password
    path.write_text("\n")  # an empty file is invalid: keep the last good password
    kept = endpoint.parameters().password
    kept_again = endpoint.parameters().password

    assert first is not None and first.get_secret_value() == "first-password"
    assert second is not None and second.get_secret_value() == "second-password-longer"
    assert kept is not None and kept.get_secret_value() == "second-password-longer"
    assert kept_again is not None and kept_again.get_secret_value() == "second-password-longer"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "keeping the previous SOCKS password" in warnings[0].getMessage()
    assert "first-password" not in caplog.text
    assert "second-password-longer" not in caplog.text


def test_password_file_removed_keeps_password(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_text("only-password\n")
    endpoint = endpoint_for(1080, username="ops", password_file=str(path))
    path.unlink()
    password = endpoint.parameters().password
    assert password is not None
    assert password.get_secret_value() == "only-password"


# --------------------------------------------------------------------------- #
# Error mapping
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("version", "code", "reason"),
    [
        (5, 0x01, PROXY_ERROR),
        (5, 0x02, DESTINATION_REFUSED),
        (5, 0x03, DESTINATION_UNREACHABLE),
        (5, 0x04, DESTINATION_UNREACHABLE),
        (5, 0x05, DESTINATION_UNREACHABLE),
        (5, 0x06, DESTINATION_UNREACHABLE),
        (5, 0x07, PROXY_ERROR),
        (5, 0x08, PROXY_ERROR),
        (5, 0x42, PROXY_ERROR),
        (4, 0x5B, DESTINATION_REFUSED),
        (4, 0x5C, AUTHENTICATION_FAILED),
        (4, 0x5D, AUTHENTICATION_FAILED),
    ],
)
def test_classify_reply_codes(version: int, code: int, reason: str) -> None:
    failure = classify_proxy_error(ProxyError("some reply", error_code=code), version)
    assert failure.reason == reason
    assert failure.detail == f"SOCKS{version} reply 0x{code:02x}: some reply"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ProxyError("Username and password authentication failure"), AUTHENTICATION_FAILED),
        (ProxyError("No acceptable authentication methods were offered"), AUTHENTICATION_FAILED),
        (ProxyError("Connection closed unexpectedly"), PROXY_ERROR),
        (ProxyTimeoutError("Proxy connection timed out: 5"), TIMED_OUT),
        (ProxyConnectionError(errno.ECONNREFUSED, "Could not connect"), REFUSED),
        (ProxyConnectionError(errno.ENETUNREACH, "Could not connect"), UNREACHABLE),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), NAME_NOT_RESOLVED),
        (TimeoutError(), TIMED_OUT),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), PROXY_ERROR),
    ],
)
def test_classify_exceptions(error: BaseException, reason: str) -> None:
    assert classify_proxy_error(error, 5).reason == reason


def test_classify_unicode_error_hides_text() -> None:
    error = UnicodeEncodeError("ascii", "sécret", 1, 2, "ordinal not in range(128)")
    failure = classify_proxy_error(error, 5)
    assert failure.reason == PROXY_ERROR
    assert "sécret" not in str(failure)
    assert "é" not in str(failure)


# --------------------------------------------------------------------------- #
# Handshakes against the scripted peer (real python-socks messages and bytes)
# --------------------------------------------------------------------------- #


async def test_socks5_remote_name_and_echo(scripted: Callable[..., Any]) -> None:
    server = await scripted([bytes([5, 0]), SOCKS5_GRANTED])
    reader, writer = await open_through(endpoint_for(server.port), "oscar.example", 5190)

    assert await echo_once(reader, writer) == b"ping"
    greeting, request = server.received[:2]
    assert greeting == bytes([5, 1, 0])
    name = b"oscar.example"
    assert request == bytes([5, 1, 0, 3, len(name)]) + name + (5190).to_bytes(2, "big")


async def test_socks5_username_password(
    scripted: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKS_PW", PASSWORD)
    server = await scripted([bytes([5, 2]), bytes([1, 0]), SOCKS5_GRANTED])
    endpoint = endpoint_for(server.port, username="ops", password_env="SOCKS_PW")

    reader, writer = await open_through(endpoint)

    assert await echo_once(reader, writer) == b"ping"
    assert server.received[0] == bytes([5, 2, 0, 2])
    secret = PASSWORD.encode()
    assert server.received[1] == bytes([1, 3]) + b"ops" + bytes([len(secret)]) + secret


async def test_socks4a_sends_name_after_user_id(scripted: Callable[..., Any]) -> None:
    server = await scripted([SOCKS4_GRANTED])
    endpoint = endpoint_for(server.port, version=4, remote_dns=True, username="ops")

    reader, writer = await open_through(endpoint, "oscar.example", 5190)

    assert await echo_once(reader, writer) == b"ping"
    placeholder = bytes([0, 0, 0, 1])
    expected = bytes([4, 1, 0x14, 0x46]) + placeholder + b"ops\0" + b"oscar.example\0"
    assert server.received[0] == expected


async def test_socks4_resolves_name_locally(
    scripted: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, **kwargs: Any) -> Any:
        if host == "oscar.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.0.2.7", 0))]
        return await real_getaddrinfo(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    server = await scripted([SOCKS4_GRANTED])
    endpoint = endpoint_for(server.port, version=4, remote_dns=False)

    reader, writer = await open_through(endpoint, "oscar.example", 5190)

    assert await echo_once(reader, writer) == b"ping"
    address = ipaddress.IPv4Address("192.0.2.7").packed
    assert server.received[0] == bytes([4, 1, 0x14, 0x46]) + address + b"\0"


async def test_socks5_local_resolution_failure(
    scripted: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, **kwargs: Any) -> Any:
        if host == "oscar.example":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real_getaddrinfo(host, port, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    server = await scripted([bytes([5, 0])])

    failure = await expect_failure(
        endpoint_for(server.port, remote_dns=False), host="oscar.example"
    )

    assert failure.reason == NAME_NOT_RESOLVED


@pytest.mark.parametrize(
    ("version", "replies", "reason", "detail"),
    [
        (5, [bytes([5, 0xFF])], AUTHENTICATION_FAILED, "No acceptable authentication"),
        (5, [bytes([5, 2]), bytes([1, 1])], AUTHENTICATION_FAILED, "Username and password"),
        (
            5,
            [bytes([5, 0]), bytes([5, 4, 0, 1, 0, 0, 0, 0, 0, 0])],
            DESTINATION_UNREACHABLE,
            "0x04",
        ),
        (5, [bytes([5, 0]), bytes([5, 2, 0, 1, 0, 0, 0, 0, 0, 0])], DESTINATION_REFUSED, "0x02"),
        (5, [bytes([5, 0]), None], PROXY_ERROR, "Connection closed unexpectedly"),
        (4, [bytes([0, 0x5B, 0, 0, 0, 0, 0, 0])], DESTINATION_REFUSED, "SOCKS4 reply 0x5b"),
    ],
)
async def test_handshake_failures(
    scripted: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    version: int,
    replies: list[bytes | None],
    reason: str,
    detail: str,
) -> None:
    monkeypatch.setenv("SOCKS_PW", PASSWORD)
    server = await scripted(replies)
    credentials = {"username": "ops", "password_env": "SOCKS_PW"} if version == 5 else {}
    endpoint = endpoint_for(server.port, version=version, **credentials)

    failure = await expect_failure(endpoint)

    assert failure.reason == reason
    assert detail in failure.detail
    assert PASSWORD not in str(failure)


async def test_socks4_rejects_ipv6_destination(scripted: Callable[..., Any]) -> None:
    server = await scripted([SOCKS4_GRANTED])
    failure = await expect_failure(endpoint_for(server.port, version=4), host="2001:db8::1")
    assert failure.reason == DESTINATION_UNREACHABLE
    assert "use version 5" in failure.detail


# --------------------------------------------------------------------------- #
# Connecting to the proxy, and the two time limits
# --------------------------------------------------------------------------- #


async def test_refused_by_proxy(unused_port: int) -> None:
    failure = await expect_failure(endpoint_for(unused_port))
    assert failure.reason == REFUSED


async def test_handshake_timeout_is_separate(scripted: Callable[..., Any]) -> None:
    server = await scripted([], echo=False)  # accepts, never replies
    started = time.monotonic()
    failure = await expect_failure(
        endpoint_for(server.port), connect_timeout=30, handshake_timeout=0.3
    )
    elapsed = time.monotonic() - started
    assert failure.reason == TIMED_OUT
    assert elapsed < 2


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listener whose accept queue is full, so a new connection hangs in SYN-SENT.

    Linux drops the SYN instead of refusing while net.ipv4.tcp_abort_on_overflow is 0
    (its default), which is how a silent firewall looks to the client.
    """
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    held = [socket.create_connection((LOOPBACK, port), timeout=1)]
    try:
        yield port
    finally:
        for sock in held:
            sock.close()
        listener.close()


async def test_connect_timeout_is_separate(full_backlog: int) -> None:
    started = time.monotonic()
    failure = await expect_failure(
        endpoint_for(full_backlog), connect_timeout=0.3, handshake_timeout=30
    )
    elapsed = time.monotonic() - started
    assert failure.reason == TIMED_OUT
    assert "no TCP connection to the SOCKS proxy within 0.3 s" in failure.detail
    assert elapsed < 2


# --------------------------------------------------------------------------- #
# Readiness probe
# --------------------------------------------------------------------------- #


async def test_probe_socks5_greeting(scripted: Callable[..., Any]) -> None:
    server = await scripted([bytes([5, 0])])
    await probe_socks_proxy(endpoint_for(server.port), connect_timeout=1, handshake_timeout=1)
    assert server.received[0] == bytes([5, 1, 0])


async def test_probe_socks5_no_acceptable_method(scripted: Callable[..., Any]) -> None:
    server = await scripted([bytes([5, 0xFF])])
    with pytest.raises(SocksFailure) as failure:
        await probe_socks_proxy(endpoint_for(server.port), connect_timeout=1, handshake_timeout=1)
    assert failure.value.reason == AUTHENTICATION_FAILED


async def test_probe_socks4_is_tcp_only(scripted: Callable[..., Any]) -> None:
    server = await scripted([], echo=False)
    endpoint = endpoint_for(server.port, version=4)
    await probe_socks_proxy(endpoint, connect_timeout=1, handshake_timeout=1)
    await asyncio.sleep(0.05)  # let the server's read see the close
    assert server.received == []


# --------------------------------------------------------------------------- #
# The connector: order of proxies, metrics, readiness check, error text
# --------------------------------------------------------------------------- #


def connector_for(ports: list[int], **socks: Any) -> tuple[UpstreamConnector, ProxyMetrics]:
    proxies = [{"version": 5, "host": LOOPBACK, "port": port} for port in ports]
    config = UpstreamConfig(servers=["127.0.0.1:5190"], socks={"proxies": proxies, **socks})
    metrics = ProxyMetrics()
    return UpstreamConnector(config, metrics), metrics


async def test_connector_tries_proxies_in_order(
    scripted: Callable[..., Any], unused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="imtegrity.upstream")
    server = await scripted([bytes([5, 0]), SOCKS5_GRANTED])
    connector, metrics = connector_for([unused_port, server.port])

    stream = await connector.connect("127.0.0.1", 5190)

    assert stream.via == f"socks5 127.0.0.1:{server.port}"
    assert await echo_once(stream.reader, stream.writer) == b"ping"
    text = metrics.render_prometheus().decode()
    assert 'imtegrity_upstream_connect_failures_total{reason="refused"} 1.0' in text
    assert 'imtegrity_upstream_connect_duration_seconds_count{via="socks"} 1.0' in text
    assert [r.getMessage() for r in caplog.records] == [
        f"127.0.0.1:5190 via socks5 127.0.0.1:{unused_port}: refused "
        "(the SOCKS proxy refused the TCP connection), trying the next SOCKS proxy"
    ]


async def test_connector_raises_last_failure(
    scripted: Callable[..., Any], unused_port: int
) -> None:
    server = await scripted([bytes([5, 0xFF])])
    connector, _ = connector_for([unused_port, server.port])

    with pytest.raises(UpstreamError) as failure:
        await connector.connect("127.0.0.1", 5190)

    assert failure.value.reason == AUTHENTICATION_FAILED
    assert failure.value.proxy == f"socks5 127.0.0.1:{server.port}"
    assert str(failure.value).startswith(
        f"127.0.0.1:5190 via socks5 127.0.0.1:{server.port}: authentication failed ("
    )


def test_readiness_check_only_when_configured() -> None:
    without, _ = connector_for([1080])
    with_check, _ = connector_for([1080], check_in_readiness=True)
    assert without.readiness_check is None
    assert with_check.readiness_check is not None


async def test_readiness_passes_with_one_working_proxy(
    scripted: Callable[..., Any], full_backlog: int
) -> None:
    server = await scripted([bytes([5, 0])])
    # The first proxy never answers; the probes run at once, so it does not delay the answer.
    connector, _ = connector_for([full_backlog, server.port], connect_timeout_seconds=30)

    started = time.monotonic()
    ready = await connector.check_socks_ready()

    assert ready is True
    assert time.monotonic() - started < 2


async def test_readiness_fails_naming_each_proxy(
    scripted: Callable[..., Any], unused_port: int
) -> None:
    server = await scripted([bytes([5, 0xFF])])
    connector, _ = connector_for([unused_port, server.port])

    with pytest.raises(SocksUnavailableError) as failure:
        await connector.check_socks_ready()

    message = str(failure.value)
    assert f"socks5 127.0.0.1:{unused_port}: refused" in message
    assert f"socks5 127.0.0.1:{server.port}: authentication failed" in message


def test_upstream_error_text() -> None:
    direct = UpstreamError("192.0.2.1:5190", "refused")
    via = UpstreamError("192.0.2.1:5190", "timed out", "no reply", "socks4 proxy.example:1080")
    assert str(direct) == "192.0.2.1:5190: refused"
    assert str(via) == "192.0.2.1:5190 via socks4 proxy.example:1080: timed out (no reply)"
