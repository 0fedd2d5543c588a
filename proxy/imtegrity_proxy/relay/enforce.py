"""Policy on the messages of one connection: IMs, chat, typing and rendezvous.

Every handler reads the current policy when its frame arrives, so a reload
applies from the next message on. The order is always: decide, archive, then
inject, forward or withhold. Records keep the text as the sender wrote it,
with the action taken and the rule that decided. A message that cannot be
archived is not delivered. Withheld frames go through the inspector's
``_withhold_from_client`` and ``_withhold_from_server`` (``FrameSink.drop``) and
injected ones through ``FrameSink.inject``, so the FLAP sequence each peer sees
has no gap.

Rules read the text of channel-1 IMs, channel-4 (ICQ-style) messages and the
invitation text of channel-2 rendezvous, and of chat messages. An ICBM on
another channel, or a message whose body does not decode, is withheld and
archived as blocked with the rule ``unreadable-message``. The session stays
open in both cases.

Notices reach the local user in the conversation they concern: an IM notice
arrives as a message apparently from the remote party, a chat notice as a room
message from ``policy.notice_sender``. Both start with ``policy.notice_prefix``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..archive import ArchiveRecord
from ..config import RemotePartyRule
from ..policy.disclaimer import Conversation, encoded_size, render
from ..policy.engine import MessageKind, Policy
from ..policy.redact import (
    RedactionError,
    redact_chat,
    redact_icbm,
    redact_icq,
    redact_invitation,
)
from ..protocol.chat import ChatMessage, parse_chat_receive, parse_chat_send
from ..protocol.enums import Family, IcbmChannel, IcbmTlv, RendezvousType
from ..protocol.errors import ProtocolError
from ..protocol.flap import MAX_PAYLOAD, Flap
from ..protocol.icbm import (
    Icbm,
    parse_client_error,
    parse_icbm_receive,
    parse_icbm_send,
    parse_typing,
)
from ..protocol.rendezvous import Capability, Rendezvous, parse_rendezvous_block
from ..protocol.snac import HEADER_SIZE, Snac
from ..protocol.tlv import find_tlv
from ..protocol.userinfo import normalize_screen_name
from . import records
from .inject import Injector, fits_screen_name
from .records import UNREADABLE_RULE, ShownText
from .state import SessionState

if TYPE_CHECKING:
    from .inspect import Inspector

log = logging.getLogger("imtegrity.policy")

# Byte offset of the maximum message length in an ICBM parameter reply
# (0x0004/0x0005): max slots (u16), ICBM flags (u32), then max length (u16).
_PARAMETERS_MAX_LENGTH = slice(6, 8)


# Redact a message with (pattern, replacement); return the new SNAC body and its plain text.
Rewrite = Callable[[re.Pattern[str], str], tuple[bytes, str]]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision of the content rules for one message."""

    action: str  # delivered, blocked, redacted or flagged
    rule: str | None = None
    notice: str = ""
    body: bytes | None = None  # the rewritten SNAC body of a redaction
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IcbmContent:
    """The content of an ICBM, decoded once: its text, and on channel 2 the rendezvous."""

    text: ShownText | None
    rendezvous: Rendezvous | None = None


def decode_icbm(icbm: Icbm) -> IcbmContent:
    """Decode the text of an ICBM on any channel the proxy reads (1, 2 and 4).

    Raises ProtocolError for another channel or a body that does not decode, so
    the caller withholds what it cannot inspect.
    """
    if icbm.channel == IcbmChannel.IM:
        return IcbmContent(icbm.message)
    if icbm.channel == IcbmChannel.DATA:
        message = icbm.icq_message
        if message is None:
            raise ProtocolError("channel-4 ICBM has no message TLV", expected=IcbmTlv.RENDEZVOUS)
        return IcbmContent(message)
    if icbm.channel == IcbmChannel.RENDEZVOUS:
        block = find_tlv(icbm.tlvs, IcbmTlv.RENDEZVOUS)
        if block is None:
            raise ProtocolError(
                "channel-2 ICBM has no rendezvous TLV", expected=IcbmTlv.RENDEZVOUS
            )
        rendezvous = parse_rendezvous_block(block)
        return IcbmContent(rendezvous.invitation, rendezvous)
    raise ProtocolError("ICBM channel that the proxy cannot read", actual=icbm.channel)


