"""Address-block arithmetic for the blocked CIDRs: normalise, split, intersect, subtract."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

IPV4_ALL = ipaddress.IPv4Network("0.0.0.0/0")
IPV6_ALL = ipaddress.IPv6Network("::/0")


def parse_network(text: str) -> Network:
    """Parse a CIDR, dropping host bits (``64.12.1.1/16`` is ``64.12.0.0/16``)."""
    return ipaddress.ip_network(text.strip(), strict=False)


def normalize(cidrs: Iterable[str | Network]) -> list[Network]:
    """Return the smallest sorted list of networks that covers ``cidrs``, IPv4 first."""
    networks = [parse_network(c) if isinstance(c, str) else c for c in cidrs]
    v4 = [n for n in networks if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in networks if isinstance(n, ipaddress.IPv6Network)]
    return [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]


def texts(networks: Iterable[Network]) -> list[str]:
    return [str(network) for network in networks]


def by_family(networks: Iterable[Network]) -> tuple[list[Network], list[Network]]:
    """Split networks into (IPv4, IPv6) lists."""
    items = list(networks)
    v4 = [n for n in items if n.version == 4]
    v6 = [n for n in items if n.version == 6]
    return v4, v6


def _intersection(a: Network, b: Network) -> Network | None:
    if a.version != b.version:
        return None
    if a.subnet_of(b):  # type: ignore[arg-type]
        return a
    if b.subnet_of(a):  # type: ignore[arg-type]
        return b
    return None  # CIDR blocks either nest or do not overlap


def _remove(pieces: list[Network], hole: Network) -> list[Network]:
    kept: list[Network] = []
    for piece in pieces:
        if piece.version != hole.version or _intersection(piece, hole) is None:
            kept.append(piece)
        elif hole.subnet_of(piece) and hole != piece:  # type: ignore[arg-type]
            kept.extend(piece.address_exclude(hole))  # type: ignore[arg-type]
        # else the hole covers the whole piece
    return kept


def intersect(networks: Iterable[Network], others: Iterable[Network]) -> list[Network]:
    """Return the addresses in both lists, normalised."""
    other_list = list(others)
    pieces = [
        part
        for network in networks
        for other in other_list
        if (part := _intersection(network, other)) is not None
    ]
    return normalize(pieces)


def subtract(networks: Iterable[Network], holes: Iterable[Network]) -> list[Network]:
    """Return the addresses of ``networks`` that no hole contains, normalised."""
    pieces = list(networks)
    for hole in holes:
        pieces = _remove(pieces, hole)
    return normalize(pieces)


def overlaps(a: Network, b: Network) -> bool:
    return _intersection(a, b) is not None
