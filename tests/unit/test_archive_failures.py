"""Archive fails closed: a failed commit raises, writes nothing, and the archive recovers.

The tests run as root, so file modes cannot stop a write. They use causes that stop root
too: a write lock held by another SQLite connection, a full tmpfs, and the immutable
attribute (chattr +i). The last two skip when mount or chattr is not permitted here.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from imtegrity_proxy.archive import (
    Archive,
    ArchiveError,
    ArchiveRecord,
    export_records,
    verify_archive,
)

SECRET_TEXT = "wire 5,000,000 to account 0042 before the audit"


def make_record(text: str) -> ArchiveRecord:
    return ArchiveRecord(
        kind="message",
        session="session-1",
        client_address="127.0.0.1:40000",
        local="foobar",
        local_display="Foo Bar",
        direction="outbound",
        remote="somebuddy",
        text=text,
    )


def stored_texts(path: Path) -> list[str | None]:
    return [record["text"] for record in export_records(path)]


@pytest.fixture
def locker(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to archive.db, for the test to take the write lock with."""
    connection = sqlite3.connect(tmp_path / "archive.db", isolation_level=None)
    yield connection
    if connection.in_transaction:
        connection.execute("ROLLBACK")
    connection.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted under tmp_path, so the test can fill it."""
    if shutil.which("mount") is None:
        pytest.skip("mount is not installed")
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], check=False).returncode != 0:
            subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


def fill_filesystem(directory: Path) -> Path:
    """Write a filler file until the filesystem is full, and return its path."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as stream:
        try:
            while True:
                stream.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def set_immutable(paths: list[Path], enabled: bool) -> None:
    flag = "+i" if enabled else "-i"
    for path in paths:
        subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


async def test_locked_database_append_raises(tmp_path: Path, locker: sqlite3.Connection) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path, busy_timeout=0.1) as archive:
        await archive.append(make_record("before"))
        locker.execute("BEGIN IMMEDIATE")

        with pytest.raises(ArchiveError) as caught:
            await archive.append(make_record(SECRET_TEXT))

        assert str(db_path) in str(caught.value)
        assert "locked" in str(caught.value)
        assert SECRET_TEXT not in str(caught.value)
        assert archive.failure_count == 1
        assert archive.commit_count == 1


async def test_locked_database_writes_nothing(tmp_path: Path, locker: sqlite3.Connection) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path, busy_timeout=0.1) as archive:
        await archive.append(make_record("before"))
        locker.execute("BEGIN IMMEDIATE")
        with pytest.raises(ArchiveError):
            await archive.append(make_record(SECRET_TEXT))
        locker.execute("ROLLBACK")

        assert stored_texts(db_path) == ["before"]


async def test_locked_database_fails_whole_batch(
    tmp_path: Path, locker: sqlite3.Connection
) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path, busy_timeout=0.1, max_delay=0.05) as archive:
        locker.execute("BEGIN IMMEDIATE")
        results = await asyncio.gather(
            *(archive.append(make_record(f"m{i}")) for i in range(20)), return_exceptions=True
        )
        locker.execute("ROLLBACK")

        for result in results:
            assert isinstance(result, ArchiveError)
        assert archive.failure_count >= 1
    assert stored_texts(db_path) == []


async def test_locked_database_recovers_after_release(
    tmp_path: Path, locker: sqlite3.Connection
) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path, busy_timeout=0.1) as archive:
        await archive.append(make_record("before"))
        locker.execute("BEGIN IMMEDIATE")
        with pytest.raises(ArchiveError):
            await archive.append(make_record(SECRET_TEXT))
        locker.execute("ROLLBACK")

        record_id = await archive.append(make_record("after"))

    assert record_id == 2
    assert stored_texts(db_path) == ["before", "after"]
    report = verify_archive(db_path)
    assert report.ok
    assert report.records == 2


async def test_commit_failure_logged_without_text(
    tmp_path: Path, locker: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path, busy_timeout=0.1) as archive:
        locker.execute("BEGIN IMMEDIATE")
        with (
            caplog.at_level(logging.ERROR, logger="imtegrity.archive"),
            pytest.raises(ArchiveError),
        ):
            await archive.append(make_record(SECRET_TEXT))
        locker.execute("ROLLBACK")

    errors = [
        record
        for record in caplog.records
        if record.name == "imtegrity.archive" and record.levelno == logging.ERROR
    ]
    assert len(errors) == 1
    assert str(db_path) in errors[0].getMessage()
    assert "locked" in errors[0].getMessage()
    assert SECRET_TEXT not in caplog.text