UNREADABLE_NOTICE = "This message was not delivered: the compliance proxy could not read it."


@dataclass(frozen=True, slots=True)
class Disclaimer:
    """A disclaimer claimed for one message, ready to archive and inject."""

    direction: str
    remote: str
    text: str
    scope: str
    local: str


class Enforcer:
    """Applies the policy to the message frames of one connection."""

    def __init__(self, inspector: Inspector) -> None:
        self.inspector = inspector
        self.conn = inspector.conn
        self.injector = Injector(self.conn.to_client, self.conn._to_server, self.conn.id)
        # The server's maximum message length, from its ICBM parameter reply.
        self.server_max_message_bytes: int | None = None
        self._rooms_noticed: set[str] = set()

    @property
    def policy(self) -> Policy:
        return self.conn.context.policy.policy

    @property
    def state(self) -> SessionState:
        return self.conn.state

    # Server replies to injected frames

    async def server_reply(self, frame: Flap, snac: Snac) -> None:
        """Withhold the server's ack or error for an injected ICBM; forward the rest."""
        if self.injector.consume_reply(snac):
            self.inspector._withhold_from_client(frame)
            return
        self.inspector._forward_to_client(frame)

    async def icbm_parameters(self, frame: Flap, snac: Snac) -> None:
        """Note the server's maximum message length as its parameter reply passes.

        NOTE: the value is taken as a limit on encoded message text; Open OSCAR
        Server v0.22.0 advertises 512 but never checks it, so the unit is unconfirmed.
        """
        raw = snac.body[_PARAMETERS_MAX_LENGTH]
        if len(raw) == 2:
            self.server_max_message_bytes = int.from_bytes(raw, "big")
            self.conn.log.info(
                "server accepts messages of up to %d bytes", self.server_max_message_bytes
            )
        self.inspector._forward_to_client(frame)

    def message_limit(self) -> int:
        configured = self.policy.config.disclaimer.max_message_bytes
        return self.server_max_message_bytes or configured

    # Instant messages

    async def outbound_icbm(self, frame: Flap, snac: Snac) -> None:
        try:
            icbm = parse_icbm_send(snac)
        except ProtocolError as error:
            await self._withhold_unreadable_outbound(frame, snac, Family.ICBM, None, None, error)
            return
        self.inspector.identify()
        remote = icbm.screen_name
        try:
            content = decode_icbm(icbm)
        except ProtocolError as error:
            await self._withhold_unreadable_outbound(
                frame, snac, Family.ICBM, remote, icbm.channel, error
            )
            return
        party = self.policy.denying_party_rule(self.state.identity, remote)
        if party is not None:
            record = self._icbm_record(icbm, content, "outbound", "blocked", rule=party.name)
            notice = self.policy.party_notice(party, remote)
            await self._withhold_outbound(frame, snac, record, notice, remote, "remote party")
            return
        rendezvous = content.rendezvous
        if rendezvous is not None and self._rendezvous_blocked(rendezvous):
            self.conn.context.metrics.rendezvous_blocked()
            record = self._icbm_record(icbm, content, "outbound", "blocked")
            notice = f"{_describe(rendezvous)} to {remote} was blocked. "
            notice += self.policy.rendezvous_notice()
            await self._withhold_outbound(frame, snac, record, notice, remote, "rendezvous")
            return
        verdict = self._icbm_verdict(snac, icbm, content, parse_icbm_send, "outbound")
        if verdict.action == "blocked":
            record = self._icbm_record(
                icbm, content, "outbound", "blocked", verdict.rule, verdict.details
            )
            await self._withhold_outbound(frame, snac, record, verdict.notice, remote, "content")
            return
        await self._deliver_outbound(frame, snac, icbm, content, verdict)

    async def _deliver_outbound(
        self, frame: Flap, snac: Snac, icbm: Icbm, content: IcbmContent, verdict: Verdict
    ) -> None:
        remote = icbm.screen_name
        disclaimer = self._claim_disclaimer("outbound", remote, icbm, content)
        rejection = self._disclaimer_rejection(disclaimer)
        if rejection is not None:
            details, notice = rejection
            record = self._icbm_record(icbm, content, "outbound", "blocked", extra=details)
            await self._withhold_outbound(frame, snac, record, notice, remote, "disclaimer")
            return
        record = self._icbm_record(
            icbm, content, "outbound", verdict.action, verdict.rule, verdict.details
        )
        if not await self._archive_with_disclaimer(disclaimer, record):
            self.inspector._reject_outbound(frame, Family.ICBM, snac)
            return
        if disclaimer is not None:
            self._inject_disclaimer(disclaimer)
        self.inspector._forward_to_server(_rewritten(frame, snac, verdict))
        self.conn.context.metrics.message("outbound", verdict.action)
        if verdict.notice:
            reason = verdict.action
            await self._notify_im(remote, verdict.notice, "outbound", remote, verdict.rule, reason)

    async def inbound_icbm(self, frame: Flap, snac: Snac) -> None:
        try:
            icbm = parse_icbm_receive(snac)
        except ProtocolError as error:
            await self._withhold_unreadable_inbound(frame, None, None, error)
            return
        self.inspector.identify()
        remote = icbm.screen_name
        try:
            content = decode_icbm(icbm)
        except ProtocolError as error:
            await self._withhold_unreadable_inbound(frame, remote, icbm.channel, error)
            return
        party = self.policy.denying_party_rule(self.state.identity, remote)
        if party is not None:
            record = self._icbm_record(icbm, content, "inbound", "blocked", rule=party.name)
            notice = self.policy.party_notice(party, remote)
            await self._withhold_inbound(frame, record, notice, remote, "remote party")
            return
        rendezvous = content.rendezvous
        if rendezvous is not None and self._rendezvous_blocked(rendezvous):
            self.conn.context.metrics.rendezvous_blocked()
            record = self._icbm_record(icbm, content, "inbound", "blocked")
            # NOTE: the remote client gets no cancel, so it waits until it gives up.
            notice = f"{remote} proposed {_describe(rendezvous)}, which was blocked. "
            notice += self.policy.rendezvous_notice()
            await self._withhold_inbound(frame, record, notice, remote, "rendezvous")
            return
        verdict = self._icbm_verdict(snac, icbm, content, parse_icbm_receive, "inbound")
        if verdict.action == "blocked":
            record = self._icbm_record(
                icbm, content, "inbound", "blocked", verdict.rule, verdict.details
            )
            await self._withhold_inbound(frame, record, verdict.notice, remote, "content")
            return
        await self._deliver_inbound(frame, snac, icbm, content, verdict)

    async def _deliver_inbound(
        self, frame: Flap, snac: Snac, icbm: Icbm, content: IcbmContent, verdict: Verdict
    ) -> None:
        remote = icbm.screen_name
        disclaimer = self._claim_disclaimer("inbound", remote, icbm, content)
        rejection = self._disclaimer_rejection(disclaimer)
        if rejection is not None:
            details, notice = rejection
            record = self._icbm_record(icbm, content, "inbound", "blocked", extra=details)
            await self._withhold_inbound(frame, record, notice, remote, "disclaimer")
            return
        record = self._icbm_record(
            icbm, content, "inbound", verdict.action, verdict.rule, verdict.details
        )
        if not await self._archive_with_disclaimer(disclaimer, record):
            # NOTE: the sender gets no notice, because the server already accepted the message.
            self.inspector._withhold_from_client(frame)
            self.conn.log.error("inbound message withheld: it could not be archived")
            return
        if disclaimer is not None:
            self._inject_disclaimer(disclaimer)
        self.inspector._forward_to_client(_rewritten(frame, snac, verdict))
        self.conn.context.metrics.message("inbound", verdict.action)
        if verdict.notice:
            reason = verdict.action
            await self._notify_im(remote, verdict.notice, "inbound", remote, verdict.rule, reason)

    def _icbm_verdict(
        self,
        snac: Snac,
        icbm: Icbm,
        content: IcbmContent,
        parse: Callable[[Snac], Icbm],
        direction: str,
    ) -> Verdict:
        text = content.text
        if text is None:
            return Verdict("delivered")

        def rewrite(pattern: re.Pattern[str], replacement: str) -> tuple[bytes, str]:
            new_body = _redact_icbm(snac.body, icbm, content, pattern, replacement)
            redacted = decode_icbm(parse(snac.with_body(new_body))).text
            return new_body, redacted.plain if redacted is not None else ""

        return self._content_verdict(text.plain, "im", rewrite, direction, icbm.screen_name)

    def _icbm_record(
        self,
        icbm: Icbm,
        content: IcbmContent,
        direction: str,
        action: str,
        rule: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ArchiveRecord:
        if content.rendezvous is not None:
            return records.rendezvous_record(
                self.state,
                icbm,
                content.rendezvous,
                direction,
                action,
                text=content.text,
                rule=rule,
                extra=extra,
            )
        return records.message_record(
            self.state, icbm, direction, action, text=content.text, rule=rule, extra=extra
        )

    # Messages the proxy cannot decode

    async def _withhold_unreadable_outbound(
        self,
        frame: Flap,
        snac: Snac,
        family: int,
        remote: str | None,
        channel: int | None,
        error: ProtocolError,
    ) -> None:
        """Withhold a client message that does not decode; the session stays open."""
        kind = "message" if family == Family.ICBM else "chat"
        self.inspector._withhold_from_server(frame)
        record = records.unreadable_record(
            self.state, kind, "outbound", remote=remote, decode_error=error.rule, channel=channel
        )
        await self.inspector._archive(record)
        self.injector.error(family, snac.request_id)
        self.conn.context.metrics.message("outbound", "blocked")
        self.conn.log.warning("outbound %s withheld: it does not decode: %s", kind, error)
        if family == Family.ICBM:
            await self._notify_im(
                remote, UNREADABLE_NOTICE, "outbound", remote, UNREADABLE_RULE, "unreadable"
            )
        else:
            await self._notify_chat(
                UNREADABLE_NOTICE, "outbound", None, UNREADABLE_RULE, "unreadable"
            )

    async def _withhold_unreadable_inbound(
        self, frame: Flap, remote: str | None, channel: int | None, error: ProtocolError
    ) -> None:
        """Withhold an ICBM from the server that does not decode; the session stays open."""
        self.inspector._withhold_from_client(frame)
        record = records.unreadable_record(
            self.state,
            "message",
            "inbound",
            remote=remote,
            decode_error=error.rule,
            channel=channel,
        )
        await self.inspector._archive(record)
        self.conn.context.metrics.message("inbound", "blocked")
        self.conn.log.warning("inbound message withheld: it does not decode: %s", error)
        sender = remote or "an unknown sender"
        notice = f"A message from {sender} was withheld: the compliance proxy could not read it."
        await self._notify_im(remote, notice, "inbound", remote, UNREADABLE_RULE, "unreadable")

    # Typing notifications

    async def outbound_typing(self, frame: Flap, snac: Snac) -> None:
        """Withhold typing notifications to a denied party, without a notice."""
        if self._typing_denied(snac):
            self.inspector._withhold_from_server(frame)
            return
        self.inspector._forward_to_server(frame)

    async def inbound_typing(self, frame: Flap, snac: Snac) -> None:
        """Withhold typing notifications from a denied party, without a notice."""
        if self._typing_denied(snac):
            self.inspector._withhold_from_client(frame)
            return
        self.inspector._forward_to_client(frame)

    async def outbound_client_error(self, frame: Flap, snac: Snac) -> None:
        """Withhold a client error (0x0004/0x000B) to a denied party, without a notice.

        Its free-form data can carry text, so one that does not decode is
        withheld as well.
        """
        if self._client_error_withheld(snac, "outbound"):
            self.inspector._withhold_from_server(frame)
            return
        self.inspector._forward_to_server(frame)

    async def inbound_client_error(self, frame: Flap, snac: Snac) -> None:
        """Withhold a client error from a denied party, or one that does not decode."""
        if self._client_error_withheld(snac, "inbound"):
            self.inspector._withhold_from_client(frame)
            return
        self.inspector._forward_to_client(frame)

    def _client_error_withheld(self, snac: Snac, direction: str) -> bool:
        # NOTE: the data of a client error that passes is not archived.
        try:
            client_error = parse_client_error(snac)
        except ProtocolError as error:
            self.conn.log.warning("%s ICBM client error withheld: %s", direction, error)
            return True
        self.inspector.identify()
        rule = self.policy.denying_party_rule(self.state.identity, client_error.screen_name)
        if rule is None:
            return False
        self.conn.log.info("%s ICBM client error withheld (rule %s)", direction, rule.name)
        return True

    def _typing_denied(self, snac: Snac) -> bool:
        try:
            typing = parse_typing(snac)
        # A typing notification carries no content, so one the proxy cannot read is
        # relayed as before instead of closing the connection.
        except ProtocolError:
            return False
        self.inspector.identify()
        return self.policy.denying_party_rule(self.state.identity, typing.screen_name) is not None

    # Rendezvous

    def _rendezvous_blocked(self, rendezvous: Rendezvous) -> bool:
        if rendezvous.type != RendezvousType.PROPOSE:
            return False
        return self.policy.rendezvous_blocked(rendezvous.kind, self.state.identity)

    # Chat

    async def outbound_chat(self, frame: Flap, snac: Snac) -> None:
        try:
            message = parse_chat_send(snac)
        except ProtocolError as error:
            await self._withhold_unreadable_outbound(frame, snac, Family.CHAT, None, None, error)
            return
        self.inspector.identify()
        # NOTE: on a chat connection whose room the proxy never learned (no matching
        # service request and no room info yet), rules with a room pattern match nothing.
        room = self.state.room or ""
        target = message.whisper_target
        party = self._outbound_chat_party_rule(room, target)
        if party is not None:
            record = records.chat_record(
                self.state, message, "outbound", "blocked", rule=party.name
            )
            if target is not None:
                notice = self.policy.party_notice(party, target)
            else:
                notice = party.notice or f"Chat in {room} is not allowed (rule {party.name})."
            await self._withhold_outbound_chat(frame, snac, record, notice, "remote party")
            return

        verdict = self._chat_verdict(snac, message, parse_chat_send, "outbound")
        action, rule = verdict.action, verdict.rule
        record = records.chat_record(
            self.state, message, "outbound", action, rule=rule, extra=verdict.details
        )
        if action == "blocked":
            await self._withhold_outbound_chat(frame, snac, record, verdict.notice, "content")
            return

        if not await self.inspector._archive(record):
            self.inspector._reject_outbound(frame, Family.CHAT, snac)
            return
        self.inspector._forward_to_server(_rewritten(frame, snac, verdict))
        self.conn.context.metrics.message("outbound", action)
        if verdict.notice:
            await self._notify_chat(verdict.notice, "outbound", None, rule, action)

    def _outbound_chat_party_rule(self, room: str, target: str | None) -> RemotePartyRule | None:
        """Return the rule that denies an outbound room message or whisper, or None.

        A message to the whole room matches only rules whose ``remote`` is ``*``. A
        whisper goes to one user, so it matches the room's rules with that user as
        the remote party, and then the IM rules, as a direct message would.
        """
        identity = self.state.identity
        if target is None:
            return self.policy.denying_party_rule(identity, None, room)
        in_room = self.policy.denying_party_rule(identity, target, room)
        return in_room or self.policy.denying_party_rule(identity, target)

    async def inbound_chat(self, frame: Flap, snac: Snac) -> None:
        try:
            message = parse_chat_receive(snac)
        except ProtocolError as error:
            await self._withhold_unreadable_inbound_chat(frame, error)
            return
        sender = message.sender.screen_name if message.sender is not None else ""
        self.inspector.identify()
        if normalize_screen_name(sender) == self.state.local:
            # The server reflects the user's own chat message; it was archived when sent.
            self.inspector._forward_to_client(frame)
            return
        room = self.state.room or ""
        party = self.policy.denying_party_rule(self.state.identity, sender, room)
        if party is not None:
            await self._withhold_inbound_chat_from_party(frame, message, party.name, party.notice)
            return

        verdict = self._chat_verdict(snac, message, parse_chat_receive, "inbound")
        action, rule = verdict.action, verdict.rule
        record = records.chat_record(
            self.state, message, "inbound", action, rule=rule, extra=verdict.details
        )
        if action == "blocked":
            self.inspector._withhold_from_client(frame)
            await self.inspector._archive(record)
            self.conn.context.metrics.message("inbound", "blocked")
            await self._notify_chat(verdict.notice, "inbound", sender, rule, "content")
            return

        if not await self.inspector._archive(record):
            self.inspector._withhold_from_client(frame)
            self.conn.log.error("inbound chat message withheld: it could not be archived")
            return
        self.inspector._forward_to_client(_rewritten(frame, snac, verdict))
        self.conn.context.metrics.message("inbound", action)
        if verdict.notice:
            await self._notify_chat(verdict.notice, "inbound", sender, rule, action)

    async def _withhold_inbound_chat_from_party(
        self, frame: Flap, message: ChatMessage, rule: str, notice: str
    ) -> None:
        """Withhold a room message in a denied room; the user gets one notice per room."""
        self.inspector._withhold_from_client(frame)
        record = records.chat_record(self.state, message, "inbound", "blocked", rule=rule)
        await self.inspector._archive(record)
        self.conn.context.metrics.message("inbound", "blocked")
        room = self.state.room or ""
        if room in self._rooms_noticed:
            return
        self._rooms_noticed.add(room)
        sender = message.sender.screen_name if message.sender is not None else None
        text = notice or f"Messages in {room} are withheld by the compliance policy (rule {rule})."
        await self._notify_chat(text, "inbound", sender, rule, "remote party")

    async def _withhold_unreadable_inbound_chat(self, frame: Flap, error: ProtocolError) -> None:
        """Withhold a room message from the server that does not decode; the session stays open."""
        self.inspector._withhold_from_client(frame)
        record = records.unreadable_record(
            self.state, "chat", "inbound", remote=None, decode_error=error.rule
        )
        await self.inspector._archive(record)
        self.conn.context.metrics.message("inbound", "blocked")
        self.conn.log.warning("inbound chat message withheld: it does not decode: %s", error)
        notice = "A room message was withheld: the compliance proxy could not read it."
        await self._notify_chat(notice, "inbound", None, UNREADABLE_RULE, "unreadable")

    def _chat_verdict(
        self,
        snac: Snac,
        message: ChatMessage,
        parse: Callable[[Snac], ChatMessage],
        direction: str,
    ) -> Verdict:
        def rewrite(pattern: re.Pattern[str], replacement: str) -> tuple[bytes, str]:
            new_body = redact_chat(snac.body, message, pattern, replacement)
            return new_body, parse(snac.with_body(new_body)).plain

        sender = message.sender.screen_name if message.sender is not None else ""
        return self._content_verdict(message.plain, "chat", rewrite, direction, sender)

    async def _withhold_outbound_chat(
        self, frame: Flap, snac: Snac, record: ArchiveRecord, notice: str, reason: str
    ) -> None:
        self.inspector._withhold_from_server(frame)
        await self.inspector._archive(record)
        self.injector.error(Family.CHAT, snac.request_id)
        self.conn.context.metrics.message("outbound", "blocked")
        self.conn.log.info("outbound chat message blocked (%s, rule %s)", reason, record.rule)
        await self._notify_chat(notice, "outbound", None, record.rule, reason)

    # Content rules

    def _content_verdict(
        self,
        plain: str,
        kind: MessageKind,
        rewrite: Rewrite,
        direction: str,
        remote: str,
    ) -> Verdict:
        """Apply the first matching content rule; ``rewrite`` redacts with its pattern."""
        rule = self.policy.match_content(plain, kind)
        if rule is None:
            return Verdict("delivered")
        if rule.action == "flag":
            return Verdict("flagged", rule.name, rule.notice_text("flag", remote, direction))
        if rule.action == "redact":
            try:
                body, redacted_plain = rewrite(rule.regex, rule.config.replacement)
            except (RedactionError, ProtocolError) as error:
                # The message cannot be rewritten (a TLV would overflow, say), so it is blocked.
                log.warning(
                    "rule %s cannot redact the message (%s); it is blocked", rule.name, error
                )
                notice = rule.notice_text("block", remote, direction)
                return Verdict("blocked", rule.name, notice, details={"redaction_failed": True})
            if HEADER_SIZE + len(body) > MAX_PAYLOAD:
                log.warning("rule %s: the redacted message is too long; it is blocked", rule.name)
                notice = rule.notice_text("block", remote, direction)
                return Verdict("blocked", rule.name, notice, details={"redaction_failed": True})
            if not rule.regex.search(redacted_plain):
                notice = rule.notice_text("redact", remote, direction)
                details = {"delivered_text": redacted_plain}
                return Verdict("redacted", rule.name, notice, body, details)
            # The pattern still matches the redacted text (it matches the replacement
            # character, say). Redacting cannot hide it, so the message is blocked.
            log.warning("rule %s still matches after redaction; the message is blocked", rule.name)
            notice = rule.notice_text("block", remote, direction)
            return Verdict("blocked", rule.name, notice, details={"redaction_failed": True})
        return Verdict("blocked", rule.name, rule.notice_text("block", remote, direction))

    # Disclaimers

    def _claim_disclaimer(
        self, direction: str, remote: str, icbm: Icbm, content: IcbmContent
    ) -> Disclaimer | None:
        """Return the disclaimer due before this message, marking it as sent, or None.

        Text messages on channels 1 and 4 start conversations. Rendezvous
        proposals, chat invitations among them, get no disclaimer.
        """
        if icbm.channel not in (IcbmChannel.IM, IcbmChannel.DATA) or content.text is None:
            return None
        settings = self.policy.config.disclaimer
        template = settings.outbound if direction == "outbound" else settings.inbound
        if not template or self.policy.is_internal(remote):
            return None
        local = self.state.local or ""
        runtime = self.conn.context.policy
        claimed = runtime.disclaimers.claim(
            settings.scope,
            self.state.session_id,
            local,
            normalize_screen_name(remote),
            runtime.today(),
        )
        if not claimed:
            return None
        conversation = Conversation(self.state.screen_name or local, remote, self.state.identity)
        text = render(template, conversation, runtime.now(), settings.timezone)
        return Disclaimer(direction, remote, text, settings.scope, local)

    def _release(self, disclaimer: Disclaimer) -> None:
        self.conn.context.policy.disclaimers.release(
            disclaimer.scope,  # type: ignore[arg-type]
            self.state.session_id,
            disclaimer.local,
            normalize_screen_name(disclaimer.remote),
        )

    def _disclaimer_rejection(
        self, disclaimer: Disclaimer | None
    ) -> tuple[dict[str, Any], str] | None:
        """Return (record details, notice) when a due disclaimer cannot be sent, or None.

        The claim is released then, so the next message tries again.
        """
        if disclaimer is None:
            return None
        if not fits_screen_name(disclaimer.remote):
            self._release(disclaimer)
            log.error(
                "the %s disclaimer cannot be sent: the remote screen name takes more than "
                "255 bytes in UTF-8; the message is withheld (conn=%s)",
                disclaimer.direction,
                self.conn.id,
            )
            notice = (
                "This message was not delivered: the compliance disclaimer cannot be "
                "addressed to this screen name."
            )
            return _UNADDRESSABLE, notice
        if not self._disclaimer_fits(disclaimer):
            return _TOO_LONG, self._too_long_notice()
        return None

    def _disclaimer_fits(self, disclaimer: Disclaimer) -> bool:
        """Check both copies against the message limit; release the claim when one is too long."""
        limit = self.message_limit()
        shown = self.policy.config.notice_prefix + disclaimer.text
        if encoded_size(disclaimer.text) <= limit and encoded_size(shown) <= limit:
            return True
        self._release(disclaimer)
        log.error(
            "the %s disclaimer takes %d bytes, over the server's limit of %d; "
            "the message is withheld (conn=%s)",
            disclaimer.direction,
            encoded_size(shown),
            limit,
            self.conn.id,
        )
        return False

    def _too_long_notice(self) -> str:
        return (
            "This message was not delivered: the compliance disclaimer does not fit the "
            f"server's message limit of {self.message_limit()} bytes."
        )

    async def _archive_with_disclaimer(
        self, disclaimer: Disclaimer | None, record: ArchiveRecord
    ) -> bool:
        """Archive the disclaimer (if any) and then the message; False when either failed."""
        if disclaimer is not None:
            disclaimer_record = records.disclaimer_record(
                self.state,
                disclaimer.direction,
                disclaimer.remote,
                disclaimer.text,
                disclaimer.scope,
            )
            if not await self.inspector._archive(disclaimer_record):
                self._release(disclaimer)
                return False
        if await self.inspector._archive(record):
            return True
        if disclaimer is not None:
            # NOTE: the disclaimer record stays in the archive although neither it
            # nor the message was sent; records are append-only.
            self._release(disclaimer)
        return False

    def _inject_disclaimer(self, disclaimer: Disclaimer) -> None:
        """Send the disclaimer to the remote party and show it to the local user."""
        shown = self.policy.config.notice_prefix + disclaimer.text
        purpose = f"{disclaimer.direction} disclaimer"
        if disclaimer.direction == "outbound":
            self.injector.send_im(disclaimer.remote, disclaimer.text, purpose)
            self.injector.notice_im(disclaimer.remote, shown)
        else:
            self.injector.notice_im(disclaimer.remote, shown)
            self.injector.send_im(disclaimer.remote, disclaimer.text, purpose)
        self.conn.context.metrics.disclaimer()
        self.conn.log.info("%s disclaimer sent (%s scope)", disclaimer.direction, disclaimer.scope)

    # Withholding and notices

    async def _withhold_outbound(
        self,
        frame: Flap,
        snac: Snac,
        record: ArchiveRecord,
        notice: str,
        remote: str,
        reason: str,
    ) -> None:
        """Withhold a client's ICBM, reply to its request with an error, and show a notice."""
        self.inspector._withhold_from_server(frame)
        await self.inspector._archive(record)
        self.injector.error(Family.ICBM, snac.request_id)
        self.conn.context.metrics.message("outbound", "blocked")
        self.conn.log.info("outbound %s blocked (%s, rule %s)", record.kind, reason, record.rule)
        await self._notify_im(remote, notice, "outbound", remote, record.rule, reason)

    async def _withhold_inbound(
        self, frame: Flap, record: ArchiveRecord, notice: str, remote: str, reason: str
    ) -> None:
        """Withhold a server's ICBM from the client and show a notice instead."""
        self.inspector._withhold_from_client(frame)
        await self.inspector._archive(record)
        self.conn.context.metrics.message("inbound", "blocked")
        self.conn.log.info("inbound %s blocked (%s, rule %s)", record.kind, reason, record.rule)
        await self._notify_im(remote, notice, "inbound", remote, record.rule, reason)

    async def _notify_im(
        self,
        sender: str | None,
        text: str,
        direction: str,
        remote: str | None,
        rule: str | None,
        reason: str,
    ) -> None:
        """Archive a notice, then show it as an IM from ``sender``, even if archiving failed.

        A sender that is unknown, or whose name does not fit a user info block
        (255 bytes of UTF-8), is replaced by ``policy.notice_sender``.
        """
        shown = self.policy.config.notice_prefix + text
        record = records.notice_record(
            self.state, direction, shown, remote=remote, rule=rule, reason=reason
        )
        await self.inspector._archive(record)
        if sender is None or not fits_screen_name(sender):
            fallback = self.policy.config.notice_sender
            if sender is not None:
                log.warning(
                    "notice shown from %s: the remote screen name takes more than 255 bytes "
                    "in UTF-8 (conn=%s)",
                    fallback,
                    self.conn.id,
                )
            sender = fallback
        self.injector.notice_im(sender, shown)

    async def _notify_chat(
        self, text: str, direction: str, remote: str | None, rule: str | None, reason: str
    ) -> None:
        """Archive a notice, then show it in the room, even if archiving failed."""
        shown = self.policy.config.notice_prefix + text
        record = records.notice_record(
            self.state, direction, shown, remote=remote, rule=rule, reason=reason
        )
        await self.inspector._archive(record)
        self.injector.notice_chat(self.policy.config.notice_sender, shown)


_TOO_LONG = {"reason": "the disclaimer does not fit the server's message limit"}
_UNADDRESSABLE = {"reason": "the remote screen name cannot be encoded for the disclaimer"}


def _redact_icbm(
    body: bytes, icbm: Icbm, content: IcbmContent, pattern: re.Pattern[str], replacement: str
) -> bytes:
    """Return the SNAC body of ``icbm`` with its text redacted, whatever its channel."""
    if content.rendezvous is not None:
        return redact_invitation(body, icbm, content.rendezvous, pattern, replacement)
    message = icbm.icq_message
    if message is not None:
        return redact_icq(body, icbm, message, pattern, replacement)
    return redact_icbm(body, icbm, pattern, replacement)


def _rewritten(frame: Flap, snac: Snac, verdict: Verdict) -> Flap:
    if verdict.body is None:
        return frame
    return frame.with_payload(snac.with_body(verdict.body).to_bytes())


def _describe(rendezvous: Rendezvous) -> str:
    kind = rendezvous.kind
    if kind is Capability.SEND_FILE:
        if rendezvous.file_name:
            return f'a file transfer of "{rendezvous.file_name}" ({rendezvous.file_size} bytes)'
        return "a file transfer"
    if kind is Capability.GET_FILE:
        return "a Get File request"
    if kind is Capability.DIRECT_IM:
        return "a Direct IM connection"
    return "a peer-to-peer request"
