"""Protocol errors: one root, with a kind for each side that can be at fault.

Messages name the rule that was broken and show the expected and actual values
in hex. They never include payload bytes, because a payload can hold message
text, a password hash or a cookie.
"""

from __future__ import annotations


def hex_value(value: int | bytes | None, width: int = 4) -> str:
    """Format an int as 0x-prefixed hex, or the length of bytes, for error text."""
    if value is None:
        return "none"
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return f"0x{value:0{width}x}"


class ProtocolError(Exception):
    """Input that breaks an OSCAR framing or encoding rule."""

    side = "peer"

    def __init__(
        self,
        rule: str,
        *,
        expected: int | str | None = None,
        actual: int | str | None = None,
    ) -> None:
        self.rule = rule
        self.expected = expected
        self.actual = actual
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [self.rule]
        if self.expected is not None:
            parts.append(f"expected {_show(self.expected)}")
        if self.actual is not None:
            parts.append(f"got {_show(self.actual)}")
        return ": ".join(parts[:1]) + (" (" + ", ".join(parts[1:]) + ")" if parts[1:] else "")

    def for_side(self, side: str) -> ProtocolError:
        """Return the same error as the kind that blames ``side`` ("client" or "server")."""
        if side not in ("client", "server"):
            raise ValueError(f"side must be 'client' or 'server', got {side!r}")
        kind = ClientProtocolError if side == "client" else ServerProtocolError
        error = kind(self.rule, expected=self.expected, actual=self.actual)
        error.__cause__ = self
        return error


class ClientProtocolError(ProtocolError):
    """The AIM client sent bytes that break the protocol."""

    side = "client"


class ServerProtocolError(ProtocolError):
    """The upstream OSCAR server sent bytes that break the protocol."""

    side = "server"


def _show(value: int | str) -> str:
    return hex_value(value) if isinstance(value, int) else value
