"""What each cgroup driver costs per container start (``.venv/bin/python bench/cgroups.py``;
root, a host with the driver's hierarchies: v1 and v2 on a hybrid host).

Per driver (``none``, ``v2``, ``v1``), in one process, ``--runs`` times interleaved:

* **leaf**: making one container's cgroup (``PodCgroups.leaf`` with the kubelet's values)
  and its device allow-list (``set_devices``: the BPF program on v2, ``devices.deny``/
  ``devices.allow`` on v1);
* **spawn**: ``host.spawn.spawn`` of ``/bin/true`` in a busybox rootfs into that cgroup
  (v2: ``CLONE_INTO_CGROUP``; v1: the child waits while the parent writes its pid into each
  hierarchy) and reaping it;
* **import**: the driver's modules in a fresh interpreter that already has nsrun's start
  path (cgroupspy's controllers on v1), the median of 10 runs.

It prints medians in ms. The pod's own cgroups (made once per pod) are left out. Everything
is made below ``nsrun-bench-<pid>`` and removed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

V1_LEAF = {"cpu.shares": "102", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000",
           "memory.limit_in_bytes": "67108864", "memory.memsw.limit_in_bytes": "67108864"}
V2_LEAF = {"cpu.weight": "4", "cpu.max": "50000 100000", "memory.max": "67108864"}
IMPORTS = {"none": "", "v2": "import nsrun.host.podcgroup",
           "v1": "import nsrun.host.podcgroupv1, cgroupspy.controllers"}


def rootfs(tmp: Path) -> str:
    subprocess.run([sys.executable, "-m", "nsrun", "--images", str(tmp), "image", "busybox"],
                   check=True, capture_output=True)
    return str(tmp / "busybox" / "latest" / "rootfs")


def one_start(pod, name: str, root: str, values: dict[str, str]) -> tuple[float, float]:
    from nsrun.core import devices
    from nsrun.host.spawn import spawn
    from nsrun.request import SpawnRequest

    t0 = time.perf_counter()
    leaf = pod.leaf(name, values)
    leaf.set_devices(devices.policy())
    t1 = time.perf_counter()
    pid, pidfd = spawn(SpawnRequest(
        argv=["/bin/true"], env=[], rootfs=root, cgroup_fd=leaf.clone_fd,
        cgroup_join_fds=leaf.join_fds))
    os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    os.close(pidfd)
    return (t1 - t0) * 1e3, (time.perf_counter() - t1) * 1e3


def import_ms(kind: str) -> float:
    code = ("import time, nsrun.cli, nsrun.runtime.supervisor, nsrun.host.cgroupdriver;"
            f"t=time.perf_counter();{IMPORTS[kind] or 'pass'};"
            "print((time.perf_counter()-t)*1e3)")
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(10)]
    return statistics.median(runs)


def main() -> int:
    from nsrun.host import cgroupdriver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    parent = f"nsrun-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        root = rootfs(Path(tmp))
        pods = {kind: cgroupdriver.choose(kind).create_pod(parent, kind, {}, {})
                for kind in ("none", "v2", "v1")}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in pods}
        try:
            for i in range(args.runs):
                for kind, pod in pods.items():
                    values = V1_LEAF if kind == "v1" else V2_LEAF
                    times[kind].append(one_start(pod, f"c{i}", root, values))
        finally:
            for pod in pods.values():
                pod.destroy()
    print(f"{'driver':6} {'leaf+devices':>13} {'spawn+wait':>11} {'import':>7}  (ms, median of "
          f"{args.runs})")
    for kind, rows in times.items():
        leaf = statistics.median(r[0] for r in rows)
        spawn = statistics.median(r[1] for r in rows)
        print(f"{kind:6} {leaf:13.3f} {spawn:11.3f} {import_ms(kind):7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
