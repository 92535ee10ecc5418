"""The cgroup v2 driver: the only opener of cgroup files.

Writes are dirfd-relative (like crun) and errors carry the file, the value and errno.
A pod gets ``<parent>/pod-<uid>/`` with one leaf per container; children are spawned
straight into their leaf (``CLONE_INTO_CGROUP`` with the leaf's dirfd), so a process is
never moved between cgroups. Teardown is ``cgroup.kill`` then rmdir with a bounded retry.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass
from pathlib import Path

from nsrun.errors import CgroupError

CGROUP_CONTROLLERS = "cgroup.controllers"
CGROUP_SUBTREE_CONTROL = "cgroup.subtree_control"
CGROUP_EVENTS = "cgroup.events"
CGROUP_KILL = "cgroup.kill"
CGROUP_PROCS = "cgroup.procs"
MEMORY_EVENTS = "memory.events"

# The controllers a pod cgroup wants, and the files each one owns.
WANTED = ("cpu", "memory", "pids", "io", "cpuset", "hugetlb")


def find_cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The first cgroup2 mount point (``/sys/fs/cgroup`` on a v2 host,
    ``/sys/fs/cgroup/unified`` on a hybrid one), or None."""
    try:
        with open(mountinfo) as f:
            for line in f:
                left, _, right = line.partition(" - ")
                if right.split(" ", 1)[0] == "cgroup2":
                    return left.split()[4]
    except OSError:
        return None
    return None


def read_file(path: Path) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as err:
        raise CgroupError("read", str(path), err.errno or 0) from None


def write_at(dirfd: int, dirpath: Path, name: str, value: str) -> None:
    """Write ``value`` to the cgroup file ``name`` relative to ``dirfd``."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise CgroupError("write", str(dirpath / name), err.errno or 0,
                          f"value {value!r}") from None


def controllers(path: Path) -> set[str]:
    """Controllers available in the cgroup at ``path``."""
    return set(read_file(path / CGROUP_CONTROLLERS).split())


@dataclass
class Cgroup:
    """One cgroup directory, held open by a dirfd."""

    path: Path
    fd: int

    @classmethod
    def create(cls, path: Path) -> Cgroup:
        try:
            path.mkdir(exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as err:
            raise CgroupError("create cgroup", str(path), err.errno or 0) from None
        return cls(path, fd)

    def write(self, name: str, value: str) -> None:
        write_at(self.fd, self.path, name, value)

    def read(self, name: str) -> str:
        return read_file(self.path / name)

    def populated(self) -> bool:
        for line in self.read(CGROUP_EVENTS).splitlines():
            key, _, value = line.partition(" ")
            if key == "populated":
                return value.strip() == "1"
        return False

    def oom_kills(self) -> int:
        """``oom_kill`` from ``memory.events``; 0 where the memory controller is absent."""
        try:
            text = self.read(MEMORY_EVENTS)
        except CgroupError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def kill(self) -> None:
        """SIGKILL every process in this cgroup and below (``cgroup.kill``, Linux ≥ 5.14)."""
        try:
            self.write(CGROUP_KILL, "1")
        except CgroupError as err:
            if err.errno != errno.ENOENT:
                raise
            self._kill_procs()

    def _kill_procs(self) -> None:
        """Fallback for kernels without cgroup.kill: signal each listed pid."""
        for pid in self.read(CGROUP_PROCS).split():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def remove(path: Path, timeout: float = 2.0) -> None:
    """rmdir a cgroup (leaves first), retrying while it still drains (EBUSY)."""
    if not path.is_dir():
        return
    for child in sorted((p for p in path.iterdir() if p.is_dir()), reverse=True):
        remove(child, timeout)
    deadline = time.monotonic() + timeout
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                raise CgroupError("remove cgroup", str(path), err.errno or 0) from None
            time.sleep(0.005)


def enable_controllers(root: Path, target: Path, wanted: tuple[str, ...] = WANTED) -> set[str]:
    """Enable ``wanted`` controllers (those available) in ``subtree_control`` from ``root``
    down to ``target``'s parent, so ``target`` gets them. Returns what ``target`` has."""
    rel = target.relative_to(root).parts
    current = root
    for part in rel:
        available = controllers(current) & set(wanted)
        enabled = set(read_file(current / CGROUP_SUBTREE_CONTROL).split())
        missing = sorted(available - enabled)
        if missing:
            fd = os.open(current, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                write_at(fd, current, CGROUP_SUBTREE_CONTROL, " ".join(f"+{c}" for c in missing))
            finally:
                os.close(fd)
        current = current / part
        current.mkdir(exist_ok=True)
    return controllers(target)
