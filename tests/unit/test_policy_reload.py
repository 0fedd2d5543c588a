"""PolicyReloader: file changes, ConfigMap symlink swaps, SIGHUP requests and invalid files."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import types
from pathlib import Path

import pytest
from imtegrity_proxy import cli
from imtegrity_proxy.config import Config, PolicyConfig
from imtegrity_proxy.policy.reload import PolicyReloader

BASE = "listen: {host: 127.0.0.1, ports: [5190]}\n"


def policy_file(rules: str = "[]") -> str:
    return BASE + f"policy:\n  rules: {rules}\n"


BLOCK_ALPHA = '[{name: no-alpha, pattern: "alpha", action: block}]'


@pytest.fixture
def applied() -> list[PolicyConfig]:
    return []


def make_reloader(path: Path, applied: list[PolicyConfig]) -> PolicyReloader:
    return PolicyReloader(path, applied.append, interval=0.05)


def test_unchanged_file_not_reloaded(tmp_path: Path, applied: list[PolicyConfig]) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = make_reloader(path, applied)
    assert reloader.check() is False
    assert applied == []


def test_changed_file_applies_policy(tmp_path: Path, applied: list[PolicyConfig]) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = make_reloader(path, applied)
    path.write_text(policy_file(BLOCK_ALPHA))
    assert reloader.check() is True
    assert [rule.name for rule in applied[0].rules] == ["no-alpha"]
    assert reloader.check() is False  # the same bytes again
    assert len(applied) == 1


def test_invalid_file_keeps_policy(
    tmp_path: Path, applied: list[PolicyConfig], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = make_reloader(path, applied)
    path.write_text(policy_file('[{name: broken, pattern: "(unclosed", action: block}]'))
    with caplog.at_level(logging.ERROR, logger="imtegrity.policy"):
        assert reloader.check() is False
    assert applied == []
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "rejected; the running policy stays" in messages[0]
    assert "policy.rules[0].pattern: invalid regular expression" in messages[0]
    # The same invalid bytes are not reported again at every poll.
    caplog.clear()
    assert reloader.check() is False
    assert caplog.records == []


def test_unknown_placeholder_rejected(
    tmp_path: Path, applied: list[PolicyConfig], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = make_reloader(path, applied)
    path.write_text(BASE + "policy:\n  disclaimer: {outbound: 'Hello {name}'}\n")
    with caplog.at_level(logging.ERROR, logger="imtegrity.policy"):
        assert reloader.check() is False
    assert "policy.disclaimer.outbound: unknown placeholder {name}" in caplog.text
    assert applied == []


def test_other_sections_need_restart(
    tmp_path: Path, applied: list[PolicyConfig], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = make_reloader(path, applied)
    path.write_text(
        "listen: {host: 127.0.0.1, ports: [5191]}\nlogging: {level: debug}\n"
        f"policy:\n  rules: {BLOCK_ALPHA}\n"
    )
    with caplog.at_level(logging.INFO, logger="imtegrity.policy"):
        assert reloader.check() is True
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "changes to listen, logging" in warnings[0]
    assert "need a restart" in warnings[0]
    assert [rule.name for rule in applied[0].rules] == ["no-alpha"]


def write_configmap_version(volume: Path, name: str, content: str) -> None:
    """Publish ``content`` the way the kubelet updates a ConfigMap volume.

    Each version lives in its own ``..<name>`` directory, and the ``..data``
    symlink is replaced atomically (a new symlink renamed over the old one).
    """
    version = volume / f"..{name}"
    version.mkdir()
    (version / "proxy.yaml").write_text(content)
    temporary = volume / "..data_tmp"
    temporary.symlink_to(version.name)
    os.replace(temporary, volume / "..data")
    link = volume / "proxy.yaml"
    if not link.is_symlink():
        link.symlink_to("..data/proxy.yaml")


def test_configmap_symlink_swap_detected(tmp_path: Path, applied: list[PolicyConfig]) -> None:
    write_configmap_version(tmp_path, "2024_01_01_v1", policy_file())
    path = tmp_path / "proxy.yaml"
    reloader = make_reloader(path, applied)
    write_configmap_version(tmp_path, "2024_01_01_v2", policy_file(BLOCK_ALPHA))
    assert reloader.check() is True
    assert [rule.name for rule in applied[0].rules] == ["no-alpha"]


def test_request_forces_reload(
    tmp_path: Path, applied: list[PolicyConfig], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file(BLOCK_ALPHA))
    reloader = make_reloader(path, applied)
    with caplog.at_level(logging.INFO, logger="imtegrity.policy"):
        assert reloader.check(forced=True) is True
    assert len(applied) == 1
    assert "(SIGHUP)" in caplog.text


def test_missing_file_logged(
    tmp_path: Path, applied: list[PolicyConfig], caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = make_reloader(path, applied)
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="imtegrity.policy"):
        assert reloader.check() is False
    assert "failed to read" in caplog.text
    assert applied == []


async def test_run_polls_and_wakes_on_request(tmp_path: Path, applied: list[PolicyConfig]) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    reloader = PolicyReloader(path, applied.append, interval=0.05)
    task = asyncio.create_task(reloader.run())
    try:
        path.write_text(policy_file(BLOCK_ALPHA))
        await wait_until(lambda: len(applied) == 1)
        slow = PolicyReloader(path, applied.append, interval=3600)
        slow_task = asyncio.create_task(slow.run())
        await asyncio.sleep(0.05)
        slow.request()
        await wait_until(lambda: len(applied) == 2)
        slow_task.cancel()
    finally:
        task.cancel()


async def wait_until(condition: object, timeout: float = 2.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_cli_passes_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Config, str | None]] = []

    def run(config: Config, config_path: str | None = None) -> int:
        calls.append((config, config_path))
        return 0

    module = types.ModuleType("imtegrity_proxy.relay.app")
    module.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "imtegrity_proxy.relay.app", module)
    path = tmp_path / "proxy.yaml"
    path.write_text(policy_file())
    assert cli.main(["serve", "--config", str(path), "--log-level", "error"]) == 0
    assert len(calls) == 1
    assert calls[0][1] == str(path)
