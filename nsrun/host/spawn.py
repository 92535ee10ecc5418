"""Start a container process: a :class:`~nsrun.request.SpawnRequest` handed to the C
extension, which does everything between ``clone3()`` and ``execve()`` (``csrc/spawn.c``, the child's steps in ``csrc/steps.c``).

The child runs the steps of :data:`nsrun.native.STEPS` in order; each skips itself when the
request does not ask for it. Failures outside the child use the step names ``pipe``,
``clone``, ``cgroup_attach``, ``pidfd_open``, ``wait`` and ``id_map``.

Paths inside the container (mount targets, devices, masked and read-only paths) are resolved
by the child in the rootfs with ``openat2(RESOLVE_IN_ROOT)`` after the mounts before them, and
mounted onto through the resulting fd: a symlink in the image cannot send a mount or a write
to the host. A bind's ``sub_path`` is resolved the same way, by the child, inside its volume.

Capabilities, ``no_new_privs``, the seccomp filter (BPF built by the caller) and rlimits are
applied by the child right before ``execve`` in the order bounding → credentials →
no_new_privs → seccomp → capset → ambient (``csrc/caps.c`` says why).

``clone_mode`` (every function here takes it; None is ``NSR_CLONE_AUTO``) says how the child
is made: ``NSR_CLONE_AUTO`` clone3 ``CLONE_VM|CLONE_VFORK`` on its own stack,
``NSR_CLONE_FALLBACK`` the path for kernels without clone3 (clone, ``cgroup.procs``,
``pidfd_open``, a "go" pipe), ``NSR_CLONE_FORK`` clone3 without ``CLONE_VM``.
"""

from __future__ import annotations

import errno

from nsrun import native
from nsrun.errors import SpawnError
from nsrun.host.childreport import spawn_error
from nsrun.host.childreq import DEVICE_TYPES, Builder, build_spawn, stdio_fds, sysctl_path

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

    from nsrun.request import SpawnRequest


def has_clone3() -> bool:
    """True when the kernel (and any seccomp profile) lets us call clone3."""
    return bool(native.ext().lib.nsr_has_clone3())


def clone_mode_or_auto(clone_mode: int | None) -> int:
    return native.NSR_CLONE_AUTO if clone_mode is None else clone_mode


def _check_paths(req: SpawnRequest) -> None:
    for m in req.mounts:
        if not m.target.startswith("/"):
            raise ValueError(f"mount target must be absolute: {m.target!r}")
        if m.flags & native.MS_BIND and not m.source.startswith("/"):
            raise ValueError(f"mount {m.target}: bind source must be an absolute host path, "
                             f"not {m.source!r}")
    for path in req.masked_paths + req.readonly_paths + tuple(d.path for d in req.devices):
        if not path.startswith("/"):
            raise ValueError(f"path must be absolute: {path!r}")
    for d in req.devices:
        if d.kind not in DEVICE_TYPES:
            raise ValueError(f"device {d.path}: type must be c, b, u or p, not {d.kind!r}")


def check_process(req: Any) -> None:
    """``ValueError`` for what any process request (spawn or exec) cannot be."""
    if not req.argv or not req.argv[0]:
        raise ValueError("argv must not be empty")
    if len(req.seccomp_bpf) % 8 or len(req.seccomp_bpf) > 8 * 4096:
        raise ValueError("seccomp_bpf must be whole sock_filter instructions (at most 4096)")
    if req.oom_score_adj is not None and not -1000 <= req.oom_score_adj <= 1000:
        raise ValueError(f"oom_score_adj must be in -1000..1000, not {req.oom_score_adj}")


def _check(req: SpawnRequest) -> None:
    from nsrun.request import JOIN_NAMESPACES

    check_process(req)
    unknown = set(req.join_ns) - set(JOIN_NAMESPACES)
    if unknown:
        raise ValueError(f"cannot join namespace(s) {sorted(unknown)}: only "
                         f"{', '.join(JOIN_NAMESPACES)} can be joined")
    _check_paths(req)
    for key, _ in req.sysctls:
        sysctl_path(key)
    if bool(req.uid_mappings) != bool(req.gid_mappings):
        raise ValueError("a user namespace needs both uid_mappings and gid_mappings")


def spawn_call(req: SpawnRequest, clone_mode: int | None, call: Any) -> Any:
    """``call(mod, creq)`` with the C request of ``req`` built (and kept alive)."""
    _check(req)
    mod = native.ext()
    with stdio_fds(req) as stdio:
        b = Builder(mod.ffi)
        return call(mod, build_spawn(b, req, stdio, clone_mode_or_auto(clone_mode)))


def spawn_stopped(req: SpawnRequest, *,
                  clone_mode: int | None = None) -> tuple[int, int, int, str]:
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

    pid, pidfd, report_fd, rep = spawn_call(req, clone_mode, call)
    if pid < 0:
        raise spawn_error(req, rep.step, rep.err, rep.index)
    return pid, pidfd, report_fd, native.step_name(rep.step) if report_fd >= 0 else ""


def next_stop(req: SpawnRequest, report_fd: int) -> str:
    """After a stop was released: the name of the next stop point the child waits at, or ""
    once it exec()ed (the report pipe's EOF). :class:`SpawnError` when a step failed (the
    caller kills and reaps the child; it has ``_exit``ed or is about to)."""
    import os

    ffi = native.ext().ffi
    size = ffi.sizeof("struct nsr_report")
    data = b""
    while len(data) < size:
        chunk = os.read(report_fd, size - len(data))
        if not chunk:
            break
        data += chunk
    if not data:
        return ""
    if len(data) < size:
        raise SpawnError("wait", errno.EPROTO)
    rep = ffi.cast("struct nsr_report *", ffi.from_buffer(data))
    if rep.err == 0 and rep.index == native.NSR_STOPPED:
        return native.step_name(rep.step)
    raise spawn_error(req, rep.step, rep.err, rep.index)


def spawn(req: SpawnRequest, *, clone_mode: int | None = None) -> tuple[int, int]:
    """Start the container process; returns ``(pid, pidfd)`` once it has exec()ed.

    The pidfd is CLOEXEC (``os.waitid(os.P_PIDFD, ...)``, ``signal.pidfd_send_signal``).
    Raises :class:`SpawnError` naming the failed step (the child is reaped then) and
    ``ValueError`` for a malformed request.
    """
    def call(mod: Any, creq: Any) -> tuple[int, int, Any]:
        pidfd, rep = mod.ffi.new("int *"), mod.ffi.new("struct nsr_report *")
        return mod.lib.nsr_spawn(creq, pidfd, rep), pidfd[0], rep

    pid, pidfd, rep = spawn_call(req, clone_mode, call)
    if pid < 0:
        raise spawn_error(req, rep.step, rep.err, rep.index)
    return pid, pidfd
