"""The proxy's metrics, recorded with OpenTelemetry and exposed in Prometheus text format.

Each ``ProxyMetrics`` owns its own ``MeterProvider`` and its own Prometheus
``CollectorRegistry`` instead of the process-wide globals, so tests can build
several side by side and none of them leaks into another. The health server
serves ``render_prometheus()`` at /metrics. Further readers, such as the OTLP
exporter that ``telemetry.ProxyTelemetry`` builds from the ``OTEL_*`` variables
or a test's ``InMemoryMetricReader``, read the same instruments.

OpenTelemetry names become Prometheus names by the exporter's rules: dots turn
into underscores, the unit is appended (``s`` as ``_seconds``, ``By`` as
``_bytes``) and counters end in ``_total``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["PROMETHEUS_CONTENT_TYPE", "ProxyMetrics"]

PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST

Direction = Literal["outbound", "inbound"]

# Bucket bounds in seconds, set by estimate: a grouped archive commit should take
# from under a millisecond to a few milliseconds, and an fsync on a slow disk seconds.
_ARCHIVE_COMMIT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
# An upstream connection may go through a SOCKS proxy and is cut off by the
# configured timeout (10 s by default).
_UPSTREAM_CONNECT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# Relaying one frame takes microseconds when no archive commit is awaited and a
# commit's time otherwise (an estimate, like the buckets above).
_FRAME_RELAY_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


class ProxyMetrics:
    """The counters, gauges and histograms the relay and the archive update."""

    def __init__(
        self, resource: Resource | None = None, readers: Sequence[MetricReader] = ()
    ) -> None:
        """Create the instruments; ``readers`` are read beside the Prometheus reader."""
        self.registry = CollectorRegistry(auto_describe=True)
        # The target_info metric and the otel_scope_* labels on every series add
        # nothing for a single-purpose process, so both are off.
        self._reader = PrometheusMetricReader(
            disable_target_info=True, scope_info_enabled=False, registry=self.registry
        )
        self._provider = MeterProvider(
            metric_readers=[self._reader, *readers],
            resource=resource or Resource.create({"service.name": "imtegrity-proxy"}),
        )
        meter = self._provider.get_meter("imtegrity_proxy")

        self._active_sessions = meter.create_up_down_counter(
            "imtegrity.sessions.active", unit="1", description="Client connections open now."
        )
        self._sessions = meter.create_counter(
            "imtegrity.sessions",
            unit="1",
            description=(
                "Client connections, by role (login, bos, service), counted once the role "
                "is known; a connection that closes before its hello counts as unknown."
            ),
        )
        self._frame_relay = meter.create_histogram(
            "imtegrity.relay.frame.duration",
            unit="s",
            description=(
                "Time from a pump taking a frame off the read buffer until the frame is "
                "written (or withheld), by direction; it includes awaited archive commits."
            ),
            explicit_bucket_boundaries_advisory=_FRAME_RELAY_BUCKETS,
        )
        self._signons = meter.create_counter(
            "imtegrity.signons",
            unit="1",
            description=(
                "Sign-on attempts, by result: success, failed (rejected upstream), denied "
                "(by policy), upstream_unavailable, archive_failed or incomplete."
            ),
        )
        self._messages = meter.create_counter(
            "imtegrity.messages",
            unit="1",
            description="Messages seen, by direction and by the action taken.",
        )
        self._bytes_relayed = meter.create_counter(
            "imtegrity.relayed",
            unit="By",
            description="Bytes relayed, by direction (outbound: client to server).",
        )
        self._archive_commit = meter.create_histogram(
            "imtegrity.archive.commit.duration",
            unit="s",
            description="Time taken by one archive commit.",
            explicit_bucket_boundaries_advisory=_ARCHIVE_COMMIT_BUCKETS,
        )
        self._archive_failures = meter.create_counter(
            "imtegrity.archive.failures",
            unit="1",
            description="Archive writes that failed, so their messages were not forwarded.",
        )
        self._upstream_connect = meter.create_histogram(
            "imtegrity.upstream.connect.duration",
            unit="s",
            description="Time to open an upstream connection, by route (direct or socks).",
            explicit_bucket_boundaries_advisory=_UPSTREAM_CONNECT_BUCKETS,
        )
        self._upstream_connect_failures = meter.create_counter(
            "imtegrity.upstream.connect.failures",
            unit="1",
            description="Upstream connections that could not be opened, by reason.",
        )
        self._rendezvous_blocked = meter.create_counter(
            "imtegrity.rendezvous.blocked",
            unit="1",
            description="Rendezvous (file transfer, direct IM, get file) requests blocked.",
        )
        self._disclaimers = meter.create_counter(
            "imtegrity.disclaimers", unit="1", description="Disclaimers injected."
        )
        # Counters without attributes start at 0, so /metrics has their series before the
        # first event and Prometheus' increase() and rate() see that first event.
        for counter in (self._archive_failures, self._rendezvous_blocked, self._disclaimers):
            counter.add(0)

    def session_opened(self) -> None:
        """Count a client connection as open."""
        self._active_sessions.add(1)

    def session_closed(self) -> None:
        """Count a client connection as closed."""
        self._active_sessions.add(-1)

    def session_started(self, role: str) -> None:
        """Count a client connection whose ``role`` (login, bos, service, unknown) is known."""
        self._sessions.add(1, {"role": role})

    def frame_relayed(self, direction: Direction, seconds: float) -> None:
        """Record how long one frame in ``direction`` took to relay, in seconds."""
        self._frame_relay.record(seconds, {"direction": direction})

    def signon(self, result: str) -> None:
        """Count one sign-on attempt with its ``result`` (a short fixed word)."""
        self._signons.add(1, {"result": result})

    def message(self, direction: Direction, action: str) -> None:
        """Count one message in ``direction`` with the policy ``action`` taken."""
        self._messages.add(1, {"direction": direction, "action": action})

    def bytes_relayed(self, direction: Direction, count: int) -> None:
        """Add ``count`` bytes relayed in ``direction``."""
        self._bytes_relayed.add(count, {"direction": direction})

    def archive_commit(self, seconds: float) -> None:
        """Record how long one archive commit took, in seconds."""
        self._archive_commit.record(seconds)

    def archive_failure(self) -> None:
        """Count one failed archive write."""
        self._archive_failures.add(1)

    def upstream_connect(self, seconds: float, via: Literal["direct", "socks"]) -> None:
        """Record how long an upstream connection took to open, in seconds, and its route."""
        self._upstream_connect.record(seconds, {"via": via})

    def upstream_connect_failure(self, reason: str) -> None:
        """Count one failed upstream connection with its ``reason`` (a short fixed word)."""
        self._upstream_connect_failures.add(1, {"reason": reason})

    def rendezvous_blocked(self) -> None:
        """Count one blocked rendezvous request."""
        self._rendezvous_blocked.add(1)

    def disclaimer(self) -> None:
        """Count one injected disclaimer."""
        self._disclaimers.add(1)

    def render_prometheus(self) -> bytes:
        """Return every metric in Prometheus text format (for /metrics)."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        """Stop the meter provider and its readers; later updates are dropped.

        An exporting reader sends its last export first, so this can block for
        up to that exporter's timeout.
        """
        self._provider.shutdown()
