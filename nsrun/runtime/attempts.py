"""One container attempt's files and its end: where its monitor writes the record and the
log (``PodPaths.record`` and ``PodPaths.log``), and the exit status collected from the record
once the monitor has exited.

The monitor (``nsrun.host.monitor``) reaps the container and writes the record before it
exits, so the supervisor watches the monitor's pidfd, whether it started the monitor or
re-attached to it after a crash. A container whose monitor died before it (killed by hand)
ends with the kubelet's ``ContainerStatusUnknown``: its exit code is lost.
"""

from __future__ import annotations

import os
import select

import msgspec

from nsrun.core.recovery import UNKNOWN_EXIT, UNKNOWN_MESSAGE, UNKNOWN_REASON
from nsrun.host.monitor import MonitorSpec, Record, read_record
from nsrun.state import PodPaths, write_atomic

LAUNCHING = b'{"pid":0,"monitorPid":0}\n'
MONITOR_EXIT_WAIT = 5.0  # seconds a monitor may take to write its record once its child died


class Exit(msgspec.Struct, frozen=True):
    """How an attempt ended."""

    code: int
    signal: int | None
    finished_at: float
    reason: str = ""
    message: str = ""
    log_dropped: int = 0


def monitor_spec(paths: PodPaths, name: str, attempt: int, log_max_size: int,
                 log_max_files: int, group=None) -> MonitorSpec:
    """The monitor's directions for attempt ``attempt`` of container ``name``: its
    directories made, and a "launching" record (pid 0) that the monitor replaces once the
    container runs, so that a supervisor killed in between leaves a trace ``recover`` waits
    on rather than starting the attempt a second time. That is all it guards against, so it
    is atomic, not durable (as the monitor's start record): after a reboot a lost or torn
    one reads as an attempt that never started, and ``observed.json`` (durable, saved once
    the container runs) is what says it did. ``group``: the
    pod's cgroup leaf the monitor moves into (``cgroupdriver.Group``), so it outlives a
    supervisor's unit."""
    record, log = paths.record(name, attempt), paths.log(name, attempt)
    for directory in (record.parent, log.parent):
        directory.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(record, LAUNCHING, durable=False)
    except OSError:
        pass  # a full disk: the container starts all the same
    return MonitorSpec(str(record.parent), record.name, str(log.parent), log.name,
                       log_max_size=log_max_size, log_max_files=max(1, log_max_files),
                       cgroup_fd=getattr(group, "clone_fd", -1),
                       join_fds=tuple(getattr(group, "join_fds", ())))


def launch_failed(paths: PodPaths, name: str, attempt: int, text: str) -> None:
    """A start that failed: the "launching" record goes, a line of nsrun's own goes to the
    attempt's log (dropped on a full disk)."""
    path = paths.log(name, attempt)
    try:
        os.unlink(paths.record(name, attempt))
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.write(text.encode())
    except OSError:
        pass


def collect(paths: PodPaths, name: str, attempt: int, pidfd: int, monitor_pidfd: int,
            now: float) -> Exit:
    """The attempt's end, once its monitor's pidfd polled readable (or the container was
    killed at teardown): the monitor is reaped when it is our child, both pidfds are closed,
    and the record read."""
    wait_readable(monitor_pidfd, MONITOR_EXIT_WAIT)
    try:
        os.waitid(os.P_PIDFD, monitor_pidfd, os.WEXITED)
    except ChildProcessError:
        pass  # re-attached: the monitor is not our child (init reaps it)
    os.close(monitor_pidfd)
    if pidfd >= 0:  # -1: re-attached after the container had ended
        os.close(pidfd)
    return exit_of(read_record(paths.record(name, attempt)), now)


def exit_of(record: Record | None, now: float) -> Exit:
    """The exit a record tells, or the kubelet's ``ContainerStatusUnknown`` without one."""
    if record is None or record.exit_code is None:
        return Exit(UNKNOWN_EXIT, None, now, UNKNOWN_REASON, UNKNOWN_MESSAGE)
    return Exit(record.exit_code, record.signal or None, record.finished_at or now,
                log_dropped=record.log_dropped)


def wait_readable(fd: int, timeout: float) -> None:
    """Until ``fd`` (a pidfd) polls readable, at most ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll(int(timeout * 1000))
