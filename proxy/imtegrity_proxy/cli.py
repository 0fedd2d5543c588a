"""The ``imtegrity-proxy`` command line: serve, archive export|verify, config check.

Exit status: 0 on success. 1 when ``archive verify`` finds a broken chain or
``archive export`` fails. 2 for invalid options, an invalid configuration, or an
archive that ``archive verify`` cannot open, so scripts can tell that apart from
a broken chain.
The relay and the archive are imported only by the commands that use them, so
``config check`` works without either.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from imtegrity_proxy.config import (
    Config,
    ConfigError,
    parse_config,
    read_config_file,
)
from imtegrity_proxy.log import config_logger, setup_logging

__all__ = ["build_parser", "main", "parse_timestamp"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2

LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_timestamp(text: str) -> datetime.datetime:
    """Parse an RFC 3339 time (with offset) or a date, which means midnight UTC.

    Raises ``argparse.ArgumentTypeError`` for anything else, including a time
    without an offset, because the archive stores UTC and a local time is ambiguous.
    """
    try:
        date = datetime.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.datetime.combine(date, datetime.time(), tzinfo=datetime.UTC)
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: expected RFC 3339 such as 2024-05-01T12:00:00Z "
            "or a date such as 2024-05-01"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: add a UTC offset such as Z or +02:00"
        )
    return moment


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="imtegrity-proxy",
        description="Compliance proxy for AIM (OSCAR): relays, archives and applies policy.",
        epilog=(
            "Exit status: 0 success; 1 broken archive chain or failed export; "
            "2 invalid options, invalid configuration or unreadable archive."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_archive(commands)
    _add_config(commands)
    return parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the proxy",
        description=(
            "Run the proxy. Options override the values read from --config, "
            "and the result is validated as a whole."
        ),
    )
    serve.add_argument(
        "--config", metavar="FILE", help="YAML configuration file (default: built-in defaults)"
    )
    serve.add_argument(
        "--listen-host", metavar="H", help="sets listen.host: local address for AIM clients"
    )
    serve.add_argument(
        "--listen-port",
        metavar="N",
        type=int,
        action="append",
        help="sets listen.ports: TCP port for AIM clients; repeat for several ports",
    )
    serve.add_argument(
        "--upstream",
        metavar="HOST:PORT",
        action="append",
        help="sets upstream.servers: OSCAR login server ([IPv6]:PORT for IPv6); repeatable",
    )
    serve.add_argument(
        "--advertise-host",
        metavar="HOST",
        help="sets advertise.host: host name or IP address handed to clients",
    )
    serve.add_argument("--archive", metavar="PATH", help="sets archive.path: SQLite archive file")
    serve.add_argument(
        "--health-port",
        metavar="N",
        type=int,
        help="sets health.port: TCP port for /healthz, /readyz and /metrics",
    )
    serve.add_argument(
        "--log-format", choices=("text", "json"), help="sets logging.format: text or json lines"
    )
    serve.add_argument(
        "--log-level", choices=LOG_LEVELS, help="sets logging.level: lowest level written"
    )
    serve.set_defaults(handler=_serve)


def _add_archive(commands: Any) -> None:
    archive = commands.add_parser("archive", help="export or verify an archive")
    actions = archive.add_subparsers(dest="action", required=True, metavar="ACTION")

    export = actions.add_parser(
        "export",
        help="write archived records as JSON lines",
        description="Write archived records, oldest first, one JSON object per line.",
    )
    export.add_argument("--archive", metavar="PATH", required=True, help="SQLite archive file")
    export.add_argument(
        "--format", choices=("jsonl",), default="jsonl", help="output format (default: jsonl)"
    )
    export.add_argument(
        "--since",
        metavar="T",
        type=parse_timestamp,
        help="first time included: RFC 3339 (2024-05-01T12:00:00Z) or a date (midnight UTC)",
    )
    export.add_argument(
        "--until",
        metavar="T",
        type=parse_timestamp,
        help="first time excluded: RFC 3339 or a date (midnight UTC)",
    )
    export.add_argument(
        "--user",
        metavar="SN",
        help="only records of this local screen name (case and spaces ignored)",
    )
    export.add_argument(
        "--remote",
        metavar="SN",
        help="only records with this remote screen name (case and spaces ignored)",
    )
    export.add_argument(
        "--output", metavar="FILE", help="write to FILE instead of standard output"
    )
    export.set_defaults(handler=_archive_export)

    verify = actions.add_parser(
        "verify",
        help="check the archive's hash chain",
        description=(
            'Check every record\'s hash and link. Prints "ok: N records, head HASH" and '
            'exits 0, or "FAILED at record ID: reason" and exits 1. Keep the head hash '
            "outside the database and pass it back with --anchor: someone who can write "
            "the database can rebuild the whole chain, but not one that still contains "
            "a hash recorded elsewhere."
        ),
    )
    verify.add_argument("--archive", metavar="PATH", required=True, help="SQLite archive file")
    verify.add_argument(
        "--anchor",
        metavar="HASH",
        help="a head hash printed by an earlier verify; fails unless the chain still has it",
    )
    verify.set_defaults(handler=_archive_verify)


def _add_config(commands: Any) -> None:
    config = commands.add_parser("config", help="check a configuration file")
    actions = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="validate a configuration file",
        description=(
            'Validate FILE. Prints "FILE: valid" and a summary and exits 0, '
            "or prints each invalid field and exits 2."
        ),
    )
    check.add_argument("file", metavar="FILE", help="YAML configuration file")
    check.set_defaults(handler=_config_check)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


def _print_config_errors(error: ConfigError, source: str) -> None:
    print(f"{source}: invalid", file=sys.stderr)
    for line in error.errors:
        print(f"  {line}", file=sys.stderr)


# ---- serve -------------------------------------------------------------------------


def _set(data: dict[str, Any], section: str, key: str, value: Any) -> None:
    """Set ``data[section][key]``, replacing a section that is not a mapping."""
    if value is None:
        return
    if not isinstance(data.get(section), dict):
        data[section] = {}
    data[section][key] = value


def build_serve_config(args: argparse.Namespace) -> Config:
    """Merge the --config file with the override options and validate the result."""
    data = read_config_file(args.config) if args.config else None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"the configuration must be a mapping, not {type(data).__name__}")
    _set(data, "listen", "host", args.listen_host)
    _set(data, "listen", "ports", args.listen_port)
    _set(data, "upstream", "servers", args.upstream)
    _set(data, "advertise", "host", args.advertise_host)
    _set(data, "archive", "path", args.archive)
    _set(data, "health", "port", args.health_port)
    _set(data, "logging", "format", args.log_format)
    _set(data, "logging", "level", args.log_level)
    return parse_config(data)


def _serve(args: argparse.Namespace) -> int:
    try:
        config = build_serve_config(args)
    except ConfigError as error:
        _print_config_errors(error, args.config or "configuration")
        return EXIT_INVALID
    from imtegrity_proxy.telemetry import TraceContextFilter

    handler = setup_logging(config.logging.format, config.logging.level)
    # JSON lines then carry trace_id and span_id, to join them with exported traces.
    handler.addFilter(TraceContextFilter())
    config_logger.info(
        "configuration loaded from %s: %s",
        args.config or "defaults and options",
        "; ".join(summarize_config(config)),
    )
    from imtegrity_proxy.relay.app import run

    exit_status: int = run(config, config_path=args.config)
    return exit_status


# ---- archive -----------------------------------------------------------------------


@contextmanager
def _open_output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="\n") as stream:
        yield stream


def _archive_export(args: argparse.Namespace) -> int:
    from imtegrity_proxy.archive import ArchiveError, export_records, format_json_line

    count = 0
    try:
        records = export_records(
            args.archive, since=args.since, until=args.until, user=args.user, remote=args.remote
        )
        with _open_output(args.output) as stream:
            for record in records:
                stream.write(format_json_line(record))
                count += 1
    except ArchiveError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        target = args.output or "standard output"
        print(f"error: failed to write {target}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"exported {count} records", file=sys.stderr)
    return EXIT_OK


def _archive_verify(args: argparse.Namespace) -> int:
    from imtegrity_proxy.archive import ArchiveError, verify_archive

    try:
        report = verify_archive(args.archive, anchor=args.anchor)
    except ArchiveError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID
    if report.ok:
        print(f"ok: {report.records} records, head {report.head_hash}")
        return EXIT_OK
    print(f"FAILED at record {report.first_bad_id}: {report.reason}")
    return EXIT_FAILED


# ---- config ------------------------------------------------------------------------


def summarize_config(config: Config) -> list[str]:
    """Return short lines describing the main settings; credentials are never included."""
    lines = [
        f"listen: {config.listen.host} ports {', '.join(map(str, config.listen.ports))}",
        f"upstream: {', '.join(config.upstream.servers)}",
        f"archive: {config.archive.path}",
    ]
    socks = config.upstream.socks
    if socks is None:
        lines.append("socks: none (direct connections)")
    else:
        lines.append("socks: " + ", ".join(proxy.describe() for proxy in socks.proxies))
    policy = config.policy
    lines.append(
        f"policy: {len(policy.identities)} identities, unregistered {policy.unregistered}, "
        f"{len(policy.rules)} content rules, {len(policy.remote_parties)} remote-party rules"
    )
    lines.append(f"health: {config.health.host} port {config.health.port}")
    return lines


def _config_check(args: argparse.Namespace) -> int:
    try:
        config = parse_config(read_config_file(args.file))
    except ConfigError as error:
        _print_config_errors(error, args.file)
        return EXIT_INVALID
    print(f"{args.file}: valid")
    for line in summarize_config(config):
        print(f"  {line}")
    return EXIT_OK
