"""The cgroup v1 driver on a real hybrid (or v1) host: real limits on real processes through
the real ``nsrun`` CLI. An app over its memory limit is OOMKilled, an OOM-killed init
container is retried, a fork bomb is held by ``pids.max``, ``cpu.cfs_quota_us`` throttles,
the pod's values are the effective ones (init wins, apps win), and teardown leaves no v1
cgroup in any hierarchy, even after the supervisor was SIGKILLed.

Values are numbers worked out by hand from the kubelet's rules, not nsrun's own computation.
Every test runs below its own ``--cgroup-parent`` (``nsrun-test-<pid>-<tmp>``), which the
fixture scrubs in every hierarchy even when the test fails."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from world import World, leftovers

MiB = 1 << 20
HIERARCHIES = ("cpu", "cpuacct", "memory", "pids", "freezer", "devices")


@pytest.fixture
def world(net_world):
    return net_world


def _v1_problem() -> str | None:
    from nsrun.host import cgroupdriver
    from nsrun.host.preflight import CgroupHost

    have = cgroupdriver.v1_hierarchies(CgroupHost.probe())
    missing = [h for h in HIERARCHIES if h not in have]
    return f"no cgroup v1 {', '.join(missing)} hierarchy on this host" if missing else None


pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (cgroups)"),
              pytest.mark.skipif(_v1_problem() is not None, reason=str(_v1_problem()))]


def pod(inits: str, apps: str, policy: str = "Never") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  initContainers: [{inits}]
  containers: [{apps}]
  volumes: [{{name: work, emptyDir: {{}}}}]
"""


def ctr(name: str, script: str, requests: str = "", limits: str = "") -> str:
    res = ""
    if requests or limits:
        res = ", resources: {" + ", ".join(
            f"{k}: {{{v}}}" for k, v in (("requests", requests), ("limits", limits)) if v) + "}"
    return (f"{{name: {name}, image: busybox, command: [sh, -c, {script!r}], "
            f"volumeMounts: [{{name: work, mountPath: /work}}]{res}}}")


def run(world: World, text: str, *extra: str, timeout: float = 90):
    return world.nsrun(*world.run_args("--cgroups", "v1", *extra), world.manifest("p", text),
                       timeout=timeout)


def pod_dirs(world: World) -> dict[str, Path]:
    """The pod's recorded directory in each hierarchy (the state dir's ``cgroup`` file)."""
    lines = (world.root / "pods" / "p" / "cgroup").read_text().split()
    return {Path(line).relative_to("/sys/fs/cgroup").parts[0]: Path(line) for line in lines}


def read(cg: Path, name: str) -> str:
    return (cg / name).read_text().strip()


def keyed(cg: Path, name: str) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split() for line in read(cg, name).splitlines())}


def container(world: World, name: str) -> dict:
    st = world.status("p")["status"]
    return next(cs for cs in st.get("initContainerStatuses", []) + st["containerStatuses"]
                if cs["name"] == name)


def wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except (OSError, KeyError, ValueError, StopIteration):
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def running(world: World, *names: str) -> None:
    wait(lambda: all("running" in container(world, n)["state"] for n in names), 30,
         f"{', '.join(names)} running")


# ------------------------------------------------------------------ values

# the init container asks for more than the app containers together: its value wins, and
# it allocates 160 MiB, more than the apps' 128 MiB sum (only possible because the pod's
# limit is the init value, written before it started)
INIT_WINS = (
    ctr("init", "dd if=/dev/zero of=/dev/null bs=160M count=1",
        limits="cpu: '1', memory: 256Mi"),
    ctr("a", "sleep 600", limits="cpu: 250m, memory: 64Mi") + ", "
    + ctr("b", "sleep 600", limits="cpu: 250m, memory: 64Mi"),
    "guaranteed",
    {"cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000",
             "cpu.cfs_quota_us": "100000"},
     "memory": {"memory.limit_in_bytes": str(256 * MiB)}, "pids": {"pids.max": "64"}},
    {"init": {"cpu": {"cpu.shares": "1024", "cpu.cfs_quota_us": "100000"},
              "memory": {"memory.limit_in_bytes": str(256 * MiB)}},
     "a": {"cpu": {"cpu.shares": "256", "cpu.cfs_quota_us": "25000"},
           "memory": {"memory.limit_in_bytes": str(64 * MiB)}}},
)
# the opposite: the apps' sum wins; Burstable (requests below limits)
APPS_WIN = (
    ctr("init", "true", limits="cpu: 200m, memory: 32Mi"),
    ctr("a", "sleep 600", requests="cpu: 300m, memory: 64Mi", limits="cpu: 600m, memory: 96Mi")
    + ", " + ctr("b", "sleep 600", requests="cpu: 300m, memory: 64Mi",
                 limits="cpu: 600m, memory: 96Mi"),
    "burstable",
    {"cpu": {"cpu.shares": "614", "cpu.cfs_period_us": "100000",
             "cpu.cfs_quota_us": "120000"},
     "memory": {"memory.limit_in_bytes": str(192 * MiB)}, "pids": {"pids.max": "64"}},
    {"init": {"cpu": {"cpu.shares": "204", "cpu.cfs_quota_us": "20000"},
              "memory": {"memory.limit_in_bytes": str(32 * MiB)}},
     "a": {"cpu": {"cpu.shares": "307", "cpu.cfs_quota_us": "60000"},
           "memory": {"memory.limit_in_bytes": str(96 * MiB)}}},
)


