"""Tests for the SOCKS settings as the proxy uses them: HTTP proxies rejected, start-up checks."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy.config import HTTP_PROXY_REJECTED, ConfigError, parse_config
from imtegrity_proxy.relay.app import serve


def upstream_with(**upstream: Any) -> dict[str, Any]:
    return {"upstream": {"servers": ["127.0.0.1:5190"], **upstream}}


@pytest.mark.parametrize(
    "data",
    [
        upstream_with(http_proxy="http://proxy.example:3128"),
        upstream_with(proxy="https://proxy.example:3128"),
        upstream_with(socks="http://proxy.example:3128"),
        upstream_with(socks={"proxies": [{"url": "http://proxy.example:3128"}]}),
        upstream_with(socks={"proxies": [{"version": "https", "host": "proxy.example"}]}),
        {"https_proxy": "https://proxy.example:3128"},
    ],
)
def test_http_proxy_config_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as rejected:
        parse_config(data)
    message = str(rejected.value)
    assert "only SOCKS4 and SOCKS5 proxies are supported" in message
    assert "not HTTP or HTTPS proxies" in message


def test_http_proxy_message_wording() -> None:
    assert HTTP_PROXY_REJECTED == (
        "only SOCKS4 and SOCKS5 proxies are supported, not HTTP or HTTPS proxies; "
        "list SOCKS proxies under upstream.socks.proxies with version 4 or 5"
    )


def archive_writers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "imtegrity-archive-writer"}


async def test_start_fails_cleanly_without_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="imtegrity.relay")
    monkeypatch.delenv("IMTEGRITY_TEST_NO_SUCH_PASSWORD", raising=False)
    proxy = {
        "host": "127.0.0.1",
        "username": "ops",
        "password_env": "IMTEGRITY_TEST_NO_SUCH_PASSWORD",
    }
    config = parse_config(
        {
            "listen": {"host": "127.0.0.1", "ports": [1]},  # never bound: start stops earlier
            "upstream": {"servers": ["127.0.0.1:5190"], "socks": {"proxies": [proxy]}},
            "archive": {"path": str(tmp_path / "archive.sqlite3")},
            "health": {"host": "127.0.0.1", "port": 2},
        }
    )

    writers_before = archive_writers()
    status = await serve(config)

    assert status == 1
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "could not start: SOCKS password variable 'IMTEGRITY_TEST_NO_SUCH_PASSWORD' "
        "is not set in the environment"
    ]
    assert archive_writers() == writers_before  # the archive opened for start was closed
