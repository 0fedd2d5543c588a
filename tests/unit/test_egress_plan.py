"""The egress plan over several proxies, the choice of policy kind, and the condition it yields."""

from __future__ import annotations

import pytest
from imtegrity_operator.egress import detect, objects
from imtegrity_operator.egress.detect import ClusterFacts, choose_enforcement
from imtegrity_operator.egress.inventory import entry_from_body, live_entries
from imtegrity_operator.egress.plan import ClusterState, plan_egress
from imtegrity_operator.egress.report import egress_condition, listing
from imtegrity_operator.egress.sync import EgressResult

NO_FACTS = ClusterFacts(frozenset(), frozenset())
CALICO_AGENT = ("calico-system", "calico-node")


def proxy(name="aim", namespace="imtegrity", created="2024-01-01T00:00:00Z", **spec) -> dict:
    metadata = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{namespace}-{name}",
        "creationTimestamp": created,
        "generation": 1,
    }
    return {"metadata": metadata, "spec": spec}


def namespaces(*names: str, terminating: tuple[str, ...] = ()) -> list[dict]:
    result = [{"metadata": {"name": name}, "status": {"phase": "Active"}} for name in names]
    result += [{"metadata": {"name": n}, "status": {"phase": "Terminating"}} for n in terminating]
    return result


def network_policy(namespace: str, name: str, selector: dict, egress=None, **labels) -> dict:
    spec = {"podSelector": selector, "policyTypes": ["Egress"], "egress": egress or []}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": spec}


def state(policies=(), pods=(), facts=NO_FACTS, extra_namespaces=()) -> ClusterState:
    names = namespaces("kube-system", "imtegrity", "team", *extra_namespaces)
    return ClusterState(names, list(policies), list(pods), facts)


def desired_names(plan, kind="NetworkPolicy") -> set[tuple[str, str]]:
    return {
        (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        for resource, obj in plan.desired
        if resource.kind == kind
    }


def coverage_selectors(plan, namespace: str) -> list[dict]:
    return [
        obj["spec"]["podSelector"]
        for resource, obj in plan.desired
        if resource.kind == "NetworkPolicy"
        and obj["metadata"]["namespace"] == namespace
        and obj["metadata"]["labels"][objects.ROLE_LABEL] == objects.ROLE_COVERAGE
    ]


# NetworkPolicy fallback.


def test_no_proxy_no_objects():
    plan = plan_egress([], state())

    assert plan.desired == []
    assert plan.enforcement is None


def test_deny_off_no_objects():
    plan = plan_egress(live_entries([proxy(egress={"denyOtherPods": False})]), state())

    assert plan.desired == []


def test_fallback_covers_each_namespace():
    plan = plan_egress(live_entries([proxy()]), state(extra_namespaces=("new",)))

    assert plan.enforcement.kind == detect.NETWORK_POLICY
    assert plan.covered_namespaces == ["imtegrity", "new", "team"]
    assert coverage_selectors(plan, "team") == [{}]
    assert coverage_selectors(plan, "new") == [{}]
    assert ("imtegrity", "aim-egress") in desired_names(plan)


def test_exempt_and_terminating_skipped():
    names = namespaces("kube-system", "imtegrity", terminating=("leaving",))
    plan = plan_egress(live_entries([proxy()]), ClusterState(names, [], [], NO_FACTS))

    assert plan.covered_namespaces == ["imtegrity"]
    assert coverage_selectors(plan, "kube-system") == []
    assert coverage_selectors(plan, "leaving") == []


def test_proxy_namespace_excludes_proxy_pods():
    plan = plan_egress(live_entries([proxy()]), state())
    selectors = coverage_selectors(plan, "imtegrity")

    assert len(selectors) == 2
    assert {expr["key"] for s in selectors for expr in s["matchExpressions"]} == {
        "app.kubernetes.io/name",
        "app.kubernetes.io/instance",
    }


def test_default_deny_namespace_left_alone():
    deny = network_policy("team", "default-deny", {})

    plan = plan_egress(live_entries([proxy()]), state([deny]))

    assert coverage_selectors(plan, "team") == []
    assert "team" in plan.covered_namespaces
    assert plan.bypasses == []


def test_other_policy_pods_excluded_and_audited():
    leaky = network_policy(
        "team",
        "web",
        {"matchLabels": {"app": "web"}},
        egress=[{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443}]}],
    )

    plan = plan_egress(live_entries([proxy()]), state([leaky]))

    assert coverage_selectors(plan, "team") == [
        {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}
    ]
    assert [bypass.name for bypass in plan.bypasses] == ["web"]


