"""The C request (``struct nsr_spawn_req``) built from a :mod:`nsrun.request` type.

The parent prepares every buffer the child will use (argv/envp arrays, the mount table,
``PATH`` candidates, the rlimits, capability masks and seccomp program, the stdio fds) so
that the child, between ``clone3`` and ``execve``, only reads memory. :class:`Builder` owns
the cffi buffers of one request: they must outlive the C call. Used by ``host/spawn.py``
(:func:`build_spawn`) and ``host/execin.py`` (:func:`build_exec`).
"""

from __future__ import annotations

import contextlib
import os
import stat

from nsrun import native
from nsrun.request import DEFAULT_PATH

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from nsrun.request import ExecRequest, MountSpec, ProcessSpec, SpawnRequest

DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


class Builder:
    """Owns the cffi buffers of one request (they must outlive the call)."""

    def __init__(self, ffi: Any) -> None:
        self.ffi = ffi
        self.keep: list[Any] = []

    def cstr(self, s: str | None) -> Any:
        if s is None:
            return self.ffi.NULL
        b = self.ffi.new("char[]", os.fsencode(s))
        self.keep.append(b)
        return b

    def cstrv(self, items: list[str]) -> Any:
        arr = self.ffi.new("char *[]", [self.cstr(s) for s in items] + [self.ffi.NULL])
        self.keep.append(arr)
        return arr

    def array(self, ctype: str, items: list[Any]) -> Any:
        arr = self.ffi.new(f"{ctype}[]", items or [0])
        self.keep.append(arr)
        return arr

    def new(self, ctype: str, n: int | None = None) -> Any:
        obj = self.ffi.new(ctype) if n is None else self.ffi.new(ctype, n)
        self.keep.append(obj)
        return obj


@contextlib.contextmanager
def stdio_fds(req: ProcessSpec) -> Iterator[list[int]]:
    """The request's three stdio fds, ``/dev/null`` (open for the call) where one is -1."""
    devnull = -1
    try:
        if -1 in (req.stdin_fd, req.stdout_fd, req.stderr_fd):
            devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        yield [fd if fd >= 0 else devnull for fd in (req.stdin_fd, req.stdout_fd, req.stderr_fd)]
    finally:
        if devnull >= 0:
            os.close(devnull)


def exec_candidates(argv0: str, env: list[str]) -> list[str]:
    """Where the child tries ``argv0`` (inside the new root), in order: the PATH lookup."""
    if "/" in argv0:
        return [argv0]
    path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    return [(d or ".") + ("" if d.endswith("/") else "/") + argv0 for d in path.split(":")]


def sysctl_path(key: str) -> str:
    """``net.ipv4.ip_forward`` → ``/proc/sys/net/ipv4/ip_forward`` (a key holding ``/`` is
    taken as a path already, as sysctl(8) does); ``ValueError`` for a key that could leave
    ``/proc/sys``."""
    parts = key.split("/") if "/" in key else key.split(".")
    if not key or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise ValueError(f"invalid sysctl key {key!r}")
    return "/proc/sys/" + "/".join(parts)


def _id_map(mappings: tuple[tuple[int, int, int], ...]) -> str:
    return "".join(f"{c} {h} {n}\n" for c, h, n in mappings)


def _c_mount(b: Builder, cm: Any, m: MountSpec) -> None:
    in_flags = m.flags & native.MS_PROPAGATION
    propagation = m.propagation | in_flags
    if in_flags and m.flags & native.MS_REC:
        propagation |= native.MS_REC
    cm.source = b.cstr(m.source or m.fstype or "none")
    cm.target = b.cstr(m.target)  # resolved by the child, in the rootfs
    cm.fstype = b.cstr(m.fstype or None)
    cm.flags = m.flags & ~native.MS_PROPAGATION
    cm.propagation = propagation
    cm.data = b.cstr(m.data or None)
    cm.sub_path = b.cstr(m.sub_path if m.flags & native.MS_BIND and m.sub_path else None)


def _c_security(b: Builder, c: Any, req: SpawnRequest) -> None:
    """The container-only parts (devices, paths, sysctls), then the process's."""
    ffi = b.ffi
    devices = b.new("struct nsr_device[]", max(len(req.devices), 1))
    for i, d in enumerate(req.devices):
        devices[i].path = b.cstr(d.path)
        devices[i].mode = DEVICE_TYPES[d.kind] | (d.mode & 0o7777)
        devices[i].uid, devices[i].gid = d.uid, d.gid
        devices[i].rdev = os.makedev(d.major, d.minor)
    c.devices, c.ndevices = devices, len(req.devices)
    c.masked_paths = b.cstrv(list(req.masked_paths)) if req.masked_paths else ffi.NULL
    c.readonly_paths = b.cstrv(list(req.readonly_paths)) if req.readonly_paths else ffi.NULL
    c.rootfs_propagation = req.rootfs_propagation
    if req.sysctls:
        c.sysctl_paths = b.cstrv([sysctl_path(k) for k, _ in req.sysctls])
        c.sysctl_values = b.cstrv([v for _, v in req.sysctls])
    _c_process(b, c, req)


