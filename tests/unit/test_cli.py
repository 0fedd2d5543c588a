"""Tests for the imtegrity-proxy command line (imtegrity_proxy.cli)."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import sqlite3
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy import cli
from imtegrity_proxy.config import Config

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "examples" / "proxy-config.yaml"
ENTRY_POINT = Path(sys.executable).parent / "imtegrity-proxy"

UTC = datetime.UTC


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo the handler that ``serve`` installs on the root logger."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---- config check ----------------------------------------------------------------------


def test_config_check_example(capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["config", "check", str(EXAMPLE)])
    output = capsys.readouterr().out.splitlines()
    assert status == 0
    assert output[0] == f"{EXAMPLE}: valid"
    assert "  listen: 0.0.0.0 ports 5190, 443" in output
    assert "  upstream: login.oscar.aol.com:5190, login.messaging.aol.com:5190" in output
    assert "  archive: /var/lib/imtegrity/archive.sqlite3" in output
    assert "  socks: none (direct connections)" in output


def test_config_check_lists_each_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path / "bad.yaml",
        "listen: {ports: [0]}\nupstream: {servers: ['x']}\nbogus: 1\n",
    )
    status = cli.main(["config", "check", str(path)])
    captured = capsys.readouterr()
    errors = captured.err.splitlines()
    assert status == 2
    assert captured.out == ""
    assert errors[0] == f"{path}: invalid"
    assert "  listen.ports[0]: Input should be greater than or equal to 1" in errors
    assert any(line.startswith("  upstream.servers[0]: invalid host:port 'x'") for line in errors)
    assert "  bogus: unknown field" in errors


def test_config_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["config", "check", str(tmp_path / "absent.yaml")])
    assert status == 2
    assert "failed to read config file" in capsys.readouterr().err


def test_config_check_hides_socks_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password_file = write(tmp_path / "password", "do-not-print-77\n")
    path = write(
        tmp_path / "socks.yaml",
        "upstream:\n"
        "  socks:\n"
        "    proxies:\n"
        "      - {version: 5, host: 127.0.0.1, port: 1080, username: socksuser,\n"
        f"         password_file: {password_file}}}\n"
        "      - {version: 4, host: 127.0.0.1, port: 1081}\n",
    )
    status = cli.main(["config", "check", str(path)])
    output = capsys.readouterr().out
    assert status == 0
    assert "  socks: socks5 127.0.0.1:1080 with authentication, socks4a 127.0.0.1:1081" in output
    assert "do-not-print-77" not in output
    assert "socksuser" not in output


def test_config_check_subprocess() -> None:
    result = subprocess.run(
        [str(ENTRY_POINT), "config", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{EXAMPLE}: valid\n")


def test_config_check_subprocess_invalid(tmp_path: Path) -> None:
    path = write(tmp_path / "http.yaml", "upstream:\n  http_proxy: http://127.0.0.1:3128\n")
    result = subprocess.run(
        [str(ENTRY_POINT), "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "upstream.http_proxy: only SOCKS4 and SOCKS5 proxies are supported" in result.stderr


def test_python_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "imtegrity_proxy", "config", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


# ---- help ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["serve"], ["sets listen.ports: TCP port", "sets health.port: TCP port", "--upstream"]),
        (["archive", "export"], ["RFC 3339", "first time excluded", "--output FILE"]),
        (["archive", "verify"], ["FAILED at record ID", "--archive PATH"]),
        (["config", "check"], ["FILE: valid", "exits 2"]),
    ],
)
def test_help_describes_options(
    command: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([*command, "--help"])
    output = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    for text in expected:
        assert text in output


def test_no_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


# ---- serve -----------------------------------------------------------------------------


@pytest.fixture
def fake_relay(monkeypatch: pytest.MonkeyPatch) -> list[Config]:
    """Replace imtegrity_proxy.relay.app with a module whose run() records its config."""
    received: list[Config] = []

    def run(config: Config, config_path: str | None = None) -> int:
        received.append(config)
        return 0

    module = types.ModuleType("imtegrity_proxy.relay.app")
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imtegrity_proxy.relay.app", module)
    return received


def test_serve_defaults_without_config(fake_relay: list[Config]) -> None:
    status = cli.main(["serve", "--log-level", "error"])
    assert status == 0
    assert len(fake_relay) == 1
    assert fake_relay[0].listen.ports == [5190]
    assert fake_relay[0].logging.level == "error"


def test_serve_flags_override_file(tmp_path: Path, fake_relay: list[Config]) -> None:
    path = write(
        tmp_path / "base.yaml",
        "listen: {host: 127.0.0.1, ports: [5190]}\n"
        "upstream: {servers: ['127.0.0.1:6000'], connect_timeout_seconds: 3}\n"
        "archive: {path: base.sqlite3, max_batch: 8}\n"
        "logging: {format: text, level: error}\n",
    )
    arguments = [
        "serve",
        "--config",
        str(path),
        "--listen-host",
        "::1",
        "--listen-port",
        "5200",
        "--listen-port",
        "5201",
        "--upstream",
        "[::1]:6001",
        "--advertise-host",
        "aim.example.com",
        "--archive",
        str(tmp_path / "flag.sqlite3"),
        "--health-port",
        "9100",
        "--log-format",
        "json",
    ]

    status = cli.main(arguments)

    assert status == 0
    (config,) = fake_relay
    assert config.listen.host == "::1"
    assert config.listen.ports == [5200, 5201]
    assert config.upstream.servers == ["[::1]:6001"]
    assert config.upstream.connect_timeout_seconds == 3
    assert config.advertise.host == "aim.example.com"
    assert config.archive.path == str(tmp_path / "flag.sqlite3")
    assert config.archive.max_batch == 8
    assert config.health.port == 9100
    assert config.logging.format == "json"
    assert config.logging.level == "error"


def test_serve_validates_merged_config(
    tmp_path: Path, fake_relay: list[Config], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "base.yaml", "health: {port: 9000}\n")
    status = cli.main(["serve", "--config", str(path), "--listen-port", "9000"])
    assert status == 2
    assert fake_relay == []
    assert "health.port: 9000 is also in listen.ports" in capsys.readouterr().err


def test_serve_rejects_invalid_flag_value(
    fake_relay: list[Config], capsys: pytest.CaptureFixture[str]
) -> None:
    status = cli.main(["serve", "--upstream", "no-port-here"])
    assert status == 2
    assert fake_relay == []
    assert "upstream.servers[0]: invalid host:port 'no-port-here'" in capsys.readouterr().err


def test_serve_returns_relay_status(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("imtegrity_proxy.relay.app")
    module.run = lambda config, config_path=None: 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imtegrity_proxy.relay.app", module)
    assert cli.main(["serve", "--log-level", "error"]) == 3


# ---- archive export and verify -----------------------------------------------------------


class FakeArchiveError(Exception):
    pass


@pytest.fixture
def fake_archive(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace imtegrity_proxy.archive with a module that records the calls made to it."""
    state: dict[str, Any] = {"records": [], "report": None, "error": None, "calls": []}

    def export_records(path: str, **filters: Any) -> Iterator[dict[str, Any]]:
        state["calls"].append(("export", path, filters))
        if state["error"]:
            raise FakeArchiveError(state["error"])
        return iter(state["records"])

    def format_json_line(record: dict[str, Any]) -> str:
        return json.dumps(record, separators=(",", ":")) + "\n"

    def verify_archive(path: str, anchor: str | None = None) -> Any:
        state["calls"].append(("verify", path))
        if state["error"]:
            raise FakeArchiveError(state["error"])
        return state["report"]

    module = types.ModuleType("imtegrity_proxy.archive")
    module.ArchiveError = FakeArchiveError  # type: ignore[attr-defined]
    module.export_records = export_records  # type: ignore[attr-defined]
    module.format_json_line = format_json_line  # type: ignore[attr-defined]
    module.verify_archive = verify_archive  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imtegrity_proxy.archive", module)
    return state


