"""The pure renderers: proxy destinations, NetworkPolicies and each cluster-wide kind."""

from __future__ import annotations

from imtegrity_operator.egress import cidrs, clusterwide, networkpolicy, objects
from imtegrity_operator.egress.clusterwide import ClusterPlan, ProxyAllow
from imtegrity_operator.egress.destinations import is_cluster_name, proxy_destinations
from imtegrity_operator.egress.plan import proxy_allow
from imtegrity_operator.egress.selectors import ALL, parse_selector
from imtegrity_operator.render.meta import Owner
from imtegrity_proxy.config import UpstreamConfig

from tests.unit.test_egress_selectors import selects

BLOCKED = cidrs.normalize(["64.12.0.0/16", "152.163.0.0/16", "205.188.0.0/16"])
OWNER = Owner(name="aim", namespace="imtegrity", uid="uid-1")
PROXY_LABELS = {"app.kubernetes.io/name": "imtegrity-proxy", "app.kubernetes.io/instance": "aim"}


def upstream(**fields) -> UpstreamConfig:
    return UpstreamConfig.model_validate(fields)


def plan(exempt=("kube-system",)) -> ClusterPlan:
    allow = ProxyAllow(OWNER, ((5190, (cidrs.parse_network("64.12.0.0/16"),)),))
    return ClusterPlan(tuple(BLOCKED), tuple(exempt), (allow,))


# Destinations.


def test_named_server_assumed_in_blocked():
    (destination,) = proxy_destinations(upstream(), BLOCKED)

    assert destination.port == 5190
    assert cidrs.texts(destination.networks) == cidrs.texts(BLOCKED)
    assert cidrs.texts(destination.allowed_blocked) == cidrs.texts(BLOCKED)
    assert destination.in_cluster is False


def test_literal_server_allows_only_itself():
    (destination,) = proxy_destinations(upstream(servers=["64.12.24.50:443"]), BLOCKED)

    assert cidrs.texts(destination.networks) == ["64.12.24.50/32"]
    assert cidrs.texts(destination.allowed_blocked) == ["64.12.24.50/32"]


def test_literal_server_outside_blocked_needs_no_allow():
    (destination,) = proxy_destinations(upstream(servers=["192.0.2.7:5190"]), BLOCKED)

    assert cidrs.texts(destination.networks) == ["192.0.2.7/32"]
    assert destination.allowed_blocked == ()


def test_cluster_server_reaches_pods():
    (destination,) = proxy_destinations(upstream(servers=["oscar.test.svc:5190"]), BLOCKED)

    assert destination.in_cluster is True
    assert destination.networks == ()


def test_socks_replaces_servers():
    socks = {"proxies": [{"host": "socks.example.com", "port": 1080}, {"host": "10.1.2.3"}]}

    named, literal = proxy_destinations(upstream(socks=socks), BLOCKED)

    assert (named.port, literal.port) == (1080, 1080)
    assert cidrs.texts(named.networks) == ["0.0.0.0/0", "::/0"]
    assert named.allowed_blocked == ()
    assert cidrs.texts(literal.networks) == ["10.1.2.3/32"]


def test_cluster_names():
    assert is_cluster_name("oscar")
    assert is_cluster_name("oscar.test.svc.cluster.local")
    assert not is_cluster_name("login.oscar.aol.com")


def test_proxy_allow_groups_by_port():
    entry_upstream = upstream(servers=["login.oscar.aol.com:5190", "64.12.24.50:443"])

    class Entry:
        owner = OWNER
        upstream = entry_upstream

    allow = proxy_allow(Entry(), BLOCKED)  # type: ignore[arg-type]

    assert [(port, cidrs.texts(nets)) for port, nets in allow.ports] == [
        (443, ["64.12.24.50/32"]),
        (5190, cidrs.texts(BLOCKED)),
    ]


# NetworkPolicies.


def test_coverage_allows_all_but_blocked():
    (policy,) = networkpolicy.render_coverage("team", [ALL], BLOCKED)
    (rule,) = policy["spec"]["egress"]

    assert policy["metadata"]["namespace"] == "team"
    assert policy["metadata"]["labels"][objects.ROLE_LABEL] == objects.ROLE_COVERAGE
    assert policy["spec"]["podSelector"] == {}
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert "ports" not in rule
    assert rule["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": cidrs.texts(BLOCKED)}},
        {"ipBlock": {"cidr": "::/0"}},
        {"namespaceSelector": {}},
    ]


