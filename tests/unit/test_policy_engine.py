"""The compiled policy: sign-on, content rule order, remote-party rules and rendezvous."""

from __future__ import annotations

import pytest
from imtegrity_proxy.config import ConfigError, PolicyConfig, parse_config
from imtegrity_proxy.policy.engine import Policy
from imtegrity_proxy.protocol.rendezvous import Capability


def compile_policy(**fields: object) -> Policy:
    return Policy(PolicyConfig.model_validate(fields))


IDENTITIES = {"Alice Smith": "alice@bank.example", "bob01": "bob@bank.example"}


def test_signon_allowed_by_registration() -> None:
    policy = compile_policy(identities=IDENTITIES, unregistered="deny")
    assert policy.signon_allowed("alicesmith")
    assert not policy.signon_allowed("mallory")
    assert compile_policy(identities=IDENTITIES).signon_allowed("mallory")


def test_identity_lookup_uses_normalised_names() -> None:
    policy = compile_policy(identities=IDENTITIES)
    assert policy.identity_of("alicesmith") == "alice@bank.example"
    assert policy.identity_of(None) is None
    assert policy.is_internal("BOB 01")
    assert not policy.is_internal("carol")


def test_first_matching_content_rule_wins() -> None:
    policy = compile_policy(
        rules=[
            {"name": "chat-only", "pattern": "x", "action": "block", "applies_to": ["chat"]},
            {"name": "first", "pattern": "(?i)promise", "action": "flag"},
            {"name": "second", "pattern": "promise", "action": "block"},
        ]
    )
    rule = policy.match_content("I promise", "im")
    assert rule is not None
    assert rule.name == "first"
    chat_rule = policy.match_content("x promise", "chat")
    assert chat_rule is not None
    assert chat_rule.name == "chat-only"
    assert policy.match_content("nothing here", "im") is None


def test_notice_texts() -> None:
    policy = compile_policy(
        rules=[
            {"name": "quiet", "pattern": "a", "action": "redact"},
            {"name": "loud", "pattern": "b", "action": "block", "notice": "No b."},
        ]
    )
    quiet, loud = policy.rules
    assert quiet.notice_text("redact", "bob", "outbound") == ""
    assert quiet.notice_text("block", "bob", "outbound") == (
        "This message was blocked by the compliance policy (rule quiet)."
    )
    assert quiet.notice_text("block", "bob", "inbound") == (
        "A message from bob was blocked by the compliance policy (rule quiet)."
    )
    assert loud.notice_text("block", "bob", "inbound") == "No b."


PARTIES = {
    "identities": IDENTITIES,
    "groups": {"traders": ["alice@bank.example"]},
    "remote_parties": [
        {"name": "desk", "action": "allow", "remote": "compliance*"},
        {"name": "rivals", "action": "deny", "local": "group:traders", "remote": "comp*"},
        {"name": "bob-only", "action": "deny", "local": "bob@bank.example", "remote": "eve"},
        {"name": "rooms", "action": "deny", "room": "Rumor*"},
        {"name": "room-sender", "action": "deny", "room": "*", "remote": "spammer*"},
    ],
}


@pytest.mark.parametrize(
    ("identity", "remote", "room", "rule"),
    [
        ("alice@bank.example", "Comp Rival", None, "rivals"),
        ("alice@bank.example", "compliance1", None, None),
        ("bob@bank.example", "comprival", None, None),  # not a trader
        (None, "comprival", None, None),  # unregistered users are in no group
        ("bob@bank.example", "E V E", None, "bob-only"),
        ("alice@bank.example", "eve", None, None),
        ("alice@bank.example", "anyone", "rumor mill", "rooms"),
        ("alice@bank.example", None, "RUMOR mill", "rooms"),
        ("alice@bank.example", "spammer9", "lobby", "room-sender"),
        ("alice@bank.example", None, "lobby", None),  # own chat: only remote "*" rules
        ("alice@bank.example", "comprival", "lobby", None),  # IM rules skip chat
    ],
)
def test_remote_party_rules(
    identity: str | None, remote: str | None, room: str | None, rule: str | None
) -> None:
    policy = compile_policy(**PARTIES)
    denied = policy.denying_party_rule(identity, remote, room)
    assert (denied.name if denied is not None else None) == rule


def test_party_notice_default_and_configured() -> None:
    policy = compile_policy(**PARTIES)
    denied = policy.denying_party_rule("alice@bank.example", "comprival")
    assert denied is not None
    assert policy.party_notice(denied, "CompRival") == (
        "Messages with CompRival are not allowed by the compliance policy (rule rivals)."
    )


def test_rendezvous_defaults_block_peer_to_peer() -> None:
    policy = compile_policy(identities=IDENTITIES)
    assert policy.rendezvous_blocked(Capability.SEND_FILE, "alice@bank.example")
    assert policy.rendezvous_blocked(Capability.GET_FILE, None)
    assert policy.rendezvous_blocked(Capability.DIRECT_IM, None)
    assert not policy.rendezvous_blocked(Capability.CHAT_INVITE, None)
    assert not policy.rendezvous_blocked(None, None)


def test_rendezvous_allowed_per_identity_and_kind() -> None:
    policy = compile_policy(
        identities=IDENTITIES,
        rendezvous={"allow_identities": ["bob@bank.example"], "direct_im": "allow"},
    )
    assert not policy.rendezvous_blocked(Capability.SEND_FILE, "bob@bank.example")
    assert policy.rendezvous_blocked(Capability.SEND_FILE, "alice@bank.example")
    assert not policy.rendezvous_blocked(Capability.DIRECT_IM, "alice@bank.example")


def test_content_rule_replacement_is_one_character() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({"policy": {"rules": [{"name": "r", "pattern": "x", "replacement": "**"}]}})
    assert "policy.rules[0].replacement" in str(error.value)
