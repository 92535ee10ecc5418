"""Read a bundle's ``config.json`` and merge a pod container's overrides into a launch plan.

Override rule (documented in the README), from the bundle outward:

* ``process.args`` is the image's command line. A container ``command`` replaces it whole
  (followed by ``args`` if given); ``args`` alone keep the image's ``Entrypoint`` (an
  archive import records it in the ``org.nsrun.image.entrypoint`` annotation; otherwise the
  bundle's ``args[0]``) and replace the rest, like ``CMD`` after an ``ENTRYPOINT``.
* ``env``: the bundle's ``process.env``, then the container's ``env`` (same name wins).
* ``workingDir`` replaces ``process.cwd``. The security fields (``process.user``,
  ``capabilities``, ``noNewPrivileges``, ``rlimits``, ``linux.seccomp``, masked paths, ...)
  and the pod's ``securityContext`` are merged by :mod:`nsrun.bundle.security`, whose
  docstring states the precedence (a ``privileged`` container gets ``/sys`` read-write).
* ``root.path``/``root.readonly`` and ``mounts`` come from the bundle; the pod's volume mounts
  are added after them (same destination: the volume wins). The bundle's ``hostname`` is
  not applied: every container of a pod shares the pod's UTS namespace, whose hostname is the
  pod's (``spec.hostname`` or ``metadata.name``), as in Kubernetes.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import msgspec

from nsrun import jsonlite
from nsrun.bundle import hardening, security
from nsrun.errors import BundleError

# Mounts every container gets unless the bundle mounts something at the same destination.
DEFAULT_MOUNTS: tuple[dict[str, Any], ...] = (
    {"destination": "/proc", "type": "proc", "source": "proc",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
     "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
     "options": ["nosuid", "noexec", "nodev"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
)

# Mount types left out in a pod: the cgroup view needs a cgroup namespace (a later issue).
SKIPPED_TYPES = frozenset({"cgroup", "cgroup2"})


class LaunchPlan(msgspec.Struct, frozen=True):
    """Everything the spawn path needs for one container, resolved from bundle + pod."""

    argv: list[str]
    env: list[str]
    cwd: str
    rootfs: str
    mounts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    confinement: security.Confinement = security.Confinement()

    uid = property(lambda self: self.confinement.uid)
    gid = property(lambda self: self.confinement.gid)
    additional_gids = property(lambda self: self.confinement.additional_gids)
    readonly = property(lambda self: self.confinement.readonly_root)
    warnings = property(lambda self: self.confinement.warnings)


def load_config(bundle: Path) -> dict[str, Any]:
    """``config.json`` of ``bundle`` as a dict (read-only: shared by every container of the
    image); ``BundleError`` naming the file otherwise."""
    path = bundle / "config.json"
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as err:
        raise BundleError(f"{path}: cannot read OCI config: {err}") from None
    return _parsed_config(str(path), stamp)


@functools.lru_cache(maxsize=32)
def _parsed_config(path: str, stamp: int) -> dict[str, Any]:
    """Parsed once per file version: the pod check and each container start of the same
    image read the same file (``stamp`` makes a rewritten bundle count as new)."""
    try:
        return jsonlite.load_object(path)
    except (OSError, ValueError) as err:
        raise BundleError(f"{path}: cannot read OCI config: {err}") from None


def _field(config: dict, path: str, kind: type, default: Any, where: Path) -> Any:
    node: Any = config
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    if not isinstance(node, kind):
        raise BundleError(f"{where / 'config.json'}: {path}: expected {kind.__name__}")
    return node


def rootfs_of(config: dict, bundle: Path) -> str:
    """The absolute rootfs path (``root.path`` is relative to the bundle)."""
    root = _field(config, "root.path", str, "rootfs", bundle)
    path = root if os.path.isabs(root) else str(bundle / root)
    if not os.path.isdir(path):
        raise BundleError(f"{bundle / 'config.json'}: root.path {path}: not a directory")
    return path


def command_line(bundle_args: list[str], command: list[str] | None,
                 args: list[str] | None, entrypoint: list[str] | None = None) -> list[str]:
    """The override rule for the command line (see the module docstring); ``entrypoint``:
    the image's own, when its import recorded it."""
    if command:
        return list(command) + list(args or [])
    if args is not None:
        return (bundle_args[:1] if entrypoint is None else list(entrypoint)) + list(args)
    return list(bundle_args)


ENTRYPOINT_ANNOTATION = "org.nsrun.image.entrypoint"  # set by ``image import`` of an archive


def image_entrypoint(config: dict) -> list[str] | None:
    """The image's ``Entrypoint`` an archive import recorded (a JSON list), else None."""
    annotations = config.get("annotations")
    raw = annotations.get(ENTRYPOINT_ANNOTATION) if isinstance(annotations, dict) else None
    try:
        value = jsonlite.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value if ok else None


