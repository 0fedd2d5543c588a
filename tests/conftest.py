"""Shared pytest set-up: each real peer's fixtures live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.peers",
    "tests.fixtures.oscar",
    "tests.fixtures.socks",
    "tests.fixtures.coredns",
    "tests.fixtures.kube",
    "tests.fixtures.proxy",
]
