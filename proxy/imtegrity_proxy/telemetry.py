"""OpenTelemetry traces of relayed connections, OTLP export and trace ids in log lines.

Each ``ProxyServer`` owns one ``ProxyTelemetry``: a ``TracerProvider`` and the
metric readers that ``ProxyMetrics`` adds beside its Prometheus reader. Like
``ProxyMetrics`` it uses no process-wide provider, so tests can run several
proxies side by side. ``ProxyTelemetry.from_environment()`` reads the standard
``OTEL_*`` variables and exports over OTLP/HTTP (protobuf) only when an
endpoint is set. The SDK itself reads ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, the span limits, the
batch and export intervals and the exporters' headers, timeouts and TLS files.

One AIM session is one trace. The login connection's span is the root, and
each connection opened with a cookie continues the trace of the redirect that
handed out that cookie::

    imtegrity.session            login connection
      imtegrity.signon           until the server's sign-on reply
      imtegrity.upstream.connect
      imtegrity.redirect         to BOS
        imtegrity.session        BOS connection
          imtegrity.upstream.connect
          imtegrity.redirect     to a chat room or another service
            imtegrity.session    chat or service connection

Every archive commit adds an ``imtegrity.archived`` event with the record id
to the session span of its connection. Attributes hold screen names, addresses,
ports, ids and fixed words only. Message text, passwords and cookies are never
passed to this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode

from .log import config_logger, format_peer
from .protocol.enums import Family

if TYPE_CHECKING:
    from .archive import ArchiveRecord
    from .metrics import ProxyMetrics
    from .relay.state import SessionState
    from .relay.upstream import UpstreamError, UpstreamStream

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "METRICS",
    "TRACES",
    "ProxyTelemetry",
    "SessionTrace",
    "TraceContextFilter",
    "otlp_endpoint",
    "proxy_resource",
    "url_without_userinfo",
]

# The export settings are configuration, so they are logged with it.
log = config_logger

DEFAULT_SERVICE_NAME = "imtegrity-proxy"
INSTRUMENTATION_NAME = "imtegrity_proxy"

# The only OTLP transport installed (opentelemetry-exporter-otlp-proto-http).
SUPPORTED_PROTOCOL = "http/protobuf"


@dataclass(frozen=True)
class Signal:
    """The environment variables that configure the OTLP export of one signal."""

    name: str
    endpoint_variable: str
    protocol_variable: str
    exporter_variable: str
    path: str


TRACES = Signal(
    "traces",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_TRACES_EXPORTER",
    "v1/traces",
)
METRICS = Signal(
    "metrics",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_METRICS_EXPORTER",
    "v1/metrics",
)


def otlp_endpoint(signal: Signal, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the OTLP/HTTP URL to export ``signal`` to, or None to export nothing.

    The signal's own endpoint variable is used as it is. Otherwise
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a base URL and gets ``/v1/traces`` or
    ``/v1/metrics`` appended, as the OTLP specification requires for HTTP.
    Unlike the SDK's exporters, which fall back to ``localhost:4318``, this
    returns None when neither variable is set. It also returns None when
    ``OTEL_SDK_DISABLED`` is true, when ``OTEL_TRACES_EXPORTER`` or
    ``OTEL_METRICS_EXPORTER`` does not list ``otlp``, and when the protocol is
    not ``http/protobuf`` (logged as a warning, since that export was requested).
    """
    environ = os.environ if environ is None else environ
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporters = {
        name.strip().lower() for name in environ.get(signal.exporter_variable, "otlp").split(",")
    }
    if "otlp" not in exporters:
        unsupported = sorted(exporters - {"none", ""})
        if unsupported:
            log.warning(
                "%s=%s is not supported: only otlp; %s are not exported",
                signal.exporter_variable,
                ",".join(unsupported),
                signal.name,
            )
        return None
    endpoint = environ.get(signal.endpoint_variable, "").strip()
    if not endpoint:
        base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return None
        endpoint = f"{base.removesuffix('/')}/{signal.path}"
    protocol = (
        environ.get(signal.protocol_variable, "").strip()
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
        or SUPPORTED_PROTOCOL
    )
    if protocol != SUPPORTED_PROTOCOL:
        log.warning(
            "OTLP protocol %r is not supported: set OTEL_EXPORTER_OTLP_PROTOCOL=%s; "
            "%s are not exported",
            protocol,
            SUPPORTED_PROTOCOL,
            signal.name,
        )
        return None
    return endpoint


