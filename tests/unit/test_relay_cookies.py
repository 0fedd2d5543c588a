"""The cookie store: bounded in time and count, cookie bytes kept as given."""

from __future__ import annotations

from imtegrity_proxy.relay.cookies import CookieStore, Ticket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ticket(port: int) -> Ticket:
    return Ticket(("127.0.0.1", port), "session", "Foo Bar", "127.0.0.1:1")


def test_lookup_returns_remembered_ticket():
    store = CookieStore(60, 10, Clock())
    store.remember(b"\x00" * 256, ticket(1))
    assert store.lookup(b"\x00" * 256) == ticket(1)


def test_cookie_bytes_compared_exactly():
    store = CookieStore(60, 10, Clock())
    store.remember(b"abc", ticket(1))
    assert store.lookup(b"abcd") is None
    assert store.lookup(b"ab") is None
    assert store.lookup(b"ABC") is None


def test_expired_cookie_is_forgotten():
    clock = Clock()
    store = CookieStore(60, 10, clock)
    store.remember(b"one", ticket(1))
    clock.now += 59.9
    assert store.lookup(b"one") == ticket(1)
    clock.now += 0.2
    assert store.lookup(b"one") is None
    assert len(store) == 0


def test_oldest_cookie_dropped_over_the_bound():
    store = CookieStore(60, 3, Clock())
    for index in range(5):
        store.remember(bytes([index]), ticket(index))
    assert len(store) == 3
    assert store.lookup(b"\x00") is None
    assert store.lookup(b"\x01") is None
    assert store.lookup(b"\x04") == ticket(4)


def test_remembering_again_refreshes_expiry():
    clock = Clock()
    store = CookieStore(60, 10, clock)
    store.remember(b"one", ticket(1))
    clock.now += 50
    store.remember(b"two", ticket(2))
    store.remember(b"one", ticket(3))
    clock.now += 20
    assert store.lookup(b"two") == ticket(2)
    assert store.lookup(b"one") == ticket(3)