def merge_env(base: list[str], overrides: list[tuple[str, str]]) -> list[str]:
    """``K=V`` list: bundle entries, then overrides replacing same-named ones in place."""
    merged: dict[str, str] = {}
    for entry in base:
        key, _, value = entry.partition("=")
        merged[key] = value
    for key, value in overrides:
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def bundle_mounts(config: dict, bundle: Path) -> list[dict[str, Any]]:
    """The bundle's mounts with the defaults filled in, in mount order."""
    mounts = _field(config, "mounts", list, [], bundle)
    for m in mounts:
        if not isinstance(m, dict) or not isinstance(m.get("destination"), str):
            raise BundleError(f"{bundle / 'config.json'}: mounts: each entry needs a destination")
    given = {m["destination"].rstrip("/") for m in mounts}
    defaults = [m for m in DEFAULT_MOUNTS if m["destination"] not in given]
    return defaults + [m for m in mounts if m.get("type") not in SKIPPED_TYPES]


def _writable_sysfs(mounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A privileged container's /sys is read-write (containerd's WithWriteableSysfs)."""
    out = []
    for m in mounts:
        if m.get("type") == "sysfs":
            m = {**m, "options": [o for o in m.get("options", []) if o != "ro"] + ["rw"]}
        out.append(m)
    return out


def _user_ns_mounts(mounts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """In a user namespace: sysfs can only be mounted by the owner of the network namespace
    (the pod's belongs to the host's user namespace), so /sys is the host's, bound read-only
    (as runc does); an mqueue mount needs the owner of the IPC namespace: left out."""
    out, dropped = [], []
    for m in mounts:
        if m.get("type") == "sysfs":
            opts = [o for o in m.get("options", []) if o not in ("rw", "ro")]
            m = {"destination": m["destination"], "type": "bind", "source": "/sys",
                 "options": ["rbind", *opts, "ro"]}
        elif m.get("type") == "mqueue":
            dropped.append(m["destination"])
            continue
        out.append(m)
    return out, dropped


def plan(config: dict, bundle: Path, *, command: list[str] | None, args: list[str] | None,
         env: list[tuple[str, str]], working_dir: str | None,
         volume_mounts: list[dict[str, Any]], pod: security.PodContext | None = None,
         host: security.HostFacts | None = None) -> LaunchPlan:
    """Merge the container's overrides into the bundle's process (see the module docstring)."""
    argv = command_line(_field(config, "process.args", list, [], bundle), command, args,
                        image_entrypoint(config))
    if not argv:
        raise BundleError(f"{bundle / 'config.json'}: process.args is empty and the container "
                          "gives no command")
    confinement = security.confine(config, str(bundle / "config.json"), pod, host)
    volume_targets = {m["destination"] for m in volume_mounts}
    mounts = [m for m in bundle_mounts(config, bundle) if m["destination"] not in volume_targets]
    if confinement.privileged:
        mounts = _writable_sysfs(mounts)
    if confinement.uid_mappings:
        mounts, dropped = _user_ns_mounts(mounts)
        if dropped:
            confinement = msgspec.structs.replace(confinement, warnings=(
                *confinement.warnings, *(f"{d}: not mounted: the pod's namespace that "
                                         f"would back it is not owned by the container's "
                                         f"user namespace" for d in dropped)))
    return LaunchPlan(
        argv=argv,
        env=merge_env(_field(config, "process.env", list, [], bundle), env),
        cwd=working_dir or _field(config, "process.cwd", str, "/", bundle),
        rootfs=rootfs_of(config, bundle),
        mounts=hardening.nodev(mounts + volume_mounts, privileged=confinement.privileged,
                               makes_nodes=bool(confinement.devices)),
        confinement=confinement,
    )


def spawn_request(plan: LaunchPlan, *, join_ns: dict[str, int], cgroup_fd: int,
                  stdio: tuple[int, int, int] = (-1, -1, -1), **extra: Any):
    """The :class:`~nsrun.request.SpawnRequest` for ``plan``, joining ``join_ns`` and
    starting in ``cgroup_fd``; ``extra`` sets further request fields (the OCI face: stops,
    console, hostname, ...). ``BundleError`` for a mount the spawn path cannot express."""
    from nsrun.bundle.mounts import mount_from_oci
    from nsrun.request import SpawnRequest

    try:
        mounts = tuple(mount_from_oci(m) for m in plan.mounts)
    except ValueError as err:
        raise BundleError(f"mounts: {err}") from None
    c = plan.confinement
    return SpawnRequest(
        argv=plan.argv, env=plan.env, rootfs=plan.rootfs, cwd=plan.cwd, uid=c.uid,
        gid=c.gid, additional_gids=c.additional_gids, rootfs_readonly=c.readonly_root,
        mounts=mounts, join_ns=dict(join_ns), cgroup_fd=cgroup_fd,
        stdin_fd=stdio[0], stdout_fd=stdio[1], stderr_fd=stdio[2],
        capabilities=c.capabilities, no_new_privs=c.no_new_privileges,
        seccomp_bpf=c.seccomp.bpf if c.seccomp else b"",
        seccomp_flags=c.seccomp.flags if c.seccomp else 0,
        rlimits=c.rlimits, umask=-1 if c.umask is None else c.umask,
        oom_score_adj=c.oom_score_adj, sysctls=c.sysctls, masked_paths=c.masked_paths,
        readonly_paths=c.readonly_paths, devices=c.devices,
        rootfs_propagation=c.rootfs_propagation,
        uid_mappings=c.uid_mappings, gid_mappings=c.gid_mappings, **extra)

