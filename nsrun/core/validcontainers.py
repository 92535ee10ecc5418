"""Pod validation of containers: names, ports, env, volume mounts, probes, handlers (pure).

Owns the per-container rules of ``ValidatePodCreate`` (app and init containers, with the
init-container restrictions), host port conflicts, the Downward API field paths
(``convert_field_label``), and probe and lifecycle handler rules. Pod-wide checks are in
``core.validate``.
"""

from __future__ import annotations

import re
from typing import Any

from nsrun.core.fielderrors import (
    HEADER_FMT,
    HEADER_MSG,
    INIT_FORBIDDEN,
    duplicate,
    env_var_name,
    forbidden,
    invalid,
    label_check,
    nonnegative,
    not_found,
    not_supported,
    port_name,
    port_number,
    qualified_name,
    quantity_field,
    regex_error,
    required,
)
from nsrun.core.spec import (
    Container,
    ContainerPort,
    EnvVar,
    ExecAction,
    HTTPGetAction,
    KeySelector,
    Lifecycle,
    ObjectFieldSelector,
    Pod,
    Probe,
    ResourceFieldSelector,
    VolumeMount,
)
from nsrun.core.validfields import local_descending_path, resource_requirements, security_context
from nsrun.errors import Problem

# ---------------------------------------------------------------- containers


