"""The compiled policy: the decisions the relay requests, one method per question.

``Policy`` is built once from a validated ``PolicyConfig`` (at start and on each
reload) and never changes, so a connection that holds one keeps a consistent
view while a reload swaps in the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal

from ..config import ContentRule, PolicyConfig, RemotePartyRule
from ..protocol.rendezvous import Capability
from ..protocol.userinfo import normalize_screen_name

MessageKind = Literal["im", "chat"]

# Rendezvous whose content goes from peer to peer and so never passes the proxy.
_PEER_TO_PEER = {
    Capability.SEND_FILE: "file_transfer",
    Capability.DIRECT_IM: "direct_im",
    Capability.GET_FILE: "get_file",
}

DEFAULT_RENDEZVOUS_NOTICE = (
    "File transfers and direct connections are not allowed by the compliance policy."
)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A content rule with its pattern compiled."""

    config: ContentRule
    regex: re.Pattern[str]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def action(self) -> str:
        return self.config.action

    def notice_text(self, action: str, remote: str, direction: str) -> str:
        """Return the notice for the local user: the configured text, or one for a block.

        Redactions and flags without a configured notice are silent.
        """
        if self.config.notice:
            return self.config.notice
        if action != "block":
            return ""
        if direction == "inbound":
            return (
                f"A message from {remote} was blocked by the compliance policy (rule {self.name})."
            )
        return f"This message was blocked by the compliance policy (rule {self.name})."


class Policy:
    """Decisions of one policy version: sign-on, content, remote parties and rendezvous."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self.rules = tuple(CompiledRule(rule, re.compile(rule.pattern)) for rule in config.rules)
        self._groups = {name: frozenset(members) for name, members in config.groups.items()}
        self._rendezvous_identities = frozenset(config.rendezvous.allow_identities)

    # Sign-on and identities

    def identity_of(self, local: str | None) -> str | None:
        """Return the corporate identity of a normalised screen name, or None."""
        return self.config.identities.get(local) if local else None

    def is_internal(self, screen_name: str) -> bool:
        """Return True when ``screen_name`` belongs to a registered local user."""
        return normalize_screen_name(screen_name) in self.config.identities

    def signon_allowed(self, local: str) -> bool:
        return self.config.unregistered == "allow" or local in self.config.identities

    # Content

    def match_content(self, plain: str, kind: MessageKind) -> CompiledRule | None:
        """Return the first rule for ``kind`` whose pattern occurs in ``plain``."""
        for rule in self.rules:
            if kind in rule.config.applies_to and rule.regex.search(plain):
                return rule
        return None

    # Remote parties

    def denying_party_rule(
        self, identity: str | None, remote: str | None, room: str | None = None
    ) -> RemotePartyRule | None:
        """Return the rule that denies this exchange, or None when it is allowed.

        ``remote`` is None for the user's own chat messages, whose audience is the
        whole room: only rules with ``remote: "*"`` match them. Rules without a
        ``room`` match direct messages only; rules with one match chat only.
        """
        name = normalize_screen_name(remote) if remote is not None else None
        for rule in self.config.remote_parties:
            if self._party_rule_matches(rule, identity, name, room):
                return rule if rule.action == "deny" else None
        return None

    def _party_rule_matches(
        self, rule: RemotePartyRule, identity: str | None, remote: str | None, room: str | None
    ) -> bool:
        if not self._local_matches(rule.local, identity):
            return False
        if rule.room is None:
            if room is not None:
                return False
        elif room is None or not fnmatchcase(room.lower(), rule.room.lower()):
            return False
        if remote is None:
            return rule.remote == "*"
        return fnmatchcase(remote, rule.remote)

    def _local_matches(self, pattern: str, identity: str | None) -> bool:
        if pattern == "*":
            return True
        if identity is None:
            return False
        if pattern.startswith("group:"):
            return identity in self._groups.get(pattern.removeprefix("group:"), frozenset())
        return pattern == identity

    @staticmethod
    def party_notice(rule: RemotePartyRule, remote: str) -> str:
        if rule.notice:
            return rule.notice
        return (
            f"Messages with {remote} are not allowed by the compliance policy (rule {rule.name})."
        )

    # Rendezvous

    def rendezvous_blocked(self, capability: Capability | None, identity: str | None) -> bool:
        """Return True when a proposal of ``capability`` from or to ``identity`` is blocked.

        Only peer-to-peer kinds (Send File, Get File, Direct IM) are ever blocked;
        chat invitations and unknown capabilities pass.
        """
        setting = _PEER_TO_PEER.get(capability) if capability is not None else None
        if setting is None:
            return False
        if identity is not None and identity in self._rendezvous_identities:
            return False
        return bool(getattr(self.config.rendezvous, setting) == "block")

    def rendezvous_notice(self) -> str:
        return self.config.rendezvous.notice or DEFAULT_RENDEZVOUS_NOTICE