def test_own_coverage_policies_not_counted_as_others():
    own = network_policy(
        "team", "imtegrity-egress-old", {"matchLabels": {"x": "y"}}, **objects.labels("coverage")
    )

    plan = plan_egress(live_entries([proxy()]), state([own]))

    assert coverage_selectors(plan, "team") == [{}]


def test_unsupported_selector_leaves_namespace_uncovered():
    odd = network_policy(
        "team", "odd", {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}
    )

    plan = plan_egress(live_entries([proxy()]), state([odd]))

    assert "team" in plan.uncovered
    assert "team" not in plan.covered_namespaces


def test_host_network_pods_outside_exempt_reported():
    pods = [
        {"metadata": {"namespace": "team", "name": "exporter"}},
        {"metadata": {"namespace": "kube-system", "name": "kube-proxy"}},
    ]

    plan = plan_egress(live_entries([proxy()]), state(pods=pods))

    assert plan.host_network_pods == ["team/exporter"]


# Several proxies.


def test_merge_union_cidrs_intersection_exempt():
    older = proxy(
        "a", created="2024-01-01T00:00:00Z", egress={"exemptNamespaces": ["kube-system"]}
    )
    younger = proxy(
        "b",
        created="2024-02-01T00:00:00Z",
        egress={"blockedCIDRs": ["198.51.100.0/24"], "exemptNamespaces": ["kube-system", "team"]},
    )

    plan = plan_egress(live_entries([younger, older]), state())

    assert [entry.owner.name for entry in plan.participants] == ["a", "b"]
    assert "198.51.100.0/24" in [str(n) for n in plan.blocked]
    assert "64.12.0.0/16" in [str(n) for n in plan.blocked]
    assert plan.exempt == ["kube-system"]
    assert {("imtegrity", "a-egress"), ("imtegrity", "b-egress")} <= desired_names(plan)


def test_oldest_chooses_enforcement():
    facts = ClusterFacts(frozenset(objects.ALL_RESOURCES), frozenset({CALICO_AGENT}))
    older = proxy("a", created="2024-01-01T00:00:00Z", egress={"enforcement": "networkpolicy"})
    younger = proxy("b", created="2024-02-01T00:00:00Z", egress={"enforcement": "calico"})

    plan = plan_egress(live_entries([younger, older]), state(facts=facts))

    assert plan.enforcement.kind == detect.NETWORK_POLICY


def test_deleting_proxy_does_not_count():
    gone = proxy()
    gone["metadata"]["deletionTimestamp"] = "2024-03-01T00:00:00Z"

    plan = plan_egress(live_entries([gone]), state())

    assert plan.desired == []


def test_invalid_section_uses_defaults():
    entry = entry_from_body(proxy(egress={"blockedCIDRs": ["not-a-cidr"]}))

    assert entry.problem.startswith("spec.egress:")
    assert entry.egress.deny_other_pods is True


# Cluster-wide kinds.


