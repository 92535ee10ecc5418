"""Pod validation with Kubernetes' rules, field paths and messages (pure).

Owns what the API server would check before a kubelet ever sees the pod (nsrun has no API
server in front of it): ``validate(pod)`` returns every problem at once, in the order
``ValidatePodCreate`` reports them (metadata, volumes, containers, init containers, pod
fields, then image whitespace); ``check(pod, source)`` raises them as one ``SpecError``.

The rules are those of Kubernetes' ``pkg/apis/core/validation``: names required and
DNS-1123, unique across init and app containers, image required, lifecycle/probes forbidden on
init containers without ``restartPolicy: Always``, restart policies, ``activeDeadlineSeconds``
range, probe rules, volume mounts naming existing volumes, requests <= limits, host port
conflicts, Downward API paths, pod-level resources. nsrun adds one kind of rule: a resource it
cannot enforce (hugepages, extended resources) is "not supported by nsrun". This module owns the
entry points, metadata and pod-wide fields; containers are ``core.validcontainers``, volumes,
security contexts and resources ``core.validfields``, messages ``core.fielderrors``.
"""

from __future__ import annotations

from collections.abc import Collection

import msgspec

from nsrun.core import capabilities as capnames
from nsrun.core import podnet, rawstrings, resources
from nsrun.core.defaults import apply_defaults
from nsrun.core.fielderrors import (
    MAX_INT32,
    MAX_INT64,
    dns1123_subdomain,
    forbidden,
    inclusive_range,
    invalid,
    label_check,
    nonnegative,
    not_supported,
    qualified_name,
    required,
    validate_labels,
)
from nsrun.core.schema import NOT_SUPPORTED, problem_from_msgspec
from nsrun.core.spec import ObjectMeta, Pod, all_containers
from nsrun.core.validcontainers import check_containers, check_init_containers
from nsrun.core.validfields import (
    check_volumes,
    pod_security_context,
    resource_list,
    resource_requirements,
)
from nsrun.errors import Problem, SpecError

# ---------------------------------------------------------------- entry points


def validate(pod: Pod, capabilities: Collection[str] | None = None) -> list[Problem]:
    """Every problem with ``pod``, with Kubernetes field paths and messages (checked after
    the API server's defaulting, as Kubernetes does; ``pod`` itself is not changed).
    ``capabilities``: the names the kernel has (``securityContext.capabilities`` must name
    them; ``nsrun.native.CAPABILITIES``), None to leave names unchecked. A string with a
    surrogate or a NUL byte is the only problem reported when there is one."""
    raw = rawstrings.problems(msgspec.to_builtins(pod))
    if raw:
        return raw
    pod = _defaulted(pod)
    problems = _metadata(pod.metadata)
    volumes, found = check_volumes(pod.spec.volumes)
    problems += found
    problems += check_containers(pod, volumes)
    problems += check_init_containers(pod, volumes)
    problems += _pod_fields(pod)
    problems += _capability_names(pod, capabilities) if capabilities is not None else []
    problems += _image_whitespace(pod)
    return problems


def check(pod: Pod, source: str = "", capabilities: Collection[str] | None = None) -> None:
    """Raise every problem with ``pod`` as one ``SpecError`` (kubectl's shape)."""
    problems = validate(pod, capabilities)
    if problems:
        raise SpecError(problems, pod=pod.metadata.name, source=source)


def _defaulted(pod: Pod) -> Pod:
    try:
        return apply_defaults(msgspec.convert(msgspec.to_builtins(pod), Pod))
    except msgspec.ValidationError as err:  # a Pod built in code with wrong types
        raise SpecError([problem_from_msgspec(str(err))], pod=pod.metadata.name) from None


# ---------------------------------------------------------------- metadata


def _metadata(meta: ObjectMeta) -> list[Problem]:
    out: list[Problem] = []
    if not meta.name:
        out.append(required("metadata.name", "name or generateName is required"))
    out += label_check(meta.name, "metadata.name", dns1123_subdomain)
    if not meta.namespace:
        out.append(required("metadata.namespace"))
    out += label_check(meta.namespace, "metadata.namespace")
    out += validate_labels(meta.labels, "metadata.labels")
    for key in meta.annotations:
        out += [invalid("metadata.annotations", key, m) for m in qualified_name(key.lower())]
    return out