def test_export_prints_json_lines(
    fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_archive["records"] = [{"id": 1, "text": "hi"}, {"id": 2, "text": "bye"}]
    status = cli.main(["archive", "export", "--archive", "a.sqlite3"])
    captured = capsys.readouterr()
    assert status == 0
    assert [json.loads(line) for line in captured.out.splitlines()] == fake_archive["records"]
    assert captured.err == "exported 2 records\n"


def test_export_passes_filters(fake_archive: dict[str, Any]) -> None:
    arguments = [
        "archive",
        "export",
        "--archive",
        "a.sqlite3",
        "--since",
        "2024-05-01",
        "--until",
        "2024-05-02T08:30:00+02:00",
        "--user",
        "Alice Smith",
        "--remote",
        "bob",
    ]
    assert cli.main(arguments) == 0
    (call,) = fake_archive["calls"]
    assert call[0] == "export"
    assert call[1] == "a.sqlite3"
    filters = call[2]
    assert filters["since"] == datetime.datetime(2024, 5, 1, tzinfo=UTC)
    assert filters["until"] == datetime.datetime(2024, 5, 2, 6, 30, tzinfo=UTC)
    assert filters["user"] == "Alice Smith"
    assert filters["remote"] == "bob"


def test_export_to_output_file(
    tmp_path: Path, fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_archive["records"] = [{"id": 1, "text": "ünïcode"}]
    output = tmp_path / "out.jsonl"
    status = cli.main(["archive", "export", "--archive", "a.sqlite3", "--output", str(output)])
    assert status == 0
    assert capsys.readouterr().out == ""
    assert json.loads(output.read_text(encoding="utf-8")) == {"id": 1, "text": "ünïcode"}


def test_export_archive_error(
    fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_archive["error"] = "cannot read archive database a.sqlite3"
    status = cli.main(["archive", "export", "--archive", "a.sqlite3"])
    assert status == 1
    assert capsys.readouterr().err == "error: cannot read archive database a.sqlite3\n"


@pytest.mark.parametrize("value", ["2024-05-01T10:00", "last week", "2024-13-01"])
def test_export_rejects_bad_time(
    value: str, fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["archive", "export", "--archive", "a.sqlite3", "--since", value])
    assert exited.value.code == 2
    assert f"invalid time {value!r}" in capsys.readouterr().err
    assert fake_archive["calls"] == []


def test_export_requires_archive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["archive", "export"])
    assert exited.value.code == 2
    assert "--archive" in capsys.readouterr().err


def test_verify_ok(fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    fake_archive["report"] = types.SimpleNamespace(
        ok=True, records=12, first_bad_id=None, reason=None, head_hash="ab" * 32
    )
    status = cli.main(["archive", "verify", "--archive", "a.sqlite3"])
    assert status == 0
    assert capsys.readouterr().out == f"ok: 12 records, head {'ab' * 32}\n"
    assert fake_archive["calls"] == [("verify", "a.sqlite3")]


def test_verify_failed(fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    fake_archive["report"] = types.SimpleNamespace(
        ok=False, records=4, first_bad_id=5, reason="hash does not match the record's fields"
    )
    status = cli.main(["archive", "verify", "--archive", "a.sqlite3"])
    assert status == 1
    assert capsys.readouterr().out == (
        "FAILED at record 5: hash does not match the record's fields\n"
    )


def test_verify_unreadable_archive(
    fake_archive: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    fake_archive["error"] = "cannot read archive database missing.sqlite3"
    status = cli.main(["archive", "verify", "--archive", "missing.sqlite3"])
    assert status == 2
    assert "cannot read archive database missing.sqlite3" in capsys.readouterr().err


# ---- timestamps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", datetime.datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T12:00:00Z", datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T12:00:00.250Z", datetime.datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime.datetime(2024, 5, 1, 12, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_valid(text: str, expected: datetime.datetime) -> None:
    assert cli.parse_timestamp(text) == expected


def test_parse_timestamp_needs_offset() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="add a UTC offset"):
        cli.parse_timestamp("2024-05-01T12:00:00")


# ---- archive commands against a real archive ----------------------------------------------


async def write_archive(path: Path) -> None:
    from imtegrity_proxy.archive import Archive, ArchiveRecord, normalize_screen_name

    async with await Archive.open(path) as archive:
        for local, remote, text in [
            ("Alice Smith", "bob", "hello bob"),
            ("carol", "bob", "hi from carol"),
            ("Alice Smith", "dave", "hello dave"),
        ]:
            record = ArchiveRecord(
                kind="message",
                session="s1",
                client_address="127.0.0.1:5000",
                local=normalize_screen_name(local),
                local_display=local,
                direction="outbound",
                remote=remote,
                text=text,
                action="delivered",
            )
            await archive.append(record)


async def test_real_archive_export_and_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "archive.sqlite3"
    await write_archive(path)

    export_arguments = ["archive", "export", "--archive", str(path), "--user", "Alice Smith"]
    export_status = cli.main(export_arguments)
    exported = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    verify_status = cli.main(["archive", "verify", "--archive", str(path)])
    verify_output = capsys.readouterr().out

    assert export_status == 0
    assert [record["text"] for record in exported] == ["hello bob", "hello dave"]
    assert verify_status == 0
    assert verify_output.startswith("ok: 3 records, head ")
    head = verify_output.split()[-1]
    # The printed head anchors the chain: a later verify with it still passes.
    assert cli.main(["archive", "verify", "--archive", str(path), "--anchor", head]) == 0
    assert cli.main(["archive", "verify", "--archive", str(path), "--anchor", "0" * 63 + "1"]) == 1


async def test_real_archive_verify_finds_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "archive.sqlite3"
    await write_archive(path)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE records SET text = 'edited' WHERE id = 2")
    connection.close()

    status = cli.main(["archive", "verify", "--archive", str(path)])
    output = capsys.readouterr().out
    assert status == 1
    assert output.startswith("FAILED at record 2: ")
