"""`make bench`: message rate, latency and idle memory of the proxy against Open OSCAR Server.

One run starts one Open OSCAR Server on 127.0.0.1 and measures against it:

1. Relay: for each pair count (``--pairs``, default 1, 10 and 100), that many
   pairs of users exchange IMs in a closed loop, with one message in flight per
   pair. Each pair count runs first directly against the server, then through
   the proxy with the archive on. Each scenario reports messages per second
   over the counted part and the p50 and p99 latency from ``send_im`` to the
   peer's ``receive_im``. It also reports the CPU time per message of each
   process and, through the proxy, the mean time a record waited for its
   archive commit.
2. Idle memory: a fresh proxy process, its RSS (VmRSS) after one warm-up
   session, then after ``--idle-sessions`` (default 1000) users have signed on
   through it and stay idle. The difference divided by the sessions signed on
   is the memory per idle session.

The proxy runs as its own process (``imtegrity-proxy serve``), the clients run
in this process, and everything listens on and connects to loopback only. The
results are printed as Markdown. See docs/benchmarks.md for recorded results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import os
import platform
import resource
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpu_usage import CpuMeter  # noqa: E402
from proxy_process import ProxyProcess, upstream_source_addresses  # noqa: E402
from workload import (  # noqa: E402
    close_all,
    create_bot_accounts,
    exchange,
    sign_on_all,
    wait_until_online,
)

from tests.fixtures.oscar import (  # noqa: E402
    OSCAR_BINARY,
    OSCAR_PEER,
    OscarServer,
    start_oscar_server,
)
from tests.fixtures.peers import (  # noqa: E402
    PeerNotInstalledError,
    find_peer_binary,
    peer_version,
)

# Each upstream connection, login or BOS, takes the next address round-robin.
# With at least one address per sign-on, each address carries at most 2
# connections per pass, well under the server's burst of 10 logins per source IP.
MIN_UPSTREAM_SOURCES = 1021
ONLINE_TIMEOUT_SECONDS = 120
IDLE_SETTLE_SECONDS = 2.0


@dataclass(frozen=True)
class RelayRow:
    path: str
    pairs: int
    messages: int
    elapsed: float
    p50: float | None
    p99: float | None
    archive_wait: float | None
    delivered: int
    # CPU seconds per delivered message, warm-up included, of each process.
    server_cpu: float | None
    proxy_cpu: float | None
    client_cpu: float | None
    # Mean number of cores busy with processes other than the server, proxy and clients.
    others_load: float
    errors: list[str]

    @property
    def rate(self) -> float | None:
        return self.messages / self.elapsed if self.elapsed > 0 else None


@dataclass(frozen=True)
class MemoryRow:
    requested: int
    signed_on: int
    signon_seconds: float
    rss_before: int
    rss_after: int
    sockets_before: int
    sockets_after: int
    errors: list[str]

    @property
    def per_session(self) -> float | None:
        if not self.signed_on:
            return None
        return (self.rss_after - self.rss_before) / self.signed_on


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Measure message rate and latency through imtegrity-proxy (archive on) against a "
            "direct connection to Open OSCAR Server, and the proxy's RSS per idle session. "
            "Prints Markdown."
        )
    )
    parser.add_argument(
        "--pairs",
        type=_pair_counts,
        default=[1, 10, 100],
        metavar="N,N,...",
        help="pair counts to measure, comma-separated; each pair is 2 users (default: 1,10,100)",
    )
    parser.add_argument(
        "--messages",
        type=_positive_int,
        default=500,
        metavar="N",
        help="counted messages per pair, after the warm-up (default: 500)",
    )
    parser.add_argument(
        "--warmup",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="messages per pair sent before the counted part and not measured (default: 10)",
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=20.0,
        metavar="SECONDS",
        help="time limit of the counted part of each scenario, in seconds (default: 20)",
    )
    parser.add_argument(
        "--idle-sessions",
        type=_non_negative_int,
        default=1000,
        metavar="N",
        help="sessions signed on through the proxy for the memory measurement; 0 skips it "
        "(default: 1000)",
    )
    parser.add_argument(
        "--signon-concurrency",
        type=_positive_int,
        default=20,
        metavar="N",
        help="sign-ons in flight at once (default: 20)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="SECONDS",
        help="time limit for each message to arrive, in seconds (default: 10)",
    )
    parser.add_argument(
        "--max-delay-ms",
        type=float,
        default=None,
        metavar="MS",
        help="sets archive.max_delay_ms of the proxy, in milliseconds "
        "(default: the proxy's own default)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        metavar="DIR",
        help="directory for the server, proxy configs, logs and archives "
        "(default: a new directory under the system temporary directory)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: pairs 1,2, 20 messages per pair, 2 warm-up messages, 20 idle sessions",
    )
    options = parser.parse_args(argv)
    if options.quick:
        options.pairs = [1, 2]
        options.messages = 20
        options.warmup = 2
        options.idle_sessions = 20
    return options


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must not be negative")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}: must be greater than 0")
    return value


def _pair_counts(text: str) -> list[int]:
    try:
        counts = [_positive_int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid pair counts {text!r}: expected positive integers such as 1,10,100"
        ) from None
    return counts


def upstream_source_count(sign_ons: int) -> int:
    """Return an odd number of upstream source addresses, at least one per sign-on."""
    return max(MIN_UPSTREAM_SOURCES, sign_ons) | 1


# --------------------------------------------------------------------------- #
# Measurements
# --------------------------------------------------------------------------- #


async def measure_relay(
    server: OscarServer, options: argparse.Namespace, workdir: Path
) -> tuple[list[RelayRow], tuple[str, bool]]:
    """Run each pair count directly, then through one proxy; return rows and an archive check."""
    sources = upstream_source_addresses(upstream_source_count(2 * max(options.pairs)))
    proxy_dir = workdir / "proxy-relay"
    proxy = ProxyProcess.start(proxy_dir, server.address, sources, options.max_delay_ms)
    rows: list[RelayRow] = []
    try:
        for pairs in options.pairs:
            # Direct and proxy runs alternate, so a change in background load hits both.
            for path in ("direct", "proxy"):
                row = await run_exchange(server, proxy, path, pairs, options)
                rows.append(row)
                _progress(f"{path}, {pairs} pairs: {_format_rate(row.rate)} msg/s")
    finally:
        proxy.stop()
    relayed = sum(row.delivered for row in rows if row.path == "proxy")
    return rows, _check_archive(proxy.archive_path, relayed)


async def run_exchange(
    server: OscarServer,
    proxy: ProxyProcess,
    path: str,
    pairs: int,
    options: argparse.Namespace,
) -> RelayRow:
    """Sign on 2 x ``pairs`` bot users, run the closed message loop, and sign them off.

    ``path`` is "direct" (the clients connect to the server) or "proxy".
    """
    names = [f"{path[0].upper()}{pairs}{side}{index}" for index in range(pairs) for side in "ab"]
    await create_bot_accounts(server.api_url, names)
    through_proxy = path == "proxy"
    host, port = ("127.0.0.1", proxy.port) if through_proxy else (server.host, server.port)
    sources = [server.source_address() for _ in names]
    clients, errors = await sign_on_all(host, port, names, sources, options.signon_concurrency)
    try:
        if errors:
            raise RuntimeError(f"{len(errors)} sign-ons failed ({path}); first: {errors[0]}")
        await wait_until_online(server.async_sessions, names, ONLINE_TIMEOUT_SECONDS)
        archive_before = proxy.archive_wait()
        server_pid = server.process.pid
        assert server_pid is not None, "Open OSCAR Server is not running"
        # The idle proxy counts as ours on the direct path too, so it is not in "others".
        meter = CpuMeter({"server": server_pid, "proxy": proxy.process.pid, "client": os.getpid()})
        result = await exchange(
            list(zip(clients[::2], clients[1::2], strict=True)),
            messages=options.messages,
            warmup=options.warmup,
            duration=options.duration,
            timeout=options.timeout,
        )
        usage = meter.stop()
        archive_wait = proxy.archive_wait().mean_since(archive_before) if through_proxy else None
    finally:
        await close_all(clients, options.signon_concurrency)
    latencies = sorted(result.latencies)
    proxy_cpu = _per_message(usage.by_process["proxy"], result.delivered)
    return RelayRow(
        path=path,
        pairs=pairs,
        messages=len(latencies),
        elapsed=result.elapsed,
        p50=percentile(latencies, 0.50),
        p99=percentile(latencies, 0.99),
        archive_wait=archive_wait,
        delivered=result.delivered,
        server_cpu=_per_message(usage.by_process["server"], result.delivered),
        proxy_cpu=proxy_cpu if through_proxy else None,
        client_cpu=_per_message(usage.by_process["client"], result.delivered),
        others_load=usage.others_load,
        errors=result.errors,
    )


def _per_message(seconds: float, messages: int) -> float | None:
    return seconds / messages if messages else None


async def measure_idle_memory(
    server: OscarServer, options: argparse.Namespace, workdir: Path
) -> MemoryRow:
    """Read a fresh proxy's RSS before and after ``--idle-sessions`` users sign on through it."""
    sources = upstream_source_addresses(upstream_source_count(options.idle_sessions))
    proxy_dir = workdir / "proxy-idle"
    proxy = ProxyProcess.start(proxy_dir, server.address, sources, options.max_delay_ms)
    port = proxy.port
    concurrency = options.signon_concurrency
    try:
        # One session on and off first, so allocations made at first use count in the baseline.
        warm, errors = await sign_on_all(
            "127.0.0.1", port, ["Idlewarmup"], [server.source_address()], 1
        )
        if errors:
            raise RuntimeError(f"the warm-up sign-on through the proxy failed: {errors[0]}")
        await wait_until_online(server.async_sessions, ["Idlewarmup"], ONLINE_TIMEOUT_SECONDS)
        await close_all(warm, 1)
        await asyncio.sleep(IDLE_SETTLE_SECONDS)
        rss_before, sockets_before = proxy.rss_bytes(), proxy.socket_count()

        names = [f"Idle{index}" for index in range(options.idle_sessions)]
        sources = [server.source_address() for _ in names]
        started = time.perf_counter()
        clients, errors = await sign_on_all("127.0.0.1", port, names, sources, concurrency)
        signon_seconds = time.perf_counter() - started
        try:
            await wait_until_online(
                server.async_sessions,
                [client.screen_name for client in clients],
                ONLINE_TIMEOUT_SECONDS,
            )
            await asyncio.sleep(IDLE_SETTLE_SECONDS)
            rss_after, sockets_after = proxy.rss_bytes(), proxy.socket_count()
        finally:
            await close_all(clients, concurrency)
    finally:
        proxy.stop()
    return MemoryRow(
        requested=options.idle_sessions,
        signed_on=len(clients),
        signon_seconds=signon_seconds,
        rss_before=rss_before,
        rss_after=rss_after,
        sockets_before=sockets_before,
        sockets_after=sockets_after,
        errors=errors,
    )


def percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Return the nearest-rank percentile of already sorted values, or None when empty."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _check_archive(path: Path, relayed: int) -> tuple[str, bool]:
    """Compare the message records in the archive with the messages relayed.

    The proxy archives each IM twice: outbound on the sender's connection and
    inbound on the recipient's. Returns a line for the report and whether the
    counts match.
    """
    uri = f"file:{path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        (records,) = connection.execute(
            "SELECT count(*) FROM records WHERE kind = 'message'"
        ).fetchone()
    expected = 2 * relayed
    matches = records == expected
    verdict = "as expected" if matches else f"MISMATCH, expected {expected}"
    line = (
        f"archive check: {records} message records for {relayed} messages relayed, "
        f"warm-up included ({verdict})"
    )
    return line, matches


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def machine_lines(options: argparse.Namespace, workdir: Path) -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    delay = "proxy default" if options.max_delay_ms is None else f"{options.max_delay_ms:g}"
    return [
        f"- date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}",
        f"- command: `{shlex.join([Path(sys.executable).name, *sys.argv])}`",
        f"- CPU: {cpu}, {os.cpu_count()} logical cores",
        f"- RAM: {memory_kib / 1024 / 1024:.1f} GiB",
        f"- kernel: {platform.release()}",
        f"- Python: {platform.python_version()}",
        f"- proxy source: {source_revision()}",
        f"- Open OSCAR Server: {peer_version(OSCAR_PEER)}",
        f"- archive.max_delay_ms: {delay}",
        f"- work directory: {workdir}",
        f"- load average (1, 5, 15 min) at start: {_load()}",
    ]


