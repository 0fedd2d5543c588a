"""Offline check of the archive's hash chain, usable without asyncio."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .chain import GENESIS_HASH, record_hash
from .record import ArchiveError, decode_row
from .schema import SELECT_RECORDS, connect_readonly, read_head


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Result of verify_archive.

    `records` is the number of records that verified before the first bad one, or all of
    them when `ok` is true. `first_bad_id` is the id of the first edited, missing or
    moved record, and `reason` explains what does not match.
    """

    ok: bool
    records: int
    first_bad_id: int | None
    reason: str | None
    head_hash: str | None = None


@dataclass(slots=True)
class _ChainState:
    count: int = 0
    last_id: int = 0
    last_hash: str = GENESIS_HASH
    anchor: str | None = None
    anchor_found: bool = False


class _ChainBroken(Exception):
    def __init__(self, record_id: int, reason: str) -> None:
        super().__init__(reason)
        self.record_id = record_id
        self.reason = reason


def verify_archive(path: str | os.PathLike[str], anchor: str | None = None) -> VerifyReport:
    """Recompute the hash chain of the archive at `path` and compare it with archive_meta.

    Detects a record that was edited (hash mismatch), deleted (gap in ids or prev_hash
    mismatch), inserted or moved (prev_hash mismatch). The chain alone cannot show that
    the last records were deleted, because the rest of the chain stays intact. The head
    id, head hash and record count in archive_meta, committed with every batch, catch
    that case. Someone who can rewrite both the records and archive_meta can still
    rebuild a consistent chain, so the head must also be copied outside the database
    for full tamper evidence.

    ``anchor`` is a head hash reported by an earlier verify and kept outside the
    database (on WORM storage, say): the chain must still contain a record with that
    hash, so a chain rebuilt from an earlier record on is reported.

    Opens the database read-only and reads one snapshot. Raises ArchiveError when the
    file cannot be read as an archive.
    """
    connection = connect_readonly(path)
    try:
        # One read transaction, so records and archive_meta come from the same snapshot.
        connection.execute("BEGIN")
        state = _ChainState(anchor=anchor)
        try:
            _walk_chain(connection.execute(SELECT_RECORDS + " ORDER BY id"), state)
            _check_head(connection, state)
            _check_anchor(state)
        except _ChainBroken as broken:
            return VerifyReport(False, state.count, broken.record_id, broken.reason)
        return VerifyReport(True, state.count, None, None, state.last_hash)
    finally:
        connection.close()


def _walk_chain(rows: Iterable[tuple[Any, ...]], state: _ChainState) -> None:
    for row in rows:
        record_id = row[0]
        _check_link(record_id, row, state)
        state.count += 1
        state.last_id = record_id
        state.last_hash = row[-1]
        if state.last_hash == state.anchor:
            state.anchor_found = True


def _check_link(record_id: int, row: tuple[Any, ...], state: _ChainState) -> None:
    expected_id = state.last_id + 1
    if record_id != expected_id:
        raise _ChainBroken(
            expected_id,
            f"records {expected_id} to {record_id - 1} are missing: "
            f"id {record_id} follows id {state.last_id}",
        )
    try:
        decoded = decode_row(row)
    # Stored details that no longer parse were edited after the hash was computed.
    except ValueError:
        raise _ChainBroken(record_id, "details column is not valid JSON") from None
    if decoded["prev_hash"] != state.last_hash:
        raise _ChainBroken(
            record_id,
            f"prev_hash does not match the hash of record {state.last_id}: "
            "a record was deleted, inserted or moved here",
        )
    if record_hash(decoded) != decoded["hash"]:
        raise _ChainBroken(record_id, "hash does not match the record's fields: it was edited")


def _check_anchor(state: _ChainState) -> None:
    if state.anchor is not None and not state.anchor_found and state.anchor != GENESIS_HASH:
        raise _ChainBroken(
            state.last_id,
            "no record has the anchored head hash: the chain was rewritten or truncated",
        )


def _check_head(connection: sqlite3.Connection, state: _ChainState) -> None:
    try:
        head_id, head_hash, head_count = read_head(connection)
    # A missing or non-numeric head entry means archive_meta itself was altered.
    except ArchiveError as exc:
        raise _ChainBroken(state.last_id + 1, str(exc)) from None
    if head_id > state.last_id:
        raise _ChainBroken(
            state.last_id + 1,
            f"records {state.last_id + 1} to {head_id} are missing at the end: "
            f"archive_meta head is id {head_id}",
        )
    if head_id < state.last_id:
        raise _ChainBroken(
            head_id + 1,
            f"records after id {head_id} are not covered by the archive_meta head",
        )
    if head_hash != state.last_hash or head_count != state.count:
        raise _ChainBroken(
            state.last_id,
            "hash or count of the last record does not match the archive_meta head",
        )
