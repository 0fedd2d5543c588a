"""Validation of the IMtegrityProxy spec by the operator's model."""

from __future__ import annotations

import pytest
from imtegrity_operator.spec import SpecError, parse_spec


def _errors(spec: dict) -> list[str]:
    with pytest.raises(SpecError) as error:
        parse_spec(spec)
    return error.value.errors


def test_empty_spec_gets_defaults():
    spec = parse_spec({})

    assert spec.replicas == 1
    assert spec.image == ""
    assert spec.ports == [5190, 443]
    assert spec.health_port == 8080
    assert spec.advertise_host is None
    assert spec.archive.storage_size == "10Gi"
    assert spec.archive.storage_class_name is None
    assert spec.egress.enforcement == "auto"
    assert spec.dns.mode == "auto"
    assert spec.upstream.servers == ["login.oscar.aol.com:5190"]


def test_none_spec_gets_defaults():
    assert parse_spec(None).replicas == 1


def test_spec_reads_camel_case_names():
    spec = parse_spec(
        {
            "healthPort": 9090,
            "advertiseHost": "aim.example.com",
            "archive": {"storageSize": "1Gi", "storageClassName": "fast", "max_batch": 8},
            "egress": {"blockedCIDRs": ["10.0.0.0/8"], "exemptNamespaces": ["ops"]},
        }
    )

    assert spec.health_port == 9090
    assert spec.advertise_host == "aim.example.com"
    assert spec.archive.storage_size == "1Gi"
    assert spec.archive.storage_class_name == "fast"
    assert spec.archive.max_batch == 8
    assert spec.egress.blocked_cidrs == ["10.0.0.0/8"]
    assert spec.egress.exempt_namespaces == ["ops"]


def test_port_out_of_range():
    errors = _errors({"ports": [70000]})

    assert len(errors) == 1
    assert errors[0].startswith("spec.ports[0]: ")


def test_duplicate_ports():
    errors = _errors({"ports": [5190, 5190]})

    assert errors == ["spec.ports: duplicate values ['5190']"]


def test_health_port_in_ports():
    errors = _errors({"ports": [8080]})

    assert errors == ["spec: healthPort must differ from every port in ports"]


def test_negative_replicas():
    errors = _errors({"replicas": -1})

    assert errors[0].startswith("spec.replicas: ")


def test_bad_cidr():
    errors = _errors({"egress": {"blockedCIDRs": ["64.12.0.0/33"]}})

    assert errors == [
        "spec.egress.blockedCIDRs[0]: invalid CIDR '64.12.0.0/33': "
        "expected a form such as 64.12.0.0/16"
    ]


def test_unknown_field():
    errors = _errors({"bogus": 1})

    assert errors == ["spec.bogus: unknown field"]


def test_unknown_enum_value():
    errors = _errors({"dns": {"mode": "hosts"}})

    assert errors[0].startswith("spec.dns.mode: ")


def test_bad_quantity():
    errors = _errors({"resources": {"limits": {"cpu": "lots"}}})

    assert errors == [
        "spec.resources.limits.cpu: invalid quantity 'lots': expected a form such as 500m or 1Gi"
    ]


def test_integer_quantity():
    spec = parse_spec({"resources": {"requests": {"cpu": 2}}})

    assert spec.resources.requests == {"cpu": 2}


def test_bad_advertise_host():
    errors = _errors({"advertiseHost": "not a host"})

    assert len(errors) == 1
    assert errors[0].startswith("spec.advertiseHost: ")


def test_bad_policy_pattern_names_field():
    errors = _errors({"policy": {"rules": [{"name": "r", "pattern": "("}]}})

    assert len(errors) == 1
    assert errors[0].startswith("spec.policy.rules[0].pattern: invalid regular expression")


def test_policy_reference_problem_names_field():
    errors = _errors({"policy": {"groups": {"sales": ["nobody@example.com"]}}})

    assert errors == ["spec.policy.groups.sales[0]: unknown identity 'nobody@example.com'"]


def test_bad_upstream_server():
    errors = _errors({"upstream": {"servers": ["no-port"]}})

    assert len(errors) == 1
    assert errors[0].startswith("spec.upstream.servers[0]: invalid host:port 'no-port'")
