"""export_records: time, user and remote filters, order and JSON Lines output."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from imtegrity_proxy.archive import (
    Archive,
    ArchiveError,
    ArchiveRecord,
    export_records,
    format_json_line,
)

# (local, local_display, remote) of each record, appended in this order as ids 1 to 5.
PARTIES = [
    ("foobar", "Foo Bar", "somebuddy"),
    ("foobar", "Foo Bar", "otherbuddy"),
    ("alice", "Alice", "somebuddy"),
    ("foobar", "Foo Bar", "somebuddy"),
    ("alice", "Alice", None),
]


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@pytest.fixture
async def archive_path(tmp_path: Path) -> Path:
    path = tmp_path / "archive.db"
    async with await Archive.open(path) as archive:
        for index, (local, display, remote) in enumerate(PARTIES, start=1):
            record = ArchiveRecord(
                kind="message" if remote else "signon",
                session=f"s{index}",
                client_address="127.0.0.1:40000",
                local=local,
                local_display=display,
                remote=remote,
                text=f"text {index} — ünïcödé",
            )
            await archive.append(record)
    return path


@pytest.fixture
def times(archive_path: Path) -> list[datetime]:
    return [parse_time(record["time"]) for record in export_records(archive_path)]


def exported_ids(path: Path, **filters: object) -> list[int]:
    return [record["id"] for record in export_records(path, **filters)]


def test_export_all_in_id_order(archive_path: Path) -> None:
    assert exported_ids(archive_path) == [1, 2, 3, 4, 5]


def test_times_strictly_increase(times: list[datetime]) -> None:
    for earlier, later in itertools.pairwise(times):
        assert earlier < later


def test_since_is_inclusive(archive_path: Path, times: list[datetime]) -> None:
    assert exported_ids(archive_path, since=times[1]) == [2, 3, 4, 5]


def test_until_is_exclusive(archive_path: Path, times: list[datetime]) -> None:
    assert exported_ids(archive_path, until=times[2]) == [1, 2]


def test_since_and_until(archive_path: Path, times: list[datetime]) -> None:
    assert exported_ids(archive_path, since=times[1], until=times[3]) == [2, 3]


def test_since_in_other_timezone(archive_path: Path, times: list[datetime]) -> None:
    plus_two = timezone(timedelta(hours=2))

    assert exported_ids(archive_path, since=times[3].astimezone(plus_two)) == [4, 5]


def test_naive_since_taken_as_utc(archive_path: Path, times: list[datetime]) -> None:
    assert exported_ids(archive_path, since=times[3].replace(tzinfo=None)) == [4, 5]


def test_since_after_last_record_is_empty(archive_path: Path, times: list[datetime]) -> None:
    assert exported_ids(archive_path, since=times[-1] + timedelta(microseconds=1)) == []


def test_user_filter_normalises_name(archive_path: Path) -> None:
    assert exported_ids(archive_path, user="Foo Bar") == [1, 2, 4]


def test_user_filter_exact_normal_form(archive_path: Path) -> None:
    assert exported_ids(archive_path, user="alice") == [3, 5]


def test_remote_filter_normalises_name(archive_path: Path) -> None:
    assert exported_ids(archive_path, remote="Some Buddy") == [1, 3, 4]


def test_user_and_remote_combined(archive_path: Path) -> None:
    assert exported_ids(archive_path, user="FOOBAR", remote="somebuddy") == [1, 4]


def test_unknown_user_is_empty(archive_path: Path) -> None:
    assert exported_ids(archive_path, user="Nobody Here") == []


def test_all_filters_combined(archive_path: Path, times: list[datetime]) -> None:
    ids = exported_ids(
        archive_path, since=times[1], until=times[4], user="Foo Bar", remote="Some Buddy"
    )

    assert ids == [4]


def test_json_line_round_trip(archive_path: Path) -> None:
    record = next(export_records(archive_path))

    line = format_json_line(record)

    assert line.endswith("\n")
    assert line.count("\n") == 1
    assert json.loads(line) == record
    assert "ünïcödé" in line


def test_json_line_escapes_newlines_in_text() -> None:
    line = format_json_line({"id": 1, "text": "two\nlines"})

    assert line.count("\n") == 1
    assert json.loads(line)["text"] == "two\nlines"


def test_export_missing_file_raises_at_call(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"

    with pytest.raises(ArchiveError) as caught:
        export_records(path)

    assert str(path) in str(caught.value)
