"""The DNS policy of the proxy's own pods, chosen so the override does not loop the proxy.

The override makes cluster DNS answer ``login.oscar.aol.com`` with the proxy's
Service address. The proxy's default upstream is that very name, so a proxy
that asked cluster DNS would connect to itself. When the proxy resolves an
overridden name, its pods use the node's resolver (``dnsPolicy: Default``)
instead. Such a pod cannot resolve cluster Service names, so the operator
keeps ``ClusterFirst`` whenever no overridden name is involved.
"""

from __future__ import annotations

from imtegrity_operator.spec import ProxySpec

CLUSTER_FIRST = "ClusterFirst"
NODE_RESOLVER = "Default"


def _resolved_names(spec: ProxySpec) -> set[str]:
    """Return the host names the proxy process itself looks up."""
    upstream = spec.upstream
    names = set()
    if upstream.socks is None or any(not p.remote_dns for p in upstream.socks.proxies):
        names |= {host for host, _ in upstream.server_addresses()}
    if upstream.socks is not None:
        names |= {proxy.host for proxy in upstream.socks.proxies}
    return {name.rstrip(".").lower() for name in names}


def _is_at_or_below(name: str, zone: str) -> bool:
    return name == zone or name.endswith(f".{zone}")


def proxy_dns_policy(spec: ProxySpec) -> str:
    """Return the proxy pods' dnsPolicy: Default when it resolves a name listed in dns.hostnames.

    The check uses ``dns.hostnames`` even when ``dns.override`` is false,
    because another IMtegrityProxy may override the same names.
    """
    overridden = [hostname.rstrip(".").lower() for hostname in spec.dns.hostnames]
    for name in _resolved_names(spec):
        if any(_is_at_or_below(name, zone) for zone in overridden):
            return NODE_RESOLVER
    return CLUSTER_FIRST
