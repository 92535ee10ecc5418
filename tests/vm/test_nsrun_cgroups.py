"""nsrun end to end in the guest kernel: the pod cgroup the CLI makes carries the computed
effective values and the kernel enforces them.

Each test runs the real ``nsrun`` CLI (``pods`` fixture: private state dir and
``--cgroup-parent``, a busybox image) and reads the pod cgroup it recorded. Values are
checked against numbers worked out by hand from the kubelet's rules
(the effective requests/limits: max of the largest init container and the apps' sum),
not against nsrun's own computation.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "shared"))
import pods  # noqa: E402 - shared with the other ring
from pods import ctr, pod  # noqa: E402

MiB = 1 << 20


def read(cg: Path, name: str) -> str:
    return (cg / name).read_text().strip()


def keyed(cg: Path, name: str) -> dict[str, int]:
    out = {}
    for line in read(cg, name).splitlines():
        key, _, value = line.partition(" ")
        out[key] = int(value)
    return out


# ------------------------------------------------------------------ values

# init container asks for more than the app containers together: the effective init
# value wins (C1-C3); it also allocates 160 MiB, more than the apps' 128 MiB sum, which
# only succeeds because the pod's memory.max is the init value, written before it started
INIT_WINS = (
    *pods.INIT_WINS,
    "guaranteed",
    {"cpu.weight": "39", "cpu.max": "100000 100000", "memory.max": str(256 * MiB),
     "pids.max": "64"},
)
# the opposite: the apps' sum wins; Burstable (requests below limits), all limits set
APPS_WIN = (
    *pods.APPS_WIN,
    "burstable",
    {"cpu.weight": "24", "cpu.max": "120000 100000", "memory.max": str(192 * MiB),
     "pids.max": "64"},
)
# per-container leaves: the OCI runtimes' shares -> weight formula (1024 -> 100)
LEAVES = {
    "guaranteed": {"init": {"cpu.weight": "100", "cpu.max": "100000 100000",
                            "memory.max": str(256 * MiB)},
                   "a": {"cpu.weight": "35", "cpu.max": "25000 100000",
                         "memory.max": str(64 * MiB)}},
    "burstable": {"init": {"cpu.weight": "29", "cpu.max": "20000 100000",
                           "memory.max": str(32 * MiB)},
                  "a": {"cpu.weight": "40", "cpu.max": "60000 100000",
                        "memory.max": str(96 * MiB)}},
}


@pytest.mark.parametrize("case", [INIT_WINS, APPS_WIN], ids=["init-wins", "apps-win"])
def test_pod_cgroup_values_are_the_effective_ones(pods, case):
    inits, apps, qos, want = case
    proc = pods.run(pod(inits, apps), "-d", "--cgroups", "v2", "--pod-pids-limit", "64")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # everything enforceable: no warning
    pods.wait_running("p", "a", "b")
    cg = pods.cgroup("p")
    uid = pods.status("p")["metadata"]["uid"]
    assert cg == pods.parent / qos / f"pod-{uid}"
    assert {name: read(cg, name) for name in want} == want
    assert set(read(cg, "cgroup.subtree_control").split()) >= {"cpu", "memory", "pids"}
    for leaf, values in LEAVES[qos].items():
        assert {name: read(cg / leaf, name) for name in values} == values, leaf
        assert read(cg / leaf, "memory.oom.group") == "1"
    assert pods.container("p", "init")["state"]["terminated"]["reason"] == "Completed"
    # one leaf per container, plus the sandbox's pause process
    assert sorted(p.name for p in cg.iterdir() if p.is_dir()) == ["_pause", "a", "b", "init"]
    pods.delete("p")
    assert not pods.parent.exists(), "delete left a cgroup behind"
    assert not pods.pod_dir("p").exists()


# ------------------------------------------------------------------ OOM


HOG = "dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived"


@pytest.mark.parametrize("where", ["pod", "leaf"])
def test_container_past_its_memory_limit_is_oomkilled(pods, where):
    """``pod``: every container has a memory limit, so the pod cgroup has memory.max (32 MiB);
    ``leaf``: the init container has none, so only the container's own leaf limits it."""
    init = ctr("init", "true", limits="memory: 32Mi" if where == "pod" else "")
    proc = pods.run(pod(init, ctr("hog", HOG, limits="memory: 32Mi")), timeout=90)
    assert proc.returncode == 1, proc.stderr  # the pod Failed
    st = pods.container("p", "hog")["state"]["terminated"]
    assert (st["reason"], st["exitCode"]) == ("OOMKilled", 137), st
    assert pods.status("p")["status"]["phase"] == "Failed"
    assert not pods.parent.exists()


