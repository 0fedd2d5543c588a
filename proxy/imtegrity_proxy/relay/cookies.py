"""Cookies the proxy handed out, and the upstream address each stands for.

A sign-on reply or redirect gives the client a cookie and an address. The
proxy replaces the address with its own and remembers where the cookie was
meant to go. The client later presents the cookie on a new connection, and the
proxy connects it to that upstream address. The store is bounded in time and
count, so a flood of sign-ons cannot grow it without limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry.trace import SpanContext


@dataclass(frozen=True, slots=True)
class Ticket:
    """The upstream address a cookie leads to, and the session it continues."""

    upstream: tuple[str, int]
    session_id: str
    screen_name: str | None
    client_address: str
    family: int | None = None  # None for the BOS connection of a sign-on reply
    room: str | None = None
    # The redirect span that handed out the cookie; the next connection continues its trace.
    trace_parent: SpanContext | None = None


class CookieStore:
    def __init__(
        self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        # Insertion order is expiry order, because every entry gets the same TTL.
        self._entries: OrderedDict[bytes, tuple[float, Ticket]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, cookie: bytes, ticket: Ticket) -> None:
        self._expire()
        self._entries.pop(cookie, None)
        self._entries[cookie] = (self._clock() + self._ttl, ticket)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def lookup(self, cookie: bytes) -> Ticket | None:
        """Return the ticket of a live cookie. It stays, since a client may reconnect with it."""
        self._expire()
        entry = self._entries.get(cookie)
        return None if entry is None else entry[1]

    def _expire(self) -> None:
        now = self._clock()
        while self._entries:
            expires, _ = next(iter(self._entries.values()))
            if expires > now:
                break
            self._entries.popitem(last=False)
