"""Telemetry without sockets: OTLP endpoint rules, the resource, metrics, spans and log ids."""

from __future__ import annotations

import io
import json
import logging

import pytest
from imtegrity_proxy.archive import ArchiveError, ArchiveRecord
from imtegrity_proxy.log import JsonFormatter
from imtegrity_proxy.metrics import ProxyMetrics
from imtegrity_proxy.relay.state import SessionState
from imtegrity_proxy.relay.upstream import UpstreamError, UpstreamStream
from imtegrity_proxy.telemetry import (
    METRICS,
    TRACES,
    ProxyTelemetry,
    TraceContextFilter,
    otlp_endpoint,
    proxy_resource,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ---- OTLP endpoints -----------------------------------------------------------------

BASE = "http://127.0.0.1:4318"

ENDPOINT_CASES = [
    # (environment, expected traces URL, expected metrics URL)
    ({}, None, None),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE}, f"{BASE}/v1/traces", f"{BASE}/v1/metrics"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE + "/"}, f"{BASE}/v1/traces", f"{BASE}/v1/metrics"),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE + "/otlp"},
        f"{BASE}/otlp/v1/traces",
        f"{BASE}/otlp/v1/metrics",
    ),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{BASE}/t"}, f"{BASE}/t", None),
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": f"{BASE}/m"}, None, f"{BASE}/m"),
    (
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": BASE,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{BASE}/own",
        },
        f"{BASE}/own",
        f"{BASE}/v1/metrics",
    ),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_SDK_DISABLED": "true"}, None, None),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_TRACES_EXPORTER": "none"},
        None,
        f"{BASE}/v1/metrics",
    ),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_METRICS_EXPORTER": "none"},
        f"{BASE}/v1/traces",
        None,
    ),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_TRACES_EXPORTER": "console,otlp"},
        f"{BASE}/v1/traces",
        f"{BASE}/v1/metrics",
    ),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, None, None),
    (
        {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
        None,
        f"{BASE}/v1/metrics",
    ),
    (
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": BASE,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        },
        None,
        f"{BASE}/v1/metrics",
    ),
]


@pytest.mark.parametrize(("environ", "traces", "metrics"), ENDPOINT_CASES)
def test_otlp_endpoint_resolution(environ, traces, metrics):
    assert otlp_endpoint(TRACES, environ) == traces
    assert otlp_endpoint(METRICS, environ) == metrics


def test_unsupported_protocol_logged(caplog):
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    with caplog.at_level(logging.WARNING, "imtegrity.config"):
        otlp_endpoint(TRACES, environ)
    assert "'grpc' is not supported" in caplog.text


def test_unsupported_exporter_logged(caplog):
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": BASE, "OTEL_TRACES_EXPORTER": "zipkin"}
    with caplog.at_level(logging.WARNING, "imtegrity.config"):
        assert otlp_endpoint(TRACES, environ) is None
    assert "OTEL_TRACES_EXPORTER=zipkin is not supported" in caplog.text


def test_no_endpoint_builds_no_exporter(clean_environment):
    telemetry = ProxyTelemetry.from_environment()
    try:
        assert telemetry.metric_readers == ()
        assert telemetry.span_processors == ()
    finally:
        telemetry.shutdown()


def test_endpoint_builds_both_exporters(clean_environment):
    # Nothing listens on port 9 (discard), and nothing is recorded, so nothing is sent.
    clean_environment.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    telemetry = ProxyTelemetry.from_environment()
    processors = telemetry.span_processors
    readers = telemetry.metric_readers
    telemetry.shutdown()
    for reader in readers:
        reader.shutdown(timeout_millis=100)
    assert len(processors) == 1
    assert len(readers) == 1


def test_endpoint_log_hides_userinfo(clean_environment, caplog):
    clean_environment.setenv(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://u:hunter2@127.0.0.1:9/x"
    )
    with caplog.at_level(logging.INFO, "imtegrity.config"):
        telemetry = ProxyTelemetry.from_environment()
    telemetry.shutdown()
    assert "http://127.0.0.1:9/x" in caplog.text
    assert "hunter2" not in caplog.text


# ---- resource -----------------------------------------------------------------------


def test_resource_default_service_name(clean_environment):
    assert proxy_resource().attributes["service.name"] == "imtegrity-proxy"


def test_resource_service_name_from_environment(clean_environment):
    clean_environment.setenv("OTEL_SERVICE_NAME", "proxy-eu-1")
    assert proxy_resource().attributes["service.name"] == "proxy-eu-1"


def test_resource_attributes_from_environment(clean_environment):
    clean_environment.setenv(
        "OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,deployment.environment=test"
    )
    attributes = proxy_resource().attributes
    assert attributes["service.name"] == "from-attributes"
    assert attributes["deployment.environment"] == "test"


# ---- metrics ------------------------------------------------------------------------


def metric_points(reader: InMemoryMetricReader, name: str) -> list:
    data = reader.get_metrics_data()
    points = []
    for resource_metrics in data.resource_metrics if data else []:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points


def test_metrics_extra_reader_sees_instruments():
    reader = InMemoryMetricReader()
    metrics = ProxyMetrics(readers=[reader])
    metrics.session_started("bos")
    metrics.session_started("bos")
    metrics.frame_relayed("outbound", 0.002)
    by_role = {p.attributes["role"]: p.value for p in metric_points(reader, "imtegrity.sessions")}
    frames = metric_points(reader, "imtegrity.relay.frame.duration")
    metrics.shutdown()
    assert by_role == {"bos": 2}
    assert len(frames) == 1
    assert frames[0].attributes == {"direction": "outbound"}
    assert frames[0].count == 1
    assert frames[0].sum == pytest.approx(0.002)


def test_metrics_prometheus_names_new_instruments():
    metrics = ProxyMetrics()
    metrics.session_started("login")
    metrics.frame_relayed("inbound", 0.0001)
    text = metrics.render_prometheus().decode()
    metrics.shutdown()
    assert 'imtegrity_sessions_total{role="login"} 1.0' in text
    assert 'imtegrity_relay_frame_duration_seconds_count{direction="inbound"} 1.0' in text


def test_metrics_counters_start_at_zero():
    metrics = ProxyMetrics()
    text = metrics.render_prometheus().decode()
    metrics.shutdown()
    assert "imtegrity_archive_failures_total 0.0" in text
    assert "imtegrity_rendezvous_blocked_total 0.0" in text
    assert "imtegrity_disclaimers_total 0.0" in text


def test_metrics_resource_passed_through():
    reader = InMemoryMetricReader()
    telemetry = ProxyTelemetry(resource=proxy_resource("unit-test"))
    metrics = ProxyMetrics(telemetry.resource, [reader])
    metrics.disclaimer()
    data = reader.get_metrics_data()
    metrics.shutdown()
    telemetry.shutdown()
    assert data.resource_metrics[0].resource.attributes["service.name"] == "unit-test"


# ---- spans --------------------------------------------------------------------------