@pytest.mark.parametrize(
    ("agent", "served", "expected"),
    [
        (("kube-system", "kube-network-policies"), None, detect.CLUSTER_NETWORK_POLICY),
        (
            ("kube-system", "kube-network-policies"),
            {objects.ADMIN_NETWORK_POLICY},
            detect.ADMIN_NETWORK_POLICY,
        ),
        (("kube-system", "cilium"), None, detect.CILIUM),
        (CALICO_AGENT, {objects.CALICO_POLICY, objects.CALICO_TIER}, detect.CALICO),
        (("kube-system", "kube-router"), None, detect.NETWORK_POLICY),
    ],
    ids=["cnp", "anp", "cilium", "calico", "plain"],
)
def test_auto_choice(agent, served, expected):
    facts = ClusterFacts(frozenset(served or objects.ALL_RESOURCES), frozenset({agent}))

    assert choose_enforcement("auto", facts).kind == expected


def test_served_without_agent_not_chosen():
    facts = ClusterFacts(frozenset(objects.ALL_RESOURCES), frozenset())

    choice = choose_enforcement("auto", facts)

    assert choice.kind == detect.NETWORK_POLICY
    assert choice.agent is None


def test_forced_unserved_falls_back():
    choice = choose_enforcement("cilium", NO_FACTS)

    assert choice.kind == detect.NETWORK_POLICY
    assert "ciliumclusterwidenetworkpolicies.cilium.io/v2" in choice.problem


def test_forced_cnp_uses_anp_when_only_that_served():
    facts = ClusterFacts(frozenset({objects.ADMIN_NETWORK_POLICY}), frozenset())

    assert choose_enforcement("clusternetworkpolicy", facts).kind == detect.ADMIN_NETWORK_POLICY


def test_cluster_wide_plan_replaces_coverage():
    facts = ClusterFacts(frozenset(objects.ALL_RESOURCES), frozenset({("kube-system", "cilium")}))

    plan = plan_egress(live_entries([proxy()]), state(facts=facts))
    kinds = [resource.kind for resource, _ in plan.desired]

    assert kinds.count("CiliumClusterwideNetworkPolicy") == 3
    assert kinds.count("NetworkPolicy") == 1  # the proxy's own
    assert plan.covered_namespaces == ["imtegrity", "team"]


# The condition.


def condition_for(plan_state: ClusterState, body: dict, errors=()) -> dict:
    entries = live_entries([body])
    result = EgressResult(plan=plan_egress(entries, plan_state), errors=list(errors))
    return egress_condition(entries[0], result, "", 1)


def test_condition_true_when_clean():
    facts = ClusterFacts(frozenset(), frozenset({("kube-system", "kube-router")}))

    cond = condition_for(state(facts=facts), proxy())

    assert cond["status"] == "True"
    assert cond["reason"] == "Enforced"
    assert "covered namespaces (2): imtegrity, team" in cond["message"]
    assert "kube-system/kube-router" in cond["message"]


def test_condition_unconfirmed_without_agent():
    cond = condition_for(state(), proxy())

    assert cond["status"] == "False"
    assert cond["reason"] == "EnforcementUnconfirmed"


def test_condition_bypass_named():
    facts = ClusterFacts(frozenset(), frozenset({("kube-system", "kube-router")}))
    leaky = network_policy("team", "leaky", {}, egress=[{}])

    cond = condition_for(state([leaky], facts=facts), proxy())

    assert cond["reason"] == "BypassFound"
    assert "NetworkPolicy team/leaky allows 64.12.0.0/16" in cond["message"]


def test_condition_write_failure_first():
    cond = condition_for(state([network_policy("team", "l", {}, egress=[{}])]), proxy(), ["boom"])

    assert cond["reason"] == "WriteFailed"
    assert "failed writes: boom" in cond["message"]


def test_condition_disabled():
    entry = entry_from_body(proxy(egress={"denyOtherPods": False}))

    cond = egress_condition(entry, None, "", 3)

    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == ("False", "Disabled", 3)


def test_condition_read_failure_unknown():
    cond = egress_condition(entry_from_body(proxy()), None, "list namespaces failed", 1)

    assert (cond["status"], cond["reason"]) == ("Unknown", "CheckFailed")


def test_listing_truncates():
    assert listing([str(i) for i in range(25)], 3) == "0, 1, 2 and 22 more"
    assert listing([]) == "none"
