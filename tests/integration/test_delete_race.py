"""``delete`` never lies (issue 9): 500 deletes racing the pods' own completion, under CPU
load from hogs this test starts (and kills by PID). Each delete must either remove the pod
entirely (state dir, its ``/dev/shm`` tmpfs and other mounts, its cgroups) and exit 0, or
name what is left and exit non-zero, and a second delete must then finish. 0 leaks at the end.

The tries run in ``LANES`` processes (``delete_race_lane.py``), each racing its own pod.
Slow by design (minutes on a loaded 2-core host), hence its own timeout;
``NSRUN_DELETE_RACE_TRIES`` lowers the count for a quick local run, the ring runs 500.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from world import World, leftovers, scrub

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

TRIES = int(os.environ.get("NSRUN_DELETE_RACE_TRIES", "500"))
LANES = 3
LANE = Path(__file__).with_name("delete_race_lane.py")


def cpu_hogs(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


@pytest.mark.timeout(1800)
def test_deletes_racing_completion_under_load_leave_nothing(tmp_path):
    world = World(tmp_path)
    world.nsrun("image", "busybox", check=True)
    assert world.cgroup_dirs, "needs the cgroup2 mount the World's cgroup parent lives in"
    hogs = cpu_hogs(2)
    try:
        lanes = [subprocess.Popen(
            [sys.executable, str(LANE), str(world.root), str(world.images),
             world.cgroup_parent, f"race{i}", str(-(-TRIES // LANES)), str(i),
             str(world.cgroup_dirs[0]), *world.global_args()[4:]],
            stdout=subprocess.PIPE, text=True, cwd=LANE.parent) for i in range(LANES)]
        outputs = [lane.communicate(timeout=1700)[0] for lane in lanes]
        codes = [lane.returncode for lane in lanes]
    finally:
        for hog in hogs:
            os.kill(hog.pid, signal.SIGKILL)
            hog.wait()
        left = world.clean()
        scrub(world.cgroup_dirs)
    assert codes == [0] * LANES
    assert "".join(outputs) == ""
    assert left == [] and leftovers(tmp_path, world.cgroup_dirs) == []


def test_delete_names_what_is_left_and_a_second_delete_finishes(tmp_path):
    """A bind mount on the pod's state dir (made by the test) hides the pod's ``/dev/shm``
    tmpfs from the unmount: the delete names it and exits 5, with the pod's processes and
    cgroups gone already; once the test removes its mount a second delete removes the rest."""
    from nsrun.host import mounts

    world = World(tmp_path)
    world.nsrun("image", "busybox", check=True)
    pod_dir = world.root / "pods" / "p"
    path = world.manifest("p", MANIFEST)
    try:
        world.nsrun(*world.run_args("-d", path), check=True)
        world.wait_column("p", "Running")
        subprocess.run(["mount", "--bind", str(pod_dir), str(pod_dir)], check=True)
        first = world.nsrun("delete", "p", "--grace-period", "0")
        assert first.returncode == 5, first.stderr
        said = first.stderr.strip()  # the shm tmpfs under the test's mount is named too
        assert said.startswith('nsrun: pod "p" was stopped but is not fully deleted; left: ')
        assert said.endswith(f"{pod_dir}/shm (run delete again to retry)")
        assert not [d for d in world.cgroup_dirs if any(d.rglob("pod-*"))]
        mounts.umount(str(pod_dir))
        world.nsrun("delete", "p", check=True)
        assert not pod_dir.exists()
    finally:
        if pod_dir.exists() and str(pod_dir) in open("/proc/self/mountinfo").read():
            mounts.umount(str(pod_dir))
        left = world.clean()
        scrub(world.cgroup_dirs)
    assert left == []


MANIFEST = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: app, image: busybox, command: [sleep, '300']}
"""