def _c_process(b: Builder, c: Any, req: ProcessSpec) -> None:
    """What confines the process itself: shared by spawn and exec_in."""
    c.set_oom_score_adj = int(req.oom_score_adj is not None)
    c.oom_score_adj = req.oom_score_adj or 0
    c.umask = req.umask
    limits = b.new("struct nsr_rlimit[]", max(len(req.rlimits), 1))
    for i, (resource, soft, hard) in enumerate(req.rlimits):
        limits[i].resource, limits[i].soft, limits[i].hard = resource, soft, hard
    c.rlimits, c.nrlimits = limits, len(req.rlimits)
    if req.capabilities is not None:
        caps = req.capabilities
        c.set_caps = 1
        c.caps.bounding, c.caps.effective = caps.bounding, caps.effective
        c.caps.permitted, c.caps.inheritable = caps.permitted, caps.inheritable
        c.caps.ambient = caps.ambient
    c.no_new_privs = int(req.no_new_privs)
    if req.console_fd >= 0:
        c.console, c.console_fd, c.ctty = 1, req.console_fd, 1
    c.preserve_fds = req.preserve_fds
    if req.seccomp_bpf:
        prog = b.ffi.from_buffer(req.seccomp_bpf)
        b.keep.append(prog)
        c.seccomp_filter = prog
        c.seccomp_len = len(req.seccomp_bpf) // 8
        c.seccomp_flags = req.seccomp_flags


def _c_common(b: Builder, req: ProcessSpec, exec_paths: list[str], stdio: list[int],
              clone_mode: int) -> Any:
    """The request fields a container process and an exec share."""
    c = b.new("struct nsr_spawn_req *")
    c.argv = b.cstrv(req.argv)
    c.envp = b.cstrv(req.env)
    c.exec_paths = b.cstrv(exec_paths)
    c.cwd = b.cstr(req.cwd or "/")
    c.uid, c.gid = req.uid, req.gid
    c.groups = b.array("uint32_t", list(req.additional_gids))
    c.ngroups = len(req.additional_gids)
    c.cgroup_fd = req.cgroup_fd
    c.cgroup_join_fds = b.array("int", list(req.cgroup_join_fds))
    c.ncgroup_join = len(req.cgroup_join_fds)
    c.stdio = stdio
    c.clone_mode = clone_mode
    return c


def _c_namespaces(b: Builder, c: Any, ns: list[tuple[str, int]]) -> None:
    """Join each ``(name, fd)`` in this order."""
    flags = native.NS_FLAGS
    c.ns_fds = b.array("int", [fd for _, fd in ns])
    c.ns_types = b.array("int", [flags[name] for name, _ in ns])
    c.nns = len(ns)


def build_spawn(b: Builder, req: SpawnRequest, stdio: list[int], clone_mode: int) -> Any:
    """The C request of a container process (``nsr_spawn``)."""
    c = _c_common(b, req, exec_candidates(req.argv[0], req.env), stdio, clone_mode)
    c.rootfs = b.cstr(os.path.realpath(req.rootfs))
    c.rootfs_readonly = int(req.rootfs_readonly)
    mounts = b.new("struct nsr_mount[]", max(len(req.mounts), 1))
    for i, m in enumerate(req.mounts):
        _c_mount(b, mounts[i], m)
    c.mounts, c.nmounts = mounts, len(req.mounts)
    c.populate_dev = int(req.populate_dev)
    _c_security(b, c, req)
    # A hostname needs a uts namespace of its own; joining one keeps the pod's hostname.
    c.hostname = b.cstr(None if "uts" in req.join_ns else req.hostname)
    _c_namespaces(b, c, joined_namespaces(req))
    c.new_pid_ns = int(req.new_pid_ns)
    c.die_with_parent = int(req.die_with_parent)
    if req.uid_mappings:
        c.new_user_ns = 1
        c.uid_map = b.cstr(_id_map(req.uid_mappings))
        c.gid_map = b.cstr(_id_map(req.gid_mappings))
    c.stops, c.stop_fd = req.stops, req.stop_fd
    return c


def joined_namespaces(req: SpawnRequest) -> list[tuple[str, int]]:
    """The ``(name, fd)`` pairs a container joins, in the order the child joins them."""
    from nsrun.request import JOIN_NAMESPACES

    return [(name, req.join_ns[name]) for name in JOIN_NAMESPACES if name in req.join_ns]


def build_exec(b: Builder, req: ExecRequest, stdio: list[int], ns: list[tuple[str, int]],
               clone_mode: int) -> Any:
    """The C request of a process joining a container (``nsr_exec_in``); ``ns``: namespace
    fds joined one at a time (none: the caller joins by pidfd)."""
    paths = [req.path] if req.path else exec_candidates(req.argv[0], req.env)
    c = _c_common(b, req, paths, stdio, clone_mode)
    _c_process(b, c, req)
    _c_namespaces(b, c, ns)
    c.ctty = int(req.tty or req.console_fd >= 0)
    return c
