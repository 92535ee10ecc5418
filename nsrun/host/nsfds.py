"""Namespaces made or entered through the C extension without starting a container:
:func:`create_sandbox` (a pod's net, ipc and uts namespaces, optionally held by a pause
process) and :func:`socket_in_netns` (a socket made inside a pod's network namespace, for
probes, DNS and netlink). ``csrc/ns.c`` and ``csrc/execin.c`` do the work."""

from __future__ import annotations

import os

from nsrun import native
from nsrun.errors import SandboxError

SANDBOX_NAMESPACES = ("net", "ipc", "uts")  # the fds of create_sandbox, in the C order


def socket_in_netns(net_fd: int, family: int, type: int, proto: int = 0) -> int:
    """A socket (CLOEXEC, blocking) created inside the network namespace ``net_fd``: it
    binds and connects there whatever the namespace of the thread that uses it later. A
    short-lived C thread does the ``setns``, so no caller thread ever changes namespace.
    Wrap it with ``socket.socket(fileno=fd)`` (and ``setblocking(False)`` for asyncio).
    :class:`SandboxError` names the step (``setns``, ``socket``) and errno."""
    mod = native.ext()
    rep = mod.ffi.new("struct nsr_report *")
    fd = mod.lib.nsr_socket_in_netns(net_fd, family, type, proto, rep)
    if fd < 0:
        raise SandboxError("create a socket in the network namespace of", f"fd {net_fd}",
                           rep.err, native.step_name(rep.step))
    return fd


def create_sandbox(hostname: str | None, *, keep: bool = False,
                   cgroup_fd: int = -1, outlive: bool = False) -> dict[str, int]:
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
    and closes it. Pop both before using the dict as ``SpawnRequest.join_ns``. ``outlive``:
    the pause process does not die with the caller (a pod cgroup can find it, and a new
    supervisor re-attach to it)."""
    mod = native.ext()
    fds = mod.ffi.new("int[3]")
    pidfd = mod.ffi.new("int *")
    rep = mod.ffi.new("struct nsr_report *")
    name = mod.ffi.NULL if hostname is None else os.fsencode(hostname)
    pid = mod.lib.nsr_sandbox_create(name, (2 if outlive else 1) if keep else 0, cgroup_fd,
                                     fds, pidfd, rep)
    if pid < 0:
        step = native.step_name(rep.step)
        if step == "open_ns" and 0 <= rep.index < 3:
            step = f"open_ns {SANDBOX_NAMESPACES[rep.index]}"
        raise SandboxError("create sandbox", hostname or "(host network)", rep.err, step)
    out = dict(zip(SANDBOX_NAMESPACES, (fds[0], fds[1], fds[2]), strict=True))
    if keep:
        out["pid"], out["pidfd"] = pid, pidfd[0]
    return out


def of_process(pid: int) -> dict[str, int]:
    """The net, ipc and uts namespaces of a live process (a pause process re-attached to),
    as CLOEXEC fds keyed as :func:`create_sandbox`'s."""
    fds: dict[str, int] = {}
    try:
        for kind in SANDBOX_NAMESPACES:
            fds[kind] = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds
