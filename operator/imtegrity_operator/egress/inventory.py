"""The IMtegrityProxy resources of the cluster, as the cluster-wide passes see them.

Egress denial and the DNS override are shared by every proxy in the cluster,
so each pass starts from all of them, oldest first: the oldest resource's
choices win where proxies disagree. A resource that is being deleted no
longer counts, which is how its cluster-wide objects disappear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from imtegrity_proxy.config import UpstreamConfig
from pydantic import ValidationError

from imtegrity_operator.render.meta import Owner
from imtegrity_operator.spec import DnsSpec, EgressSpec


@dataclass(frozen=True)
class ProxyEntry:
    """One live IMtegrityProxy: its identity, age and the spec sections the passes read.

    ``problem`` is set when a section failed validation; its defaults are
    used instead, so a typo elsewhere does not lift the egress denial.
    """

    owner: Owner
    created: str
    generation: int
    egress: EgressSpec
    dns: DnsSpec
    upstream: UpstreamConfig
    problem: str = ""

    @property
    def key(self) -> str:
        return f"{self.owner.namespace}/{self.owner.name}"

    @property
    def age_key(self) -> tuple[str, str, str]:
        # creationTimestamp has one-second resolution; the name breaks ties.
        return (self.created, self.owner.namespace, self.owner.name)


def _section(model: Any, data: Any, field: str, problems: list[str]) -> Any:
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as error:
        problems.append(f"spec.{field}: {error.errors(include_url=False)[0]['msg']}")
        return model()


def entry_from_body(body: Mapping[str, Any]) -> ProxyEntry:
    """Read one resource; invalid sections fall back to their defaults and set ``problem``."""
    metadata = body["metadata"]
    spec = body.get("spec") or {}
    problems: list[str] = []
    egress = _section(EgressSpec, spec.get("egress"), "egress", problems)
    dns = _section(DnsSpec, spec.get("dns"), "dns", problems)
    upstream = _section(UpstreamConfig, spec.get("upstream"), "upstream", problems)
    return ProxyEntry(
        owner=Owner.from_body(body),
        created=metadata.get("creationTimestamp") or "",
        generation=metadata.get("generation", 0),
        egress=egress,
        dns=dns,
        upstream=upstream,
        problem="; ".join(problems),
    )


def live_entries(bodies: Iterable[Mapping[str, Any]]) -> list[ProxyEntry]:
    """Return the resources that are not being deleted, oldest first."""
    entries = [
        entry_from_body(body)
        for body in bodies
        if not (body.get("metadata") or {}).get("deletionTimestamp")
    ]
    return sorted(entries, key=lambda entry: entry.age_key)
