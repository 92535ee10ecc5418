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
  ``rootfsPropagation``, ``root.readonly``. Where it is silent, runc's defaults apply:
  capabilities ``CAP_AUDIT_WRITE CAP_KILL CAP_NET_BIND_SERVICE`` (bounding, effective,
  permitted; never root's full set), runc's masked and read-only paths, umask 0022.
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

import errno
import functools
import json
import os
import resource
import stat
from typing import Any

import msgspec

from nsrun.bundle import seccomp_select
from nsrun.core import devices as device_rules
from nsrun.core.spec import PodSecurityContext, SecurityContext
from nsrun.errors import BundleError
from nsrun.host.native import CAP_NAMES, CAPABILITIES, RLIM_INFINITY, CapSets, Device

# runc's `runc spec` (1.1) capability sets, for a bundle that says nothing about them.
# A bundle that names no capabilities gets what a Kubernetes pod gets from containerd (and
# CRI-O): the 14 default capabilities, so an image that works in a cluster works here.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
# runc's default maskedPaths and readonlyPaths (`runc spec`), for a bundle without them.
DEFAULT_MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
)
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger")
DEFAULT_UMASK = 0o022

CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")
RLIMITS = {name: getattr(resource, name) for name in (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
) if hasattr(resource, name)}
RLIMITS.setdefault("RLIMIT_LOCKS", 10)  # not exported by Python's resource module

# Sysctls that live in a namespace the container has (the pod's network and IPC ones).
_IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced"})
_PROPAGATION = {"private": 0x40000, "rprivate": 0x44000, "slave": 0x80000,
                "rslave": 0x84000, "shared": 0x100000, "rshared": 0x104000,
                "unbindable": 0x20000, "runbindable": 0x24000}
# Host /dev entries a privileged container does not get as device nodes (containerd's list).
_HOST_DEV_SKIP = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev",
                            "console"})


class ContainerConfigError(BundleError):
    """The pod asks for something the container cannot get (e.g. runAsNonRoot with uid 0):
    the kubelet's ``CreateContainerConfigError``; the message is the kubelet's own."""

    reason = "CreateContainerConfigError"


# ---------------------------------------------------------------- facts about this host


class HostFacts(msgspec.Struct, frozen=True):
    """What this host (and nsrun's own process) can grant; injectable for tests."""

    capabilities: int             # capabilities nsrun can hand out (its bounding ∩ permitted)
    sys_resource: bool            # CAP_SYS_RESOURCE effective: may raise hard rlimits
    rlimits: dict[int, tuple[int, int]]  # resource -> (soft, hard) of nsrun's process
    nr_open: int                  # fs.nr_open: the ceiling of RLIMIT_NOFILE, even for root
    oom_score_adj: int
    apparmor: bool
    selinux: bool

    @classmethod
    def probe(cls) -> HostFacts:
        return _probe()


def _status_mask(status: str, key: str) -> int:
    for line in status.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1], 16)
    return 0


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _limit(value: int) -> int:
    return RLIM_INFINITY if value == resource.RLIM_INFINITY else value


@functools.cache
def _probe() -> HostFacts:
    status = _read("/proc/self/status")
    eff = _status_mask(status, "CapEff")
    limits = {}
    for number in RLIMITS.values():
        try:
            soft, hard = resource.getrlimit(number)
        except (ValueError, OSError):
            continue
        limits[number] = (_limit(soft), _limit(hard))
    return HostFacts(
        capabilities=_status_mask(status, "CapBnd") & _status_mask(status, "CapPrm"),
        sys_resource=bool(eff >> CAPABILITIES["CAP_SYS_RESOURCE"] & 1),
        rlimits=limits,
        nr_open=int(_read("/proc/sys/fs/nr_open", "1048576") or 1048576),
        oom_score_adj=int(_read("/proc/self/oom_score_adj", "0") or 0),
        apparmor=_read("/sys/module/apparmor/parameters/enabled") == "Y",
        selinux=os.path.exists("/sys/fs/selinux/enforce"),
    )


# ---------------------------------------------------------------- the result


class Seccomp(msgspec.Struct, frozen=True):
    bpf: bytes       # struct sock_filter[], for seccomp(SECCOMP_SET_MODE_FILTER)
    flags: int = 0   # SECCOMP_FILTER_FLAG_*


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


