"""Tests for the proxy's loggers, formatters and secret redaction (imtegrity_proxy.log)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from imtegrity_proxy import log
from pydantic import SecretStr


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger and the secret registry back as they were."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    log.clear_secrets()
    yield
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    log.clear_secrets()


def capture(format: str, level: str = "debug") -> io.StringIO:
    stream = io.StringIO()
    log.setup_logging(format, level, stream=stream)  # type: ignore[arg-type]
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_logger_family() -> None:
    assert log.LOGGER_NAMES == (
        "imtegrity.relay",
        "imtegrity.session",
        "imtegrity.archive",
        "imtegrity.policy",
        "imtegrity.upstream",
        "imtegrity.health",
        "imtegrity.config",
    )
    loggers = [
        log.relay_logger,
        log.session_logger,
        log.archive_logger,
        log.policy_logger,
        log.upstream_logger,
        log.health_logger,
        log.config_logger,
    ]
    assert [logger.name for logger in loggers] == list(log.LOGGER_NAMES)


# ---- text --------------------------------------------------------------------------


def test_text_line_layout() -> None:
    stream = capture("text")
    log.policy_logger.warning("rule %s matched", "cards")
    line = stream.getvalue().rstrip("\n")
    timestamp, level, name, rest = line.split(" ", 3)
    assert timestamp.endswith("Z")
    assert "T" in timestamp
    assert level == "WARNING"
    assert name == "imtegrity.policy:"
    assert rest == "rule cards matched"


def test_text_connection_context() -> None:
    stream = capture("text")
    connection = log.ConnectionLogger(log.session_logger, 42, ("127.0.0.1", 50123))
    connection.info("connected")
    connection.screen_name = "joeuser"
    connection.info("signed on")
    first, second = stream.getvalue().splitlines()
    assert "conn=42 peer=127.0.0.1:50123: connected" in first
    assert "sn=" not in first
    assert "conn=42 peer=127.0.0.1:50123 sn=joeuser: signed on" in second


def test_text_ipv6_peer_bracketed() -> None:
    stream = capture("text")
    log.ConnectionLogger(log.relay_logger, "c1", ("::1", 5190, 0, 0)).info("x")
    assert "peer=[::1]:5190" in stream.getvalue()


def test_text_exception_traceback() -> None:
    stream = capture("text")
    try:
        raise RuntimeError("upstream went away")
    except RuntimeError:
        log.upstream_logger.exception("relay failed")
    output = stream.getvalue()
    assert "ERROR imtegrity.upstream: relay failed\nTraceback" in output
    assert "RuntimeError: upstream went away" in output


def test_level_filters_lines() -> None:
    stream = capture("text", "warning")
    log.relay_logger.info("hidden")
    log.relay_logger.warning("shown")
    output = stream.getvalue()
    assert "hidden" not in output
    assert "shown" in output


def test_setup_twice_keeps_one_handler() -> None:
    first = io.StringIO()
    second = io.StringIO()
    log.setup_logging("text", "info", stream=first)
    log.setup_logging("text", "info", stream=second)
    log.relay_logger.info("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1


@pytest.mark.parametrize(
    ("format", "level", "message"),
    [
        ("xml", "info", "invalid log format 'xml'"),
        ("text", "loud", "invalid log level 'loud'"),
    ],
)
def test_setup_rejects_invalid_arguments(format: str, level: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        log.setup_logging(format, level)  # type: ignore[arg-type]


# ---- JSON --------------------------------------------------------------------------


def test_json_fields() -> None:
    stream = capture("json")
    connection = log.ConnectionLogger(log.session_logger, 7, ("127.0.0.1", 4000), "alice")
    connection.info("message %d relayed", 3, extra={"direction": "outbound"})
    (document,) = json_lines(stream)
    assert document["level"] == "info"
    assert document["logger"] == "imtegrity.session"
    assert document["message"] == "message 3 relayed"
    assert document["connection_id"] == 7
    assert document["peer"] == "127.0.0.1:4000"
    assert document["screen_name"] == "alice"
    assert document["direction"] == "outbound"
    assert isinstance(document["time"], str)
    assert document["time"].endswith("Z")
    assert "exception" not in document


def test_json_omits_unknown_screen_name() -> None:
    stream = capture("json")
    log.ConnectionLogger(log.session_logger, 8, "127.0.0.1:4001").info("connected")
    (document,) = json_lines(stream)
    assert document["peer"] == "127.0.0.1:4001"
    assert "screen_name" not in document


def test_json_exception() -> None:
    stream = capture("json")
    try:
        raise ValueError("bad frame")
    except ValueError:
        log.relay_logger.exception("dropped")
    (document,) = json_lines(stream)
    assert document["level"] == "error"
    assert isinstance(document["exception"], str)
    assert "ValueError: bad frame" in document["exception"]


def test_json_one_line_per_record() -> None:
    stream = capture("json")
    log.relay_logger.info("first\nsecond")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "first\nsecond"


# ---- redaction -----------------------------------------------------------------------


@pytest.mark.parametrize("format", ["text", "json"])
def test_secret_redacted_everywhere(format: str) -> None:
    stream = capture(format)
    log.register_secret("s3cr3t-Pa55")
    connection = log.ConnectionLogger(log.upstream_logger, 1, "127.0.0.1:1", "s3cr3t-Pa55")
    connection.info("literal s3cr3t-Pa55 here")
    connection.info("argument %s here", "s3cr3t-Pa55")
    connection.info("extra", extra={"detail": "user:s3cr3t-Pa55", "nested": ["s3cr3t-Pa55"]})
    try:
        raise ConnectionError("auth with s3cr3t-Pa55 failed")
    except ConnectionError:
        connection.exception("socks failed")
    output = stream.getvalue()
    assert "s3cr3t-Pa55" not in output
    assert output.count("***") >= 6


def test_secret_with_json_escapes_redacted() -> None:
    stream = capture("json")
    secret = 'quote"back\\slash-ü'
    log.register_secret(secret)
    log.relay_logger.info("value=%s", secret, extra={"field": {"x": secret}})
    output = stream.getvalue()
    assert secret not in output
    assert json.dumps(secret, ensure_ascii=False)[1:-1] not in output
    assert json.dumps(secret)[1:-1] not in output
    (document,) = json_lines(stream)
    assert document["message"] == "value=***"
    assert document["field"] == {"x": "***"}


def test_register_secretstr() -> None:
    stream = capture("text")
    log.register_secret(SecretStr("from-secretstr"))
    log.relay_logger.info("from-secretstr")
    assert "from-secretstr" not in stream.getvalue()


def test_longer_secret_replaced_whole() -> None:
    log.register_secret("abc")
    log.register_secret("abcdef")
    assert log.redact("xabcdefx") == "x***x"


def test_empty_secret_ignored() -> None:
    log.register_secret("")
    assert log.redact("nothing hidden") == "nothing hidden"


def test_redaction_off_without_secrets() -> None:
    stream = capture("text")
    log.relay_logger.info("plain %s", "text")
    assert stream.getvalue().endswith("plain text\n")


def test_screen_name_line_break_escaped():
    logger = logging.getLogger("imtegrity.session")
    adapter = log.ConnectionLogger(logger, 7, ("127.0.0.1", 5190), "first")
    adapter.screen_name = "evil\n2026-01-01T00:00:00Z INFO imtegrity.archive: ok"
    assert "\n" not in adapter.screen_name
    assert adapter.screen_name == "evil\\n2026-01-01T00:00:00Z INFO imtegrity.archive: ok"