def url_without_userinfo(url: str) -> str:
    """Return ``url`` without a user name and password, for a log line."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def proxy_resource(service_name: str = DEFAULT_SERVICE_NAME) -> Resource:
    """Build the resource from ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``.

    ``service_name`` applies only when neither variable sets ``service.name``.
    """
    resource = Resource.create()
    named = str(resource.attributes.get(SERVICE_NAME, ""))
    if named.startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    return resource


class ProxyTelemetry:
    """The tracer provider and extra metric readers of one proxy process.

    ``span_processors`` receive every finished span. ``metric_readers`` are
    handed to ``ProxyMetrics``, which owns the meter provider and shuts them down.
    """

    def __init__(
        self,
        resource: Resource | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
    ) -> None:
        self.resource = resource if resource is not None else proxy_resource()
        # Without a sampler argument the SDK reads OTEL_TRACES_SAMPLER and its argument.
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.span_processors = tuple(span_processors)
        for processor in self.span_processors:
            self.tracer_provider.add_span_processor(processor)
        self.metric_readers = tuple(metric_readers)
        self.tracer = self.tracer_provider.get_tracer(INSTRUMENTATION_NAME)

    @classmethod
    def from_environment(cls) -> ProxyTelemetry:
        """Build the telemetry with an OTLP exporter for each signal that has an endpoint."""
        processors: list[SpanProcessor] = []
        readers: list[MetricReader] = []
        traces_url = otlp_endpoint(TRACES)
        if traces_url is not None:
            # Imported here, so a proxy that exports nothing does not load requests.
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

            # The reader's interval comes from OTEL_METRIC_EXPORT_INTERVAL (60 s by default).
            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=metrics_url)))
            log.info("exporting metrics over OTLP/HTTP to %s", url_without_userinfo(metrics_url))
        return cls(proxy_resource(), processors, readers)

    def session(
        self, metrics: ProxyMetrics, connection_id: int, peer: Any, listen_port: int
    ) -> SessionTrace:
        """Start tracing one accepted client connection."""
        return SessionTrace(self.tracer, metrics, connection_id, peer, listen_port)

    def shutdown(self) -> None:
        """Export the spans still queued and stop the tracer provider.

        This blocks until the exporters finish, up to their timeouts, so async
        code should call it in a worker thread.
        """
        self.tracer_provider.shutdown()


def _peer_attributes(peer: Any) -> dict[str, Any]:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return {"client.address": str(peer[0]), "client.port": int(peer[1])}
    return {"client.address": format_peer(peer)}


def _service_name(family: int | None) -> str:
    if family is None:
        return "bos"
    if family == Family.CHAT:
        return "chat"
    return "service"


class SessionTrace:
    """The spans of one client connection: the session span and its children.

    The session span starts once the proxy has classified the connection
    (``begin``), back-dated to the moment the connection was accepted, because
    a connection that presents a cookie continues the trace of the redirect
    that issued it. ``begin`` also makes the span current in the calling task
    until ``end``, so log lines and the relay pumps (which copy the context
    when created) carry its trace id. Every method is a no-op when called out
    of order, so a connection that fails halfway still ends its spans.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        metrics: ProxyMetrics,
        connection_id: int,
        peer: Any,
        listen_port: int,
    ) -> None:
        self._tracer = tracer
        self._metrics = metrics
        self._accepted_ns = time.time_ns()
        self._attributes: dict[str, Any] = {
            "imtegrity.connection.id": connection_id,
            "imtegrity.listen.port": listen_port,
            **_peer_attributes(peer),
        }
        self._span: trace.Span | None = None
        self._token: object | None = None
        self._signon: trace.Span | None = None
        self._outcome = "closed"
        self._outcome_set = False
        self._error: str | None = None

    @property
    def span(self) -> trace.Span:
        """The session span, or the invalid span before ``begin``."""
        return self._span if self._span is not None else trace.INVALID_SPAN

    def begin(self, state: SessionState, parent: SpanContext | None = None) -> None:
        """Start the session span as a child of ``parent`` (a redirect span), or as a root.

        Counts the session in ``imtegrity.sessions`` with its role.
        """
        self._begin(state, parent, state.role)

    def _begin(self, state: SessionState, parent: SpanContext | None, role: str) -> None:
        if self._span is not None:
            return
        if parent is not None and parent.is_valid:
            context = trace.set_span_in_context(trace.NonRecordingSpan(parent))
        else:
            # An empty context makes the span a root even if a span is current.
            context = otel_context.Context()
        attributes = {**self._attributes, **_state_attributes(state)}
        attributes["imtegrity.connection.role"] = role
        self._span = self._tracer.start_span(
            "imtegrity.session",
            context=context,
            kind=SpanKind.SERVER,
            attributes=attributes,
            start_time=self._accepted_ns,
        )
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        self._metrics.session_started(role)

    def signon_started(self, state: SessionState) -> None:
        """Open the sign-on span; ``signon_finished`` closes it with the result."""
        if self._span is None or self._signon is not None:
            return
        attributes: dict[str, Any] = {}
        if state.signon_style is not None:
            attributes["imtegrity.signon.style"] = state.signon_style
        if state.local:
            attributes["imtegrity.screen_name"] = state.local
        self._signon = self._tracer.start_span(
            "imtegrity.signon",
            context=trace.set_span_in_context(self._span),
            attributes=attributes,
        )

    def signon_finished(self, result: str, error_code: int | None = None) -> None:
        """Close the sign-on span with ``result`` (a short fixed word such as ``success``).

        Any result but ``success`` sets the span status to error.
        """
        signon = self._signon
        if signon is None:
            return
        self._signon = None
        signon.set_attribute("imtegrity.signon.result", result)
        if error_code is not None:
            signon.set_attribute("imtegrity.signon.error_code", error_code)
        if result != "success":
            signon.set_status(Status(StatusCode.ERROR, f"sign-on {result}"))
        signon.end()
        if self._span is not None:
            self._span.set_attribute("imtegrity.signon.result", result)

    @contextlib.contextmanager
    def upstream_connect(self, candidates: int) -> Iterator[UpstreamConnectSpan]:
        """Time one upstream connection, from the first attempt until a target accepts.

        The span is current inside the block, so the connector's log lines carry
        its id. An ``UpstreamError`` sets its reason and target and is re-raised.
        """
        span = self._tracer.start_span(
            "imtegrity.upstream.connect",
            context=trace.set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes={"imtegrity.upstream.candidates": candidates},
        )
        with trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            try:
                yield UpstreamConnectSpan(span)
            except BaseException as error:
                _describe_upstream_failure(span, error)
                raise

    def redirect(self, target: tuple[str, int], family: int | None) -> SpanContext | None:
        """Record that the client was handed a cookie for ``target``; return the span's context.

        ``family`` is the SNAC family of the service, or None for the BOS
        connection after a sign-on. The connection that later presents the
        cookie passes the returned context to ``begin``.
        """
        if self._span is None:
            return None
        span = self._tracer.start_span(
            "imtegrity.redirect",
            context=trace.set_span_in_context(self._span),
            attributes=_redirect_attributes(target, family),
        )
        span.end()
        return span.get_span_context()

    def archived(self, record: ArchiveRecord, record_id: int) -> None:
        """Add an ``imtegrity.archived`` event for a committed record to the session span."""
        attributes = _record_attributes(record)
        attributes["imtegrity.archive.record_id"] = record_id
        self.span.add_event("imtegrity.archived", attributes)

    def archive_failed(self, record: ArchiveRecord, error: BaseException) -> None:
        """Add an ``imtegrity.archive.failed`` event for a record that was not committed."""
        attributes = _record_attributes(record)
        attributes["error.type"] = type(error).__name__
        self.span.add_event("imtegrity.archive.failed", attributes)

    def set_outcome(self, outcome: str, error: str | None = None) -> None:
        """Set how the connection ended (a short fixed word) and, for a failure, a reason.

        The first outcome stays unless a later one comes with an ``error``,
        because both pumps can end at once but a failure must not be hidden.
        ``error`` becomes the span's status description and must not contain
        message text or credentials.
        """
        if self._outcome_set and error is None:
            return
        self._outcome = outcome
        self._outcome_set = True
        self._error = error

    def end(self, state: SessionState) -> None:
        """End every open span of the connection and stop making the session span current."""
        if self._span is None:
            # The connection closed before its hello, so its role is unknown.
            self._begin(state, None, "unknown")
        else:
            for key, value in _state_attributes(state).items():
                self._span.set_attribute(key, value)
        if self._signon is not None:
            # Nothing else counts a sign-on whose connection closed before the reply.
            self._metrics.signon("incomplete")
            self.signon_finished("incomplete")
        span = self._span
        assert span is not None
        span.set_attribute("imtegrity.session.outcome", self._outcome)
        if self._error is not None:
            span.set_status(Status(StatusCode.ERROR, self._error))
        span.end()
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None


