"""Reading Corefiles and adding and removing the operator's section byte for byte."""

from __future__ import annotations

import pytest
from imtegrity_operator.dns import corefile
from imtegrity_operator.dns.corefile import BEGIN_MARKER, END_MARKER, CorefileError

# Shaped like the Corefile k3s ships: the root block imports *.override
# files, and *.server files are imported at the top level.
K3S_COREFILE = """\
.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
"""

# Shaped like kubeadm's: no imports, and no trailing newline.
KUBEADM_COREFILE = """\
.:53 {
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
    }
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    reload
}
corp.example:53 {
    forward . 192.0.2.53
}"""

BLOCKS = "login.oscar.aol.com:53 {\n    errors\n}\n"


def test_tokenize_quotes_and_comments():
    tokens = corefile.tokenize('a "b c" # comment\n  d{\n')

    assert [(t.text, t.line) for t in tokens] == [("a", 1), ("b c", 1), ("d", 2), ("{", 2)]


def test_parse_k3s_structure():
    parsed = corefile.parse(K3S_COREFILE)
    root = corefile.root_block(parsed)

    assert [block.keys for block in parsed.blocks] == [[".:53"]]
    assert parsed.imports == ["/etc/coredns/custom/*.server"]
    assert root is not None
    assert root.directive("forward") == [".", "/etc/resolv.conf"]
    # A nested directive (the hosts block's reload) is not a first-level one.
    assert root.directive("ttl") is None


def test_server_import_dirs():
    assert corefile.server_import_dirs(corefile.parse(K3S_COREFILE)) == ["/etc/coredns/custom"]
    assert corefile.server_import_dirs(corefile.parse(KUBEADM_COREFILE)) == []


def test_zones_and_ports():
    parsed = corefile.parse(KUBEADM_COREFILE + "\ndns://Other.Example:5353, third.example {\n}\n")

    assert corefile.zones(parsed) == {
        (".", 53),
        ("corp.example.", 53),
        ("other.example.", 5353),
        ("third.example.", 53),
    }


def test_root_port_from_key():
    assert corefile.root_port(corefile.parse(".:1053 {\n  whoami\n}\n")) == 1053
    assert corefile.root_port(corefile.parse("example.org {\n}\n")) == 53


def test_has_reload():
    assert corefile.has_reload(corefile.parse(K3S_COREFILE))
    assert not corefile.has_reload(corefile.parse(".:53 {\n    forward . 1.1.1.1\n}\n"))


def test_unbalanced_braces_rejected():
    with pytest.raises(CorefileError):
        corefile.parse(".:53 {\n  errors\n")
    with pytest.raises(CorefileError):
        corefile.parse("}\n")


@pytest.mark.parametrize(
    "user", [K3S_COREFILE, KUBEADM_COREFILE, ""], ids=["k3s", "kubeadm", "empty"]
)
def test_section_round_trip_byte_exact(user):
    edited = corefile.with_section(user, BLOCKS)
    back, inner = corefile.split_section(edited)

    assert edited.startswith(user)
    assert inner == BLOCKS
    assert back == user


def test_section_replaced_not_stacked():
    once = corefile.with_section(K3S_COREFILE, BLOCKS)
    user, _ = corefile.split_section(once)
    twice = corefile.with_section(user, "other:53 {\n}\n")

    assert twice.count(BEGIN_MARKER) == 1
    assert corefile.split_section(twice) == (K3S_COREFILE, "other:53 {\n}\n")


def test_user_lines_after_section_kept():
    edited = corefile.with_section(KUBEADM_COREFILE, BLOCKS) + "# added later by hand\n"

    user, _ = corefile.split_section(edited)

    assert user == KUBEADM_COREFILE + "# added later by hand\n"


def test_no_blocks_no_section():
    assert corefile.with_section(K3S_COREFILE, "") == K3S_COREFILE


def test_section_parses_as_server_block():
    parsed = corefile.parse(corefile.with_section(K3S_COREFILE, BLOCKS))

    assert ("login.oscar.aol.com.", 53) in corefile.zones(parsed)


@pytest.mark.parametrize(
    "broken",
    [
        f"{K3S_COREFILE}\n{BEGIN_MARKER}\n{BLOCKS}",
        f"{K3S_COREFILE}{END_MARKER}\n",
        f"{K3S_COREFILE}\n{BEGIN_MARKER}\n{END_MARKER}\n\n{BEGIN_MARKER}\n{END_MARKER}\n",
        f"{BEGIN_MARKER}\n{END_MARKER}\n",
    ],
    ids=["no-end", "no-begin", "two-sections", "newline-removed"],
)
def test_broken_markers_rejected(broken):
    with pytest.raises(CorefileError):
        corefile.split_section(broken)