def source_revision() -> str:
    """Return the checked-out commit, noting uncommitted changes under proxy/."""
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--", "proxy"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (git failed or this is not a git checkout)"
    return f"commit {commit}" + (", with uncommitted changes under proxy/" if changes else "")


def relay_table(rows: Sequence[RelayRow]) -> list[str]:
    lines = [
        "| Path | Pairs | Users | Messages | Msg/s | p50 (ms) | p99 (ms) "
        "| Archive wait, mean (ms) | CPU per msg, ms: server / proxy / client "
        "| Other load (cores) | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        wait = "n/a" if row.path == "direct" else _format_ms(row.archive_wait)
        cpu_values = (row.server_cpu, row.proxy_cpu, row.client_cpu)
        cpu = " / ".join(_format_ms(value) for value in cpu_values)
        lines.append(
            f"| {row.path} | {row.pairs} | {2 * row.pairs} | {row.messages} "
            f"| {_format_rate(row.rate)} | {_format_ms(row.p50)} | {_format_ms(row.p99)} "
            f"| {wait} | {cpu} | {row.others_load:.2f} | {len(row.errors)} |"
        )
    return lines


def memory_table(row: MemoryRow) -> list[str]:
    per_session = "n/a" if row.per_session is None else f"{row.per_session / 1024:.1f}"
    return [
        "| Idle sessions | Sign-on time (s) | Proxy RSS before (MiB) | Proxy RSS after (MiB) "
        "| RSS per session (KiB) | Proxy sockets before / after |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {row.signed_on} of {row.requested} | {row.signon_seconds:.1f} "
        f"| {row.rss_before / 2**20:.1f} | {row.rss_after / 2**20:.1f} | {per_session} "
        f"| {row.sockets_before} / {row.sockets_after} |",
    ]


def _format_ms(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds * 1000:.2f}"


def _format_rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0f}"