class UpstreamConnectSpan:
    """The span of one upstream connection, open inside ``SessionTrace.upstream_connect``."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def connected(self, stream: UpstreamStream) -> None:
        """Describe the upstream connection that was opened."""
        host, port = stream.address
        self._span.set_attribute("server.address", host)
        self._span.set_attribute("server.port", port)
        route = "direct" if stream.via == "direct" else "socks"
        self._span.set_attribute("imtegrity.upstream.route", route)
        if route == "socks":
            # The endpoint's description, such as "socks5 127.0.0.1:1080", has no credentials.
            self._span.set_attribute("imtegrity.upstream.proxy", stream.via)


def _describe_upstream_failure(span: trace.Span, error: BaseException) -> None:
    from .relay.upstream import UpstreamError

    if isinstance(error, UpstreamError):
        _describe_upstream_error(span, error)
        return
    span.set_attribute("error.type", type(error).__name__)
    span.set_status(Status(StatusCode.ERROR, type(error).__name__))


def _describe_upstream_error(span: trace.Span, error: UpstreamError) -> None:
    span.set_attribute("error.type", error.reason)
    span.set_attribute("imtegrity.upstream.target", error.target)
    route = "socks" if error.proxy else "direct"
    span.set_attribute("imtegrity.upstream.route", route)
    if error.proxy:
        span.set_attribute("imtegrity.upstream.proxy", error.proxy)
    # The text names the target, the proxy and the reason; UpstreamError keeps no credentials.
    span.set_status(Status(StatusCode.ERROR, str(error)))


def _state_attributes(state: SessionState) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "imtegrity.session.id": state.session_id,
        "imtegrity.connection.role": state.role,
    }
    if state.local:
        attributes["imtegrity.screen_name"] = state.local
    if state.family is not None:
        attributes["imtegrity.service"] = _service_name(state.family)
        attributes["oscar.snac.family"] = state.family
    return attributes


def _redirect_attributes(target: tuple[str, int], family: int | None) -> dict[str, Any]:
    host, port = target
    attributes: dict[str, Any] = {
        "imtegrity.service": _service_name(family),
        "server.address": host,
        "server.port": port,
    }
    if family is not None:
        attributes["oscar.snac.family"] = family
    return attributes


def _record_attributes(record: ArchiveRecord) -> dict[str, Any]:
    """Return the event attributes of an archive record: its kind and policy fields only."""
    attributes: dict[str, Any] = {"imtegrity.archive.kind": record.kind}
    if record.direction is not None:
        attributes["imtegrity.message.direction"] = record.direction
    if record.action is not None:
        attributes["imtegrity.message.action"] = record.action
    if record.rule is not None:
        attributes["imtegrity.policy.rule"] = record.rule
    return attributes


class TraceContextFilter(logging.Filter):
    """A handler filter that adds the current span's ``trace_id`` and ``span_id`` to a record.

    Both are lowercase hex (32 and 16 digits), as OTLP/JSON and the W3C
    ``traceparent`` header write them, so a JSON log line can be joined with
    its trace. Records logged outside a span get neither field. It never
    drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            record.trace_id = format(span_context.trace_id, "032x")
            record.span_id = format(span_context.span_id, "016x")
        return True
