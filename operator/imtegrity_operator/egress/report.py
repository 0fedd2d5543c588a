"""The EgressEnforced condition: what the last egress pass achieved, for one proxy.

Status True means: every non-exempt namespace is covered, no existing policy
leaves a blocked CIDR open, no host-network pod sits outside the exempt
namespaces, every write succeeded, and a DaemonSet of a plugin that enforces
the chosen kind was found. Anything else is False, and the message lists it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imtegrity_operator.egress import cidrs
from imtegrity_operator.egress.inventory import ProxyEntry
from imtegrity_operator.egress.sync import EgressResult

CONDITION_TYPE = "EgressEnforced"
# Items listed by name in a message before "and N more".
MAX_LISTED = 20


def listing(items: Sequence[str], limit: int = MAX_LISTED) -> str:
    """Join ``items`` with commas; past ``limit``, name the rest by count."""
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown or "none"


def condition(status: str, reason: str, message: str, generation: int) -> dict[str, Any]:
    return {
        "type": CONDITION_TYPE,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    }


def _summary(result: EgressResult, entry: ProxyEntry) -> list[str]:
    """Return the message parts that describe what the pass did."""
    plan = result.plan
    assert plan.enforcement is not None  # set whenever a proxy takes part
    parts = [
        f"enforced with {plan.enforcement.describe()}",
        f"blocked CIDRs {listing(cidrs.texts(plan.blocked))}",
        f"exempt namespaces {listing(plan.exempt)}",
        f"covered namespaces ({len(plan.covered_namespaces)}): {listing(plan.covered_namespaces)}",
    ]
    if len(plan.participants) > 1:
        parts.append(
            f"settings merged from {len(plan.participants)} IMtegrityProxy resources; "
            f"the oldest, {plan.participants[0].key}, chose the enforcement"
        )
    if entry.problem:
        parts.append(f"invalid sections replaced by their defaults: {entry.problem}")
    return parts


def _findings(result: EgressResult) -> tuple[list[str], list[str]]:
    """Return (reasons, message parts) of every problem, the most serious first."""
    plan = result.plan
    enforcement = plan.enforcement
    assert enforcement is not None  # set whenever a proxy takes part
    reasons: list[str] = []
    parts: list[str] = []
    if result.errors:
        reasons.append("WriteFailed")
        parts.append(f"failed writes: {listing(result.errors, 5)}")
    if enforcement.problem:
        reasons.append("EnforcementUnavailable")
        parts.append(enforcement.problem)
    if plan.uncovered:
        reasons.append("NamespacesNotCovered")
        uncovered = [f"{name} ({why})" for name, why in sorted(plan.uncovered.items())]
        parts.append(f"namespaces not covered: {listing(uncovered, 5)}")
    if plan.bypasses:
        reasons.append("BypassFound")
        parts.append(
            "policies that leave blocked CIDRs open: "
            + listing([bypass.describe() for bypass in plan.bypasses], 10)
        )
    if plan.host_network_pods:
        reasons.append("BypassFound")
        parts.append(
            "host-network pods, which no pod policy applies to: " + listing(plan.host_network_pods)
        )
    if enforcement.agent is None:
        reasons.append("EnforcementUnconfirmed")
        parts.append(
            "no DaemonSet of a network plugin known to enforce this kind was found, "
            "so the policies may be stored but not applied"
        )
    return reasons, parts


def egress_condition(
    entry: ProxyEntry, result: EgressResult | None, error: str, generation: int
) -> dict[str, Any]:
    """Return the EgressEnforced condition of one proxy after a pass.

    ``error`` is set when the pass could not read the cluster; ``result``
    is None when no pass has finished yet.
    """
    if not entry.egress.deny_other_pods:
        message = "spec.egress.denyOtherPods is false: other pods are not stopped"
        return condition("False", "Disabled", message, generation)
    if error:
        return condition("Unknown", "CheckFailed", error, generation)
    participants = {p.owner.uid for p in result.plan.participants} if result else set()
    if entry.owner.uid not in participants:
        return condition("Unknown", "Pending", "the egress pass has not run yet", generation)
    reasons, problems = _findings(result)
    message = "; ".join([*_summary(result, entry), *problems])
    if reasons:
        return condition("False", reasons[0], message, generation)
    return condition("True", "Enforced", message, generation)
