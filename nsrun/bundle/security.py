"""What confines a container: the bundle's OCI ``process``/``linux`` fields with the pod's
Kubernetes ``securityContext`` on top, resolved into what the C child applies.

Everything is checked here, in the parent, before anything is cloned: an unknown capability,
an invalid seccomp action, an rlimit this host cannot grant or a malformed mapping is a
``BundleError`` naming the field (the launcher adds the container), and the container is
never started half-confined. The child only meets kernel errors (``SpawnError``).

Precedence, from the bundle outward (the README has the same text):

* **The bundle's** ``config.json`` is the base: ``process.user`` (uid, gid, additionalGids,
  umask), ``process.capabilities``, ``noNewPrivileges``, ``rlimits``, ``oomScoreAdj``,
  ``linux.seccomp``, ``maskedPaths``, ``readonlyPaths``, ``sysctl``, ``devices``,
  ``rootfsPropagation``, ``root.readonly``. Where it is silent, a Kubernetes pod's defaults apply:
  the 14 capabilities containerd gives a pod (``capabilities.DEFAULT_CAPABILITIES``: bounding,
  effective, permitted; never root's full set), runc's masked and read-only paths, umask 0022.
  An empty list given explicitly (``"maskedPaths": []``) means none.
* **The pod's** ``spec.securityContext`` (runAsUser, runAsGroup, runAsNonRoot,
  supplementalGroups, fsGroup) applies to every container; a **container's**
  ``securityContext`` field of the same name wins over it.
* The resulting Kubernetes fields win over the bundle: ``runAsUser``/``runAsGroup`` replace
  ``process.user.uid/gid``; ``supplementalGroups`` and ``fsGroup`` are added to
  ``additionalGids``; ``readOnlyRootFilesystem`` (when set) replaces ``root.readonly``;
  ``allowPrivilegeEscalation: false`` sets ``noNewPrivileges`` (``true`` clears it);
  ``capabilities``: ``add: [ALL]`` grants every capability, ``drop: [ALL]`` clears all five
  sets, then each named ``add`` joins bounding/effective/permitted and each named ``drop``
  leaves all five sets (names as in Kubernetes, ``NET_ADMIN`` = ``CAP_NET_ADMIN``).
* ``privileged: true`` replaces all of that: every capability nsrun holds (bounding,
  effective, permitted), no seccomp filter, no masked or read-only paths, the host's devices
  in ``/dev``, ``/sys`` read-write, and no ``noNewPrivileges``; capabilities add/drop are
  ignored (as containerd does).
* ``runAsNonRoot`` is checked last, against the final uid, with the kubelet's messages.
* Not overridable by the pod: rlimits, umask, oomScoreAdj, sysctls, devices, seccomp (apart
  from ``privileged``), rootfsPropagation.

Refused: ``apparmorProfile``/``selinuxLabel`` (this host has neither LSM; nsrun applies no
LSM profile), a ``user`` namespace without ``uidMappings`` and ``gidMappings`` (or mappings
without one, or joining one by ``path``), in a user namespace: ``privileged``, ``devices`` and a
uid/gid the mappings do not cover; non-namespaced sysctls, ``SCMP_ACT_NOTIFY``/``listenerPath``.
``mountLabel`` is ignored with a warning (no SELinux). Ambient capabilities that are not
both permitted and inheritable are dropped with a warning (runc ignores them silently).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import msgspec

from nsrun.bundle import process, seccomp_select, usernamespace
from nsrun.bundle.capabilities import (
    DEFAULT_CAPABILITIES,
    bundle_capabilities,
    cap_mask,
    consistent,
    kube_capabilities,
)
from nsrun.bundle.configfields import Fields, json_type
from nsrun.bundle.hostfacts import RLIMITS, HostFacts, host_devices
from nsrun.bundle.mounts import propagation_flags
from nsrun.bundle.ociseccomp import Seccomp, seccomp_of
from nsrun.bundle.process import DEFAULT_UMASK
from nsrun.core import devices as device_rules
from nsrun.errors import BundleError
from nsrun.request import CapSets, Device

if TYPE_CHECKING:  # the pod spec's types: never decoded here, and nsrun-oci has no pod
    from nsrun.core.spec import PodSecurityContext, SecurityContext

# Re-exported: what callers of this module (launcher, nsrun-oci, tests) name from here.
__all__ = ["DEFAULT_CAPABILITIES", "DEFAULT_MASKED_PATHS", "DEFAULT_READONLY_PATHS", "RLIMITS",
           "Confinement", "ContainerConfigError", "HostFacts", "PodContext", "Seccomp",
           "cap_mask", "confine", "host_devices"]

# runc's default maskedPaths and readonlyPaths (`runc spec`), for a bundle without them.
DEFAULT_MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
)
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger")
# Sysctls that live in a namespace the container has (the pod's network and IPC ones).
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced"})
class ContainerConfigError(BundleError):
    """The pod asks for something the container cannot get (e.g. runAsNonRoot with uid 0):
    the kubelet's ``CreateContainerConfigError``; the message is the kubelet's own."""

    reason = "CreateContainerConfigError"


# ---------------------------------------------------------------- the result


class Confinement(msgspec.Struct, frozen=True):
    """Everything the child applies to one container (see the module docstring)."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = DEFAULT_UMASK
    readonly_root: bool = False
    capabilities: CapSets = CapSets()
    no_new_privileges: bool = False
    seccomp: Seccomp | None = None
    rlimits: tuple[tuple[int, int, int], ...] = ()
    oom_score_adj: int | None = None
    sysctls: tuple[tuple[str, str], ...] = ()
    masked_paths: tuple[str, ...] = DEFAULT_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DEFAULT_READONLY_PATHS
    devices: tuple[Device, ...] = ()
    # the device allow-list its cgroup enforces (``core.devices``: linux.resources.devices)
    device_policy: device_rules.Policy = device_rules.policy()
    rootfs_propagation: int = 0
    privileged: bool = False
    uid_mappings: tuple[tuple[int, int, int], ...] = ()  # non-empty: a user namespace
    gid_mappings: tuple[tuple[int, int, int], ...] = ()
    warnings: tuple[str, ...] = ()


