"""The IMtegrityProxy resource's spec as a pydantic model.

The operator validates every spec with ``ProxySpec`` before it renders anything,
and ``imtegrity_operator.crd`` builds the CRD's OpenAPI schema from the same
model, so the API server and the operator check the same rules.

The operator's own fields use Kubernetes' camelCase names. The sections copied
from the proxy's config model (``upstream``, ``relay``, ``policy``, ``logging``
and the tuning fields of ``archive``) keep the config file's snake_case names,
so a section of a config file can be pasted into a resource unchanged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from imtegrity_proxy.config import (
    AdvertiseConfig,
    ArchiveConfig,
    Config,
    LoggingConfig,
    PolicyConfig,
    RelayConfig,
    UpstreamConfig,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    create_model,
    field_validator,
    model_validator,
)

__all__ = [
    "ArchiveSpec",
    "DnsSpec",
    "EgressSpec",
    "ProxySpec",
    "ResourcesSpec",
    "SpecError",
    "parse_spec",
]

# Kubernetes resource quantity, as in k8s.io/apimachinery/pkg/api/resource.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
QUANTITY_MAX_LENGTH = 64
# RFC 1123 label (a namespace name) and subdomain (a host or storage class name).
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Longest IPv6 CIDR text, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128".
CIDR_MAX_LENGTH = 43

AOL_CIDRS = ["64.12.0.0/16", "152.163.0.0/16", "205.188.0.0/16"]
AOL_LOGIN_HOSTNAMES = ["login.oscar.aol.com", "login.messaging.aol.com"]


class SpecError(Exception):
    """An IMtegrityProxy spec that the operator cannot run.

    ``errors`` lists one line per problem, each starting with the field's path
    from the resource root, for example ``spec.ports[0]: ...``.
    """

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("; ".join(self.errors))


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"invalid CIDR {value!r}: expected a form such as 64.12.0.0/16") from None
    return value


def _check_quantity_text(value: int | str) -> int | str:
    if isinstance(value, str) and len(value) > QUANTITY_MAX_LENGTH:
        raise ValueError(f"quantity is longer than {QUANTITY_MAX_LENGTH} characters")
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"invalid quantity {value!r}: expected a form such as 500m or 1Gi")
    return value


Cidr = Annotated[
    str,
    Field(
        max_length=CIDR_MAX_LENGTH,
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "isCIDR(self)",
                    "message": "must be a CIDR such as 64.12.0.0/16 or 2001:db8::/32",
                }
            ]
        },
    ),
    AfterValidator(_check_cidr),
]
NamespaceName = Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]
HostName = Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity_text),
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            # Bounds the cost the API server estimates for the rule below.
            "maxLength": QUANTITY_MAX_LENGTH,
            "x-kubernetes-validations": [
                {
                    "rule": "isQuantity(string(self))",
                    "message": "must be a quantity such as 500m, 2 or 1Gi",
                }
            ],
        }
    ),
]


def _as_set(max_items: int) -> dict[str, Any]:
    """Return schema keys for a list of unique scalars (the API server checks uniqueness)."""
    return {"x-kubernetes-list-type": "set", "maxItems": max_items}


def _reject_duplicates(values: list[Any]) -> list[Any]:
    duplicates = sorted({str(value) for value in values if values.count(value) > 1})
    if duplicates:
        raise ValueError(f"duplicate values {duplicates}")
    return values


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, validate_default=True)


class _ArchiveStorage(_Spec):
    storage_size: Annotated[str, Field(pattern=QUANTITY_PATTERN)] = Field(
        default="10Gi",
        alias="storageSize",
        description="Size of the PersistentVolumeClaim that holds the SQLite archive.",
    )
    storage_class_name: HostName | None = Field(
        default=None,
        alias="storageClassName",
        description=(
            "StorageClass of the archive's PersistentVolumeClaim; null uses the cluster's "
            "default StorageClass."
        ),
    )


# The archive section adds the proxy's archive tuning fields (every field of
# ArchiveConfig except path, which the operator sets to the volume's mount point)
# to the storage fields, so a new archive setting in the proxy reaches the CRD.
ArchiveSpec = create_model(  # type: ignore[call-overload]
    "ArchiveSpec",
    __base__=_ArchiveStorage,
    __doc__="The message archive: its volume and the proxy's commit settings.",
    **{
        name: (field.annotation, field)
        for name, field in ArchiveConfig.model_fields.items()
        if name != "path"
    },
)


class ResourcesSpec(_Spec):
    """CPU and memory for the proxy container, as in a container's resources field."""

    requests: dict[str, Quantity] = Field(
        default={"cpu": "100m", "memory": "128Mi"},
        max_length=16,
        description="Resources the scheduler reserves for each proxy pod, by resource name.",
    )
    limits: dict[str, Quantity] = Field(
        default={"memory": "512Mi"},
        max_length=16,
        description="Upper bound on each proxy pod's use, by resource name.",
    )


