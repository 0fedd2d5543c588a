"""SQLite schema, connections and the `archive_meta` table of the archive database."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .chain import GENESIS_HASH
from .record import STORED_FIELDS, ArchiveError

SCHEMA_VERSION = 1

_CREATE_STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS archive_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        kind TEXT NOT NULL,
        direction TEXT,
        session TEXT NOT NULL,
        client_address TEXT NOT NULL,
        local TEXT NOT NULL,
        local_display TEXT NOT NULL,
        identity TEXT,
        remote TEXT,
        room TEXT,
        text TEXT,
        html TEXT,
        charset TEXT,
        action TEXT,
        rule TEXT,
        details TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS records_time ON records (time)",
    "CREATE INDEX IF NOT EXISTS records_local ON records (local)",
    "CREATE INDEX IF NOT EXISTS records_remote ON records (remote)",
)

# Built from the constant STORED_FIELDS. Record values are always bound as parameters.
_COLUMNS = ", ".join(STORED_FIELDS)
_PLACEHOLDERS = ", ".join("?" * len(STORED_FIELDS))
INSERT_RECORD = f"INSERT INTO records ({_COLUMNS}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
SELECT_RECORDS = f"SELECT {_COLUMNS} FROM records"  # noqa: S608


def connect_writable(path: str | os.PathLike[str], busy_timeout: float) -> sqlite3.Connection:
    """Open or create the archive database for writing, in WAL mode with synchronous=FULL.

    The parent directory must exist. Raises ArchiveError naming the path when the file
    cannot be opened, is not a database, cannot use WAL or has a newer schema version.
    """
    try:
        connection = sqlite3.connect(os.fspath(path), timeout=busy_timeout, isolation_level=None)
    # sqlite3 reports a missing directory or a permission problem as "unable to open".
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot open archive database {os.fspath(path)}: {exc}") from exc
    try:
        _configure(connection, path)
        _create_schema(connection, path)
    except sqlite3.Error as exc:
        connection.close()
        raise ArchiveError(f"cannot open archive database {os.fspath(path)}: {exc}") from exc
    except ArchiveError:
        connection.close()
        raise
    return connection


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open an existing archive database read-only (`mode=ro` URI), for verify and export.

    Raises ArchiveError naming the path when it is missing or is not an archive database.
    """
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, isolation_level=None)
    # A missing file fails here, because mode=ro never creates one.
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot read archive database {os.fspath(path)}: {exc}") from exc
    try:
        version = read_meta(connection).get("schema_version")
    # A file that is not SQLite, or a database without archive_meta, fails here.
    except sqlite3.Error as exc:
        connection.close()
        raise ArchiveError(f"cannot read archive database {os.fspath(path)}: {exc}") from exc
    if version is None or not version.isdigit() or int(version) > SCHEMA_VERSION:
        connection.close()
        raise ArchiveError(
            f"archive database {os.fspath(path)} has schema version {version}, "
            f"expected at most {SCHEMA_VERSION}"
        )
    return connection


def read_meta(connection: sqlite3.Connection) -> dict[str, str]:
    """Return every key and value of the `archive_meta` table."""
    return dict(connection.execute("SELECT key, value FROM archive_meta").fetchall())


def read_head(connection: sqlite3.Connection) -> tuple[int, str, int]:
    """Return the chain head stored in `archive_meta`: last id, last hash, record count.

    Raises ArchiveError when an entry is missing or not a number.
    """
    meta = read_meta(connection)
    try:
        return int(meta["head_id"]), meta["head_hash"], int(meta["record_count"])
    # Only an edit from outside the archive can remove or garble these entries.
    except (KeyError, ValueError) as exc:
        raise ArchiveError(
            f"archive_meta has no valid chain head ({type(exc).__name__}: {exc})"
        ) from None


def write_head(connection: sqlite3.Connection, head_id: int, head_hash: str, count: int) -> None:
    """Store the chain head in `archive_meta`. The caller commits it with the records."""
    connection.executemany(
        "UPDATE archive_meta SET value = ? WHERE key = ?",
        [(str(head_id), "head_id"), (head_hash, "head_hash"), (str(count), "record_count")],
    )


def _configure(connection: sqlite3.Connection, path: str | os.PathLike[str]) -> None:
    mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise ArchiveError(
            f"cannot open archive database {os.fspath(path)}: journal mode is {mode}, "
            "WAL is required"
        )
    # In WAL mode, FULL syncs the WAL at every commit, so a committed record survives a
    # power loss as long as the disk honours fsync.
    connection.execute("PRAGMA synchronous=FULL")


def _create_schema(connection: sqlite3.Connection, path: str | os.PathLike[str]) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        for statement in _CREATE_STATEMENTS:
            connection.execute(statement)
        _initialise_meta(connection, path)
        connection.execute("COMMIT")
    # Roll back on any error, then let it propagate unchanged.
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _initialise_meta(connection: sqlite3.Connection, path: str | os.PathLike[str]) -> None:
    meta = read_meta(connection)
    version = int(meta.get("schema_version", SCHEMA_VERSION))
    if version > SCHEMA_VERSION:
        raise ArchiveError(
            f"archive database {os.fspath(path)} has schema version {version}, "
            f"this proxy supports at most {SCHEMA_VERSION}"
        )
    defaults = {
        "schema_version": str(SCHEMA_VERSION),
        "head_id": "0",
        "head_hash": GENESIS_HASH,
        "record_count": "0",
    }
    connection.executemany(
        "INSERT OR IGNORE INTO archive_meta (key, value) VALUES (?, ?)", defaults.items()
    )
