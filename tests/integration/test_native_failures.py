"""The C spawn path when a step fails (the error names the step, errno and what it was
working on), started into a cgroup, by each clone path, under concurrent signals, and its
latency. Root only; nothing is left behind."""

from __future__ import annotations

import errno
import os
import statistics
import time
from pathlib import Path

import pytest

from nsrun import native
from nsrun.errors import SpawnError
from nsrun.host.spawn import spawn
from nsrun.request import MountSpec, SpawnRequest

from nativekit import (
    CLONE_MODES,
    PROC,
    Held,
    needs_root,
    run,
)
from world import wait

pytestmark = pytest.mark.usefixtures("no_leftovers")


# ---- failures, cgroups and clone paths -----------------------------------------------


@needs_root
@pytest.mark.parametrize("kw, step, err", [
    ({"cwd": "/nonexistent"}, "chdir", errno.ENOENT),
    ({"argv": ["no-such-binary"]}, "execve", errno.ENOENT),
    ({"argv": ["/etc"]}, "execve", errno.EACCES),
    ({"mounts": (MountSpec("/data", "/nonexistent/source", flags=native.MS_BIND),)},
     "mount", errno.ENOENT),
    ({"mounts": (MountSpec("/x", "none", "no-such-fs"),)}, "mount", errno.ENODEV),
    ({"mounts": (MountSpec("/bin/busybox/sub", "tmpfs", "tmpfs"),)}, "mountpoint",
     errno.ENOTDIR),
    ({"rootfs": "/nonexistent-rootfs"}, "bind_rootfs", errno.ENOENT),
    ({"uid": 1000, "cwd": "/root"}, "chdir", errno.EACCES),
])
def test_failed_step_is_reported(busybox_rootfs: Path, kw: dict, step: str, err: int) -> None:
    (busybox_rootfs / "root").mkdir(mode=0o700)
    kw = {"argv": ["true"], "env": ["PATH=/bin"], "rootfs": str(busybox_rootfs), **kw}
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(**kw))
    assert (info.value.step, info.value.errno) == (step, err)
    assert str(info.value) == f"spawn failed at {step}: {os.strerror(err)}"
    named = info.value.for_container("web", "init container")
    assert str(named).startswith('init container "web": spawn failed at')
    # (no_leftovers checks that the failed child was reaped)


@needs_root
def test_failed_mount_names_the_mount(busybox_rootfs: Path) -> None:
    mounts = (PROC, MountSpec("/data", "/nonexistent/source", flags=native.MS_BIND))
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(busybox_rootfs),
                                  mounts=mounts))
    assert info.value.__notes__ == ["mount #1: /nonexistent/source on /data"]


@needs_root
def test_setns_failure(busybox_rootfs: Path) -> None:
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SpawnError) as info:
            spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(busybox_rootfs),
                                      join_ns={"net": fd}))
    finally:
        os.close(fd)
    assert (info.value.step, info.value.errno) == ("setns", errno.EINVAL)
    assert info.value.__notes__ == ["namespace net"]


@needs_root
@pytest.mark.parametrize("mode", CLONE_MODES)
def test_spawn_into_cgroup(busybox_rootfs: Path, cgroup_leaf: Path, held: list[Held],
                           mode: int) -> None:
    fd = os.open(cgroup_leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        h = Held(busybox_rootfs, clone_mode=mode, cgroup_fd=fd)
    finally:
        os.close(fd)
    held.append(h)
    with open(f"/proc/{h.pid}/cgroup") as f:
        v2 = [line for line in f.read().splitlines() if line.startswith("0::")]
    assert v2 == [f"0::/{cgroup_leaf.name}"]
    assert (cgroup_leaf / "cgroup.procs").read_text().split() == [str(h.pid)]
    assert h.release() == 0


@needs_root
@pytest.mark.parametrize("mode", CLONE_MODES[1:])
def test_other_clone_paths_run_the_same_steps(busybox_rootfs: Path, mode: int) -> None:
    assert run(busybox_rootfs, ["sh", "-c", "echo $$; hostname"], hostname="h",
               clone_mode=mode) == (0, "1\nh\n")
    with pytest.raises(SpawnError, match="chdir"):
        run(busybox_rootfs, ["true"], cwd="/nonexistent", clone_mode=mode)


@needs_root
def test_spawn_into_missing_cgroup_fails_in_parent(busybox_rootfs: Path) -> None:
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)  # not a cgroup directory
    try:
        with pytest.raises(SpawnError) as info:
            spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(busybox_rootfs),
                                      cgroup_fd=fd))
    finally:
        os.close(fd)
    assert (info.value.step, info.value.errno) == ("clone", errno.EBADF)


@needs_root
def test_concurrent_spawns_with_signals_arriving(busybox_rootfs: Path) -> None:
    """Spawns from several threads while a Python SIGALRM handler fires every 0.5 ms: the
    children share the parent's memory until execve, so this catches a child that runs a
    parent handler or tramples a parent frame."""
    import signal
    import threading

    hits = []
    old = signal.signal(signal.SIGALRM, lambda *_: hits.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    errors: list[BaseException] = []
    cwd = os.getcwd()

    def worker(n: int) -> None:
        try:
            for i in range(25):
                code, out = run(busybox_rootfs,
                                ["sh", "-c", f"echo {n}-{i}"], mounts=(), populate_dev=False,
                                log=busybox_rootfs.parent / f"w{n}.log")
                assert (code, out) == (0, f"{n}-{i}\n")
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
    assert errors == []
    assert hits, "the timer never fired"
    assert os.getcwd() == cwd  # pivot_root/chdir happened in the children only


@needs_root
def test_spawn_latency(busybox_rootfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """spawn + wait of /bin/true (no mounts): reported, not asserted."""
    req = SpawnRequest(argv=["/bin/true"], env=[], rootfs=str(busybox_rootfs))
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        _, pidfd = spawn(req)
        assert wait(pidfd) == 0
        times.append(time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\nspawn+wait /bin/true: median {statistics.median(times) * 1e3:.3f} ms, "
              f"min {min(times) * 1e3:.3f} ms over {len(times)}")