class Traced:
    """A ProxyTelemetry with in-memory span and metric readers."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.telemetry = ProxyTelemetry(span_processors=[SimpleSpanProcessor(self.spans)])
        self.metrics = ProxyMetrics(readers=[self.reader])

    def named(self, name: str) -> list:
        return [span for span in self.spans.get_finished_spans() if span.name == name]

    def close(self) -> None:
        self.metrics.shutdown()
        self.telemetry.shutdown()


@pytest.fixture
def traced():
    traced = Traced()
    yield traced
    traced.close()


def login_state(name: str = "Alice Smith") -> SessionState:
    state = SessionState("0123456789abcdef", "127.0.0.1:5000")
    state.signon_style = "bucp"
    state.set_screen_name(name)
    return state


def record(kind: str = "message", **fields) -> ArchiveRecord:
    return ArchiveRecord(
        kind=kind,
        session="0123456789abcdef",
        client_address="127.0.0.1:5000",
        local="alicesmith",
        local_display="Alice Smith",
        **fields,
    )


def test_session_span_attributes(traced):
    session = traced.telemetry.session(traced.metrics, 7, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.end(state)
    (span,) = traced.named("imtegrity.session")
    assert span.attributes["imtegrity.connection.id"] == 7
    assert span.attributes["imtegrity.connection.role"] == "login"
    assert span.attributes["imtegrity.screen_name"] == "alicesmith"
    assert span.attributes["imtegrity.session.id"] == "0123456789abcdef"
    assert span.attributes["client.address"] == "127.0.0.1"
    assert span.attributes["client.port"] == 5000
    assert span.attributes["imtegrity.listen.port"] == 5190
    assert span.attributes["imtegrity.session.outcome"] == "closed"
    assert span.parent is None


def test_session_span_dated_from_accept(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    accepted = session._accepted_ns
    state = login_state()
    session.begin(state)
    session.end(state)
    (span,) = traced.named("imtegrity.session")
    assert span.start_time == accepted


def test_signon_span_result_and_status(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.signon_started(state)
    session.signon_finished("failed", 0x0005)
    session.end(state)
    (signon,) = traced.named("imtegrity.signon")
    (parent,) = traced.named("imtegrity.session")
    assert signon.parent.span_id == parent.context.span_id
    assert signon.attributes["imtegrity.signon.result"] == "failed"
    assert signon.attributes["imtegrity.signon.error_code"] == 5
    assert signon.attributes["imtegrity.signon.style"] == "bucp"
    assert signon.status.status_code is StatusCode.ERROR
    assert parent.attributes["imtegrity.signon.result"] == "failed"


def test_signon_success_leaves_status_unset(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.signon_started(state)
    session.signon_finished("success")
    session.end(state)
    (signon,) = traced.named("imtegrity.signon")
    assert signon.status.status_code is StatusCode.UNSET


def test_signon_open_at_end_is_incomplete(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.signon_started(state)
    session.end(state)
    (signon,) = traced.named("imtegrity.signon")
    results = {
        p.attributes["result"]: p.value for p in metric_points(traced.reader, "imtegrity.signons")
    }
    assert signon.attributes["imtegrity.signon.result"] == "incomplete"
    assert results == {"incomplete": 1}


def test_redirect_parents_next_session(traced):
    login = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    login.begin(state)
    parent = login.redirect(("127.0.0.1", 5191), None)
    login.end(state)
    bos = traced.telemetry.session(traced.metrics, 2, ("127.0.0.1", 5001), 5190)
    bos_state = login_state()
    bos_state.role = "bos"
    bos.begin(bos_state, parent)
    bos.end(bos_state)
    (redirect,) = traced.named("imtegrity.redirect")
    sessions = {
        s.attributes["imtegrity.connection.role"]: s for s in traced.named("imtegrity.session")
    }
    assert redirect.attributes["imtegrity.service"] == "bos"
    assert redirect.attributes["server.port"] == 5191
    assert sessions["bos"].parent.span_id == redirect.context.span_id
    assert sessions["bos"].context.trace_id == sessions["login"].context.trace_id


def test_redirect_to_chat_names_service(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.redirect(("127.0.0.1", 5191), 0x000E)
    session.redirect(("127.0.0.1", 5191), 0x000D)
    session.end(state)
    services = [
        span.attributes["imtegrity.service"] for span in traced.named("imtegrity.redirect")
    ]
    families = [
        span.attributes["oscar.snac.family"] for span in traced.named("imtegrity.redirect")
    ]
    assert services == ["chat", "service"]
    assert families == [0x000E, 0x000D]


def test_archived_event_attributes(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    message = record(
        direction="outbound",
        action="redacted",
        rule="card-numbers",
        text="4111 1111",
        remote="bob",
    )
    session.archived(message, 42)
    session.archive_failed(record(kind="signoff"), ArchiveError("disk full at /x"))
    session.end(state)
    (span,) = traced.named("imtegrity.session")
    archived, failed = span.events
    assert archived.name == "imtegrity.archived"
    assert dict(archived.attributes) == {
        "imtegrity.archive.kind": "message",
        "imtegrity.archive.record_id": 42,
        "imtegrity.message.direction": "outbound",
        "imtegrity.message.action": "redacted",
        "imtegrity.policy.rule": "card-numbers",
    }
    assert failed.name == "imtegrity.archive.failed"
    assert dict(failed.attributes) == {
        "imtegrity.archive.kind": "signoff",
        "error.type": "ArchiveError",
    }


def test_upstream_connect_span_success(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    with session.upstream_connect(2) as connect:
        connect.connected(UpstreamStream(None, None, ("127.0.0.1", 5190), "socks5 127.0.0.1:1080"))
    session.end(state)
    (span,) = traced.named("imtegrity.upstream.connect")
    assert span.attributes["imtegrity.upstream.candidates"] == 2
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == 5190
    assert span.attributes["imtegrity.upstream.route"] == "socks"
    assert span.attributes["imtegrity.upstream.proxy"] == "socks5 127.0.0.1:1080"
    assert span.status.status_code is StatusCode.UNSET
    assert span.end_time >= span.start_time


def test_upstream_connect_span_failure(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    with pytest.raises(UpstreamError), session.upstream_connect(1):
        raise UpstreamError("127.0.0.1:9", "refused")
    session.end(state)
    (span,) = traced.named("imtegrity.upstream.connect")
    assert span.attributes["error.type"] == "refused"
    assert span.attributes["imtegrity.upstream.target"] == "127.0.0.1:9"
    assert span.attributes["imtegrity.upstream.route"] == "direct"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "127.0.0.1:9: refused"


def test_outcome_error_sets_status(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.set_outcome("protocol_error", "client protocol error")
    session.end(state)
    (span,) = traced.named("imtegrity.session")
    assert span.attributes["imtegrity.session.outcome"] == "protocol_error"
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "client protocol error"


def test_first_outcome_kept_unless_error(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    session.set_outcome("client_closed")
    session.set_outcome("server_closed")
    kept = session._outcome
    session.set_outcome("protocol_error", "server protocol error")
    session.end(state)
    (span,) = traced.named("imtegrity.session")
    assert kept == "client_closed"
    assert span.attributes["imtegrity.session.outcome"] == "protocol_error"


def test_end_before_begin_counts_unknown(traced):
    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    session.end(SessionState("0123456789abcdef", "127.0.0.1:5000"))
    (span,) = traced.named("imtegrity.session")
    roles = {
        p.attributes["role"]: p.value for p in metric_points(traced.reader, "imtegrity.sessions")
    }
    assert span.attributes["imtegrity.connection.role"] == "unknown"
    assert roles == {"unknown": 1}


def test_session_span_current_until_end(traced):
    from opentelemetry import trace

    session = traced.telemetry.session(traced.metrics, 1, ("127.0.0.1", 5000), 5190)
    state = login_state()
    session.begin(state)
    inside = trace.get_current_span().get_span_context()
    session.end(state)
    after = trace.get_current_span().get_span_context()
    (span,) = traced.named("imtegrity.session")
    assert inside.span_id == span.context.span_id
    assert not after.is_valid


# ---- log correlation ----------------------------------------------------------------


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_log_line_carries_trace_ids(traced):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("imtegrity.test.telemetry")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("outside")
        with traced.telemetry.tracer.start_as_current_span("work") as span:
            logger.info("inside")
    finally:
        logger.removeHandler(handler)
    outside, inside = json_lines(stream)
    context = span.get_span_context()
    assert "trace_id" not in outside
    assert "span_id" not in outside
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
