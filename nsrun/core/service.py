"""The Service v1 subset nsrun runs, its loader and its validation (pure).

A Service is stored as the API server would return it: ``decode_service`` applies the
API server's defaulting (``type: ClusterIP``, ``sessionAffinity: None``, ``protocol: TCP``,
``targetPort`` = ``port``), ``validate_service`` returns every problem with Kubernetes' field
paths and messages (``ValidateService``, ``validateServicePort``); the ClusterIP itself is
checked against the service CIDR and the allocations by ``nsrun.core.netconfig``.

What nsrun does not model: ``NodePort``, ``LoadBalancer`` and ``ExternalName`` Services,
``ClientIP`` session affinity, external IPs and IPv6 (each refused with "not supported by
nsrun" rather than ignored).
"""

from __future__ import annotations

from typing import Any

import msgspec

from nsrun.core import fielderrors as v
from nsrun.core import rawstrings
from nsrun.core.fielderrors import (
    forbidden,
    invalid,
    max_len,
    not_supported,
    regex_error,
    required,
    validate_labels,
)
from nsrun.core.podnet import IP_MSG, _go_strings, is_ip
from nsrun.core.schema import (
    NOT_SUPPORTED,
    POLICIES,
    Findings,
    Policy,
    SpecWarning,
    problem_from_msgspec,
    walk,
)
from nsrun.core.spec import ObjectMeta
from nsrun.errors import Problem, SpecError

HEADLESS = "None"
SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
PROTOCOLS = ("SCTP", "TCP", "UDP")
AFFINITIES = ("ClientIP", "None")


class _V(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True,
         omit_defaults=True):
    """Base of the Service objects (the same encoding as the Pod's)."""


class ServicePort(_V):
    name: str | None = None
    protocol: str | None = None
    port: int = 0
    target_port: int | str | None = None
    node_port: int | None = None
    app_protocol: str | None = None


class ServiceSpec(_V):
    type: str | None = None
    cluster_ip: str | None = msgspec.field(default=None, name="clusterIP")
    cluster_ips: list[str] | None = msgspec.field(default=None, name="clusterIPs")
    selector: dict[str, str] | None = None
    ports: list[ServicePort] | None = None
    session_affinity: str | None = None
    publish_not_ready_addresses: bool | None = None
    internal_traffic_policy: str | None = None
    ip_families: list[str] | None = None
    ip_family_policy: str | None = None


class Service(_V):
    api_version: str = "v1"
    kind: str = "Service"
    metadata: ObjectMeta = msgspec.field(default_factory=ObjectMeta)
    spec: ServiceSpec = msgspec.field(default_factory=ServiceSpec)

    @property
    def headless(self) -> bool:
        return self.spec.cluster_ip == HEADLESS


_REJECT = Policy("reject")
_POLICIES = {
    ObjectMeta: POLICIES[ObjectMeta],
    Service: {"status": Policy("drop")},
    ServiceSpec: {
        **{k: _REJECT for k in ("externalIPs", "externalName", "loadBalancerIP",
                                "loadBalancerSourceRanges", "loadBalancerClass",
                                "healthCheckNodePort", "sessionAffinityConfig",
                                "trafficDistribution")},
        "externalTrafficPolicy": Policy("reject", neutral=("", "Cluster")),
        "allocateLoadBalancerNodePorts": Policy("drop"),
    },
}


def decode_service(doc: dict[str, Any], source: str = "") -> tuple[Service, list[SpecWarning]]:
    """One Service object (plain data) -> a defaulted ``Service`` and its warnings; an
    unknown or unsupported field is a ``SpecError`` naming it."""
    rawstrings.check(doc, source, "Service")
    meta = doc.get("metadata")
    name = meta.get("name", "") if isinstance(meta, dict) else ""
    found = Findings()
    clean = walk(doc, Service, "", found, _POLICIES)
    if found.problems:
        raise SpecError(found.problems, pod=str(name), source=source, kind="Service")
    try:
        svc = msgspec.convert(clean, Service)
    except msgspec.ValidationError as err:
        raise SpecError([problem_from_msgspec(str(err))], pod=str(name), source=source,
                        kind="Service") from None
    return apply_defaults(svc), found.warnings


def apply_defaults(svc: Service) -> Service:
    """The API server's defaulting, in place (and returned)."""
    spec = svc.spec
    spec.type = spec.type or "ClusterIP"
    spec.session_affinity = spec.session_affinity or "None"
    spec.internal_traffic_policy = spec.internal_traffic_policy or "Cluster"
    if spec.cluster_ip and not spec.cluster_ips:
        spec.cluster_ips = [spec.cluster_ip]
    elif spec.cluster_ips and not spec.cluster_ip:
        spec.cluster_ip = spec.cluster_ips[0]
    for port in spec.ports or ():
        port.protocol = port.protocol or "TCP"
        if port.target_port in (None, 0, ""):
            port.target_port = port.port
    return svc


# ---------------------------------------------------------------- validation


