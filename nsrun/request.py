"""The requests the C extension is asked to start: pure data, no kernel call.

:class:`SpawnRequest` is a container process (root filesystem, mounts, namespaces, and its
confinement), :class:`ExecRequest` a process joining a running container; both are a
:class:`ProcessSpec` (command line, user, capabilities, seccomp, rlimits, stdio). ``bundle/``
builds them from an OCI bundle; ``host/spawn.py`` and ``host/execin.py`` hand them to C.
Flags (``MS_*``) and capability numbers are the kernel's, read from :mod:`nsrun.native`.
"""

from __future__ import annotations

import msgspec

# Namespaces a container may join (SpawnRequest.join_ns; setns in the child, before any
# mount work).
JOIN_NAMESPACES: tuple[str, ...] = ("net", "ipc", "uts", "cgroup")

# Namespaces an exec joins when the target's differs from the caller's, in the order the
# fallback (one /proc/<pid>/ns fd at a time, before Linux 5.8) joins them: mnt last.
# user after net/ipc/uts (joining those needs the host's CAP_SYS_ADMIN) and before pid and mnt
# (which a user-namespaced container's user namespace owns).
EXEC_NAMESPACES: tuple[str, ...] = ("cgroup", "ipc", "uts", "net", "user", "pid", "mnt")

# The PATH a process gets looked up in when its environment has none (runc's, Docker's).
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

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
    controlling terminal. ``preserve_fds`` n: the caller's fds 3..3+n-1 stay open in it."""

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


# What ``exec_in`` inherits from the container it joins (``ExecRequest.from_spawn``).
CONFINEMENT_FIELDS = ("uid", "gid", "additional_gids", "capabilities", "no_new_privs",
                      "seccomp_bpf", "seccomp_flags", "rlimits", "umask", "oom_score_adj")


class SpawnRequest(ProcessSpec, frozen=True, kw_only=True):
    """What the C child needs to become the container process (see module doc).

    Beyond :class:`ProcessSpec`: the root filesystem and its mounts, the namespaces to join
    or make, ``sysctls`` as ``(key, value)`` with dotted keys, ``masked_paths``/
    ``readonly_paths``, ``devices`` and ``rootfs_propagation`` (``MS_*`` bits for ``/``).
    ``stops``: ``NSR_STOP_HOOKS``/``NSR_STOP_START`` bits (:mod:`nsrun.native`), points where the child waits for
    a byte on ``stop_fd`` (``host.spawn.spawn_stopped``; ``csrc/oci.c`` has the protocol).
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
    """A process to start inside a running container (``host.execin.exec_in``).

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
