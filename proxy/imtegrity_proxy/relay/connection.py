"""One client connection: the sign-on or cookie hand-off, then two relay pumps.

The proxy sends its own channel-1 hello as soon as a client connects, so it can
read who is signing on (or which cookie is presented) before anything reaches
upstream. It then connects upstream, drops the server's hello (the client
already has one) and renumbers that direction to follow the proxy's own hello.
From there, each direction is a pump: read a frame, let the inspector decide,
write it on. A pump awaits the archive before it forwards a message, so
messages leave in the order they came and only after their record is committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..archive import ArchiveError
from ..log import ConnectionLogger, format_peer
from ..protocol.enums import Channel, SignonErrorCode
from ..protocol.errors import ProtocolError
from ..protocol.flap import Flap
from ..protocol.signon import (
    Hello,
    HelloKind,
    encode_bucp_login_failure,
    encode_hello,
    encode_old_style_failure,
    parse_challenge_request,
    parse_hello,
)
from ..protocol.snac import Snac, parse_snac
from . import records
from .context import RelayContext
from .frames import FrameSink, FrameSource, IdleTimeout, blame
from .inspect import Inspector
from .state import SessionState, new_session_id
from .upstream import UpstreamError, UpstreamStream

log = logging.getLogger("imtegrity.session")


class Connection:
    def __init__(
        self,
        context: RelayContext,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.context = context
        self.id = context.next_connection_id()
        peer = writer.get_extra_info("peername")
        self.local_host, self.local_port = writer.get_extra_info("sockname")[:2]
        self.log = ConnectionLogger(log, self.id, peer)
        self.trace = context.telemetry.session(context.metrics, self.id, peer, self.local_port)
        self.state = SessionState(new_session_id(), format_peer(peer))
        max_payload = context.config.relay.max_frame_payload
        idle = context.config.relay.idle_timeout_seconds
        self.client = FrameSource(reader, "client", max_payload, idle)
        self.to_client = FrameSink(writer, "inbound", context.metrics)
        self.server: FrameSource | None = None
        self.to_server: FrameSink | None = None
        self.upstream: UpstreamStream | None = None
        self.inspector = Inspector(self)

    async def run(self) -> None:
        self.context.metrics.session_opened()
        self.log.info("client connected on port %d", self.local_port)
        try:
            await self._run()
        except ProtocolError as error:
            self.log.warning("closing: %s protocol error: %s", error.side, error)
            self.trace.set_outcome("protocol_error", f"{error.side} protocol error")
        except UpstreamError as error:
            self.log.warning("closing: upstream %s failed: %s", error.target, error.reason)
            self.trace.set_outcome("upstream_failed", str(error))
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            self.log.info("closing: connection lost: %s", type(error).__name__)
            self.trace.set_outcome("connection_lost")
        except IdleTimeout as error:
            self.log.info("closing: %s", error)
            self.trace.set_outcome("idle_timeout")
        except asyncio.CancelledError:
            self.trace.set_outcome("cancelled")
            raise
        finally:
            await self._close()
            self.trace.end(self.state)

    async def _run(self) -> None:
        deadline = self.context.config.relay.handshake_timeout_seconds or None
        try:
            async with asyncio.timeout(deadline):
                ready = await self._handshake()
        except TimeoutError:
            self.log.info(
                "closing: sign-on or cookie hand-off not finished within %.0fs", deadline
            )
            self.trace.set_outcome("handshake_timeout")
            return
        if ready:
            await self._pump_both()

    async def _handshake(self) -> bool:
        """Take the client's hello, decide, and connect upstream; False stops here."""
        self.to_client.inject(Channel.SIGNON, encode_hello())
        await self.to_client.drain()
        pending = [await self.client.expect(Channel.SIGNON)]
        hello = blame("client", parse_hello, pending[0].payload)
        targets = await self._start(hello, pending)
        if targets is None or not await self._connect(targets):
            return False
        for frame in pending:
            self._to_server().relay(frame)
        return True

    async def _start(self, hello: Hello, pending: list[Flap]) -> list[tuple[str, int]] | None:
        """Classify the connection; return the upstream targets, or None to stop here."""
        kind = hello.kind
        if kind is HelloKind.SERVICE:
            targets = self._resume(hello.cookie or b"")
            if targets is None:
                await self._reject_unknown_cookie()
            return targets
        if kind is HelloKind.OLD_STYLE_LOGIN:
            self.state.signon_style = "old-style"
            self._signing_on(hello.screen_name or "")
        else:
            frame = await self.client.expect(Channel.DATA)
            pending.append(frame)
            snac = blame("client", parse_snac, frame.payload)
            self.state.signon_style = "bucp"
            self.inspector.signon_request_id = snac.request_id
            self._signing_on(_blame_snac(parse_challenge_request, snac))
        decision = await self.inspector.decide_signon()
        return self.context.connector.login_servers if decision else None

    def _signing_on(self, screen_name: str) -> None:
        self.state.set_screen_name(screen_name)
        self.log.screen_name = screen_name
        self.trace.begin(self.state)
        self.trace.signon_started(self.state)
        self.log.info("sign-on started (%s)", self.state.signon_style)

    async def _reject_unknown_cookie(self) -> None:
        self.state.role = "service"
        self.trace.begin(self.state)
        self.log.warning("closing: unknown cookie, and unregistered users are denied")
        record = records.signon_record(self.state, "denied", reason="unknown cookie")
        try:
            await self.context.archive_record(record)
        # The connection is refused whether or not its record was committed.
        except ArchiveError as error:
            self.log.error("archive write failed for a denied record: %s", error)
        self.trace.set_outcome("denied", "unknown cookie")

    def _resume(self, cookie: bytes) -> list[tuple[str, int]] | None:
        ticket = self.context.cookies.lookup(cookie)
        if ticket is None and self.context.policy.policy.config.unregistered == "deny":
            # No sign-on was decided for this cookie, so no one may use it.
            return None
        if ticket is None:
            default = self.context.connector.login_servers[:1]
            self.state.role = "service"
            self.trace.begin(self.state)
            self.log.info("unknown cookie: connecting to the default upstream only")
            return default
        self.state.session_id = ticket.session_id
        self.state.client_address = ticket.client_address
        self.state.role = "bos" if ticket.family is None else "service"
        self.state.family = ticket.family
        self.state.room = ticket.room
        if ticket.screen_name:
            self.state.set_screen_name(ticket.screen_name)
            self.log.screen_name = ticket.screen_name
        self.inspector.identify()
        self.trace.begin(self.state, ticket.trace_parent)
        family = "BOS" if ticket.family is None else f"family 0x{ticket.family:04x}"
        self.log.info("cookie accepted: %s connection to %s", family, _target(ticket.upstream))
        return [ticket.upstream]

    async def _connect(self, targets: list[tuple[str, int]]) -> bool:
        """Connect to the first target that answers with its hello, in order."""
        error: UpstreamError | None = None
        for target in targets:
            try:
                await self._open_upstream(target)
                return True
            except UpstreamError as failure:
                self.log.warning("upstream %s failed: %s", failure.target, failure.reason)
                error = failure
        self.log.warning("upstream unavailable: %s", error)
        if self.state.signon_style is not None:
            self.context.metrics.signon("upstream_unavailable")
        self.trace.signon_finished("upstream_unavailable")
        self.trace.set_outcome("upstream_unavailable", str(error))
        await self.fail_signon(SignonErrorCode.SERVICE_TEMPORARILY_UNAVAILABLE, "")
        return False

    async def _open_upstream(self, target: tuple[str, int]) -> None:
        with self.trace.upstream_connect(1) as connect_span:
            upstream = await self.context.connector.connect_first([target])
            connect_span.connected(upstream)
        relay = self.context.config.relay
        server = FrameSource(upstream.reader, "server", relay.max_frame_payload)
        try:
            async with asyncio.timeout(self.context.config.upstream.connect_timeout_seconds):
                server_hello = await server.expect(Channel.SIGNON)
        except TimeoutError as error:
            upstream.writer.close()
            self.context.metrics.upstream_connect_failure("timed out")
            raise UpstreamError(
                _target(target), "timed out", "no hello from the server"
            ) from error
        self.upstream = upstream
        self.server = server
        self.to_server = FrameSink(upstream.writer, "outbound", self.context.metrics)
        # The client already has the proxy's hello: drop the server's and follow on from ours.
        last = self.to_client.sequence.last_sent or 0
        self.to_client.sequence.rebase(server_hello.sequence, last)
        self.log.info("upstream connected: %s via %s", _target(upstream.address), upstream.via)

    async def fail_signon(self, code: int, url: str) -> None:
        """Send the client a sign-on failure in the style it signed on with, if any."""
        name = self.state.screen_name or ""
        if self.state.signon_style == "bucp":
            snac = encode_bucp_login_failure(self.inspector.signon_request_id, name, code, url)
            self.to_client.inject(Channel.DATA, snac)
            self.to_client.inject(Channel.SIGNOFF, b"")
        elif self.state.signon_style == "old-style":
            self.to_client.inject(Channel.SIGNOFF, encode_old_style_failure(name, code, url))
        await self.to_client.drain()

    async def _pump_both(self) -> None:
        tasks = [
            asyncio.create_task(self._pump_client(), name=f"conn-{self.id}-client"),
            asyncio.create_task(self._pump_server(), name=f"conn-{self.id}-server"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            task.result()

    async def _pump_client(self) -> None:
        to_server = self._to_server()
        metrics = self.context.metrics
        while (frame := await self.client.next()) is not None:
            started = time.perf_counter()
            await self.inspector.from_client(frame)
            metrics.frame_relayed("outbound", time.perf_counter() - started)
            await to_server.drain()
        self.trace.set_outcome("client_closed")
        self.log.info("client closed the connection")

    async def _pump_server(self) -> None:
        assert self.server is not None
        metrics = self.context.metrics
        while (frame := await self.server.next()) is not None:
            started = time.perf_counter()
            await self.inspector.from_server(frame)
            metrics.frame_relayed("inbound", time.perf_counter() - started)
            await self.to_client.drain()
        self.trace.set_outcome("server_closed")
        self.log.info("server closed the connection")

    def _to_server(self) -> FrameSink:
        assert self.to_server is not None, "upstream is not connected yet"
        return self.to_server

    async def _close(self) -> None:
        await self.inspector.closed()
        if self.to_server is not None:
            await self.to_server.close()
        await self.to_client.close()
        self.context.metrics.session_closed()
        self.log.info("connection closed")


def _target(address: tuple[str, int]) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _blame_snac(parse: Callable[[Snac], str], snac: Snac) -> str:
    try:
        return parse(snac)
    except ProtocolError as error:
        raise error.for_side("client") from error
