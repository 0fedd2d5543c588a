"""The proxy under benchmark, run as its own process so its RSS can be read from /proc.

``ProxyProcess.start`` writes a YAML configuration that keeps every listener on
127.0.0.1, starts ``imtegrity-proxy serve`` and waits until the client port
accepts connections. The upstream connections leave from a large pool of
loopback source addresses, because Open OSCAR Server v0.22.0 allows 10 logins
per source IP and then one a minute.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

PROXY_COMMAND = Path(sys.executable).parent / "imtegrity-proxy"
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 30
# The proxy's histogram of the time each record waits for its archive commit,
# as the Prometheus exporter names it (see imtegrity_proxy.metrics).
ARCHIVE_WAIT_METRIC = "imtegrity_archive_commit_duration_seconds"


def upstream_source_addresses(count: int) -> list[str]:
    """Return ``count`` loopback addresses from 127.3.0.1 on, skipping .0 and .255.

    The proxy takes them round-robin for every upstream connection, login and
    BOS alike. An odd count keeps the logins from landing on every second
    address only.
    """
    addresses = []
    for high in range(256):
        for low in range(1, 255):
            addresses.append(f"127.3.{high}.{low}")
            if len(addresses) == count:
                return addresses
    raise ValueError(f"at most {256 * 254} upstream source addresses, requested {count}")


@dataclass(frozen=True)
class ArchiveWait:
    """Totals of the proxy's archive-commit histogram at one moment."""

    records: float
    seconds: float

    def mean_since(self, earlier: ArchiveWait) -> float | None:
        """Return the mean wait per record, in seconds, between ``earlier`` and this reading."""
        records = self.records - earlier.records
        return (self.seconds - earlier.seconds) / records if records else None


class ProxyProcess:
    """One ``imtegrity-proxy serve`` process listening on 127.0.0.1."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, health_port: int, workdir: Path
    ) -> None:
        self.process = process
        self.port = port
        self.health_port = health_port
        self.workdir = workdir

    @property
    def archive_path(self) -> Path:
        return self.workdir / "archive.sqlite3"

    @classmethod
    def start(
        cls,
        workdir: Path,
        upstream: str,
        source_addresses: list[str],
        max_delay_ms: float | None,
    ) -> ProxyProcess:
        """Start the proxy in front of ``upstream`` (host:port), with its files in ``workdir``."""
        workdir.mkdir(parents=True, exist_ok=True)
        port, health_port = _free_port(), _free_port()
        archive = f"{{path: '{workdir / 'archive.sqlite3'}'"
        if max_delay_ms is not None:
            archive += f", max_delay_ms: {max_delay_ms}"
        sources = ", ".join(source_addresses)
        config = workdir / "proxy.yaml"
        config.write_text(
            f"listen: {{host: 127.0.0.1, ports: [{port}]}}\n"
            f"upstream: {{servers: ['{upstream}'], source_addresses: [{sources}]}}\n"
            f"archive: {archive}}}\n"
            f"health: {{host: 127.0.0.1, port: {health_port}}}\n"
            "relay: {shutdown_grace_seconds: 5}\n"
        )
        command = [str(PROXY_COMMAND), "serve", "--config", str(config)]
        # Without OTEL_* variables the proxy exports no telemetry, so no traffic leaves loopback.
        environment = {
            name: value for name, value in os.environ.items() if not name.startswith("OTEL_")
        }
        with (workdir / "proxy.log").open("wb") as log:
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environment
            )
        proxy = cls(process, port, health_port, workdir)
        try:
            proxy._wait_until_listening()
        except BaseException:
            proxy.stop()
            raise
        return proxy

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the proxy exited with status {self.process.returncode} while starting; "
                    f"see {self.workdir / 'proxy.log'}"
                )
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"the proxy did not listen on 127.0.0.1:{self.port} within "
            f"{START_TIMEOUT_SECONDS} s; see {self.workdir / 'proxy.log'}"
        )

    def rss_bytes(self) -> int:
        """Return the resident set size of the proxy process (VmRSS in /proc), in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS line in /proc/{self.process.pid}/status")

    def socket_count(self) -> int:
        """Return the number of sockets the proxy process has open."""
        fd_dir = Path(f"/proc/{self.process.pid}/fd")
        count = 0
        for entry in fd_dir.iterdir():
            try:
                target = os.readlink(entry)
            # The descriptor was closed between the listing and the readlink.
            except FileNotFoundError:
                continue
            count += target.startswith("socket:")
        return count

    def archive_wait(self) -> ArchiveWait:
        """Read the archive-commit histogram totals from the proxy's /metrics page."""
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        records = seconds = 0.0
        for family in text_string_to_metric_families(text):
            if family.name != ARCHIVE_WAIT_METRIC:
                continue
            for sample in family.samples:
                if sample.name == f"{ARCHIVE_WAIT_METRIC}_count":
                    records += sample.value
                elif sample.name == f"{ARCHIVE_WAIT_METRIC}_sum":
                    seconds += sample.value
        return ArchiveWait(records, seconds)

    def stop(self) -> None:
        """Send SIGTERM, wait for the drain, and kill the process if it does not exit."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
