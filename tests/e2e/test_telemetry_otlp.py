"""OTLP/HTTP export of a proxy process, set only by the OTEL_* environment variables.

The proxy runs as ``imtegrity-proxy serve`` in a subprocess, in front of Open
OSCAR Server, and exports to ``OtlpReceiver`` on loopback. The receiver is our
own small aiohttp app because no OpenTelemetry Collector binary is available
on this machine. It accepts ``POST /v1/traces`` and ``POST /v1/metrics`` and
decodes the protobuf bodies with ``opentelemetry-proto``, as a collector would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from aiohttp import web
from imtegrity_proxy import client as client_module
from imtegrity_proxy.archive import export_records
from imtegrity_proxy.client import AimClient, login, open_service
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from tests.e2e.test_relay_failures import _wait_ready
from tests.fixtures.oscar import OscarServer, unique_screen_name
from tests.fixtures.proxy import proxy_config

# The tests that read one shared proxy run use the module's event loop.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

LOOPBACK = "127.0.0.1"
PROTOBUF = "application/x-protobuf"
# The SDK's OTLP/HTTP default (opentelemetry-exporter-otlp-proto-http 1.45.2).
DEFAULT_OTLP_PORT = 4318

PASSWORD = "Tr4cePa55-unique-zq"
IM_TEXT = "ledger figures for the compliance team"
REPLY_TEXT = "acknowledged, reviewing the ledger"
CHAT_TEXT = "room-wide quarterly numbers"


@dataclass
class OtlpReceiver:
    """An OTLP/HTTP (protobuf) receiver on loopback that keeps every request body."""

    port: int = 0
    bodies: dict[str, list[bytes]] = field(default_factory=lambda: {"traces": [], "metrics": []})
    _runner: web.AppRunner | None = None

    async def start(self) -> OtlpReceiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        app.router.add_post("/v1/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    async def _read(self, request: web.Request, signal_name: str) -> None:
        if request.content_type != PROTOBUF:
            raise web.HTTPUnsupportedMediaType(text=f"expected {PROTOBUF}")
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.bodies[signal_name].append(body)

    async def _traces(self, request: web.Request) -> web.Response:
        await self._read(request, "traces")
        response = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=response, content_type=PROTOBUF)

    async def _metrics(self, request: web.Request) -> web.Response:
        await self._read(request, "metrics")
        response = ExportMetricsServiceResponse().SerializeToString()
        return web.Response(body=response, content_type=PROTOBUF)

    def trace_requests(self) -> list[ExportTraceServiceRequest]:
        return [ExportTraceServiceRequest.FromString(body) for body in self.bodies["traces"]]

    def metric_requests(self) -> list[ExportMetricsServiceRequest]:
        return [ExportMetricsServiceRequest.FromString(body) for body in self.bodies["metrics"]]


def attribute_map(attributes: Any) -> dict[str, Any]:
    """Convert OTLP ``KeyValue`` attributes to a dict of plain values."""
    values: dict[str, Any] = {}
    for item in attributes:
        assert isinstance(item, KeyValue)
        kind = item.value.WhichOneof("value")
        values[item.key] = getattr(item.value, kind) if kind else None
    return values


def exported_spans(receiver: OtlpReceiver) -> Iterator[tuple[dict[str, Any], Any]]:
    """Yield (resource attributes, span) for every exported span."""
    for request in receiver.trace_requests():
        for resource_spans in request.resource_spans:
            resource = attribute_map(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    yield resource, span


def exported_metrics(receiver: OtlpReceiver) -> Iterator[tuple[dict[str, Any], Any]]:
    """Yield (resource attributes, metric) for every exported metric."""
    for request in receiver.metric_requests():
        for resource_metrics in request.resource_metrics:
            resource = attribute_map(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    yield resource, metric


# ---- one proxy process --------------------------------------------------------------


@dataclass
class ProxyRun:
    """What one proxy process exported and logged while two users talked through it."""

    receiver_requests: int
    receiver: OtlpReceiver
    log_lines: list[dict[str, Any]]
    exit_code: int
    alice: str
    bob: str
    secrets: dict[str, bytes]
    records: list[dict[str, Any]]


def otel_free_environment(**variables: str) -> dict[str, str]:
    """Return this process's environment without OTEL_* variables, plus ``variables``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(variables)
    return environment


class CookieRecorder:
    """Record every redirect cookie the scripted client receives, to search for it later."""

    def __init__(self) -> None:
        self.cookies: list[bytes] = []
        self._parse = client_module.oservice.parse_redirect

    def parse_redirect(self, snac: Any) -> Any:
        redirect = self._parse(snac)
        if redirect.cookie:
            self.cookies.append(redirect.cookie)
        return redirect


