"""A full disk, with real processes: the state root and the log dir on small tmpfs mounts made
by the test. ENOSPC never kills the supervisor or a container; status.json keeps its last good
copy and catches up when space returns; logs are rotated within an attempt and what cannot be
written is dropped and counted."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from world import World, leftovers, scrub

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {name: full}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: chatty
    image: busybox
    command: [sh, -c, 'i=0; while [ $i -lt 40000 ]; do echo chatty-line-$i; i=$((i+1)); done']
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'while true; do echo tick; sleep 0.2; done']
    readinessProbe: {exec: {command: [cat, /ctl/ready]}, periodSeconds: 1}
    volumeMounts: [{name: ctl, mountPath: /ctl}]
  volumes:
  - {name: ctl, hostPath: {path: CTL}}
"""


@pytest.fixture
def small_disks(tmp_path):
    """tmp/state (2 MiB) and tmp/logs (1 MiB) as tmpfs mounts, removed afterwards."""
    mounts = [(tmp_path / "state", "2m"), (tmp_path / "logs", "1m")]
    for path, size in mounts:
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True)
    w = World(tmp_path)
    try:
        w.nsrun("image", "busybox", check=True)
        yield w
    finally:
        w.clean()
        scrub(w.cgroup_dirs)
        for path, _ in mounts:
            subprocess.run(["umount", "-l", str(path)], check=False)
    assert leftovers(tmp_path, w.cgroup_dirs) == []


def _fill(directory) -> str:
    """A file that takes every free byte of ``directory``'s filesystem."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def _wait(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _ready(pod_dir) -> bool:
    status = json.loads((pod_dir / "status.json").read_text())["status"]
    return status["containerStatuses"][0]["ready"]


def test_pod_survives_full_state_and_log_disks(small_disks, tmp_path):
    w = small_disks
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    manifest = w.manifest("full", POD.replace("CTL", str(ctl)))
    w.nsrun(*w.run_args("-d", "--log-max-size", "64Ki", "--log-max-files", "3", manifest),
            check=True)
    w.wait_column("full", "Running")
    pod_dir = w.root / "pods" / "full"
    supervisor = int((pod_dir / "supervisor.pid").read_text())
    fillers = [_fill(w.root), _fill(tmp_path / "logs")]
    (ctl / "ready").touch()  # the app turns ready: a status change on a full disk
    time.sleep(3)
    os.kill(supervisor, 0)  # still alive
    assert not _ready(pod_dir)  # the last good copy, whole
    assert not list(pod_dir.glob(".*.tmp"))
    for path in fillers:
        os.unlink(path)
    _wait(lambda: _ready(pod_dir), what="the status written again")
    assert w.status("full")["status"]["containerStatuses"][0]["restartCount"] == 0
    events = [json.loads(line) for line in (pod_dir / "events.jsonl").read_text().splitlines()]
    assert {"StatusWriteFailed", "EventsDropped"} & {e["reason"] for e in events}
    logs = sorted(p.name for p in (pod_dir / "logs" / "chatty").iterdir())
    assert len(logs) == 3 and "0.log" in logs, logs  # rotated, the oldest files removed
    assert all((pod_dir / "logs" / "chatty" / n).stat().st_size <= 64 * 1024 for n in logs)
    out = w.nsrun("logs", "full", "-c", "chatty").stdout.splitlines()
    assert out[-1] == "chatty-line-39999"
