"""End to end, as root, with real namespaces, mounts, cgroups and processes: a pod with init
containers through the real ``nsrun`` CLI. Every test checks that nothing is left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nsrun.core.netconfig import world_name

from world import AT_WORK, WORK, World, ctr, pod, scrub, work_pod

pytestmark = pytest.mark.root("namespaces, mounts")


def test_init_containers_run_in_order_and_app_sees_both_markers(world):
    inits = ["test ! -e /work/b && echo a > /work/a",
             "test -e /work/a && echo b > /work/b"]
    app = "cat /work/a /work/b && test -e /work/a -a -e /work/b"
    proc = world.nsrun(*world.run_args(world.manifest("p", work_pod("p", inits, app))))
    assert proc.returncode == 0, proc.stderr
    status = world.status("p")["status"]
    assert status["phase"] == "Succeeded"
    assert [s["state"]["terminated"]["reason"] for s in status["initContainerStatuses"]] == [
        "Completed", "Completed"]
    assert world.nsrun("logs", "p", "-c", "app", check=True).stdout == "a\nb\n"
    assert world.column("p") == "Completed"


def test_container_has_own_mount_namespace_and_the_pods_network_namespace(world):
    # Two app containers alive at the same time (each waits for the other's record), so
    # their namespace inode numbers cannot be recycled between them.
    record = ("readlink /proc/self/ns/mnt > /work/{0}.mnt; readlink /proc/self/ns/net > "
              "/work/{0}.net; grep -c : /proc/net/dev > /work/{0}.ifs; hostname > /work/{0}.host;"
              " echo $$$$ > /work/{0}.pid; touch /work/{0}.done")
    wait = "; until [ -e /work/{0}.done ]; do sleep 0.05; done"
    text = pod("p", [ctr(app, record.format(app) + wait.format(other), volumeMounts=AT_WORK)
                     for app, other in (("app", "app2"), ("app2", "app"))],
               [ctr("init", record.format("init"), volumeMounts=AT_WORK)],
               restartPolicy="Never", volumes=[WORK])
    proc = world.nsrun(*world.run_args(world.manifest("p", text)))
    assert proc.returncode == 0, proc.stderr
    work = world.root / "pods" / "p" / "volumes" / "work"

    def read(name: str) -> str:
        return (work / name).read_text().strip()

    host_mnt, host_net = os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/net")
    assert read("app.mnt") != read("app2.mnt")
    assert host_mnt not in (read("init.mnt"), read("app.mnt"), read("app2.mnt"))
    assert read("init.net") == read("app.net") == read("app2.net") != host_net
    assert read("init.ifs") == "2"  # lo and eth0 in the pod's network namespace
    assert read("init.host") == read("app.host") == "p"
    assert read("app.pid") == read("app2.pid") == "1"  # pid 1 of its own pid namespace


def test_failing_init_with_never_fails_the_pod_and_the_app_never_runs(world):
    inits = ["echo failing; exit 3"]
    text = work_pod("p", inits, "touch /work/app-ran")
    proc = world.nsrun(*world.run_args(world.manifest("p", text)))
    assert proc.returncode == 1
    status = world.status("p")["status"]
    assert status["phase"] == "Failed"
    term = status["initContainerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert not (world.root / "pods" / "p" / "volumes" / "work" / "app-ran").exists()
    assert world.column("p") == "Init:Error"


def test_failing_init_with_on_failure_is_retried_then_the_pod_runs(world):
    inits = ["if [ -e /work/tried ]; then echo second; else touch /work/tried; echo first; exit 1; fi"]
    text = work_pod("p", inits, "true", "OnFailure")
    proc = world.nsrun(*world.run_args(world.manifest("p", text)))
    assert proc.returncode == 0, proc.stderr
    init = world.status("p")["status"]["initContainerStatuses"][0]
    assert init["restartCount"] == 1
    assert init["lastState"]["terminated"]["exitCode"] == 1
    assert world.nsrun("logs", "p", "-c", "init-0", "--previous", check=True).stdout == "first\n"
    assert world.nsrun("logs", "p", "-c", "init-0", check=True).stdout == "second\n"


def test_crash_loop_shows_init_crashloopbackoff(world):
    path = world.manifest("p", work_pod("p", ["exit 1"], "true", "Always"))
    world.nsrun("run", "-d", "--cgroup-parent", world.cgroup_parent, "--backoff-initial", "30",
                path, check=True)
    world.wait_column("p", "Init:CrashLoopBackOff")
    init = world.status("p")["status"]["initContainerStatuses"][0]
    assert init["restartCount"] == 1
    assert init["state"]["waiting"]["message"].startswith(
        "back-off 30s restarting failed container=init-0 pod=p_default(")
    world.nsrun("delete", "p", check=True)
    assert not (world.root / "pods" / "p").exists()


def test_sigterm_to_run_stops_the_pod_and_leaves_no_process(world):
    path = world.manifest("p", work_pod("p", ["true"], "trap 'exit 0' TERM; sleep 300 & wait"))
    cmd = [sys.executable, "-m", "nsrun", *world.global_args(), *world.run_args("--rm", path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        world.wait_column("p", "Running")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 143
    assert not (world.root / "pods" / "p").exists()


def test_missing_image_waits_with_err_image_never_pull(world):
    text = pod("p", [ctr("app", "true")], [ctr("init-0", "true", "nosuch:1.0")])
    world.nsrun("run", "-d", "--cgroup-parent", world.cgroup_parent, world.manifest("p", text),
                check=True)
    world.wait_column("p", "Init:ErrImageNeverPull")
    waiting = world.status("p")["status"]["initContainerStatuses"][0]["state"]["waiting"]
    assert waiting["message"] == 'Container image "nosuch:1.0" is not present with pull policy of Never'


def test_spawn_failure_reaches_the_user_with_step_and_errno(world):
    text = pod("p", [ctr("app", "true")], [ctr("init-0", "true", workingDir="/nonexistent")],
               restartPolicy="Never")
    proc = world.nsrun(*world.run_args(world.manifest("p", text)))
    assert proc.returncode == 1
    term = world.status("p")["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (128, "StartError")
    assert term["message"] == ('init container "init-0": spawn failed at chdir: '
                               "No such file or directory")


def test_delete_after_supervisor_is_killed_still_cleans_up(world):
    world.nsrun("run", "-d", "--cgroup-parent", world.cgroup_parent,
                world.manifest("p", work_pod("p", [], "sleep 300")), check=True)
    world.wait_column("p", "Running")
    pid = int((world.root / "pods" / "p" / "supervisor.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    world.nsrun("delete", "p", check=True)
    assert not (world.root / "pods" / "p").exists()


def test_without_a_cgroup_containers_die_with_a_killed_supervisor(world):
    world.nsrun("run", "-d", "--cgroups", "none",
                world.manifest("p", work_pod("p", [], "sleep 300")), check=True)
    world.wait_column("p", "Running")
    pid = int((world.root / "pods" / "p" / "supervisor.pid").read_text())
    container = json.loads((world.root / "pods" / "p" / "pids.json").read_text())["app"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{container}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{container}")  # nothing could have found it again
    world.nsrun("delete", "p", check=True)


def test_oom_score_adj_follows_the_kubelets_qos_rule(world):
    text = pod("p", [ctr("app", "cat /proc/self/oom_score_adj",
                         resources={"requests": {"memory": "1Ti"}})], restartPolicy="Never")
    proc = world.nsrun(*world.run_args(world.manifest("p", text)))
    assert proc.returncode == 0, proc.stderr
    # Burstable: 1000 - 1000 * request / node memory, clamped to [3, 999]; a request above
    # the node's memory gives the floor, raised to nsrun's own value if that is higher
    # (lowering it needs CAP_SYS_RESOURCE)
    with open("/proc/self/oom_score_adj") as f:
        own = int(f.read())
    assert world.nsrun("logs", "p", "-c", "app", check=True).stdout == f"{max(3, own)}\n"


def test_containers_of_a_pod_share_dev_shm(world):
    inits = ["echo from-init > /dev/shm/segment"]
    app = "cat /dev/shm/segment && grep -c ' /dev/shm ' /proc/self/mountinfo"
    proc = world.nsrun(*world.run_args(world.manifest("p", work_pod("p", inits, app))))
    assert proc.returncode == 0, proc.stderr
    assert world.nsrun("logs", "p", "-c", "app", check=True).stdout == "from-init\n1\n"


def run_default_parent(w: World) -> list[str]:
    """``run -d`` of a sleeping pod ``p`` without ``--cgroup-parent``: its cgroup dirs, each
    below the world's own default parent."""
    w.nsrun("run", "-d", w.manifest("p", work_pod("p", [], "sleep 300")), check=True)
    dirs = (w.root / "pods" / "p" / "cgroup").read_text().split()
    name = world_name(os.path.normpath(str(w.root)))
    assert dirs and all(name in Path(d).parts for d in dirs), (name, dirs)
    return dirs


def test_default_cgroup_parent_is_one_per_state_root(world, tmp_path):
    """Without ``--cgroup-parent`` two state roots put their pods under two parents (named
    after each root, as their systemd units are): one world's teardown never prunes the
    other's parent, and the same pod name never meets the other world's."""
    world.cgroup_dirs += world.default_parents()  # the fixture checks they are gone at the end
    first = run_default_parent(world)
    (tmp_path / "other").mkdir()
    other = World(tmp_path / "other")  # claimed now: the first world's network is in use
    other.images = world.images
    try:
        second = run_default_parent(other)
        assert not set(first) & set(second)
        other.nsrun("delete", "p", check=True)
        assert not [p for p in other.default_parents() if p.exists()]  # pruned: empty
        assert all(Path(d).is_dir() for d in first)  # the first world's pod is intact
    finally:
        other.clean()
        scrub(other.default_parents())
