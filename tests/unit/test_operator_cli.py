"""The imtegrity-operator command line."""

from __future__ import annotations

import argparse

import pytest
from imtegrity_operator.cli import _parser, liveness_url


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("0.0.0.0:8080", "http://0.0.0.0:8080/healthz"),
        ("127.0.0.1:18080", "http://127.0.0.1:18080/healthz"),
        ("[::1]:8080", "http://[::1]:8080/healthz"),
        ("localhost:9", "http://localhost:9/healthz"),
    ],
)
def test_liveness_url(address, url):
    assert liveness_url(address) == url


@pytest.mark.parametrize("address", ["8080", ":8080", "host:", "host:70000", "::1:80", "h:x"])
def test_liveness_url_invalid(address):
    with pytest.raises(argparse.ArgumentTypeError):
        liveness_url(address)


def test_run_defaults():
    args = _parser().parse_args(["run"])

    assert args.namespace is None
    assert args.all_namespaces is False
    assert args.liveness is None
    assert args.kubeconfig is None
    assert args.default_proxy_image == "imtegrity-proxy:0.1.0"


def test_run_namespaces():
    args = _parser().parse_args(["run", "--namespace", "a", "-n", "b"])

    assert args.namespace == ["a", "b"]


def test_run_scope_options_exclusive(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--namespace", "a", "--all-namespaces"])

    assert "not allowed with argument" in capsys.readouterr().err
