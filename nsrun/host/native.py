"""The gatekeeper of the C extension ``nsrun._native`` (the only module that imports it).

Everything between ``clone3()`` and ``execve()`` runs in C (``csrc/``): this module turns a
:class:`SpawnRequest` into the C request (argv/envp arrays, the resolved mount table, PATH
candidates, fds), calls it with the GIL released, and maps a failed child step to
:class:`~nsrun.errors.SpawnError`. The extension is imported on first use, so importing this
module stays cheap.

The child runs :data:`STEPS` in order; each skips itself when the request does not ask for
it. Failures outside the child use the step names ``pipe``, ``clone``, ``cgroup_attach``,
``pidfd_open`` and ``wait``.

Paths inside the container (mount targets, devices, masked and read-only paths) are resolved
by the child in the rootfs with ``openat2(RESOLVE_IN_ROOT)`` after the mounts before them, and
mounted onto through the resulting fd: a symlink in the image cannot send a mount or a write
to the host. A bind's ``sub_path`` is resolved the same way, by the child, inside its volume.

Capabilities, ``no_new_privs``, the seccomp filter (BPF built by the caller) and rlimits are
applied by the child right before ``execve`` in the order bounding → credentials →
no_new_privs → seccomp → capset → ambient (``csrc/caps.c`` says why).

:func:`exec_in` runs a new process inside a *running* container (``runc exec``): it joins the
target's namespaces, starts in its cgroup and gets the container's confinement from an
:class:`ExecRequest` (:meth:`ExecRequest.from_spawn` copies it from the container's
:class:`SpawnRequest`). The same C step functions apply it (``csrc/execin.c``).
:func:`socket_in_netns` opens a socket inside the pod's network namespace (probes);
:func:`create_sandbox` can keep a pause process holding the pod's namespaces.
"""

from __future__ import annotations

import errno
import os
import stat

import msgspec

from nsrun.errors import SandboxError, SpawnError

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

# Mount flags (<sys/mount.h>; stable kernel ABI, checked against the headers by a test).
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
MS_LAZYTIME = 0x2000000
MS_PROPAGATION = MS_UNBINDABLE | MS_PRIVATE | MS_SLAVE | MS_SHARED

# Namespaces a container may join (setns in the child, before any mount work).
NAMESPACE_TYPES: dict[str, int] = {
    "net": 0x40000000,  # CLONE_NEWNET
    "ipc": 0x08000000,  # CLONE_NEWIPC
    "uts": 0x04000000,  # CLONE_NEWUTS
    "cgroup": 0x02000000,  # CLONE_NEWCGROUP
}

# The child's steps, in the order it runs them (csrc/nsrun.h enum nsr_step).
STEPS: tuple[str, ...] = (
    "signals", "setsid", "setns", "sysctl", "oom_score_adj", "userns", "unshare", "fork",
    "mount_private", "bind_rootfs",
    "subpath", "mountpoint", "mount", "populate_dev", "devices", "masked_paths", "readonly_paths",
    "stop_hooks", "pivot_root", "rootfs_propagation", "readonly_root", "sethostname", "bounding",
    "setgroups", "setgid", "setuid", "chdir", "umask", "stdio", "console", "ctty", "close_fds",
    "rlimits", "no_new_privs", "seccomp", "capset", "ambient", "wait_start", "execve",
)

# Capabilities by kernel name (<linux/capability.h>; a test checks CAP_LAST_CAP).
CAPABILITIES: dict[str, int] = {name: i for i, name in enumerate((
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
))}
CAP_NAMES: dict[int, str] = {v: k for k, v in CAPABILITIES.items()}
RLIM_INFINITY = 2**64 - 1

# Failures of the parent around the child (spawn), and of the sandbox helper.
PARENT_STEPS: tuple[str, ...] = ("pipe", "clone", "cgroup_attach", "pidfd_open", "wait",
                                 "id_map")
SANDBOX_STEPS: tuple[str, ...] = ("pipe", "clone", "cgroup_attach", "sethostname", "lo_up",
                                  "pdeathsig", "pidfd_open", "wait", "open_ns")

# Namespaces exec_in joins when the target's differs from the caller's, in the order the
# fallback (one /proc/<pid>/ns fd at a time, before Linux 5.8) joins them: mnt last.
# user after net/ipc/uts (joining those needs the host's CAP_SYS_ADMIN) and before pid and mnt
# (which a user-namespaced container's user namespace owns).
EXEC_NAMESPACES: tuple[str, ...] = ("cgroup", "ipc", "uts", "net", "user", "pid", "mnt")
_EXEC_NS_TYPES: dict[str, int] = {**NAMESPACE_TYPES, "user": 0x10000000, "pid": 0x20000000,
                                  "mnt": 0x00020000}

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SANDBOX_NAMESPACES = ("net", "ipc", "uts")
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = ("fd", "stdin", "stdout", "stderr", "ptmx")

# How spawn() creates the child: 0 clone3 CLONE_VM|CLONE_VFORK on its own stack (default),
# 1 the path for kernels without clone3 (clone, cgroup.procs, pidfd_open, a "go" pipe),
# 2 clone3 without CLONE_VM. Tests set it to cover each path.
CLONE_AUTO, CLONE_FALLBACK, CLONE_FORK = 0, 1, 2
_CLONE_MODE = CLONE_AUTO

