"""The monitor execs ``nsrun-monitor`` once its container runs (csrc/monitor.c), with real
processes: a running pod's monitor is that small executable (not a copy of the Python
supervisor), holds no fd of the supervisor's, keeps today's signals and outlives a killed
supervisor; without the executable, or when its execve fails, the monitor goes on
in-process, does the same work, and says so once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_monitor import _finish, _start

from nsrun.host import monitor

from nativekit import needs_root

# SIGHUP, SIGINT, SIGUSR1, SIGPIPE: what the monitor ignores (its other signals: default)
IGNORED = {signal.SIGHUP, signal.SIGINT, signal.SIGUSR1, signal.SIGPIPE}
RSS_LIMIT_KIB = 1536  # measured ~700 kB (static); the in-process monitor holds 10-13 MiB

POD = """apiVersion: v1
kind: Pod
metadata: {{name: m}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'while [ ! -e /ctl/exit ]; do echo tick; sleep 0.1; done; exit 3']
    volumeMounts: [{{name: ctl, mountPath: /ctl}}]
  volumes:
  - {{name: ctl, hostPath: {{path: {ctl}}}}}
"""


def _status(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        return next(line.split(":", 1)[1].strip() for line in f if line.startswith(field + ":"))


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Rss:"))


def _fds(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def _alive(pid: int) -> bool:
    try:
        return _status(pid, "State")[0] != "Z"  # a zombie: dead, its reaper not done yet
    except OSError:
        return False


def _record(path: Path, done: bool = False, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = json.loads(path.read_text())
            if rec["pid"] and (not done or "exitCode" in rec):
                return rec
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path}: no {'exit' if done else 'start'} record")


@needs_root
def test_a_running_pods_monitor_is_the_small_executable(net_world):
    w = net_world
    (w.tmp / "ctl").mkdir()
    w.nsrun(*w.run_args("-d", w.manifest("m", POD.format(ctl=w.tmp / "ctl"))), check=True)
    w.wait_column("m", "Running")
    pod = w.root / "pods" / "m"
    rec = _record(pod / "containers" / "app" / "0.json")
    mpid, supervisor = rec["monitorPid"], int((pod / "supervisor.pid").read_text())
    assert os.path.realpath(f"/proc/{mpid}/exe") == os.path.realpath(monitor.MONITOR_EXE)
    assert Path(f"/proc/{mpid}/comm").read_text() == "nsrun-monitor\n"
    assert _rss_kib(mpid) <= RSS_LIMIT_KIB
    assert int(_status(mpid, "PPid")) == supervisor
    assert int(_status(rec["pid"], "PPid")) == mpid  # the container stayed its child
    # nothing of the supervisor's: stdio is /dev/null, the rest is the monitor's own
    fds, logs = _fds(mpid), Path(os.path.realpath(pod / "logs")) / "app"
    assert [fds[0], fds[1], fds[2]] == ["/dev/null"] * 3
    pipes = [t for t in fds.values() if t.startswith("pipe:")]
    assert len(pipes) == 1  # the container's stdout/stderr
    assert sorted(fds[fd] for fd in fds if fd > 2) == sorted([
        str(pod / "containers" / "app"), str(logs), str(logs / "0.log"),
        "anon_inode:[pidfd]", pipes[0]])
    ignored = int(_status(mpid, "SigIgn"), 16)
    assert {s for s in signal.Signals if ignored >> (s - 1) & 1} == IGNORED
    assert int(_status(mpid, "SigBlk"), 16) == 0
    # it outlives a killed supervisor: the log goes on, the exit is recorded
    os.kill(supervisor, signal.SIGKILL)
    log = logs / "0.log"
    size = log.stat().st_size
    time.sleep(0.5)
    assert log.stat().st_size > size and os.path.exists(f"/proc/{mpid}")
    (w.tmp / "ctl" / "exit").touch()
    assert _record(pod / "containers" / "app" / "0.json", done=True)["exitCode"] == 3


def _not_executable(tmp: Path) -> str:
    path = tmp / "nsrun-monitor"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o644)
    return str(path)


def _not_an_elf(tmp: Path) -> str:
    path = tmp / "nsrun-monitor"
    path.write_bytes(b"\x00\x01 not a program\n")
    path.chmod(0o755)
    return str(path)


@needs_root
@pytest.mark.parametrize("exe,why", [(_not_executable, "not an executable file"),
                                     (_not_an_elf, os.strerror(8))])  # ENOEXEC: the execve
def test_without_the_executable_the_monitor_works_in_process(busybox_rootfs, tmp_path, capsys,
                                                             exe, why):
    path = exe(tmp_path)
    for attempt in range(2):
        m = _start(busybox_rootfs, tmp_path, f"echo out-{attempt}; sleep 30", exe=path)
        rec = monitor.read_record(tmp_path / "rec" / "0.json")
        assert rec is not None and rec.pid == m.pid
        assert os.path.realpath(f"/proc/{rec.monitor_pid}/exe") == \
            os.path.realpath(sys.executable)
        os.kill(m.pid, signal.SIGKILL)
        rec = _finish(m, tmp_path)
        assert (rec.exit_code, rec.signal) == (137, 9)
    assert (tmp_path / "log" / "0.log").read_text() == "out-0\nout-1\n"
    said = [line for line in capsys.readouterr().err.splitlines() if "in-process" in line]
    assert said == [f"nsrun: container monitors run in-process, holding a copy of the "
                    f"supervisor's memory (nsrun-monitor: {path}: {why})"]


@needs_root
def test_a_monitor_that_dies_with_its_starter_still_does_after_the_exec(busybox_rootfs,
                                                                          tmp_path):
    """die_with_parent (no pod cgroup): the parent-death signal set before the execve
    survives it, so the exec'd monitor dies with the process that started it."""
    code = (f"import os, sys; sys.path[:0] = {sys.path!r}\n"
            "from test_monitor import _start\nfrom pathlib import Path\n"
            f"m = _start(Path({str(busybox_rootfs)!r}), Path({str(tmp_path)!r}), 'sleep 30',"
            " die_with_parent=True)\n"
            "print(m.pid, flush=True)\nos.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(__file__), timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    container = int(proc.stdout.split()[0])
    rec = monitor.read_record(tmp_path / "rec" / "0.json")
    try:
        assert rec is not None
        deadline = time.monotonic() + 10
        while _alive(rec.monitor_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(rec.monitor_pid)
    finally:
        os.kill(container, signal.SIGKILL)


def test_the_executable_run_by_hand_says_what_it_is():
    proc = subprocess.run([monitor.MONITOR_EXE, "1", "2"], capture_output=True, text=True,
                          timeout=10)
    assert proc.returncode == 2
    assert proc.stderr == "nsrun-monitor: started by nsrun only (a container's monitor)\n"
