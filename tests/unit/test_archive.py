"""Archive: round trip, ids, group commit, validation, open and close."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from imtegrity_proxy.archive import (
    Archive,
    ArchiveError,
    ArchiveRecord,
    export_records,
    verify_archive,
)

TIME_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def make_record(**overrides: object) -> ArchiveRecord:
    fields: dict[str, object] = {
        "kind": "message",
        "session": "session-1",
        "client_address": "127.0.0.1:40000",
        "local": "foobar",
        "local_display": "Foo Bar",
        "direction": "outbound",
        "remote": "somebuddy",
        "text": "hello",
        "charset": "ascii",
        "action": "delivered",
    }
    fields.update(overrides)
    return ArchiveRecord(**fields)  # type: ignore[arg-type]


def count_rows(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT COUNT(*) FROM records").fetchone()[0]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "archive.db"


async def test_round_trip_every_field(db_path: Path) -> None:
    record = ArchiveRecord(
        kind="rendezvous",
        session="7f3a",
        client_address="127.0.0.1:5190",
        local="иванпетров",
        local_display="Иван Петров",
        direction="inbound",
        identity="Иван Петров (Trading Desk)",
        remote="buddy🎉",
        room="комната 1",
        text="Привет, мир 🎉🚀",
        html="<HTML><BODY>Привет, <B>мир</B> 🎉🚀</BODY></HTML>",
        charset="ucs-2",
        action="flagged",
        rule="keyword-привет",
        details={"file_name": "отчёт 📄.pdf", "file_size": 1048576, "nested": {"ok": True}},
    )
    before = datetime.now(UTC)
    async with await Archive.open(db_path) as archive:
        record_id = await archive.append(record)
    after = datetime.now(UTC)

    [exported] = list(export_records(db_path))
    assert exported["id"] == record_id
    for name in ArchiveRecord.__slots__:
        assert exported[name] == getattr(record, name), name
    assert TIME_FORMAT.match(exported["time"])
    stored_time = datetime.strptime(exported["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert before <= stored_time.replace(tzinfo=UTC) <= after


async def test_round_trip_optional_fields_none(db_path: Path) -> None:
    record = ArchiveRecord(
        kind="signoff",
        session="s2",
        client_address="[::1]:6000",
        local="foo",
        local_display="Foo",
    )
    async with await Archive.open(db_path) as archive:
        await archive.append(record)

    [exported] = list(export_records(db_path))
    for name in ("direction", "identity", "remote", "room", "text", "html"):
        assert exported[name] is None, name
    for name in ("charset", "action", "rule", "details"):
        assert exported[name] is None, name


async def test_export_has_every_stored_field_in_order(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        await archive.append(make_record())

    [exported] = list(export_records(db_path))
    assert list(exported) == [
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
    ]


async def test_sequential_ids_increase(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        ids = [await archive.append(make_record(text=f"m{i}")) for i in range(5)]

    assert ids == [1, 2, 3, 4, 5]


async def test_one_row_per_append(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        ids = [await archive.append(make_record(text=f"m{i}")) for i in range(7)]

    assert count_rows(db_path) == 7
    assert [row["id"] for row in export_records(db_path)] == ids
    assert [row["text"] for row in export_records(db_path)] == [f"m{i}" for i in range(7)]


async def test_concurrent_appends_group_commit(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        ids = await asyncio.gather(*(archive.append(make_record(text=str(i))) for i in range(500)))
        commits = archive.commit_count

    assert len(set(ids)) == 500
    assert sorted(ids) == list(range(1, 501))
    assert commits < 50
    assert count_rows(db_path) == 500


async def test_concurrent_ids_match_stored_text(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        ids = await asyncio.gather(*(archive.append(make_record(text=str(i))) for i in range(200)))

    stored = {row["id"]: row["text"] for row in export_records(db_path)}
    for index, record_id in enumerate(ids):
        assert stored[record_id] == str(index), record_id


async def test_concurrent_chain_verifies(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        await asyncio.gather(*(archive.append(make_record(text=str(i))) for i in range(300)))

    report = verify_archive(db_path)
    assert report.ok
    assert report.records == 300


async def test_max_batch_limits_transaction_size(db_path: Path) -> None:
    async with await Archive.open(db_path, max_batch=10, max_delay=0.05) as archive:
        await asyncio.gather(*(archive.append(make_record()) for _ in range(100)))
        commits = archive.commit_count

    assert commits >= 10


async def test_stats_after_commit(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        assert archive.commit_count == 0
        assert archive.last_commit_seconds == 0.0
        await archive.append(make_record())
        assert archive.commit_count == 1
        assert archive.failure_count == 0
        assert archive.last_commit_seconds > 0.0


async def test_reopen_continues_chain(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        first = [await archive.append(make_record()) for _ in range(3)]
    async with await Archive.open(db_path) as archive:
        second = [await archive.append(make_record()) for _ in range(2)]

    assert first == [1, 2, 3]
    assert second == [4, 5]
    assert verify_archive(db_path).ok


async def test_database_uses_wal_and_schema_version(db_path: Path) -> None:
    async with await Archive.open(db_path):
        pass

    with sqlite3.connect(db_path) as connection:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        meta = dict(connection.execute("SELECT key, value FROM archive_meta"))
    assert mode == "wal"
    assert meta["schema_version"] == "1"


async def test_close_commits_queued_appends(db_path: Path) -> None:
    archive = await Archive.open(db_path, max_delay=0.05)
    tasks = [asyncio.create_task(archive.append(make_record())) for _ in range(20)]
    await asyncio.sleep(0)
    await archive.close()

    ids = [await task for task in tasks]
    assert sorted(ids) == list(range(1, 21))
    assert count_rows(db_path) == 20


async def test_cancelled_append_keeps_writer(db_path: Path) -> None:
    async with await Archive.open(db_path, max_delay=0.05) as archive:
        cancelled = asyncio.create_task(archive.append(make_record(text="cancelled")))
        await asyncio.sleep(0)
        cancelled.cancel()
        record_id = await archive.append(make_record(text="after"))

    assert cancelled.cancelled()
    assert record_id in (1, 2)
    assert [row["text"] for row in export_records(db_path)][-1] == "after"
    assert verify_archive(db_path).ok


async def test_append_after_close_raises(db_path: Path) -> None:
    archive = await Archive.open(db_path)
    await archive.close()

    with pytest.raises(ArchiveError, match="closed"):
        await archive.append(make_record())


async def test_close_twice_is_harmless(db_path: Path) -> None:
    archive = await Archive.open(db_path)
    await archive.close()
    await archive.close()

    assert not await archive.check_writable()


async def test_check_writable_on_healthy_archive(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        assert await archive.check_writable()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "typing"}, "kind"),
        ({"direction": "sideways"}, "direction"),
        ({"charset": "koi8-r"}, "charset"),
        ({"action": "ignored"}, "action"),
        ({"session": None}, "session"),
        ({"text": 42}, "text"),
        ({"text": "bad \ud800 surrogate"}, "text"),
        ({"details": {"size": float("nan")}}, "details"),
        ({"details": {"when": datetime.now(UTC)}}, "details"),
        ({"details": ["not", "a", "dict"]}, "details"),
    ],
)
async def test_invalid_record_rejected(db_path: Path, overrides: dict, message: str) -> None:
    async with await Archive.open(db_path) as archive:
        with pytest.raises(ArchiveError, match=message):
            await archive.append(make_record(**overrides))

    assert count_rows(db_path) == 0


async def test_invalid_record_spares_its_batch(db_path: Path) -> None:
    async with await Archive.open(db_path, max_delay=0.05) as archive:
        results = await asyncio.gather(
            archive.append(make_record(text="good 1")),
            archive.append(make_record(kind="bogus")),
            archive.append(make_record(text="good 2")),
            return_exceptions=True,
        )

    assert results[0] == 1
    assert isinstance(results[1], ArchiveError)
    assert results[2] == 2
    assert count_rows(db_path) == 2


async def test_details_tuple_stored_as_list(db_path: Path) -> None:
    async with await Archive.open(db_path) as archive:
        await archive.append(make_record(details={"parts": (1, 2), "ports": {5190: "oscar"}}))

    [exported] = list(export_records(db_path))
    assert exported["details"] == {"parts": [1, 2], "ports": {"5190": "oscar"}}
    assert verify_archive(db_path).ok


async def test_open_missing_directory_names_path(tmp_path: Path) -> None:
    path = tmp_path / "no-such-dir" / "archive.db"

    with pytest.raises(ArchiveError) as caught:
        await Archive.open(path)

    assert str(path) in str(caught.value)
    assert not path.parent.exists()


async def test_open_non_database_names_path(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database file" * 200)

    with pytest.raises(ArchiveError) as caught:
        await Archive.open(path)

    assert str(path) in str(caught.value)


async def test_open_newer_schema_rejected(db_path: Path) -> None:
    async with await Archive.open(db_path):
        pass
    with sqlite3.connect(db_path) as connection:
        connection.execute("UPDATE archive_meta SET value = '99' WHERE key = 'schema_version'")

    with pytest.raises(ArchiveError, match="schema version 99"):
        await Archive.open(db_path)


@pytest.mark.parametrize(
    "settings",
    [{"max_batch": 0}, {"max_delay": -1.0}, {"busy_timeout": -0.5}],
)
async def test_open_invalid_settings(db_path: Path, settings: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(settings))):
        await Archive.open(db_path, **settings)
