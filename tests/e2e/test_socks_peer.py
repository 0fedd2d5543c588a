"""Smoke tests: the dante fixture runs a real SOCKS server that relays and refuses."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest
from python_socks import ProxyError
from python_socks.sync import Proxy

from tests.fixtures.socks import SocksServer

pytestmark = pytest.mark.e2e


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    """A TCP echo server on loopback, in a thread."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def echo_through(proxy_url: str, echo: tuple[str, int], payload: bytes) -> tuple[bytes, int]:
    """Send ``payload`` to the echo server through the proxy; returns (reply, local port)."""
    sock = Proxy.from_url(proxy_url).connect(echo[0], echo[1], timeout=5)
    with sock:
        sock.settimeout(5)
        local_port = sock.getsockname()[1]
        sock.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received, local_port


@pytest.mark.parametrize("flavour", ["socks5", "socks5-auth", "socks4"])
def test_tcp_through_dante_reaches_echo_server(
    socks_server: SocksServer, echo_server: tuple[str, int], flavour: str
) -> None:
    url = {
        "socks5": socks_server.url,
        "socks5-auth": socks_server.auth_url,
        "socks4": socks_server.socks4_url,
    }[flavour]
    payload = f"hello through {flavour}".encode()

    reply, client_port = echo_through(url, echo_server, payload)

    assert reply == payload
    # dante logged this client's connection to the echo server.
    client = SocksServer.log_address("127.0.0.1", client_port)
    destination = SocksServer.log_address(*echo_server)
    line = socks_server.wait_for_log("tcp/connect [", client, destination)
    if flavour == "socks5-auth":
        assert f"username%{socks_server.username}@" in line


def test_wrong_password_is_refused(
    socks_server: SocksServer, echo_server: tuple[str, int]
) -> None:
    bad = f"socks5://{socks_server.username}:not-the-password@127.0.0.1:{socks_server.auth_port}"
    with pytest.raises(ProxyError):
        echo_through(bad, echo_server, b"x")
    socks_server.wait_for_log("password authentication failed", socks_server.username)


@pytest.mark.parametrize("flavour", ["socks5", "socks4"])
def test_auth_port_refuses_clients_without_credentials(
    socks_server: SocksServer, echo_server: tuple[str, int], flavour: str
) -> None:
    with pytest.raises(ProxyError):
        echo_through(f"{flavour}://127.0.0.1:{socks_server.auth_port}", echo_server, b"x")


def test_blocked_destination_is_refused(
    socks_server_factory, echo_server: tuple[str, int]
) -> None:
    server = socks_server_factory(block=[echo_server[1]])
    with pytest.raises(ProxyError) as refused:
        echo_through(server.url, echo_server, b"x")
    assert refused.value.error_code == 2  # SOCKS5: connection not allowed by ruleset
    server.wait_for_log("block(", SocksServer.log_address(*echo_server))


def test_stop_and_start(socks_server: SocksServer, echo_server: tuple[str, int]) -> None:
    socks_server.stop()
    assert not socks_server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", socks_server.port), timeout=2).close()

    socks_server.start()
    assert echo_through(socks_server.url, echo_server, b"back")[0] == b"back"
