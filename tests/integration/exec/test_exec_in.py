"""A process joining a running container (``host.execin.exec_in``) against the real kernel:
what it sees (namespaces, root, cgroup, confinement, stdio, a tty) by each clone path and
each way of joining. Root only; every test checks that nothing is left behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
from pathlib import Path

import pytest

from nsrun import native
from nsrun.errors import SpawnError
from nsrun.host import execin
from nsrun.host.execin import exec_in
from nsrun.request import ExecRequest

from .execkit import HOSTNAME, Container, status_fields
from world import wait

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups")]


# ---- exec_in: what the process sees ---------------------------------------------------------


def test_sees_the_containers_hostname_root_and_processes(rootfs: Path, sandbox: dict[str, int],
                                                        containers: list[Container]) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)
    code, out = c.exec(["sh", "-c", "hostname; cat /only/marker; echo $WHO; "
                                    "cat /proc/1/cmdline | tr '\\0' ' '; echo; "
                                    "ls /proc | grep -c '^[0-9]'; echo $$"])
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == HOSTNAME
    assert lines[1] == "only-in-the-container"  # a tmpfs only the container's mounts have
    assert lines[2] == "container"  # the container's env by default
    assert lines[3] == "cat "  # pid 1 is the container's init
    assert int(lines[4]) >= 2 and int(lines[5]) > 1  # its pid namespace: init, us, ...
    assert list((rootfs / "only").iterdir()) == []  # the host never saw /only/marker
    assert c.stop() == 0


def test_joins_every_namespace_of_the_container(rootfs: Path, sandbox: dict[str, int],
                                                containers: list[Container]) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)
    names = ("mnt", "pid", "net", "ipc", "uts")
    assert set(execin.target_namespaces(c.pid)) == set(names)  # not cgroup: it has none
    code, out = c.exec(["sh", "-c", "for n in " + " ".join(names) +
                        "; do readlink /proc/self/ns/$n; done"])
    assert code == 0, out
    assert out.split() == [os.readlink(f"/proc/{c.pid}/ns/{n}") for n in names]
    assert c.stop() == 0


def test_joins_a_cgroup_namespace_when_the_target_has_one(cgroup_leaf: Path) -> None:
    """A target with its own cgroup namespace rooted at its leaf (util-linux ``unshare -C``
    run in the leaf): the new process starts in the leaf, joins the namespace after, and
    sees itself at "/" (in the wrong order the kernel would refuse the move)."""
    target = subprocess.Popen(["sh", "-c", f"echo $$ > {cgroup_leaf}/cgroup.procs && "
                               "exec unshare --cgroup sleep 60"])
    pidfd = os.pidfd_open(target.pid)
    fd = os.open(cgroup_leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        Container.wait_for(lambda: os.readlink(f"/proc/{target.pid}/ns/cgroup")
                           != os.readlink("/proc/self/ns/cgroup"))
        assert execin.target_namespaces(target.pid) == ("cgroup",)
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            pid, epidfd = exec_in(target.pid, pidfd, ExecRequest(
                argv=["sh", "-c", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup"],
                env=["PATH=/usr/bin:/bin"], cgroup_fd=fd, stdout_fd=w))
        finally:
            os.close(w)
        assert wait(epidfd) == 0
        with os.fdopen(r, "rb") as f:
            lines = f.read().decode().splitlines()
        assert lines[0] == os.readlink(f"/proc/{target.pid}/ns/cgroup")
        assert "0::/" in lines[1:]  # the v2 line (a hybrid host lists v1 ones too)
    finally:
        os.close(fd)
        os.close(pidfd)
        target.kill()
        target.wait()


def test_starts_in_the_given_cgroup(confined: tuple[Container, int], cgroup_leaf: Path) -> None:
    c, fd = confined
    code, out = c.exec(["cat", "/proc/self/cgroup"], cgroup_fd=fd)
    assert code == 0, out
    assert f"0::/{cgroup_leaf.name}" in out.splitlines()


def test_gets_the_containers_confinement(confined: tuple[Container, int]) -> None:
    c, _ = confined
    keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
            "NoNewPrivs", "Seccomp", "Seccomp_filters", "Umask")
    with open(f"/proc/{c.pid}/status") as f:
        init = status_fields(f.read(), *keys)
    assert init["Uid"].split()[0] == "1000" and init["NoNewPrivs"] == "1"
    code, out = c.exec(["cat", "/proc/self/status"])
    assert code == 0, out
    assert status_fields(out, *keys) == init
    with open(f"/proc/{c.pid}/limits") as f:
        want = [line for line in f if line.startswith("Max open files")]
    code, out = c.exec(["cat", "/proc/self/limits"])
    assert [line + "\n" for line in out.splitlines() if line.startswith("Max open files")] \
        == want
    with open(f"/proc/{c.pid}/oom_score_adj") as f:
        assert f.read() == "500\n"
    assert c.exec(["cat", "/proc/self/oom_score_adj"]) == (0, "500\n")
    # the seccomp filter applies: mkdir is refused with EPERM
    code, out = c.exec(["mkdir", "/tmp/x"])
    assert code == 1 and "Operation not permitted" in out


def test_exit_code_and_signal_come_back_through_the_pidfd(rootfs: Path, sandbox: dict[str, int],
                                                          containers: list[Container]) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)
    assert c.exec(["sh", "-c", "exit 7"]) == (7, "")
    pid, pidfd = exec_in(c.pid, c.pidfd, ExecRequest.from_spawn(c.request, ["sleep", "30"]))
    assert not os.get_inheritable(pidfd)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[1]) == os.getpid()  # CLONE_PARENT: we are the parent
    assert int(fields[3]) == pid  # own session
    with open(f"/proc/{pid}/status") as f:
        nspid = status_fields(f.read(), "NSpid")["NSpid"].split()
    assert nspid[0] == str(pid) and int(nspid[-1]) > 1  # ours, and its pid in the container
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    assert wait(pidfd) == 128 + signal.SIGKILL
    assert c.stop() == 0


def test_stdio_and_fds(rootfs: Path, sandbox: dict[str, int], containers: list[Container],
                       tmp_path: Path) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)
    r, w = os.pipe()  # inheritable: closed in the new process all the same
    try:
        code, out = c.exec(["sh", "-c", "ls /proc/self/fd; cat; echo eof"])
    finally:
        os.close(r)
        os.close(w)
    assert code == 0
    assert out.split() == ["0", "1", "2", "3", "eof"]  # stdin -1: /dev/null
    r, w = os.pipe2(os.O_CLOEXEC)
    os.write(w, b"from the caller\n")
    os.close(w)
    try:
        code, out = c.exec(["cat"], stdin_fd=r)
    finally:
        os.close(r)
    assert (code, out) == (0, "from the caller\n")
    assert c.exec(["pwd"], cwd="/only") == (0, "/only\n")
    assert c.exec(["sh", "-c", "echo $A"], env=["A=b"]) == (0, "b\n")
    assert c.stop() == 0


def test_tty_becomes_the_controlling_terminal(rootfs: Path, sandbox: dict[str, int],
                                              containers: list[Container],
                                              tmp_path: Path) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)
    master, slave = os.openpty()
    try:
        with open(tmp_path / "stat", "w+b") as f:
            pid, pidfd = exec_in(c.pid, c.pidfd, ExecRequest.from_spawn(
                c.request, ["sh", "-c", "cat /proc/self/stat >&2; test -t 0 && echo tty"],
                stdin_fd=slave, stdout_fd=slave, stderr_fd=f.fileno(), tty=True))
            os.close(slave)
            slave = -1
            assert wait(pidfd) == 0
            f.seek(0)
            fields = f.read().decode().rsplit(")", 1)[1].split()
        assert int(fields[4]) != 0  # tty_nr: it has a controlling terminal
        assert os.read(master, 100).replace(b"\r", b"") == b"tty\n"
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert c.stop() == 0


@pytest.mark.parametrize("mode", [native.NSR_CLONE_AUTO, native.NSR_CLONE_FORK,
                                  native.NSR_CLONE_FALLBACK])
def test_every_clone_path(confined: tuple[Container, int], cgroup_leaf: Path,
                          mode: int) -> None:
    c, fd = confined
    code, out = c.exec(["sh", "-c", "hostname; cat /only/marker /proc/self/cgroup; id -u"],
                       clone_mode=mode, cgroup_fd=fd)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:2] == [HOSTNAME, "only-in-the-container"]
    assert f"0::/{cgroup_leaf.name}" in lines and lines[-1] == "1000"
    with pytest.raises(SpawnError) as info:
        c.exec(["no-such-command"], clone_mode=mode)
    assert (info.value.step, info.value.errno) == ("execve", errno.ENOENT)


def test_namespace_fds_when_setns_by_pidfd_is_missing(rootfs: Path, sandbox: dict[str, int],
                                                      containers: list[Container]) -> None:
    """Before Linux 5.8 setns takes no pidfd: the fds of /proc/<pid>/ns/* one at a time."""
    setns = execin.Setns(by_pidfd=False)
    c = Container(rootfs, sandbox)
    containers.append(c)
    assert c.exec(["sh", "-c", "hostname; cat /only/marker"], setns=setns) == \
        (0, f"{HOSTNAME}\nonly-in-the-container\n")
    assert setns.by_pidfd is False
    assert c.stop() == 0
