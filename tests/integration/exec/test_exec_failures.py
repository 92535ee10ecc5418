"""``exec_in`` when something fails (the error names the step, errno and what it was
working on; every process made is reaped), bad requests, concurrent execs under signals,
and its latency. Root only; nothing is left behind."""

from __future__ import annotations

import errno
import os
import signal
import statistics
import time
from pathlib import Path

import pytest

from nsrun import native
from nsrun.errors import SpawnError
from nsrun.host import execin
from nsrun.host.execin import exec_in
from nsrun.request import ExecRequest

from .execkit import Container
from world import wait

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups")]


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
