"""``linux.namespaces`` of a config → what the spawn path joins or makes.

* ``mount``: always a new one (joining one by ``path`` is refused).
* ``pid``: new (the container's init is pid 1) or the host's when absent; joining one by
  ``path`` is refused (``setns`` moves only children into it).
* ``network``, ``ipc``, ``uts``: a ``path`` is opened and joined; new ones come from the
  pods' sandbox helper (``nsfds.create_sandbox``: ``lo`` up, the config's ``hostname`` set),
  held by fds until the container holds them; absent: the host's.
* ``cgroup``: joined by ``path``; a new one is refused for now.
* ``user``: ``linux.uidMappings``/``gidMappings`` (``nsrun.bundle.security`` checks them).
* The CRI annotations: a container whose ``io.kubernetes.cri.container-type`` (containerd)
  or ``io.kubernetes.cri-o.ContainerType`` (CRI-O) is ``container`` joins the network, IPC
  and UTS namespaces of its sandbox container (``…sandbox-id`` / ``…SandboxID``, a container
  of the same ``--root``) wherever its config gives no ``path``: the pod's shared namespaces,
  as the kubelet's sandbox gives them.
"""

from __future__ import annotations

import os

from nsrun.errors import OciError

# OCI namespace type -> the name nsrun's spawn path uses (and /proc/<pid>/ns/<name>).
JOINABLE = {"network": "net", "ipc": "ipc", "uts": "uts", "cgroup": "cgroup"}
SANDBOX_SHARED = ("network", "ipc", "uts")
KNOWN = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
CRI_TYPE = ("io.kubernetes.cri.container-type", "io.kubernetes.cri-o.ContainerType")
CRI_SANDBOX = ("io.kubernetes.cri.sandbox-id", "io.kubernetes.cri-o.SandboxID")


class Namespaces:
    """What a container gets: ``join`` (spawn name → fd, owned here until :meth:`close`),
    ``new_pid``, ``hostname`` (for a new uts namespace)."""

    def __init__(self) -> None:
        self.join: dict[str, int] = {}
        self.new_pid = False
        self.hostname: str | None = None
        self.new: list[str] = []  # OCI types to make

    def close(self) -> None:
        for fd in self.join.values():
            os.close(fd)
        self.join.clear()


def _entries(config: dict) -> dict[str, str | None]:
    linux = config.get("linux") or {}
    entries: dict[str, str | None] = {}
    listed = linux.get("namespaces") or []
    if not isinstance(listed, list):
        raise OciError("config.json: linux.namespaces: expected an array")
    for i, ns in enumerate(listed):
        kind = ns.get("type") if isinstance(ns, dict) else None
        if kind not in KNOWN:
            raise OciError(f"config.json: linux.namespaces[{i}].type: unknown namespace "
                           f"{kind!r}")
        if kind in entries:
            raise OciError(f"config.json: linux.namespaces: {kind} given twice")
        path = ns.get("path") or None
        if path is not None and not isinstance(path, str):
            raise OciError(f"config.json: linux.namespaces[{i}].path: expected a string")
        entries[kind] = path
    return entries


def sandbox_paths(config: dict, root: str) -> dict[str, str]:
    """For a CRI ``container``: its sandbox container's namespace files by OCI type."""
    notes = config.get("annotations") or {}
    kind = next((notes[k] for k in CRI_TYPE if k in notes), None)
    sandbox = next((notes[k] for k in CRI_SANDBOX if k in notes), None)
    if kind != "container" or not sandbox:
        return {}
    from nsrun.oci.state import Container

    target = Container(root, sandbox)
    record = target.record()
    if record is None or target.status(record) not in ("created", "running", "paused"):
        raise OciError(f"sandbox container {sandbox} of this container is not running")
    pid = record["pid"]
    return {t: f"/proc/{pid}/ns/{JOINABLE[t]}" for t in SANDBOX_SHARED}


def resolve(config: dict, root: str) -> Namespaces:
    """The container's namespaces; ``OciError`` naming the entry that cannot be honoured."""
    entries = _entries(config)
    if "mount" not in entries:
        raise OciError("config.json: linux.namespaces: a mount namespace is required")
    for kind in ("mount", "pid", "user", "time"):
        if entries.get(kind):
            raise OciError(f"config.json: linux.namespaces: joining a {kind} namespace by "
                           "path is not supported")
    if "time" in entries:
        raise OciError("config.json: linux.namespaces: time namespaces are not supported")
    if "cgroup" in entries and not entries["cgroup"]:
        raise OciError("config.json: linux.namespaces: a new cgroup namespace is not "
                       "supported (give a path to join one, or none)")
    shared = sandbox_paths(config, root)
    ns = Namespaces()
    ns.new_pid = "pid" in entries
    try:
        for kind, name in JOINABLE.items():
            if kind not in entries:
                continue
            path = entries[kind] or shared.get(kind)
            if path:
                ns.join[name] = _open_ns(kind, path)
            else:
                ns.new.append(kind)
        if ns.new:
            _make(ns, config)
    except BaseException:
        ns.close()
        raise
    return ns


def _open_ns(kind: str, path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise OciError(f"config.json: {kind} namespace {path}: {err.strerror}") from None


def _make(ns: Namespaces, config: dict) -> None:
    """New network/ipc/uts namespaces from the sandbox helper (lo up, hostname set)."""
    from nsrun.host import nsfds

    hostname = config.get("hostname") if "uts" in ns.new else None
    if hostname is not None and not isinstance(hostname, str):
        raise OciError("config.json: hostname: expected a string")
    made = nsfds.create_sandbox(hostname or os.uname().nodename)
    for kind, name in JOINABLE.items():
        fd = made.pop(name, -1)
        if kind in ns.new and fd >= 0:
            ns.join[name] = fd
        elif fd >= 0:
            os.close(fd)
