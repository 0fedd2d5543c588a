"""The operator's reconcile span, duration histogram and error counter, without a cluster."""

from __future__ import annotations

import io
import json
import logging

import pytest
from imtegrity_operator.kube import KubeApiError
from imtegrity_operator.reconcile import ReconcileError
from imtegrity_operator.telemetry import OperatorTelemetry, add_trace_ids_to_logs
from imtegrity_proxy.log import JsonFormatter
from imtegrity_proxy.telemetry import TraceContextFilter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode


class Traced:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.telemetry = OperatorTelemetry(
            span_processors=[SimpleSpanProcessor(self.spans)], metric_readers=[self.reader]
        )

    def points(self, name: str) -> list:
        data = self.reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def traced():
    traced = Traced()
    yield traced
    traced.telemetry.shutdown()


def test_reconcile_success_span_and_duration(traced):
    with traced.telemetry.reconcile("team-a", "aim"):
        pass
    (span,) = traced.spans.get_finished_spans()
    (duration,) = traced.points("imtegrity.operator.reconcile.duration")
    assert span.name == "imtegrity.operator.reconcile"
    assert span.attributes["k8s.namespace.name"] == "team-a"
    assert span.attributes["imtegrity.resource.name"] == "aim"
    assert span.attributes["imtegrity.reconcile.outcome"] == "success"
    assert span.status.status_code is StatusCode.UNSET
    assert dict(duration.attributes) == {
        "k8s.namespace.name": "team-a",
        "imtegrity.resource.name": "aim",
        "outcome": "success",
    }
    assert duration.count == 1
    assert traced.points("imtegrity.operator.reconcile.errors") == []


ERROR_CASES = [
    (ReconcileError("spec.replicas: 2", permanent=True), "permanent_error", "permanent"),
    (ReconcileError("API server unavailable", permanent=False), "temporary_error", "temporary"),
    (KubeApiError("patch status", 503, "unavailable"), "error", "KubeApiError"),
]


@pytest.mark.parametrize(("error", "outcome", "error_type"), ERROR_CASES)
def test_reconcile_error_classified(traced, error, outcome, error_type):
    with pytest.raises(type(error)), traced.telemetry.reconcile("team-a", "aim"):
        raise error
    (span,) = traced.spans.get_finished_spans()
    (counted,) = traced.points("imtegrity.operator.reconcile.errors")
    (duration,) = traced.points("imtegrity.operator.reconcile.duration")
    assert span.attributes["imtegrity.reconcile.outcome"] == outcome
    assert span.attributes["error.type"] == error_type
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == str(error)
    assert counted.attributes["error.type"] == error_type
    assert counted.attributes["imtegrity.resource.name"] == "aim"
    assert counted.value == 1
    assert duration.attributes["outcome"] == outcome


def test_reconcile_span_current_inside(traced):
    from opentelemetry import trace

    with traced.telemetry.reconcile("team-a", "aim"):
        inside = trace.get_current_span().get_span_context()
    (span,) = traced.spans.get_finished_spans()
    assert inside.span_id == span.context.span_id


def test_default_service_name(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    telemetry = OperatorTelemetry()
    telemetry.shutdown()
    assert telemetry.resource.attributes["service.name"] == "imtegrity-operator"


def test_no_endpoint_no_exporters(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", raising=False)
    telemetry = OperatorTelemetry.from_environment()
    processors = telemetry.span_processors
    readers = telemetry.metric_readers
    telemetry.shutdown()
    assert processors == ()
    assert readers == ()


def test_trace_ids_added_to_root_handlers(traced):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    logger = logging.getLogger("imtegrity.operator.test")
    logger.setLevel(logging.INFO)
    try:
        add_trace_ids_to_logs()
        add_trace_ids_to_logs()
        with traced.telemetry.reconcile("team-a", "aim"):
            logger.info("applied")
    finally:
        root.removeHandler(handler)
    filters = [f for f in handler.filters if isinstance(f, TraceContextFilter)]
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    (span,) = traced.spans.get_finished_spans()
    assert len(filters) == 1
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")
