"""Archive records built from decoded frames."""

from __future__ import annotations

from typing import Any

from ..archive import ArchiveRecord
from ..archive.record import CHARSETS
from ..protocol.chat import ChatMessage
from ..protocol.icbm import Icbm
from ..protocol.rendezvous import Rendezvous
from ..protocol.userinfo import normalize_screen_name
from .state import SessionState


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
    state: SessionState, icbm: Icbm, direction: str, action: str = "delivered"
) -> ArchiveRecord:
    body = icbm.message
    details: dict[str, Any] = {"icbm_channel": icbm.channel}
    if icbm.auto_response:
        details["auto_response"] = True
    if body is None:
        return _base(
            state,
            "message",
            direction=direction,
            remote=_remote(icbm),
            action=action,
            details=details,
        )
    charset, extra = _charset(body.charset_name)
    details.update(extra)
    return _base(
        state,
        "message",
        direction=direction,
        remote=_remote(icbm),
        text=body.plain,
        html=body.markup,
        charset=charset,
        action=action,
        details=details,
    )


def rendezvous_record(
    state: SessionState, icbm: Icbm, rendezvous: Rendezvous, direction: str, action: str
) -> ArchiveRecord:
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
    return _base(
        state,
        "rendezvous",
        direction=direction,
        remote=_remote(icbm),
        action=action,
        details=details,
    )


def chat_record(
    state: SessionState, message: ChatMessage, direction: str, action: str = "delivered"
) -> ArchiveRecord:
    charset, details = _charset(message.charset_name)
    sender = message.sender.screen_name if message.sender is not None else None
    return _base(
        state,
        "chat",
        direction=direction,
        remote=normalize_screen_name(sender) if sender and direction == "inbound" else None,
        room=state.room,
        text=message.plain,
        html=message.text,
        charset=charset,
        action=action,
        details=details or None,
    )


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
