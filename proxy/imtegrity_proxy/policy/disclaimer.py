"""Disclaimer texts: placeholders, rendering, the size check, and how often they repeat.

A template is a ``str.format`` string whose only fields are the names in
``PLACEHOLDERS``; ``{{`` and ``}}`` write literal braces. The size of a text is
the number of bytes its ICBM text fragment carries, in the narrowest charset
that can encode it (ASCII, then ISO-8859-1, then UCS-2), which is how the proxy
encodes every text it injects.
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from ..protocol.text import encode_fragment_text

Scope = Literal["conversation-day", "session", "message"]

PLACEHOLDERS = ("date", "time", "timezone", "local", "identity", "remote")

# AIM screen names have at most 16 characters, so a rendered {local} or {remote}
# is at most this long. {date} is YYYY-MM-DD and {time} is HH:MM.
SCREEN_NAME_MAX = 16
_LONGEST_VALUES = {
    "date": "2000-12-31",
    "time": "23:59",
    "local": "W" * SCREEN_NAME_MAX,
    "remote": "W" * SCREEN_NAME_MAX,
}


def placeholder_problems(template: str) -> list[str]:
    """Return one line per unknown or malformed placeholder in ``template``."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as error:
        return [f"invalid placeholder syntax: {error}; write a literal brace as {{{{ or }}}}"]
    allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    problems = []
    for _, name, spec, conversion in fields:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            problems.append(f"unknown placeholder {{{name}}}; use {allowed}")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} takes no format spec or conversion")
    return problems


@dataclass(frozen=True, slots=True)
class Conversation:
    """The parties a disclaimer names. ``identity`` falls back to the local screen name."""

    local: str
    remote: str
    identity: str | None


def render(template: str, conversation: Conversation, moment: datetime, timezone: str) -> str:
    """Fill in ``template`` for ``conversation`` at ``moment`` (an aware datetime)."""
    local_time = moment.astimezone(ZoneInfo(timezone))
    return template.format(
        date=local_time.strftime("%Y-%m-%d"),
        time=local_time.strftime("%H:%M"),
        timezone=timezone,
        local=conversation.local,
        identity=conversation.identity or conversation.local,
        remote=conversation.remote,
    )


def encoded_size(text: str) -> int:
    """Return the bytes ``text`` takes in an ICBM text fragment, as the proxy encodes it."""
    _, raw = encode_fragment_text(text)
    return len(raw)


def max_rendered_size(template: str, prefix: str, identities: Iterable[str], timezone: str) -> int:
    """Return the largest size ``prefix`` plus the rendered ``template`` can take.

    Screen names count at 16 characters, identities at each configured value, and
    an unregistered user's identity at the 16-character screen name it falls back to.
    """
    candidates = {*identities, "W" * SCREEN_NAME_MAX}
    sizes = []
    for identity in candidates:
        text = template.format(**_LONGEST_VALUES, timezone=timezone, identity=identity)
        sizes.append(encoded_size(prefix + text))
    return max(sizes)


class DisclaimerTracker:
    """The record of conversations that already got their disclaimer, one per proxy process.

    NOTE: replicas of a proxy do not share it, and a restart clears it.

    ``claim`` marks a conversation as done and returns True when its disclaimer is
    due. A caller that then fails to send it calls ``release``. Day entries hold
    only the current day, so the tracker grows with the conversations of one day
    and the sessions that are open.
    """

    def __init__(self) -> None:
        self._day: date | None = None
        self._sent_today: set[tuple[str, str]] = set()
        self._sent_in_session: dict[str, set[str]] = {}

    def claim(self, scope: Scope, session: str, local: str, remote: str, today: date) -> bool:
        if scope == "message":
            return True
        if scope == "session":
            sent = self._sent_in_session.setdefault(session, set())
            if remote in sent:
                return False
            sent.add(remote)
            return True
        if today != self._day:
            self._day = today
            self._sent_today = set()
        if (local, remote) in self._sent_today:
            return False
        self._sent_today.add((local, remote))
        return True

    def release(self, scope: Scope, session: str, local: str, remote: str) -> None:
        """Undo a claim whose disclaimer was not sent, so the next message tries again."""
        if scope == "session":
            self._sent_in_session.get(session, set()).discard(remote)
        elif scope == "conversation-day":
            self._sent_today.discard((local, remote))

    def end_session(self, session: str) -> None:
        self._sent_in_session.pop(session, None)
