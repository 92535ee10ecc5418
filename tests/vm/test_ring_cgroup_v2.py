"""Smoke tests of the VM ring itself: the guest kernel enforces cgroup v2.

They talk to /sys/fs/cgroup directly (no nsrun import): if these fail, any
nsrun-level resource test in tests/vm would be meaningless. Each test makes
its own child cgroup (``cgroup`` fixture) which is killed (cgroup.kill) and
removed (bounded rmdir retry) afterwards, pass or fail.
"""

from __future__ import annotations

import errno
import os
import pathlib
import signal
import subprocess
import time

import pytest
from conftest import require_systemd

CGROOT = pathlib.Path("/sys/fs/cgroup")
MiB = 1024 * 1024


def controllers() -> set[str]:
    return set((CGROOT / "cgroup.controllers").read_text().split())


def wait_for(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_pure_cgroup_v2_hierarchy(vm_backend):
    with open("/proc/self/mounts") as f:
        mounts = [line.split() for line in f]
    assert [m for m in mounts if m[2] == "cgroup"] == [], "cgroup v1 hierarchies are mounted"
    assert [m[1] for m in mounts if m[2] == "cgroup2"] == [str(CGROOT)]
    available = controllers()
    enabled = set((CGROOT / "cgroup.subtree_control").read_text().split())
    expected = {"cpu", "memory", "pids", "io"}
    if vm_backend == "qemu":
        expected |= {"cpuset", "hugetlb"}
    assert expected <= available, f"available: {sorted(available)}"
    if vm_backend in ("qemu", "uml"):
        # vm/guest/stage2.sh enables them all (also with systemd as PID 1)
        assert available == enabled, "every controller is enabled at the root"
    else:
        assert {"cpu", "memory", "pids"} <= enabled
    if open("/proc/1/comm").read().strip() != "systemd":
        # without --systemd the test process sits in the root cgroup
        assert open("/proc/self/cgroup").read().strip() == "0::/"


def test_memory_max_oom_kills_the_allocating_process(cgroup, python, slow):
    cgroup.write("memory.max", "32M")
    assert int(cgroup.read("memory.max")) == 32 * MiB
    if (cgroup / "memory.swap.max").exists():
        cgroup.write("memory.swap.max", 0)
    # touch 1 MiB chunks until 256 MiB; only a memory.max kill stops it early
    prog = (
        "chunks = []\n"
        "for i in range(256):\n"
        "    chunks.append(b'x' * (1 << 20))\n"
        "print('survived', len(chunks), flush=True)\n"
    )
    r = cgroup.run([python, "-c", prog], timeout=10 * slow, capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stdout, r.stderr)
    assert "survived" not in r.stdout
    events = cgroup.keyed("memory.events")
    assert events["oom_kill"] >= 1, events
    assert events["max"] >= 1, events
    assert cgroup.keyed("memory.stat")["anon"] <= 32 * MiB
    assert not cgroup.populated()


def test_memory_oom_group_kills_the_whole_cgroup(cgroup, python, slow):
    cgroup.write("memory.max", "32M")
    if (cgroup / "memory.swap.max").exists():
        cgroup.write("memory.swap.max", 0)
    cgroup.write("memory.oom.group", 1)
    # a sleeping bystander in the same cgroup dies with the allocator
    bystander = cgroup.popen(["sleep", "600"])
    try:
        r = cgroup.run(
            [python, "-c", "x = [b'x' * (1 << 20) for _ in range(256)]"],
            timeout=10 * slow,
            capture_output=True,
        )
        assert r.returncode == -signal.SIGKILL, r
        assert bystander.wait(timeout=5 * slow) == -signal.SIGKILL
    finally:
        bystander.kill()
        bystander.wait()
    assert cgroup.keyed("memory.events")["oom_group_kill"] >= 1


def test_pids_max_limits_forks_exactly(cgroup, python, slow):
    cgroup.write("pids.max", 5)
    # the python parent is one task: 4 children fit, the 5th fork gets EAGAIN
    prog = (
        "import os, time\n"
        "kids, err = [], None\n"
        "for _ in range(20):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        err = e.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        null = os.open('/dev/null', os.O_RDWR)\n"
        "        os.dup2(null, 1)\n"
        "        os.dup2(null, 2)\n"
        "        time.sleep(600)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "print(len(kids), err, flush=True)\n"
    )
    r = cgroup.run([python, "-c", prog], timeout=10 * slow, capture_output=True, text=True)
    assert r.returncode == 0, r
    assert r.stdout.split() == ["4", str(errno.EAGAIN)], r.stdout
    assert cgroup.keyed("pids.events")["max"] >= 1
    assert int(cgroup.read("pids.current")) == 4  # the sleeping children
    cgroup.kill()
    wait_for(lambda: int(cgroup.read("pids.current")) == 0, 10 * slow, "pids.current 0")


def test_pids_max_contains_a_fork_bomb(cgroup, slow):
    limit = 32
    cgroup.write("pids.max", limit)
    cgroup.write("memory.max", "256M")  # belt and braces
    bomb = cgroup.popen(
        ["/bin/sh", "-c", "bomb() { bomb | bomb & }; bomb; sleep 600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10 * slow
        peak = 0
        while time.monotonic() < deadline:
            peak = max(peak, int(cgroup.read("pids.current")))
            if cgroup.keyed("pids.events")["max"] >= 10:
                break
            time.sleep(0.1)
        assert cgroup.keyed("pids.events")["max"] >= 10, "the bomb never hit pids.max"
        assert peak <= limit
        assert int(cgroup.read("pids.current")) <= limit
        # the guest is still responsive
        assert subprocess.run(["true"], timeout=5 * slow).returncode == 0
    finally:
        cgroup.kill()
        bomb.wait(timeout=10 * slow)
    assert not cgroup.populated()
    wait_for(lambda: int(cgroup.read("pids.current")) == 0, 10 * slow, "pids.current 0")


def test_cpu_max_throttles_a_cpu_burner(cgroup, slow):
    cgroup.write("cpu.max", "10000 100000")  # 10 % of one CPU
    assert cgroup.read("cpu.max").split() == ["10000", "100000"]
    # a shell busy loop (cheap to start even under TCG) for 1.5 s of wall time
    t0 = time.monotonic()
    r = cgroup.run(["timeout", "1.5", "/bin/sh", "-c", "while :; do :; done"], timeout=30 * slow)
    wall = time.monotonic() - t0
    assert r.returncode == 124  # killed by timeout, not by anything else
    stat = cgroup.keyed("cpu.stat")
    assert stat["nr_throttled"] > 0, stat
    assert stat["throttled_usec"] > 0, stat
    # a quota of 10 % keeps the burner well below half of the wall time
    assert stat["usage_usec"] / 1e6 < 0.5 * wall, (stat, wall)


def test_cpu_weight_reads_back_and_rejects_out_of_range(cgroup):
    assert int(cgroup.read("cpu.weight")) == 100  # the kernel default
    for w in (1, 50, 10000):
        cgroup.write("cpu.weight", w)
        assert int(cgroup.read("cpu.weight")) == w
    for bad in (0, 10001):
        with pytest.raises(OSError) as e:
            cgroup.write("cpu.weight", bad)
        assert e.value.errno in (errno.EINVAL, errno.ERANGE)
    assert int(cgroup.read("cpu.weight")) == 10000


def test_nested_cgroups_need_subtree_control(cgroup_factory):
    parent = cgroup_factory()
    child_path = parent / "leaf"
    child_path.mkdir()
    assert not (child_path / "memory.max").exists()
    parent.write("cgroup.subtree_control", "+cpu +memory +pids")
    assert (child_path / "memory.max").exists()
    assert (child_path / "pids.max").exists()
    (child_path / "memory.max").write_text("16M\n")
    assert int((child_path / "memory.max").read_text()) == 16 * MiB


@pytest.mark.vm_may_skip("uml has one CPU and no cpuset controller (docs/vm.md)")
def test_cpuset_pins_tasks(cgroup, python, vm_backend, slow):
    if vm_backend == "uml":
        pytest.skip("no cpuset controller and a single CPU on the uml backend")
    enabled = (CGROOT / "cgroup.subtree_control").read_text().split()
    assert "cpuset" in enabled and (os.cpu_count() or 1) >= 2, (enabled, os.cpu_count())
    cgroup.write("cpuset.cpus", 1)
    r = cgroup.run(
        [python, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        timeout=10 * slow,
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == "[1]", r


def test_systemd_scope_gets_a_delegated_subtree(slow):
    require_systemd()
    # inside the scope: move into a leaf (no-internal-processes rule), then
    # enable controllers for it, as nsrun's supervisor does
    script = (
        'cg=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); echo "$cg"; '
        'mkdir "$cg/supervisor" && echo $$ > "$cg/supervisor/cgroup.procs" && '
        'echo "+cpu +memory +pids" > "$cg/cgroup.subtree_control" && '
        'mkdir "$cg/pod" && echo 12345678 > "$cg/pod/memory.max" && '
        'cat "$cg/cgroup.subtree_control" "$cg/pod/memory.max"'
    )
    unit = f"nsrun-vmtest-{os.getpid()}"
    r = subprocess.run(
        [
            "systemd-run",
            "--scope",
            "--quiet",
            f"--unit={unit}",
            "-p",
            "Delegate=yes",
            "/bin/sh",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        timeout=30 * slow,
    )
    assert r.returncode == 0, r
    lines = r.stdout.split("\n")
    scope = pathlib.Path(lines[0])
    assert scope.name == f"{unit}.scope", lines
    assert {"cpu", "memory", "pids"} <= set(lines[1].split()), lines
    assert lines[2] == str(12345678 // 4096 * 4096), lines
    # systemd removes the whole delegated subtree once the scope is gone
    wait_for(lambda: not scope.exists(), 10 * slow, f"{scope} to be removed")


def test_systemd_run_enforces_memory_max(python, slow):
    require_systemd()
    unit = f"nsrun-vmtest-mem-{os.getpid()}"
    r = subprocess.run(
        [
            "systemd-run",
            "--wait",
            "--collect",
            f"--unit={unit}",
            "-p",
            "MemoryMax=32M",
            "-p",
            "MemorySwapMax=0",
            python,
            "-c",
            "x = [b'x' * (1 << 20) for _ in range(256)]",
        ],
        capture_output=True,
        text=True,
        timeout=60 * slow,
    )
    assert r.returncode != 0, r
    assert "Finished with result: oom-kill" in r.stderr, r.stderr
