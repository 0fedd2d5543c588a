"""verify_archive: hash chain format and detection of edits, deletions and reordering."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from imtegrity_proxy.archive import (
    Archive,
    ArchiveError,
    ArchiveRecord,
    export_records,
    verify_archive,
)

CONTENT_COLUMNS = (
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
)


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
        details={"seq": text},
    )


@pytest.fixture
async def archive_path(tmp_path: Path) -> Path:
    """An archive with five records, ids 1 to 5, and its writer closed."""
    path = tmp_path / "archive.db"
    async with await Archive.open(path) as archive:
        for index in range(1, 6):
            await archive.append(make_record(f"message {index} ✓"))
    return path


def execute(path: Path, statement: str, *parameters: object) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(statement, parameters)


def swap_rows(path: Path, first: int, second: int, columns: tuple[str, ...]) -> None:
    """Swap the given columns of two rows, keeping each row's id."""
    with sqlite3.connect(path) as connection:
        select = f"SELECT {', '.join(columns)} FROM records WHERE id = ?"  # noqa: S608
        first_values = connection.execute(select, (first,)).fetchone()
        second_values = connection.execute(select, (second,)).fetchone()
        update = f"UPDATE records SET {', '.join(c + ' = ?' for c in columns)} WHERE id = ?"  # noqa: S608
        connection.execute(update, (*second_values, first))
        connection.execute(update, (*first_values, second))


def test_intact_archive_verifies(archive_path: Path) -> None:
    report = verify_archive(archive_path)

    assert report.ok
    assert report.records == 5
    assert report.first_bad_id is None
    assert report.reason is None


async def test_empty_archive_verifies(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    async with await Archive.open(path):
        pass

    report = verify_archive(path)
    assert report.ok
    assert report.records == 0


def test_first_prev_hash_is_all_zero(archive_path: Path) -> None:
    first = next(export_records(archive_path))

    assert first["prev_hash"] == "0" * 64


def test_hash_recomputable_from_export(archive_path: Path) -> None:
    previous_hash = "0" * 64
    for record in export_records(archive_path):
        content = {key: value for key, value in record.items() if key != "hash"}
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert record["prev_hash"] == previous_hash, record["id"]
        assert hashlib.sha256(encoded.encode("utf-8")).hexdigest() == record["hash"], record["id"]
        previous_hash = record["hash"]


def test_edited_text_detected(archive_path: Path) -> None:
    execute(archive_path, "UPDATE records SET text = 'nothing to see' WHERE id = 3")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 3
    assert report.records == 2
    assert "edited" in report.reason


def test_edited_time_detected(archive_path: Path) -> None:
    execute(archive_path, "UPDATE records SET time = '2000-01-01T00:00:00.000000Z' WHERE id = 4")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 4


def test_unparsable_details_detected(archive_path: Path) -> None:
    execute(archive_path, "UPDATE records SET details = '{broken' WHERE id = 2")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 2
    assert "details" in report.reason


def test_deleted_middle_record_detected(archive_path: Path) -> None:
    execute(archive_path, "DELETE FROM records WHERE id = 3")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 3
    assert report.records == 2
    assert "missing" in report.reason


def test_deleted_first_record_detected(archive_path: Path) -> None:
    execute(archive_path, "DELETE FROM records WHERE id = 1")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 1


def test_deleted_last_record_detected(archive_path: Path) -> None:
    execute(archive_path, "DELETE FROM records WHERE id = 5")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 5
    assert "at the end" in report.reason


def test_deleted_all_records_detected(archive_path: Path) -> None:
    execute(archive_path, "DELETE FROM records")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 1


def test_renumbered_ids_after_deletion_detected(archive_path: Path) -> None:
    execute(archive_path, "DELETE FROM records WHERE id = 3")
    execute(archive_path, "UPDATE records SET id = id - 1 WHERE id > 3")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 3


def test_rehashed_renumbering_detected(archive_path: Path) -> None:
    """Deleting record 3 and rebuilding ids and hashes after it still breaks prev_hash."""
    records = [record for record in export_records(archive_path) if record["id"] != 3]
    for record in records[2:]:
        record["id"] -= 1
        content = {key: value for key, value in record.items() if key != "hash"}
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        record["hash"] = hashlib.sha256(encoded.encode("utf-8")).hexdigest()
    with sqlite3.connect(archive_path) as connection:
        connection.execute("DELETE FROM records WHERE id >= 3")
        for record in records[2:]:
            connection.execute(
                "INSERT INTO records (id, time, kind, session, client_address, local, "
                "local_display, direction, remote, text, details, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record["id"],
                    record["time"],
                    record["kind"],
                    record["session"],
                    record["client_address"],
                    record["local"],
                    record["local_display"],
                    record["direction"],
                    record["remote"],
                    record["text"],
                    json.dumps(record["details"]),
                    record["prev_hash"],
                    record["hash"],
                ),
            )
        head = records[-1]
        connection.execute(
            "UPDATE archive_meta SET value = ? WHERE key = 'head_id'", (str(head["id"]),)
        )
        connection.execute(
            "UPDATE archive_meta SET value = ? WHERE key = 'head_hash'", (head["hash"],)
        )
        connection.execute("UPDATE archive_meta SET value = '4' WHERE key = 'record_count'")

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 3
    assert "prev_hash" in report.reason