def _capability_names(pod: Pod, known: Collection[str]) -> list[Problem]:
    out: list[Problem] = []
    for key, i, c in all_containers(pod):
        caps = c.security_context.capabilities if c.security_context else None
        if caps is not None:
            where = f"spec.{key}[{i}].securityContext.capabilities"
            out += capnames.problems(caps.add, caps.drop, where, known)
    return out


def _image_whitespace(pod: Pod) -> list[Problem]:
    out: list[Problem] = []
    for key, cs in (("containers", pod.spec.containers), ("initContainers",
                                                          pod.spec.init_containers)):
        for i, c in enumerate(cs):
            if c.image != c.image.strip():
                out.append(invalid(f"spec.{key}[{i}].image", c.image,
                                   "must not have leading or trailing whitespace"))
    return out


# ---------------------------------------------------------------- pod fields


RESTART_POLICIES = ("Always", "OnFailure", "Never")


def _pod_fields(pod: Pod) -> list[Problem]:
    spec = pod.spec
    out = _host_network_ports(pod) + _restart_policy(spec.restart_policy)
    out += pod_security_context(spec.security_context, "spec.securityContext")
    out += label_check(spec.service_account_name, "spec.serviceAccountName", dns1123_subdomain)
    out += label_check(spec.node_name, "spec.nodeName", dns1123_subdomain)
    deadline = spec.active_deadline_seconds
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        out.append(invalid("spec.activeDeadlineSeconds", deadline, inclusive_range(1, MAX_INT32)))
    out += label_check(spec.hostname, "spec.hostname")
    out += label_check(spec.subdomain, "spec.subdomain")
    out += nonnegative(spec.termination_grace_period_seconds,
                        "spec.terminationGracePeriodSeconds", MAX_INT64)
    out += resource_list(spec.overhead, "spec.overhead")[1]
    out += podnet.validate_pod_network(spec, dns1123_subdomain)
    return out + _pod_resources(pod)


def _restart_policy(policy: str) -> list[Problem]:
    if policy == "":
        return [required("spec.restartPolicy")]
    if policy not in RESTART_POLICIES:
        return [not_supported("spec.restartPolicy", policy, RESTART_POLICIES)]
    return []


def _host_network_ports(pod: Pod) -> list[Problem]:
    if not pod.spec.host_network:
        return []
    out: list[Problem] = []
    for i, c in enumerate(pod.spec.containers):
        for j, port in enumerate(c.ports or ()):
            if port.host_port != port.container_port:
                out.append(invalid(f"spec.containers[{i}].ports[{j}].hostPort", port.host_port,
                                   "must match `containerPort` when `hostNetwork` is true"))
    return out


POD_LEVEL_NAMES = ("cpu", "hugepages-", "memory")


def _pod_level_name(name: str, path: str) -> list[Problem]:
    if name.startswith(resources.HUGEPAGES_PREFIX):
        return [forbidden(path, NOT_SUPPORTED)]
    if name not in (resources.CPU, resources.MEMORY):
        return [not_supported(path, name, POD_LEVEL_NAMES)]
    return []


def _pod_resources(pod: Pod) -> list[Problem]:
    res = pod.spec.resources
    if res is None:
        return []
    out = resource_requirements(res, "spec.resources", _pod_level_name)
    try:
        return out + _pod_resource_consistency(pod)
    except SpecError:
        return out


def _pod_resource_consistency(pod: Pod) -> list[Problem]:
    """Pod-level requests cover the containers' aggregate; no container limit exceeds the
    pod-level limit."""
    out: list[Problem] = []
    aggregated = resources.aggregate(pod, resources.container_requests).total
    for name, q in resources.pod_level(pod, "requests").items():
        if name in aggregated and aggregated[name] > q:
            out.append(invalid(f"spec.resources.requests[{name}]", q, "must be greater than or "
                               f"equal to aggregate container requests of {aggregated[name]}"))
    pod_limits = resources.pod_level(pod, "limits")
    for i, c in enumerate(pod.spec.containers):
        for name, q in resources.container_limits(c).items():
            if name in pod_limits and q > pod_limits[name]:
                out.append(invalid(f"spec.containers[{i}].resources.limits[{name}]", q,
                                   f"must be less than or equal to pod limits of "
                                   f"{pod_limits[name]}"))
    return out
