"""CoreDNS server blocks that answer each overridden host name with the proxy's Service address.

Each host name gets a server block of its own zone, so CoreDNS routes its
queries there and not to the root block's ``forward``. Inside, four
``template`` instances (the CoreDNS template plugin) decide in order:

1. A for the exact name: the Service's IPv4 ClusterIPs (none: an empty answer);
2. AAAA for the exact name: its IPv6 ClusterIPs (none: an empty answer);
3. any other type for the exact name: an empty NOERROR answer;
4. any name below it: NXDOMAIN.

Checked against CoreDNS 1.14.7 by ``tests/e2e/test_dns_coredns.py``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

# Seconds resolvers may cache an answer, so a new Service address spreads quickly.
ANSWER_TTL_SECONDS = 30
INDENT = "    "


def _name_regex(hostname: str) -> str:
    # "[.]" rather than "\." keeps backslashes out of the Corefile's quoting.
    return "^" + "[.]".join(hostname.rstrip(".").split(".")) + "[.]$"


def _template(qtype: str, regex: str | None, lines: Sequence[str]) -> list[str]:
    qclass = "ANY" if qtype == "ANY" else "IN"
    body = [f'match "{regex}"'] if regex else []
    body += list(lines)
    return [
        f"{INDENT}template {qclass} {qtype} {{",
        *(f"{INDENT * 2}{line}" for line in body),
        f"{INDENT}}}",
    ]


def server_block(hostname: str, addresses: Sequence[str], port: int, bind: Sequence[str]) -> str:
    """Return one server block for ``hostname``, answering ``addresses``.

    ``bind`` repeats the root block's bind addresses, so both blocks listen
    on the same sockets.
    """
    name = hostname.rstrip(".").lower()
    regex = _name_regex(name)
    ipv4 = [a for a in addresses if ipaddress.ip_address(a).version == 4]
    ipv6 = [a for a in addresses if ipaddress.ip_address(a).version == 6]
    a_answers = [f'answer "{{{{ .Name }}}} {ANSWER_TTL_SECONDS} IN A {a}"' for a in ipv4]
    aaaa_answers = [f'answer "{{{{ .Name }}}} {ANSWER_TTL_SECONDS} IN AAAA {a}"' for a in ipv6]
    lines = [f"{name}:{port} {{"]
    if bind:
        lines.append(f"{INDENT}bind {' '.join(bind)}")
    lines.append(f"{INDENT}errors")
    lines += _template("A", regex, [*a_answers, "fallthrough"])
    lines += _template("AAAA", regex, [*aaaa_answers, "fallthrough"])
    lines += _template("ANY", regex, ["fallthrough"])
    lines += _template("ANY", None, ["rcode NXDOMAIN"])
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_blocks(
    answers: Sequence[tuple[str, Sequence[str]]], port: int, bind: Sequence[str]
) -> str:
    """Return the server blocks for (host name, addresses) pairs, sorted by host name."""
    return "".join(
        server_block(hostname, addresses, port, bind) for hostname, addresses in sorted(answers)
    )
