"""The container monitor (csrc/monitor.c, nsrun.host.monitor) with real processes: it reaps
the container and records its exit durably, copies its output to the log with rotation,
keeps going when the process that started it dies, and drops (and counts) log bytes on a
full disk without blocking the container."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nsrun.host import monitor
from nsrun.request import SpawnRequest

from nativekit import BASE_MOUNTS, needs_root


def _start(rootfs: Path, tmp: Path, script: str, **spec) -> monitor.Monitored:
    (tmp / "rec").mkdir(exist_ok=True)
    (tmp / "log").mkdir(exist_ok=True)
    r, w = os.pipe2(os.O_CLOEXEC)
    req = SpawnRequest(argv=["sh", "-c", script], env=["PATH=/bin"], rootfs=str(rootfs),
                       stdout_fd=w, stderr_fd=w, mounts=BASE_MOUNTS)
    try:
        return monitor.spawn(req, monitor.MonitorSpec(str(tmp / "rec"), "0.json",
                                                      str(tmp / "log"), "0.log", **spec), r)
    finally:
        os.close(r)
        os.close(w)


def _finish(m: monitor.Monitored, tmp: Path) -> monitor.Record:
    os.waitid(os.P_PIDFD, m.monitor_pidfd, os.WEXITED)
    os.close(m.monitor_pidfd)
    os.close(m.pidfd)
    rec = monitor.read_record(tmp / "rec" / "0.json")
    assert rec is not None
    return rec


@needs_root
def test_monitor_records_exit_code_and_copies_the_output(busybox_rootfs, tmp_path):
    m = _start(busybox_rootfs, tmp_path, "echo out; echo err >&2; exit 7")
    rec = _finish(m, tmp_path)
    assert (rec.pid, rec.exit_code, rec.signal) == (m.pid, 7, 0)
    assert rec.finished_at and abs(rec.finished_at - time.time()) < 30
    assert sorted((tmp_path / "log" / "0.log").read_text().split()) == ["err", "out"]
    assert not list((tmp_path / "rec").glob(".*tmp"))


@needs_root
def test_a_signal_death_is_128_plus_n(busybox_rootfs, tmp_path):
    m = _start(busybox_rootfs, tmp_path, "sleep 30")
    os.kill(m.pid, signal.SIGKILL)
    rec = _finish(m, tmp_path)
    assert (rec.exit_code, rec.signal) == (137, 9)


@needs_root
def test_log_rotates_within_the_attempt_keeping_max_files(busybox_rootfs, tmp_path):
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; " \
             "i=$((i+1)); done"
    rec = _finish(_start(busybox_rootfs, tmp_path, script, log_max_size=2048,
                         log_max_files=3), tmp_path)
    assert rec.exit_code == 0
    files = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert len(files) == 3 and "0.log" in files, files
    assert all(p.stat().st_size <= 2048 for p in (tmp_path / "log").iterdir())
    assert (tmp_path / "log" / "0.log").read_text().splitlines()[-1].startswith("line-399-")


@needs_root
def test_the_monitor_outlives_its_starter_and_records_the_exit(busybox_rootfs, tmp_path):
    """A child process starts a container under a monitor and is SIGKILLed: the container
    goes on writing its log, and its exit is recorded with its real code."""
    script = "read x < /proc/1/status; sleep 1; echo late; exit 3"
    code = (f"import os, sys; sys.path[:0] = {sys.path!r}\n"
            "from test_monitor import _start\nfrom pathlib import Path\n"
            f"m = _start(Path({str(busybox_rootfs)!r}), Path({str(tmp_path)!r}), {script!r})\n"
            "print(m.pid, flush=True)\nos.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=os.path.dirname(__file__), timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pid = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rec = monitor.read_record(tmp_path / "rec" / "0.json")
        if rec is not None and rec.exit_code is not None:
            break
        time.sleep(0.05)
    assert rec is not None and (rec.pid, rec.exit_code) == (pid, 3)
    assert (tmp_path / "log" / "0.log").read_text() == "late\n"


@needs_root
def test_same_process_checks_the_start_time(busybox_rootfs, tmp_path):
    m = _start(busybox_rootfs, tmp_path, "sleep 30")
    try:
        rec = monitor.read_record(tmp_path / "rec" / "0.json")
        assert rec is not None and rec.start_ticks > 0
        fd = monitor.same_process(rec.pid, rec.start_ticks)
        assert fd >= 0
        os.close(fd)
        assert monitor.same_process(rec.pid, rec.start_ticks - 100) == -1
        fd = monitor.same_process(rec.monitor_pid, rec.monitor_start_ticks)
        assert fd >= 0
        os.close(fd)
    finally:
        os.kill(m.pid, signal.SIGKILL)
        assert _finish(m, tmp_path).exit_code == 137