# OCI mount options: option -> (flags set, flags cleared).
_OCI_FLAGS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID),
    "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC),
    "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0),
    "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0), "atime": (0, MS_NOATIME),
    "nodiratime": (MS_NODIRATIME, 0), "diratime": (0, MS_NODIRATIME),
    "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0), "nolazytime": (0, MS_LAZYTIME),
    "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
}
_OCI_PROPAGATION: dict[str, int] = {
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
# runc/crun extensions this runtime does not implement: refused rather than passed as data.
_OCI_UNSUPPORTED = frozenset({
    "remount", "tmpcopyup", "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec",
    "rexec", "rnoatime", "ratime", "rrelatime", "rnorelatime", "rstrictatime",
    "rnostrictatime", "idmap", "ridmap", "copy-symlink", "nosymfollow", "rnosymfollow",
})


# An OCI mount entry key of nsrun's own: the volume mounts of a pod carry their subPath in it.
SUB_PATH_KEY = "nsrun.subPath"


class MountSpec(msgspec.Struct, frozen=True):
    """One mount, applied inside the rootfs before pivot_root.

    ``flags`` are ``MS_*`` bits. Propagation (``MS_PRIVATE``, ``MS_SLAVE``, ...) belongs in
    ``propagation`` (applied with its own mount call); bits found in ``flags`` are moved
    there, and then a ``MS_REC`` in ``flags`` applies to both the bind and the propagation.
    ``sub_path`` (a volume's ``subPath``) is resolved inside ``source`` as if ``source`` were
    ``/`` (symlinks never lead out of it) and created as a directory when missing.
    """

    target: str
    source: str = ""
    fstype: str = ""
    flags: int = 0
    data: str = ""
    propagation: int = 0
    sub_path: str = ""  # bind only: the source is this path inside ``source`` (a volume)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & MS_BIND)

    @classmethod
    def from_oci(cls, m: dict[str, Any], *, bundle: str | None = None) -> MountSpec:
        """A mount from an OCI ``config.json`` ``mounts`` entry. ``bundle`` resolves a
        relative bind source (relative to the bundle directory, as the spec says)."""
        if not isinstance(m, dict):
            raise ValueError(f"mount entry must be an object, not {type(m).__name__}")
        dest = m.get("destination")
        if not isinstance(dest, str) or not dest.startswith("/"):
            raise ValueError(f"mount destination must be an absolute path, not {dest!r}")
        fstype, source, options = m.get("type", ""), m.get("source", ""), m.get("options", [])
        if not isinstance(fstype, str) or not isinstance(source, str):
            raise ValueError(f"mount {dest}: type and source must be strings")
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise ValueError(f"mount {dest}: options must be a list of strings")
        flags, propagation, data = _parse_oci_options(dest, options)
        if fstype == "bind":
            flags |= MS_BIND
        if flags & MS_BIND:
            if data:
                raise ValueError(f"mount {dest}: unknown bind mount option {data.split(',')[0]!r}")
            if not source:
                raise ValueError(f"mount {dest}: a bind mount needs a source")
            if bundle and not source.startswith("/"):
                source = os.path.join(bundle, source)
            fstype = ""
        elif not fstype or fstype == "none":
            raise ValueError(f"mount {dest}: a type is needed (or a bind/rbind option)")
        sub_path = m.get(SUB_PATH_KEY, "")
        if not isinstance(sub_path, str) or (sub_path and not flags & MS_BIND):
            raise ValueError(f"mount {dest}: {SUB_PATH_KEY} must be a string, for a bind")
        return cls(target=dest, source=source, fstype=fstype, flags=flags, data=data,
                   propagation=propagation, sub_path=sub_path)


def _parse_oci_options(dest: str, options: list[str]) -> tuple[int, int, str]:
    flags, propagation, data = 0, 0, []
    for opt in options:
        if opt in _OCI_FLAGS:
            set_, clear = _OCI_FLAGS[opt]
            flags = (flags | set_) & ~clear
        elif opt in _OCI_PROPAGATION:
            propagation = _OCI_PROPAGATION[opt]
        elif opt in _OCI_UNSUPPORTED:
            raise ValueError(f"mount {dest}: option {opt!r} is not supported")
        elif opt:
            data.append(opt)
    return flags, propagation, ",".join(data)


class Device(msgspec.Struct, frozen=True):
    """A device node the child creates (``mknod``) at ``path`` inside the container."""

    path: str
    kind: str  # "c", "b" or "p"
    major: int = 0
    minor: int = 0
    mode: int = 0o666
    uid: int = 0
    gid: int = 0


class CapSets(msgspec.Struct, frozen=True):
    """The five capability sets as bit masks (bit n = capability n)."""

    bounding: int = 0
    effective: int = 0
    permitted: int = 0
    inheritable: int = 0
    ambient: int = 0


class ProcessSpec(msgspec.Struct, frozen=True, kw_only=True):
    """What every process nsrun starts gets: the command line and its confinement (the same
    C steps apply it to a container and to a process joining one). Security fields are off by
    default: ``capabilities`` None leaves them (root keeps all), ``seccomp_bpf`` is a
    ``struct sock_filter`` array, ``rlimits`` are ``(RLIMIT_*, soft, hard)``, ``umask`` -1
    inherits. ``cgroup_fd`` -1 stays in the caller's cgroup (a cgroup2 directory: started into
    by ``CLONE_INTO_CGROUP``); ``cgroup_join_fds``: cgroup v1 directories the process joins
    before ``execve`` (one per hierarchy); a stdio fd of -1 is /dev/null.
    ``console_fd``: a connected unix socket; the process opens a pty in the container's own
    devpts (``/dev/ptmx``, as its user), sends the master there (payload ``/dev/pts/N``, one fd
    in ``SCM_RIGHTS``, as runc's ``--console-socket``) and gets the slave as fds 0-2 and
    controlling terminal. ``preserve_fds`` n: the caller's fds 3..3+n-1 stay open in it.
    ``session_keyring``: the name of the session keyring it joins (made if missing; runc's
    ``_ses.<id>``); None keeps the caller's."""

    argv: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    capabilities: CapSets | None = None
    no_new_privs: bool = False
    seccomp_bpf: bytes = b""
    seccomp_flags: int = 0
    rlimits: tuple[tuple[int, int, int], ...] = ()
    umask: int = -1
    oom_score_adj: int | None = None
    cgroup_fd: int = -1
    cgroup_join_fds: tuple[int, ...] = ()
    stdin_fd: int = -1
    stdout_fd: int = -1
    stderr_fd: int = -1
    console_fd: int = -1
    preserve_fds: int = 0
    session_keyring: str | None = None


# What ``exec_in`` inherits from the container it joins (``ExecRequest.from_spawn``).
CONFINEMENT_FIELDS = ("uid", "gid", "additional_gids", "capabilities", "no_new_privs",
                      "seccomp_bpf", "seccomp_flags", "rlimits", "umask", "oom_score_adj", "session_keyring")


class SpawnRequest(ProcessSpec, frozen=True, kw_only=True):
    """What the C child needs to become the container process (see module doc).

    Beyond :class:`ProcessSpec`: the root filesystem and its mounts, the namespaces to join
    or make, ``sysctls`` as ``(key, value)`` with dotted keys, ``masked_paths``/
    ``readonly_paths``, ``devices`` and ``rootfs_propagation`` (``MS_*`` bits for ``/``).
    ``stops``: :data:`STOP_HOOKS`/:data:`STOP_START` bits, points where the child waits for
    a byte on ``stop_fd`` (:func:`spawn_stopped`; ``csrc/oci.c`` has the protocol).
    """

    rootfs: str
    rootfs_readonly: bool = False
    mounts: tuple[MountSpec, ...] = ()
    populate_dev: bool = True
    hostname: str | None = None
    join_ns: dict[str, int] = msgspec.field(default_factory=dict)
    new_pid_ns: bool = True
    die_with_parent: bool = False
    sysctls: tuple[tuple[str, str], ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    devices: tuple[Device, ...] = ()
    rootfs_propagation: int = 0
    # A user namespace when non-empty: (containerID, hostID, size) lines of uid_map/gid_map.
    uid_mappings: tuple[tuple[int, int, int], ...] = ()
    gid_mappings: tuple[tuple[int, int, int], ...] = ()
    stops: int = 0
    stop_fd: int = -1


class ExecRequest(ProcessSpec, frozen=True, kw_only=True):
    """A process to start inside a running container (:func:`exec_in`).

    The confinement fields mean what they mean in :class:`SpawnRequest` (the same C steps
    apply them); :meth:`from_spawn` copies them from the request the container was started
    with, which is what ``runc exec``/``kubectl exec`` give the new process: the container's
    user, groups, capabilities, no_new_privs, seccomp filter, rlimits, umask, oom_score_adj,
    and by default its env and working directory.

    ``argv[0]`` is looked up in ``PATH`` of ``env`` inside the container. ``stdin_fd`` (and
    the others) -1: ``/dev/null``; every other fd is closed. ``tty``: ``stdin_fd`` is a
    terminal (the slave of a pty) that becomes the process's controlling terminal (it is
    always a session leader). ``cgroup_fd``: a cgroup2 directory fd the process starts in
    (the container's leaf; -1: the caller's cgroup). ``namespaces``: which of
    :data:`EXEC_NAMESPACES` to join; None: each one the target does not share with the
    calling thread. ``path``: the executable (an OCI hook's ``path``, whose ``argv[0]`` may
    differ); "" looks ``argv[0]`` up.
    """

    tty: bool = False
    namespaces: tuple[str, ...] | None = None
    path: str = ""

    @classmethod
    def from_spawn(cls, req: SpawnRequest, argv: list[str], *, env: list[str] | None = None,
                   cwd: str | None = None, cgroup_fd: int = -1,
                   cgroup_join_fds: tuple[int, ...] = (), stdin_fd: int = -1,
                   stdout_fd: int = -1, stderr_fd: int = -1, tty: bool = False,
                   console_fd: int = -1) -> ExecRequest:
        """``argv`` with the confinement (and by default env and cwd) of the container that
        ``req`` started. The fds are the caller's: ``req``'s own were the container's."""
        inherited = {name: getattr(req, name) for name in CONFINEMENT_FIELDS}
        return cls(argv=list(argv), env=list(req.env if env is None else env),
                   cwd=req.cwd if cwd is None else cwd, cgroup_fd=cgroup_fd,
                   cgroup_join_fds=tuple(cgroup_join_fds), stdin_fd=stdin_fd,
                   stdout_fd=stdout_fd, stderr_fd=stderr_fd, tty=tty, console_fd=console_fd,
                   **inherited)


_NATIVE: Any = None


def _native() -> Any:
    """The extension module (ffi, lib), imported on first use."""
    global _NATIVE
    if _NATIVE is None:
        from nsrun import _native as mod

        _NATIVE = mod
    return _NATIVE


def has_clone3() -> bool:
    """True when the kernel (and any seccomp profile) lets us call clone3."""
    return bool(_native().lib.nsr_has_clone3())


def _step_name(step: int) -> str:
    if 0 <= step < len(STEPS):
        return STEPS[step]
    mod = _native()
    return mod.ffi.string(mod.lib.nsr_step_name(step)).decode()


def resolve_in_root(root: str, path: str) -> str:
    """``root`` joined with ``path`` as if ``root`` were ``/``: symlinks are followed but
    never out of ``root`` (like filepath-securejoin); missing parts are kept as written."""
    root = root.rstrip("/")
    todo = [p for p in reversed(path.split("/")) if p and p != "."]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        try:
            link = os.readlink(root + "/" + "/".join(done + [part]))
        except OSError:  # not a symlink, or not there (yet)
            done.append(part)
            continue
        links += 1
        if links > 40:
            raise ValueError(f"too many levels of symbolic links in {path!r} under {root}")
        if link.startswith("/"):
            done = []
        todo.extend(p for p in reversed(link.split("/")) if p and p != ".")
    return root + "/" + "/".join(done)


def exec_candidates(argv0: str, env: list[str]) -> list[str]:
    """Where the child tries ``argv0`` (inside the new root), in order: the PATH lookup."""
    if "/" in argv0:
        return [argv0]
    path = next((e[5:] for e in env if e.startswith("PATH=")), DEFAULT_PATH)
    return [(d or ".") + ("" if d.endswith("/") else "/") + argv0 for d in path.split(":")]


class _Builder:
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


def sysctl_path(key: str) -> str:
    """``net.ipv4.ip_forward`` → ``/proc/sys/net/ipv4/ip_forward`` (a key holding ``/`` is
    taken as a path already, as sysctl(8) does); ``ValueError`` for a key that could leave
    ``/proc/sys``."""
    parts = key.split("/") if "/" in key else key.split(".")
    if not key or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise ValueError(f"invalid sysctl key {key!r}")
    return "/proc/sys/" + "/".join(parts)


_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _check(req: SpawnRequest) -> None:
    if not req.argv or not req.argv[0]:
        raise ValueError("argv must not be empty")
    unknown = set(req.join_ns) - set(NAMESPACE_TYPES)
    if unknown:
        raise ValueError(f"cannot join namespace(s) {sorted(unknown)}: only "
                         f"{', '.join(NAMESPACE_TYPES)} can be joined")
    for m in req.mounts:
        if not m.target.startswith("/"):
            raise ValueError(f"mount target must be absolute: {m.target!r}")
        if m.flags & MS_BIND and not m.source.startswith("/"):
            raise ValueError(f"mount {m.target}: bind source must be an absolute host path, "
                             f"not {m.source!r}")
    for path in req.masked_paths + req.readonly_paths + tuple(d.path for d in req.devices):
        if not path.startswith("/"):
            raise ValueError(f"path must be absolute: {path!r}")
    for d in req.devices:
        if d.kind not in _DEVICE_TYPES:
            raise ValueError(f"device {d.path}: type must be c, b, u or p, not {d.kind!r}")
    if len(req.seccomp_bpf) % 8 or len(req.seccomp_bpf) > 8 * 4096:
        raise ValueError("seccomp_bpf must be whole sock_filter instructions (at most 4096)")
    for key, _ in req.sysctls:
        sysctl_path(key)
    if req.oom_score_adj is not None and not -1000 <= req.oom_score_adj <= 1000:
        raise ValueError(f"oom_score_adj must be in -1000..1000, not {req.oom_score_adj}")
    if bool(req.uid_mappings) != bool(req.gid_mappings):
        raise ValueError("a user namespace needs both uid_mappings and gid_mappings")


def _id_map(mappings: tuple[tuple[int, int, int], ...]) -> str:
    return "".join(f"{c} {h} {n}\n" for c, h, n in mappings)


def _c_mount(b: _Builder, cm: Any, m: MountSpec) -> None:
    propagation = m.propagation | (m.flags & MS_PROPAGATION)
    flags = m.flags & ~MS_PROPAGATION
    if m.flags & MS_PROPAGATION and m.flags & MS_REC:
        propagation |= MS_REC
    cm.source = b.cstr(m.source or m.fstype or "none")
    cm.target = b.cstr(m.target)  # resolved by the child, in the rootfs
    cm.fstype = b.cstr(m.fstype or None)
    cm.flags = flags
    cm.propagation = propagation
    cm.data = b.cstr(m.data or None)
    cm.sub_path = b.cstr(m.sub_path if m.flags & MS_BIND and m.sub_path else None)


def _c_security(b: _Builder, c: Any, req: SpawnRequest) -> None:
    """The container-only parts (devices, paths, sysctls), then the process's."""
    ffi = b.ffi
    devices = ffi.new("struct nsr_device[]", max(len(req.devices), 1))
    b.keep.append(devices)
    for i, d in enumerate(req.devices):
        devices[i].path = b.cstr(d.path)
        devices[i].mode = _DEVICE_TYPES[d.kind] | (d.mode & 0o7777)
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


def _c_process(b: _Builder, c: Any, req: SpawnRequest | ExecRequest) -> None:
    """What confines the process itself: shared by spawn and exec_in."""
    ffi = b.ffi
    c.set_oom_score_adj = int(req.oom_score_adj is not None)
    c.oom_score_adj = req.oom_score_adj or 0
    c.umask = req.umask
    limits = ffi.new("struct nsr_rlimit[]", max(len(req.rlimits), 1))
    b.keep.append(limits)
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
    c.session_keyring = b.cstr(req.session_keyring)
    if req.seccomp_bpf:
        prog = ffi.from_buffer(req.seccomp_bpf)
        b.keep.append(prog)
        c.seccomp_filter = prog
        c.seccomp_len = len(req.seccomp_bpf) // 8
        c.seccomp_flags = req.seccomp_flags


def _build(b: _Builder, req: SpawnRequest, stdio: list[int]) -> Any:
    ffi = b.ffi
    rootfs = os.path.realpath(req.rootfs)
    c = ffi.new("struct nsr_spawn_req *")
    b.keep.append(c)
    c.argv = b.cstrv(req.argv)
    c.envp = b.cstrv(req.env)
    c.exec_paths = b.cstrv(exec_candidates(req.argv[0], req.env))
    c.rootfs = b.cstr(rootfs)
    c.cwd = b.cstr(req.cwd or "/")
    c.uid, c.gid = req.uid, req.gid
    c.groups = b.array("uint32_t", list(req.additional_gids))
    c.ngroups = len(req.additional_gids)
    c.rootfs_readonly = int(req.rootfs_readonly)
    mounts = ffi.new("struct nsr_mount[]", max(len(req.mounts), 1))
    b.keep.append(mounts)
    for i, m in enumerate(req.mounts):
        _c_mount(b, mounts[i], m)
    c.mounts, c.nmounts = mounts, len(req.mounts)
    c.populate_dev = int(req.populate_dev)
    _c_security(b, c, req)
    # A hostname needs a uts namespace of its own; joining one keeps the pod's hostname.
    c.hostname = b.cstr(None if "uts" in req.join_ns else req.hostname)
    joined = [name for name in NAMESPACE_TYPES if name in req.join_ns]
    c.ns_fds = b.array("int", [req.join_ns[name] for name in joined])
    c.ns_types = b.array("int", [NAMESPACE_TYPES[name] for name in joined])
    c.nns = len(joined)
    c.new_pid_ns = int(req.new_pid_ns)
    c.die_with_parent = int(req.die_with_parent)
    c.cgroup_fd = req.cgroup_fd
    c.cgroup_join_fds = b.array("int", list(req.cgroup_join_fds))
    c.ncgroup_join = len(req.cgroup_join_fds)
    c.stdio = stdio
    c.clone_mode = _CLONE_MODE
    if req.uid_mappings:
        c.new_user_ns = 1
        c.uid_map = b.cstr(_id_map(req.uid_mappings))
        c.gid_map = b.cstr(_id_map(req.gid_mappings))
    c.stops, c.stop_fd = req.stops, req.stop_fd
    return c


def _rlimit_name(resource: int) -> str:
    import resource as res

    names = {getattr(res, n): n for n in dir(res) if n.startswith("RLIMIT_") and n != "RLIMIT_OFILE"}
    return names.get(resource, str(resource))


def _failure_note(req: SpawnRequest | ExecRequest, step: str, index: int,
                  joined: list[str] | None = None) -> str | None:
    """What a failed step was working on (``index``), for the error's note. ``joined``: the
    namespaces an exec joined one by one (its setns index)."""
    if index < 0:
        return None
    if isinstance(req, ExecRequest):
        if step == "clone" and index in (0, 1):
            return ("the process that joins the namespaces", "the process in the container")[index]
        if step == "setns":
            return f"namespace {joined[index]}" if joined and index < len(joined) else None
    elif step in ("subpath", "mountpoint", "mount") and index < len(req.mounts):
        m = req.mounts[index]
        sub = f" (subPath {m.sub_path})" if m.sub_path and step == "subpath" else ""
        return f"mount #{index}: {m.source or m.fstype}{sub} on {m.target}"
    elif step == "setns":
        joined = [name for name in NAMESPACE_TYPES if name in req.join_ns]
        return f"namespace {joined[index]}" if index < len(joined) else None
    if step == "populate_dev":
        names = DEV_NODES + DEV_LINKS
        return f"/dev/{names[index]}" if index < len(names) else None
    lists: dict[str, tuple[str, ...]] = {
        "sysctl": tuple(f"sysctl {k}" for k, _ in getattr(req, "sysctls", ())),
        "devices": tuple(f"device {d.path}" for d in getattr(req, "devices", ())),
        "masked_paths": tuple(f"masked path {p}" for p in getattr(req, "masked_paths", ())),
        "readonly_paths": tuple(f"read-only path {p}"
                                for p in getattr(req, "readonly_paths", ())),
        "rlimits": tuple(_rlimit_name(r) for r, _, _ in req.rlimits),
    }
    if step in lists:
        return lists[step][index] if index < len(lists[step]) else None
    if step in ("bounding", "ambient"):
        return CAP_NAMES.get(index, f"capability {index}")
    if step == "stdio":
        return f"fd {index}"
    if step == "id_map" and index in (0, 1):
        return ("uid_map", "gid_map")[index]
    if step == "execve":
        return f"exec {req.argv[0]}"
    return None


def open_in_root(root: str | int, path: str, create: str = "") -> int:
    """An ``O_PATH|O_CLOEXEC`` fd of ``path`` inside ``root`` (a directory path or fd),
    resolved by the kernel as if ``root`` were ``/`` (``openat2(RESOLVE_IN_ROOT)``): no
    symlink or ``..`` leads out of it. ``create`` ``"dir"`` or ``"file"`` makes what is
    missing (directories, the last one a directory or an empty file). ``OSError`` otherwise."""
    mod = _native()
    mode = {"": mod.lib.NSR_CREATE_NONE, "dir": mod.lib.NSR_CREATE_DIR,
            "file": mod.lib.NSR_CREATE_FILE}[create]
    rootfd = root if isinstance(root, int) else os.open(
        root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = mod.lib.nsr_open_in_root(rootfd, os.fsencode(path), mode)
        if fd < 0:
            err = mod.ffi.errno
            raise OSError(err, os.strerror(err), f"{path} in {root}")
        return fd
    finally:
        if not isinstance(root, int):
            os.close(rootfd)


def _spawn_call(req: SpawnRequest, call: Any) -> Any:
    """``call(mod, creq, stdio)`` with the C request of ``req`` built (and kept alive)."""
    _check(req)
    mod = _native()
    devnull = -1
    try:
        if -1 in (req.stdin_fd, req.stdout_fd, req.stderr_fd):
            devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        stdio = [fd if fd >= 0 else devnull for fd in (req.stdin_fd, req.stdout_fd, req.stderr_fd)]
        b = _Builder(mod.ffi)
        return call(mod, _build(b, req, stdio))
    finally:
        if devnull >= 0:
            os.close(devnull)


def _spawn_error(req: SpawnRequest | ExecRequest, step_id: int, errno_: int, index: int,
                 joined: list[str] | None = None) -> SpawnError:
    """The failure a child reported, with a note on what its step was working on."""
    step = _step_name(step_id)
    err = SpawnError(step, errno_)
    note = _failure_note(req, step, index, joined)
    if note:
        err.add_note(note)
    return err


STOP_HOOKS, STOP_START = 1, 2  # SpawnRequest.stops (csrc/nsrun.h NSR_STOP_*)
_STOPPED = -2  # the index of a "stopped" report (NSR_STOPPED)


def spawn_stopped(req: SpawnRequest) -> tuple[int, int, int, str]:
    """Start the container process of a request with ``stops``: ``(pid, pidfd, report_fd,
    stop)`` once it waits at its first stop point (``stop`` is the step's name, ``stop_hooks``
    or ``wait_start``), or once it exec()ed (``report_fd`` -1, ``stop`` ""). The child goes on
    when a byte is written to ``req.stop_fd``; follow it with :func:`next_stop` and close
    ``report_fd``. :class:`SpawnError` as :func:`spawn`."""
    def call(mod: Any, creq: Any) -> tuple[int, int, int, Any]:
        pidfd, report = mod.ffi.new("int *"), mod.ffi.new("int *")
        rep = mod.ffi.new("struct nsr_report *")
        pid = mod.lib.nsr_spawn_stopped(creq, pidfd, report, rep)
        return pid, pidfd[0], report[0], rep

    pid, pidfd, report_fd, rep = _spawn_call(req, call)
    if pid < 0:
        raise _spawn_error(req, rep.step, rep.err, rep.index)
    return pid, pidfd, report_fd, _step_name(rep.step) if report_fd >= 0 else ""


def next_stop(req: SpawnRequest, report_fd: int) -> str:
    """After a stop was released: the name of the next stop point the child waits at, or ""
    once it exec()ed (the report pipe's EOF). :class:`SpawnError` when a step failed (the
    caller kills and reaps the child; it has ``_exit``ed or is about to)."""
    data = b""
    while len(data) < 12:
        chunk = os.read(report_fd, 12 - len(data))
        if not chunk:
            break
        data += chunk
    if not data:
        return ""
    if len(data) < 12:
        raise SpawnError("wait", errno.EPROTO)
    step, err, index = (int.from_bytes(data[i:i + 4], "little", signed=True) for i in (0, 4, 8))
    if err == 0 and index == _STOPPED:
        return _step_name(step)
    raise _spawn_error(req, step, err, index)


def spawn(req: SpawnRequest) -> tuple[int, int]:
    """Start the container process; returns ``(pid, pidfd)`` once it has exec()ed.

    The pidfd is CLOEXEC (``os.waitid(os.P_PIDFD, ...)``, ``signal.pidfd_send_signal``).
    Raises :class:`SpawnError` naming the failed step (the child is reaped then) and
    ``ValueError`` for a malformed request.
    """
    def call(mod: Any, creq: Any) -> tuple[int, int, Any]:
        pidfd, rep = mod.ffi.new("int *"), mod.ffi.new("struct nsr_report *")
        return mod.lib.nsr_spawn(creq, pidfd, rep), pidfd[0], rep

    pid, pidfd, rep = _spawn_call(req, call)
    if pid < 0:
        raise _spawn_error(req, rep.step, rep.err, rep.index)
    return pid, pidfd


# ---- exec_in: a new process in a running container --------------------------------------

# setns(pidfd, flags) needs Linux 5.8; before, exec_in joins /proc/<pid>/ns/* fds one by one.
# None: not known yet (the first exec tries the pidfd and learns from an EINVAL).
_SETNS_PIDFD: bool | None = None


def _ns_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def target_namespaces(pid: int) -> tuple[str, ...]:
    """The :data:`EXEC_NAMESPACES` of process ``pid`` that the calling thread does not share
    (``OSError`` when the process is gone)."""
    return tuple(name for name in EXEC_NAMESPACES
                 if _ns_id(f"/proc/{pid}/ns/{name}") != _ns_id(f"/proc/thread-self/ns/{name}"))


def _pidfd_pid(pidfd: int) -> int:
    """The pid a pidfd refers to (``Pid:`` of its fdinfo; -1 once the process is reaped)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    raise ValueError(f"fd {pidfd} is not a pidfd")


def _check_target(pid: int, pidfd: int) -> None:
    """``pidfd`` is ``pid`` and it is still running, so what was read from /proc/<pid>
    before this call was about that process (a pid is not reused while its process lives)."""
    import signal

    try:
        if _pidfd_pid(pidfd) != pid:
            raise ValueError(f"pidfd {pidfd} does not refer to process {pid}")
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        raise SpawnError("setns", errno.ESRCH) from None


def _exec_namespaces(pid: int, pidfd: int, req: ExecRequest) -> tuple[str, ...]:
    if req.namespaces is not None:
        names = tuple(n for n in EXEC_NAMESPACES if n in req.namespaces)
    else:
        try:
            names = target_namespaces(pid)
        except FileNotFoundError:
            raise SpawnError("setns", errno.ESRCH) from None
    _check_target(pid, pidfd)
    return names


def _open_ns_fds(pid: int, pidfd: int, names: tuple[str, ...]) -> list[int]:
    fds: list[int] = []
    try:
        for name in names:
            fds.append(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
        _check_target(pid, pidfd)
    except FileNotFoundError:
        for fd in fds:
            os.close(fd)
        raise SpawnError("setns", errno.ESRCH) from None
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def _build_exec(b: _Builder, req: ExecRequest, stdio: list[int],
                ns: list[tuple[str, int]]) -> Any:
    c = b.ffi.new("struct nsr_spawn_req *")
    b.keep.append(c)
    c.argv = b.cstrv(req.argv)
    c.envp = b.cstrv(req.env)
    c.exec_paths = b.cstrv([req.path] if req.path else exec_candidates(req.argv[0], req.env))
    c.cwd = b.cstr(req.cwd or "/")
    c.uid, c.gid = req.uid, req.gid
    c.groups = b.array("uint32_t", list(req.additional_gids))
    c.ngroups = len(req.additional_gids)
    _c_process(b, c, req)
    c.ns_fds = b.array("int", [fd for _, fd in ns])
    c.ns_types = b.array("int", [_EXEC_NS_TYPES[name] for name, _ in ns])
    c.nns = len(ns)
    c.cgroup_fd = req.cgroup_fd
    c.cgroup_join_fds = b.array("int", list(req.cgroup_join_fds))
    c.ncgroup_join = len(req.cgroup_join_fds)
    c.stdio = stdio
    c.clone_mode = _CLONE_MODE
    c.ctty = int(req.tty or req.console_fd >= 0)
    return c


def _check_exec(req: ExecRequest) -> None:
    if not req.argv or not req.argv[0]:
        raise ValueError("argv must not be empty")
    if req.namespaces is not None and set(req.namespaces) - set(EXEC_NAMESPACES):
        raise ValueError(f"cannot join namespace(s) "
                         f"{sorted(set(req.namespaces) - set(EXEC_NAMESPACES))}: only "
                         f"{', '.join(EXEC_NAMESPACES)} can be joined")
    if len(req.seccomp_bpf) % 8 or len(req.seccomp_bpf) > 8 * 4096:
        raise ValueError("seccomp_bpf must be whole sock_filter instructions (at most 4096)")
    if req.oom_score_adj is not None and not -1000 <= req.oom_score_adj <= 1000:
        raise ValueError(f"oom_score_adj must be in -1000..1000, not {req.oom_score_adj}")
    if req.tty and req.stdin_fd < 0:
        raise ValueError("tty needs a terminal as stdin_fd")


def _exec_once(mod: Any, req: ExecRequest, stdio: list[int], target_pidfd: int, flags: int,
               ns: list[tuple[str, int]]) -> tuple[int, int, Any]:
    b = _Builder(mod.ffi)
    creq = _build_exec(b, req, stdio, ns)
    pidfd = mod.ffi.new("int *")
    rep = mod.ffi.new("struct nsr_report *")
    pid = mod.lib.nsr_exec_in(creq, target_pidfd, flags, pidfd, rep)
    return pid, pidfd[0], rep


def exec_in(target_pid: int, target_pidfd: int, req: ExecRequest) -> tuple[int, int]:
    """Start ``req`` inside the running container whose init is ``target_pid`` (with its
    pidfd ``target_pidfd``); returns ``(pid, pidfd)`` once the new process has exec()ed.

    The process joins every namespace of the target the caller does not share (mount, pid,
    net, ipc, uts, cgroup: it sees the container's root filesystem, processes and network),
    starts in ``req.cgroup_fd``, and gets ``req``'s confinement. Its parent is the caller
    (``CLONE_PARENT``): reap it with ``os.waitid(os.P_PIDFD, pidfd, os.WEXITED)`` (a caller
    that reaps with ``waitpid(-1)`` elsewhere would race for it). ``pid`` is in the caller's
    pid namespace. The pidfd is CLOEXEC.

    Raises :class:`SpawnError` naming the failed step (every process made is reaped then):
    ``setns`` with ``ESRCH`` when the target is gone, ``execve``/``chdir``/... as in
    :func:`spawn`, ``clone`` (note: which process) e.g. ``EAGAIN`` at the cgroup's pids.max;
    ``ValueError`` for a malformed request.
    """
    global _SETNS_PIDFD

    _check_exec(req)
    mod = _native()
    names = _exec_namespaces(target_pid, target_pidfd, req)
    flags = 0
    for name in names:
        flags |= _EXEC_NS_TYPES[name]
    devnull = -1
    ns_fds: list[int] = []
    try:
        if -1 in (req.stdin_fd, req.stdout_fd, req.stderr_fd):
            devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        stdio = [fd if fd >= 0 else devnull for fd in (req.stdin_fd, req.stdout_fd, req.stderr_fd)]
        pid, pidfd, rep = -1, -1, None
        if _SETNS_PIDFD is not False or not names:
            pid, pidfd, rep = _exec_once(mod, req, stdio, target_pidfd, flags, [])
        if names and (_SETNS_PIDFD is False or (
                pid < 0 and rep.step == STEPS.index("setns") and rep.err == errno.EINVAL)):
            # before Linux 5.8 (or on a refusal to say which namespace): one fd at a time
            ns_fds = _open_ns_fds(target_pid, target_pidfd, names)
            pid, pidfd, rep = _exec_once(mod, req, stdio, -1, 0, list(zip(names, ns_fds,
                                                                          strict=True)))
            if pid >= 0 and _SETNS_PIDFD is None:
                _SETNS_PIDFD = False
        elif pid >= 0 and names:
            _SETNS_PIDFD = True
    finally:
        if devnull >= 0:
            os.close(devnull)
        for fd in ns_fds:
            os.close(fd)
    if pid < 0:
        raise _spawn_error(req, rep.step, rep.err, rep.index, list(names))
    return pid, pidfd


def socket_in_netns(net_fd: int, family: int, type: int, proto: int = 0) -> int:
    """A socket (CLOEXEC, blocking) created inside the network namespace ``net_fd``: it
    binds and connects there whatever the namespace of the thread that uses it later. A
    short-lived C thread does the ``setns``, so no caller thread ever changes namespace.
    Wrap it with ``socket.socket(fileno=fd)`` (and ``setblocking(False)`` for asyncio).
    :class:`SandboxError` names the step (``setns``, ``socket``) and errno."""
    mod = _native()
    rep = mod.ffi.new("struct nsr_report *")
    fd = mod.lib.nsr_socket_in_netns(net_fd, family, type, proto, rep)
    if fd < 0:
        raise SandboxError("create a socket in the network namespace of", f"fd {net_fd}",
                           rep.err, _step_name(rep.step))
    return fd


def create_sandbox(hostname: str | None, *, keep: bool = False,
                   cgroup_fd: int = -1) -> dict[str, int]:
    """New net (``lo`` up), ipc and uts (``hostname`` set) namespaces, held by CLOEXEC fds
    ``{"net", "ipc", "uts"}``; close the fds to let the namespaces go. ``hostname`` None
    (``hostNetwork``): only the ipc namespace is new, ``net`` and ``uts`` are the node's.

    ``keep``: a pause process holds them too, for as long as the pod lives: it ignores and
    blocks every signal but SIGKILL/SIGSTOP, sleeps forever (a 160-byte static program on
    x86_64, ~12 kB resident), has no fd open, and dies with the thread that called this
    (``PR_SET_PDEATHSIG=SIGKILL``: call it from a thread that lives as long as the pod). It
    starts in ``cgroup_fd`` (a cgroup2 leaf) when given. The dict then also holds ``"pid"``
    and ``"pidfd"`` (CLOEXEC; readable when the pause process died): the caller kills
    (``signal.pidfd_send_signal(pidfd, SIGKILL)``), reaps (``os.waitid(os.P_PIDFD, ...)``)
    and closes it. Pop both before using the dict as ``SpawnRequest.join_ns``."""
    mod = _native()
    fds = mod.ffi.new("int[3]")
    pidfd = mod.ffi.new("int *")
    rep = mod.ffi.new("struct nsr_report *")
    name = mod.ffi.NULL if hostname is None else os.fsencode(hostname)
    pid = mod.lib.nsr_sandbox_create(name, int(keep), cgroup_fd, fds, pidfd, rep)
    if pid < 0:
        step = _step_name(rep.step)
        if step == "open_ns" and 0 <= rep.index < 3:
            step = f"open_ns {SANDBOX_NAMESPACES[rep.index]}"
        raise SandboxError("create sandbox", hostname or "(host network)", rep.err, step)
    out = dict(zip(SANDBOX_NAMESPACES, (fds[0], fds[1], fds[2]), strict=True))
    if keep:
        out["pid"], out["pidfd"] = pid, pidfd[0]
    return out


def attach_device_filter(cgroup_fd: int, policy: Any, replace_fd: int = -1) -> int:
    """Attach ``policy`` (a ``core.devices.Policy``) to the cgroup2 directory ``cgroup_fd`` as
    a BPF_PROG_TYPE_CGROUP_DEVICE program (``devices_bpf.c``), replacing the program
    ``replace_fd`` when >= 0; returns the program's fd (CLOEXEC: the program stays attached
    after it is closed, until the cgroup is removed). ``OSError`` with errno."""
    mod = _native()
    lib = mod.lib
    kinds = {"c": lib.BPF_DEVCG_DEV_CHAR, "b": lib.BPF_DEVCG_DEV_BLOCK, "a": 0}
    bits = {"r": lib.BPF_DEVCG_ACC_READ, "w": lib.BPF_DEVCG_ACC_WRITE,
            "m": lib.BPF_DEVCG_ACC_MKNOD}
    rules = mod.ffi.new("struct nsr_dev_rule[]", max(1, len(policy.exceptions)))
    for i, rule in enumerate(policy.exceptions):
        rules[i].type = kinds[rule.type]
        rules[i].major = -1 if rule.major is None else rule.major
        rules[i].minor = -1 if rule.minor is None else rule.minor
        rules[i].access = sum(bits[c] for c in rule.access)
    fd = lib.nsr_device_filter(cgroup_fd, rules, len(policy.exceptions),
                               int(policy.default_allow), replace_fd)
    if fd < 0:
        err = mod.ffi.errno
        raise OSError(err, os.strerror(err))
    return fd


def mount_tmpfs(target: str, data: str = "") -> None:
    """Mount a tmpfs on a host directory (``emptyDir`` with ``medium: Memory``)."""
    mod = _native()
    rc = mod.lib.mount(b"tmpfs", os.fsencode(target), b"tmpfs", MS_NOSUID | MS_NODEV,
                       os.fsencode(data) if data else mod.ffi.NULL)
    if rc < 0:
        raise SandboxError("mount tmpfs on", target, mod.ffi.errno, data)


def umount(target: str) -> None:
    """Detach the mount on ``target``; a path that is no mount point (any more) is fine."""
    mod = _native()
    if mod.lib.umount2(os.fsencode(target), mod.lib.MNT_DETACH) < 0:
        err = mod.ffi.errno
        if err not in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more), gone
            raise SandboxError("unmount", target, err)
