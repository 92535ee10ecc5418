"""Pod validation of volumes, security contexts and resource lists (pure).

Owns the rules ``ValidatePodCreate`` applies to ``spec.volumes`` (one source each, hostPath
types, file modes, key paths), to pod and container security contexts (ids, seccomp profile
fields, ``allowPrivilegeEscalation``) and to resource maps (names nsrun enforces, quantities,
requests <= limits). Containers (``core.validcontainers``) and the pod (``core.validate``)
call them.
"""

from __future__ import annotations

from typing import Any

from nsrun.core import resources
from nsrun.core.fielderrors import (
    FILE_MODE_MSG,
    MAX_INT32,
    MAX_INT64,
    NEGATIVE_MSG,
    duplicate,
    forbidden,
    inclusive_range,
    invalid,
    label_check,
    not_supported,
    qualified_name,
    quantity_field,
    required,
)
from nsrun.core.quantity import Quantity
from nsrun.core.schema import NOT_SUPPORTED
from nsrun.core.spec import (
    KeyToPath,
    PodSecurityContext,
    ResourceRequirements,
    SeccompProfile,
    SecurityContext,
    Volume,
)
from nsrun.errors import Problem

# ---------------------------------------------------------------- volumes


def check_volumes(volumes: list[Volume]) -> tuple[set[str], list[Problem]]:
    """The names of the valid volumes, and the problems of the others."""
    names: set[str] = set()
    out: list[Problem] = []
    for i, vol in enumerate(volumes):
        path = f"spec.volumes[{i}]"
        errs = _volume_source(vol, path)
        if not vol.name:
            errs.append(required(f"{path}.name"))
        errs += label_check(vol.name, f"{path}.name")
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
        q, errs = quantity_field(source.size_limit, f"{path}.sizeLimit")
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
    out += local_descending_path(item.path, f"{path}.path")
    if item.path.startswith("..") and not item.path.startswith("../"):
        out.append(invalid(f"{path}.path", item.path, "must not start with '..'"))
    return out + _file_mode(item.mode, f"{path}.mode")


def _no_backsteps(value: str, path: str) -> list[Problem]:
    parts = value.replace("\\", "/").split("/")
    return [invalid(path, value, "must not contain '..'")] if ".." in parts else []


def local_descending_path(value: str, path: str) -> list[Problem]:
    out = [invalid(path, value, "must be a relative path")] if value.startswith("/") else []
    return out + _no_backsteps(value, path)


# ---------------------------------------------------------------- security contexts


def security_context(sc: SecurityContext | None, path: str) -> list[Problem]:
    if sc is None:
        return []
    out = _id(sc.run_as_user, f"{path}.runAsUser") + _id(sc.run_as_group, f"{path}.runAsGroup")
    out += seccomp_profile(sc.seccomp_profile, f"{path}.seccompProfile")
    if sc.allow_privilege_escalation is False:
        if sc.privileged:
            out.append(Problem(path, "Invalid value", "cannot set `allowPrivilegeEscalation` to "
                                                      "false and `privileged` to true"))
        if sc.capabilities and "CAP_SYS_ADMIN" in (sc.capabilities.add or ()):
            out.append(Problem(path, "Invalid value", "cannot set `allowPrivilegeEscalation` to "
                                                      "false and `capabilities.Add` CAP_SYS_ADMIN"))
    return out


def pod_security_context(sc: PodSecurityContext | None, path: str) -> list[Problem]:
    if sc is None:
        return []
    out = _id(sc.run_as_user, f"{path}.runAsUser") + _id(sc.run_as_group, f"{path}.runAsGroup")
    out += _id(sc.fs_group, f"{path}.fsGroup")
    out += seccomp_profile(sc.seccomp_profile, f"{path}.seccompProfile")
    for i, gid in enumerate(sc.supplemental_groups or ()):
        out += _id(gid, f"{path}.supplementalGroups[{i}]")
    return out


SECCOMP_TYPES = ("Localhost", "RuntimeDefault", "Unconfined")


def seccomp_profile(sp: SeccompProfile | None, path: str) -> list[Problem]:
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


def resource_list(raw: dict[str, Any] | None, path: str, names=_resource_name
                   ) -> tuple[dict[str, Quantity], list[Problem]]:
    """Names and values of one resource map; the parsed values that are valid."""
    good: dict[str, Quantity] = {}
    out: list[Problem] = []
    for name, value in (raw or {}).items():
        where = f"{path}[{name}]"
        errs = names(name, where)
        q, q_errs = quantity_field(value, where)
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


def resource_requirements(res: ResourceRequirements | None, path: str,
                           names=_resource_name) -> list[Problem]:
    if res is None:
        return []
    limits, out = resource_list(res.limits, f"{path}.limits", names)
    raw_limits = res.limits or {}
    own = {k: v for k, v in (res.requests or {}).items()
           if k not in raw_limits or raw_limits[k] != v}
    requests, errs = resource_list(own, f"{path}.requests", names)
    out += errs
    for name, q in requests.items():
        if name in limits and q > limits[name]:
            out.append(invalid(f"{path}.requests", q, f"must be less than or equal to {name} "
                                                      f"limit of {limits[name]}"))
    return out
