"""The "host[:port]" strings that sign-on replies and redirects carry."""

from __future__ import annotations

from .errors import ProtocolError


def parse_address(raw: bytes) -> tuple[str, int | None]:
    """Split ``host[:port]``; an IPv6 host is written in brackets when a port follows."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as error:
        raise ProtocolError("address is not ASCII", expected="host[:port]") from error
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            raise ProtocolError("address has no closing bracket", expected="[host]:port")
        if rest and not rest.startswith(":"):
            raise ProtocolError("address has text after the bracket", expected="[host]:port")
        has_port, port_text = bool(rest), rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        has_port = True
    else:
        host, port_text, has_port = text, "", False
    if not host:
        raise ProtocolError("address has no host", expected="host[:port]")
    if not has_port:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 0x10000:
        raise ProtocolError("address port is invalid", expected="1..65535")
    return host, int(port_text)


def format_address(host: str, port: int | None) -> bytes:
    shown = f"[{host}]" if ":" in host else host
    text = shown if port is None else f"{shown}:{port}"
    return text.encode("ascii")