def check_containers(pod: Pod, volumes: set[str]) -> list[Problem]:
    if not pod.spec.containers:
        return [required("spec.containers")]
    out: list[Problem] = []
    names: set[str] = set()
    for i, c in enumerate(pod.spec.containers):
        path = f"spec.containers[{i}]"
        out += _container_common(pod, c, path, volumes)
        if c.name in names:
            out.append(duplicate(f"{path}.name", c.name))
        names.add(c.name)
        out += _handlers_and_probes(c, path)
        if c.restart_policy is not None:
            out.append(forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
    return out + _host_port_conflicts(list(enumerate(pod.spec.containers)), "spec.containers")


def check_init_containers(pod: Pod, volumes: set[str]) -> list[Problem]:
    out: list[Problem] = []
    names = {c.name for c in pod.spec.containers}
    for i, c in enumerate(pod.spec.init_containers):
        path = f"spec.initContainers[{i}]"
        out += _container_common(pod, c, path, volumes)
        if c.restart_policy is not None and c.restart_policy != "Always":
            out.append(not_supported(f"{path}.restartPolicy", c.restart_policy, ["Always"]))
        if c.name in names:
            out.append(duplicate(f"{path}.name", c.name))
        elif c.name:
            names.add(c.name)
        out += _host_port_conflicts([(i, c)], "spec.initContainers")
        out += _handlers_and_probes(c, path) if c.restart_policy == "Always" \
            else _init_forbidden(c, path)
    return out


def _init_forbidden(c: Container, path: str) -> list[Problem]:
    fields = (("lifecycle", c.lifecycle), ("livenessProbe", c.liveness_probe),
              ("readinessProbe", c.readiness_probe), ("startupProbe", c.startup_probe))
    return [forbidden(f"{path}.{name}", INIT_FORBIDDEN) for name, v in fields if v is not None]


def _container_common(pod: Pod, c: Container, path: str, volumes: set[str]) -> list[Problem]:
    out = [required(f"{path}.name")] if not c.name else []
    out += label_check(c.name, f"{path}.name")
    out += [] if c.image else [required(f"{path}.image")]
    out += _termination_message_policy(c.termination_message_policy, path)
    out += _ports(c.ports or [], f"{path}.ports")
    out += _env(pod, c.env or [], f"{path}.env")
    out += _volume_mounts(c, volumes, f"{path}.volumeMounts")
    if c.image_pull_policy is not None and c.image_pull_policy not in PULL_POLICIES:
        out.append(not_supported(f"{path}.imagePullPolicy", c.image_pull_policy, PULL_POLICIES))
    out += resource_requirements(c.resources, f"{path}.resources")
    return out + security_context(c.security_context, f"{path}.securityContext")


PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")


def _termination_message_policy(policy: str | None, path: str) -> list[Problem]:
    where = f"{path}.terminationMessagePolicy"
    if policy == "":
        return [required(where, "must be 'File' or 'FallbackToLogsOnError'")]
    if policy is not None and policy not in MESSAGE_POLICIES:
        return [not_supported(where, policy, MESSAGE_POLICIES)]
    return []


# ---------------------------------------------------------------- ports


PROTOCOLS = ("SCTP", "TCP", "UDP")


def _ports(ports: list[ContainerPort], path: str) -> list[Problem]:
    out: list[Problem] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        where = f"{path}[{i}]"
        out += _port_name(port.name, names, f"{where}.name")
        if not port.container_port:
            out.append(required(f"{where}.containerPort"))
        else:
            out += [invalid(f"{where}.containerPort", port.container_port, m)
                    for m in port_number(port.container_port)]
        if port.host_port:
            out += [invalid(f"{where}.hostPort", port.host_port, m)
                    for m in port_number(port.host_port)]
        if not port.protocol:
            out.append(required(f"{where}.protocol"))
        elif port.protocol not in PROTOCOLS:
            out.append(not_supported(f"{where}.protocol", port.protocol, PROTOCOLS))
    return out


def _port_name(name: str | None, seen: set[str], path: str) -> list[Problem]:
    if not name:
        return []
    msgs = port_name(name)
    if msgs:
        return [invalid(path, name, m) for m in msgs]
    if name in seen:
        return [duplicate(path, name)]
    seen.add(name)
    return []


def _host_port_conflicts(containers: list[tuple[int, Container]], path: str) -> list[Problem]:
    """``AccumulateUniqueHostPorts``: protocol/hostIP/hostPort unique over ``containers``."""
    seen: set[str] = set()
    out: list[Problem] = []
    for ci, c in containers:
        for pi, port in enumerate(c.ports or ()):
            if not port.host_port:
                continue
            key = f"{port.protocol or ''}/{port.host_ip or ''}/{port.host_port}"
            if key in seen:
                out.append(duplicate(f"{path}[{ci}].ports[{pi}].hostPort", key))
            seen.add(key)
    return out


# ---------------------------------------------------------------- env


def _env(pod: Pod, env: list[EnvVar], path: str) -> list[Problem]:
    out: list[Problem] = []
    for i, var in enumerate(env):
        where = f"{path}[{i}]"
        if not var.name:
            out.append(required(f"{where}.name"))
        out += [invalid(f"{where}.name", var.name, m) for m in env_var_name(var.name)]
        out += _value_from(pod, var, f"{where}.valueFrom")
    return out


def _value_from(pod: Pod, var: EnvVar, path: str) -> list[Problem]:
    source = var.value_from
    if source is None:
        return []
    checks = [(source.field_ref, _field_ref, "fieldRef"),
              (source.resource_field_ref, _resource_field_ref, "resourceFieldRef"),
              (source.config_map_key_ref, _key_selector, "configMapKeyRef"),
              (source.secret_key_ref, _key_selector, "secretKeyRef")]
    present = [(ref, fn, name) for ref, fn, name in checks if ref is not None]
    out: list[Problem] = []
    for ref, fn, name in present:
        out += fn(pod, ref, f"{path}.{name}")
    if not present:
        out.append(invalid(path, "", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                     "`configMapKeyRef` or `secretKeyRef`"))
    elif var.value:
        out.append(invalid(path, "", "may not be specified when `value` is not empty"))
    elif len(present) > 1:
        out.append(invalid(path, "", "may not have more than one field specified at a time"))
    return out


ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs",
                   "status.podIP", "status.podIPs")
_CONVERTIBLE = ENV_FIELD_PATHS + ("metadata.annotations", "metadata.labels", "spec.restartPolicy",
                                  "spec.schedulerName", "status.phase")


def split_subscript(path: str) -> tuple[str, str] | None:
    """``SplitMaybeSubscriptedPath``: ``a['k']`` -> (``a``, ``k``); None if no subscript."""
    if not path.endswith("']"):
        return None
    base, sep, key = path[:-2].partition("['")
    return (base, key) if sep and base else None


def convert_field_label(version: str, label: str) -> tuple[str, str]:
    """``ConvertDownwardAPIFieldLabel``: (internal path, error message or "")."""
    if version != "v1":
        return "", f"unsupported pod version: {version}"
    split = split_subscript(label)
    if split is not None:
        if split[0] in ("metadata.annotations", "metadata.labels"):
            return label, ""
        return "", f"field label does not support subscript: {label}"
    if label == "spec.host":
        return "spec.nodeName", ""
    if label in _CONVERTIBLE:
        return label, ""
    return "", f"field label not supported: {label}"


