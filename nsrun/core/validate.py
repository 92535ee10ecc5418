"""Pod validation with Kubernetes' rules, field paths and messages (pure).

Owns what the API server would check before a kubelet ever sees the pod (nsrun has no API
server in front of it): ``validate(pod)`` returns every problem at once, in the order
``ValidatePodCreate`` reports them (metadata, volumes, containers, init containers, pod
fields, then image whitespace); ``check(pod, source)`` raises them as one ``SpecError``.

Rules come from ``pkg/apis/core/validation/validation.go`` (see the reference, section D):
names required and DNS-1123, unique across init and app containers, image required,
lifecycle/probes forbidden on init containers without ``restartPolicy: Always``, restart
policies, ``activeDeadlineSeconds`` range, probe rules, volume mounts naming existing volumes,
requests <= limits, host port conflicts, Downward API paths, pod-level resources. nsrun adds
one kind of rule: a resource it cannot enforce (hugepages, extended resources) is
"not supported by nsrun".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from nsrun.core import podnet, resources
from nsrun.core.quantity import Quantity, QuantityError, parse_json_quantity
from nsrun.core.spec import (
    NOT_SUPPORTED,
    Container,
    ContainerPort,
    EnvVar,
    ExecAction,
    HTTPGetAction,
    KeySelector,
    KeyToPath,
    Lifecycle,
    ObjectFieldSelector,
    ObjectMeta,
    Pod,
    PodSecurityContext,
    Probe,
    ResourceFieldSelector,
    ResourceRequirements,
    SeccompProfile,
    SecurityContext,
    Volume,
    VolumeMount,
)
from nsrun.errors import Problem, SpecError

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1

# ---------------------------------------------------------------- field.Error constructors


def show(value: Any) -> str:
    """A bad value as Kubernetes prints it: strings quoted, numbers and booleans bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Quantity):
        value = str(value)
    return json.dumps(value if isinstance(value, str) else str(value), ensure_ascii=False)


def required(path: str, detail: str = "") -> Problem:
    return Problem(path, "Required value", detail)


def invalid(path: str, value: Any, detail: str) -> Problem:
    return Problem(path, "Invalid value", f"{show(value)}: {detail}")


def not_supported(path: str, value: Any, valid: Iterable[str]) -> Problem:
    values = ", ".join(json.dumps(v) for v in valid)
    return Problem(path, "Unsupported value", f"{show(value)}: supported values: {values}")


def duplicate(path: str, value: Any) -> Problem:
    return Problem(path, "Duplicate value", show(value))


def not_found(path: str, value: Any) -> Problem:
    return Problem(path, "Not found", show(value))


def forbidden(path: str, detail: str) -> Problem:
    return Problem(path, "Forbidden", detail)


# ---------------------------------------------------------------- apimachinery string rules

LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
SUBDOMAIN_FMT = LABEL_FMT + "(\\." + LABEL_FMT + ")*"
QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
HEADER_FMT = "[-A-Za-z0-9]+"
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
             "or '-', and must start and end with an alphanumeric character")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character")
QNAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
             "with an alphanumeric character")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric "
                   "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                   "character")
ENV_NAME_MSG = ("a valid environment variable name must consist only of printable ASCII "
                "characters other than '='")
HEADER_MSG = "a valid HTTP header must consist of alphanumeric characters or '-'"
NEGATIVE_MSG = "must be greater than or equal to 0"
FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
INIT_FORBIDDEN = "may not be set for init containers without restartPolicy=Always"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's ``RegexError`` (with its double space before "or")."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


# The formats above are what the messages print; the checks below are linear-time
# equivalents (Python's backtracking regexes are quadratic on them for long input).


def _is_label(value: str) -> bool:
    return bool(re.fullmatch("[-a-z0-9]+", value)) and "-" not in (value[0], value[-1])


def _is_qname(value: str) -> bool:
    return bool(re.fullmatch("[-A-Za-z0-9_.]+", value)) \
        and all(ch.isascii() and ch.isalnum() for ch in (value[0], value[-1]))


def dns1123_label(value: str) -> list[str]:
    errs = [max_len(63)] if len(value) > 63 else []
    if not _is_label(value):
        errs.append(regex_error(LABEL_MSG, LABEL_FMT, "my-name", "123-abc"))
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = [max_len(253)] if len(value) > 253 else []
    if not all(_is_label(part) for part in value.split(".")):
        errs.append(regex_error(SUBDOMAIN_MSG, SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name(value: str) -> list[str]:
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(QNAME_MSG, QNAME_FMT, "MyName", "my.name",
                                                  "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errs: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        errs += ["prefix part must be non-empty"] if not prefix else [
            "prefix part " + m for m in dns1123_subdomain(prefix)]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + max_len(63))
    if not _is_qname(name):
        errs.append("name part " + regex_error(QNAME_MSG, QNAME_FMT, "MyName", "my.name",
                                               "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    errs = [max_len(63)] if len(value) > 63 else []
    if value and not _is_qname(value):
        errs.append(regex_error(LABEL_VALUE_MSG, f"({QNAME_FMT})?", "MyValue", "my_value",
                                "12345"))
    return errs


def port_name(value: str) -> list[str]:
    errs = [max_len(15)] if len(value) > 15 else []
    if not re.fullmatch("[-a-z0-9]+", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number(value: int) -> list[str]:
    return [] if 1 <= value <= 65535 else [inclusive_range(1, 65535)]


def env_var_name(value: str) -> list[str]:
    errs = ["environment variable name must be non-empty"] if not value else []
    if any(ord(ch) > 126 or ord(ch) < 32 or ch == "=" for ch in value):
        errs.append(ENV_NAME_MSG)
    return errs


def _label_check(value: str | None, path: str, rule=dns1123_label) -> list[Problem]:
    return [invalid(path, value, m) for m in rule(value)] if value else []


def _nonnegative(value: int | None, path: str, hi: int = MAX_INT32) -> list[Problem]:
    if value is None:
        return []
    if value < 0:
        return [invalid(path, value, NEGATIVE_MSG)]
    return [invalid(path, value, inclusive_range(0, hi))] if value > hi else []


# ---------------------------------------------------------------- entry points


def validate(pod: Pod) -> list[Problem]:
    """Every problem with ``pod``, with Kubernetes field paths and messages (checked after
    the API server's defaulting, as Kubernetes does; ``pod`` itself is not changed)."""
    pod = _defaulted(pod)
    problems = _metadata(pod.metadata)
    volumes, found = _volumes(pod.spec.volumes)
    problems += found
    problems += _containers(pod, volumes)
    problems += _init_containers(pod, volumes)
    problems += _pod_fields(pod)
    problems += _image_whitespace(pod)
    return problems


def check(pod: Pod, source: str = "") -> None:
    """Raise every problem with ``pod`` as one ``SpecError`` (kubectl's shape)."""
    problems = validate(pod)
    if problems:
        raise SpecError(problems, pod=pod.metadata.name, source=source)


def _defaulted(pod: Pod) -> Pod:
    import msgspec

    from nsrun.core.spec import apply_defaults, problem_from_msgspec

    try:
        return apply_defaults(msgspec.convert(msgspec.to_builtins(pod), Pod))
    except msgspec.ValidationError as err:  # a Pod built in code with wrong types
        raise SpecError([problem_from_msgspec(str(err))], pod=pod.metadata.name) from None


# ---------------------------------------------------------------- metadata


def _metadata(meta: ObjectMeta) -> list[Problem]:
    out: list[Problem] = []
    if not meta.name:
        out.append(required("metadata.name", "name or generateName is required"))
    out += _label_check(meta.name, "metadata.name", dns1123_subdomain)
    if not meta.namespace:
        out.append(required("metadata.namespace"))
    out += _label_check(meta.namespace, "metadata.namespace")
    out += validate_labels(meta.labels, "metadata.labels")
    for key in meta.annotations:
        out += [invalid("metadata.annotations", key, m) for m in qualified_name(key.lower())]
    return out


def validate_labels(labels: dict[str, str], path: str) -> list[Problem]:
    """A label map (``metadata.labels``, a Service's ``spec.selector``): qualified-name
    keys, label values."""
    out: list[Problem] = []
    for key, value in labels.items():
        out += [invalid(path, key, m) for m in qualified_name(key)]
        out += [invalid(path, value, m) for m in label_value(value)]
    return out


# ---------------------------------------------------------------- volumes


def _volumes(volumes: list[Volume]) -> tuple[set[str], list[Problem]]:
    """The names of the valid volumes, and the problems of the others."""
    names: set[str] = set()
    out: list[Problem] = []
    for i, vol in enumerate(volumes):
        path = f"spec.volumes[{i}]"
        errs = _volume_source(vol, path)
        if not vol.name:
            errs.append(required(f"{path}.name"))
        errs += _label_check(vol.name, f"{path}.name")
        if vol.name in names:
            errs.append(duplicate(f"{path}.name", vol.name))
        if errs:
            out += errs
        else:
            names.add(vol.name)
    return names, out


def _volume_source(vol: Volume, path: str) -> list[Problem]:
    sources = [(k, s) for k, s in (("emptyDir", vol.empty_dir), ("hostPath", vol.host_path),
                                   ("secret", vol.secret), ("configMap", vol.config_map))
               if s is not None]
    if not sources:
        return [required(path, "must specify a volume type")]
    out = [forbidden(f"{path}.{k}", "may not specify more than 1 volume type")
           for k, _ in sources[1:]]
    kind, source = sources[0]
    check_source = {"emptyDir": _empty_dir, "hostPath": _host_path, "secret": _secret,
                    "configMap": _config_map}[kind]
    return check_source(source, f"{path}.{kind}") + out


def _empty_dir(source: Any, path: str) -> list[Problem]:
    out: list[Problem] = []
    if source.medium and source.medium.startswith("HugePages"):
        out.append(forbidden(f"{path}.medium", NOT_SUPPORTED))
    elif source.medium not in (None, "", "Memory"):
        out.append(not_supported(f"{path}.medium", source.medium, ["", "Memory"]))
    if source.size_limit is not None:
        q, errs = _quantity(source.size_limit, f"{path}.sizeLimit")
        out += errs
        if q is not None and q.sign() < 0:
            out.append(forbidden(f"{path}.sizeLimit",
                                 "SizeLimit field must be a valid resource quantity"))
    return out


HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File",
                   "FileOrCreate", "Socket")


def _host_path(source: Any, path: str) -> list[Problem]:
    out = [] if source.path else [required(f"{path}.path")]
    out += _no_backsteps(source.path, f"{path}.path")
    if source.type not in (None, *HOST_PATH_TYPES):
        out.append(not_supported(f"{path}.type", source.type, HOST_PATH_TYPES))
    return out


def _secret(source: Any, path: str) -> list[Problem]:
    out = [] if source.secret_name else [required(f"{path}.secretName")]
    return out + _mode_and_items(source, path)


def _config_map(source: Any, path: str) -> list[Problem]:
    out = [] if source.name else [required(f"{path}.name")]
    return out + _mode_and_items(source, path)


def _mode_and_items(source: Any, path: str) -> list[Problem]:
    out = _file_mode(source.default_mode, f"{path}.defaultMode")
    for i, item in enumerate(source.items or ()):
        out += _key_to_path(item, f"{path}.items[{i}]")
    return out


def _file_mode(mode: int | None, path: str) -> list[Problem]:
    return [invalid(path, mode, FILE_MODE_MSG)] if mode is not None and not 0 <= mode <= 0o777 \
        else []


def _key_to_path(item: KeyToPath, path: str) -> list[Problem]:
    out = [] if item.key else [required(f"{path}.key")]
    out += [] if item.path else [required(f"{path}.path")]
    out += _local_descending_path(item.path, f"{path}.path")
    if item.path.startswith("..") and not item.path.startswith("../"):
        out.append(invalid(f"{path}.path", item.path, "must not start with '..'"))
    return out + _file_mode(item.mode, f"{path}.mode")


def _no_backsteps(value: str, path: str) -> list[Problem]:
    parts = value.replace("\\", "/").split("/")
    return [invalid(path, value, "must not contain '..'")] if ".." in parts else []


def _local_descending_path(value: str, path: str) -> list[Problem]:
    out = [invalid(path, value, "must be a relative path")] if value.startswith("/") else []
    return out + _no_backsteps(value, path)


# ---------------------------------------------------------------- containers


def _containers(pod: Pod, volumes: set[str]) -> list[Problem]:
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


def _init_containers(pod: Pod, volumes: set[str]) -> list[Problem]:
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
    out += _label_check(c.name, f"{path}.name")
    out += [] if c.image else [required(f"{path}.image")]
    out += _termination_message_policy(c.termination_message_policy, path)
    out += _ports(c.ports or [], f"{path}.ports")
    out += _env(pod, c.env or [], f"{path}.env")
    out += _volume_mounts(c, volumes, f"{path}.volumeMounts")
    if c.image_pull_policy is not None and c.image_pull_policy not in PULL_POLICIES:
        out.append(not_supported(f"{path}.imagePullPolicy", c.image_pull_policy, PULL_POLICIES))
    out += _resource_requirements(c.resources, f"{path}.resources")
    return out + _security_context(c.security_context, f"{path}.securityContext")


PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")


def _termination_message_policy(policy: str | None, path: str) -> list[Problem]:
    where = f"{path}.terminationMessagePolicy"
    if policy == "":
        return [required(where, "must be 'File' or 'FallbackToLogsOnError'")]
    if policy is not None and policy not in MESSAGE_POLICIES:
        return [not_supported(where, policy, MESSAGE_POLICIES)]
    return []


def _image_whitespace(pod: Pod) -> list[Problem]:
    out: list[Problem] = []
    for key, cs in (("containers", pod.spec.containers), ("initContainers",
                                                          pod.spec.init_containers)):
        for i, c in enumerate(cs):
            if c.image != c.image.strip():
                out.append(invalid(f"spec.{key}[{i}].image", c.image,
                                   "must not have leading or trailing whitespace"))
    return out


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
    q, errs = _quantity(ref.divisor, path)
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
    out = _local_descending_path(m.sub_path, f"{path}.subPath") if m.sub_path else []
    if m.sub_path_expr:
        if m.sub_path:
            out.append(invalid(f"{path}.subPathExpr", m.sub_path_expr,
                               "subPathExpr and subPath are mutually exclusive"))
        out += _local_descending_path(m.sub_path_expr, f"{path}.subPathExpr")
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
        out += _nonnegative(value, f"{path}.{name}")
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


# ---------------------------------------------------------------- security contexts


def _security_context(sc: SecurityContext | None, path: str) -> list[Problem]:
    if sc is None:
        return []
    out = _id(sc.run_as_user, f"{path}.runAsUser") + _id(sc.run_as_group, f"{path}.runAsGroup")
    out += _seccomp_profile(sc.seccomp_profile, f"{path}.seccompProfile")
    if sc.allow_privilege_escalation is False:
        if sc.privileged:
            out.append(Problem(path, "Invalid value", "cannot set `allowPrivilegeEscalation` to "
                                                      "false and `privileged` to true"))
        if sc.capabilities and "CAP_SYS_ADMIN" in (sc.capabilities.add or ()):
            out.append(Problem(path, "Invalid value", "cannot set `allowPrivilegeEscalation` to "
                                                      "false and `capabilities.Add` CAP_SYS_ADMIN"))
    return out


def _pod_security_context(sc: PodSecurityContext | None, path: str) -> list[Problem]:
    if sc is None:
        return []
    out = _id(sc.run_as_user, f"{path}.runAsUser") + _id(sc.run_as_group, f"{path}.runAsGroup")
    out += _id(sc.fs_group, f"{path}.fsGroup")
    out += _seccomp_profile(sc.seccomp_profile, f"{path}.seccompProfile")
    for i, gid in enumerate(sc.supplemental_groups or ()):
        out += _id(gid, f"{path}.supplementalGroups[{i}]")
    return out


SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")


def _seccomp_profile(sp: SeccompProfile | None, path: str) -> list[Problem]:
    """The API server's validateSeccompProfileField, with its messages."""
    if sp is None:
        return []
    out = []
    if not sp.type:
        out.append(required(f"{path}.type", "type is required when seccompProfile is set"))
    elif sp.type not in SECCOMP_TYPES:
        out.append(not_supported(f"{path}.type", sp.type, SECCOMP_TYPES))
    where, local = f"{path}.localhostProfile", sp.localhost_profile
    if sp.type == "Localhost" and local is None:
        out.append(required(where, "must be set when seccomp type is Localhost"))
    elif sp.type == "Localhost":
        if local.startswith("/"):
            out.append(invalid(where, local, "must be a relative path"))
        if ".." in local.split("/"):
            out.append(invalid(where, local, "must not contain '..'"))
    elif local is not None:
        out.append(invalid(where, local, "can only be set when seccomp type is Localhost"))
    return out


def _id(value: int | None, path: str) -> list[Problem]:
    if value is None or 0 <= value <= MAX_INT32:
        return []
    return [invalid(path, value, inclusive_range(0, MAX_INT32))]


# ---------------------------------------------------------------- resources


NSRUN_RESOURCES = (resources.CPU, resources.MEMORY, resources.EPHEMERAL_STORAGE)
_STANDARD = {"cpu", "memory", "ephemeral-storage", "storage", "pods", "services",
             "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
             "persistentvolumeclaims", "requests.cpu", "requests.memory", "requests.storage",
             "requests.ephemeral-storage", "limits.cpu", "limits.memory",
             "limits.ephemeral-storage"}


def _quantity(raw: Any, path: str) -> tuple[Quantity | None, list[Problem]]:
    try:
        return parse_json_quantity(raw), []
    except QuantityError as err:
        return None, [invalid(path, raw, str(err))]


def _resource_name(name: str, path: str) -> list[Problem]:
    """``validateContainerResourceName`` plus nsrun's: only what it enforces."""
    msgs = qualified_name(name)
    if msgs:
        return [invalid(path, name, m) for m in msgs]
    hugepages = name.startswith(resources.HUGEPAGES_PREFIX)
    if "/" not in name:
        out = [] if name in _STANDARD or hugepages else [
            invalid(path, name, "must be a standard resource type or fully qualified")]
        if name not in NSRUN_RESOURCES and not hugepages:
            return out + [invalid(path, name, "must be a standard resource for containers")]
    return [] if name in NSRUN_RESOURCES else [forbidden(path, NOT_SUPPORTED)]


def _resource_list(raw: dict[str, Any] | None, path: str, names=_resource_name
                   ) -> tuple[dict[str, Quantity], list[Problem]]:
    """Names and values of one resource map; the parsed values that are valid."""
    good: dict[str, Quantity] = {}
    out: list[Problem] = []
    for name, value in (raw or {}).items():
        where = f"{path}[{name}]"
        errs = names(name, where)
        q, q_errs = _quantity(value, where)
        errs += q_errs
        if q is not None and q.sign() < 0:
            errs.append(invalid(where, q, NEGATIVE_MSG))
        elif q is not None and _too_big(name, q):
            errs.append(invalid(where, q, "must be at most 2^63-1 (nsrun writes it to a cgroup)"))
        out += errs
        if q is not None and not errs:
            good[name] = q
    return good, out


def _too_big(name: str, q: Quantity) -> bool:
    return (q.milli_value() if name == resources.CPU else q.value()) > MAX_INT64


def _resource_requirements(res: ResourceRequirements | None, path: str,
                           names=_resource_name) -> list[Problem]:
    if res is None:
        return []
    limits, out = _resource_list(res.limits, f"{path}.limits", names)
    raw_limits = res.limits or {}
    own = {k: v for k, v in (res.requests or {}).items()
           if k not in raw_limits or raw_limits[k] != v}
    requests, errs = _resource_list(own, f"{path}.requests", names)
    out += errs
    for name, q in requests.items():
        if name in limits and q > limits[name]:
            out.append(invalid(f"{path}.requests", q, f"must be less than or equal to {name} "
                                                      f"limit of {limits[name]}"))
    return out


# ---------------------------------------------------------------- pod fields


RESTART_POLICIES = ("Always", "OnFailure", "Never")


def _pod_fields(pod: Pod) -> list[Problem]:
    spec = pod.spec
    out = _host_network_ports(pod) + _restart_policy(spec.restart_policy)
    out += _pod_security_context(spec.security_context, "spec.securityContext")
    out += _label_check(spec.service_account_name, "spec.serviceAccountName", dns1123_subdomain)
    out += _label_check(spec.node_name, "spec.nodeName", dns1123_subdomain)
    deadline = spec.active_deadline_seconds
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        out.append(invalid("spec.activeDeadlineSeconds", deadline, inclusive_range(1, MAX_INT32)))
    out += _label_check(spec.hostname, "spec.hostname")
    out += _label_check(spec.subdomain, "spec.subdomain")
    out += _nonnegative(spec.termination_grace_period_seconds,
                        "spec.terminationGracePeriodSeconds", MAX_INT64)
    out += _resource_list(spec.overhead, "spec.overhead")[1]
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
    out = _resource_requirements(res, "spec.resources", _pod_level_name)
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