def test_oomkilled_init_container_is_retried(pods):
    script = f"[ -e /work/tried ] && exit 0; touch /work/tried; {HOG}"
    text = pod(ctr("mem", script, limits="memory: 32Mi"),
               ctr("app", "true", limits="memory: 32Mi"), policy="OnFailure")
    proc = pods.run(text, timeout=90)
    assert proc.returncode == 0, proc.stderr  # the pod Succeeded
    init = pods.container("p", "mem")
    assert init["restartCount"] == 1, init
    assert init["lastState"]["terminated"]["reason"] == "OOMKilled", init
    assert init["state"]["terminated"]["reason"] == "Completed", init
    assert pods.container("p", "app")["state"]["terminated"]["exitCode"] == 0


# ------------------------------------------------------------------ pids and cpu


def test_fork_bomb_is_contained_by_pids_max(pods, slow):
    bomb = "bomb() { bomb | bomb & }; bomb; while :; do sleep 1; done"
    proc = pods.run(pod(ctr("init", "true"), ctr("bomb", bomb)), "-d", "--pod-pids-limit", "40")
    assert proc.returncode == 0, proc.stderr
    pods.wait_running("p", "bomb")
    cg = pods.cgroup("p")
    assert read(cg, "pids.max") == "40"
    peak = 0

    def hit() -> bool:
        # Linux < 6.13 counts the event in the forking process's cgroup (the leaf), later
        # ones in the cgroup whose limit was hit (the pod)
        nonlocal peak
        peak = max(peak, int(read(cg, "pids.current")))
        return sum(keyed(c, "pids.events")["max"] for c in (cg, cg / "bomb")) >= 10

    pods.wait(hit, 15, "the bomb to hit pids.max")
    assert peak <= 40 and int(read(cg, "pids.current")) <= 40
    assert os.system("true") == 0  # the guest is still responsive
    pods.delete("p")
    assert not pods.parent.exists()


def test_cpu_burner_is_throttled_by_cpu_max(pods):
    # every container has a cpu limit, so the pod gets cpu.max too (C7)
    text = pod(ctr("init", "true", limits="cpu: 100m"),
               ctr("burn", "while :; do :; done", limits="cpu: 100m"))
    proc = pods.run(text, "-d")
    assert proc.returncode == 0, proc.stderr
    pods.wait_running("p", "burn")
    cg = pods.cgroup("p")
    assert read(cg, "cpu.max") == "10000 100000"
    start = keyed(cg, "cpu.stat")["usage_usec"]
    t0 = time.monotonic()
    time.sleep(2)
    wall = time.monotonic() - t0
    stats = [keyed(cg, "cpu.stat")] + [keyed(p, "cpu.stat") for p in cg.iterdir() if p.is_dir()]
    assert sum(s["nr_throttled"] for s in stats) > 0, stats
    used = (stats[0]["usage_usec"] - start) / 1e6
    assert used < 0.5 * wall, (used, wall)  # 10 % of a CPU, with slack for the guest
    pods.delete("p")


# ------------------------------------------------------------------ teardown


def test_sigkilled_supervisor_then_delete_cleans_up(pods, slow):
    proc = pods.run(pod(ctr("init", "true"), ctr("app", "sleep 600")), "-d")
    assert proc.returncode == 0, proc.stderr
    pods.wait_running("p", "app")
    cg = pods.cgroup("p")
    app_pids = [int(p) for p in read(cg / "app", "cgroup.procs").split()]
    assert app_pids
    os.kill(pods.supervisor_pid("p"), signal.SIGKILL)
    pods.wait(lambda: not Path(f"/proc/{pods.supervisor_pid('p')}").exists(), 10,
              "the supervisor to die")
    assert keyed(cg, "cgroup.events")["populated"] == 1  # the containers outlive it
    proc = pods.nsrun("delete", "p")
    assert proc.returncode == 0, proc.stderr
    assert not cg.exists() and not pods.parent.exists()
    for pid in app_pids:
        assert not Path(f"/proc/{pid}").exists() or \
            Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


# ------------------------------------------------------------------ bad values


def test_a_value_the_kernel_rejects_leaves_nothing_behind(tmp_path):
    from nsrun.errors import CgroupError
    from nsrun.host import cgroupdriver

    parent = f"nsrun-vmtest-{uuid.uuid4().hex[:8]}"
    driver = cgroupdriver.choose("v2")
    with pytest.raises(CgroupError) as e:
        driver.create_pod(parent, "bad", {"cpu.weight": "39", "memory.max": str(64 * MiB)},
                          {"ok": {"cpu.weight": "100"},
                           "web": {"cpu.weight": "100", "cpu.max": "500 100000"}},
                          qos="Burstable")
    assert e.value.errno == errno.EINVAL
    text = str(e.value)
    assert text.startswith('container "web": write /sys/fs/cgroup/')
    assert text.endswith("/web/cpu.max: Invalid argument (value '500 100000')")
    assert not Path("/sys/fs/cgroup", parent).exists()
