"""The ``imtegrity-operator`` command: ``imtegrity-operator run [options]``."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Sequence

import kopf

from imtegrity_operator.handlers import DEFAULT_PROXY_IMAGE
from imtegrity_operator.telemetry import add_trace_ids_to_logs

# --log-format values, named as in the proxy's logging.format.
LOG_FORMATS = {"text": kopf.LogFormat.FULL, "json": kopf.LogFormat.JSON}


def liveness_url(address: str) -> str:
    """Turn ``HOST:PORT`` (``[IPv6]:PORT`` for IPv6) into kopf's liveness endpoint URL."""
    host, separator, port = address.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(
            f"invalid address {address!r}: expected HOST:PORT, for example 0.0.0.0:8080"
        )
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"invalid address {address!r}: {error}") from None
    elif ":" in host:
        raise argparse.ArgumentTypeError(
            f"invalid address {address!r}: write an IPv6 address in brackets, as [::1]:8080"
        )
    return f"http://{host}:{port}/healthz"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imtegrity-operator",
        description="Kubernetes operator that runs an IMtegrity proxy for each IMtegrityProxy.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator until SIGINT or SIGTERM")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        metavar="NS",
        help="watch IMtegrityProxy resources in this namespace; repeat for more "
        "(a glob such as team-* also works)",
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="watch every namespace (the default when no --namespace is given)",
    )
    run.add_argument(
        "--liveness",
        metavar="HOST:PORT",
        type=liveness_url,
        help="serve kopf's liveness probe at http://HOST:PORT/healthz (off by default)",
    )
    run.add_argument(
        "--default-proxy-image",
        metavar="IMAGE",
        default=DEFAULT_PROXY_IMAGE,
        help="proxy image for resources whose spec.image is empty (default: %(default)s)",
    )
    run.add_argument(
        "--kubeconfig",
        metavar="PATH",
        help="kubeconfig file; default: the in-cluster service account, else $KUBECONFIG "
        "or ~/.kube/config",
    )
    run.add_argument(
        "--log-format",
        choices=sorted(LOG_FORMATS),
        default="text",
        help="text for one readable line per event, json for one JSON object per line "
        "(default: %(default)s)",
    )
    run.add_argument("--verbose", "-v", action="store_true", help="log at debug level")
    return parser


def run(args: argparse.Namespace) -> None:
    kopf.configure(verbose=args.verbose, log_format=LOG_FORMATS[args.log_format])
    add_trace_ids_to_logs()
    memo = kopf.Memo(kubeconfig=args.kubeconfig, default_image=args.default_proxy_image)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace or (),
        liveness_endpoint=args.liveness,
        # One operator instance per cluster; kopf's peering CRDs are not installed.
        standalone=True,
        memo=memo,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "run":
        run(args)


if __name__ == "__main__":
    main()
