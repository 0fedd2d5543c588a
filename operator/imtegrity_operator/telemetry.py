"""OpenTelemetry spans and metrics of reconcile passes, exported as OTEL_* variables configure.

Every pass of ``Reconciler.reconcile`` runs inside ``OperatorTelemetry.reconcile``,
which records an ``imtegrity.operator.reconcile`` span with the resource's
namespace and name and the outcome, the pass's duration in a histogram, and a
failed pass in an error counter. The export rules are the proxy's
(``imtegrity_proxy.telemetry.otlp_endpoint``): OTLP/HTTP only when an endpoint
variable is set, and nothing otherwise. The operator exposes no Prometheus
endpoint of its own, so without OTLP its metrics stay in memory.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence

from imtegrity_proxy.telemetry import (
    METRICS,
    TRACES,
    TraceContextFilter,
    otlp_endpoint,
    proxy_resource,
    url_without_userinfo,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import Status, StatusCode

__all__ = ["DEFAULT_SERVICE_NAME", "OperatorTelemetry", "add_trace_ids_to_logs"]

log = logging.getLogger("imtegrity.operator")

DEFAULT_SERVICE_NAME = "imtegrity-operator"
INSTRUMENTATION_NAME = "imtegrity_operator"

# Bucket bounds in seconds, set by estimate. A pass makes about a dozen API
# requests (a read and an apply per child, then a status patch). Each takes
# milliseconds on a healthy API server and up to the client timeout otherwise.
_RECONCILE_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class OperatorTelemetry:
    """The tracer provider, meter provider and reconcile instruments of one operator."""

    def __init__(
        self,
        resource: Resource | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        self.resource = resource if resource is not None else proxy_resource(DEFAULT_SERVICE_NAME)
        # Without a sampler argument the SDK reads OTEL_TRACES_SAMPLER and its argument.
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.span_processors = tuple(span_processors)
        for processor in self.span_processors:
            self.tracer_provider.add_span_processor(processor)
        self.metric_readers = tuple(metric_readers)
        self.meter_provider = MeterProvider(
            metric_readers=list(self.metric_readers), resource=self.resource
        )
        self.tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_NAME)
        meter = self.meter_provider.get_meter(INSTRUMENTATION_NAME)
        self._duration = meter.create_histogram(
            "imtegrity.operator.reconcile.duration",
            unit="s",
            description="Time one reconcile pass took, by resource and outcome.",
            explicit_bucket_boundaries_advisory=_RECONCILE_BUCKETS,
        )
        self._errors = meter.create_counter(
            "imtegrity.operator.reconcile.errors",
            unit="1",
            description="Reconcile passes that stopped with an error, by resource and error type.",
        )

    @classmethod
    def from_environment(cls) -> OperatorTelemetry:
        """Build the telemetry with an OTLP exporter for each signal that has an endpoint."""
        processors: list[SpanProcessor] = []
        readers: list[MetricReader] = []
        traces_url = otlp_endpoint(TRACES)
        if traces_url is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            processors.append(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url)))
            log.info("exporting traces over OTLP/HTTP to %s", url_without_userinfo(traces_url))
        metrics_url = otlp_endpoint(METRICS)
        if metrics_url is not None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=metrics_url)))
            log.info("exporting metrics over OTLP/HTTP to %s", url_without_userinfo(metrics_url))
        return cls(proxy_resource(DEFAULT_SERVICE_NAME), processors, readers)

    @contextlib.contextmanager
    def reconcile(self, namespace: str, name: str) -> Iterator[None]:
        """Trace and time one reconcile pass of the resource ``namespace/name``.

        The span is current inside the block, so the pass's log lines carry its
        ids. The outcome is ``success`` when the block returns. A
        ``ReconcileError`` makes it ``permanent_error`` or ``temporary_error``,
        and any other exception ``error``; each error is counted and re-raised.
        """
        attributes = {"k8s.namespace.name": namespace, "imtegrity.resource.name": name}
        started = time.perf_counter()
        with self.tracer.start_as_current_span(
            "imtegrity.operator.reconcile",
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            except Exception as error:
                outcome, error_type = _classify(error)
                span.set_attribute("imtegrity.reconcile.outcome", outcome)
                span.set_attribute("error.type", error_type)
                # ReconcileError and KubeApiError messages name the object and the API
                # server's reason. The resource spec contains no credentials.
                span.set_status(Status(StatusCode.ERROR, str(error)))
                self._errors.add(1, {**attributes, "error.type": error_type})
                self._duration.record(
                    time.perf_counter() - started, {**attributes, "outcome": outcome}
                )
                raise
            span.set_attribute("imtegrity.reconcile.outcome", "success")
            self._duration.record(
                time.perf_counter() - started, {**attributes, "outcome": "success"}
            )

    def shutdown(self) -> None:
        """Export what is still queued and stop both providers, blocking up to the timeouts."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def _classify(error: Exception) -> tuple[str, str]:
    """Return the outcome and the ``error.type`` of a pass that raised ``error``."""
    from imtegrity_operator.reconcile import ReconcileError

    if isinstance(error, ReconcileError):
        kind = "permanent" if error.permanent else "temporary"
        return f"{kind}_error", kind
    return "error", type(error).__name__


def add_trace_ids_to_logs() -> None:
    """Add ``trace_id`` and ``span_id`` to the records of every root log handler.

    Call it after ``kopf.configure``, which installs the handler. kopf's JSON
    format writes them as fields, and its text format leaves them out.
    """
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, TraceContextFilter) for f in handler.filters):
            handler.addFilter(TraceContextFilter())
