"""The DNS plan: host name ownership, mode choice, what defeats the override, and the condition."""

from __future__ import annotations

import pytest
from imtegrity_operator.dns import corefile
from imtegrity_operator.dns import plan as dns_plan
from imtegrity_operator.dns.plan import DnsState, desired_corefile, plan_dns
from imtegrity_operator.dns.proxy_pod import proxy_dns_policy
from imtegrity_operator.dns.render import server_block
from imtegrity_operator.dns.report import dns_condition
from imtegrity_operator.dns.sync import DnsResult, service_addresses
from imtegrity_operator.egress.detect import ClusterFacts
from imtegrity_operator.egress.inventory import entry_from_body, live_entries
from imtegrity_operator.spec import parse_spec

from tests.unit.test_dns_corefile import K3S_COREFILE, KUBEADM_COREFILE

NO_FACTS = ClusterFacts(frozenset(), frozenset())


def proxy(name="aim", created="2024-01-01T00:00:00Z", **spec) -> dict:
    metadata = {
        "name": name,
        "namespace": "imtegrity",
        "uid": f"uid-{name}",
        "creationTimestamp": created,
        "generation": 2,
    }
    return {"metadata": metadata, "spec": spec}


def config_map(text: str, labels=None, managed=None) -> dict:
    metadata = {"name": "coredns", "namespace": "kube-system", "resourceVersion": "7"}
    if labels:
        metadata["labels"] = labels
    if managed:
        metadata["managedFields"] = managed
    return {"metadata": metadata, "data": {"Corefile": text}}


def deployment(mount_path: str | None) -> dict:
    volumes = [{"name": "config-volume", "configMap": {"name": "coredns"}}]
    mounts = [{"name": "config-volume", "mountPath": "/etc/coredns"}]
    if mount_path:
        volumes.append({"name": "custom", "configMap": {"name": "coredns-custom"}})
        mounts.append({"name": "custom", "mountPath": mount_path})
    container = {"name": "coredns", "volumeMounts": mounts}
    return {"spec": {"template": {"spec": {"volumes": volumes, "containers": [container]}}}}


def dns_state(text=K3S_COREFILE, custom=None, deploy=None, ips=None, facts=NO_FACTS, **cm):
    return DnsState(
        corefile_map=config_map(text, **cm) if text is not None else None,
        custom_map=custom,
        deployment=deploy,
        service_ips=ips
        if ips is not None
        else {"uid-aim": ["10.96.0.50"], "uid-b": ["10.96.0.60"]},
        facts=facts,
    )


# Mode and answers.


def test_k3s_corefile_picks_custom():
    plan = plan_dns(live_entries([proxy()]), dns_state(deploy=deployment("/etc/coredns/custom")))

    assert plan.mode == dns_plan.MODE_CUSTOM
    assert plan.answers == {
        "login.oscar.aol.com": ["10.96.0.50"],
        "login.messaging.aol.com": ["10.96.0.50"],
    }


def test_import_without_mount_picks_corefile():
    plan = plan_dns(live_entries([proxy()]), dns_state(deploy=deployment(None)))

    assert plan.mode == dns_plan.MODE_COREFILE


def test_kubeadm_corefile_picks_corefile():
    plan = plan_dns(live_entries([proxy()]), dns_state(text=KUBEADM_COREFILE))

    assert plan.mode == dns_plan.MODE_COREFILE
    assert plan.defeats == []


def test_forced_mode_wins():
    body = proxy(dns={"mode": "corefile"})

    plan = plan_dns(live_entries([body]), dns_state(deploy=deployment("/etc/coredns/custom")))

    assert plan.mode == dns_plan.MODE_COREFILE


