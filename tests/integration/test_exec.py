"""A process joining a running container (``native.exec_in``), a socket made inside a pod's
network namespace (``native.socket_in_netns``) and the sandbox's pause process
(``nsfds.create_sandbox(keep=True)``), against the real kernel. Root only; every test checks
that no process, mount, fd or cgroup is left behind."""

from __future__ import annotations

import errno
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nsrun import native
from nsrun.bundle import security
from nsrun.errors import SandboxError, SpawnError
from nsrun.host import execin, nsfds
from nsrun.host.execin import exec_in
from nsrun.host.spawn import spawn
from nsrun.request import ExecRequest, MountSpec, SpawnRequest

from world import World, leftovers, wait

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups")]

PROC = MountSpec("/proc", "proc", "proc", native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
DEV = MountSpec("/dev", "tmpfs", "tmpfs", native.MS_NOSUID | native.MS_STRICTATIME,
                "mode=755,size=65536k")
ONLY = MountSpec("/only", "tmpfs", "tmpfs", native.MS_NOSUID | native.MS_NODEV, "mode=1777")
MOUNTS = (PROC, DEV, ONLY)
EXTRA_APPLETS = ("readlink", "nc", "mkdir", "tr", "ps", "wc", "stat")
HOSTNAME = "exec-pod"
CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
# What the container gets: a realistic confinement, computed the way the launcher does it.
CONFIG = {
    "process": {
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [10, 20], "umask": 0o027},
        "noNewPrivileges": True,
        "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 256, "hard": 512}],
        "oomScoreAdj": 500,
    },
    "linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}},
}
# The container's init: marks its private /only tmpfs, then waits for stdin to close.
INIT = ["sh", "-c", "echo only-in-the-container > /only/marker; exec cat"]


# ---- fixtures -----------------------------------------------------------------------------



@pytest.fixture
def rootfs(busybox_rootfs: Path) -> Path:
    for applet in EXTRA_APPLETS:
        (busybox_rootfs / "bin" / applet).symlink_to("busybox")
    (busybox_rootfs / "only").mkdir()
    return busybox_rootfs