# ---------------------------------------------------------------- helpers


class _Fields:
    """Typed access to a config.json, errors naming the file and the field."""

    def __init__(self, config: dict[str, Any], where: str) -> None:
        self.config, self.where = config, where

    def error(self, path: str, message: str) -> BundleError:
        return BundleError(f"{self.where}: {path}: {message}")

    def get(self, path: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        node: Any = self.config
        for key in path.split("."):
            if not isinstance(node, dict) or key not in node or node[key] is None:
                return default
            node = node[key]
        if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(
                k.__name__ for k in kind)
            raise self.error(path, f"expected {_json_word(names)}, got {_json_type(node)}")
        return node

    def uint(self, path: str, value: Any, bits: int = 32) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**bits:
            raise self.error(path, f"expected an unsigned {bits}-bit integer, got "
                                   f"{json.dumps(value)}")
        return value


def _json_type(value: Any) -> str:
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                       (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "null"


def _json_word(name: str) -> str:
    return {"dict": "object", "list": "array", "str": "string", "int": "integer",
            "bool": "boolean"}.get(name, name)


def cap_mask(names: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask


def cap_list(mask: int) -> list[str]:
    return [CAP_NAMES[i] for i in sorted(CAP_NAMES) if mask >> i & 1]


def kubernetes_capability(name: Any) -> str:
    """``NET_ADMIN`` (or ``CAP_NET_ADMIN``, any case) → ``CAP_NET_ADMIN``; ``ValueError`` for
    a name the kernel does not have."""
    if not isinstance(name, str):
        raise ValueError(f"capability must be a string, not {_json_type(name)}")
    upper = name.upper()
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in CAPABILITIES:
        raise ValueError(f'unknown capability "{name}"')
    return full


# ---------------------------------------------------------------- the bundle


def _capabilities(f: _Fields, host: HostFacts, warnings: list[str]) -> CapSets:
    caps = f.get("process.capabilities", dict)
    if caps is None:
        default = cap_mask(DEFAULT_CAPABILITIES)
        return CapSets(bounding=default, effective=default, permitted=default)
    masks = {}
    for name in CAP_SETS:
        listed = f.get(f"process.capabilities.{name}", list, [])
        mask = 0
        for i, cap in enumerate(listed):
            if not isinstance(cap, str) or cap not in CAPABILITIES:
                raise f.error(f"process.capabilities.{name}[{i}]",
                              f"unknown capability {json.dumps(cap)}")
            bit = 1 << CAPABILITIES[cap]
            if not host.capabilities & bit:
                raise f.error(f"process.capabilities.{name}[{i}]",
                              f"{cap} is not available to nsrun on this host (it is not in "
                              "nsrun's own bounding set)")
            mask |= bit
        masks[name] = mask
    return _consistent(CapSets(**masks), "process.capabilities", f.error, warnings)


def _consistent(caps: CapSets, where: str, error: Any, warnings: list[str]) -> CapSets:
    """Sets the kernel accepts: capset refuses an effective cap outside permitted and an
    inheritable one outside bounding; ambient ones outside permitted ∩ inheritable cannot
    be raised (dropped, as runc and crun do, with a warning)."""
    extra = caps.effective & ~caps.permitted
    if extra:
        raise error(f"{where}.effective", f"{' '.join(cap_list(extra))} not in the permitted "
                                          "set (the kernel refuses that)")
    extra = caps.inheritable & ~caps.bounding
    if extra:
        raise error(f"{where}.inheritable", f"{' '.join(cap_list(extra))} not in the "
                                            "bounding set (the kernel refuses that)")
    stray = caps.ambient & ~(caps.permitted & caps.inheritable)
    if stray:
        warnings.append(f"{where}.ambient: {' '.join(cap_list(stray))} ignored: an ambient "
                        "capability must be permitted and inheritable")
        caps = CapSets(caps.bounding, caps.effective, caps.permitted, caps.inheritable,
                       caps.ambient & ~stray)
    return caps


def _rlimits(f: _Fields, host: HostFacts) -> tuple[tuple[int, int, int], ...]:
    out: list[tuple[int, int, int]] = []
    seen: set[str] = set()
    for i, rl in enumerate(f.get("process.rlimits", list, [])):
        where = f"process.rlimits[{i}]"
        if not isinstance(rl, dict):
            raise f.error(where, f"expected object, got {_json_type(rl)}")
        kind = rl.get("type")
        if kind not in RLIMITS:
            raise f.error(f"{where}.type", f"unknown rlimit {json.dumps(kind)} (one of "
                                           f"{', '.join(sorted(RLIMITS))})")
        if kind in seen:
            raise f.error(f"{where}.type", f"{kind} given twice")
        seen.add(kind)
        soft = f.uint(f"{where}.soft", rl.get("soft"), 64)
        hard = f.uint(f"{where}.hard", rl.get("hard"), 64)
        if soft > hard:
            raise f.error(where, f"{kind} soft limit {soft} is above its hard limit {hard}")
        number = RLIMITS[kind]
        current = host.rlimits.get(number)
        if current is not None and hard > current[1] and not host.sys_resource:
            raise f.error(where, f"{kind} hard limit {_show(hard)} is above this host's "
                                 f"{_show(current[1])}, and nsrun lacks CAP_SYS_RESOURCE to "
                                 "raise it")
        if kind == "RLIMIT_NOFILE" and hard > host.nr_open:
            raise f.error(where, f"{kind} hard limit {_show(hard)} is above the kernel's "
                                 f"fs.nr_open {host.nr_open}")
        out.append((number, soft, hard))
    return tuple(out)


def _show(limit: int) -> str:
    return "unlimited" if limit == RLIM_INFINITY else str(limit)


def _user(f: _Fields) -> tuple[int, int, tuple[int, ...], int | None]:
    if f.get("process.user.username", str):
        raise f.error("process.user.username", "not supported on Linux (give uid and gid)")
    uid = f.uint("process.user.uid", f.get("process.user.uid", int, 0))
    gid = f.uint("process.user.gid", f.get("process.user.gid", int, 0))
    gids = tuple(f.uint(f"process.user.additionalGids[{i}]", g)
                 for i, g in enumerate(f.get("process.user.additionalGids", list, [])))
    umask = f.get("process.user.umask", int)
    if umask is not None and not 0 <= umask <= 0o777:
        raise f.error("process.user.umask", f"must be in 0..0777, not {umask}")
    return uid, gid, gids, DEFAULT_UMASK if umask is None else umask


def _oom_score_adj(f: _Fields, host: HostFacts) -> int | None:
    value = f.get("process.oomScoreAdj", int)
    if value is None:
        return None
    if not -1000 <= value <= 1000:
        raise f.error("process.oomScoreAdj", f"must be in -1000..1000, not {value}")
    if value < host.oom_score_adj and not host.sys_resource:
        raise f.error("process.oomScoreAdj", f"{value} is below nsrun's own "
                                             f"{host.oom_score_adj}, and nsrun lacks "
                                             "CAP_SYS_RESOURCE to lower it")
    return value


def _lsm(f: _Fields, host: HostFacts, warnings: list[str]) -> None:
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


def _paths(f: _Fields, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    listed = f.get(f"linux.{key}", list)
    if listed is None:
        return default
    for i, p in enumerate(listed):
        if not isinstance(p, str) or not p.startswith("/") or "\0" in p:
            raise f.error(f"linux.{key}[{i}]", f"expected an absolute path, got "
                                               f"{json.dumps(p)}")
    return tuple(listed)


def _sysctls(f: _Fields) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in f.get("linux.sysctl", dict, {}).items():
        where = f"linux.sysctl.{key}"
        if not isinstance(value, str):
            raise f.error(where, f"expected string, got {_json_type(value)}")
        norm = key.replace("/", ".")
        if norm in ("kernel.hostname", "kernel.domainname"):
            raise f.error(where, "the pod's UTS namespace is shared: set spec.hostname")
        if not (norm.startswith(("net.", "fs.mqueue.")) or norm in _IPC_SYSCTLS):
            raise f.error(where, "not a namespaced sysctl: it would change the host")
        if any(p in ("", ".", "..") for p in key.replace("/", ".").split(".")) or "\0" in value:
            raise f.error(where, "invalid sysctl key")
        out.append((key, value))
    return tuple(out)


def _devices(f: _Fields) -> tuple[Device, ...]:
    out = []
    for i, d in enumerate(f.get("linux.devices", list, [])):
        where = f"linux.devices[{i}]"
        if not isinstance(d, dict):
            raise f.error(where, f"expected object, got {_json_type(d)}")
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


Mapping = tuple[int, int, int]  # (containerID, hostID, size), as in /proc/<pid>/uid_map
_MAX_MAPPINGS = 340  # the kernel's limit on lines of a uid_map (Linux >= 4.15)


def _overlap(ranges: list[tuple[int, int]]) -> bool:
    ranges = sorted(ranges)
    return any(a + n > b for (a, n), (b, _) in zip(ranges, ranges[1:], strict=False))


def _mapping_list(f: _Fields, key: str) -> tuple[Mapping, ...]:
    out = []
    listed = f.get(f"linux.{key}", list) or []
    for i, m in enumerate(listed):
        where = f"linux.{key}[{i}]"
        if not isinstance(m, dict) or set(m) - {"containerID", "hostID", "size"}:
            raise f.error(where, "malformed mapping: expected {containerID, hostID, size}")
        cid, hid, size = (f.uint(f"{where}.{part}", m.get(part))
                          for part in ("containerID", "hostID", "size"))
        if size == 0:
            raise f.error(f"{where}.size", "malformed mapping: size must be at least 1")
        if cid + size > 2**32 or hid + size > 2**32:
            raise f.error(where, "malformed mapping: the range passes 2^32")
        out.append((cid, hid, size))
    if len(out) > _MAX_MAPPINGS:
        raise f.error(f"linux.{key}", f"at most {_MAX_MAPPINGS} mappings")
    if _overlap([(c, n) for c, _, n in out]) or _overlap([(h, n) for _, h, n in out]):
        raise f.error(f"linux.{key}", "malformed mapping: the ranges overlap")
    return tuple(out)


def _mappings(f: _Fields) -> tuple[tuple[Mapping, ...], tuple[Mapping, ...]]:
    """``linux.uidMappings``/``gidMappings`` and the ``user`` namespace that needs them:
    both or neither (as runc). Returns (uid mappings, gid mappings), empty without one."""
    uids, gids = _mapping_list(f, "uidMappings"), _mapping_list(f, "gidMappings")
    user_ns = None
    for i, ns in enumerate(f.get("linux.namespaces", list, [])):
        if isinstance(ns, dict) and ns.get("type") == "user":
            user_ns = f"linux.namespaces[{i}]"
            if ns.get("path"):
                raise f.error(f"{user_ns}.path", "joining an existing user namespace is not "
                                                 "supported: give uidMappings/gidMappings")
    if user_ns is None:
        for key, listed in (("uidMappings", uids), ("gidMappings", gids)):
            if listed:
                raise f.error(f"linux.{key}", "mappings need a user namespace "
                                              '({"type": "user"} in linux.namespaces)')
        return (), ()
    for key, listed in (("uidMappings", uids), ("gidMappings", gids)):
        if not listed:
            raise f.error(f"linux.{key}", f"a user namespace ({user_ns}) needs {key}")
    return uids, gids


def _mapped(ids: tuple[Mapping, ...], value: int) -> bool:
    return any(c <= value < c + n for c, _, n in ids)


def _check_user_ns(f: _Fields, uids: tuple[Mapping, ...], gids: tuple[Mapping, ...], uid: int,
                   gid: int, additional: tuple[int, ...], privileged: bool,
                   devices: tuple[Device, ...]) -> None:
    """What a container in a user namespace cannot have (BundleError, before any clone)."""
    if privileged:
        raise f.error("linux.uidMappings", "a privileged container cannot run in a user "
                                           "namespace")
    if devices:
        raise f.error("linux.devices", f"device nodes cannot be created in a user namespace "
                                       f"({devices[0].path})")
    if not _mapped(uids, uid):
        raise f.error("linux.uidMappings", f"the container's uid {uid} is not mapped")
    for g in (gid, *additional):
        if not _mapped(gids, g):
            raise f.error("linux.gidMappings", f"the container's gid {g} is not mapped")


def _propagation(f: _Fields) -> int:
    value = f.get("linux.rootfsPropagation", str, "")
    if value and value not in _PROPAGATION:
        raise f.error("linux.rootfsPropagation", f"must be one of "
                                                 f"{', '.join(_PROPAGATION)}, not "
                                                 f"{json.dumps(value)}")
    return _PROPAGATION.get(value, 0)


# ---------------------------------------------------------------- seccomp

_SECCOMP_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 0,  # one thread: nothing to synchronise
                  "SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
                  "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
_SECCOMP_CACHE: dict[str, tuple[bytes, int]] = {}


def _seccomp(f: _Fields) -> Seccomp | None:
    profile = f.get("linux.seccomp", dict)
    if profile is None:
        return None
    key = json.dumps(profile, sort_keys=True)
    cached = _SECCOMP_CACHE.get(key)
    if cached is None:
        cached = _build_seccomp(f, profile)
        if len(_SECCOMP_CACHE) >= 32:
            _SECCOMP_CACHE.clear()
        _SECCOMP_CACHE[key] = cached
    return Seccomp(*cached)


def _seccomp_action(f: _Fields, where: str, name: Any, errno_ret: Any, default_errno: int,
                    sc: Any) -> int:
    if errno_ret is not None:
        f.uint(f"{where.rsplit('.', 1)[0]}.errnoRet", errno_ret, 16)
    ret = default_errno if errno_ret is None else errno_ret
    actions = {"SCMP_ACT_KILL": sc.KILL, "SCMP_ACT_KILL_THREAD": sc.KILL_THREAD,
               "SCMP_ACT_KILL_PROCESS": sc.KILL_PROCESS, "SCMP_ACT_TRAP": sc.TRAP,
               "SCMP_ACT_ALLOW": sc.ALLOW, "SCMP_ACT_LOG": sc.LOG}
    if name == "SCMP_ACT_ERRNO":
        return sc.ERRNO(ret)
    if name == "SCMP_ACT_TRACE":
        return sc.TRACE(ret)
    if name == "SCMP_ACT_NOTIFY":
        raise f.error(where, "SCMP_ACT_NOTIFY needs a seccomp agent; nsrun has none")
    if name not in actions:
        raise f.error(where, f"invalid seccomp action {json.dumps(name)} (one of "
                             f"{', '.join(sorted([*actions, 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE']))})")
    return actions[name]


def _build_seccomp(f: _Fields, profile: dict[str, Any]) -> tuple[bytes, int]:
    """libseccomp (pyseccomp, imported only here) compiles the profile to BPF; the child
    loads it with seccomp(2) right before execve."""
    if profile.get("listenerPath"):
        raise f.error("linux.seccomp.listenerPath", "seccomp agents are not supported")
    flags = 0
    for i, flag in enumerate(f.get("linux.seccomp.flags", list, [])):
        if flag not in _SECCOMP_FLAGS:
            raise f.error(f"linux.seccomp.flags[{i}]", f"unknown flag {json.dumps(flag)}")
        flags |= _SECCOMP_FLAGS[flag]
    try:
        import pyseccomp as sc
    except (ImportError, OSError) as err:
        raise f.error("linux.seccomp", f"cannot build the filter: pyseccomp/libseccomp "
                                       f"unavailable ({err})") from None
    default_errno = f.uint("linux.seccomp.defaultErrnoRet",
                           profile.get("defaultErrnoRet", 1), 16)  # EPERM, like runc
    default = _seccomp_action(f, "linux.seccomp.defaultAction", profile.get("defaultAction"),
                              None, default_errno, sc)
    filt = sc.SyscallFilter(default)
    try:  # libseccomp >= 2.5: a binary tree of syscall numbers, not a linear scan
        filt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    except OSError:
        pass
    for i, arch in enumerate(f.get("linux.seccomp.architectures", list, [])):
        number = getattr(sc.Arch, arch.removeprefix("SCMP_ARCH_"), None) if isinstance(
            arch, str) and arch.startswith("SCMP_ARCH_") else None
        if number is None:
            raise f.error(f"linux.seccomp.architectures[{i}]",
                          f"unknown architecture {json.dumps(arch)}")
        try:
            if not filt.exist_arch(number):
                filt.add_arch(number)
        except OSError as err:
            raise f.error(f"linux.seccomp.architectures[{i}]", err.strerror) from None
    for i, rule in enumerate(f.get("linux.seccomp.syscalls", list, [])):
        _add_rule(f, filt, f"linux.seccomp.syscalls[{i}]", rule, default, sc)
    fd = os.memfd_create("nsrun-seccomp", os.MFD_CLOEXEC)
    with open(fd, "w+b", buffering=0) as out:
        filt.export_bpf(out)
        out.seek(0)
        bpf = out.read()
    return bpf, flags


def _add_rule(f: _Fields, filt: Any, where: str, rule: Any, default: int, sc: Any) -> None:
    ops = {"SCMP_CMP_NE": sc.NE, "SCMP_CMP_LT": sc.LT, "SCMP_CMP_LE": sc.LE,
           "SCMP_CMP_EQ": sc.EQ, "SCMP_CMP_GE": sc.GE, "SCMP_CMP_GT": sc.GT,
           "SCMP_CMP_MASKED_EQ": sc.MASKED_EQ}
    if not isinstance(rule, dict):
        raise f.error(where, f"expected object, got {_json_type(rule)}")
    names = rule.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise f.error(f"{where}.names", "expected a non-empty list of syscall names")
    action = _seccomp_action(f, f"{where}.action", rule.get("action"), rule.get("errnoRet"),
                             1, sc)
    args = []
    for j, arg in enumerate(rule.get("args") or []):
        at = f"{where}.args[{j}]"
        if not isinstance(arg, dict) or arg.get("op") not in ops:
            raise f.error(f"{at}.op", f"invalid comparison {json.dumps(arg.get('op') if isinstance(arg, dict) else arg)} "
                                      f"(one of {', '.join(ops)})")
        index = f.uint(f"{at}.index", arg.get("index"))
        if index > 5:
            raise f.error(f"{at}.index", f"a syscall has arguments 0..5, not {index}")
        args.append(sc.Arg(index, ops[arg["op"]], f.uint(f"{at}.value", arg.get("value", 0), 64),
                           f.uint(f"{at}.valueTwo", arg.get("valueTwo", 0), 64)))
    if action == default:
        return  # libseccomp refuses a rule that repeats the default action; runc skips it
    # libseccomp wants at most one comparison per argument in a rule: with repeats, one rule
    # per comparison (OR), as runc does.
    indexes = [a._arg for a in args]
    groups = [args] if len(set(indexes)) == len(indexes) else [[a] for a in args]
    for name in names:
        number = sc.resolve_syscall(sc.Arch.NATIVE, name)
        if number == -1:  # (< -1: a call of another architecture the filter may cover)
            continue  # unknown to libseccomp: skipped, like runc (profiles list many)
        for group in groups:
            try:
                filt.add_rule(action, number, *group)
            except OSError as err:
                if err.errno == errno.EEXIST:
                    continue  # the same rule again (podman's profiles repeat some): kept once
                raise f.error(where, f"syscall {name}: {err.strerror}") from None


# ---------------------------------------------------------------- Kubernetes on top


def _kube_seccomp(f: _Fields, pod: PodContext, caps: CapSets,
                  bundle: Seccomp | None) -> Seccomp | None:
    """``seccompProfile`` and ``--seccomp-default`` over the bundle's (``seccomp_select``)."""
    chosen = seccomp_select.choose(pod.security_context, pod.pod_security_context, pod.seccomp,
                                   f.get("linux.seccomp", dict) is not None,
                                   frozenset(cap_list(caps.bounding)))
    if chosen is seccomp_select.BUNDLE:
        return bundle
    if chosen is None:
        return None
    return _seccomp(_Fields({"linux": {"seccomp": chosen}}, "seccompProfile"))


def _effective(pod: PodContext, name: str) -> Any:
    """A field of the container's securityContext, else the pod's (same name)."""
    for sc in (pod.security_context, pod.pod_security_context):
        value = getattr(sc, name, None) if sc is not None else None
        if value is not None:
            return value
    return None


def _kube_capabilities(caps: CapSets, sc: SecurityContext, host: HostFacts) -> CapSets:
    """containerd's WithCapabilities: ALL first, then each add (bounding, effective,
    permitted), then each drop (all five sets)."""
    assert sc.capabilities is not None
    add, drop = sc.capabilities.add or [], sc.capabilities.drop or []
    names: dict[str, list[str]] = {"add": [], "drop": []}
    for which, listed in (("add", add), ("drop", drop)):
        for i, name in enumerate(listed):
            if isinstance(name, str) and name.upper() == "ALL":
                continue
            try:
                names[which].append(kubernetes_capability(name))
            except ValueError as err:
                raise BundleError(f"securityContext.capabilities.{which}[{i}]: {err}") from None
    b, e, p, i, a = (caps.bounding, caps.effective, caps.permitted, caps.inheritable,
                     caps.ambient)
    if any(isinstance(n, str) and n.upper() == "ALL" for n in add):
        b = e = p = host.capabilities
    if any(isinstance(n, str) and n.upper() == "ALL" for n in drop):
        b = e = p = i = a = 0
    for k, name in enumerate(names["add"]):
        bit = 1 << CAPABILITIES[name]
        if not host.capabilities & bit:
            raise BundleError(f"securityContext.capabilities.add[{k}]: {name} is not "
                              "available to nsrun on this host (it is not in nsrun's own "
                              "bounding set)")
        b, e, p = b | bit, e | bit, p | bit
    for name in names["drop"]:
        bit = ~(1 << CAPABILITIES[name])
        b, e, p, i, a = b & bit, e & bit, p & bit, i & bit, a & bit
    return CapSets(b, e, p, i, a)


def _device_policy(f: _Fields, devices: tuple[Device, ...],
                   privileged: bool) -> device_rules.Policy:
    """``linux.resources.devices`` plus the nodes the container creates (``core.devices``)."""
    try:
        rules = device_rules.parse(f.get("linux.resources.devices", list))
    except BundleError as err:
        raise BundleError(f"{f.where}: {err}") from None
    return device_rules.policy(rules, tuple((d.kind, d.major, d.minor) for d in devices),
                               privileged)


def host_devices(root: str = "/dev") -> tuple[Device, ...]:
    """Every character and block device under the host's /dev (for a privileged container),
    with its owner and mode; /dev/pts, /dev/shm and the like are left out."""
    out: list[Device] = []

    def walk(path: str, rel: str) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for entry in entries:
            if entry.name in _HOST_DEV_SKIP:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, f"{rel}/{entry.name}")
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append(Device(f"/dev{rel}/{entry.name}",
                                  "c" if stat.S_ISCHR(st.st_mode) else "b",
                                  os.major(st.st_rdev), os.minor(st.st_rdev),
                                  stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))

    walk(root, "")
    return tuple(out)


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
    f = _Fields(config, where)
    warnings: list[str] = []
    _check_kubernetes(pod)
    _lsm(f, host, warnings)
    uid_mappings, gid_mappings = _mappings(f)
    uid, gid, gids, umask = _user(f)
    sc = pod.security_context
    privileged = bool(sc and sc.privileged)
    caps = _capabilities(f, host, warnings)
    nnp = bool(f.get("process.noNewPrivileges", bool, False))
    readonly = bool(f.get("root.readonly", bool, False))
    seccomp = _seccomp(f)
    masked = _paths(f, "maskedPaths", DEFAULT_MASKED_PATHS)
    readonly_paths = _paths(f, "readonlyPaths", DEFAULT_READONLY_PATHS)
    devices = _devices(f)
    conf = Confinement(
        rlimits=_rlimits(f, host), oom_score_adj=_oom_score_adj(f, host),
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
        devices = devices + tuple(d for d in host_devices()
                                  if d.path not in {x.path for x in devices})
        if sc is not None and sc.capabilities is not None:
            warnings.append("securityContext.capabilities ignored: the container is "
                            "privileged")
    elif sc is not None and sc.capabilities is not None:
        caps = _consistent(_kube_capabilities(caps, sc, host), "capabilities",
                           lambda w, m: BundleError(f"securityContext.{w}: {m}"), warnings)
    if not privileged:
        seccomp = _kube_seccomp(f, pod, caps, seccomp)
    _run_as_non_root(pod, uid)
    if uid_mappings:
        _check_user_ns(f, uid_mappings, gid_mappings, uid, gid, gids, privileged, devices)
    return Confinement(
        uid=uid, gid=gid, additional_gids=gids, umask=conf.umask, readonly_root=readonly,
        capabilities=caps, no_new_privileges=nnp, seccomp=seccomp, rlimits=conf.rlimits,
        oom_score_adj=conf.oom_score_adj, sysctls=conf.sysctls, masked_paths=masked,
        readonly_paths=readonly_paths, devices=devices,
        device_policy=_device_policy(f, devices, privileged),
        rootfs_propagation=conf.rootfs_propagation, privileged=privileged,
        uid_mappings=uid_mappings, gid_mappings=gid_mappings, warnings=tuple(warnings))
