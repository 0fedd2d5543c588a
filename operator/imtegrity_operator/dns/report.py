"""The DNSOverridden condition: which of a proxy's host names cluster DNS answers, and why not.

Status True means every host name of the proxy gets the proxy's Service
address from CoreDNS and nothing in the cluster defeats that. Otherwise it is
False, with the first problem as the reason and all of them in the message.
"""

from __future__ import annotations

from typing import Any

from imtegrity_operator.dns.plan import MODE_COREFILE, DnsPlan
from imtegrity_operator.dns.sync import DnsResult
from imtegrity_operator.egress.inventory import ProxyEntry
from imtegrity_operator.egress.report import listing

CONDITION_TYPE = "DNSOverridden"

WHERE = {
    MODE_COREFILE: "the marked section of the Corefile in ConfigMap kube-system/coredns",
    "coredns-custom": "key imtegrity.server of ConfigMap kube-system/coredns-custom",
}


def condition(status: str, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": CONDITION_TYPE,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _hostname_findings(plan: DnsPlan, entry: ProxyEntry) -> tuple[list[str], list[str]]:
    reasons: list[str] = []
    answered, parts = [], []
    for hostname in entry.dns.hostnames:
        name = hostname.rstrip(".").lower()
        owner = plan.owners.get(name)
        if owner is not None and owner.owner.uid != entry.owner.uid:
            reasons.append("HostnameConflict")
            parts.append(f"{name} is answered for the older IMtegrityProxy {owner.key}")
        elif name in plan.taken:
            reasons.append("HostnameTaken")
            parts.append(f"{name} is left alone: a zone for it is defined in {plan.taken[name]}")
        elif name in plan.answers:
            answered.append(f"{name} -> {', '.join(plan.answers[name])}")
        else:
            reasons.append("WaitingForServiceIP")
            parts.append(f"{name} waits for the proxy's Service to get a ClusterIP")
    if answered:
        parts.insert(0, f"answered in {WHERE[plan.mode]}: {listing(answered)}")
    return reasons, parts


def dns_condition(
    entry: ProxyEntry, result: DnsResult | None, error: str, generation: int
) -> dict[str, Any]:
    """Return the DNSOverridden condition of one proxy after a pass.

    ``error`` is set when the pass could not read the cluster; ``result``
    is None when no pass has finished yet.
    """
    if not entry.dns.override:
        message = "spec.dns.override is false: cluster DNS is not changed"
        return condition("False", "Disabled", message, generation)
    if error:
        return condition("Unknown", "CheckFailed", error, generation)
    participants = {p.owner.uid for p in result.plan.participants} if result else set()
    if result is None or entry.owner.uid not in participants:
        return condition("Unknown", "Pending", "the DNS pass has not run yet", generation)
    plan = result.plan
    reasons: list[str] = []
    parts: list[str] = []
    if plan.problem is not None:
        reasons.append(plan.problem.reason)
        parts.append(plan.problem.message)
    hostname_reasons, hostname_parts = _hostname_findings(plan, entry)
    reasons += hostname_reasons
    parts += hostname_parts
    for defeat in plan.defeats:
        reasons.append(defeat.reason)
        parts.append(defeat.message)
    if result.errors:
        reasons.insert(0, "WriteFailed")
        parts.append(f"failed writes: {listing(result.errors, 5)}")
    message = "; ".join(parts)
    if reasons:
        return condition("False", reasons[0], message, generation)
    return condition("True", "Overridden", message, generation)
