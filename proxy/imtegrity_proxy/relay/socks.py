"""Upstream connections through SOCKS4, SOCKS4a and SOCKS5 proxies, with python-socks.

A connection through a SOCKS proxy has two phases, each with its own time limit:

1. the TCP connection to the SOCKS proxy (``upstream.socks.connect_timeout_seconds``);
2. the SOCKS handshake (``handshake_timeout_seconds``). It includes the proxy's own
   connection to the destination, because the proxy replies only after that.

This module opens the TCP connection itself and hands the connected socket to
python-socks for the handshake, because python-socks' ``Proxy.connect`` puts one
time limit on both phases. The socket is then wrapped into asyncio streams.

Every failure becomes a ``SocksFailure`` whose ``reason`` is one of the fixed
strings below. The relay logs it with the proxy's description (version, host and
port, never credentials), and the metrics count it under that reason.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass

from pydantic import SecretStr
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.async_.asyncio import Proxy

from ..config import ConfigError, SocksProxy

__all__ = [
    "AUTHENTICATION_FAILED",
    "DESTINATION_REFUSED",
    "DESTINATION_UNREACHABLE",
    "NAME_NOT_RESOLVED",
    "PROXY_ERROR",
    "REFUSED",
    "TIMED_OUT",
    "UNREACHABLE",
    "SocksEndpoint",
    "SocksFailure",
    "SocksParameters",
    "classify_proxy_error",
    "open_socks_connection",
    "probe_socks_proxy",
]

log = logging.getLogger("imtegrity.upstream")

# Failure reasons. The direct connections in upstream.py use the first four too.
REFUSED = "refused"  # the SOCKS proxy refused the TCP connection
TIMED_OUT = "timed out"
NAME_NOT_RESOLVED = "name not resolved"
UNREACHABLE = "unreachable"  # no route to the SOCKS proxy, or another socket error
AUTHENTICATION_FAILED = "authentication failed"
DESTINATION_UNREACHABLE = "destination unreachable"
DESTINATION_REFUSED = "destination refused by proxy"
PROXY_ERROR = "proxy error"  # an invalid reply, or the proxy closed during the handshake

# SOCKS5 reply codes, RFC 1928 section 6.
_SOCKS5_REPLY_REASONS = {
    0x01: PROXY_ERROR,  # general SOCKS server failure
    0x02: DESTINATION_REFUSED,  # connection not allowed by ruleset
    0x03: DESTINATION_UNREACHABLE,  # network unreachable
    0x04: DESTINATION_UNREACHABLE,  # host unreachable (also: the proxy could not resolve it)
    0x05: DESTINATION_UNREACHABLE,  # connection refused by the destination
    0x06: DESTINATION_UNREACHABLE,  # TTL expired
    0x07: PROXY_ERROR,  # command not supported
    0x08: PROXY_ERROR,  # address type not supported
}

# SOCKS4 reply codes. 0x5B covers both a ruleset refusal and a failed connection to
# the destination, and SOCKS4 offers no way to tell them apart.
_SOCKS4_REPLY_REASONS = {
    0x5B: DESTINATION_REFUSED,  # request rejected or failed
    0x5C: AUTHENTICATION_FAILED,  # the proxy could not reach identd on the client
    0x5D: AUTHENTICATION_FAILED,  # identd reported a different user ID
}

# python-socks 2.8.2 (python_socks/_protocols/socks5.py) raises these ProxyError
# messages without a reply code. tests/unit/test_upstream_socks.py checks them
# against the installed python-socks.
_AUTHENTICATION_MESSAGES = frozenset(
    {
        "Username and password authentication failure",
        "No acceptable authentication methods were offered",
    }
)

# RFC 1929: the username and the password are each 1 to 255 bytes. python-socks
# encodes both as ASCII.
_MAX_CREDENTIAL_LENGTH = 255

# SOCKS5 greeting methods, RFC 1928 section 3.
_NO_AUTHENTICATION = 0x00
_USERNAME_PASSWORD = 0x02
_NO_ACCEPTABLE_METHOD = 0xFF


class SocksFailure(Exception):
    """A failed connection through one SOCKS proxy. ``reason`` is one of the fixed strings."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason} ({detail})" if detail else reason)


