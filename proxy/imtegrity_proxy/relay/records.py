"""Archive records built from decoded frames."""

from __future__ import annotations

from typing import Any, Protocol

from ..archive import ArchiveRecord
from ..archive.record import CHARSETS
from ..protocol.chat import ChatMessage
from ..protocol.icbm import Icbm
from ..protocol.rendezvous import Rendezvous
from ..protocol.userinfo import normalize_screen_name
from .state import SessionState

# Rule name of a message withheld because the proxy could not decode it.
UNREADABLE_RULE = "unreadable-message"


class ShownText(Protocol):
    """Decoded message text: as the sender wrote it, as a reader sees it, and its charset."""

    @property
    def markup(self) -> str: ...

    @property
    def plain(self) -> str: ...

    @property
    def charset_name(self) -> str: ...


def _base(state: SessionState, kind: str, **fields: Any) -> ArchiveRecord:
    display = state.screen_name or ""
    return ArchiveRecord(
        kind=kind,
        session=state.session_id,
        client_address=state.client_address,
        local=normalize_screen_name(display),
        local_display=display,
        identity=state.identity,
        **fields,
    )


def _charset(name: str) -> tuple[str | None, dict[str, Any]]:
    """Split a decoder's charset name into an archive charset and extra details."""
    if name in CHARSETS:
        return name, {}
    base = name.split(" ", 1)[0]
    if base in CHARSETS:
        return base, {"decoding": name}
    return None, {"decoding": name}


def message_record(
    state: SessionState,
    icbm: Icbm,
    direction: str,
    action: str = "delivered",
    *,
    text: ShownText | None = None,
    rule: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ArchiveRecord:
    """Build the record of an IM; ``text`` is what the sender wrote, before any redaction."""
    details: dict[str, Any] = {"icbm_channel": icbm.channel, **(extra or {})}
    if icbm.auto_response:
        details["auto_response"] = True
    return _base(
        state,
        "message",
        direction=direction,
        remote=_remote(icbm),
        action=action,
        rule=rule,
        **_text_fields(text, details),
    )


def _text_fields(text: ShownText | None, details: dict[str, Any]) -> dict[str, Any]:
    """Return the record fields for ``text`` and ``details`` (None when empty)."""
    if text is None:
        return {"details": details or None}
    charset, decoding = _charset(text.charset_name)
    details.update(decoding)
    return {
        "text": text.plain,
        "html": text.markup,
        "charset": charset,
        "details": details or None,
    }


def unreadable_record(
    state: SessionState,
    kind: str,
    direction: str,
    *,
    remote: str | None,
    decode_error: str,
    channel: int | None = None,
) -> ArchiveRecord:
    """Build the record of a message withheld because it could not be decoded.

    ``decode_error`` is the rule the decoder named; the payload is never recorded.
    """
    details: dict[str, Any] = {"decode_error": decode_error}
    if channel is not None:
        details["icbm_channel" if kind != "chat" else "chat_channel"] = channel
    return _base(
        state,
        kind,
        direction=direction,
        remote=normalize_screen_name(remote) if remote else None,
        room=state.room if kind == "chat" else None,
        action="blocked",
        rule=UNREADABLE_RULE,
        details=details,
    )


def rendezvous_record(
    state: SessionState,
    icbm: Icbm,
    rendezvous: Rendezvous,
    direction: str,
    action: str,
    *,
    text: ShownText | None = None,
    rule: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ArchiveRecord:
    """Build the record of a rendezvous; ``text`` is its invitation text, if it has one."""
    kind = rendezvous.kind
    details: dict[str, Any] = {
        "rendezvous_type": rendezvous.type,
        "capability": str(rendezvous.capability),
        "service": kind.name.lower() if kind is not None else "unknown",
    }
    if rendezvous.file_name is not None:
        details["file_name"] = rendezvous.file_name
        details["file_size"] = rendezvous.file_size
        details["file_count"] = rendezvous.file_count
    details.update(extra or {})
    return _base(
        state,
        "rendezvous",
        direction=direction,
        remote=_remote(icbm),
        action=action,
        rule=rule,
        **_text_fields(text, details),
    )


def chat_record(
    state: SessionState,
    message: ChatMessage,
    direction: str,
    action: str = "delivered",
    *,
    rule: str | None = None,
    extra: dict[str, Any] | None = None,
) -> ArchiveRecord:
    """Build the record of a chat message; its text is the text the sender wrote.

    The remote party is the sender of an inbound message and the target of an
    outbound whisper. An outbound message to the whole room has none.
    """
    charset, details = _charset(message.charset_name)
    details.update(extra or {})
    sender = message.sender.screen_name if message.sender is not None else None
    if direction == "inbound":
        remote = sender
    else:
        remote = message.whisper_target
        if remote is not None:
            details["whisper"] = True
    return _base(
        state,
        "chat",
        direction=direction,
        remote=normalize_screen_name(remote) if remote else None,
        room=state.room,
        text=message.plain,
        html=message.text,
        charset=charset,
        action=action,
        rule=rule,
        details=details or None,
    )


def disclaimer_record(
    state: SessionState, direction: str, remote: str, text: str, scope: str
) -> ArchiveRecord:
    """Build the record of a disclaimer sent to ``remote`` and shown to the local user."""
    return _base(
        state,
        "disclaimer",
        direction=direction,
        remote=normalize_screen_name(remote),
        text=text,
        charset=_text_charset(text),
        action="delivered",
        details={"scope": scope, "sent_to": ["remote", "local"]},
    )


def notice_record(
    state: SessionState,
    direction: str,
    text: str,
    *,
    remote: str | None = None,
    rule: str | None = None,
    reason: str,
) -> ArchiveRecord:
    """Build the record of a notice shown to the local user about a ``direction`` event."""
    return _base(
        state,
        "notice",
        direction=direction,
        remote=normalize_screen_name(remote) if remote else None,
        room=state.room if state.role == "service" else None,
        text=text,
        charset=_text_charset(text),
        rule=rule,
        details={"reason": reason, "sent_to": ["local"]},
    )


def _text_charset(text: str) -> str:
    """Name the charset the proxy encodes its own ``text`` in."""
    if text.isascii():
        return "ascii"
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return "ucs-2"
    return "latin-1"


def signon_record(state: SessionState, result: str, **details: Any) -> ArchiveRecord:
    kind = "denied" if result == "denied" else "signon"
    action = "denied" if result in ("denied", "failed") else None
    return _base(state, kind, action=action, details={"result": result, **details})


def signoff_record(state: SessionState) -> ArchiveRecord:
    details: dict[str, Any] = {}
    if state.signoff_reason is not None:
        details["reason"] = state.signoff_reason
    return _base(state, "signoff", details=details or None)


def _remote(icbm: Icbm) -> str:
    return normalize_screen_name(icbm.screen_name)
