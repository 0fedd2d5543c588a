"""kopf settings for the operator: timeouts, persistence keys and event reporting."""

from __future__ import annotations

import socket

import kopf

ANNOTATION_PREFIX = "imtegrity.io"
FINALIZER = "imtegrity.io/operator"

# The API server ends each watch after this many seconds and kopf starts a new
# one, so a watch on a connection that silently died is replaced.
WATCH_SERVER_TIMEOUT_SECONDS = 300  # an integer: the API server rejects "300.0"
# kopf gives up on a watch request that has been silent for this long.
WATCH_CLIENT_TIMEOUT_SECONDS = 330.0
CONNECT_TIMEOUT_SECONDS = 10.0
# Limit of kopf's own non-watch requests (patches, events).
REQUEST_TIMEOUT_SECONDS = 30.0


def configure_settings(settings: kopf.OperatorSettings) -> None:
    """Apply the operator's settings; kopf reads them before it starts watching."""
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT_SECONDS
    settings.watching.client_timeout = WATCH_CLIENT_TIMEOUT_SECONDS
    settings.watching.connect_timeout = CONNECT_TIMEOUT_SECONDS
    settings.networking.request_timeout = REQUEST_TIMEOUT_SECONDS
    settings.networking.connect_timeout = CONNECT_TIMEOUT_SECONDS
    # kopf keeps its handler progress and last-handled spec in annotations, not
    # in status, where the CRD's schema would prune them.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    settings.posting.reporting_component = "imtegrity-operator"
    settings.posting.reporting_instance = socket.gethostname()