def validate_service(svc: Service) -> list[Problem]:
    """Every problem with ``svc`` (already defaulted), in Kubernetes' words."""
    out: list[Problem] = []
    meta, spec = svc.metadata, svc.spec
    if not meta.name:
        out.append(v.required("metadata.name", "name or generateName is required"))
    else:
        out += [v.invalid("metadata.name", meta.name, m) for m in dns1035_label(meta.name)]
    out += [v.invalid("metadata.namespace", meta.namespace, m)
            for m in v.dns1123_label(meta.namespace)]
    out += v.validate_labels(meta.labels, "metadata.labels")
    out += _type(spec)
    out += _cluster_ips(spec)
    out += _ports(svc)
    out += _selector(spec.selector or {})
    if spec.session_affinity not in AFFINITIES:
        out.append(v.not_supported("spec.sessionAffinity", spec.session_affinity, AFFINITIES))
    elif spec.session_affinity == "ClientIP":
        out.append(v.forbidden("spec.sessionAffinity", NOT_SUPPORTED))
    if spec.internal_traffic_policy not in ("Cluster", "Local"):
        out.append(v.not_supported("spec.internalTrafficPolicy",
                                   spec.internal_traffic_policy, ("Cluster", "Local")))
    out += _families(spec)
    return out


def check(svc: Service, source: str = "") -> None:
    problems = validate_service(svc)
    if problems:
        raise SpecError(problems, pod=svc.metadata.name, source=source, kind="Service")


DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
               "start with an alphabetic character, and end with an alphanumeric character")


def dns1035_label(value: str) -> list[str]:
    errs = [max_len(63)] if len(value) > 63 else []
    ok = (value[:1].isascii() and value[:1].isalpha() and value[:1].islower()
          and all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in value)
          and value[-1] != "-")
    if not ok:
        errs.append(regex_error(DNS1035_MSG, DNS1035_FMT, "my-name", "abc-123"))
    return errs


def _type(spec: ServiceSpec) -> list[Problem]:
    if spec.type not in SERVICE_TYPES:
        return [not_supported("spec.type", spec.type, SERVICE_TYPES)]
    if spec.type != "ClusterIP":
        return [forbidden("spec.type", f"{NOT_SUPPORTED}: {spec.type}")]
    return []


def _cluster_ips(spec: ServiceSpec) -> list[Problem]:
    ips = spec.cluster_ips or []
    out: list[Problem] = []
    if spec.cluster_ip and ips and ips[0] != spec.cluster_ip:
        out.append(Problem("spec.clusterIPs", "Invalid value",
                           f"{_go_strings(ips)}: first value must match `clusterIP`"))
    for i, ip in enumerate(ips):
        if ip == HEADLESS and i == 0:
            continue
        if not is_ip(ip):
            out.append(invalid(f"spec.clusterIPs[{i}]", ip, IP_MSG))
        elif ":" in ip:
            out.append(forbidden(f"spec.clusterIPs[{i}]", f"{NOT_SUPPORTED}: IPv6"))
    if len(ips) > 1:
        out.append(forbidden("spec.clusterIPs", f"{NOT_SUPPORTED}: dual-stack Services"))
    return out


def _ports(svc: Service) -> list[Problem]:
    ports = svc.spec.ports or []
    if not ports:
        return [] if svc.headless else [required("spec.ports")]
    out: list[Problem] = []
    names: set[str] = set()
    keys: set[tuple[int, str]] = set()
    for i, port in enumerate(ports):
        out += _port(port, f"spec.ports[{i}]", len(ports) > 1, names)
        key = (port.port, port.protocol or "TCP")
        if key in keys:
            out.append(Problem(f"spec.ports[{i}]", "Duplicate value",
                               f'core.ServicePortKey{{Port:{key[0]}, Protocol:"{key[1]}"}}'))
        keys.add(key)
    return out


def _port(port: ServicePort, path: str, named: bool, names: set[str]) -> list[Problem]:
    out: list[Problem] = []
    if named and not port.name:
        out.append(v.required(f"{path}.name"))
    elif port.name:
        out += [v.invalid(f"{path}.name", port.name, m) for m in v.dns1123_label(port.name)]
        if port.name in names:
            out.append(v.duplicate(f"{path}.name", port.name))
        names.add(port.name)
    out += [v.invalid(f"{path}.port", port.port, m) for m in v.port_number(port.port)]
    if port.protocol not in PROTOCOLS:
        out.append(v.not_supported(f"{path}.protocol", port.protocol, PROTOCOLS))
    elif port.protocol == "SCTP":
        out.append(v.forbidden(f"{path}.protocol", f"{NOT_SUPPORTED}: SCTP"))
    target = port.target_port
    if isinstance(target, int):
        out += [v.invalid(f"{path}.targetPort", target, m) for m in v.port_number(target)]
    elif isinstance(target, str):
        out += [v.invalid(f"{path}.targetPort", target, m) for m in v.port_name(target)]
    if port.node_port:
        out.append(v.forbidden(f"{path}.nodePort",
                               "may not be used when `type` is 'ClusterIP'"))
    return out


def _selector(selector: dict[str, str]) -> list[Problem]:
    return validate_labels(selector, "spec.selector")


def _families(spec: ServiceSpec) -> list[Problem]:
    out: list[Problem] = []
    if any(f != "IPv4" for f in spec.ip_families or ()):
        out.append(forbidden("spec.ipFamilies", f"{NOT_SUPPORTED}: IPv6"))
    if spec.ip_family_policy not in (None, "", "SingleStack"):
        out.append(forbidden("spec.ipFamilyPolicy", f"{NOT_SUPPORTED}: dual-stack Services"))
    return out


def port_label(port: ServicePort) -> str:
    """``80/TCP``: a port as ``get svc`` prints it."""
    return f"{port.port}/{port.protocol or 'TCP'}"