def test_older_proxy_owns_hostname():
    older = proxy("aim", created="2024-01-01T00:00:00Z")
    younger = proxy(
        "b", created="2024-02-01T00:00:00Z", dns={"hostnames": ["login.oscar.aol.com"]}
    )

    plan = plan_dns(live_entries([younger, older]), dns_state(text=KUBEADM_COREFILE))

    assert plan.owners["login.oscar.aol.com"].owner.name == "aim"
    assert plan.answers["login.oscar.aol.com"] == ["10.96.0.50"]


def test_user_zone_left_alone():
    text = KUBEADM_COREFILE + "\nlogin.oscar.aol.com:53 {\n    forward . 192.0.2.1\n}\n"

    plan = plan_dns(live_entries([proxy()]), dns_state(text=text))

    assert "login.oscar.aol.com" not in plan.answers
    assert plan.taken["login.oscar.aol.com"] == "ConfigMap kube-system/coredns"


def test_custom_key_zone_left_alone():
    custom = {"data": {"corp.server": "login.messaging.aol.com:53 {\n  whoami\n}\n"}}

    plan = plan_dns(live_entries([proxy()]), dns_state(custom=custom))

    assert "login.messaging.aol.com" not in plan.answers
    assert "corp.server" in plan.taken["login.messaging.aol.com"]


def test_no_service_ip_no_answer():
    plan = plan_dns(live_entries([proxy()]), dns_state(text=KUBEADM_COREFILE, ips={}))

    assert plan.answers == {}
    assert plan.blocks == ""


def test_root_port_and_bind_copied():
    text = ".:1053 {\n    bind 10.0.0.10\n    reload\n    forward . 1.1.1.1\n}\n"

    plan = plan_dns(live_entries([proxy()]), dns_state(text=text))

    assert plan.port == 1053
    assert plan.bind == ["10.0.0.10"]
    assert "login.oscar.aol.com:1053 {\n    bind 10.0.0.10\n" in plan.blocks


# Defeats.


def test_node_local_dns_defeats():
    facts = ClusterFacts(frozenset(), frozenset({("kube-system", "node-local-dns")}))

    plan = plan_dns(live_entries([proxy()]), dns_state(text=KUBEADM_COREFILE, facts=facts))

    assert [d.reason for d in plan.defeats] == ["NodeLocalDNSCache"]


def test_addon_manager_defeats_corefile_mode():
    labels = {"addonmanager.kubernetes.io/mode": "Reconcile"}

    plan = plan_dns(live_entries([proxy()]), dns_state(text=KUBEADM_COREFILE, labels=labels))

    assert [d.reason for d in plan.defeats] == ["ManagedCoreDNS"]


def test_eks_field_manager_defeats_corefile_mode():
    managed = [{"manager": "eks", "fieldsV1": {"f:data": {"f:Corefile": {}}}}]

    plan = plan_dns(live_entries([proxy()]), dns_state(text=KUBEADM_COREFILE, managed=managed))

    assert [d.reason for d in plan.defeats] == ["ManagedCoreDNS"]


def test_missing_reload_defeats():
    plan = plan_dns(live_entries([proxy()]), dns_state(text=".:53 {\n    forward . 1.1.1.1\n}\n"))

    assert [d.reason for d in plan.defeats] == ["ReloadMissing"]


def test_forced_custom_without_import_defeats():
    body = proxy(dns={"mode": "coredns-custom"})

    plan = plan_dns(live_entries([body]), dns_state(text=KUBEADM_COREFILE))

    assert [d.reason for d in plan.defeats] == ["NotImported"]


def test_missing_coredns_is_problem():
    plan = plan_dns(live_entries([proxy()]), dns_state(text=None))

    assert plan.problem is not None
    assert plan.problem.reason == "CoreDNSNotFound"


# The Corefile edit.


def test_desired_corefile_adds_and_removes():
    plan = plan_dns(live_entries([proxy()]), dns_state(text=KUBEADM_COREFILE))

    edited = desired_corefile(KUBEADM_COREFILE, plan.blocks, plan.mode)
    restored = desired_corefile(edited, "", "")

    assert edited.startswith(KUBEADM_COREFILE + "\n" + corefile.BEGIN_MARKER)
    assert "login.oscar.aol.com:53 {" in edited
    assert restored == KUBEADM_COREFILE


