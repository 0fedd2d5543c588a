"""Read-only export of archived records as dicts or JSON Lines, usable without asyncio."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .record import ArchiveError, decode_row, format_time, normalize_screen_name
from .schema import SELECT_RECORDS, connect_readonly


def export_records(
    path: str | os.PathLike[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    user: str | None = None,
    remote: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Return an iterator over the stored records in id order, each as a dict.

    `since` is inclusive and `until` exclusive. A naive datetime is taken as UTC. `user`
    matches the `local` field and `remote` the `remote` field, after both are normalised
    (lower case, spaces removed). The database is opened read-only now, so a missing file
    raises ArchiveError here, and it is closed when the iterator is exhausted or closed.
    """
    query, parameters = _build_query(since, until, user, remote)
    connection = connect_readonly(path)
    return _iterate(connection, query, parameters, os.fspath(path))


def format_json_line(record: dict[str, Any]) -> str:
    """Serialise one exported record as a JSON Lines line, newline included."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def _build_query(
    since: datetime | None,
    until: datetime | None,
    user: str | None,
    remote: str | None,
) -> tuple[str, list[str]]:
    conditions: list[str] = []
    parameters: list[str] = []
    # Times are stored at fixed width in UTC, so comparing the strings compares the times.
    if since is not None:
        conditions.append("time >= ?")
        parameters.append(format_time(since))
    if until is not None:
        conditions.append("time < ?")
        parameters.append(format_time(until))
    if user is not None:
        conditions.append("local = ?")
        parameters.append(normalize_screen_name(user))
    if remote is not None:
        conditions.append("remote = ?")
        parameters.append(normalize_screen_name(remote))
    where = " WHERE " + " AND ".join(conditions) if conditions else ""
    return SELECT_RECORDS + where + " ORDER BY id", parameters


def _iterate(
    connection: sqlite3.Connection, query: str, parameters: list[str], path: str
) -> Iterator[dict[str, Any]]:
    try:
        # One read transaction, so a long export reads one consistent snapshot.
        connection.execute("BEGIN")
        for row in connection.execute(query, parameters):
            yield _decode(row, path)
    finally:
        connection.close()


def _decode(row: tuple[Any, ...], path: str) -> dict[str, Any]:
    try:
        return decode_row(row)
    # Only an edit after the commit can leave details that do not parse.
    except ValueError:
        raise ArchiveError(
            f"archive {path}: record {row[0]} has details that are not valid JSON; "
            "run verify_archive"
        ) from None
