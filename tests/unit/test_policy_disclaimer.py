"""Disclaimer templates, their size limit in the config, and how often they repeat."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from imtegrity_proxy.config import ConfigError, parse_config
from imtegrity_proxy.policy.disclaimer import (
    Conversation,
    DisclaimerTracker,
    encoded_size,
    max_rendered_size,
    placeholder_problems,
    render,
)


def test_render_fills_every_placeholder() -> None:
    template = "{date} {time} {timezone} {local} {identity} {remote} {{literal}}"
    moment = datetime(2024, 3, 5, 4, 30, tzinfo=UTC)
    text = render(template, Conversation("Alice", "bob", "a@bank"), moment, "America/New_York")
    assert text == "2024-03-04 23:30 America/New_York Alice a@bank bob {literal}"


def test_render_identity_falls_back_to_screen_name() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    text = render("{identity}", Conversation("Alice", "bob", None), moment, "UTC")
    assert text == "Alice"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("Hi {name}", "unknown placeholder {name}"),
        ("Hi {}", "unknown placeholder {}"),
        ("Hi {0}", "unknown placeholder {0}"),
        ("{date:>20}", "placeholder {date} takes no format spec or conversion"),
        ("{local!r}", "placeholder {local} takes no format spec or conversion"),
        ("unbalanced {", "invalid placeholder syntax"),
    ],
)
def test_placeholder_problems(template: str, problem: str) -> None:
    problems = placeholder_problems(template)
    assert len(problems) == 1
    assert problem in problems[0]


def test_known_placeholders_accepted() -> None:
    assert placeholder_problems("{date} {time} {timezone} {local} {identity} {remote}") == []


def test_encoded_size_by_charset() -> None:
    assert encoded_size("abc") == 3
    assert encoded_size("Café") == 4  # ISO-8859-1
    assert encoded_size("Привет") == 12  # UCS-2
    assert encoded_size("👋") == 4  # a surrogate pair


def test_max_rendered_size_counts_longest_values() -> None:
    size = max_rendered_size("{local}|{remote}|{identity}", "", ["short", "x" * 30], "UTC")
    assert size == 16 + 1 + 16 + 1 + 30
    size = max_rendered_size("{identity}", "[n] ", ["Ωmega"], "UTC")
    assert size == max(encoded_size("[n] Ωmega"), 4 + 16)


def disclaimer_config(**disclaimer: object) -> dict[str, object]:
    return {"policy": {"identities": {"alice": "alice@bank.example"}, "disclaimer": disclaimer}}


def test_config_rejects_unknown_placeholder_naming_field() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(disclaimer_config(inbound="Hello {user}"))
    assert error.value.errors == [
        "policy.disclaimer.inbound: unknown placeholder {user}; use {date}, {time}, "
        "{timezone}, {local}, {identity}, {remote}"
    ]


def test_config_rejects_disclaimer_over_limit() -> None:
    template = "x" * 470 + " {local} {remote}"  # 470 + 2 + 32 + "[notice] " = 513
    with pytest.raises(ConfigError) as error:
        parse_config(disclaimer_config(outbound=template))
    assert len(error.value.errors) == 1
    message = error.value.errors[0]
    assert message.startswith("policy.disclaimer.outbound: the rendered text can take 513 bytes")
    assert "limit of 512 bytes" in message


def test_config_accepts_disclaimer_at_limit() -> None:
    template = "x" * 469 + " {local} {remote}"
    config = parse_config(disclaimer_config(outbound=template))
    assert config.policy.disclaimer.outbound == template


def test_config_limit_counts_identity_and_ucs2() -> None:
    data = disclaimer_config(outbound="Ж" * 200 + "{identity}", max_message_bytes=512)
    policy = data["policy"]
    assert isinstance(policy, dict)
    policy["identities"] = {"alice": "Ω" * 60}
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert "can take 538 bytes" in error.value.errors[0]  # (9 + 200 + 60) * 2


def test_config_limit_configurable() -> None:
    config = parse_config(disclaimer_config(outbound="x" * 600, max_message_bytes=1000))
    assert config.policy.disclaimer.max_message_bytes == 1000


DAY = date(2024, 3, 4)


def test_day_scope_once_per_pair_and_day() -> None:
    tracker = DisclaimerTracker()
    assert tracker.claim("conversation-day", "s1", "alice", "bob", DAY)
    assert not tracker.claim("conversation-day", "s2", "alice", "bob", DAY)
    assert tracker.claim("conversation-day", "s1", "alice", "carol", DAY)
    assert tracker.claim("conversation-day", "s1", "dave", "bob", DAY)
    next_day = date(2024, 3, 5)
    assert tracker.claim("conversation-day", "s1", "alice", "bob", next_day)
    assert not tracker.claim("conversation-day", "s1", "alice", "bob", next_day)


def test_session_scope_once_per_session_and_remote() -> None:
    tracker = DisclaimerTracker()
    assert tracker.claim("session", "s1", "alice", "bob", DAY)
    assert not tracker.claim("session", "s1", "alice", "bob", DAY)
    assert tracker.claim("session", "s1", "alice", "carol", DAY)
    assert tracker.claim("session", "s2", "alice", "bob", DAY)
    tracker.end_session("s1")
    assert tracker.claim("session", "s1", "alice", "bob", DAY)


def test_message_scope_always_due() -> None:
    tracker = DisclaimerTracker()
    assert tracker.claim("message", "s1", "alice", "bob", DAY)
    assert tracker.claim("message", "s1", "alice", "bob", DAY)


@pytest.mark.parametrize("scope", ["conversation-day", "session"])
def test_release_makes_disclaimer_due_again(scope: str) -> None:
    tracker = DisclaimerTracker()
    assert tracker.claim(scope, "s1", "alice", "bob", DAY)  # type: ignore[arg-type]
    tracker.release(scope, "s1", "alice", "bob")  # type: ignore[arg-type]
    assert tracker.claim(scope, "s1", "alice", "bob", DAY)  # type: ignore[arg-type]
