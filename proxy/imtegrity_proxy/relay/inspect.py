"""Per-frame decisions of a relayed connection: rewrite, archive, forward or drop.

Frames are dispatched on (family, subtype) through two tables, one for each
direction. A frame without a handler is forwarded unchanged. A handler either
forwards the frame (possibly rewritten) or withholds it; withheld and injected
frames are renumbered by the FrameSink, so neither peer sees a gap.

A FLAP or SNAC header that does not parse closes the connection. A message
body that does not decode is withheld by its handler, and the session goes on.
A ValueError that escapes a handler is logged and the frame withheld, unless
the handler had forwarded or withheld it already.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..archive import ArchiveError, ArchiveRecord
from ..protocol.address import format_address
from ..protocol.chat import (
    parse_room_info,
    room_name_from_cookie,
)
from ..protocol.enums import (
    BucpSubtype,
    Channel,
    ChatSubtype,
    ErrorCode,
    Family,
    IcbmSubtype,
    OServiceSubtype,
    SignonErrorCode,
)
from ..protocol.errors import ProtocolError
from ..protocol.flap import Flap
from ..protocol.oservice import (
    encode_error,
    parse_migration,
    parse_redirect,
    parse_self_info,
    parse_service_request,
)
from ..protocol.signon import (
    LoginReply,
    failure_tlvs,
    parse_bucp_login_reply,
    parse_challenge_request,
    parse_login_request,
    parse_signoff,
    rewrite_bos_address,
)
from ..protocol.snac import FLAG_OPTIONAL_TLVS, Snac, parse_snac
from ..protocol.tlv import Tlvs, encode_tlvs
from ..protocol.userinfo import normalize_screen_name
from . import records
from .cookies import Ticket
from .enforce import Enforcer
from .frames import blame
from .state import SessionState

if TYPE_CHECKING:
    from .connection import Connection

Handler = Callable[[Flap, Snac], Awaitable[None]]

archive_log = logging.getLogger("imtegrity.archive")

# Chat service requests awaiting the server's redirect or error, per BOS
# connection. A client that never follows a request cannot grow the map past this.
MAX_PENDING_ROOMS = 16


class Inspector:
    def __init__(self, connection: Connection) -> None:
        self.conn = connection
        self.signon_request_id = 0
        self._signed_on = False
        # Room names of chat service requests, by the request id the redirect echoes.
        self._pending_rooms: OrderedDict[int, str] = OrderedDict()
        # Per side ("client" or "server"): whether the frame being handled was
        # forwarded or withheld yet.
        self._disposed = {"client": False, "server": False}
        self.enforcer = Enforcer(self)
        enforcer = self.enforcer
        self._client_handlers: dict[tuple[int, int], Handler] = {
            (Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_HOST): enforcer.outbound_icbm,
            (Family.ICBM, IcbmSubtype.CLIENT_EVENT): enforcer.outbound_typing,
            (Family.ICBM, IcbmSubtype.CLIENT_ERR): enforcer.outbound_client_error,
            (Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_HOST): enforcer.outbound_chat,
            (Family.OSERVICE, OServiceSubtype.SERVICE_REQUEST): self._service_request,
            (Family.BUCP, BucpSubtype.CHALLENGE_REQUEST): self._same_signon_name,
            (Family.BUCP, BucpSubtype.LOGIN_REQUEST): self._same_signon_name,
        }
        self._server_handlers: dict[tuple[int, int], Handler] = {
            (Family.BUCP, BucpSubtype.LOGIN_RESPONSE): self._bucp_reply,
            (Family.OSERVICE, OServiceSubtype.ERROR): self._oservice_error,
            (Family.OSERVICE, OServiceSubtype.SERVICE_RESPONSE): self._redirect,
            (Family.OSERVICE, OServiceSubtype.MIGRATE_GROUPS): self._migration,
            (Family.OSERVICE, OServiceSubtype.USER_INFO_UPDATE): self._self_info,
            (Family.ICBM, IcbmSubtype.CHANNEL_MSG_TO_CLIENT): enforcer.inbound_icbm,
            (Family.ICBM, IcbmSubtype.CLIENT_EVENT): enforcer.inbound_typing,
            (Family.ICBM, IcbmSubtype.CLIENT_ERR): enforcer.inbound_client_error,
            (Family.ICBM, IcbmSubtype.ERROR): enforcer.server_reply,
            (Family.ICBM, IcbmSubtype.HOST_ACK): enforcer.server_reply,
            (Family.ICBM, IcbmSubtype.PARAMETER_REPLY): enforcer.icbm_parameters,
            (Family.CHAT, ChatSubtype.CHANNEL_MSG_TO_CLIENT): enforcer.inbound_chat,
            (Family.CHAT, ChatSubtype.ROOM_INFO_UPDATE): self._room_info,
        }

    @property
    def state(self) -> SessionState:
        return self.conn.state

    # Dispatch

    async def from_client(self, frame: Flap) -> None:
        await self._dispatch(frame, self._client_handlers, "client", self._forward_to_server)

    async def from_server(self, frame: Flap) -> None:
        if frame.channel == Channel.SIGNOFF:
            await self._guard("server", frame, self._server_signoff(frame))
            return
        await self._dispatch(frame, self._server_handlers, "server", self._forward_to_client)

    async def _dispatch(
        self,
        frame: Flap,
        handlers: dict[tuple[int, int], Handler],
        side: str,
        forward: Callable[[Flap], None],
    ) -> None:
        if frame.channel != Channel.DATA:
            forward(frame)
            return
        snac = blame(side, parse_snac, frame.payload)
        if side == "client" and snac.flags & FLAG_OPTIONAL_TLVS:
            # Servers read a client's SNAC body right after the header, whatever
            # its flags, so a body the proxy skipped could carry another message.
            error = ProtocolError("client SNAC with flag 0x8000", expected=0, actual=snac.flags)
            raise error.for_side("client")
        handler = handlers.get((snac.family, snac.subtype))
        if handler is None:
            forward(frame)
            return
        await self._guard(side, frame, handler(frame, snac))

    async def _guard(self, side: str, frame: Flap, step: Awaitable[None]) -> None:
        self._disposed[side] = False
        try:
            await step
        except ProtocolError as error:
            if error.side != "peer":
                raise
            raise error.for_side(side) from error
        except ValueError as error:
            # A bug in a handler must not end the user's session: withhold the frame
            # (fail closed) unless it already went on or was withheld.
            withheld = not self._disposed[side]
            if withheld:
                self._withhold(side, frame)
            self.conn.log.error(
                "a %s frame could not be handled (%s: %s); %s",
                side,
                type(error).__name__,
                error,
                "the frame is withheld" if withheld else "the frame was already handled",
            )

    def _forward_to_server(self, frame: Flap) -> None:
        self._disposed["client"] = True
        self.conn._to_server().relay(frame)

    def _forward_to_client(self, frame: Flap) -> None:
        self._disposed["server"] = True
        self.conn.to_client.relay(frame)

    def _withhold_from_server(self, frame: Flap) -> None:
        """Withhold a client's frame from the server; the client-to-server numbering closes up."""
        self._disposed["client"] = True
        self.conn._to_server().drop(frame)

    def _withhold_from_client(self, frame: Flap) -> None:
        """Withhold a server's frame from the client; the server-to-client numbering closes up."""
        self._disposed["server"] = True
        self.conn.to_client.drop(frame)

    def _withhold(self, side: str, frame: Flap) -> None:
        if side == "client":
            self._withhold_from_server(frame)
        else:
            self._withhold_from_client(frame)

    # Sign-on

    async def decide_signon(self) -> bool:
        """Decide a sign-on before anything reaches upstream; True lets it go on.

        A screen name that policy denies gets the configured error in its own
        sign-on style and is archived as ``denied``, with the client address.
        """
        self.identify()
        policy = self.conn.context.policy.policy
        if policy.signon_allowed(self.state.local or ""):
            return True
        denied = policy.config.denied_signon
        record = records.signon_record(
            self.state, "denied", style=self.state.signon_style, error_code=denied.code
        )
        # The sign-on is denied whether or not its record was committed.
        await self._archive(record)
        self.conn.context.metrics.signon("denied")
        self.conn.trace.signon_finished("denied", denied.code)
        self.conn.log.info("sign-on denied: the screen name is not registered")
        await self.conn.fail_signon(denied.code, denied.url)
        return False

    async def _same_signon_name(self, frame: Flap, snac: Snac) -> None:
        """Forward a later BUCP request only for the name that policy already decided on."""
        if snac.subtype == BucpSubtype.CHALLENGE_REQUEST:
            name = parse_challenge_request(snac)
        else:
            name = parse_login_request(snac).screen_name
        if normalize_screen_name(name) != self.state.local:
            raise ProtocolError(
                "BUCP screen name differs from the one the sign-on was decided for"
            ).for_side("client")
        self._forward_to_server(frame)

    def identify(self) -> None:
        """Look up the corporate identity of the session's screen name in the current policy."""
        self.state.identity = self.conn.context.policy.policy.identity_of(self.state.local)

    async def _bucp_reply(self, frame: Flap, snac: Snac) -> None:
        reply = parse_bucp_login_reply(snac)
        tlvs = await self._login_result(reply)
        if tlvs is None:
            self._forward_to_client(frame)
            return
        body = encode_tlvs(tlvs)
        self._forward_to_client(frame.with_payload(snac.with_body(body).to_bytes()))

    async def _server_signoff(self, frame: Flap) -> None:
        reply = parse_signoff(frame.payload)
        is_login_reply = reply.bos_host is not None or reply.error_code is not None
        if is_login_reply and self.state.role == "login" and not self._signed_on:
            tlvs = await self._login_result(reply)
            if tlvs is not None:
                frame = frame.with_payload(encode_tlvs(tlvs))
        reason = _disconnect_reason(reply.tlvs)
        if reason is not None:
            self.state.signoff_reason = reason
            self.conn.log.info("server signed the session off (reason 0x%04x)", reason)
        self._forward_to_client(frame)

    async def _login_result(self, reply: LoginReply) -> Tlvs | None:
        """Record a sign-on reply; return rewritten TLVs, or None to forward it unchanged."""
        self._signed_on = True
        if not reply.succeeded:
            await self._record_signon("failed", error_code=reply.error_code)
            self.conn.context.metrics.signon("failed")
            self.conn.trace.signon_finished("failed", reply.error_code)
            self.conn.log.info("sign-on failed upstream (code %s)", reply.error_code)
            return None
        if reply.screen_name and normalize_screen_name(reply.screen_name) != self.state.local:
            # The server signed on another name than policy decided on: refuse it.
            self.conn.context.metrics.signon("name_mismatch")
            self.conn.log.warning("sign-on rejected: the server's reply names another user")
            code = SignonErrorCode.INVALID_SCREEN_NAME
            return failure_tlvs(self.state.screen_name or "", code, "")
        if reply.screen_name:
            self.state.set_screen_name(reply.screen_name)
            self.conn.log.screen_name = reply.screen_name
        if not await self._record_signon("success", style=self.state.signon_style):
            # No sign-on record means no archive: refuse the session instead.
            self.conn.context.metrics.signon("archive_failed")
            self.conn.trace.signon_finished("archive_failed")
            code = SignonErrorCode.SERVICE_TEMPORARILY_UNAVAILABLE
            return failure_tlvs(self.state.screen_name or "", code, "")
        self.conn.context.metrics.signon("success")
        self.conn.trace.signon_finished("success")
        target = (reply.bos_host or "", reply.bos_port or self._upstream_port())
        self._remember(reply.cookie or b"", target, family=None)
        self.conn.log.info("sign-on succeeded; BOS address rewritten")
        return rewrite_bos_address(reply.tlvs, self._advertised_address())

    async def _record_signon(self, result: str, **details: object) -> bool:
        record = records.signon_record(self.state, result, **details)
        return await self._archive(record)

    # Redirects

    async def _redirect(self, frame: Flap, snac: Snac) -> None:
        redirect = parse_redirect(snac)
        if redirect.cookie is None or redirect.host is None:
            self._forward_to_client(frame)
            return
        room = None
        if redirect.family == Family.CHAT:
            # The redirect echoes the request id of the service request it answers.
            room = self._pending_rooms.pop(snac.request_id, None)
        target = (redirect.host, redirect.port or self._upstream_port())
        self._remember(redirect.cookie, target, family=redirect.family, room=room)
        body = redirect.with_address(self._advertised_address())
        self._forward_to_client(frame.with_payload(snac.with_body(body).to_bytes()))
        family = redirect.family if redirect.family is not None else 0
        self.conn.log.info("redirect for family 0x%04x rewritten", family)

    async def _migration(self, frame: Flap, snac: Snac) -> None:
        migration = parse_migration(snac)
        if migration.cookie is None or migration.host is None:
            self._forward_to_client(frame)
            return
        target = (migration.host, migration.port or self._upstream_port())
        self._remember(migration.cookie, target, family=self.state.family)
        body = migration.with_address(self._advertised_address())
        self._forward_to_client(frame.with_payload(snac.with_body(body).to_bytes()))
        self.conn.log.info("migration of %d families rewritten", len(migration.families))

    async def _service_request(self, frame: Flap, snac: Snac) -> None:
        request = parse_service_request(snac)
        if request.family == Family.CHAT and request.chat_cookie:
            self._pending_rooms.pop(snac.request_id, None)
            self._pending_rooms[snac.request_id] = room_name_from_cookie(request.chat_cookie)
            while len(self._pending_rooms) > MAX_PENDING_ROOMS:
                self._pending_rooms.popitem(last=False)
        self._forward_to_server(frame)

    async def _oservice_error(self, frame: Flap, snac: Snac) -> None:
        """Forget the chat service request that an error reply (0x0001/0x0001) rejects."""
        if self._pending_rooms.pop(snac.request_id, None) is not None:
            self.conn.log.info(
                "chat service request 0x%08x rejected by the server", snac.request_id
            )
        self._forward_to_client(frame)

    def _remember(
        self, cookie: bytes, target: tuple[str, int], family: int | None, room: str | None = None
    ) -> None:
        ticket = Ticket(
            upstream=target,
            session_id=self.state.session_id,
            screen_name=self.state.screen_name,
            client_address=self.state.client_address,
            family=family,
            room=room,
            trace_parent=self.conn.trace.redirect(target, family),
        )
        self.conn.context.cookies.remember(cookie, ticket)

    def _advertised_address(self) -> bytes:
        host = self.conn.context.config.advertise.host or self.conn.local_host
        return format_address(host, self.conn.local_port)

    def _upstream_port(self) -> int:
        assert self.conn.upstream is not None
        return self.conn.upstream.address[1]

    # Session info

    async def _self_info(self, frame: Flap, snac: Snac) -> None:
        info = parse_self_info(snac)
        if self.state.screen_name is None or self.state.local == normalize_screen_name(
            info.screen_name
        ):
            self.state.set_screen_name(info.screen_name)
            self.conn.log.screen_name = info.screen_name
            self.identify()
        self._forward_to_client(frame)

    async def _room_info(self, frame: Flap, snac: Snac) -> None:
        info = parse_room_info(snac)
        if info.name:
            self.state.room = info.name
        self._forward_to_client(frame)

    # Messages (handled by self.enforcer)

    def _reject_outbound(self, frame: Flap, family: int, snac: Snac) -> None:
        """Withhold a message that was not archived and tell the sender."""
        self._withhold_from_server(frame)
        error = encode_error(family, snac.request_id, ErrorCode.SERVICE_UNAVAILABLE)
        self.conn.to_client.inject(Channel.DATA, error)
        self.conn.context.metrics.message("outbound", "failed")
        self.conn.log.error("outbound message rejected: it could not be archived")

    async def _archive(self, record: ArchiveRecord) -> bool:
        try:
            record_id = await self.conn.context.archive_record(record)
        except ArchiveError as error:
            self.conn.trace.archive_failed(record, error)
            archive_log.error(
                "archive write failed for a %s record (conn=%s): %s",
                record.kind,
                self.conn.id,
                error,
            )
            return False
        self.conn.trace.archived(record, record_id)
        return True

    async def closed(self) -> None:
        """Record the end of a BOS connection as the session's sign-off."""
        if self.state.role != "bos":
            return
        self.conn.context.policy.disclaimers.end_session(self.state.session_id)
        self.identify()
        await self._archive(records.signoff_record(self.state))


def _disconnect_reason(tlvs: Tlvs) -> int | None:
    """Return the reason code of channel-4 TLV 0x09, or None.

    Open OSCAR Server v0.22.0 sends it as one byte (0x01: signed on elsewhere);
    other servers send a u16. Any other length is ignored.
    """
    for tlv in tlvs:
        if tlv.type == 0x0009 and len(tlv.value) in (1, 2):
            return int.from_bytes(tlv.value, "big")
    return None
