"""Start a process inside a *running* container (``runc exec``, ``kubectl exec``, exec
probes, OCI hooks): :func:`exec_in` joins the target's namespaces, starts in its cgroup and
gets the container's confinement from an :class:`~nsrun.request.ExecRequest`
(``ExecRequest.from_spawn`` copies it from the container's request). The same C step
functions as a container's apply it (``csrc/execin.c``).

``setns(pidfd, flags)`` needs Linux 5.8; before, the namespaces are joined through
``/proc/<pid>/ns/*`` fds one at a time. :class:`Setns` says which works (learned by the first
exec from an ``EINVAL``) and opens those fds; pass one to :func:`exec_in` to choose.
"""

from __future__ import annotations

import errno
import os

from nsrun import native
from nsrun.errors import SpawnError
from nsrun.host.childreport import spawn_error
from nsrun.host.childreq import Builder, build_exec, stdio_fds
from nsrun.host.spawn import check_process, clone_mode_or_auto
from nsrun.request import EXEC_NAMESPACES

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

    from nsrun.request import ExecRequest


def _ns_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def target_namespaces(pid: int) -> tuple[str, ...]:
    """The :data:`~nsrun.request.EXEC_NAMESPACES` of process ``pid`` that the calling thread
    does not share (``OSError`` when the process is gone)."""
    return tuple(name for name in EXEC_NAMESPACES
                 if _ns_id(f"/proc/{pid}/ns/{name}") != _ns_id(f"/proc/thread-self/ns/{name}"))


def pidfd_pid(pidfd: int) -> int:
    """The pid a pidfd refers to (``Pid:`` of its fdinfo; -1 once the process is reaped)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", "rb") as f:
            for line in f:
                if line.startswith(b"Pid:"):
                    return int(line.split()[1])
    except OSError:
        pass
    raise ValueError(f"fd {pidfd} is not a pidfd")


def check_target(pid: int, pidfd: int) -> None:
    """``pidfd`` is ``pid`` and it is still running, so what was read from /proc/<pid>
    before this call was about that process (a pid is not reused while its process lives)."""
    import signal

    try:
        if pidfd_pid(pidfd) != pid:
            raise ValueError(f"pidfd {pidfd} does not refer to process {pid}")
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        raise SpawnError("setns", errno.ESRCH) from None


class Setns:
    """How :func:`exec_in` joins a target's namespaces: ``by_pidfd`` True: one
    ``setns(pidfd, flags)``; False: :meth:`open_fds` one by one; None: not known yet (the
    first exec tries the pidfd and learns from an ``EINVAL``)."""

    def __init__(self, by_pidfd: bool | None = None) -> None:
        self.by_pidfd = by_pidfd

    def open_fds(self, pid: int, pidfd: int, names: tuple[str, ...]) -> list[int]:
        """``/proc/<pid>/ns/<name>`` of each name, the target checked still ``pidfd``'s."""
        fds: list[int] = []
        try:
            for name in names:
                fds.append(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC))
            check_target(pid, pidfd)
        except BaseException as err:
            for fd in fds:
                os.close(fd)
            if isinstance(err, FileNotFoundError):
                raise SpawnError("setns", errno.ESRCH) from None
            raise
        return fds


_LEARNED = Setns()  # what this process learned of its kernel (the default of exec_in)


def _exec_namespaces(pid: int, pidfd: int, req: ExecRequest) -> tuple[str, ...]:
    if req.namespaces is not None:
        names = tuple(n for n in EXEC_NAMESPACES if n in req.namespaces)
    else:
        try:
            names = target_namespaces(pid)
        except FileNotFoundError:
            raise SpawnError("setns", errno.ESRCH) from None
    check_target(pid, pidfd)
    return names