class PodContext(msgspec.Struct, frozen=True):
    """The Kubernetes side: the container's and the pod's securityContext, and the names the
    kubelet's messages use."""

    container: str = ""
    pod: str = ""  # the kubelet's format.Pod: name_namespace(uid)
    security_context: SecurityContext | None = None
    pod_security_context: PodSecurityContext | None = None
    # --seccomp-default/--seccomp-profile-root (the default: the OCI face's, none of them)
    seccomp: seccomp_select.Settings = seccomp_select.Settings()


def _lsm(f: Fields, host: HostFacts, warnings: list[str]) -> None:
    if f.get("process.apparmorProfile", str):
        raise f.error("process.apparmorProfile",
                      "AppArmor is not enabled on this host" if not host.apparmor
                      else "nsrun does not apply AppArmor profiles")
    if f.get("process.selinuxLabel", str):
        raise f.error("process.selinuxLabel",
                      "SELinux is not enabled on this host" if not host.selinux
                      else "nsrun does not apply SELinux labels")
    if f.get("linux.mountLabel", str):
        warnings.append("linux.mountLabel ignored: " + (
            "SELinux is not enabled on this host" if not host.selinux
            else "nsrun does not apply SELinux labels"))


def _paths(f: Fields, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    listed = f.get(f"linux.{key}", list)
    if listed is None:
        return default
    for i, p in enumerate(listed):
        if not isinstance(p, str) or not p.startswith("/") or "\0" in p:
            raise f.error(f"linux.{key}[{i}]", f"expected an absolute path, got "
                                               f"{json.dumps(p)}")
    return tuple(listed)


def _sysctls(f: Fields) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in f.get("linux.sysctl", dict, {}).items():
        where = f"linux.sysctl.{key}"
        if not isinstance(value, str):
            raise f.error(where, f"expected string, got {json_type(value)}")
        norm = key.replace("/", ".")
        if norm in ("kernel.hostname", "kernel.domainname"):
            raise f.error(where, "the pod's UTS namespace is shared: set spec.hostname")
        if not (norm.startswith(("net.", "fs.mqueue.")) or norm in _IPC_SYSCTLS):
            raise f.error(where, "not a namespaced sysctl: it would change the host")
        if any(p in ("", ".", "..") for p in key.replace("/", ".").split(".")) or "\0" in value:
            raise f.error(where, "invalid sysctl key")
        out.append((key, value))
    return tuple(out)


def _devices(f: Fields) -> tuple[Device, ...]:
    out = []
    for i, d in enumerate(f.get("linux.devices", list, [])):
        where = f"linux.devices[{i}]"
        if not isinstance(d, dict):
            raise f.error(where, f"expected object, got {json_type(d)}")
        path, kind = d.get("path"), d.get("type")
        if not isinstance(path, str) or not path.startswith("/") or path.rstrip("/") == "":
            raise f.error(f"{where}.path", f"expected an absolute path, got {json.dumps(path)}")
        if kind not in ("c", "b", "u", "p"):
            raise f.error(f"{where}.type", f"must be c, b, u or p, not {json.dumps(kind)}")
        major = f.uint(f"{where}.major", d.get("major", 0))
        minor = f.uint(f"{where}.minor", d.get("minor", 0))
        if kind != "p" and ("major" not in d or "minor" not in d):
            raise f.error(where, "a c, b or u device needs major and minor")
        mode = f.uint(f"{where}.fileMode", d.get("fileMode", 0o666)) & 0o7777
        out.append(Device(path, kind, major, minor, mode,
                          f.uint(f"{where}.uid", d.get("uid", 0)),
                          f.uint(f"{where}.gid", d.get("gid", 0))))
    return tuple(out)


def _propagation(f: Fields) -> int:
    value = f.get("linux.rootfsPropagation", str, "")
    flags = propagation_flags()
    if value and value not in flags:
        raise f.error("linux.rootfsPropagation", f"must be one of "
                                                 f"{', '.join(flags)}, not "
                                                 f"{json.dumps(value)}")
    return flags.get(value, 0)


# ---------------------------------------------------------------- Kubernetes on top


def _effective(pod: PodContext, name: str) -> Any:
    """A field of the container's securityContext, else the pod's (same name)."""
    for sc in (pod.security_context, pod.pod_security_context):
        value = getattr(sc, name, None) if sc is not None else None
        if value is not None:
            return value
    return None


def _device_policy(f: Fields, devices: tuple[Device, ...],
                   privileged: bool) -> device_rules.Policy:
    """``linux.resources.devices`` plus the nodes the container creates (``core.devices``)."""
    try:
        rules = device_rules.parse(f.get("linux.resources.devices", list))
    except BundleError as err:
        raise BundleError(f"{f.where}: {err}") from None
    return device_rules.policy(rules, tuple((d.kind, d.major, d.minor) for d in devices),
                               privileged)


def _check_kubernetes(pod: PodContext) -> None:
    """The API server's checks that concern the child (kubectl's messages)."""
    sc = pod.security_context
    if sc is None or sc.allow_privilege_escalation is not False:
        return
    if sc.privileged:
        raise BundleError("securityContext: cannot set `allowPrivilegeEscalation` to false "
                          "and `privileged` to true")
    added = (sc.capabilities.add or []) if sc.capabilities else []
    if any(isinstance(n, str) and n.upper() in ("SYS_ADMIN", "CAP_SYS_ADMIN") for n in added):
        raise BundleError("securityContext: cannot set `allowPrivilegeEscalation` to false "
                          "and `capabilities.Add` CAP_SYS_ADMIN")


def _run_as_non_root(pod: PodContext, uid: int) -> None:
    """The kubelet's verifyRunAsNonRoot, with its messages."""
    if not _effective(pod, "run_as_non_root"):
        return
    where = f"(pod: {json.dumps(pod.pod)}, container: {pod.container})"
    if _effective(pod, "run_as_user") is not None:
        if uid == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    if uid == 0:
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root "
                                   f"{where}")