@dataclass(frozen=True, slots=True)
class SocksParameters:
    """The arguments for python-socks' ``Proxy`` that one configured SOCKS proxy needs."""

    proxy_type: ProxyType
    host: str
    port: int
    username: str | None
    password: SecretStr | None  # SecretStr keeps the value out of reprs
    rdns: bool

    @classmethod
    def from_config(cls, proxy: SocksProxy, password: SecretStr | None) -> SocksParameters:
        """Translate one ``upstream.socks.proxies`` entry and its resolved password."""
        if proxy.version == 4:
            # SOCKS4 sends the username as its user ID and has no password. With
            # rdns, python-socks sends a host name as SOCKS4a.
            return cls(
                ProxyType.SOCKS4, proxy.host, proxy.port, proxy.username or None, None,
                proxy.remote_dns,
            )  # fmt: skip
        # SOCKS5 uses a username only together with a password (RFC 1929).
        username = proxy.username if password is not None else None
        return cls(ProxyType.SOCKS5, proxy.host, proxy.port, username, password, proxy.remote_dns)

    def create_proxy(self) -> Proxy:
        """Return a python-socks ``Proxy`` bound to the running event loop."""
        secret = _secret_value(self.password)
        return Proxy(
            self.proxy_type,
            self.host,
            self.port,
            username=self.username,
            password=secret,
            rdns=self.rdns,
            loop=asyncio.get_running_loop(),
        )


def _check_credential(value: str, field_name: str, description: str) -> None:
    """Raise ConfigError unless ``value`` fits RFC 1929; the message never shows the value."""
    if not value.isascii() or not 1 <= len(value) <= _MAX_CREDENTIAL_LENGTH:
        raise ConfigError(
            f"SOCKS {field_name} for {description} must be 1 to {_MAX_CREDENTIAL_LENGTH} "
            "ASCII characters"
        )