class Container:
    """A running container (its init blocks on a pipe) in a sandbox; ``stop`` ends both."""

    def __init__(self, rootfs: Path, sandbox: dict[str, int], cgroup_fd: int = -1,
                 argv: list[str] | None = None, **kw) -> None:
        r, self.w = os.pipe2(os.O_CLOEXEC)
        self.request = SpawnRequest(argv=argv or INIT, env=["PATH=/bin", "WHO=container"],
                                    rootfs=str(rootfs), mounts=MOUNTS, join_ns=sandbox,
                                    hostname=HOSTNAME, cgroup_fd=cgroup_fd, stdin_fd=r, **kw)
        try:
            self.pid, self.pidfd = spawn(self.request)
        except BaseException:
            os.close(self.w)
            raise
        finally:
            os.close(r)
        if argv is None:  # INIT: marked /only and exec()ed cat
            self.wait_for(self._ready)

    def _ready(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                return f.read() == b"cat\0"
        except OSError:
            return False

    @staticmethod
    def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    def exec(self, argv: list[str], out: Path | None = None, clone_mode: int | None = None,
             setns: execin.Setns | None = None, **kw) -> tuple[int, str]:
        """Run ``argv`` in the container like the container (exec_in, by ``clone_mode`` and
        ``setns``), wait; (code, output)."""
        out = out or Path(self.request.rootfs).parent / "exec.out"
        with open(out, "w+b") as f:
            kw.setdefault("stdout_fd", f.fileno())
            kw.setdefault("stderr_fd", f.fileno())
            pid, pidfd = exec_in(self.pid, self.pidfd,
                                 ExecRequest.from_spawn(self.request, argv, **kw),
                                 clone_mode=clone_mode, setns=setns)
            code = wait(pidfd)
            f.seek(0)
            return code, f.read().decode()

    def stop(self) -> int:
        if self.w >= 0:
            os.close(self.w)
            self.w = -1
        if self.pidfd < 0:
            return 0
        code = wait(self.pidfd)
        self.pidfd = -1
        return code


@pytest.fixture
def sandbox() -> Iterator[dict[str, int]]:
    fds = nsfds.create_sandbox(HOSTNAME)
    try:
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    """Containers to stop after the test, whatever happens."""
    items: list[Container] = []
    yield items
    for c in items:
        try:
            if c.pidfd >= 0:
                signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
            c.stop()
        except OSError:
            pass


def confinement() -> dict:
    conf = security.confine(CONFIG, "test config.json")
    assert conf.seccomp is not None
    return {"uid": conf.uid, "gid": conf.gid, "additional_gids": conf.additional_gids,
            "capabilities": conf.capabilities, "no_new_privs": conf.no_new_privileges,
            "seccomp_bpf": conf.seccomp.bpf, "seccomp_flags": conf.seccomp.flags,
            "rlimits": conf.rlimits, "umask": conf.umask, "oom_score_adj": conf.oom_score_adj}


@pytest.fixture
def confined(rootfs: Path, sandbox: dict[str, int], cgroup_leaf: Path,
             containers: list[Container]) -> Iterator[tuple[Container, int]]:
    """A confined container in its own cgroup leaf; (container, leaf dirfd)."""
    fd = os.open(cgroup_leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        c = Container(rootfs, sandbox, cgroup_fd=fd, **confinement())
        containers.append(c)
        yield c, fd
        assert c.stop() == 0
    finally:
        os.close(fd)


def status_fields(text: str, *keys: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in keys:
            out[key] = value.strip()
    return out


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


# ---- exec_in: failures ------------------------------------------------------------------------


@pytest.mark.parametrize("kw, step, err", [
    ({"argv": ["no-such-command"]}, "execve", errno.ENOENT),
    ({"argv": ["/etc"]}, "execve", errno.EACCES),
    ({"cwd": "/nonexistent"}, "chdir", errno.ENOENT),
    ({"stdin_fd": 9999}, "stdio", errno.EBADF),
])
def test_failed_step_is_reported(confined: tuple[Container, int], kw: dict, step: str,
                                 err: int) -> None:
    c, _ = confined
    argv = kw.pop("argv", ["true"])
    with pytest.raises(SpawnError) as info:
        c.exec(argv, **kw)
    assert (info.value.step, info.value.errno) == (step, err)
    # (no_leftovers checks that both processes were reaped)


def test_bad_cgroup_fails_at_the_first_clone(rootfs: Path, sandbox: dict[str, int],
                                             containers: list[Container]) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SpawnError) as info:
            c.exec(["true"], cgroup_fd=fd)
    finally:
        os.close(fd)
    assert (info.value.step, info.value.errno) == ("clone", errno.EBADF)
    assert info.value.__notes__ == ["the process that joins the namespaces"]
    assert c.stop() == 0


def test_setns_failure_names_the_namespace(rootfs: Path, sandbox: dict[str, int],
                                           containers: list[Container]) -> None:
    c = Container(rootfs, sandbox)
    containers.append(c)

    class NetIsNoNamespace(execin.Setns):
        def open_fds(self, pid: int, pidfd: int, names: tuple[str, ...]) -> list[int]:
            fds = super().open_fds(pid, pidfd, names)
            null = os.open("/dev/null", os.O_RDONLY)
            os.dup2(null, fds[names.index("net")], inheritable=False)  # not a namespace
            os.close(null)
            return fds

    with pytest.raises(SpawnError) as info:
        c.exec(["true"], setns=NetIsNoNamespace(by_pidfd=False))
    assert (info.value.step, info.value.errno) == ("setns", errno.EINVAL)
    assert info.value.__notes__ == ["namespace net"]
    assert c.stop() == 0


def test_target_gone(rootfs: Path, sandbox: dict[str, int]) -> None:
    c = Container(rootfs, sandbox)
    pid, pidfd = c.pid, os.dup(c.pidfd)
    try:
        assert c.stop() == 0  # exited and reaped: the pidfd refers to nothing now
        with pytest.raises(SpawnError) as info:
            exec_in(pid, pidfd, ExecRequest.from_spawn(c.request, ["true"]))
        assert (info.value.step, info.value.errno) == ("setns", errno.ESRCH)
    finally:
        os.close(pidfd)


def test_pidfd_of_another_process_is_refused(rootfs: Path, sandbox: dict[str, int],
                                             containers: list[Container]) -> None:
    a, b = Container(rootfs, sandbox), Container(rootfs, sandbox)
    containers.extend((a, b))
    with pytest.raises(ValueError, match="does not refer to process"):
        exec_in(a.pid, b.pidfd, ExecRequest.from_spawn(a.request, ["true"]))
    assert a.stop() == 0 and b.stop() == 0


def test_step_names_match_the_c_side() -> None:
    c_names = {native.step_name(i) for i in range(native.NSR_STEP_COUNT)}
    assert {"pipe", "clone", "cgroup_attach", "sethostname", "lo_up", "pdeathsig", "pidfd_open",
            "wait", "open_ns"} <= c_names and "ctty" in native.STEPS
    assert "socket" in c_names


def test_bad_requests_are_value_errors() -> None:
    with pytest.raises(ValueError, match="argv"):
        exec_in(1, -1, ExecRequest(argv=[], env=[]))
    with pytest.raises(ValueError, match="cannot join"):
        exec_in(1, -1, ExecRequest(argv=["x"], env=[], namespaces=("time",)))
    with pytest.raises(ValueError, match="tty"):
        exec_in(1, -1, ExecRequest(argv=["x"], env=[], tty=True))
    with pytest.raises(ValueError, match="not a pidfd"):
        exec_in(os.getpid(), -1, ExecRequest(argv=["x"], env=[]))


def test_concurrent_execs_with_signals_arriving(rootfs: Path, sandbox: dict[str, int],
                                                containers: list[Container],
                                                tmp_path: Path) -> None:
    """exec_in from several threads while a Python SIGALRM handler fires every 0.5 ms: two
    generations of CLONE_VM children share the caller's memory until execve."""
    import threading

    c = Container(rootfs, sandbox)
    containers.append(c)
    hits: list[int] = []
    errors: list[BaseException] = []
    old = signal.signal(signal.SIGALRM, lambda *_: hits.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)

    def worker(n: int) -> None:
        try:
            for i in range(40):
                assert c.exec(["sh", "-c", f"echo {n}-{i}"], out=tmp_path / f"w{n}") == \
                    (0, f"{n}-{i}\n")
        except Exception as err:  # reported by the main thread
            errors.append(err)

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert errors == [] and hits
    assert c.stop() == 0


def test_exec_latency(rootfs: Path, sandbox: dict[str, int], containers: list[Container],
                      capsys: pytest.CaptureFixture[str]) -> None:
    """exec_in + wait of /bin/true in a running busybox container: reported, not asserted."""
    c = Container(rootfs, sandbox)
    containers.append(c)
    req = ExecRequest.from_spawn(c.request, ["/bin/true"])
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        _, pidfd = exec_in(c.pid, c.pidfd, req)
        assert wait(pidfd) == 0
        times.append(time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\nexec_in+wait /bin/true: median {statistics.median(times) * 1e3:.3f} ms, "
              f"min {min(times) * 1e3:.3f} ms over {len(times)}")
    assert c.stop() == 0


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


# ---- nsrun exec: execcmd.exec_in_pod against a detached pod ------------------------------------

POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: setup, image: busybox, command: [sh, -c, "echo set-up > /work/setup"],
     volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "echo only-here > /tmp/marker; exec sleep 3600"]
    env: [{name: FOO, value: bar}]
    securityContext: {runAsUser: 1000, runAsGroup: 1000}
    volumeMounts: [{name: work, mountPath: /work}]
  - {name: side, image: busybox, command: [sleep, "3600"]}
  volumes:
  - {name: work, emptyDir: {}}
"""

# nsrun exec as the CLI will run it: errors → "nsrun: ..." and their exit code
DRIVER = """
import sys
from nsrun.errors import NsrunError
from nsrun.runtime.execcmd import exec_in_pod
root, images, container, tty, *argv = sys.argv[1:]
try:
    sys.exit(exec_in_pod(root, "p", container or None, argv, tty=tty == "1", images=images))
except NsrunError as err:
    print(f"nsrun: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
"""


@pytest.fixture(scope="module")
def pod_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One detached pod for the nsrun exec tests (module scope: it takes ~0.5 s to start)."""
    tmp = tmp_path_factory.mktemp("execpod")
    w = World(tmp)
    w.nsrun("image", "busybox", check=True)
    w.nsrun("run", "-d", "--cgroup-parent", w.cgroup_parent, w.manifest("p", POD), check=True)
    try:
        deadline = time.monotonic() + 20
        while w.column("p") != "Running" or not all(
                cs.get("state", {}).get("running")
                for cs in w.status("p")["status"]["containerStatuses"]):
            assert time.monotonic() < deadline, w.nsrun("describe", "p").stdout
            time.sleep(0.05)
        yield w
    finally:
        w.nsrun("delete", "p", "--grace-period", "0", "--timeout", "10")
        assert leftovers(tmp, w.cgroup_dirs) == []


def nsrun_exec(w: World, container: str, *argv: str, tty: bool = False,
               stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, str(w.root), str(w.images), container,
                           "1" if tty else "0", *argv], capture_output=True, text=True,
                          timeout=30, input=stdin)


def test_nsrun_exec_runs_like_the_container(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "app", "sh", "-c",
                     'id; hostname; cat /tmp/marker /work/setup; echo "$FOO"; pwd')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["uid=1000 gid=1000", "p", "only-here",
                                       "set-up", "bar", "/"]
    assert out.stderr == ""


def test_nsrun_exec_is_in_the_containers_cgroup_and_pid_namespace(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "side", "sh", "-c", "cat /proc/1/cmdline; echo; "
                                                   "cat /proc/self/cgroup")
    assert out.returncode == 0, out.stderr
    cmdline, *cgroups = out.stdout.splitlines()
    assert cmdline.split("\0") == ["sleep", "3600", ""]  # the container's init is pid 1
    where = {line.split(":")[1]: line.split(":", 2)[2] for line in cgroups}
    wanted = [""] if pod_world.driver == "v2" else ["cpu", "cpuacct", "memory", "pids",
                                                    "freezer", "devices"]
    for hierarchy in wanted:  # every hierarchy the driver uses: the container's leaf
        assert f"/{pod_world.cgroup_parent}/" in where[hierarchy], cgroups
        assert where[hierarchy].endswith("/side"), cgroups


def test_nsrun_exec_exit_codes(pod_world: World) -> None:
    assert nsrun_exec(pod_world, "app", "sh", "-c", "exit 7").returncode == 7
    assert nsrun_exec(pod_world, "app", "sh", "-c", "kill -9 $$").returncode == 137
    out = nsrun_exec(pod_world, "app", "no-such-command")
    assert out.returncode == 127
    assert out.stderr == 'nsrun: exec "no-such-command" in container "app" in pod "p": ' \
                         "executable file not found in $PATH\n"
    out = nsrun_exec(pod_world, "app", "/etc")
    assert out.returncode == 126 and "Permission denied" in out.stderr


def test_nsrun_exec_stdin_and_default_container(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "", "cat", stdin="through stdin\n")
    assert (out.returncode, out.stdout) == (0, "through stdin\n")
    assert out.stderr == 'Defaulted container "app" out of: app, side, setup (init)\n'


def test_nsrun_exec_tty(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "app", "sh", "-c", "test -t 0 && test -t 1 && echo tty; cat",
                     tty=True, stdin="typed\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.replace("\r", "").splitlines()
    # "typed" twice: the pty echoes it (as a terminal does), then cat prints it
    assert sorted(lines) == ["tty", "typed", "typed"], lines


@pytest.mark.parametrize("container, message", [
    ("nope", 'container "nope" not found in pod "p" (containers: app, side, setup)'),
    ("setup", 'container "setup" in pod "p" is not running (terminated: Completed, exit code 0)'),
])
def test_nsrun_exec_errors(pod_world: World, container: str, message: str) -> None:
    out = nsrun_exec(pod_world, container, "true")
    assert (out.returncode, out.stderr) == (4, f"nsrun: {message}\n")


def test_nsrun_exec_no_such_pod(tmp_path: Path) -> None:
    from nsrun.errors import StateError
    from nsrun.runtime import execcmd

    with pytest.raises(StateError, match='pods "nope" not found'):
        execcmd.exec_in_pod(tmp_path, "nope", None, ["true"])


def test_nsrun_exec_refuses_a_pid_that_is_not_the_pods(pod_world: World) -> None:
    pids = pod_world.root / "pods" / "p" / "pids.json"
    pids.write_text(f'{{"app": {os.getpid()}}}')
    try:
        out = nsrun_exec(pod_world, "app", "true")
    finally:
        pids.unlink()
    assert out.returncode == 4
    assert f"process {os.getpid()} is not the pod's" in out.stderr
