"""The proxy's configuration model, loaded from YAML and validated with pydantic.

This model is the single source of truth for the proxy's settings: the operator
renders the proxy section of its custom resource from ``Config.model_json_schema()``
and writes ``render_config_yaml()`` output into a ConfigMap. Every model rejects
unknown fields, so a misspelt key is an error and never silently ignored.

Passwords never live in the model. A SOCKS proxy names a file or an environment
variable, and ``SocksProxy.resolve_password()`` reads it on demand into a
``pydantic.SecretStr``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .policy.disclaimer import max_rendered_size, placeholder_problems
from .protocol.userinfo import normalize_screen_name

__all__ = [
    "AdvertiseConfig",
    "ArchiveConfig",
    "Config",
    "ConfigError",
    "ContentRule",
    "DeniedSignonConfig",
    "DisclaimerConfig",
    "HealthConfig",
    "ListenConfig",
    "LoggingConfig",
    "PolicyConfig",
    "RelayConfig",
    "RemotePartyRule",
    "RendezvousConfig",
    "SocksConfig",
    "SocksProxy",
    "UpstreamConfig",
    "load_config",
    "normalize_screen_name",
    "parse_config",
    "parse_host_port",
    "read_config_file",
    "render_config_yaml",
]

HTTP_PROXY_REJECTED = (
    "only SOCKS4 and SOCKS5 proxies are supported, not HTTP or HTTPS proxies; "
    "list SOCKS proxies under upstream.socks.proxies with version 4 or 5"
)

# The default listening address: in a pod, clients and probes arrive on the pod IP.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

# RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens,
# each 1 to 63 characters, 253 characters in all. A trailing dot is allowed.
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class ConfigError(Exception):
    """An invalid or unreadable configuration.

    ``errors`` lists one line per problem, each starting with the dotted path of
    the field (for example ``upstream.servers[0]: invalid host:port 'x'``).
    """

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))


def _is_host_name(host: str) -> bool:
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in name.split("."))


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_host(host: str) -> str:
    """Validate a bare host: an IPv4 or IPv6 address, or a DNS host name."""
    if _is_ip_address(host) or _is_host_name(host):
        return host
    raise ValueError(f"invalid host {host!r}: expected an IP address or a DNS host name")


def parse_host_port(value: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port`` into a host and a port number.

    Raises ``ValueError`` naming the value when it is malformed. An IPv6 address
    must be in brackets, because its colons would otherwise be ambiguous.
    """
    problem = f"invalid host:port {value!r}"
    if "://" in value:
        raise ValueError(f"{problem}: write host:port without a scheme such as http://")
    if value.startswith("["):
        closing = value.find("]")
        if closing < 0 or value[closing + 1 : closing + 2] != ":":
            raise ValueError(f"{problem}: expected [IPv6 address]:port")
        host = value[1:closing]
        port_text = value[closing + 2 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError as error:
            raise ValueError(f"{problem}: {host!r} is not an IPv6 address") from error
    else:
        host, separator, port_text = value.rpartition(":")
        if not separator or not host:
            raise ValueError(
                f"{problem}: expected host:port, for example login.oscar.aol.com:5190"
            )
        if ":" in host:
            raise ValueError(f"{problem}: write an IPv6 address in brackets, as [::1]:5190")
        if not (_is_ip_address(host) or _is_host_name(host)):
            raise ValueError(f"{problem}: {host!r} is not an IP address or a DNS host name")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{problem}: port must be a number from 1 to 65535")
    return host, int(port_text)


def _raise_field_problems(problems: list[tuple[str, str]]) -> None:
    """Raise one validation error that reports several fields of the model being checked.

    Each problem is (dotted path relative to the model, reason); ``parse_config``
    prefixes the model's own location, so every field gets its own line.
    """
    if problems:
        summary = "; ".join(f"{path}: {reason}" for path, reason in problems)
        raise PydanticCustomError(
            "field_problems", "{summary}", {"summary": summary, "problems": problems}
        )


def _reject_http_proxy_keys(data: Any, keys: tuple[str, ...]) -> None:
    if isinstance(data, Mapping):
        _raise_field_problems([(key, HTTP_PROXY_REJECTED) for key in keys if key in data])


def _check_host_port(value: str) -> str:
    parse_host_port(value)
    return value


def _normalize_ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError as error:
        raise ValueError(f"invalid IP address {value!r}") from error


Port = Annotated[int, Field(ge=1, le=65535)]
HostPort = Annotated[str, AfterValidator(_check_host_port)]
IPAddress = Annotated[str, AfterValidator(_normalize_ip_address)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ListenConfig(_Model):
    """Listening address and ports for AIM client connections."""

    host: str = Field(
        default=ALL_INTERFACES, description="Local address to listen on (IP or host name)."
    )
    ports: list[Port] = Field(
        default=[5190],
        min_length=1,
        description="TCP ports to accept AIM clients on; at least one, each unique.",
    )

    @field_validator("host")
    @classmethod
    def _valid_host(cls, host: str) -> str:
        return _check_host(host)

    @field_validator("ports")
    @classmethod
    def _unique_ports(cls, ports: list[int]) -> list[int]:
        duplicates = sorted({port for port in ports if ports.count(port) > 1})
        if duplicates:
            raise ValueError(f"duplicate ports {duplicates}")
        return ports


class AdvertiseConfig(_Model):
    """The address the proxy hands to clients in place of the servers' own addresses."""

    host: str | None = Field(
        default=None,
        description=(
            "Host name or IP address given to clients for their next connection. "
            "Null means the local address the client connected to. The port is always "
            "the port the client used."
        ),
    )

    @field_validator("host")
    @classmethod
    def _valid_host(cls, host: str | None) -> str | None:
        return None if host is None else _check_host(host)


class SocksProxy(_Model):
    """One SOCKS proxy for outgoing upstream connections."""

    version: Literal[4, 5] = Field(
        default=5, description="SOCKS protocol version: 4 (with remote_dns, SOCKS4a) or 5."
    )
    host: str = Field(description="SOCKS proxy host name or IP address.")
    port: Port = Field(default=1080, description="SOCKS proxy TCP port.")
    username: str | None = Field(
        default=None,
        description="User name (SOCKS5 user/password authentication, or SOCKS4 user ID).",
    )
    password_file: str | None = Field(
        default=None,
        description="File whose content is the SOCKS5 password; one trailing newline is ignored.",
    )
    password_env: str | None = Field(
        default=None, description="Environment variable that holds the SOCKS5 password."
    )
    remote_dns: bool = Field(
        default=True,
        description=(
            "Let the proxy resolve upstream host names. For version 4 this means SOCKS4a."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_url(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "url" in data:
            url = str(data["url"]).lower()
            if url.startswith(("http:", "https:")):
                _raise_field_problems([("url", HTTP_PROXY_REJECTED)])
            _raise_field_problems([("url", "not supported; give version, host and port")])
        return data

    @field_validator("version", mode="before")
    @classmethod
    def _socks_version(cls, version: Any) -> Any:
        if isinstance(version, str):
            text = version.strip().lower()
            if text.startswith("http"):
                raise ValueError(HTTP_PROXY_REJECTED)
            if text in {"4", "5", "socks4", "socks5"}:
                return int(text[-1])
        return version

    @field_validator("host")
    @classmethod
    def _valid_host(cls, host: str) -> str:
        return _check_host(host)

    @model_validator(mode="after")
    def _password_source(self) -> SocksProxy:
        if self.password_file is not None and self.password_env is not None:
            _raise_field_problems(
                [("password_env", "set password_file or password_env, not both")]
            )
        source = "password_file" if self.password_file is not None else "password_env"
        if self.password_file is None and self.password_env is None:
            return self
        if self.version == 4:
            _raise_field_problems([(source, "SOCKS4 has no password; use version 5")])
        if not self.username:
            _raise_field_problems([("username", f"{source} is set, so a username is required")])
        return self

    def resolve_password(self) -> SecretStr | None:
        """Read the password from ``password_file`` or ``password_env``.

        Returns None when neither is set. Raises ``ConfigError`` when the file
        cannot be read or the variable is unset. The value is registered with
        ``imtegrity_proxy.log.register_secret`` so that no log line shows it.
        """
        if self.password_file is not None:
            try:
                text = Path(self.password_file).read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError(
                    f"failed to read SOCKS password file {self.password_file!r}: {error.strerror}"
                ) from error
            password = text[:-1] if text.endswith("\n") else text
            password = password[:-1] if password.endswith("\r") else password
        elif self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    f"SOCKS password variable {self.password_env!r} is not set in the environment"
                )
            password = value
        else:
            return None
        from imtegrity_proxy.log import register_secret

        register_secret(password)
        return SecretStr(password)

    def describe(self) -> str:
        """Return a one-line description without credentials, e.g. ``socks5 host:1080``."""
        kind = "socks4a" if self.version == 4 and self.remote_dns else f"socks{self.version}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = " with authentication" if self.username else ""
        return f"{kind} {host}:{self.port}{auth}"


class SocksConfig(_Model):
    """SOCKS proxies for the upstream connections, tried in order."""

    proxies: list[SocksProxy] = Field(
        min_length=1,
        description="SOCKS proxies tried in order until one connects; at least one.",
    )
    connect_timeout_seconds: float = Field(
        default=10,
        gt=0,
        description="Time limit for the TCP connection to a SOCKS proxy, in seconds.",
    )
    handshake_timeout_seconds: float = Field(
        default=10, gt=0, description="Time limit for the SOCKS handshake, in seconds."
    )
    check_in_readiness: bool = Field(
        default=False,
        description="Make /readyz fail while no SOCKS proxy accepts a TCP connection.",
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_flat_form(cls, data: Any) -> Any:
        if isinstance(data, str) and data.lower().startswith(("http:", "https:")):
            raise ValueError(HTTP_PROXY_REJECTED)
        if isinstance(data, Mapping):
            _reject_http_proxy_keys(data, ("http_proxy", "https_proxy"))
            version = str(data.get("version", "")).lower()
            if version.startswith("http") or str(data.get("url", "")).startswith("http"):
                raise ValueError(HTTP_PROXY_REJECTED)
            if "host" in data and "proxies" not in data:
                raise ValueError("list each SOCKS proxy under proxies, as proxies: [{host: ...}]")
        return data


class UpstreamConfig(_Model):
    """The real OSCAR servers and how to reach them."""

    servers: list[HostPort] = Field(
        default=["login.oscar.aol.com:5190"],
        min_length=1,
        description="Login servers as host:port ([IPv6]:port for IPv6), tried in order.",
    )
    connect_timeout_seconds: float = Field(
        default=10, gt=0, description="Time limit for each upstream TCP connection, in seconds."
    )
    source_addresses: list[IPAddress] = Field(
        default=[],
        description=(
            "Local IP addresses that outgoing connections are spread across; "
            "empty means the system's choice."
        ),
    )
    socks: SocksConfig | None = Field(
        default=None, description="SOCKS proxies for upstream connections; null connects directly."
    )

    @model_validator(mode="before")
    @classmethod
    def _reject_http_proxy(cls, data: Any) -> Any:
        _reject_http_proxy_keys(data, ("http_proxy", "https_proxy", "proxy"))
        return data

    @field_validator("source_addresses")
    @classmethod
    def _unique_source_addresses(cls, addresses: list[str]) -> list[str]:
        duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
        if duplicates:
            raise ValueError(f"duplicate source addresses {duplicates}")
        return addresses

    def server_addresses(self) -> list[tuple[str, int]]:
        """Return ``servers`` as (host, port) pairs, IPv6 hosts without brackets."""
        return [parse_host_port(server) for server in self.servers]


class RelayConfig(_Model):
    """Limits and timers of the relay."""

    cookie_ttl_seconds: float = Field(
        default=300,
        gt=0,
        description="How long a cookie handed to a client is remembered, in seconds.",
    )
    max_cookies: int = Field(
        default=100_000, ge=1, description="Maximum number of cookies remembered at once."
    )
    max_frame_payload: int = Field(
        default=65535,
        ge=1,
        le=65535,
        description="Largest FLAP payload accepted, in bytes (the FLAP length field is 16 bits).",
    )
    shutdown_grace_seconds: float = Field(
        default=30,
        ge=0,
        description="Time given to open sessions to end after SIGTERM, in seconds.",
    )
    idle_timeout_seconds: float = Field(
        default=0,
        ge=0,
        description="Close a connection idle this long, in seconds; 0 disables it.",
    )
    handshake_timeout_seconds: float = Field(
        default=30,
        ge=0,
        description=(
            "Time a new connection has for its hello, sign-on decision and upstream "
            "connection, in seconds; 0 disables it."
        ),
    )
    max_connections: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Maximum client connections open at once; more are closed as they arrive. "
            "Each one also holds an upstream connection, so two file descriptors."
        ),
    )


class ArchiveConfig(_Model):
    """The message archive."""

    path: str = Field(
        default="imtegrity-archive.sqlite3",
        min_length=1,
        description="Path of the SQLite archive file.",
    )
    max_batch: int = Field(
        default=256, ge=1, description="Maximum number of records committed in one transaction."
    )
    max_delay_ms: float = Field(
        default=0,
        ge=0,
        description=(
            "Maximum time a record waits for others to share its commit, in milliseconds. "
            "With 0, a commit takes every record queued while the previous one ran, so "
            "records batch under load and a lone record is committed at once."
        ),
    )


class DeniedSignonConfig(_Model):
    """The error sent to a client whose sign-on policy denies."""

    code: int = Field(
        default=1, ge=0, le=0xFFFF, description="Error code sent in sign-on TLV 0x08."
    )
    url: str = Field(
        default="", description="Error URL sent in sign-on TLV 0x04; empty sends none."
    )


class DisclaimerConfig(_Model):
    """Disclaimer texts injected into conversations."""

    outbound: str = Field(
        default="",
        description=(
            "Disclaimer for conversations the local user starts: the remote party gets it "
            "as an IM from the local user and the local user sees it as a notice. "
            "Placeholders: {date}, {time}, {timezone}, {local}, {identity}, {remote}. "
            "Empty disables it."
        ),
    )
    inbound: str = Field(
        default="",
        description=(
            "Disclaimer for conversations an external party starts, delivered like the "
            "outbound one and with the same placeholders. Empty disables it."
        ),
    )
    scope: Literal["conversation-day", "session", "message"] = Field(
        default="conversation-day",
        description=(
            "How often a disclaimer repeats: once per conversation and calendar day, "
            "once per session, or before every message."
        ),
    )
    timezone: str = Field(
        default="UTC",
        description="IANA time zone that defines the calendar day, e.g. Europe/Berlin.",
    )
    max_message_bytes: int = Field(
        default=512,
        ge=1,
        le=0xFFFF,
        description=(
            "Largest message text the server accepts, in bytes (Open OSCAR Server "
            "advertises 512). Every rendered disclaimer, notice prefix included, must "
            "fit; at run time the value the server advertises replaces this one."
        ),
    )

    @field_validator("outbound", "inbound")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        problems = placeholder_problems(template)
        if problems:
            raise ValueError("; ".join(problems))
        return template

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name


class ContentRule(_Model):
    """A content rule applied to message text, in list order."""

    name: str = Field(min_length=1, description="Unique rule name, stored in the archive.")
    pattern: str = Field(min_length=1, description="Python regular expression to search.")
    action: Literal["block", "redact", "flag"] = Field(
        default="flag",
        description=(
            "block drops the message, redact replaces each match, flag only records the rule."
        ),
    )
    notice: str = Field(
        default="",
        description=(
            "Text shown to the local user when the rule acts; empty shows a built-in "
            "text for block and nothing for redact and flag."
        ),
    )
    applies_to: list[Literal["im", "chat"]] = Field(
        default=["im", "chat"],
        min_length=1,
        description="Message kinds the rule applies to: im, chat or both.",
    )
    replacement: str = Field(
        default="\u2588",
        min_length=1,
        max_length=1,
        description=(
            "Character that replaces each matched character when action is redact "
            "(default U+2588 FULL BLOCK)."
        ),
    )

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error
        return pattern

    @field_validator("pattern")
    @classmethod
    def _pattern_needs_text(cls, pattern: str) -> str:
        if re.search(pattern, "") is not None:
            raise ValueError(
                f"pattern {pattern!r} matches the empty string, so it would match every "
                "message; require at least one character"
            )
        return pattern


class RemotePartyRule(_Model):
    """A rule on who local users may talk to, in list order; the first match wins."""

    name: str = Field(min_length=1, description="Unique rule name, stored in the archive.")
    action: Literal["allow", "deny"] = Field(
        default="deny", description="allow or deny the exchange."
    )
    local: str = Field(
        default="*",
        min_length=1,
        description='Local side: a corporate identity, "group:NAME", or "*" for everyone.',
    )
    remote: str = Field(
        default="*", min_length=1, description="Glob over the normalised remote screen name."
    )
    room: str | None = Field(
        default=None,
        description="Glob over the chat room name; null matches direct messages only.",
    )
    notice: str = Field(
        default="",
        description=(
            "Text shown to the local user when the rule denies; empty shows a built-in text."
        ),
    )

    @field_validator("remote")
    @classmethod
    def _normalize_remote(cls, remote: str) -> str:
        return normalize_screen_name(remote)


class RendezvousConfig(_Model):
    """Peer-to-peer (rendezvous) requests."""

    file_transfer: Literal["allow", "block"] = Field(
        default="block", description="Send File requests: allow or block."
    )
    direct_im: Literal["allow", "block"] = Field(
        default="block", description="Direct IM requests, which bypass the proxy: allow or block."
    )
    get_file: Literal["allow", "block"] = Field(
        default="block", description="Get File requests: allow or block."
    )
    allow_identities: list[str] = Field(
        default=[], description="Corporate identities allowed every rendezvous kind."
    )
    notice: str = Field(
        default="",
        description=(
            "Text sent to the local user when a request is blocked; empty sends a built-in text."
        ),
    )


class PolicyConfig(_Model):
    """Sign-on, content, disclaimer, remote-party and rendezvous policy."""

    identities: dict[str, str] = Field(
        default={},
        description=(
            "Screen name to corporate identity. Keys are normalised at load "
            "(lower case, spaces removed)."
        ),
    )
    groups: dict[str, list[str]] = Field(
        default={}, description="Group name to the corporate identities in it."
    )
    unregistered: Literal["allow", "deny"] = Field(
        default="allow",
        description="Sign-on of screen names missing from identities: allow or deny.",
    )
    denied_signon: DeniedSignonConfig = Field(
        default=DeniedSignonConfig(), description="The error a denied client receives."
    )
    disclaimer: DisclaimerConfig = Field(
        default=DisclaimerConfig(), description="Disclaimer texts and how often they repeat."
    )
    rules: list[ContentRule] = Field(default=[], description="Content rules, applied in order.")
    remote_parties: list[RemotePartyRule] = Field(
        default=[], description="Remote-party rules; the first match decides."
    )
    rendezvous: RendezvousConfig = Field(
        default=RendezvousConfig(), description="Peer-to-peer request policy."
    )
    notice_prefix: str = Field(
        default="[notice] ",
        description="Text put before every notice the proxy shows to a local user.",
    )
    notice_sender: str = Field(
        default="IMtegrity",
        min_length=1,
        max_length=16,
        description="Screen name shown as the sender of notices in chat rooms.",
    )

    @field_validator("identities")
    @classmethod
    def _normalize_identities(cls, identities: dict[str, str]) -> dict[str, str]:
        normalized: dict[str, str] = {}
        original: dict[str, str] = {}
        for screen_name, identity in identities.items():
            key = normalize_screen_name(screen_name)
            if not key:
                raise ValueError(f"screen name {screen_name!r} is empty after normalisation")
            if not identity:
                raise ValueError(f"screen name {screen_name!r} has an empty identity")
            if key in normalized:
                raise ValueError(
                    f"screen names {original[key]!r} and {screen_name!r} both normalise to {key!r}"
                )
            normalized[key] = identity
            original[key] = screen_name
        return normalized

    @model_validator(mode="after")
    def _check_references(self) -> PolicyConfig:
        """Check that every identity, group and rule name referred to exists once."""
        known = set(self.identities.values())
        problems: list[tuple[str, str]] = []
        for group, members in self.groups.items():
            for index, member in enumerate(members):
                if member not in known:
                    problems.append((f"groups.{group}[{index}]", f"unknown identity {member!r}"))
        for index, rule in enumerate(self.remote_parties):
            where = f"remote_parties[{index}].local"
            if rule.local.startswith("group:"):
                if rule.local.removeprefix("group:") not in self.groups:
                    problems.append((where, f"unknown group {rule.local!r}"))
            elif rule.local != "*" and rule.local not in known:
                problems.append((where, f"unknown identity {rule.local!r}"))
        for index, identity in enumerate(self.rendezvous.allow_identities):
            if identity not in known:
                where = f"rendezvous.allow_identities[{index}]"
                problems.append((where, f"unknown identity {identity!r}"))
        problems += _duplicate_names("rules", [rule.name for rule in self.rules])
        problems += _duplicate_names("remote_parties", [r.name for r in self.remote_parties])
        problems += self._disclaimer_size_problems()
        _raise_field_problems(problems)
        return self

    def _disclaimer_size_problems(self) -> list[tuple[str, str]]:
        """Check that each disclaimer fits the message size limit at its longest."""
        disclaimer = self.disclaimer
        limit = disclaimer.max_message_bytes
        problems = []
        for name in ("outbound", "inbound"):
            template = getattr(disclaimer, name)
            if not template:
                continue
            size = max_rendered_size(
                template, self.notice_prefix, self.identities.values(), disclaimer.timezone
            )
            if size > limit:
                reason = (
                    f"the rendered text can take {size} bytes, over the limit of {limit} "
                    f"bytes (disclaimer.max_message_bytes), counting screen names at 16 "
                    f"characters and the notice prefix; shorten the text"
                )
                problems.append((f"disclaimer.{name}", reason))
        return problems


def _duplicate_names(where: str, names: list[str]) -> list[tuple[str, str]]:
    problems = []
    for index, name in enumerate(names):
        if name in names[:index]:
            first = names.index(name)
            problems.append((f"{where}[{index}].name", f"{name!r} is also the name of [{first}]"))
    return problems


class HealthConfig(_Model):
    """The HTTP server for /healthz, /readyz and /metrics."""

    host: str = Field(default=ALL_INTERFACES, description="Local address of the health server.")
    port: Port = Field(default=8080, description="TCP port of the health server.")

    @field_validator("host")
    @classmethod
    def _valid_host(cls, host: str) -> str:
        return _check_host(host)


class LoggingConfig(_Model):
    """Log output."""

    format: Literal["text", "json"] = Field(
        default="text",
        description="text for one readable line per event, json for one JSON object.",
    )
    level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest level written: debug, info, warning or error."
    )

    @field_validator("format", "level", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class Config(_Model):
    """The whole proxy configuration."""

    listen: ListenConfig = Field(default=ListenConfig(), description="Where AIM clients connect.")
    advertise: AdvertiseConfig = Field(
        default=AdvertiseConfig(), description="The address handed to clients."
    )
    upstream: UpstreamConfig = Field(
        default=UpstreamConfig(), description="The real OSCAR servers."
    )
    relay: RelayConfig = Field(default=RelayConfig(), description="Relay limits and timers.")
    archive: ArchiveConfig = Field(default=ArchiveConfig(), description="Message archive.")
    policy: PolicyConfig = Field(default=PolicyConfig(), description="Compliance policy.")
    health: HealthConfig = Field(
        default=HealthConfig(), description="Health and metrics HTTP server."
    )
    logging: LoggingConfig = Field(default=LoggingConfig(), description="Log format and level.")

    @model_validator(mode="before")
    @classmethod
    def _reject_http_proxy(cls, data: Any) -> Any:
        # NOTE: this runs before the fields are validated, so when it rejects a key the
        # other errors in the same file are reported only on the next check.
        _reject_http_proxy_keys(data, ("http_proxy", "https_proxy", "proxy"))
        return data

    @model_validator(mode="after")
    def _health_port_free(self) -> Config:
        if self.health.port in self.listen.ports:
            reason = f"{self.health.port} is also in listen.ports; choose another port"
            _raise_field_problems([("health.port", reason)])
        return self

    def model_dump_yaml(self) -> str:
        """Return the configuration as YAML that ``load_config`` reads back unchanged."""
        return render_config_yaml(self)


def render_config_yaml(config: Config) -> str:
    """Return ``config`` as YAML, in field order; this is what the operator writes."""
    return yaml.safe_dump(
        config.model_dump(mode="json"), sort_keys=False, default_flow_style=False
    )


def _format_location(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _join_path(base: str, relative: str) -> str:
    if not base:
        return relative
    return base + relative if relative.startswith("[") else f"{base}.{relative}"


def _format_errors(error: ValidationError) -> list[str]:
    """Turn pydantic's errors into lines of the form ``dotted.path: reason``."""
    lines = []
    for detail in error.errors(include_url=False):
        location = _format_location(detail["loc"])
        if detail["type"] == "field_problems":
            for relative, reason in detail["ctx"]["problems"]:
                lines.append(f"{_join_path(location, relative)}: {reason}")
            continue
        if detail["type"] == "extra_forbidden":
            message = "unknown field"
        else:
            message = detail["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}" if location else message)
    return lines


def parse_config(data: Mapping[str, Any] | None) -> Config:
    """Validate a mapping (parsed YAML or JSON) into a ``Config``; raise ``ConfigError``."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"the configuration must be a mapping, not {type(data).__name__}")
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_errors(error)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a mapping with a repeated key."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def read_config_file(path: str | os.PathLike[str]) -> Any:
    """Read a YAML file into plain Python data without validating it; raise ``ConfigError``.

    An empty file gives None. A key repeated in one mapping is an error.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"failed to read config file {str(path)!r}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8: {error}") from error
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise ConfigError(f"invalid YAML in {str(path)!r}: {error}") from error


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML configuration file; raise ``ConfigError``.

    An empty file gives the defaults.
    """
    return parse_config(read_config_file(path))