def _field_ref(pod: Pod, ref: ObjectFieldSelector, path: str) -> list[Problem]:
    if not ref.api_version:
        return [required(f"{path}.apiVersion")]
    if not ref.field_path:
        return [required(f"{path}.fieldPath")]
    internal, err = convert_field_label(ref.api_version, ref.field_path)
    if err:
        return [invalid(f"{path}.fieldPath", ref.field_path, f"error converting fieldPath: {err}")]
    split = split_subscript(internal)
    if split is not None:
        base, key = split
        key = key.lower() if base == "metadata.annotations" else key
        return [invalid(path, key, m) for m in qualified_name(key)]
    if internal not in ENV_FIELD_PATHS:
        return [not_supported(f"{path}.fieldPath", internal, sorted(ENV_FIELD_PATHS))]
    return []


RESOURCE_FIELD_PATHS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory",
                        "requests.cpu", "requests.ephemeral-storage", "requests.memory")
CPU_DIVISORS = ("1m", "1")
BYTE_DIVISORS = ("1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi",
                 "1Ei")


def _resource_field_ref(pod: Pod, ref: ResourceFieldSelector, path: str) -> list[Problem]:
    out: list[Problem] = []
    if not ref.resource:
        out.append(required(f"{path}.resource"))
    elif ref.resource not in RESOURCE_FIELD_PATHS:
        out.append(not_supported(f"{path}.resource", ref.resource, RESOURCE_FIELD_PATHS))
    out += _divisor(ref, f"{path}.divisor")
    names = {c.name for c in pod.spec.init_containers + pod.spec.containers}
    if ref.container_name and ref.container_name not in names:
        out.append(not_found(f"{path}.containerName", ref.container_name))
    return out


def _divisor(ref: ResourceFieldSelector, path: str) -> list[Problem]:
    if ref.divisor in (None, ""):
        return []
    q, errs = quantity_field(ref.divisor, path)
    if errs or q is None or q.is_zero():
        return errs
    name = ref.resource.partition(".")[2]
    if name == "cpu" and str(q) not in CPU_DIVISORS:
        return [invalid(path, ref.resource,
                        "only divisor's values 1m and 1 are supported with the cpu resource")]
    if name in ("memory", "ephemeral-storage") and str(q) not in BYTE_DIVISORS:
        what = "memory" if name == "memory" else "local ephemeral storage"
        return [invalid(path, ref.resource, "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, "
                        f"1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the {what} resource")]
    return []


def _key_selector(pod: Pod, ref: KeySelector, path: str) -> list[Problem]:
    out = [] if ref.name else [required(f"{path}.name")]
    return out + ([] if ref.key else [required(f"{path}.key")])


# ---------------------------------------------------------------- volume mounts


PROPAGATIONS = ("Bidirectional", "HostToContainer", "None")


def _volume_mounts(c: Container, volumes: set[str], path: str) -> list[Problem]:
    out: list[Problem] = []
    mount_points: set[str] = set()
    for i, m in enumerate(c.volume_mounts or ()):
        where = f"{path}[{i}]"
        out += [] if m.name else [required(f"{where}.name")]
        out += [] if m.name in volumes else [not_found(f"{where}.name", m.name)]
        out += [] if m.mount_path else [required(f"{where}.mountPath")]
        if m.mount_path in mount_points:
            out.append(invalid(f"{where}.mountPath", m.mount_path, "must be unique"))
        mount_points.add(m.mount_path)
        out += _sub_paths(m, where)
        out += _propagation(m, c, f"{where}.mountPropagation")
    return out


def _sub_paths(m: VolumeMount, path: str) -> list[Problem]:
    out = local_descending_path(m.sub_path, f"{path}.subPath") if m.sub_path else []
    if m.sub_path_expr:
        if m.sub_path:
            out.append(invalid(f"{path}.subPathExpr", m.sub_path_expr,
                               "subPathExpr and subPath are mutually exclusive"))
        out += local_descending_path(m.sub_path_expr, f"{path}.subPathExpr")
    return out