@pytest.mark.parametrize("case", [INIT_WINS, APPS_WIN], ids=["init-wins", "apps-win"])
def test_pod_values_are_the_effective_requests_and_limits(world, case):
    inits, apps, qos, want, leaves = case
    proc = run(world, pod(inits, apps), "-d", "--pod-pids-limit", "64")
    assert proc.returncode == 0, proc.stderr
    running(world, "a", "b")
    dirs = pod_dirs(world)
    uid = world.status("p")["metadata"]["uid"]
    assert sorted(dirs) == sorted(HIERARCHIES)
    for h, path in dirs.items():
        assert path.name == f"pod-{uid}" and path.parent.name == qos
        assert path.parent.parent.name == world.cgroup_parent
        assert sorted(p.name for p in path.iterdir() if p.is_dir()) == \
            ["_pause", "a", "b", "init"], h
    for h, values in want.items():
        assert {n: read(dirs[h], n) for n in values} == values, h
    for leaf, by_hierarchy in leaves.items():
        for h, values in by_hierarchy.items():
            assert {n: read(dirs[h] / leaf, n) for n in values} == values, (leaf, h)
    assert container(world, "init")["state"]["terminated"]["reason"] == "Completed"
    # each container is in its own leaf in every hierarchy
    pid = int(read(dirs["pids"] / "a", "cgroup.procs").split()[0])
    for h in HIERARCHIES:
        assert pid in map(int, read(dirs[h] / "a", "cgroup.procs").split()), h
    world.nsrun("delete", "p", check=True)
    assert leftovers(world.tmp, world.cgroup_dirs) == []


# ------------------------------------------------------------------ OOM

# v1 has no memory.oom.group: the kernel kills the largest process of the cgroup, so the hog
# is the container's own process (with a shell around it, the shell would live on)
HOG = "exec dd if=/dev/zero of=/dev/null bs=64M count=1"


def test_an_app_over_its_memory_limit_is_oomkilled(world):
    proc = run(world, pod(ctr("init", "true"), ctr("hog", HOG, limits="memory: 32Mi")))
    assert proc.returncode == 1, proc.stderr  # the pod Failed
    st = container(world, "hog")["state"]["terminated"]
    assert (st["reason"], st["exitCode"]) == ("OOMKilled", 137), st
    assert world.status("p")["status"]["phase"] == "Failed"


def test_a_child_over_the_limit_is_counted_though_the_container_lives_on(world):
    """The kubelet's reading of v1: an OOM kill in the container's cgroup makes its exit
    OOMKilled even when its main process survived (no group kill on v1)."""
    script = "dd if=/dev/zero of=/dev/null bs=64M count=1; echo survived"
    run(world, pod(ctr("init", "true"), ctr("hog", script, limits="memory: 32Mi")))
    st = container(world, "hog")["state"]["terminated"]
    assert (st["reason"], st["exitCode"]) == ("OOMKilled", 0), st
    assert "survived" in (world.root / "pods" / "p" / "logs" / "hog" / "0.log").read_text()


