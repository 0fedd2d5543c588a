"""Smoke tests: the CoreDNS fixture runs real CoreDNS with hosts, imports and a forward."""

from __future__ import annotations

import pytest

from tests.fixtures.coredns import DEFAULT_HOSTS, UPSTREAM_RECORDS, CoreDNS, DNSLookupError

pytestmark = pytest.mark.e2e

SERVER_IMPORT = """\
imported.test.:{$PORT} {
    bind 127.0.0.1
    log
    hosts {
        192.0.2.77 svc.imported.test
    }
}
"""

OVERRIDE_IMPORT = """\
template IN A override.imtegrity.test {
    answer "{{ .Name }} 60 IN A 192.0.2.99"
}
"""


def test_hosts_name_and_upstream_names_resolve(coredns) -> None:
    server: CoreDNS = coredns()

    # A name from the hosts block of the main Corefile...
    assert server.resolve("peer.imtegrity.test") == [DEFAULT_HOSTS["peer.imtegrity.test"]]
    # ...and names that only the upstream zone file has, through the forward,
    # over UDP and TCP.
    for name, address in UPSTREAM_RECORDS.items():
        assert server.resolve(name) == [address]
    assert server.resolve("www.example.test", tcp=True) == [UPSTREAM_RECORDS["www.example.test."]]
    assert server.rcode("missing.example.test") == "NXDOMAIN"

    log = server.process.log_text()
    assert '"A IN peer.imtegrity.test. udp' in log
    assert '"A IN www.example.test. tcp' in log


def test_import_files_are_loaded(coredns) -> None:
    server: CoreDNS = coredns(
        import_files={"imported.server": SERVER_IMPORT, "aim.override": OVERRIDE_IMPORT},
        hosts={"proxy.imtegrity.test": "127.0.0.20"},
    )

    assert server.resolve("svc.imported.test") == ["192.0.2.77"]  # *.server: own block
    assert server.resolve("login.override.imtegrity.test") == ["192.0.2.99"]  # *.override
    assert server.resolve("proxy.imtegrity.test") == ["127.0.0.20"]
    assert server.resolve("www.example.test") == [UPSTREAM_RECORDS["www.example.test."]]
    assert "No files matching import glob" not in server.process.log_text()


def test_custom_corefile(coredns) -> None:
    server: CoreDNS = coredns(
        ".:{$PORT} {\n"
        "    bind 127.0.0.1\n"
        "    template IN A custom.test {\n"
        '        answer "{{ .Name }} 60 IN A 192.0.2.55"\n'
        "    }\n"
        "}\n"
    )
    assert server.resolve("a.custom.test") == ["192.0.2.55"]
    with pytest.raises(DNSLookupError):  # this Corefile has no forward
        server.resolve("www.example.test")
