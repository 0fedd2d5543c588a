"""Spans, span events and metrics of real sessions through the proxy against Open OSCAR Server.

The proxy runs in-process with the SDK's in-memory span exporter and metric
reader, so each test reads exactly what an OTLP exporter would have been given.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from imtegrity_proxy.client import AimClient, SignonFailed, login
from imtegrity_proxy.config import parse_config
from imtegrity_proxy.log import JsonFormatter
from imtegrity_proxy.relay.app import ProxyServer
from imtegrity_proxy.telemetry import ProxyTelemetry, TraceContextFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.e2e.test_relay_failures import set_immutable
from tests.e2e.test_relay_messages import pair
from tests.fixtures.oscar import OscarServer, unique_screen_name
from tests.fixtures.peers import free_port
from tests.fixtures.proxy import RunningProxy, proxy_config

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 10.0


@dataclass
class TracedProxy:
    """A running proxy and what its in-memory exporter and reader hold."""

    proxy: RunningProxy
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader

    def finished(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def sessions(self, role: str, screen_name: str | None = None) -> list[ReadableSpan]:
        return [
            span
            for span in self.finished("imtegrity.session")
            if span.attributes.get("imtegrity.connection.role") == role
            and (
                screen_name is None or span.attributes.get("imtegrity.screen_name") == screen_name
            )
        ]

    def children(self, parent: ReadableSpan, name: str) -> list[ReadableSpan]:
        return [
            span
            for span in self.finished(name)
            if span.parent is not None and span.parent.span_id == parent.context.span_id
        ]

    async def wait_for_sessions(self, count: int) -> None:
        """Wait until ``count`` session spans have ended; connections close asynchronously."""
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while len(self.finished("imtegrity.session")) < count:
            if asyncio.get_running_loop().time() > deadline:
                ended = len(self.finished("imtegrity.session"))
                raise AssertionError(f"{ended} of {count} session spans ended in {WAIT_SECONDS} s")
            await asyncio.sleep(0.05)

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def values(self, name: str, key: str) -> dict[str, float]:
        """Return the value (or count, for a histogram) of each point by one attribute."""
        values: dict[str, float] = {}
        for point in self.points(name):
            value = getattr(point, "value", None)
            if value is None:
                value = point.count
            values[point.attributes[key]] = values.get(point.attributes[key], 0) + value
        return values


@pytest.fixture
async def traced_factory(
    tmp_path: Path, oscar_server: OscarServer
) -> AsyncIterator[Callable[..., Any]]:
    running: list[ProxyServer] = []

    async def make(oscar: OscarServer | None = None, **sections: Any) -> TracedProxy:
        server_peer = oscar or oscar_server
        spans = InMemorySpanExporter()
        reader = InMemoryMetricReader()
        telemetry = ProxyTelemetry(
            span_processors=[SimpleSpanProcessor(spans)], metric_readers=[reader]
        )
        sources = [server_peer.source_address() for _ in range(4)]
        data = proxy_config(tmp_path, [server_peer.address], sources, **sections)
        server = ProxyServer(parse_config(data), telemetry)
        await server.start()
        running.append(server)
        proxy = RunningProxy(server, Path(data["archive"]["path"]), data["health"]["port"])
        return TracedProxy(proxy, spans, reader)

    yield make
    for server in running:
        await server.stop(grace_seconds=0)


def normalized(screen_name: str) -> str:
    return screen_name.replace(" ", "").lower()


async def converse(traced: TracedProxy, oscar_server: OscarServer) -> tuple[str, str]:
    """Sign on two users, exchange IMs both ways and a chat message, then sign both off.

    Returns the normalised screen names. 8 connections end: a login, a BOS, a
    chat navigation and a chat connection per user.
    """
    alice, bob = await pair(traced.proxy, oscar_server)
    try:
        await alice.send_im(bob.screen_name, "telemetry hello")
        await bob.receive_im()
        await bob.send_im(alice.screen_name, "telemetry reply")
        await alice.receive_im()
        room_a = await alice.join_chat("telemetry-room")
        room_b = await bob.join_chat("telemetry-room")
        await asyncio.sleep(0.2)
        await room_a.send("telemetry chat line")
        await room_b.receive()
    finally:
        await alice.close()
        await bob.close()
    await traced.wait_for_sessions(8)
    return normalized(alice.screen_name), normalized(bob.screen_name)


# ---- span tree ----------------------------------------------------------------------


async def test_login_span_has_signon_connect_redirect(traced_factory, oscar_server):
    traced = await traced_factory()
    alice, _ = await converse(traced, oscar_server)
    (login_span,) = traced.sessions("login", alice)
    (signon,) = traced.children(login_span, "imtegrity.signon")
    (connect,) = traced.children(login_span, "imtegrity.upstream.connect")
    (redirect,) = traced.children(login_span, "imtegrity.redirect")
    assert login_span.parent is None
    assert login_span.attributes["client.address"].startswith("127.")
    assert login_span.attributes["imtegrity.listen.port"] == traced.proxy.port
    assert signon.attributes["imtegrity.signon.result"] == "success"
    assert signon.attributes["imtegrity.signon.style"] == "bucp"
    assert signon.attributes["imtegrity.screen_name"] == alice
    assert connect.attributes["server.address"] == oscar_server.host
    assert connect.attributes["server.port"] == oscar_server.port
    assert connect.attributes["imtegrity.upstream.route"] == "direct"
    assert connect.end_time > connect.start_time
    assert redirect.attributes["imtegrity.service"] == "bos"
    assert redirect.attributes["server.port"] == oscar_server.port


async def test_bos_span_continues_login_trace(traced_factory, oscar_server):
    traced = await traced_factory()
    alice, _ = await converse(traced, oscar_server)
    (login_span,) = traced.sessions("login", alice)
    (redirect,) = traced.children(login_span, "imtegrity.redirect")
    (bos,) = traced.sessions("bos", alice)
    (connect,) = traced.children(bos, "imtegrity.upstream.connect")
    assert bos.parent.span_id == redirect.context.span_id
    assert bos.context.trace_id == login_span.context.trace_id
    assert bos.attributes["imtegrity.session.id"] == login_span.attributes["imtegrity.session.id"]
    # The client signs off, so either side may close first.
    assert bos.attributes["imtegrity.session.outcome"] in ("client_closed", "server_closed")
    assert connect.attributes["imtegrity.upstream.route"] == "direct"
    assert traced.children(bos, "imtegrity.signon") == []


async def test_chat_span_continues_bos_trace(traced_factory, oscar_server):
    traced = await traced_factory()
    alice, _ = await converse(traced, oscar_server)
    (bos,) = traced.sessions("bos", alice)
    redirects = {
        span.attributes["imtegrity.service"]: span
        for span in traced.children(bos, "imtegrity.redirect")
    }
    services = traced.sessions("service", alice)
    chat = [s for s in services if s.attributes.get("imtegrity.service") == "chat"]
    assert sorted(redirects) == ["chat", "service"]
    assert redirects["chat"].attributes["oscar.snac.family"] == 0x000E
    assert len(chat) == 1
    assert chat[0].parent.span_id == redirects["chat"].context.span_id
    assert chat[0].context.trace_id == bos.context.trace_id


# ---- archive events -----------------------------------------------------------------


async def test_archive_events_match_records(traced_factory, oscar_server):
    traced = await traced_factory()
    await converse(traced, oscar_server)
    events = {}
    for span in traced.finished("imtegrity.session"):
        for event in span.events:
            if event.name == "imtegrity.archived":
                events[event.attributes["imtegrity.archive.record_id"]] = event.attributes
    records = {record["id"]: record for record in traced.proxy.records()}
    assert sorted(events) == sorted(records)
    for record_id, record in records.items():
        attributes = events[record_id]
        assert attributes["imtegrity.archive.kind"] == record["kind"]
        assert attributes.get("imtegrity.message.direction") == record["direction"]
        assert attributes.get("imtegrity.message.action") == record["action"]
        assert attributes.get("imtegrity.policy.rule") == record["rule"]


async def test_message_events_on_bos_and_chat(traced_factory, oscar_server):
    traced = await traced_factory()
    alice, _ = await converse(traced, oscar_server)
    (bos,) = traced.sessions("bos", alice)
    services = traced.sessions("service", alice)
    bos_kinds = [
        (e.attributes["imtegrity.archive.kind"], e.attributes.get("imtegrity.message.direction"))
        for e in bos.events
    ]
    service_kinds = [
        (e.attributes["imtegrity.archive.kind"], e.attributes.get("imtegrity.message.direction"))
        for s in services
        for e in s.events
    ]
    assert ("message", "outbound") in bos_kinds
    assert ("message", "inbound") in bos_kinds
    assert ("signoff", None) in bos_kinds
    assert ("chat", "outbound") in service_kinds


async def test_redacted_message_event_names_rule(traced_factory, oscar_server):
    rule = {"name": "card-numbers", "pattern": r"\d{4}-\d{4}", "action": "redact"}
    traced = await traced_factory(policy={"rules": [rule]})
    alice, bob = await pair(traced.proxy, oscar_server)
    try:
        await alice.send_im(bob.screen_name, "card 1234-5678 please")
        await bob.receive_im()
    finally:
        await alice.close()
        await bob.close()
    await traced.wait_for_sessions(4)
    (bos,) = traced.sessions("bos", normalized(alice.screen_name))
    (event,) = [
        e for e in bos.events if e.attributes.get("imtegrity.message.direction") == "outbound"
    ]
    outbound = [r for r in traced.proxy.records_of("message") if r["direction"] == "outbound"]
    assert event.attributes["imtegrity.message.action"] == "redacted"
    assert event.attributes["imtegrity.policy.rule"] == "card-numbers"
    assert event.attributes["imtegrity.archive.record_id"] == outbound[0]["id"]


# ---- failures -----------------------------------------------------------------------


async def test_wrong_password_signon_span_failed(traced_factory, oscar_server_factory):
    server = oscar_server_factory(disable_auth=False)
    name = unique_screen_name("Pwd")
    server.create_user(name, "right-password")
    traced = await traced_factory(oscar=server)
    with pytest.raises(SignonFailed) as failure:
        await login("127.0.0.1", traced.proxy.port, name, "wrong-password")
    await traced.wait_for_sessions(1)
    (login_span,) = traced.sessions("login")
    (signon,) = traced.children(login_span, "imtegrity.signon")
    assert signon.attributes["imtegrity.signon.result"] == "failed"
    assert signon.attributes["imtegrity.signon.error_code"] == failure.value.code
    assert signon.status.status_code is StatusCode.ERROR
    assert login_span.attributes["imtegrity.signon.result"] == "failed"
    assert traced.values("imtegrity.signons", "result") == {"failed": 1}


async def test_unreachable_upstream_spans(traced_factory):
    closed_port = free_port()
    traced = await traced_factory(upstream={"servers": [f"127.0.0.1:{closed_port}"]})
    with pytest.raises(SignonFailed):
        await login("127.0.0.1", traced.proxy.port, unique_screen_name(), "pw")
    await traced.wait_for_sessions(1)
    (login_span,) = traced.sessions("login")
    (connect,) = traced.children(login_span, "imtegrity.upstream.connect")
    (signon,) = traced.children(login_span, "imtegrity.signon")
    assert connect.status.status_code is StatusCode.ERROR
    assert connect.attributes["error.type"] == "refused"
    assert connect.attributes["imtegrity.upstream.target"] == f"127.0.0.1:{closed_port}"
    assert signon.attributes["imtegrity.signon.result"] == "upstream_unavailable"
    assert login_span.attributes["imtegrity.session.outcome"] == "upstream_unavailable"
    assert login_span.status.status_code is StatusCode.ERROR
    assert traced.values("imtegrity.signons", "result") == {"upstream_unavailable": 1}


async def test_denied_signon_span(traced_factory):
    traced = await traced_factory(policy={"unregistered": "deny"})
    with pytest.raises(SignonFailed):
        await login("127.0.0.1", traced.proxy.port, unique_screen_name(), "pw")
    await traced.wait_for_sessions(1)
    (login_span,) = traced.sessions("login")
    (signon,) = traced.children(login_span, "imtegrity.signon")
    (event,) = login_span.events
    assert signon.attributes["imtegrity.signon.result"] == "denied"
    assert traced.children(login_span, "imtegrity.upstream.connect") == []
    assert event.attributes["imtegrity.archive.kind"] == "denied"


async def test_archive_failure_refuses_signon(traced_factory):
    traced = await traced_factory()
    # Commit one record first, so the archive's WAL file exists to be made immutable.
    await login("127.0.0.1", traced.proxy.port, unique_screen_name(), "pw")
    files = [traced.proxy.archive_path, Path(f"{traced.proxy.archive_path}-wal")]
    set_immutable(files, True)
    try:
        with pytest.raises(SignonFailed):
            await login("127.0.0.1", traced.proxy.port, unique_screen_name(), "pw")
    finally:
        set_immutable(files, False)
    await traced.wait_for_sessions(2)
    signons = [
        span.attributes["imtegrity.signon.result"] for span in traced.finished("imtegrity.signon")
    ]
    failed_events = [
        event
        for span in traced.sessions("login")
        for event in span.events
        if event.name == "imtegrity.archive.failed"
    ]
    assert sorted(signons) == ["archive_failed", "success"]
    assert len(failed_events) == 1
    assert failed_events[0].attributes["imtegrity.archive.kind"] == "signon"
    assert failed_events[0].attributes["error.type"] == "ArchiveError"
    assert traced.values("imtegrity.signons", "result") == {"success": 1, "archive_failed": 1}


async def test_garbage_before_hello_traced(traced_factory):
    traced = await traced_factory()
    reader, writer = await asyncio.open_connection("127.0.0.1", traced.proxy.port)
    await reader.readexactly(6)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    await traced.wait_for_sessions(1)
    (span,) = traced.sessions("unknown")
    assert span.attributes["imtegrity.session.outcome"] == "protocol_error"
    assert span.status.status_code is StatusCode.ERROR
    assert traced.values("imtegrity.sessions", "role") == {"unknown": 1}


# ---- metrics ------------------------------------------------------------------------


async def test_metrics_of_a_conversation(traced_factory, oscar_server):
    traced = await traced_factory()
    await converse(traced, oscar_server)
    records = traced.proxy.records()
    assert traced.values("imtegrity.sessions", "role") == {"login": 2, "bos": 2, "service": 4}
    assert traced.values("imtegrity.signons", "result") == {"success": 2}
    messages = traced.values("imtegrity.messages", "direction")
    assert messages == {"outbound": 3, "inbound": 3}
    assert traced.values("imtegrity.messages", "action") == {"delivered": 6}
    frames = traced.values("imtegrity.relay.frame.duration", "direction")
    assert frames["outbound"] > 0
    assert frames["inbound"] > 0
    (commits,) = traced.points("imtegrity.archive.commit.duration")
    assert commits.count == len(records)
    assert traced.values("imtegrity.upstream.connect.duration", "via") == {"direct": 8}
    (active,) = traced.points("imtegrity.sessions.active")
    assert active.value == 0


# ---- log correlation ----------------------------------------------------------------


async def test_json_logs_join_session_span(traced_factory, oscar_server):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("imtegrity")
    logger.addHandler(handler)
    previous_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        traced = await traced_factory()
        name = unique_screen_name("Log")
        client = await AimClient.sign_on(
            "127.0.0.1",
            traced.proxy.port,
            name,
            "pw",
            local_addr=oscar_server.source_address(),
        )
        await client.close()
        await traced.wait_for_sessions(2)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (login_span,) = traced.sessions("login", normalized(name))
    (started,) = [
        line
        for line in lines
        if line["message"].startswith("sign-on started") and line.get("screen_name") == name
    ]
    assert started["trace_id"] == format(login_span.context.trace_id, "032x")
    assert started["span_id"] == format(login_span.context.span_id, "016x")