def _load() -> str:
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def _progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# Main
# --------------------------------------------------------------------------- #


def raise_open_file_limit(needed: int) -> None:
    """Raise this process's open-file limit, which the server and the proxy inherit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(
            f"the open-file limit is {hard}, but {needed} are needed; raise it with "
            "`ulimit -n` or run with fewer --idle-sessions"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def run_all(
    server: OscarServer, options: argparse.Namespace, workdir: Path
) -> tuple[list[RelayRow], tuple[str, bool], MemoryRow | None]:
    rows, archive_check = await measure_relay(server, options, workdir)
    memory = None
    if options.idle_sessions:
        _progress(f"signing on {options.idle_sessions} idle sessions through a fresh proxy")
        memory = await measure_idle_memory(server, options, workdir)
    return rows, archive_check, memory


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        find_peer_binary(OSCAR_PEER, OSCAR_BINARY)
    except PeerNotInstalledError as error:
        raise SystemExit(str(error)) from None
    # Sockets per idle session: 2 in the proxy, 1 in this process and 1 in the server.
    raise_open_file_limit(2 * options.idle_sessions + 8 * max(options.pairs) + 1024)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="imtegrity-bench-"))
    workdir = workdir.resolve()
    _progress(f"starting Open OSCAR Server; files in {workdir}")
    server = start_oscar_server(workdir / "oscar-server")
    try:
        header = machine_lines(options, workdir)
        rows, (archive_check, archive_matches), memory = asyncio.run(
            run_all(server, options, workdir)
        )
    finally:
        server.close()
    report = [
        "## Relay benchmark",
        "",
        *header,
        f"- load average (1, 5, 15 min) at end, the benchmark's own processes included: {_load()}",
        f"- {archive_check}",
        "",
        "### Messages through the proxy (archive on) and direct",
        "",
        f"Closed loop, one message in flight per pair; up to {options.messages} counted "
        f"messages per pair after {options.warmup} warm-up messages, "
        f"at most {options.duration:g} s per scenario.",
        "",
        *relay_table(rows),
    ]
    if memory is not None:
        report += ["", "### Proxy memory per idle session", "", *memory_table(memory)]
    errors = [f"{row.path}, {row.pairs} pairs: {error}" for row in rows for error in row.errors]
    if memory is not None:
        errors += memory.errors
    if errors:
        report += ["", f"### Errors ({len(errors)})", "", *(f"- {error}" for error in errors[:20])]
    print("\n".join(report))
    return 1 if errors or not archive_matches else 0


if __name__ == "__main__":
    sys.exit(main())
