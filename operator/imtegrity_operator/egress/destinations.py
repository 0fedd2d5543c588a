"""Where a proxy's pods connect to, derived from the ``upstream`` section of its spec.

The operator cannot resolve AOL's host names (it may run where they do not
resolve, and an answer could change after it looked). So a server given by
name is assumed to be inside the blocked CIDRs: the proxy may reach its port
on every blocked CIDR. An IP literal allows exactly that address. A name in
the cluster's own DNS domain (``NAME.NAMESPACE.svc...`` or a name without
dots) allows the port to every pod. A SOCKS proxy given by a name outside the
cluster allows its port to every address, because the operator cannot know
where it is; such a proxy is never allowed into the blocked CIDRs by a
cluster-wide policy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from imtegrity_proxy.config import UpstreamConfig

from imtegrity_operator.egress import cidrs
from imtegrity_operator.egress.cidrs import Network

DNS_PORT = 53


@dataclass(frozen=True)
class Destination:
    """One TCP port the proxy connects to, and where.

    ``networks`` are addresses outside the cluster, ``in_cluster`` adds every
    pod, and ``allowed_blocked`` is the part of the blocked CIDRs that
    cluster-wide policies must let the proxy reach.
    """

    port: int
    networks: tuple[Network, ...]
    in_cluster: bool
    allowed_blocked: tuple[Network, ...]
    reason: str


def is_cluster_name(host: str) -> bool:
    """Return whether ``host`` is a cluster DNS name: a Service, or a name for the search path."""
    labels = host.lower().rstrip(".").split(".")
    return len(labels) == 1 or "svc" in labels[1:] or host.endswith(".cluster.local")


def _literal(host: str) -> Network | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return ipaddress.ip_network(address)


def _server(host: str, port: int, blocked: Sequence[Network]) -> Destination:
    reason = f"upstream server {host}:{port}"
    literal = _literal(host)
    if literal is not None:
        allowed = tuple(cidrs.intersect([literal], blocked))
        return Destination(port, (literal,), False, allowed, reason)
    if is_cluster_name(host):
        return Destination(port, (), True, (), reason)
    return Destination(port, tuple(blocked), False, tuple(blocked), reason)


def _socks(host: str, port: int, blocked: Sequence[Network]) -> Destination:
    reason = f"SOCKS proxy {host}:{port}"
    literal = _literal(host)
    if literal is not None:
        allowed = tuple(cidrs.intersect([literal], blocked))
        return Destination(port, (literal,), False, allowed, reason)
    if is_cluster_name(host):
        return Destination(port, (), True, (), reason)
    return Destination(port, (cidrs.IPV4_ALL, cidrs.IPV6_ALL), True, (), reason)


def proxy_destinations(upstream: UpstreamConfig, blocked: Sequence[Network]) -> list[Destination]:
    """Return where the proxy connects: its SOCKS proxies if it has any, else its servers."""
    if upstream.socks is not None:
        return [_socks(proxy.host, proxy.port, blocked) for proxy in upstream.socks.proxies]
    return [_server(host, port, blocked) for host, port in upstream.server_addresses()]
