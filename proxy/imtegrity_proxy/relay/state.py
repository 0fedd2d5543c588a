"""What one relayed connection knows about the AIM session it belongs to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ..protocol.userinfo import normalize_screen_name


def new_session_id() -> str:
    return secrets.token_hex(8)


@dataclass
class SessionState:
    """The session of a connection: set at sign-on, or inherited through a cookie."""

    session_id: str
    client_address: str
    role: str = "login"  # "login", "bos" or "service"
    screen_name: str | None = None  # as formatted, for display
    identity: str | None = None
    family: int | None = None
    room: str | None = None
    signon_style: str | None = None  # "bucp" or "old-style" on a login connection
    signoff_reason: int | None = None

    @property
    def local(self) -> str | None:
        return None if self.screen_name is None else normalize_screen_name(self.screen_name)

    def set_screen_name(self, name: str) -> None:
        """Keep the formatted name; the normalised form must not change within a session."""
        self.screen_name = name