def test_swapped_rows_detected(archive_path: Path) -> None:
    swap_rows(archive_path, 2, 4, (*CONTENT_COLUMNS, "prev_hash", "hash"))

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 2
    assert "moved" in report.reason


def test_swapped_contents_keeping_hashes_detected(archive_path: Path) -> None:
    swap_rows(archive_path, 2, 4, CONTENT_COLUMNS)

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 2


def test_forged_record_after_head_detected(archive_path: Path) -> None:
    last = list(export_records(archive_path))[-1]
    forged = dict(last, id=6, prev_hash=last["hash"], text="forged")
    forged["details"] = json.dumps(forged["details"])
    columns = ", ".join(forged)
    placeholders = ", ".join("?" * len(forged))
    execute(
        archive_path,
        f"INSERT INTO records ({columns}) VALUES ({placeholders})",  # noqa: S608
        *forged.values(),
    )

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 6


def test_tampered_head_hash_detected(archive_path: Path) -> None:
    execute(archive_path, "UPDATE archive_meta SET value = ? WHERE key = 'head_hash'", "f" * 64)

    report = verify_archive(archive_path)
    assert not report.ok
    assert report.first_bad_id == 5


def test_missing_head_detected(archive_path: Path) -> None:
    execute(archive_path, "DELETE FROM archive_meta WHERE key = 'head_id'")

    report = verify_archive(archive_path)
    assert not report.ok
    assert "archive_meta" in report.reason


def test_verify_leaves_file_unchanged(archive_path: Path) -> None:
    before = archive_path.read_bytes()

    verify_archive(archive_path)

    assert archive_path.read_bytes() == before


def test_verify_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"

    with pytest.raises(ArchiveError) as caught:
        verify_archive(path)

    assert str(path) in str(caught.value)
    assert not path.exists()


def test_verify_non_archive_database_rejected(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    execute(path, "CREATE TABLE unrelated (x INTEGER)")

    with pytest.raises(ArchiveError, match="archive_meta"):
        verify_archive(path)


def rechain_from(path: Path, first_id: int, new_text: str) -> None:
    """Edit one record and rebuild every hash after it, as someone with write access could."""
    records = list(export_records(path))
    records[first_id - 1]["text"] = new_text
    previous = records[first_id - 2]["hash"] if first_id > 1 else "0" * 64
    with sqlite3.connect(path) as connection:
        for record in records[first_id - 1 :]:
            record["prev_hash"] = previous
            content = {key: value for key, value in record.items() if key != "hash"}
            encoded = json.dumps(
                content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            )
            record["hash"] = hashlib.sha256(encoded.encode("utf-8")).hexdigest()
            previous = record["hash"]
            connection.execute(
                "UPDATE records SET text = ?, prev_hash = ?, hash = ? WHERE id = ?",
                (record["text"], record["prev_hash"], record["hash"], record["id"]),
            )
        connection.execute(
            "UPDATE archive_meta SET value = ? WHERE key = 'head_hash'", (previous,)
        )


def test_rebuilt_chain_caught_by_anchor(archive_path: Path) -> None:
    anchor = verify_archive(archive_path).head_hash
    rechain_from(archive_path, 2, "rewritten history")

    # The chain alone cannot show a full rebuild; the hash kept outside can.
    assert verify_archive(archive_path).ok
    report = verify_archive(archive_path, anchor=anchor)
    assert not report.ok
    assert "anchored head hash" in report.reason


def test_anchor_from_earlier_head_still_found(archive_path: Path) -> None:
    report = verify_archive(archive_path)
    assert verify_archive(archive_path, anchor=report.head_hash).ok
