"""The proxy's named loggers, text and JSON output, and redaction of registered secrets.

Every module logs through one of the loggers below, so operators can raise or
lower the level of one part (``imtegrity.policy``, say) without touching the rest.
Code that handles one client connection logs through a ``ConnectionLogger``,
which adds the connection id, the peer address and, once the sign-on reveals it,
the screen name to every record.

``setup_logging`` installs one handler on the root logger. Its filter replaces
every string passed to ``register_secret`` (SOCKS passwords and the like) with
``***`` in the message, the exception text and the context fields. The handler
then checks the finished line once more. A secret that reaches a log call by
mistake is therefore still not written by this handler.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Literal, TextIO

__all__ = [
    "LOGGER_NAMES",
    "REDACTED",
    "ConnectionLogger",
    "JsonFormatter",
    "SecretFilter",
    "TextFormatter",
    "archive_logger",
    "clear_secrets",
    "config_logger",
    "health_logger",
    "policy_logger",
    "redact",
    "register_secret",
    "relay_logger",
    "session_logger",
    "setup_logging",
    "upstream_logger",
]

relay_logger = logging.getLogger("imtegrity.relay")
session_logger = logging.getLogger("imtegrity.session")
archive_logger = logging.getLogger("imtegrity.archive")
policy_logger = logging.getLogger("imtegrity.policy")
upstream_logger = logging.getLogger("imtegrity.upstream")
health_logger = logging.getLogger("imtegrity.health")
config_logger = logging.getLogger("imtegrity.config")

LOGGER_NAMES = (
    "imtegrity.relay",
    "imtegrity.session",
    "imtegrity.archive",
    "imtegrity.policy",
    "imtegrity.upstream",
    "imtegrity.health",
    "imtegrity.config",
)

REDACTED = "***"

# Record attributes that carry a connection's context, in output order, with the
# short key used in text lines.
CONTEXT_FIELDS = (("connection_id", "conn"), ("peer", "peer"), ("screen_name", "sn"))

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)

_secrets_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: Any) -> None:
    """Add a secret string that every log line written through ``setup_logging`` hides.

    Accepts a ``str`` or anything with ``get_secret_value()`` (``pydantic.SecretStr``).
    Empty values are ignored. Each occurrence is replaced with ``***``, and so is its
    JSON-escaped form. A very short secret therefore also hides matching text that
    is not the secret.
    """
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    if not isinstance(value, str) or not value:
        return
    global _secret_pattern
    with _secrets_lock:
        _secrets.add(value)
        forms = set(_secrets)
        # The JSON formatter escapes quotes, backslashes and control characters, so
        # the finished line contains the escaped form; both ASCII settings are covered.
        for secret in _secrets:
            forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
            forms.add(json.dumps(secret)[1:-1])
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        _secret_pattern = re.compile("|".join(re.escape(form) for form in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _secret_pattern
    with _secrets_lock:
        _secrets.clear()
        _secret_pattern = None


def redact(text: str) -> str:
    """Return ``text`` with every registered secret replaced by ``***``."""
    pattern = _secret_pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


class SecretFilter(logging.Filter):
    """A handler filter that redacts registered secrets from a record before formatting.

    It renders the message with its arguments and the exception text, then
    redacts them and every string field added through ``extra=``. It never drops
    a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if _secret_pattern is None:
            return True
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def format_peer(peer: Any) -> str:
    """Format a socket address tuple as ``host:port`` (``[host]:port`` for IPv6)."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


def _format_time(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, tz=datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """One line per record: time, level, logger, connection context, message."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_format_time(record.created), record.levelname, record.name]
        for attribute, key in CONTEXT_FIELDS:
            value = getattr(record, attribute, None)
            if value is not None:
                parts.append(f"{key}={value}")
        line = " ".join(parts) + ": " + record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record.

    Keys: ``time`` (RFC 3339, UTC), ``level``, ``logger``, ``message``, the
    connection context (``connection_id``, ``peer``, ``screen_name``) when set,
    every other field passed with ``extra=``, and ``exception`` with the traceback.
    """

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": _format_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD_ATTRIBUTES and value is not None:
                document[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


class _RedactingStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler that redacts secrets from the finished line as well."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def printable(text: str) -> str:
    """Escape control and other non-printing characters, as repr() would."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class ConnectionLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter that adds one connection's id, peer and screen name to each record.

    The screen name is unknown when a connection opens; set ``screen_name`` once
    the sign-on reveals it. Fields given with ``extra=`` in a call are kept.
    """

    def __init__(
        self,
        logger: logging.Logger,
        connection_id: str | int,
        peer: Any,
        screen_name: str | None = None,
    ) -> None:
        super().__init__(logger, {})
        self.connection_id = connection_id
        self.peer = format_peer(peer)
        self.screen_name = screen_name

    @property
    def screen_name(self) -> str | None:
        return self._screen_name

    @screen_name.setter
    def screen_name(self, name: str | None) -> None:
        # A screen name comes from the client: escape control characters so a
        # line break in it cannot start a forged log line.
        self._screen_name = None if name is None else printable(name)

    @property
    def context(self) -> dict[str, Any]:
        """The fields this adapter adds to every record."""
        return {
            "connection_id": self.connection_id,
            "peer": self.peer,
            "screen_name": self.screen_name,
        }

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra: Mapping[str, Any] = kwargs.get("extra") or {}
        kwargs["extra"] = {**self.context, **extra}
        return msg, kwargs


_installed_handler: logging.Handler | None = None


def setup_logging(
    format: Literal["text", "json"] = "text",
    level: str | int = "info",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Install the proxy's log handler on the root logger and return it.

    Writes to ``stream`` (standard error by default) in ``format``. ``level``
    is a name such as ``"info"`` or a ``logging`` constant. Calling it again
    replaces the handler installed before, so tests and reloads do not duplicate
    lines. ``secrets`` are registered as with ``register_secret``.
    """
    global _installed_handler
    if format not in ("text", "json"):
        raise ValueError(f"invalid log format {format!r}: expected 'text' or 'json'")
    numeric_level = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise ValueError(f"invalid log level {level!r}: expected debug, info, warning or error")
    for secret in secrets:
        register_secret(secret)

    handler = _RedactingStreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if format == "json" else TextFormatter())
    handler.addFilter(SecretFilter())

    root = logging.getLogger()
    if _installed_handler is not None:
        root.removeHandler(_installed_handler)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    _installed_handler = handler
    return handler