def test_coverage_ipv4_only_cluster():
    (policy,) = networkpolicy.render_coverage("team", [ALL], BLOCKED, families={4})

    assert policy["spec"]["egress"][0]["to"] == [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": cidrs.texts(BLOCKED)}},
        {"namespaceSelector": {}},
    ]


def test_proxy_policy_ipv4_only_cluster():
    socks = {"proxies": [{"host": "socks.example.com"}]}
    destinations = proxy_destinations(upstream(socks=socks), BLOCKED)

    policy = networkpolicy.render_proxy_policy(OWNER, destinations, families={4})
    cidrs_used = [
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]

    assert "::/0" not in cidrs_used
    assert cidrs_used.count("0.0.0.0/0") == 2  # the SOCKS proxy and DNS


def test_coverage_name_follows_selector():
    first = networkpolicy.render_coverage("a", [parse_selector({"matchLabels": {"x": "1"}})], [])
    again = networkpolicy.render_coverage("b", [parse_selector({"matchLabels": {"x": "1"}})], [])
    other = networkpolicy.render_coverage("a", [parse_selector({"matchLabels": {"x": "2"}})], [])

    assert first[0]["metadata"]["name"] == again[0]["metadata"]["name"]
    assert first[0]["metadata"]["name"] != other[0]["metadata"]["name"]


def test_whole_family_blocked_drops_its_block():
    peers = networkpolicy.everything_except(cidrs.normalize(["0.0.0.0/0"]))

    assert peers == [{"ipBlock": {"cidr": "::/0"}}, {"namespaceSelector": {}}]


def test_proxy_policy_rules():
    destinations = proxy_destinations(upstream(), BLOCKED)

    policy = networkpolicy.render_proxy_policy(OWNER, destinations)
    upstream_rule, dns_rule = policy["spec"]["egress"]

    assert policy["metadata"]["name"] == "aim-egress"
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert policy["spec"]["podSelector"] == {"matchLabels": PROXY_LABELS}
    assert upstream_rule["ports"] == [{"protocol": "TCP", "port": 5190}]
    assert [peer["ipBlock"]["cidr"] for peer in upstream_rule["to"]] == cidrs.texts(BLOCKED)
    assert dns_rule["ports"] == [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
    assert dns_rule["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}


# AdminNetworkPolicy.


def test_admin_deny_every_port():
    *allows, deny = clusterwide.render_admin_network_policies(plan())
    (rule,) = deny["spec"]["egress"]

    assert deny["apiVersion"] == "policy.networking.k8s.io/v1alpha1"
    assert deny["kind"] == "AdminNetworkPolicy"
    assert rule["action"] == "Deny"
    assert "ports" not in rule
    assert rule["to"] == [{"networks": cidrs.texts(BLOCKED)}]
    assert deny["spec"]["subject"] == {
        "namespaces": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["kube-system"],
                }
            ]
        }
    }
    assert len(allows) == 1


def test_admin_allow_precedes_deny():
    (allow, deny) = clusterwide.render_admin_network_policies(plan())
    (rule,) = allow["spec"]["egress"]

    assert allow["spec"]["priority"] < deny["spec"]["priority"]
    assert rule["action"] == "Allow"
    assert rule["ports"] == [{"portNumber": {"protocol": "TCP", "port": 5190}}]
    assert rule["to"] == [{"networks": ["64.12.0.0/16"]}]
    assert allow["spec"]["subject"]["pods"]["podSelector"] == {"matchLabels": PROXY_LABELS}
    assert allow["spec"]["subject"]["pods"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "imtegrity"}
    }


def test_admin_networks_chunked_at_25():
    many = cidrs.normalize([f"10.{i}.0.0/16" for i in range(0, 60, 2)])
    big = ClusterPlan(tuple(many), (), ())

    (deny,) = clusterwide.render_admin_network_policies(big)
    peers = deny["spec"]["egress"][0]["to"]

    assert [len(peer["networks"]) for peer in peers] == [25, 5]
    assert deny["spec"]["subject"] == {"namespaces": {}}