async def test_check_writable_false_while_locked(
    tmp_path: Path, locker: sqlite3.Connection
) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path, busy_timeout=0.1) as archive:
        locker.execute("BEGIN IMMEDIATE")
        locked = await archive.check_writable()
        locker.execute("ROLLBACK")
        released = await archive.check_writable()

    assert locked is False
    assert released is True


async def test_mid_batch_error_rolls_back_batch(tmp_path: Path) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path) as archive:
        await archive.append(make_record("before"))
    # A stray row with id 3 makes the second insert of the next batch fail.
    with sqlite3.connect(db_path) as connection:
        connection.execute(
            "INSERT INTO records (id, time, kind, session, client_address, local, "
            "local_display, prev_hash, hash) VALUES (3, 't', 'notice', 's', 'a', 'l', 'L', "
            "'p', 'h')"
        )

    async with await Archive.open(db_path, max_delay=0.1) as archive:
        results = await asyncio.gather(
            archive.append(make_record("first of batch")),
            archive.append(make_record("second of batch")),
            return_exceptions=True,
        )

    for result in results:
        assert isinstance(result, ArchiveError)
    assert stored_texts(db_path) == ["before", None]


async def test_damaged_meta_fails_append_keeps_writer(tmp_path: Path) -> None:
    db_path = tmp_path / "archive.db"
    async with await Archive.open(db_path) as archive:
        await archive.append(make_record("before"))
        with sqlite3.connect(db_path) as connection:
            connection.execute("DELETE FROM archive_meta WHERE key = 'head_id'")

        with pytest.raises(ArchiveError, match="head_id"):
            await archive.append(make_record(SECRET_TEXT))
        failures = archive.failure_count
        writable = await archive.check_writable()

    assert failures == 1
    assert writable is True
    assert stored_texts(db_path) == ["before"]


async def test_full_disk_fails_closed_and_recovers(small_tmpfs: Path) -> None:
    db_path = small_tmpfs / "archive.db"
    large_text = SECRET_TEXT * 5000
    async with await Archive.open(db_path, max_delay=0.1) as archive:
        for index in range(3):
            await archive.append(make_record(f"before {index}"))
        filler = fill_filesystem(small_tmpfs)
        # Free 64 KiB: enough for small records, too little for the 240 KB one.
        os.truncate(filler, filler.stat().st_size - 64 * 1024)

        # The small records share the batch of the large one, so they fail with it.
        results = await asyncio.gather(
            archive.append(make_record("small 1")),
            archive.append(make_record(large_text)),
            archive.append(make_record("small 2")),
            return_exceptions=True,
        )
        for result in results:
            assert isinstance(result, ArchiveError)
        assert archive.failure_count == 1
        assert stored_texts(db_path) == ["before 0", "before 1", "before 2"]

        small_id = await archive.append(make_record("small alone"))
        filler.unlink()
        large_id = await archive.append(make_record(large_text))

    assert small_id == 4
    assert large_id == 5
    assert stored_texts(db_path)[3:] == ["small alone", large_text]
    assert verify_archive(db_path).ok


async def test_immutable_files_fail_closed_and_recover(tmp_path: Path) -> None:
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    db_path = tmp_path / "archive.db"
    archive = await Archive.open(db_path)
    await archive.append(make_record("before"))
    files = [db_path, Path(f"{db_path}-wal")]
    try:
        set_immutable(files, True)
    except subprocess.CalledProcessError as exc:
        await archive.close()
        pytest.skip(f"chattr +i is not permitted here: {exc.stderr.strip()}")
    try:
        with pytest.raises(ArchiveError) as caught:
            await archive.append(make_record(SECRET_TEXT))
        failures = archive.failure_count
    finally:
        set_immutable(files, False)
    record_id = await archive.append(make_record("after"))
    await archive.close()

    assert str(db_path) in str(caught.value)
    assert failures == 1
    assert record_id == 2
    assert stored_texts(db_path) == ["before", "after"]
    assert verify_archive(db_path).ok