# ---------------------------------------------------------------- the whole


def confine(config: dict[str, Any], where: str, pod: PodContext | None = None,
            host: HostFacts | None = None) -> Confinement:
    """The bundle's ``config.json`` (``where`` names it in errors) with the pod's security
    context on top → the container's :class:`Confinement`. ``BundleError`` for anything
    that cannot be applied exactly."""
    pod = pod or PodContext()
    host = host or HostFacts.probe()
    f = Fields(config, where)
    warnings: list[str] = []
    _check_kubernetes(pod)
    _lsm(f, host, warnings)
    uid_mappings, gid_mappings = usernamespace.mappings(f)
    uid, gid, gids, umask = process.user(f)
    sc = pod.security_context
    privileged = bool(sc and sc.privileged)
    caps = bundle_capabilities(f, host, warnings)
    nnp = bool(f.get("process.noNewPrivileges", bool, False))
    readonly = bool(f.get("root.readonly", bool, False))
    seccomp = seccomp_of(f)
    masked = _paths(f, "maskedPaths", DEFAULT_MASKED_PATHS)
    readonly_paths = _paths(f, "readonlyPaths", DEFAULT_READONLY_PATHS)
    devices = _devices(f)
    conf = Confinement(
        rlimits=process.rlimits(f, host), oom_score_adj=process.oom_score_adj(f, host),
        sysctls=_sysctls(f), rootfs_propagation=_propagation(f), umask=umask)

    # Kubernetes on top (see the module docstring for the precedence).
    run_as_user, run_as_group = _effective(pod, "run_as_user"), _effective(pod, "run_as_group")
    uid = uid if run_as_user is None else run_as_user
    gid = gid if run_as_group is None else run_as_group
    pod_sc = pod.pod_security_context
    extra = list((pod_sc.supplemental_groups or []) if pod_sc else [])
    if pod_sc is not None and pod_sc.fs_group is not None:
        extra.append(pod_sc.fs_group)
    gids = tuple(dict.fromkeys([*gids, *extra]))
    if sc is not None and sc.read_only_root_filesystem is not None:
        readonly = sc.read_only_root_filesystem
    if sc is not None and sc.allow_privilege_escalation is not None:
        nnp = not sc.allow_privilege_escalation
    if privileged:
        caps = CapSets(host.capabilities, host.capabilities, host.capabilities, 0, 0)
        nnp, seccomp, masked, readonly_paths = False, None, (), ()
        devices = devices + tuple(d for d in host.host_devices()
                                  if d.path not in {x.path for x in devices})
        if sc is not None and sc.capabilities is not None:
            warnings.append("securityContext.capabilities ignored: the container is "
                            "privileged")
    elif sc is not None and sc.capabilities is not None:
        caps = consistent(kube_capabilities(caps, sc, host), "capabilities",
                           lambda w, m: BundleError(f"securityContext.{w}: {m}"), warnings)
    if not privileged:  # seccompProfile, --seccomp-default (privileged: none)
        seccomp = seccomp_select.confine_seccomp(f, pod.security_context,
                                                 pod.pod_security_context, pod.seccomp,
                                                 caps.bounding, seccomp)
    _run_as_non_root(pod, uid)
    if uid_mappings:
        usernamespace.check_user_ns(f, uid_mappings, gid_mappings, uid, gid, gids, privileged, devices)
    return Confinement(
        uid=uid, gid=gid, additional_gids=gids, umask=conf.umask, readonly_root=readonly,
        capabilities=caps, no_new_privileges=nnp, seccomp=seccomp, rlimits=conf.rlimits,
        oom_score_adj=conf.oom_score_adj, sysctls=conf.sysctls, masked_paths=masked,
        readonly_paths=readonly_paths, devices=devices,
        device_policy=_device_policy(f, devices, privileged),
        rootfs_propagation=conf.rootfs_propagation, privileged=privileged,
        uid_mappings=uid_mappings, gid_mappings=gid_mappings, warnings=tuple(warnings))