def _secret_value(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


class _PasswordSource:
    """The current password of one SOCKS proxy.

    The password is read once at start, which registers it for log redaction. A
    ``password_file`` is read again when its inode, size or modification time
    changes, so a rotated Kubernetes Secret takes effect without a restart. When
    that new read fails, the previous password stays in use.
    """

    def __init__(self, proxy: SocksProxy) -> None:
        self._proxy = proxy
        self._description = proxy.describe()
        self._stamp = self._file_stamp()
        self._password = self._read()
        self._failed_stamp: tuple[int, int, int] | None = None

    def _read(self) -> SecretStr | None:
        password = self._proxy.resolve_password()  # raises ConfigError; registers the secret
        if password is not None:
            _check_credential(password.get_secret_value(), "password", self._description)
        return password

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._proxy.password_file is None:
            return None
        try:
            status = os.stat(self._proxy.password_file)
        # A missing file shows up in _read, which names it; here it only means "no change".
        except OSError:
            return None
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def current(self) -> SecretStr | None:
        stamp = self._file_stamp()
        if stamp is None or stamp in (self._stamp, self._failed_stamp):
            return self._password
        try:
            password = self._read()
        # Keep the password that worked so far; a half-written file must not stop sign-ons.
        except ConfigError as error:
            self._failed_stamp = stamp
            log.warning("keeping the previous SOCKS password for %s: %s", self._description, error)
            return self._password
        changed = _secret_value(password) != _secret_value(self._password)
        self._stamp, self._password = stamp, password
        if changed:
            log.info(
                "SOCKS password file of %s changed; using the new password", self._description
            )
        return password


class SocksEndpoint:
    """One configured SOCKS proxy with its credentials.

    Creating it reads the password from its file or environment variable and
    registers it for log redaction. Raises ``ConfigError`` when the password is
    missing or does not fit RFC 1929.
    """

    def __init__(self, config: SocksProxy) -> None:
        self.config = config
        self.description = config.describe()
        if config.username is not None:
            _check_credential(config.username, "username", self.description)
        self._password = _PasswordSource(config)

    @property
    def version(self) -> int:
        return self.config.version

    @property
    def has_password(self) -> bool:
        return self.config.password_file is not None or self.config.password_env is not None

    def parameters(self) -> SocksParameters:
        """Return the python-socks arguments with the current password."""
        return SocksParameters.from_config(self.config, self._password.current())

    def __repr__(self) -> str:
        return f"SocksEndpoint({self.description!r})"


def classify_proxy_error(error: BaseException, version: int) -> SocksFailure:
    """Map an exception raised during the SOCKS handshake to a failure reason."""
    if isinstance(error, ProxyTimeoutError):
        return SocksFailure(TIMED_OUT, "no SOCKS reply in time")
    if isinstance(error, ProxyConnectionError):
        reason = REFUSED if error.errno == errno.ECONNREFUSED else UNREACHABLE
        return SocksFailure(reason, str(error))
    if isinstance(error, ProxyError):
        return _classify_reply(error, version)
    if isinstance(error, socket.gaierror):
        return SocksFailure(NAME_NOT_RESOLVED, f"local resolution failed: {error.strerror}")
    if isinstance(error, TimeoutError):
        return SocksFailure(TIMED_OUT, "no SOCKS reply in time")
    if isinstance(error, OSError):
        detail = error.strerror or type(error).__name__
        return SocksFailure(PROXY_ERROR, f"connection lost during the SOCKS handshake: {detail}")
    # Only the type: a UnicodeError's text would quote the offending characters.
    return SocksFailure(PROXY_ERROR, f"SOCKS handshake failed: {type(error).__name__}")


def _classify_reply(error: ProxyError, version: int) -> SocksFailure:
    message = str(error)
    code = error.error_code
    if code is None:
        reason = AUTHENTICATION_FAILED if message in _AUTHENTICATION_MESSAGES else PROXY_ERROR
        return SocksFailure(reason, message)
    table = _SOCKS4_REPLY_REASONS if version == 4 else _SOCKS5_REPLY_REASONS
    reason = table.get(int(code), PROXY_ERROR)
    return SocksFailure(reason, f"SOCKS{version} reply 0x{int(code):02x}: {message}")


async def _open_socket(host: str, port: int, local_host: str | None) -> socket.socket:
    """Connect a non-blocking TCP socket to ``host:port``, trying each address in turn."""
    loop = asyncio.get_running_loop()
    addresses = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last_error: OSError = OSError(f"no address for {host}")
    for family, kind, protocol, _, address in addresses:
        sock = socket.socket(family, kind, protocol)
        try:
            sock.setblocking(False)
            if local_host is not None:
                sock.bind((local_host, 0))
            await loop.sock_connect(sock, address)
        # This address failed: remember why and try the next one.
        except OSError as error:
            sock.close()
            last_error = error
            continue
        # Cancelled (the client left): close the socket before giving up.
        except BaseException:
            sock.close()
            raise
        return sock
    raise last_error


async def _connect_to_proxy(
    endpoint: SocksEndpoint, timeout: float, local_host: str | None
) -> socket.socket:
    host, port = endpoint.config.host, endpoint.config.port
    try:
        async with asyncio.timeout(timeout):
            return await _open_socket(host, port, local_host)
    # TimeoutError is an OSError, so it must come first.
    except TimeoutError as error:
        detail = f"no TCP connection to the SOCKS proxy within {timeout:g} s"
        raise SocksFailure(TIMED_OUT, detail) from error
    except ConnectionRefusedError as error:
        raise SocksFailure(REFUSED, "the SOCKS proxy refused the TCP connection") from error
    except socket.gaierror as error:
        detail = f"SOCKS proxy host {host!r}: {error.strerror}"
        raise SocksFailure(NAME_NOT_RESOLVED, detail) from error
    except OSError as error:
        raise SocksFailure(UNREACHABLE, error.strerror or str(error)) from error


def _is_ipv6_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


async def _handshake(
    endpoint: SocksEndpoint, sock: socket.socket, host: str, port: int, timeout: float
) -> None:
    if endpoint.version == 4 and _is_ipv6_address(host):
        raise SocksFailure(
            DESTINATION_UNREACHABLE, f"SOCKS4 cannot carry the IPv6 address {host}; use version 5"
        )
    proxy = endpoint.parameters().create_proxy()
    try:
        # NOTE: python-socks 2.x marks ``_socket`` as deprecated, but it is the only
        # way to give the TCP connection and the handshake separate time limits.
        # pyproject.toml allows python-socks below 3.
        await proxy.connect(host, port, timeout=timeout, _socket=sock)
    # ValueError covers a destination python-socks cannot encode (UnicodeError).
    except (ProxyError, ProxyTimeoutError, OSError, ValueError) as error:
        raise classify_proxy_error(error, endpoint.version) from error


async def open_socks_connection(
    endpoint: SocksEndpoint,
    host: str,
    port: int,
    *,
    connect_timeout: float,
    handshake_timeout: float,
    local_host: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a connection to ``host:port`` through ``endpoint``; raise ``SocksFailure``.

    ``local_host`` is the local address that the connection to the SOCKS proxy
    binds to (``upstream.source_addresses``).
    """
    sock = await _connect_to_proxy(endpoint, connect_timeout, local_host)
    try:
        await _handshake(endpoint, sock, host, port, handshake_timeout)
        return await asyncio.open_connection(sock=sock)
    # Until the streams own the socket, close it on any failure or cancellation.
    except BaseException:
        sock.close()
        raise


async def _read_exactly(sock: socket.socket, size: int) -> bytes:
    loop = asyncio.get_running_loop()
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise SocksFailure(PROXY_ERROR, "the SOCKS proxy closed the connection")
        data += chunk
    return data


async def _greet_socks5(endpoint: SocksEndpoint, sock: socket.socket, timeout: float) -> None:
    """Send a SOCKS5 method greeting and check the reply (RFC 1928 section 3)."""
    methods = [_NO_AUTHENTICATION]
    if endpoint.has_password:
        methods.append(_USERNAME_PASSWORD)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            await loop.sock_sendall(sock, bytes([5, len(methods), *methods]))
            version, method = await _read_exactly(sock, 2)
    except TimeoutError as error:
        raise SocksFailure(TIMED_OUT, f"no SOCKS5 greeting reply within {timeout:g} s") from error
    except OSError as error:
        raise SocksFailure(PROXY_ERROR, error.strerror or type(error).__name__) from error
    if version != 5:
        raise SocksFailure(PROXY_ERROR, f"the reply has SOCKS version {version}, expected 5")
    if method == _NO_ACCEPTABLE_METHOD:
        raise SocksFailure(AUTHENTICATION_FAILED, "the proxy accepts none of the offered methods")
    if method not in methods:
        detail = f"the proxy chose method 0x{method:02x}, which was not offered"
        raise SocksFailure(AUTHENTICATION_FAILED, detail)


async def probe_socks_proxy(
    endpoint: SocksEndpoint, *, connect_timeout: float, handshake_timeout: float
) -> None:
    """Check that a SOCKS proxy accepts connections; raise ``SocksFailure`` if not.

    SOCKS5 proxies also get a method greeting, then the probe closes. SOCKS4 has no
    greeting, so for SOCKS4 a TCP connection is the whole check.
    """
    sock = await _connect_to_proxy(endpoint, connect_timeout, None)
    try:
        if endpoint.version == 5:
            await _greet_socks5(endpoint, sock, handshake_timeout)
    finally:
        sock.close()