def _check_exec(req: ExecRequest) -> None:
    check_process(req)
    if req.namespaces is not None and set(req.namespaces) - set(EXEC_NAMESPACES):
        raise ValueError(f"cannot join namespace(s) "
                         f"{sorted(set(req.namespaces) - set(EXEC_NAMESPACES))}: only "
                         f"{', '.join(EXEC_NAMESPACES)} can be joined")
    if req.tty and req.stdin_fd < 0:
        raise ValueError("tty needs a terminal as stdin_fd")


def _exec_once(req: ExecRequest, stdio: list[int], clone_mode: int, target_pidfd: int,
               flags: int, ns: list[tuple[str, int]]) -> tuple[int, int, Any]:
    mod = native.ext()
    b = Builder(mod.ffi)  # owns the buffers creq points to: alive until the call returns
    creq = build_exec(b, req, stdio, ns, clone_mode)
    pidfd = mod.ffi.new("int *")
    rep = mod.ffi.new("struct nsr_report *")
    pid = mod.lib.nsr_exec_in(creq, target_pidfd, flags, pidfd, rep)
    return pid, pidfd[0], rep


def _join(target_pid: int, target_pidfd: int, req: ExecRequest, names: tuple[str, ...],
          stdio: list[int], clone_mode: int, setns: Setns) -> tuple[int, int, Any]:
    """One exec, by pidfd or by namespace fds as ``setns`` knows (and learns)."""
    flags = 0
    for name in names:
        flags |= native.NS_FLAGS[name]
    pid, pidfd, rep = -1, -1, None
    if setns.by_pidfd is not False or not names:
        pid, pidfd, rep = _exec_once(req, stdio, clone_mode, target_pidfd, flags, [])
    if names and (setns.by_pidfd is False or (
            pid < 0 and native.step_name(rep.step) == "setns" and rep.err == errno.EINVAL)):
        # before Linux 5.8 (or on a refusal to say which namespace): one fd at a time
        ns_fds = setns.open_fds(target_pid, target_pidfd, names)
        try:
            pid, pidfd, rep = _exec_once(req, stdio, clone_mode, -1, 0,
                                         list(zip(names, ns_fds, strict=True)))
        finally:
            for fd in ns_fds:
                os.close(fd)
        if pid >= 0 and setns.by_pidfd is None:
            setns.by_pidfd = False
    elif pid >= 0 and names:
        setns.by_pidfd = True
    return pid, pidfd, rep


def exec_in(target_pid: int, target_pidfd: int, req: ExecRequest, *,
            clone_mode: int | None = None, setns: Setns | None = None) -> tuple[int, int]:
    """Start ``req`` inside the running container whose init is ``target_pid`` (with its
    pidfd ``target_pidfd``); returns ``(pid, pidfd)`` once the new process has exec()ed.

    The process joins every namespace of the target the caller does not share (mount, pid,
    net, ipc, uts, cgroup: it sees the container's root filesystem, processes and network),
    starts in ``req.cgroup_fd``, and gets ``req``'s confinement. Its parent is the caller
    (``CLONE_PARENT``): reap it with ``os.waitid(os.P_PIDFD, pidfd, os.WEXITED)`` (a caller
    that reaps with ``waitpid(-1)`` elsewhere would race for it). ``pid`` is in the caller's
    pid namespace. The pidfd is CLOEXEC. ``clone_mode`` as in ``host/spawn.py``; ``setns``:
    how to join (default: what this process learned).

    Raises :class:`SpawnError` naming the failed step (every process made is reaped then):
    ``setns`` with ``ESRCH`` when the target is gone, ``execve``/``chdir``/... as in
    ``spawn``, ``clone`` (note: which process) e.g. ``EAGAIN`` at the cgroup's pids.max;
    ``ValueError`` for a malformed request.
    """
    _check_exec(req)
    names = _exec_namespaces(target_pid, target_pidfd, req)
    with stdio_fds(req) as stdio:
        pid, pidfd, rep = _join(target_pid, target_pidfd, req, names, stdio,
                                clone_mode_or_auto(clone_mode), setns or _LEARNED)
    if pid < 0:
        raise spawn_error(req, rep.step, rep.err, rep.index, list(names))
    return pid, pidfd
