"""A container is never started twice by ``recover`` (issue 11), with real processes: the
supervisor is SIGKILLed right after it forked a container's monitor, and the monitor is
held (its cgroup leaf frozen) before it writes its start record, longer than any fixed
wait. ``recover`` meanwhile starts nothing; once the monitor goes on, the pod is recovered
and the container ran once (the starts are counted in an emptyDir).

The held monitor still holds the pod lock it inherited from the supervisor (until its start
record is written), so ``recover`` does not begin then; the look for unaccounted monitors
(``core.reattachment``) does not rely on that, and is tested on its own with a real process
holding the record directory open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from nsrun.host.holders import holders
from nsrun.runtime import reattach
from nsrun.state import PodPaths

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {name: r}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: busybox
    command: [sh, -c, 'echo first >> /work/starts; [ $(wc -l < /work/starts) -ge 3 ]']
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo app >> /work/starts']
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - {name: work, emptyDir: {}}
"""
HELD = 5.0  # seconds the monitor is held: longer than the fixed wait recover used to give


def _wait(cond, timeout: float = 30, what=None):
    deadline = time.monotonic() + timeout
    while not (got := cond()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got, what() if what else cond
    return got


def _dump(w: World) -> str:
    pod = w.root / "pods" / "r"
    return "\n".join(f"{p.relative_to(pod)}: {p.read_text()[:300]}" for p in
                     [pod / "observed.json", *sorted((pod / "containers").rglob("*.json"))]
                     if p.exists())


def _monitor_leaf(w: World) -> Path:
    """The pod's monitor leaf ("_pause") in the freezer: cgroup v1's freezer hierarchy, or
    the v2 group (its cgroup.freeze)."""
    dirs = (w.root / "pods" / "r" / "cgroup").read_text().split()
    leaves = [Path(d, "_pause") for d in dirs]
    found = [p for p in leaves if (p / "freezer.state").exists() or (p / "cgroup.freeze").exists()]
    assert found, dirs
    return found[0]


def _freeze(leaf: Path, on: bool) -> None:
    if (leaf / "freezer.state").exists():
        (leaf / "freezer.state").write_text("FROZEN" if on else "THAWED")
    else:
        (leaf / "cgroup.freeze").write_text("1" if on else "0")


def _record(w: World, attempt: int) -> dict | None:
    try:
        return json.loads((w.root / "pods" / "r" / "containers" / "first" /
                           f"{attempt}.json").read_text())
    except (OSError, ValueError):
        return None


def _starts(w: World) -> list[str]:
    path = w.root / "pods" / "r" / "volumes" / "work" / "starts"
    return path.read_text().split() if path.exists() else []


def _recover_until_taken(w: World) -> None:
    """``recover`` until it takes the pod (the held monitor keeps the old supervisor's lock
    until its start record is written)."""
    def taken():
        proc = w.nsrun("recover", "r")
        assert proc.returncode == 0, proc.stderr
        return "recovered" in proc.stdout
    _wait(taken)


def test_a_monitor_held_before_its_start_record_is_not_started_again(net_world):
    w = net_world
    w.nsrun(*w.run_args("--backoff-initial", "3", "--backoff-max", "3", "-d",
                        w.manifest("r", POD)), check=True)
    _wait(lambda: (_record(w, 1) or {}).get("exitCode") == 1)  # then 3 s of back-off
    leaf = _monitor_leaf(w)
    _freeze(leaf, True)
    try:
        _wait(lambda: (_record(w, 2) or {}).get("pid") == 0, what=lambda: _dump(w))
        pause = int((w.root / "pods" / "r" / "sandbox.pid").read_text().split()[0])
        _wait(lambda: set(map(int, (leaf / "cgroup.procs").read_text().split())) - {pause})
        supervisor = int((w.root / "pods" / "r" / "supervisor.pid").read_text())
        os.kill(supervisor, signal.SIGKILL)  # right after it forked the monitor
        _wait(lambda: not os.path.exists(f"/proc/{supervisor}"))
        killed = time.monotonic()
        proc = w.nsrun("recover", "r")  # the held monitor still has the supervisor's lock
        assert proc.returncode == 0 and "recovered" not in proc.stdout, proc.stdout
        time.sleep(max(0.0, HELD - (time.monotonic() - killed)))
        assert _starts(w) == ["first", "first"]  # the failed attempts: nothing started again
        assert _record(w, 2)["pid"] == 0  # the "launching" record is kept
    finally:
        _freeze(leaf, False)
    _recover_until_taken(w)
    _wait(lambda: w.status("r")["status"]["phase"] == "Succeeded")
    assert _starts(w) == ["first"] * 3 + ["app"]  # the held one ran once, not twice
    first = w.status("r")["status"]["initContainerStatuses"][0]
    assert first["restartCount"] == 2 and first["state"]["terminated"]["exitCode"] == 0


HOLD = "import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); sys.stdin.read()"


@pytest.mark.parametrize("end", ["exits", "records-its-start"])
def test_a_launching_record_waits_for_an_unaccounted_monitor(tmp_path, end):
    """A "launching" record with a live process holding the container's record directory
    that no record names (a monitor still to write its start) is waited for past any fixed
    wait; its start record makes it an attempt to re-attach, its exit without one makes the
    record final (it goes)."""
    paths = PodPaths(tmp_path / "pod")
    record = paths.record("c", 0)
    record.parent.mkdir(parents=True)
    record.write_text('{"pid": 0, "monitorPid": 0}')
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(record.parent)],
                              stdin=subprocess.PIPE)
    try:
        _wait(lambda: holder.pid in holders(record.parent))
        got: list[bool] = []
        looking = threading.Thread(target=lambda: got.append(reattach._launched(paths, "c", 0)))
        looking.start()
        time.sleep(HELD)
        assert looking.is_alive() and record.exists()  # still waiting, the record kept
        if end == "records-its-start":
            ticks = holders(record.parent)[holder.pid]
            record.write_text(json.dumps({"pid": holder.pid, "monitorPid": holder.pid,
                                          "monitorStartTicks": ticks}))
        else:
            holder.stdin.close()
            holder.wait(10)
        looking.join(10)
        assert got == [end == "records-its-start"]
        assert record.exists() == (end == "records-its-start")
    finally:
        holder.kill()
        holder.wait()
