"""Start a container under its monitor (``csrc/monitor.c``), and read the monitor's record.

The monitor is a process forked by the C extension that clones the container as its own
child, then execs the small ``nsrun-monitor`` executable built next to the extension
(``MONITOR_EXE``), so that it holds no copy of the Python supervisor's memory. It copies the
container's stdout/stderr from a pipe to the attempt's log file, rotating it at
``log_max_size`` bytes and keeping ``log_max_files`` files, then reaps the container and
writes the attempt's record (``containers/<name>/<attempt>.json``) atomically and durably
before it exits. Without the executable (or when its execve fails) the forked monitor does
the same in-process, and the supervisor's log says so once (the first spawn with an
executable waits for its execve to know; later ones do not wait). The supervisor watches the
monitor's pidfd: the monitor's exit means the record is complete. A supervisor that dies
costs nothing: the monitor goes on.
"""

from __future__ import annotations

import functools
import os
import sys

import msgspec

MONITOR_EXE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "nsrun-monitor")
# Executables a monitor of this process has exec'd: later monitors do not make the spawn
# wait for their execve (a failure there still leaves them working, in-process).
EXEC_WORKED: set[str] = set()


class MonitorSpec(msgspec.Struct, frozen=True):
    """Where one attempt's record and log go (directories made by the caller)."""

    record_dir: str
    record_name: str
    log_dir: str
    log_name: str
    log_max_size: int = 10 * 1024 * 1024
    log_max_files: int = 5
    die_with_parent: bool = False
    cgroup_fd: int = -1  # the cgroup the monitor moves into (the pod's "_monitor" leaf)
    join_fds: tuple[int, ...] = ()  # cgroup v1: every hierarchy's leaf
    exe: str = MONITOR_EXE  # the executable the monitor execs ("": stay in-process)


class Monitored(msgspec.Struct, frozen=True):
    pid: int
    pidfd: int
    monitor_pidfd: int


class Record(msgspec.Struct, frozen=True, rename="camel"):
    """An attempt's record as the monitor wrote it (the exit fields once it was reaped)."""

    pid: int  # 0: "launching", written by the supervisor before the monitor starts
    monitor_pid: int
    start_ticks: int = 0
    monitor_start_ticks: int = 0
    started_at: float | None = None
    exit_code: int | None = None
    signal: int = 0
    finished_at: float | None = None
    log_dropped: int = 0


def spawn(req, spec: MonitorSpec, log_in_fd: int) -> Monitored:
    """Start the container of ``req`` (its stdout/stderr: a pipe whose read end is
    ``log_in_fd``) under a new monitor. ``SpawnError`` as ``host.spawn.spawn``."""
    from nsrun.host.childreport import spawn_error
    from nsrun.host.spawn import spawn_call  # at the first start, not on the start path

    exe = _usable(spec.exe)
    dirfds = [os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
              for d in (spec.record_dir, spec.log_dir)]
    try:
        def call(mod, creq):
            m = mod.ffi.new("struct nsr_monitor_req *")
            names = [mod.ffi.new("char[]", n.encode()) for n in (spec.record_name, spec.log_name)]
            m.record_dirfd, m.log_dirfd = dirfds
            m.record_name, m.log_name = names
            m.log_in_fd, m.log_max_size = log_in_fd, spec.log_max_size
            m.log_max_files, m.die_with_parent = spec.log_max_files, int(spec.die_with_parent)
            joins = mod.ffi.new("int[]", list(spec.join_fds) or [0])
            m.cgroup_fd, m.join_fds, m.njoin = spec.cgroup_fd, joins, len(spec.join_fds)
            path = mod.ffi.new("char[]", os.fsencode(exe)) if exe else mod.ffi.NULL
            m.exe = path
            pidfd, mpidfd, err = (mod.ffi.new("int *") for _ in range(3))
            rep = mod.ffi.new("struct nsr_report *")
            wait = err if exe and exe not in EXEC_WORKED else mod.ffi.NULL
            pid = mod.lib.nsr_spawn_monitored(creq, m, pidfd, mpidfd, wait, rep)
            return pid, pidfd[0], mpidfd[0], err[0] if wait else 0, rep

        pid, pidfd, mpidfd, exec_err, rep = spawn_call(req, None, call)
    finally:
        for fd in dirfds:
            os.close(fd)
    if pid < 0:
        raise spawn_error(req, rep.step, rep.err, rep.index)
    if exec_err > 0:
        _in_process(f"{exe}: {os.strerror(exec_err)}")
    elif exe:
        EXEC_WORKED.add(exe)
    return Monitored(pid, pidfd, mpidfd)


def _usable(exe: str) -> str:
    """``exe`` when it is an executable file; else "" (and the log says why, once)."""
    if not exe:
        return ""
    if os.path.isfile(exe) and os.access(exe, os.X_OK):
        return os.path.normpath(exe)
    _in_process(f"{os.path.normpath(exe)}: not an executable file")
    return ""


@functools.cache
def _in_process(why: str) -> None:
    """Say once per supervisor (and reason) that monitors run in-process."""
    print(f"nsrun: container monitors run in-process, holding a copy of the supervisor's "
          f"memory (nsrun-monitor: {why})", file=sys.stderr, flush=True)


def read_record(path: str | os.PathLike) -> Record | None:
    """The record at ``path``; None when there is none (or it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return msgspec.json.decode(f.read(), type=Record)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def same_process(pid: int, start_ticks: int) -> int:
    """A pidfd of ``pid`` when it is still the process that started at ``start_ticks``
    (clock ticks after boot, as the monitor recorded), else -1. The pidfd is opened first,
    so the process checked is the one it refers to (psutil's create_time is boot time +
    start ticks / CLK_TCK)."""
    import psutil

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return -1
    try:
        created = psutil.Process(pid).create_time()
        expected = psutil.boot_time() + start_ticks / os.sysconf("SC_CLK_TCK")
        if abs(created - expected) < 0.005 and psutil.Process(pid).status() != "zombie":
            return pidfd
    except psutil.Error:
        pass
    os.close(pidfd)
    return -1


def start_ticks(pid: int) -> int:
    """A live process's start time in clock ticks after boot (``/proc/<pid>/stat`` field
    22, as the monitor records it); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def latest_record(records_dir: str | os.PathLike) -> Record | None:
    """The record of a container's latest attempt (``containers/<name>/``), if any."""
    try:
        numbers = [int(n[:-5]) for n in os.listdir(records_dir)
                   if n.endswith(".json") and n[:-5].isdigit()]
    except OSError:
        return None
    if not numbers:
        return None
    return read_record(os.path.join(records_dir, f"{max(numbers)}.json"))
