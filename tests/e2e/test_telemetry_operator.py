"""Reconcile spans and metrics of the operator against a real kube-apiserver.

The first tests run ``Reconciler.reconcile`` in-process with the SDK's
in-memory exporters, on resources applied with kubectl. The last one runs
``imtegrity-operator run`` as a subprocess that exports over OTLP/HTTP to the
loopback receiver from ``test_telemetry_otlp`` (our own, since no collector
binary is available), run here in a thread because these tests are synchronous.
The namespaces start with ``tel-``, so the operator of ``test_operator`` (which
watches ``imtegrity`` and ``op-*``) never reconciles them.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imtegrity_operator.kube import KubeClient
from imtegrity_operator.reconcile import ReconcileError, Reconciler
from imtegrity_operator.telemetry import OperatorTelemetry
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from tests.e2e.test_operator import (
    PROXY_IMAGE,
    cluster,  # noqa: F401 (a fixture used by the tests below)
    create_namespace,
    get_object,
    proxy_manifest,
    wait_for,
)
from tests.e2e.test_telemetry_otlp import (
    OtlpReceiver,
    attribute_map,
    exported_metrics,
    exported_spans,
)
from tests.fixtures.kube import KubeCluster
from tests.fixtures.peers import PeerProcess, free_port, http_probe, minimal_env

pytestmark = pytest.mark.e2e


class Traced:
    """An ``OperatorTelemetry`` with the SDK's in-memory span exporter and metric reader."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.telemetry = OperatorTelemetry(
            span_processors=[SimpleSpanProcessor(self.spans)], metric_readers=[self.reader]
        )

    def reconcile_spans(self) -> list[ReadableSpan]:
        return [
            span
            for span in self.spans.get_finished_spans()
            if span.name == "imtegrity.operator.reconcile"
        ]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        found = []
        for resource_metrics in data.resource_metrics if data else []:
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found


@pytest.fixture
def traced() -> Iterator[Traced]:
    traced = Traced()
    yield traced
    traced.telemetry.shutdown()


def reconciler_for(kube: KubeCluster, traced: Traced) -> Reconciler:
    client = KubeClient.from_config(str(kube.kubeconfig))
    return Reconciler(
        client=client,
        default_image=PROXY_IMAGE,
        post_event=lambda *_: None,
        telemetry=traced.telemetry,
    )


def apply_proxy(kube: KubeCluster, namespace: str, spec: dict[str, Any]) -> str:
    """Apply an IMtegrityProxy named ``aim`` and return its UID."""
    kube.kubectl("apply", "-f", "-", input=proxy_manifest(namespace, "aim", spec))
    resource = get_object(kube, "imtegrityproxy", "aim", namespace)
    assert resource is not None
    return str(resource["metadata"]["uid"])


# ---- in-process reconcile -----------------------------------------------------------


def test_reconcile_span_for_applied_resource(cluster, traced):  # noqa: F811
    namespace = create_namespace(cluster, "tel-span")
    uid = apply_proxy(cluster, namespace, {})

    reconciler_for(cluster, traced).reconcile(namespace, "aim", uid)

    (span,) = traced.reconcile_spans()
    (duration,) = traced.points("imtegrity.operator.reconcile.duration")
    assert span.attributes["k8s.namespace.name"] == namespace
    assert span.attributes["imtegrity.resource.name"] == "aim"
    assert span.attributes["imtegrity.reconcile.outcome"] == "success"
    assert span.status.status_code is StatusCode.UNSET
    assert duration.attributes["k8s.namespace.name"] == namespace
    assert duration.attributes["imtegrity.resource.name"] == "aim"
    assert duration.attributes["outcome"] == "success"
    assert duration.count == 1
    assert duration.sum > 0
    assert get_object(cluster, "deployment", "aim", namespace) is not None


def test_refused_spec_counts_error(cluster, traced):  # noqa: F811
    namespace = create_namespace(cluster, "tel-error")
    uid = apply_proxy(cluster, namespace, {"replicas": 2})

    with pytest.raises(ReconcileError):
        reconciler_for(cluster, traced).reconcile(namespace, "aim", uid)

    (span,) = traced.reconcile_spans()
    (errors,) = traced.points("imtegrity.operator.reconcile.errors")
    (duration,) = traced.points("imtegrity.operator.reconcile.duration")
    assert span.attributes["imtegrity.reconcile.outcome"] == "permanent_error"
    assert span.status.status_code is StatusCode.ERROR
    assert "single writer" in span.status.description
    assert errors.attributes["k8s.namespace.name"] == namespace
    assert errors.attributes["error.type"] == "permanent"
    assert errors.value == 1
    assert duration.attributes["outcome"] == "permanent_error"


# ---- the operator process exporting over OTLP ---------------------------------------


class ThreadedReceiver:
    """``OtlpReceiver`` on its own event loop in a daemon thread, for synchronous tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        start = asyncio.run_coroutine_threadsafe(OtlpReceiver().start(), self.loop)
        self.receiver: OtlpReceiver = start.result(timeout=10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def reconcile_spans_of(receiver: OtlpReceiver, namespace: str) -> list[Any]:
    return [
        span
        for _, span in exported_spans(receiver)
        if span.name == "imtegrity.operator.reconcile"
        and attribute_map(span.attributes).get("k8s.namespace.name") == namespace
    ]


def test_operator_exports_reconcile_over_otlp(cluster, tmp_path: Path):  # noqa: F811
    threaded = ThreadedReceiver()
    receiver = threaded.receiver
    namespace = create_namespace(cluster, "tel-otlp")
    port = free_port()
    argv = [
        sys.executable, "-m", "imtegrity_operator.cli", "run",
        f"--kubeconfig={cluster.kubeconfig}",
        f"--liveness=127.0.0.1:{port}",
        f"--default-proxy-image={PROXY_IMAGE}",
        f"--namespace={namespace}",
        "--log-format=json",
    ]  # fmt: skip
    environment = minimal_env(
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="500",
    )
    process = PeerProcess(
        "imtegrity-operator-otlp",
        argv,
        workdir=tmp_path,
        ready=http_probe(f"http://127.0.0.1:{port}/healthz", ok=lambda status: status == 200),
        env=environment,
        inherit_env=False,
        ready_timeout=60.0,
    )
    try:
        process.start()
        apply_proxy(cluster, namespace, {})
        spans = wait_for(
            lambda: reconcile_spans_of(receiver, namespace), f"a reconcile span for {namespace}"
        )
        process.stop()
        log_text = process.log_text()
    finally:
        process.close()
        threaded.close()

    resources = [resource for resource, _ in exported_spans(receiver)]
    outcomes = {
        attribute_map(point.attributes)["outcome"]
        for _, metric in exported_metrics(receiver)
        if metric.name == "imtegrity.operator.reconcile.duration"
        for point in metric.histogram.data_points
        if attribute_map(point.attributes)["k8s.namespace.name"] == namespace
    }
    trace_ids = {span.trace_id.hex() for span in spans}
    logged_trace_ids = set()
    for line in log_text.splitlines():
        if line.startswith("{"):
            logged_trace_ids.add(json.loads(line).get("trace_id"))
    assert attribute_map(spans[0].attributes)["imtegrity.resource.name"] == "aim"
    assert attribute_map(spans[0].attributes)["imtegrity.reconcile.outcome"] == "success"
    assert resources[0]["service.name"] == "imtegrity-operator"
    assert "success" in outcomes
    assert trace_ids & logged_trace_ids
