"""Runs the cluster-wide egress and DNS passes on one background thread.

Both passes start from every IMtegrityProxy in the cluster, so one pass
serves every resource. Callers ask for a pass and either go on (watch events:
``trigger``) or wait for a pass that started after their request
(``current``, ``finalize``). Requests that arrive while a pass runs are served
together by the next one, so a burst of events costs one extra pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imtegrity_operator.dns.report import dns_condition
from imtegrity_operator.dns.sync import DnsResult, run_dns_pass
from imtegrity_operator.egress.inventory import ProxyEntry, entry_from_body, live_entries
from imtegrity_operator.egress.report import egress_condition
from imtegrity_operator.egress.sync import EgressResult, fetch_facts, run_egress_pass
from imtegrity_operator.kube import KubeApiError, KubeClient

logger = logging.getLogger("imtegrity.operator.cluster")

PROXIES_PATH = "/apis/imtegrity.io/v1alpha1/imtegrityproxies"
# A reconcile pass reuses a report younger than this. Watch events and spec
# changes request a new pass at once.
MAX_REPORT_AGE_SECONDS = 10.0
# How long a reconcile pass waits for a cluster pass before it uses the
# previous report. A pass makes a few dozen requests, each limited to 40 s.
WAIT_SECONDS = 60.0


class ClusterPassError(Exception):
    """A cluster pass that could not read the cluster or write every object."""


@dataclass(frozen=True)
class ClusterReport:
    """The outcome of one pass; an ``*_error`` is set when that pass could not read the cluster."""

    finished: float  # time.monotonic() at the end of the pass
    egress: EgressResult | None = None
    dns: DnsResult | None = None
    egress_error: str = ""
    dns_error: str = ""
    entries: tuple[ProxyEntry, ...] = field(default_factory=tuple)

    def failures(self) -> list[str]:
        failures = [e for e in (self.egress_error, self.dns_error) if e]
        failures += self.egress.errors if self.egress else []
        failures += self.dns.errors if self.dns else []
        return failures


class ClusterCoordinator:
    """Serialises the cluster passes and keeps the last report."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._condition = threading.Condition()
        self._requested = 0
        self._completed = 0
        self._report: ClusterReport | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    def _start_thread(self) -> None:
        # Called with the condition held.
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="imtegrity-cluster-pass", daemon=True
            )
            self._thread.start()

    def request(self) -> int:
        """Ask for a pass; return the ticket that ``wait`` takes."""
        with self._condition:
            self._requested += 1
            self._start_thread()
            self._condition.notify_all()
            return self._requested

    def trigger(self) -> None:
        """Ask for a pass without waiting for it (for watch events)."""
        self.request()

    def wait(self, ticket: int, timeout: float = WAIT_SECONDS) -> ClusterReport | None:
        """Wait for the pass that serves ``ticket``; return its report, or None on timeout."""
        with self._condition:
            self._condition.wait_for(
                lambda: self._completed >= ticket or self._stopped, timeout=timeout
            )
            return self._report if self._completed >= ticket else None

    def current(self, max_age: float = MAX_REPORT_AGE_SECONDS) -> ClusterReport | None:
        """Return a fresh report (no older than ``max_age``, no request pending), running a pass.

        On timeout the previous report (or None) is returned.
        """
        with self._condition:
            report = self._report
            fresh = report is not None and time.monotonic() - report.finished <= max_age
            if fresh and self._completed >= self._requested:
                return report
        return self.wait(self.request()) or self._report

    def latest(self) -> ClusterReport | None:
        """Return the last report without asking for a pass."""
        with self._condition:
            return self._report

    def finalize(self) -> ClusterReport:
        """Run a pass for a resource being deleted and raise ``ClusterPassError`` if it failed.

        The pass no longer counts the resource (it has a deletionTimestamp),
        so the pass removes what only that resource needed.
        """
        report = self.wait(self.request())
        if report is None:
            raise ClusterPassError(f"no cluster pass finished within {WAIT_SECONDS:.0f} s")
        failures = report.failures()
        if failures:
            raise ClusterPassError("; ".join(failures))
        return report

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: self._requested > self._completed or self._stopped
                )
                if self._stopped:
                    return
                target = self._requested
            report = self._pass()
            with self._condition:
                self._report = report
                self._completed = target
                self._condition.notify_all()

    def _pass(self) -> ClusterReport:
        try:
            bodies = self._client.list_at(PROXIES_PATH, "list IMtegrityProxy resources")
            facts = fetch_facts(self._client)
        except KubeApiError as error:
            logger.warning("cluster pass stopped: %s", error)
            return ClusterReport(time.monotonic(), egress_error=str(error), dns_error=str(error))
        entries = live_entries(bodies)
        egress: EgressResult | None = None
        dns: DnsResult | None = None
        egress_error = dns_error = ""
        try:
            egress = run_egress_pass(self._client, entries, facts)
        except KubeApiError as error:
            logger.warning("egress pass stopped: %s", error)
            egress_error = str(error)
        except Exception as error:
            # Keep the thread alive for the next pass; the log has the trace.
            logger.exception("egress pass failed")
            egress_error = f"egress pass failed: {error!r}"
        try:
            dns = run_dns_pass(self._client, entries, facts)
        except KubeApiError as error:
            logger.warning("DNS pass stopped: %s", error)
            dns_error = str(error)
        except Exception as error:
            logger.exception("DNS pass failed")
            dns_error = f"DNS pass failed: {error!r}"
        return ClusterReport(
            time.monotonic(), egress, dns, egress_error, dns_error, tuple(entries)
        )


def cluster_conditions(
    body: Mapping[str, Any], report: ClusterReport | None
) -> list[dict[str, Any]]:
    """Return the EgressEnforced and DNSOverridden conditions of one resource."""
    entry = entry_from_body(body)
    generation = body["metadata"].get("generation", 0)
    if report is None:
        return [
            egress_condition(entry, None, "", generation),
            dns_condition(entry, None, "", generation),
        ]
    return [
        egress_condition(entry, report.egress, report.egress_error, generation),
        dns_condition(entry, report.dns, report.dns_error, generation),
    ]