# ClusterNetworkPolicy.


def test_cluster_policy_admin_tier():
    allow, deny = clusterwide.render_cluster_network_policies(plan())

    assert deny["apiVersion"] == "policy.networking.k8s.io/v1alpha2"
    assert deny["spec"]["tier"] == "Admin"
    assert allow["spec"]["tier"] == "Admin"
    assert deny["spec"]["egress"][0]["action"] == "Deny"
    assert "protocols" not in deny["spec"]["egress"][0]
    assert allow["spec"]["egress"][0]["action"] == "Accept"
    assert allow["spec"]["egress"][0]["protocols"] == [
        {"tcp": {"destinationPort": {"number": 5190}}}
    ]
    assert allow["spec"]["priority"] < deny["spec"]["priority"]


# Cilium.


def test_cilium_selects_all_but_proxy_and_exempt():
    policies = clusterwide.render_cilium_policies(plan())
    selectors = [policy["spec"]["endpointSelector"] for policy in policies]
    pods = [
        ({"io.kubernetes.pod.namespace": "team", "app": "web"}, True),
        ({"io.kubernetes.pod.namespace": "imtegrity", "app": "web"}, True),
        ({"io.kubernetes.pod.namespace": "imtegrity", **PROXY_LABELS}, False),
        ({"io.kubernetes.pod.namespace": "team", **PROXY_LABELS}, True),
        ({"io.kubernetes.pod.namespace": "kube-system", "app": "dns"}, False),
        (
            {
                "io.kubernetes.pod.namespace": "imtegrity",
                **PROXY_LABELS,
                "app.kubernetes.io/instance": "other",
            },
            True,
        ),
    ]

    for labels, denied in pods:
        assert any(selects(selector, labels) for selector in selectors) == denied, labels


def test_cilium_deny_spec():
    policy = clusterwide.render_cilium_policies(plan())[0]

    assert policy["apiVersion"] == "cilium.io/v2"
    assert policy["kind"] == "CiliumClusterwideNetworkPolicy"
    assert policy["spec"]["enableDefaultDeny"] == {"egress": False, "ingress": False}
    assert policy["spec"]["egressDeny"] == [
        {"toCIDRSet": [{"cidr": cidr} for cidr in cidrs.texts(BLOCKED)]}
    ]
    assert "toPorts" not in policy["spec"]["egressDeny"][0]
    assert "egress" not in policy["spec"]


# Calico.


def test_calico_tier_passes_by_default():
    tier, allow, deny = clusterwide.render_calico_policies(plan())

    assert tier["kind"] == "Tier"
    assert tier["spec"]["defaultAction"] == "Pass"
    assert allow["spec"]["tier"] == deny["spec"]["tier"] == tier["metadata"]["name"]
    assert allow["metadata"]["name"].startswith(f"{tier['metadata']['name']}.")
    assert deny["metadata"]["name"].startswith(f"{tier['metadata']['name']}.")


def test_calico_allow_before_deny():
    _, allow, deny = clusterwide.render_calico_policies(plan())

    assert allow["spec"]["order"] < deny["spec"]["order"]
    assert allow["spec"]["egress"] == [
        {
            "action": "Allow",
            "protocol": "TCP",
            "destination": {"nets": ["64.12.0.0/16"], "ports": [5190]},
        }
    ]
    assert allow["spec"]["selector"] == (
        "app.kubernetes.io/instance == 'aim' && app.kubernetes.io/name == 'imtegrity-proxy' "
        "&& projectcalico.org/namespace == 'imtegrity'"
    )


def test_calico_deny_then_pass():
    *_, deny = clusterwide.render_calico_policies(plan())

    assert deny["spec"]["types"] == ["Egress"]
    assert deny["spec"]["egress"] == [
        {"action": "Deny", "destination": {"nets": cidrs.texts(BLOCKED)}},
        {"action": "Pass"},
    ]
    assert deny["spec"]["selector"] == (
        "has(projectcalico.org/namespace) && projectcalico.org/namespace not in {'kube-system'}"
    )
