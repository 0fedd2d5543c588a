"""The archive record type, its validation and the fields stored for each record."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from ..protocol.userinfo import normalize_screen_name  # noqa: F401 - part of this module's API

KINDS = frozenset(
    {"message", "chat", "disclaimer", "notice", "signon", "signoff", "denied", "rendezvous"}
)
DIRECTIONS = frozenset({"outbound", "inbound"})
CHARSETS = frozenset({"ascii", "ucs-2", "latin-1", "utf-8"})
ACTIONS = frozenset({"delivered", "blocked", "redacted", "flagged", "denied"})

# Column order of a stored and exported record. The hash covers every field but "hash".
STORED_FIELDS = (
    "id",
    "time",
    "kind",
    "direction",
    "session",
    "client_address",
    "local",
    "local_display",
    "identity",
    "remote",
    "room",
    "text",
    "html",
    "charset",
    "action",
    "rule",
    "details",
    "prev_hash",
    "hash",
)

_REQUIRED_TEXT_FIELDS = ("kind", "session", "client_address", "local", "local_display")
_ALLOWED_VALUES = {
    "kind": KINDS,
    "direction": DIRECTIONS,
    "charset": CHARSETS,
    "action": ACTIONS,
}


class ArchiveError(Exception):
    """The record was not committed to the archive.

    The message names the database path and the SQLite error or the invalid field.
    It never contains the message text.
    """


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    """One archived event, as the proxy hands it to Archive.append."""

    kind: str
    session: str
    client_address: str
    local: str
    local_display: str
    direction: str | None = None
    identity: str | None = None
    remote: str | None = None
    room: str | None = None
    text: str | None = None
    html: str | None = None
    charset: str | None = None
    action: str | None = None
    rule: str | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A validated record with its append time, waiting for the writer thread.

    The writer adds id, prev_hash and hash. `details` is already in canonical form, so
    the hash computed at write time matches the hash recomputed from the stored row.
    """

    time: str
    record: ArchiveRecord
    details: dict[str, Any] | None
    details_json: str | None


def format_time(moment: datetime) -> str:
    """Format a datetime as UTC RFC 3339 with microseconds and a `Z` suffix.

    A naive datetime is taken as UTC. The fixed width makes string order equal time order.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """Serialise a value as sorted-key compact JSON, keeping non-ASCII characters as is.

    Raises TypeError or ValueError when the value is not JSON-serialisable (NaN included).
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def prepare_record(record: ArchiveRecord) -> PendingRecord:
    """Validate a record and stamp it with the current UTC time.

    Raises ArchiveError naming the first invalid field. Validation runs before the record
    is queued, so one bad record cannot fail the other records of its batch.
    """
    if not isinstance(record, ArchiveRecord):
        raise ArchiveError(f"expected an ArchiveRecord, got {type(record).__name__}")
    _check_text_fields(record)
    _check_allowed_values(record)
    details, details_json = _canonical_details(record.details)
    return PendingRecord(
        time=format_time(datetime.now(UTC)),
        record=record,
        details=details,
        details_json=details_json,
    )


def _check_text_fields(record: ArchiveRecord) -> None:
    for field in fields(record):
        if field.name == "details":
            continue
        value = getattr(record, field.name)
        if value is None and field.name not in _REQUIRED_TEXT_FIELDS:
            continue
        if not isinstance(value, str):
            raise ArchiveError(
                f"invalid record: field {field.name!r} must be a string, "
                f"got {type(value).__name__}"
            )
        _check_encodable(field.name, value)


def _check_encodable(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    # A lone surrogate (for example from a bad UCS-2 decode) cannot be stored in SQLite
    # or hashed as UTF-8, so the record is rejected here instead of failing its batch.
    except UnicodeEncodeError as exc:
        raise ArchiveError(
            f"invalid record: field {name!r} is not valid Unicode ({exc.reason} at "
            f"position {exc.start})"
        ) from None


def _check_allowed_values(record: ArchiveRecord) -> None:
    for name, allowed in _ALLOWED_VALUES.items():
        value = getattr(record, name)
        if value is None and name != "kind":
            continue
        if value not in allowed:
            raise ArchiveError(f"invalid record: {name} {value!r} is not one of {sorted(allowed)}")


def _canonical_details(
    details: dict[str, Any] | None,
) -> tuple[dict[str, Any] | None, str | None]:
    if details is None:
        return None, None
    if not isinstance(details, dict):
        raise ArchiveError(f"invalid record: details must be a dict, got {type(details).__name__}")
    try:
        encoded = canonical_json(details)
    # The error names the offending type or value, never the record text.
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"invalid record: details are not JSON-serialisable ({exc})") from None
    _check_encodable("details", encoded)
    # Decoding the canonical text turns tuples into lists and int keys into strings, so
    # the hash is computed over exactly what verify_archive reads back.
    return json.loads(encoded), encoded


def build_row(pending: PendingRecord, record_id: int, prev_hash: str) -> dict[str, Any]:
    """Return the stored fields of a pending record, without `hash`, in column order."""
    record = pending.record
    return {
        "id": record_id,
        "time": pending.time,
        "kind": record.kind,
        "direction": record.direction,
        "session": record.session,
        "client_address": record.client_address,
        "local": record.local,
        "local_display": record.local_display,
        "identity": record.identity,
        "remote": record.remote,
        "room": record.room,
        "text": record.text,
        "html": record.html,
        "charset": record.charset,
        "action": record.action,
        "rule": record.rule,
        "details": pending.details,
        "prev_hash": prev_hash,
    }


def decode_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """Turn a database row in STORED_FIELDS order into an export dict.

    Raises ValueError when the stored details are not valid JSON.
    """
    decoded = dict(zip(STORED_FIELDS, row, strict=True))
    if decoded["details"] is not None:
        decoded["details"] = json.loads(decoded["details"])
    return decoded
