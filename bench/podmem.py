"""A running pod's memory, the time to its first container's ``execve``, and 50 pods at
once (run by ``bench/bench.py``; root).

* **memory of a pod**: RSS and PSS (``/proc/<pid>/smaps_rollup`` through psutil) of every
  process of nsrun's that holds a sleeping pod: its supervisor and the supervisor's
  descendants named ``nsrun-*`` (the pause process, any monitor), never the containers;
* **first exec**: from ``nsrun run`` to the first init container's ``execve``. That init
  container is ``tee /x/fifo``, with a hostPath FIFO of this benchmark's mounted at ``/x``:
  tee opens it right after its exec, which the benchmark, blocked on the read end, sees;
* **50 pods at once**: one ``nsrun create -f`` of 50 sleeping pods (pod network on), the
  time until every pod is Running, how many failed, and the memory of all of nsrun's
  processes together, against 50 times one pod's (memory must be linear in pods).
"""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import time
from pathlib import Path

import psutil

SLEEP = ("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n"
         "  terminationGracePeriodSeconds: 0\n"
         "  containers:\n  - {{name: app, image: bench, command: [sleep, '3600']}}\n")


def nsrun_processes(pod_dir: Path) -> list[psutil.Process]:
    sup = psutil.Process(int((pod_dir / "supervisor.pid").read_text()))
    return [sup] + [p for p in sup.children(recursive=True) if p.name().startswith("nsrun")]


def memory_kib(pod_dirs: list[Path]) -> tuple[float, float]:
    """(RSS, PSS) in KiB of nsrun's processes of these pods, all together."""
    rss = pss = 0
    for pod_dir in pod_dirs:
        for proc in nsrun_processes(pod_dir):
            info = proc.memory_full_info()
            rss, pss = rss + info.rss, pss + info.pss
    return rss / 1024, pss / 1024


def wait_running(root: Path, names: list[str], limit: float = 600) -> tuple[float, int]:
    """(seconds until every pod was Running or had failed, how many failed)."""
    start, pending, failed = time.perf_counter(), set(names), 0
    while pending and time.perf_counter() - start < limit:
        for name in list(pending):
            try:
                phase = json.loads((root / "pods" / name / "status.json").read_bytes())[
                    "status"].get("phase")
            except (OSError, ValueError, KeyError):
                continue
            if phase in ("Running", "Failed", "Succeeded"):
                pending.discard(name)
                failed += phase != "Running"
        time.sleep(0.02)
    return time.perf_counter() - start, failed + len(pending)


def pod_memory(base: list[str], tmp: Path, runs: int = 3) -> tuple[float, float]:
    """Median (RSS, PSS) KiB of nsrun's processes holding one running pod."""
    root, samples = Path(base[base.index("--root") + 1]), []
    manifest = tmp / "mem.yaml"
    manifest.write_text(SLEEP.format(name="mem"))
    for _ in range(runs):
        subprocess.run(base + ["run", "-d", str(manifest)], check=True, capture_output=True)
        try:
            wait_running(root, ["mem"], 60)
            time.sleep(0.2)
            samples.append(memory_kib([root / "pods" / "mem"]))
        finally:
            subprocess.run(base + ["delete", "mem", "--grace-period", "0"], check=True,
                           capture_output=True)
    return (statistics.median(s[0] for s in samples),
            statistics.median(s[1] for s in samples))


FIRST = ("apiVersion: v1\nkind: Pod\nmetadata: {{name: first}}\nspec:\n"
         "  restartPolicy: Never\n  volumes: [{{name: x, hostPath: {{path: {dir}}}}}]\n"
         "  initContainers:\n  - {{name: init-0, image: bench, command: [tee, /x/fifo],"
         " volumeMounts: [{{name: x, mountPath: /x}}]}}\n"
         "  - {{name: init-1, image: bench, command: [/bin/true]}}\n"
         "  containers:\n  - {{name: app, image: bench, command: [/bin/true]}}\n")


def first_exec(base: list[str], tmp: Path) -> float:
    """Seconds from starting ``nsrun run`` to the first init container's exec."""
    fifo_dir = tmp / "first"
    fifo_dir.mkdir(exist_ok=True)
    fifo = fifo_dir / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    manifest = tmp / "first.yaml"
    manifest.write_text(FIRST.format(dir=fifo_dir))
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(base + ["run", "--rm", str(manifest)],
                                stdout=subprocess.DEVNULL)
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        ready = poller.poll(30_000)
        elapsed = time.perf_counter() - start
        if proc.wait(60) != 0 or not ready:
            raise SystemExit("bench: first-exec pod failed")
    finally:
        os.close(fd)
    return elapsed


def fifty(base: list[str], tmp: Path, count: int = 50) -> dict:
    """``create -f`` of ``count`` sleeping pods: time until all Running, failures, memory."""
    root = Path(base[base.index("--root") + 1])
    names = [f"m{i}" for i in range(count)]
    manifest = tmp / "fifty.yaml"
    manifest.write_text("---\n".join(SLEEP.format(name=n) for n in names))
    start = time.perf_counter()
    created = subprocess.run(base + ["create", "-f", str(manifest)], capture_output=True,
                             text=True)
    try:
        waited, failed = wait_running(root, names)
        elapsed = time.perf_counter() - start
        time.sleep(0.5)
        alive = [root / "pods" / n for n in names if (root / "pods" / n / "supervisor.pid")
                 .exists()]
        per_pod = [memory_kib([d]) for d in alive]
    finally:
        subprocess.run(base + ["delete", "-f", str(manifest), "--grace-period", "0"],
                       capture_output=True)
    if created.returncode != 0:
        print(f"bench: create -f of {count} pods: {created.stderr.strip()[-300:]}")
    return {"all_running_s": elapsed, "failed": max(failed, count - len(alive)),
            "rss_kib": sum(p[0] for p in per_pod), "pss_kib": sum(p[1] for p in per_pod),
            "per_pod_rss_kib": sorted(p[0] for p in per_pod), "waited_s": waited}