class EgressSpec(_Spec):
    """Network policy that makes the proxy the only way out to the AIM servers."""

    deny_other_pods: bool = Field(
        default=True,
        alias="denyOtherPods",
        description="Stop every pod except the proxy's from reaching blockedCIDRs.",
    )
    blocked_cidrs: Annotated[list[Cidr], AfterValidator(_reject_duplicates)] = Field(
        default=AOL_CIDRS,
        alias="blockedCIDRs",
        json_schema_extra=_as_set(64),
        description="Address blocks of the AIM servers that only the proxy may reach.",
    )
    exempt_namespaces: Annotated[list[NamespaceName], AfterValidator(_reject_duplicates)] = Field(
        default=["kube-system"],
        alias="exemptNamespaces",
        json_schema_extra=_as_set(64),
        description="Namespaces whose pods keep their access to blockedCIDRs.",
    )
    enforcement: Literal[
        "auto", "networkpolicy", "clusternetworkpolicy", "adminnetworkpolicy", "cilium", "calico"
    ] = Field(
        default="auto",
        description=(
            "Policy API used to block egress: auto picks the best one the cluster "
            "serves and enforces; the others force NetworkPolicy, ClusterNetworkPolicy "
            "(AdminNetworkPolicy where only that is served), AdminNetworkPolicy, or the "
            "Cilium or Calico policy resources. A kind that the API server does not "
            "serve falls back to NetworkPolicy."
        ),
    )


class DnsSpec(_Spec):
    """Cluster DNS answers that send the AIM login host names to the proxy."""

    override: bool = Field(
        default=True,
        description="Make cluster DNS answer hostnames with the proxy Service's address.",
    )
    hostnames: Annotated[list[HostName], AfterValidator(_reject_duplicates)] = Field(
        default=AOL_LOGIN_HOSTNAMES,
        json_schema_extra=_as_set(32),
        description="Host names that resolve to the proxy inside the cluster.",
    )
    mode: Literal["auto", "coredns-custom", "corefile"] = Field(
        default="auto",
        description=(
            "How CoreDNS is changed: auto detects the distribution; coredns-custom writes "
            "the coredns-custom ConfigMap; corefile edits the Corefile in the coredns "
            "ConfigMap."
        ),
    )


def _proxy_section(model: type[BaseModel], section: str) -> Any:
    """Return a field for a section copied from the proxy's config model.

    The schema default is an empty object, so the API server fills in every
    nested default and ``kubectl get -o yaml`` shows the effective settings.
    """
    return Field(
        default_factory=model,
        description=Config.model_fields[section].description,
        json_schema_extra={"default": {}},
    )


def _object_default() -> dict[str, Any]:
    return {"default": {}}


