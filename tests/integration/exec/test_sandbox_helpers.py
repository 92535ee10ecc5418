"""The pod sandbox's helpers in C: a socket made inside a pod's network namespace
(``nsfds.socket_in_netns``) and the pause process holding the pod's namespaces
(``nsfds.create_sandbox(keep=True)``). Root only; nothing is left behind."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsrun.errors import SandboxError
from nsrun.host import execin, nsfds

from .execkit import HOSTNAME, Container, status_fields
from world import wait

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups")]


# ---- socket_in_netns ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_socket_in_netns_reaches_a_listener_only_the_pod_has(rootfs: Path,
                                                            sandbox: dict[str, int],
                                                            containers: list[Container],
                                                            tmp_path: Path) -> None:
    port = _free_port()
    out = tmp_path / "nc.out"
    with open(out, "wb") as f:
        # nc listens on every address of the pod's netns: that is lo (127.0.0.1) alone
        c = Container(rootfs, sandbox, argv=["nc", "-l", "-p", str(port)],
                      stdout_fd=f.fileno())
    containers.append(c)

    def connected() -> socket.socket | None:
        s = socket.socket(fileno=nsfds.socket_in_netns(sandbox["net"], socket.AF_INET,
                                                        socket.SOCK_STREAM))
        try:
            s.connect(("127.0.0.1", port))
            return s
        except ConnectionRefusedError:  # nc not listening yet
            s.close()
            return None

    deadline = time.monotonic() + 5
    while (s := connected()) is None:
        assert time.monotonic() < deadline, "nc never listened"
        time.sleep(0.01)
    with s:
        assert not s.get_inheritable()
        s.setblocking(False)  # as a probe would use it
        s.sendall(b"probe\n")
    with socket.socket() as host, pytest.raises(ConnectionRefusedError):
        host.connect(("127.0.0.1", port))  # the host's lo has no such listener
    assert c.stop() == 0  # nc exits once the connection closes
    assert out.read_bytes() == b"probe\n"


def test_socket_in_netns_leaves_the_caller_where_it_was(sandbox: dict[str, int]) -> None:
    before = os.readlink("/proc/thread-self/ns/net")
    fd = nsfds.socket_in_netns(sandbox["net"], socket.AF_INET6, socket.SOCK_DGRAM)
    os.close(fd)
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_socket_in_netns_errors() -> None:
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SandboxError, match="setns") as info:
            nsfds.socket_in_netns(fd, socket.AF_INET, socket.SOCK_STREAM)
        assert info.value.errno == errno.EINVAL
    finally:
        os.close(fd)
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SandboxError, match="socket") as info:
            nsfds.socket_in_netns(own, 12345, socket.SOCK_STREAM)
        assert info.value.errno == errno.EAFNOSUPPORT
    finally:
        os.close(own)


# ---- the pause process ----------------------------------------------------------------------


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


@pytest.fixture
def paused(cgroup_leaf: Path) -> Iterator[dict[str, int]]:
    fd = os.open(cgroup_leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sb = nsfds.create_sandbox(HOSTNAME, keep=True, cgroup_fd=fd)
    finally:
        os.close(fd)
    try:
        yield sb
    finally:
        if sb.get("pidfd", -1) >= 0:
            signal.pidfd_send_signal(sb["pidfd"], signal.SIGKILL)
            wait(sb["pidfd"])
        for name in ("net", "ipc", "uts"):
            if sb.get(name, -1) >= 0:
                os.close(sb[name])


def test_pause_process_holds_the_namespaces(paused: dict[str, int], cgroup_leaf: Path,
                                            rootfs: Path, containers: list[Container]) -> None:
    sb = paused
    pid, pidfd = sb["pid"], sb["pidfd"]
    assert set(sb) == {"net", "ipc", "uts", "pid", "pidfd"}
    assert not os.get_inheritable(pidfd) and execin.pidfd_pid(pidfd) == pid
    for name in ("net", "ipc", "uts"):
        assert os.readlink(f"/proc/{pid}/ns/{name}") == os.readlink(f"/proc/self/fd/{sb[name]}")
    net = os.readlink(f"/proc/self/fd/{sb['net']}")
    for name in ("net", "ipc", "uts"):  # the fds go: the pause process alone holds them
        os.close(sb.pop(name))
    assert os.readlink(f"/proc/{pid}/ns/net") == net
    with open(f"/proc/{pid}/status") as f:
        st = status_fields(f.read(), "Name", "SigBlk", "SigIgn", "PPid")
    assert st["PPid"] == str(os.getpid())
    assert (cgroup_leaf / "cgroup.procs").read_text().split() == [str(pid)]
    assert os.listdir(f"/proc/{pid}/fd") == []  # nothing of ours kept open
    if os.uname().machine == "x86_64":  # the 160-byte program, not a copy of Python
        assert st["Name"] == "nsrun-pause"
        assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:nsrun-pause")
    every = (1 << 64) - 1 & ~(1 << (signal.SIGKILL - 1)) & ~(1 << (signal.SIGSTOP - 1))
    for key in ("SigBlk", "SigIgn"):  # all but SIGKILL, SIGSTOP and glibc's 32, 33
        assert int(st[key], 16) | (3 << 31) == every, key
    # a container joins the held namespaces through the pause process
    ns = {n: os.open(f"/proc/{pid}/ns/{n}", os.O_RDONLY | os.O_CLOEXEC)
          for n in ("net", "ipc", "uts")}
    try:
        c = Container(rootfs, ns)
        containers.append(c)
    finally:
        for fd in ns.values():
            os.close(fd)
    assert c.exec(["hostname"]) == (0, f"{HOSTNAME}\n")
    assert os.readlink(f"/proc/{c.pid}/ns/net") == net
    assert c.stop() == 0


def test_pause_process_ignores_signals_but_sigkill(paused: dict[str, int]) -> None:
    pid, pidfd = paused["pid"], paused["pidfd"]
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD,
                signal.SIGPIPE, signal.SIGALRM, signal.SIGRTMIN):
        signal.pidfd_send_signal(pidfd, sig)
    time.sleep(0.05)
    assert _state(pid) == "S"
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    assert info is not None and (info.si_code, info.si_status) == (os.CLD_KILLED, signal.SIGKILL)
    os.close(pidfd)
    paused["pidfd"] = -1
    assert _state(pid) == "gone"


def test_pause_process_dies_with_its_parent(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: the supervisor (here a child Python) dies, the pause process too."""
    code = ("import os, sys\n"
            "from nsrun.host import nsfds\n"
            "sb = nsfds.create_sandbox('orphan', keep=True)\n"
            "print(sb['pid'], flush=True)\n"
            "sys.stdin.read()\n"
            "os._exit(0)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        pid = int(proc.stdout.readline())
        assert _state(pid) == "S"
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 5
    while _state(pid) not in ("gone", "Z"):  # reaped by init, or a zombie of a lazy one
        assert time.monotonic() < deadline, "the pause process outlived its parent"
        time.sleep(0.01)


def test_sandbox_without_keep_is_unchanged() -> None:
    sb = nsfds.create_sandbox(HOSTNAME)
    try:
        assert set(sb) == {"net", "ipc", "uts"}
    finally:
        for fd in sb.values():
            os.close(fd)


def test_pause_sandbox_failure_leaves_nothing(cgroup_leaf: Path) -> None:
    with pytest.raises(SandboxError, match="sethostname"):
        nsfds.create_sandbox("x" * 65, keep=True)
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SandboxError, match="clone") as info:
            nsfds.create_sandbox(HOSTNAME, keep=True, cgroup_fd=fd)
        assert info.value.errno == errno.EBADF
    finally:
        os.close(fd)