async def talk(port: int, oscar: OscarServer, recorder: CookieRecorder) -> tuple[str, str]:
    """Sign on two users through the proxy, exchange IMs and a chat line, sign both off."""
    alice_name, bob_name = unique_screen_name("Otl"), unique_screen_name("Otl")
    source = oscar.source_address()
    result = await login(LOOPBACK, port, alice_name, PASSWORD, local_addr=source)
    recorder.cookies.append(result.cookie)
    bos = await open_service(result.host, result.port, result.cookie, source)
    alice = AimClient(result.screen_name, bos, source)
    bob = await AimClient.sign_on(
        LOOPBACK, port, bob_name, PASSWORD, local_addr=oscar.source_address()
    )
    try:
        await oscar.async_wait_for_session(alice_name)
        await oscar.async_wait_for_session(bob_name)
        await alice.send_im(bob.screen_name, IM_TEXT)
        await bob.receive_im()
        await bob.send_im(alice.screen_name, REPLY_TEXT)
        await alice.receive_im()
        room_a = await alice.join_chat("otlp-room")
        room_b = await bob.join_chat("otlp-room")
        await asyncio.sleep(0.2)
        await room_a.send(CHAT_TEXT)
        await room_b.receive()
    finally:
        await alice.close()
        await bob.close()
    return alice_name.lower(), bob_name.lower()


async def run_proxy(
    tmp_path: Path,
    oscar: OscarServer,
    receiver: OtlpReceiver,
    environment: dict[str, str],
) -> ProxyRun:
    """Run ``imtegrity-proxy serve`` with ``environment``, let two users talk, then SIGTERM it."""
    config = proxy_config(tmp_path, [oscar.address], [oscar.source_address() for _ in range(4)])
    config_path = tmp_path / "proxy.yaml"
    config_path.write_text(yaml.safe_dump(config))
    proxy_bin = Path(sys.executable).parent / "imtegrity-proxy"
    command = [str(proxy_bin), "serve", "--config", str(config_path), "--log-format", "json"]
    log_path = tmp_path / "proxy.log"
    recorder = CookieRecorder()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, env=environment)
    try:
        await _wait_ready(f"http://{LOOPBACK}:{config['health']['port']}/readyz")
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(client_module.oservice, "parse_redirect", recorder.parse_redirect)
            alice, bob = await talk(config["listen"]["ports"][0], oscar, recorder)
        # Let the connections close before the signal, so every session span ends.
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(process.wait, 20)
    finally:
        if process.poll() is None:
            process.kill()
    log_lines = []
    for line in log_path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            log_lines.append(json.loads(line))
    secrets = {"password": PASSWORD.encode()}
    for index, cookie in enumerate(recorder.cookies):
        secrets[f"cookie {index} bytes"] = cookie
        secrets[f"cookie {index} hex"] = cookie.hex().encode()
        secrets[f"cookie {index} HEX"] = cookie.hex().upper().encode()
        secrets[f"cookie {index} base64"] = base64.b64encode(cookie)
    for name, text in (("im", IM_TEXT), ("reply", REPLY_TEXT), ("chat", CHAT_TEXT)):
        secrets[f"{name} text"] = text.encode()
        secrets[f"{name} text utf-16"] = text.encode("utf-16-be")
    requests = sum(len(bodies) for bodies in receiver.bodies.values())
    records = list(export_records(config["archive"]["path"]))
    return ProxyRun(requests, receiver, log_lines, exit_code, alice, bob, secrets, records)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exported(tmp_path_factory, oscar_server) -> ProxyRun:
    tmp_path = tmp_path_factory.mktemp("otlp")
    receiver = await OtlpReceiver().start()
    environment = otel_free_environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_SERVICE_NAME="imtegrity-e2e",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=e2e,service.instance.id=proxy-1",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
        OTEL_SPAN_EVENT_COUNT_LIMIT="1000",
    )
    try:
        return await run_proxy(tmp_path, oscar_server, receiver, environment)
    finally:
        await receiver.stop()


# ---- traces -------------------------------------------------------------------------


async def test_otlp_traces_hold_session_span(exported):
    spans = [span for _, span in exported_spans(exported.receiver)]
    sessions = [
        attribute_map(span.attributes) for span in spans if span.name == "imtegrity.session"
    ]
    alice_roles = sorted(
        s["imtegrity.connection.role"]
        for s in sessions
        if s.get("imtegrity.screen_name") == exported.alice
    )
    signons = [attribute_map(s.attributes) for s in spans if s.name == "imtegrity.signon"]
    assert exported.exit_code == 0
    assert alice_roles == ["bos", "login", "service", "service"]
    assert [s["imtegrity.signon.result"] for s in signons] == ["success", "success"]


