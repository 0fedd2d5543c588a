"""The proxy's PodDisruptionBudget."""

from __future__ import annotations

from typing import Any

from imtegrity_operator.render.meta import Owner, object_meta, selector_labels


def render_disruption_budget(owner: Owner) -> dict[str, Any]:
    """Return a budget that lets voluntary evictions take one proxy pod at a time.

    With one replica a node drain can still evict the pod, which then gets its
    shutdown grace period, so the budget does not block drains.
    """
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(owner, owner.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(owner)}},
    }
