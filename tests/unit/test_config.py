"""Tests for the proxy's configuration model (imtegrity_proxy.config)."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml
from imtegrity_proxy import log
from imtegrity_proxy.config import (
    Config,
    ConfigError,
    load_config,
    normalize_screen_name,
    parse_config,
    parse_host_port,
    render_config_yaml,
)
from pydantic import SecretStr

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "examples" / "proxy-config.yaml"

FULL_CONFIG: dict[str, Any] = {
    "listen": {"host": "127.0.0.1", "ports": [5190, 5191]},
    "advertise": {"host": "aim.example.com"},
    "upstream": {
        "servers": ["login.oscar.aol.com:5190", "[::1]:5190", "127.0.0.1:5191"],
        "connect_timeout_seconds": 2.5,
        "source_addresses": ["127.0.0.2", "::1"],
        "socks": {
            "proxies": [
                {
                    "version": 5,
                    "host": "127.0.0.1",
                    "port": 1080,
                    "username": "proxyuser",
                    "password_env": "IMTEGRITY_TEST_SOCKS_PASSWORD",
                },
                {"version": 4, "host": "socks4.example.com", "remote_dns": True},
            ],
            "connect_timeout_seconds": 3,
            "handshake_timeout_seconds": 4,
            "check_in_readiness": True,
        },
    },
    "relay": {
        "cookie_ttl_seconds": 60,
        "max_cookies": 10,
        "max_frame_payload": 8192,
        "shutdown_grace_seconds": 5,
        "idle_timeout_seconds": 900,
    },
    "archive": {"path": "/tmp/archive.sqlite3", "max_batch": 16, "max_delay_ms": 1},
    "policy": {
        "identities": {"Alice Smith": "alice@example.com", "BOB": "bob@example.com"},
        "groups": {"traders": ["bob@example.com"]},
        "unregistered": "deny",
        "denied_signon": {"code": 2, "url": "https://example.com/policy"},
        "disclaimer": {
            "outbound": "recorded",
            "inbound": "recorded too",
            "scope": "session",
            "timezone": "Europe/Berlin",
        },
        "rules": [
            {"name": "cards", "pattern": r"\d{16}", "action": "redact", "applies_to": ["im"]},
            {"name": "words", "pattern": "(?i)secret", "action": "block", "notice": "no"},
        ],
        "remote_parties": [
            {"name": "traders", "action": "deny", "local": "group:traders", "remote": "*"},
            {"name": "alice", "action": "allow", "local": "alice@example.com", "room": "x*"},
        ],
        "rendezvous": {
            "file_transfer": "allow",
            "direct_im": "block",
            "get_file": "block",
            "allow_identities": ["alice@example.com"],
        },
    },
    "health": {"host": "127.0.0.1", "port": 9090},
    "logging": {"format": "json", "level": "debug"},
}


def config_with(path: str, value: Any) -> dict[str, Any]:
    """Return a copy of FULL_CONFIG with the dotted ``path`` set to ``value``."""
    data = copy.deepcopy(FULL_CONFIG)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    node[last] = value
    return data


def errors_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.errors


# ---- defaults, round trip, schema -----------------------------------------------------


def test_defaults_match_documented_values() -> None:
    config = parse_config({})
    assert config.listen.host == "0.0.0.0"
    assert config.listen.ports == [5190]
    assert config.advertise.host is None
    assert config.upstream.servers == ["login.oscar.aol.com:5190"]
    assert config.upstream.connect_timeout_seconds == 10
    assert config.upstream.source_addresses == []
    assert config.upstream.socks is None
    assert config.relay.cookie_ttl_seconds == 300
    assert config.relay.max_cookies == 100_000
    assert config.relay.max_frame_payload == 65535
    assert config.relay.shutdown_grace_seconds == 30
    assert config.relay.idle_timeout_seconds == 0
    assert config.archive.path == "imtegrity-archive.sqlite3"
    assert config.archive.max_batch == 256
    assert config.archive.max_delay_ms == 0
    assert config.policy.unregistered == "allow"
    assert config.policy.denied_signon.code == 1
    assert config.policy.disclaimer.scope == "conversation-day"
    assert config.policy.disclaimer.timezone == "UTC"
    assert config.policy.rendezvous.direct_im == "block"
    assert config.health.port == 8080
    assert config.logging.format == "text"
    assert config.logging.level == "info"


def test_none_gives_defaults() -> None:
    assert parse_config(None) == parse_config({})


def test_defaults_not_shared_between_instances() -> None:
    first = parse_config({})
    second = parse_config({})
    first.listen.ports.append(6000)
    first.policy.identities["x"] = "y"
    assert second.listen.ports == [5190]
    assert second.policy.identities == {}


def test_full_config_parses() -> None:
    config = parse_config(FULL_CONFIG)
    assert config.upstream.socks is not None
    assert config.upstream.socks.proxies[1].version == 4
    assert config.policy.identities == {
        "alicesmith": "alice@example.com",
        "bob": "bob@example.com",
    }
    assert config.policy.rules[0].applies_to == ["im"]
    assert config.policy.rules[1].applies_to == ["im", "chat"]


def test_yaml_round_trip(tmp_path: Path) -> None:
    config = parse_config(FULL_CONFIG)
    rendered = render_config_yaml(config)
    path = tmp_path / "config.yaml"
    path.write_text(rendered, encoding="utf-8")
    assert load_config(path) == config
    assert config.model_dump_yaml() == rendered


def test_yaml_keeps_field_order() -> None:
    rendered = yaml.safe_load(parse_config({}).model_dump_yaml())
    assert list(rendered) == [
        "listen",
        "advertise",
        "upstream",
        "relay",
        "archive",
        "policy",
        "health",
        "logging",
    ]


def schema_objects(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("Config", schema), *schema.get("$defs", {}).items()]


def test_schema_describes_every_field() -> None:
    schema = Config.model_json_schema()
    for model, definition in schema_objects(schema):
        for field, prop in definition["properties"].items():
            assert prop.get("description"), f"{model}.{field} has no description"


def test_schema_gives_defaults_to_optional_fields() -> None:
    schema = Config.model_json_schema()
    for model, definition in schema_objects(schema):
        required = set(definition.get("required", []))
        for field, prop in definition["properties"].items():
            if field not in required:
                assert "default" in prop, f"{model}.{field} has no default"


def test_schema_required_fields_only_in_list_items() -> None:
    schema = Config.model_json_schema()
    required = {
        model: sorted(definition.get("required", []))
        for model, definition in schema_objects(schema)
        if definition.get("required")
    }
    assert required == {
        "ContentRule": ["name", "pattern"],
        "RemotePartyRule": ["name"],
        "SocksConfig": ["proxies"],
        "SocksProxy": ["host"],
    }


def test_schema_forbids_extra_fields() -> None:
    schema = Config.model_json_schema()
    for model, definition in schema_objects(schema):
        assert definition.get("additionalProperties") is False, model


def test_example_file_is_valid() -> None:
    config = load_config(EXAMPLE)
    assert config.listen.ports == [5190, 443]
    assert config.policy.unregistered == "deny"
    assert len(config.policy.rules) == 2


# ---- unknown fields ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"listne": {}}, "listne: unknown field"),
        ({"listen": {"port": 5190}}, "listen.port: unknown field"),
        (
            config_with("policy.rules", [{"name": "a", "pattern": "x", "actoin": "block"}]),
            "policy.rules[0].actoin: unknown field",
        ),
    ],
)
def test_unknown_field_rejected(data: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(data)


def test_several_errors_reported_together() -> None:
    data = config_with("relay.max_cookies", 0)
    data["listen"]["ports"] = [0]
    data["logging"]["level"] = "loud"
    errors = errors_of(data)
    assert any(line.startswith("relay.max_cookies: ") for line in errors)
    assert any(line.startswith("listen.ports[0]: ") for line in errors)
    assert any(line.startswith("logging.level: ") for line in errors)


def test_top_level_must_be_mapping() -> None:
    errors = errors_of(["listen"])
    assert errors == ["the configuration must be a mapping, not list"]


# ---- listen, upstream, health -------------------------------------------------------------


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ([], "listen.ports: List should have at least 1 item"),
        ([0], "listen.ports[0]: Input should be greater than or equal to 1"),
        ([5190, 65536], "listen.ports[1]: Input should be less than or equal to 65535"),
        ([5190, 443, 5190], "listen.ports: duplicate ports [5190]"),
    ],
)
def test_listen_ports_checked(ports: list[int], expected: str) -> None:
    errors = errors_of(config_with("listen.ports", ports))
    assert any(line.startswith(expected) for line in errors), errors


@pytest.mark.parametrize("host", ["bad host", "-leading.example.com", "a..b", ""])
def test_listen_host_checked(host: str) -> None:
    errors = errors_of(config_with("listen.host", host))
    assert any(line.startswith("listen.host: invalid host") for line in errors), errors


@pytest.mark.parametrize("host", ["::", "127.0.0.1", "localhost", "proxy.example.com."])
def test_listen_host_accepts_addresses_and_names(host: str) -> None:
    assert parse_config(config_with("listen.host", host)).listen.host == host


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("login.oscar.aol.com:5190", ("login.oscar.aol.com", 5190)),
        ("127.0.0.1:1", ("127.0.0.1", 1)),
        ("[::1]:65535", ("::1", 65535)),
        ("[2001:db8::5]:443", ("2001:db8::5", 443)),
    ],
)
def test_parse_host_port_valid(value: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("x", "expected host:port"),
        (":5190", "expected host:port"),
        ("host:", "port must be a number"),
        ("host:0", "port must be a number"),
        ("host:65536", "port must be a number"),
        ("host:http", "port must be a number"),
        ("::1:5190", "write an IPv6 address in brackets"),
        ("[::1]5190", "expected [IPv6 address]:port"),
        ("[127.0.0.1]:5190", "is not an IPv6 address"),
        ("bad_host:5190", "is not an IP address or a DNS host name"),
    ],
)
def test_parse_host_port_invalid(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match="invalid host:port") as caught:
        parse_host_port(value)
    assert reason in str(caught.value)


def test_upstream_server_error_has_index_path() -> None:
    errors = errors_of(config_with("upstream.servers", ["login.oscar.aol.com:5190", "x"]))
    assert errors == [
        "upstream.servers[1]: invalid host:port 'x': "
        "expected host:port, for example login.oscar.aol.com:5190"
    ]


def test_upstream_needs_a_server() -> None:
    errors = errors_of(config_with("upstream.servers", []))
    assert errors[0].startswith("upstream.servers: List should have at least 1 item")


def test_server_addresses_parsed() -> None:
    config = parse_config(FULL_CONFIG)
    assert config.upstream.server_addresses() == [
        ("login.oscar.aol.com", 5190),
        ("::1", 5190),
        ("127.0.0.1", 5191),
    ]


def test_source_addresses_normalized() -> None:
    data = config_with("upstream.source_addresses", ["0:0:0:0:0:0:0:1", "127.0.0.2"])
    assert parse_config(data).upstream.source_addresses == ["::1", "127.0.0.2"]


def test_source_address_invalid() -> None:
    errors = errors_of(config_with("upstream.source_addresses", ["127.0.0.1", "eth0"]))
    assert errors == ["upstream.source_addresses[1]: invalid IP address 'eth0'"]


def test_source_address_duplicate() -> None:
    errors = errors_of(config_with("upstream.source_addresses", ["::1", "0::1"]))
    assert errors == ["upstream.source_addresses: duplicate source addresses ['::1']"]


@pytest.mark.parametrize("field", ["upstream.connect_timeout_seconds", "relay.cookie_ttl_seconds"])
def test_durations_must_be_positive(field: str) -> None:
    errors = errors_of(config_with(field, 0))
    assert errors == [f"{field}: Input should be greater than 0"]


def test_max_frame_payload_bounded() -> None:
    errors = errors_of(config_with("relay.max_frame_payload", 65536))
    assert errors == ["relay.max_frame_payload: Input should be less than or equal to 65535"]


def test_health_port_must_differ_from_listen_port() -> None:
    errors = errors_of(config_with("health.port", 5191))
    assert errors == ["health.port: 5191 is also in listen.ports; choose another port"]


def test_logging_names_case_insensitive() -> None:
    data = config_with("logging", {"format": "JSON", "level": "Warning"})
    config = parse_config(data)
    assert config.logging.format == "json"
    assert config.logging.level == "warning"


# ---- SOCKS and HTTP proxies --------------------------------------------------------------


def socks_with(proxy: dict[str, Any]) -> dict[str, Any]:
    return config_with("upstream.socks", {"proxies": [proxy]})


@pytest.mark.parametrize(
    ("data", "location"),
    [
        (socks_with({"version": "http", "host": "p"}), "upstream.socks.proxies[0].version"),
        (socks_with({"version": "HTTPS", "host": "p"}), "upstream.socks.proxies[0].version"),
        (socks_with({"url": "http://p:3128"}), "upstream.socks.proxies[0].url"),
        (socks_with({"url": "https://p:3128"}), "upstream.socks.proxies[0].url"),
        (config_with("upstream.socks", {"version": "http", "host": "p"}), "upstream.socks"),
        (config_with("upstream.socks", "http://p:3128"), "upstream.socks"),
        (config_with("upstream.socks", {"http_proxy": "p:3128"}), "upstream.socks.http_proxy"),
        (config_with("upstream.http_proxy", "http://p:3128"), "upstream.http_proxy"),
        (config_with("upstream.https_proxy", "http://p:3128"), "upstream.https_proxy"),
        (config_with("http_proxy", "http://p:3128"), "http_proxy"),
        (config_with("https_proxy", "http://p:3128"), "https_proxy"),
    ],
)
def test_http_proxy_rejected(data: dict[str, Any], location: str) -> None:
    errors = errors_of(data)
    assert len(errors) == 1
    assert errors[0].startswith(f"{location}: ")
    assert "only SOCKS4 and SOCKS5 proxies are supported" in errors[0]


@pytest.mark.parametrize("version", [4, 5, "4", "5", "socks5"])
def test_socks_versions_accepted(version: Any) -> None:
    config = parse_config(socks_with({"version": version, "host": "127.0.0.1"}))
    assert config.upstream.socks is not None
    assert config.upstream.socks.proxies[0].version == int(str(version)[-1])


def test_socks_version_3_rejected() -> None:
    errors = errors_of(socks_with({"version": 3, "host": "127.0.0.1"}))
    assert errors == ["upstream.socks.proxies[0].version: Input should be 4 or 5"]


def test_socks_flat_form_rejected() -> None:
    errors = errors_of(config_with("upstream.socks", {"version": 5, "host": "p", "port": 1080}))
    assert errors == [
        "upstream.socks: list each SOCKS proxy under proxies, as proxies: [{host: ...}]"
    ]


def test_socks_needs_a_proxy() -> None:
    errors = errors_of(config_with("upstream.socks", {"proxies": []}))
    assert errors[0].startswith("upstream.socks.proxies: List should have at least 1 item")


def test_socks4_password_rejected() -> None:
    proxy = {"version": 4, "host": "p", "username": "u", "password_env": "X"}
    errors = errors_of(socks_with(proxy))
    assert errors == [
        "upstream.socks.proxies[0].password_env: SOCKS4 has no password; use version 5"
    ]


def test_socks_password_needs_username() -> None:
    errors = errors_of(socks_with({"host": "p", "password_file": "/run/secret"}))
    assert errors == [
        "upstream.socks.proxies[0].username: password_file is set, so a username is required"
    ]


def test_socks_password_sources_exclusive() -> None:
    proxy = {"host": "p", "username": "u", "password_file": "/f", "password_env": "E"}
    errors = errors_of(socks_with(proxy))
    assert errors == [
        "upstream.socks.proxies[0].password_env: set password_file or password_env, not both"
    ]


def test_socks_inline_password_rejected() -> None:
    errors = errors_of(socks_with({"host": "p", "username": "u", "password": "hunter2"}))
    assert errors == ["upstream.socks.proxies[0].password: unknown field"]


def test_socks_describe_hides_credentials() -> None:
    proxy = {"host": "::1", "port": 1081, "username": "proxyuser", "password_env": "E"}
    config = parse_config(socks_with(proxy))
    assert config.upstream.socks is not None
    description = config.upstream.socks.proxies[0].describe()
    assert description == "socks5 [::1]:1081 with authentication"
    assert "proxyuser" not in description


def test_socks4a_described() -> None:
    config = parse_config(socks_with({"version": 4, "host": "p", "remote_dns": True}))
    assert config.upstream.socks is not None
    assert config.upstream.socks.proxies[0].describe() == "socks4a p:1080"


@pytest.fixture
def clean_secrets() -> Any:
    log.clear_secrets()
    yield
    log.clear_secrets()


def test_resolve_password_from_file(tmp_path: Path, clean_secrets: None) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text("file-secret-42\n", encoding="utf-8")
    proxy = {"host": "p", "username": "u", "password_file": str(secret_file)}
    config = parse_config(socks_with(proxy))
    assert config.upstream.socks is not None
    password = config.upstream.socks.proxies[0].resolve_password()
    assert isinstance(password, SecretStr)
    assert password.get_secret_value() == "file-secret-42"
    assert log.redact("x file-secret-42 y") == "x *** y"


def test_resolve_password_from_env(monkeypatch: pytest.MonkeyPatch, clean_secrets: None) -> None:
    monkeypatch.setenv("IMTEGRITY_TEST_SOCKS_PASSWORD", "env-secret-17")
    config = parse_config(FULL_CONFIG)
    assert config.upstream.socks is not None
    password = config.upstream.socks.proxies[0].resolve_password()
    assert password is not None
    assert password.get_secret_value() == "env-secret-17"


def test_resolve_password_none_without_source() -> None:
    config = parse_config(socks_with({"host": "p"}))
    assert config.upstream.socks is not None
    assert config.upstream.socks.proxies[0].resolve_password() is None


def test_resolve_password_missing_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMTEGRITY_TEST_SOCKS_PASSWORD", raising=False)
    config = parse_config(FULL_CONFIG)
    assert config.upstream.socks is not None
    with pytest.raises(ConfigError, match="'IMTEGRITY_TEST_SOCKS_PASSWORD' is not set"):
        config.upstream.socks.proxies[0].resolve_password()


def test_resolve_password_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    config = parse_config(
        socks_with({"host": "p", "username": "u", "password_file": str(missing)})
    )
    assert config.upstream.socks is not None
    with pytest.raises(ConfigError, match="failed to read SOCKS password file"):
        config.upstream.socks.proxies[0].resolve_password()


def test_password_absent_from_model_output(
    monkeypatch: pytest.MonkeyPatch, clean_secrets: None
) -> None:
    monkeypatch.setenv("IMTEGRITY_TEST_SOCKS_PASSWORD", "never-printed-9")
    config = parse_config(FULL_CONFIG)
    assert config.upstream.socks is not None
    password = config.upstream.socks.proxies[0].resolve_password()
    assert "never-printed-9" not in repr(password)
    assert "never-printed-9" not in str(password)
    assert "never-printed-9" not in repr(config)
    assert "never-printed-9" not in str(config)
    assert "never-printed-9" not in config.model_dump_json()
    assert "never-printed-9" not in config.model_dump_yaml()


def test_resolved_password_redacted_in_logs(
    monkeypatch: pytest.MonkeyPatch, clean_secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    monkeypatch.setenv("IMTEGRITY_TEST_SOCKS_PASSWORD", "leaky-password-3")
    config = parse_config(FULL_CONFIG)
    assert config.upstream.socks is not None
    try:
        handler = log.setup_logging("text", "info")
        config.upstream.socks.proxies[0].resolve_password()
        log.upstream_logger.info("connecting with leaky-password-3")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    assert handler not in root.handlers
    output = capsys.readouterr().err
    assert "connecting with ***" in output
    assert "leaky-password-3" not in output


# ---- policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Alice Smith", "alicesmith"), ("  BoB  ", "bob"), ("already", "already"), ("", "")],
)
def test_normalize_screen_name(name: str, expected: str) -> None:
    assert normalize_screen_name(name) == expected


def test_identity_collision_names_both() -> None:
    identities = {"Joe User": "joe@example.com", "joeuser": "other@example.com"}
    errors = errors_of(config_with("policy", {"identities": identities}))
    assert errors == [
        "policy.identities: screen names 'Joe User' and 'joeuser' both normalise to 'joeuser'"
    ]


def test_identity_empty_screen_name() -> None:
    errors = errors_of(config_with("policy", {"identities": {"  ": "x@example.com"}}))
    assert errors == ["policy.identities: screen name '  ' is empty after normalisation"]


def test_identity_empty_value() -> None:
    errors = errors_of(config_with("policy", {"identities": {"joe": ""}}))
    assert errors == ["policy.identities: screen name 'joe' has an empty identity"]


def test_policy_unknown_references_listed() -> None:
    policy = {
        "identities": {"joe": "joe@example.com"},
        "groups": {"team": ["joe@example.com", "ghost@example.com"]},
        "remote_parties": [
            {"name": "a", "local": "group:nobody"},
            {"name": "b", "local": "stranger@example.com"},
            {"name": "c", "local": "*"},
            {"name": "d", "local": "group:team"},
        ],
        "rendezvous": {"allow_identities": ["joe@example.com", "who@example.com"]},
    }
    errors = errors_of(config_with("policy", policy))
    assert errors == [
        "policy.groups.team[1]: unknown identity 'ghost@example.com'",
        "policy.remote_parties[0].local: unknown group 'group:nobody'",
        "policy.remote_parties[1].local: unknown identity 'stranger@example.com'",
        "policy.rendezvous.allow_identities[1]: unknown identity 'who@example.com'",
    ]


def test_duplicate_rule_names_rejected() -> None:
    rules = [
        {"name": "same", "pattern": "a"},
        {"name": "other", "pattern": "b"},
        {"name": "same", "pattern": "c"},
    ]
    errors = errors_of(config_with("policy.rules", rules))
    assert errors == ["policy.rules[2].name: 'same' is also the name of [0]"]


def test_invalid_regex_rejected() -> None:
    errors = errors_of(config_with("policy.rules", [{"name": "r", "pattern": "(unclosed"}]))
    assert len(errors) == 1
    assert errors[0].startswith(
        "policy.rules[0].pattern: invalid regular expression '(unclosed': missing )"
    )


@pytest.mark.parametrize(
    ("rule", "location"),
    [
        ({"name": "r", "pattern": "x", "action": "delete"}, "policy.rules[0].action"),
        ({"name": "r", "pattern": "x", "applies_to": ["email"]}, "policy.rules[0].applies_to[0]"),
        ({"name": "r", "pattern": "x", "applies_to": []}, "policy.rules[0].applies_to"),
        ({"pattern": "x"}, "policy.rules[0].name"),
        ({"name": "r"}, "policy.rules[0].pattern"),
    ],
)
def test_rule_fields_checked(rule: dict[str, Any], location: str) -> None:
    errors = errors_of(config_with("policy.rules", [rule]))
    assert len(errors) == 1
    assert errors[0].startswith(f"{location}: ")


def test_remote_glob_normalized() -> None:
    data = config_with("policy.remote_parties", [{"name": "r", "remote": "Spam Bot*"}])
    assert parse_config(data).policy.remote_parties[0].remote == "spambot*"


def test_unknown_timezone_rejected() -> None:
    errors = errors_of(config_with("policy.disclaimer.timezone", "Mars/Olympus"))
    assert errors == ["policy.disclaimer.timezone: unknown time zone 'Mars/Olympus'"]


def test_unregistered_choice_checked() -> None:
    errors = errors_of(config_with("policy.unregistered", "maybe"))
    assert errors == ["policy.unregistered: Input should be 'allow' or 'deny'"]


# ---- files ---------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"failed to read config file .*No such file"):
        load_config(tmp_path / "absent.yaml")


def test_load_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("listen: {ports: [5190\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML in"):
        load_config(path)


def test_load_duplicate_key(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("policy:\n  identities:\n    joe: a@x\n    joe: b@x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'joe'"):
        load_config(path)


def test_load_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    assert load_config(path) == parse_config({})


def test_load_rejects_python_tags(tmp_path: Path) -> None:
    path = tmp_path / "tagged.yaml"
    path.write_text("listen: !!python/object/apply:os.getcwd []\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)


def test_server_with_scheme_names_the_scheme():
    with pytest.raises(ConfigError) as caught:
        parse_config({"upstream": {"servers": ["http://proxy.example.net:3128"]}})
    assert "without a scheme such as http://" in str(caught.value)
    assert "IPv6" not in str(caught.value)