async def test_otlp_resource_from_environment(exported):
    resources = [resource for resource, _ in exported_spans(exported.receiver)]
    metric_resources = [resource for resource, _ in exported_metrics(exported.receiver)]
    assert resources
    for resource in resources + metric_resources:
        assert resource["service.name"] == "imtegrity-e2e"
        assert resource["deployment.environment"] == "e2e"
        assert resource["service.instance.id"] == "proxy-1"


async def test_otlp_archive_events_carry_ids(exported):
    record_ids = []
    for _, span in exported_spans(exported.receiver):
        for event in span.events:
            if event.name == "imtegrity.archived":
                record_ids.append(attribute_map(event.attributes)["imtegrity.archive.record_id"])
    archived_ids = [record["id"] for record in exported.records]
    # 2 sign-ons, 4 IM records (2 sent, 2 received), 2 chat records, 2 sign-offs.
    assert len(archived_ids) == 10
    assert sorted(record_ids) == sorted(archived_ids)


async def test_otlp_metrics_exported(exported):
    names = {metric.name for _, metric in exported_metrics(exported.receiver)}
    sessions = [
        attribute_map(point.attributes)["role"]
        for _, metric in exported_metrics(exported.receiver)
        if metric.name == "imtegrity.sessions"
        for point in metric.sum.data_points
    ]
    assert "imtegrity.relay.frame.duration" in names
    assert "imtegrity.archive.commit.duration" in names
    assert "imtegrity.upstream.connect.duration" in names
    assert "imtegrity.signons" in names
    assert "imtegrity.messages" in names
    assert "imtegrity.sessions.active" in names
    assert {"login", "bos", "service"} <= set(sessions)


async def test_json_log_trace_ids_match_export(exported):
    login_spans = {
        attribute_map(span.attributes).get("imtegrity.screen_name"): span
        for _, span in exported_spans(exported.receiver)
        if span.name == "imtegrity.session"
        and attribute_map(span.attributes)["imtegrity.connection.role"] == "login"
    }
    span = login_spans[exported.alice]
    (line,) = [
        line
        for line in exported.log_lines
        if line["message"].startswith("sign-on started")
        and line.get("screen_name", "").lower() == exported.alice
    ]
    assert line["trace_id"] == span.trace_id.hex()
    assert line["span_id"] == span.span_id.hex()


async def test_exported_payload_has_no_secrets(exported):
    bodies = exported.receiver.bodies["traces"] + exported.receiver.bodies["metrics"]
    assert len(exported.secrets) > 12
    assert bodies
    for name, secret in exported.secrets.items():
        for body in bodies:
            assert secret not in body, f"the {name} appears in an exported OTLP body"


# ---- what is not exported -----------------------------------------------------------


async def test_sampler_always_off_exports_no_spans(tmp_path, oscar_server):
    receiver = await OtlpReceiver().start()
    environment = otel_free_environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_TRACES_SAMPLER="always_off",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    try:
        run = await run_proxy(tmp_path, oscar_server, receiver, environment)
    finally:
        await receiver.stop()
    spans = list(exported_spans(receiver))
    metrics = list(exported_metrics(receiver))
    with_trace_ids = [line for line in run.log_lines if "trace_id" in line]
    assert run.exit_code == 0
    assert spans == []
    assert metrics
    # An unsampled span still has a trace id, so log lines keep one to search for.
    assert with_trace_ids


async def test_no_endpoint_exports_nothing(tmp_path, oscar_server):
    # Listen where the SDK's exporters send by default, to catch a fallback export.
    try:
        receiver = await OtlpReceiver(port=DEFAULT_OTLP_PORT).start()
    except OSError as error:
        pytest.skip(f"port {DEFAULT_OTLP_PORT} on {LOOPBACK} is taken: {error}")
    try:
        run = await run_proxy(tmp_path, oscar_server, receiver, otel_free_environment())
    finally:
        await receiver.stop()
    assert run.exit_code == 0
    assert run.receiver_requests == 0


async def test_grpc_protocol_is_not_exported(tmp_path, oscar_server):
    receiver = await OtlpReceiver().start()
    environment = otel_free_environment(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="grpc"
    )
    try:
        run = await run_proxy(tmp_path, oscar_server, receiver, environment)
    finally:
        await receiver.stop()
    warnings = [line["message"] for line in run.log_lines if line.get("level") == "warning"]
    assert run.receiver_requests == 0
    assert any("'grpc' is not supported" in message for message in warnings)