def _propagation(m: VolumeMount, c: Container, path: str) -> list[Problem]:
    if m.mount_propagation is None:
        return []
    if m.mount_propagation not in PROPAGATIONS:
        return [not_supported(path, m.mount_propagation, PROPAGATIONS)]
    privileged = bool(c.security_context and c.security_context.privileged)
    if m.mount_propagation == "Bidirectional" and not privileged:
        return [forbidden(path, "Bidirectional mount propagation is available only to "
                                "privileged containers")]
    return []


# ---------------------------------------------------------------- probes and lifecycle


def _handlers_and_probes(c: Container, path: str) -> list[Problem]:
    out = _lifecycle(c.lifecycle, f"{path}.lifecycle") if c.lifecycle else []
    for kind, probe in (("livenessProbe", c.liveness_probe),
                        ("readinessProbe", c.readiness_probe),
                        ("startupProbe", c.startup_probe)):
        if probe is not None:
            out += _probe(probe, kind, f"{path}.{kind}")
    return out


def _lifecycle(lifecycle: Lifecycle, path: str) -> list[Problem]:
    out: list[Problem] = []
    for name, handler in (("postStart", lifecycle.post_start), ("preStop", lifecycle.pre_stop)):
        if handler is not None:
            out += _handler([("exec", handler.exec)], f"{path}.{name}")
    return out


def _probe(p: Probe, kind: str, path: str) -> list[Problem]:
    out = _handler([("exec", p.exec), ("httpGet", p.http_get), ("tcpSocket", p.tcp_socket)],
                   path)
    for name, value in (("initialDelaySeconds", p.initial_delay_seconds),
                        ("timeoutSeconds", p.timeout_seconds),
                        ("periodSeconds", p.period_seconds),
                        ("successThreshold", p.success_threshold),
                        ("failureThreshold", p.failure_threshold)):
        out += nonnegative(value, f"{path}.{name}")
    grace = p.termination_grace_period_seconds
    if grace is not None and grace <= 0:
        out.append(invalid(f"{path}.terminationGracePeriodSeconds", grace,
                           "must be greater than 0"))
    return out + _probe_kind_rules(p, kind, path)


def _probe_kind_rules(p: Probe, kind: str, path: str) -> list[Problem]:
    if kind in ("livenessProbe", "startupProbe") and p.success_threshold != 1:
        return [invalid(f"{path}.successThreshold", p.success_threshold, "must be 1")]
    if kind == "readinessProbe" and p.termination_grace_period_seconds is not None:
        return [invalid(f"{path}.terminationGracePeriodSeconds",
                        p.termination_grace_period_seconds, "must not be set for readinessProbes")]
    return []


def _handler(handlers: list[tuple[str, Any]], path: str) -> list[Problem]:
    """``validateHandler``: exactly one handler, and that handler valid."""
    out: list[Problem] = []
    count = 0
    for name, action in handlers:
        if action is None:
            continue
        if count:
            out.append(forbidden(f"{path}.{name}", "may not specify more than 1 handler type"))
            continue
        count += 1
        out += _ACTIONS[name](action, f"{path}.{name}")
    if not count:
        out.append(required(path, "must specify a handler type"))
    return out


def _exec(action: ExecAction, path: str) -> list[Problem]:
    return [] if action.command else [required(f"{path}.command")]


def _http_get(action: HTTPGetAction, path: str) -> list[Problem]:
    out = [] if action.path else [required(f"{path}.path")]
    out += _port_num_or_name(action.port, f"{path}.port")
    if action.scheme not in ("HTTP", "HTTPS"):
        out.append(not_supported(f"{path}.scheme", action.scheme, ["HTTP", "HTTPS"]))
    for header in action.http_headers or ():
        if not re.fullmatch(HEADER_FMT, header.name):
            out.append(invalid(f"{path}.httpHeaders", header.name,
                               regex_error(HEADER_MSG, HEADER_FMT, "X-Header-Name")))
    return out


def _tcp_socket(action: Any, path: str) -> list[Problem]:
    return _port_num_or_name(action.port, f"{path}.port")


def _port_num_or_name(port: int | str, path: str) -> list[Problem]:
    msgs = port_number(port) if isinstance(port, int) else port_name(port)
    return [invalid(path, port, m) for m in msgs]


_ACTIONS = {"exec": _exec, "httpGet": _http_get, "tcpSocket": _tcp_socket}