class ProxySpec(_Spec):
    """Desired state of an IMtegrity proxy."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    # has() guards the CRD's own default, {}, which the API
                    # server validates before defaulting the nested fields.
                    "rule": (
                        "!has(self.healthPort) || !has(self.ports) || "
                        "!(self.healthPort in self.ports)"
                    ),
                    "message": "healthPort must differ from every port in ports",
                    "fieldPath": ".healthPort",
                }
            ]
        }
    )

    replicas: int = Field(
        default=1,
        ge=0,
        description=(
            "Number of proxy pods. The SQLite archive has a single writer, so the "
            "operator rejects values above 1."
        ),
    )
    image: str = Field(
        default="",
        max_length=512,
        description="Proxy container image; empty uses the operator's default proxy image.",
    )
    ports: Annotated[list[Port], AfterValidator(_reject_duplicates)] = Field(
        default=[5190, 443],
        min_length=1,
        json_schema_extra=_as_set(16),
        description=(
            "TCP ports that AIM clients connect to, on the Service and the proxy. "
            "Ports below 1024 add the NET_BIND_SERVICE capability."
        ),
    )
    health_port: Port = Field(
        default=8080,
        alias="healthPort",
        description="Port of the proxy's /healthz, /readyz and /metrics server.",
    )
    advertise_host: str | None = Field(
        default=None,
        alias="advertiseHost",
        max_length=253,
        description=AdvertiseConfig.model_fields["host"].description,
    )
    upstream: UpstreamConfig = _proxy_section(UpstreamConfig, "upstream")
    relay: RelayConfig = _proxy_section(RelayConfig, "relay")
    policy: PolicyConfig = _proxy_section(PolicyConfig, "policy")
    logging: LoggingConfig = _proxy_section(LoggingConfig, "logging")
    archive: ArchiveSpec = Field(  # type: ignore[valid-type]
        default_factory=ArchiveSpec,
        json_schema_extra=_object_default(),
        description="The message archive: its volume and the proxy's commit settings.",
    )
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec,
        json_schema_extra=_object_default(),
        description="CPU and memory requests and limits of the proxy container.",
    )
    egress: EgressSpec = Field(
        default_factory=EgressSpec,
        json_schema_extra=_object_default(),
        description="Network policy that stops other pods from reaching the AIM servers.",
    )
    dns: DnsSpec = Field(
        default_factory=DnsSpec,
        json_schema_extra=_object_default(),
        description="Cluster DNS override for the AIM login host names.",
    )

    @field_validator("advertise_host")
    @classmethod
    def _valid_advertise_host(cls, host: str | None) -> str | None:
        # Use the proxy's own check, so both accept the same hosts.
        try:
            return AdvertiseConfig(host=host).host
        except ValidationError as error:
            reason = error.errors(include_url=False)[0]["msg"]
            raise ValueError(reason.removeprefix("Value error, ")) from None

    @model_validator(mode="after")
    def _health_port_free(self) -> ProxySpec:
        if self.health_port in self.ports:
            raise ValueError("healthPort must differ from every port in ports")
        return self


def _format_location(location: tuple[int | str, ...]) -> str:
    path = "spec"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _join(base: str, relative: str) -> str:
    return base + relative if relative.startswith("[") else f"{base}.{relative}"


def format_validation_error(error: ValidationError) -> list[str]:
    """Turn pydantic's errors into lines such as ``spec.ports[0]: reason``."""
    lines = []
    for detail in error.errors(include_url=False):
        location = _format_location(detail["loc"])
        if detail["type"] == "field_problems":
            # The proxy's config models report several fields in one error.
            for relative, reason in detail["ctx"]["problems"]:
                lines.append(f"{_join(location, relative)}: {reason}")
        elif detail["type"] == "extra_forbidden":
            lines.append(f"{location}: unknown field")
        else:
            lines.append(f"{location}: {detail['msg'].removeprefix('Value error, ')}")
    return lines


def parse_spec(data: Mapping[str, Any] | None) -> ProxySpec:
    """Validate a resource's spec into a ``ProxySpec``; raise ``SpecError``."""
    try:
        return ProxySpec.model_validate(dict(data or {}))
    except ValidationError as error:
        raise SpecError(format_validation_error(error)) from None