def test_desired_corefile_custom_mode_removes_section():
    edited = corefile.with_section(K3S_COREFILE, "x:53 {\n}\n")

    assert desired_corefile(edited, "x:53 {\n}\n", dns_plan.MODE_CUSTOM) == K3S_COREFILE


def test_server_block_shape():
    block = server_block("login.oscar.aol.com", ["10.96.0.50", "fd00::50"], 53, [])

    assert block.startswith("login.oscar.aol.com:53 {\n")
    assert 'answer "{{ .Name }} 30 IN A 10.96.0.50"' in block
    assert 'answer "{{ .Name }} 30 IN AAAA fd00::50"' in block
    assert 'match "^login[.]oscar[.]aol[.]com[.]$"' in block
    assert block.count("template ") == 4
    assert corefile.parse(block).blocks[0].keys == ["login.oscar.aol.com:53"]


def test_service_addresses():
    assert service_addresses({"spec": {"clusterIPs": ["10.96.0.5", "fd00::5"]}}) == [
        "10.96.0.5",
        "fd00::5",
    ]
    assert service_addresses({"spec": {"clusterIP": "None"}}) == []
    assert service_addresses(None) == []


# The condition.


def condition(state: DnsState, body: dict, others=()) -> dict:
    entries = live_entries([body, *others])
    result = DnsResult(plan=plan_dns(entries, state))
    entry = next(e for e in entries if e.owner.uid == body["metadata"]["uid"])
    return dns_condition(entry, result, "", 2)


def test_condition_true_lists_answers():
    cond = condition(dns_state(text=KUBEADM_COREFILE), proxy())

    assert cond["status"] == "True"
    assert cond["reason"] == "Overridden"
    assert "login.oscar.aol.com -> 10.96.0.50" in cond["message"]
    assert "Corefile in ConfigMap kube-system/coredns" in cond["message"]


def test_condition_conflict_names_older():
    older = proxy("aim", created="2024-01-01T00:00:00Z")
    younger = proxy("b", created="2024-02-01T00:00:00Z")

    cond = condition(dns_state(text=KUBEADM_COREFILE), younger, [older])

    assert cond["status"] == "False"
    assert cond["reason"] == "HostnameConflict"
    assert "older IMtegrityProxy imtegrity/aim" in cond["message"]


def test_condition_defeat_reason():
    facts = ClusterFacts(frozenset(), frozenset({("kube-system", "node-local-dns")}))

    cond = condition(dns_state(text=KUBEADM_COREFILE, facts=facts), proxy())

    assert cond["reason"] == "NodeLocalDNSCache"


def test_condition_disabled():
    cond = dns_condition(entry_from_body(proxy(dns={"override": False})), None, "", 2)

    assert (cond["status"], cond["reason"]) == ("False", "Disabled")


# The proxy's own resolver.


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, "Default"),
        ({"upstream": {"servers": ["64.12.24.50:5190"]}}, "ClusterFirst"),
        ({"upstream": {"servers": ["eu.login.oscar.aol.com:5190"]}}, "Default"),
        ({"upstream": {"socks": {"proxies": [{"host": "socks.corp.svc"}]}}}, "ClusterFirst"),
        (
            {
                "upstream": {
                    "socks": {"proxies": [{"host": "socks.corp.svc", "remote_dns": False}]}
                }
            },
            "Default",
        ),
        ({"dns": {"hostnames": ["other.example.com"]}}, "ClusterFirst"),
    ],
    ids=[
        "default-upstream",
        "literal",
        "subdomain",
        "socks-remote-dns",
        "socks-local-dns",
        "other",
    ],
)
def test_proxy_dns_policy(spec, expected):
    assert proxy_dns_policy(parse_spec(spec)) == expected