def test_an_oomkilled_init_container_is_retried(world):
    script = f"[ -e /work/tried ] && exit 0; touch /work/tried; {HOG}"  # 137, then 0
    text = pod(ctr("mem", script, limits="memory: 32Mi"),
               ctr("app", "true", limits="memory: 32Mi"), policy="OnFailure")
    proc = run(world, text)
    assert proc.returncode == 0, proc.stderr  # the pod Succeeded
    init = container(world, "mem")
    assert init["restartCount"] == 1, init
    assert init["lastState"]["terminated"]["reason"] == "OOMKilled", init
    assert init["state"]["terminated"]["reason"] == "Completed", init


# ------------------------------------------------------------------ pids and cpu


def test_a_fork_bomb_is_held_by_pids_max(world):
    bomb = "bomb() { bomb | bomb & }; bomb; while :; do sleep 1; done"
    proc = run(world, pod(ctr("init", "true"), ctr("bomb", bomb)), "-d",
               "--pod-pids-limit", "40")
    assert proc.returncode == 0, proc.stderr
    running(world, "bomb")
    cg = pod_dirs(world)["pids"]
    assert read(cg, "pids.max") == "40"
    peak = 0

    def hit() -> bool:
        nonlocal peak
        peak = max(peak, int(read(cg, "pids.current")))
        return sum(keyed(c, "pids.events").get("max", 0) for c in (cg, cg / "bomb")) >= 10

    wait(hit, 30, "the bomb to hit pids.max")
    assert peak <= 40 and int(read(cg, "pids.current")) <= 40
    world.nsrun("delete", "p", "--grace-period", "0", check=True)
    assert leftovers(world.tmp, world.cgroup_dirs) == []


def test_cpu_cfs_quota_throttles_a_burner(world):
    # every container has a cpu limit, so the pod gets a quota too: 10 ms per 100 ms
    text = pod(ctr("init", "true", limits="cpu: 100m"),
               ctr("burn", "while :; do :; done", limits="cpu: 100m"))
    proc = run(world, text, "-d")
    assert proc.returncode == 0, proc.stderr
    running(world, "burn")
    dirs = pod_dirs(world)
    assert read(dirs["cpu"], "cpu.cfs_quota_us") == "10000"
    start = int(read(dirs["cpuacct"], "cpuacct.usage"))
    throttled = keyed(dirs["cpu"], "cpu.stat")["nr_throttled"]
    t0 = time.monotonic()
    time.sleep(2)
    wall = time.monotonic() - t0
    used = (int(read(dirs["cpuacct"], "cpuacct.usage")) - start) / 1e9
    stats = [keyed(dirs["cpu"], "cpu.stat"), keyed(dirs["cpu"] / "burn", "cpu.stat")]
    assert stats[0]["nr_throttled"] > throttled or stats[1]["nr_throttled"] > 0, stats
    # 10 % of a CPU; a loaded machine can only lower it. Bound: 3x the quota (a period can
    # straddle the window edges), far below the 100 % an unthrottled burner gets
    assert 0 < used < 0.3 * wall, (used, wall)
    world.nsrun("delete", "p", "--grace-period", "0", check=True)


# ------------------------------------------------------------------ teardown


def test_a_sigkilled_supervisor_then_delete_leaves_no_v1_cgroup(world):
    proc = run(world, pod(ctr("init", "true"), ctr("app", "sleep 600")), "-d")
    assert proc.returncode == 0, proc.stderr
    running(world, "app")
    dirs = pod_dirs(world)
    app_pid = int(read(dirs["memory"] / "app", "cgroup.procs").split()[0])
    supervisor = int((world.root / "pods" / "p" / "supervisor.pid").read_text())
    os.kill(supervisor, signal.SIGKILL)
    wait(lambda: not Path(f"/proc/{supervisor}").exists(), 10, "the supervisor to die")
    assert Path(f"/proc/{app_pid}").exists()  # the containers outlive it
    proc = world.nsrun("delete", "p", "--timeout", "10")
    assert proc.returncode == 0, proc.stderr
    assert [d for d in dirs.values() if d.exists()] == []
    assert leftovers(world.tmp, world.cgroup_dirs) == []
    wait(lambda: not Path(f"/proc/{app_pid}").exists()
         or read(Path(f"/proc/{app_pid}"), "stat").split()[2] == "Z", 10, "the app to die")


def test_auto_picks_v1_here_and_says_so(world):
    proc = world.nsrun(*world.run_args(), world.manifest("p", pod(ctr("init", "true"),
                                                                     ctr("app", "true"))))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("nsrun: cgroup driver v1: ")
    assert len(proc.stderr.splitlines()) == 1
