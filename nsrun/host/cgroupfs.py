"""The cgroup v2 gatekeeper: the only opener of cgroup2 files.

Writes are dirfd-relative (like crun): every cgroup directory is held open by a dirfd and its
files are opened relative to it, so a cgroup renamed or replaced under nsrun is never written
by path. Every failure is a ``CgroupError`` carrying the file, the value written and errno::

    write /sys/fs/cgroup/nsrun/burstable/pod-…/web/cpu.max: Invalid argument (value '500 100000')

What this module knows is the kernel's cgroup v2 interface (file names, controller files,
``subtree_control`` and the no-internal-processes rule, ``cgroup.kill``, ``cgroup.freeze``,
rmdir while a cgroup drains, the BPF device program); the pod layout lives in ``podcgroup``,
the host survey and modes in ``preflight``.

Every system call goes through a ``Kernel`` given to ``CgroupFs`` (the real one by default);
the unit tests pass a fake that emulates the kernel's rules in a temp dir.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsrun.errors import CgroupError

CGROUP_CONTROLLERS = "cgroup.controllers"
CGROUP_SUBTREE_CONTROL = "cgroup.subtree_control"
CGROUP_EVENTS = "cgroup.events"
CGROUP_FREEZE = "cgroup.freeze"
CGROUP_KILL = "cgroup.kill"
CGROUP_PROCS = "cgroup.procs"
CPU_WEIGHT = "cpu.weight"
CPU_MAX = "cpu.max"
MEMORY_MAX = "memory.max"
MEMORY_CURRENT = "memory.current"
MEMORY_EVENTS = "memory.events"
MEMORY_OOM_GROUP = "memory.oom.group"
PIDS_MAX = "pids.max"

# The controllers a pod cgroup wants (the kubelet's v2 set plus io), in enabling order.
WANTED = ("cpu", "memory", "pids", "io", "cpuset", "hugetlb")

# Bounded retry of rmdir while a killed cgroup drains (EBUSY), and of waiting for a freeze.
REMOVE_TIMEOUT = 5.0
FREEZE_TIMEOUT = 5.0


def controller_of(name: str) -> str:
    """The controller that owns a cgroup file: ``memory.max`` -> ``memory``."""
    return name.split(".", 1)[0]


def find_cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> str | None:
    """The first cgroup2 mount point (``/sys/fs/cgroup`` on a v2 host,
    ``/sys/fs/cgroup/unified`` on a hybrid one), or None."""
    from nsrun.host import mountinfo as mi

    return next((m.point for m in mi.read(mountinfo) if m.fstype == "cgroup2"), None)


def keyed(text: str) -> dict[str, int]:
    """A flat-keyed file (``memory.events``, ``cgroup.events``, ``cpu.stat``)."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out


class DirKernel:
    """The directory system calls on a cgroup filesystem (v2 and v1 alike)."""

    def mkdir(self, path: Path) -> bool:
        """Create a cgroup; False when it already existed."""
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            return False
        return True

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)

    def open_dir(self, path: Path) -> int:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


class Kernel(DirKernel):
    """The system calls the driver makes on cgroupfs (real ones)."""

    def write_at(self, dirfd: int, name: str, data: bytes) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_CLOEXEC, dir_fd=dirfd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    def read(self, path: Path) -> str:
        with open(path) as f:
            return f.read()

    def xattrs(self, path: Path) -> list[str]:
        """Extended attribute names (systemd marks delegated cgroups); [] when unreadable."""
        try:
            return os.listxattr(path)
        except OSError:
            return []

    def attach_device_filter(self, dirfd: int, policy: Any, replace_fd: int) -> int:
        """Load ``policy`` as a BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to the
        cgroup ``dirfd`` (replacing the program ``replace_fd`` when >= 0); its fd."""
        from nsrun.host import devicebpf

        return devicebpf.attach_device_filter(dirfd, policy, replace_fd)


class DirFs:
    """What both gatekeepers do with cgroup directories, through ``self.kernel``; the
    subclass reads ``procs``."""

    kernel: DirKernel

    def procs(self, path: Path) -> list[int]:
        raise NotImplementedError

    def mkdir(self, path: Path, label: str = "") -> bool:
        """Create a cgroup; False when it already existed."""
        try:
            return self.kernel.mkdir(path)
        except OSError as err:
            raise CgroupError(_what(label, "create cgroup"), str(path), err.errno or 0) from None

    def open_dir(self, path: Path, label: str = "") -> int:
        try:
            return self.kernel.open_dir(path)
        except OSError as err:
            raise CgroupError(_what(label, "open cgroup"), str(path), err.errno or 0) from None

    def rmdir_quiet(self, path: Path) -> bool:
        try:
            self.kernel.rmdir(path)
        except OSError:
            return False
        return True

    def remove(self, path: Path, timeout: float = REMOVE_TIMEOUT) -> None:
        """rmdir a cgroup tree (see ``remove_tree``)."""
        remove_tree(path, self.kernel.rmdir, self.procs, timeout)


class CgroupFs(DirFs):
    """The cgroup v2 files, through ``kernel``."""

    def __init__(self, kernel: Kernel | None = None) -> None:
        self.kernel: Kernel = kernel if kernel is not None else Kernel()

    def read_file(self, path: Path) -> str:
        try:
            return self.kernel.read(path)
        except OSError as err:
            raise CgroupError("read", str(path), err.errno or 0) from None

    def write_at(self, dirfd: int, dirpath: Path, name: str, value: str,
                 what: str = "write") -> None:
        """Write ``value`` to the cgroup file ``name`` relative to ``dirfd``."""
        try:
            self.kernel.write_at(dirfd, name, value.encode())
        except OSError as err:
            raise CgroupError(what, str(dirpath / name), err.errno or 0,
                              f"value {value!r}") from None

    def controllers(self, path: Path) -> set[str]:
        """Controllers available in the cgroup at ``path`` (what its parent enabled)."""
        return set(self.read_file(path / CGROUP_CONTROLLERS).split())

    def subtree_control(self, path: Path) -> set[str]:
        """Controllers enabled for the children of ``path``."""
        return set(self.read_file(path / CGROUP_SUBTREE_CONTROL).split())

    def procs(self, path: Path) -> list[int]:
        """The processes in the cgroup at ``path`` (not below it)."""
        return [int(p) for p in self.read_file(path / CGROUP_PROCS).split()]

    def open(self, path: Path, label: str = "") -> Cgroup:
        return Cgroup(self, path, self.open_dir(path, label), label)

    def create(self, path: Path, label: str = "") -> Cgroup:
        """mkdir (an existing cgroup is reused) and open it."""
        self.mkdir(path, label)
        return self.open(path, label)

    def enable(self, cg: Cgroup, wanted: set[str]) -> set[str]:
        """Enable ``wanted`` (those ``cg`` has) in ``cg``'s ``subtree_control``; returns what
        its children get. One write for all; if the kernel refuses it (other than EBUSY), one
        write per controller so a single odd controller does not cost the others. EBUSY is the
        no-internal-processes rule: ``cg`` holds processes, which the caller must explain."""
        have = self.controllers(cg.path)
        enabled = self.subtree_control(cg.path)
        missing = [c for c in WANTED if c in wanted and c in have and c not in enabled]
        missing += sorted((wanted & have) - enabled - set(WANTED))
        if not missing:
            return enabled & wanted
        try:
            cg.write(CGROUP_SUBTREE_CONTROL, " ".join(f"+{c}" for c in missing))
        except CgroupError as err:
            if err.errno == errno.EBUSY or len(missing) == 1:
                raise
            for c in missing:
                try:
                    cg.write(CGROUP_SUBTREE_CONTROL, f"+{c}")
                except CgroupError as one:
                    if one.errno == errno.EBUSY:
                        raise
        return self.subtree_control(cg.path) & wanted

    def move(self, pid: int, target: Cgroup) -> bool:
        """Move process ``pid`` into ``target``; False when it has already exited."""
        try:
            target.write(CGROUP_PROCS, str(pid))
        except CgroupError as err:
            if err.errno == errno.ESRCH:
                return False
            raise
        return True

    def delegated(self, path: Path, names: tuple[str, ...]) -> bool:
        """Whether ``path`` carries one of the extended attributes ``names``."""
        have = self.kernel.xattrs(path)
        return any(x in have for x in names)


class Cgroup:
    """One cgroup directory, held open by a dirfd. ``label`` names what it is for in errors
    (``container "web"``). It is a ``cgroupdriver.Group``: ``clone_fd`` is the dirfd
    (``CLONE_INTO_CGROUP``), there is nothing to join by pid."""

    join_fds: tuple[int, ...] = ()

    def __init__(self, fs: CgroupFs, path: Path, fd: int, label: str = "") -> None:
        self.fs, self.path, self.fd, self.label = fs, path, fd, label
        self.device_prog = -1  # the fd of the BPF device program attached here

    @property
    def clone_fd(self) -> int:
        return self.fd

    def write(self, name: str, value: str) -> None:
        if self.fd < 0:
            raise CgroupError(_what(self.label, "write"), str(self.path / name), errno.EBADF,
                              f"value {value!r}")
        self.fs.write_at(self.fd, self.path, name, value, _what(self.label, "write"))

    def read(self, name: str) -> str:
        return self.fs.read_file(self.path / name)

    def write_values(self, values: dict[str, str], available: set[str]) -> list[str]:
        """Write each ``file -> value`` whose controller is ``available``; returns the files
        skipped. A ``memory.max`` below the cgroup's current usage is refused here (the
        kernel would accept it, reclaim, then OOM-kill)."""
        skipped = []
        for name, value in values.items():
            if controller_of(name) not in available:
                skipped.append(name)
                continue
            if name == MEMORY_MAX:
                self._check_memory_max(value)
            self.write(name, value)
        return skipped

    def update(self, values: dict[str, str]) -> None:
        """Write ``values`` (``nsrun``'s update of a running cgroup); every controller
        they name must be enabled here."""
        self.write_values(values, {controller_of(n) for n in values})

    def _check_memory_max(self, value: str) -> None:
        if not value.isdigit():
            return
        try:
            current = int(self.read(MEMORY_CURRENT))
        except (CgroupError, ValueError):
            return
        if int(value) < current:
            raise CgroupError(_what(self.label, "write"), str(self.path / MEMORY_MAX),
                              errno.EBUSY, f"value {value!r} is below the cgroup's current "
                                           f"usage {current}")

    def populated(self) -> bool:
        return keyed(self.read(CGROUP_EVENTS)).get("populated", 0) == 1

    def oom_kills(self) -> int:
        """``oom_kill`` from ``memory.events`` (processes of this cgroup killed by any OOM
        killer, including one triggered by an ancestor's limit); 0 without the memory
        controller."""
        try:
            return keyed(self.read(MEMORY_EVENTS)).get("oom_kill", 0)
        except CgroupError:
            return 0

    def pids(self) -> list[int]:
        """Every process in this cgroup and below."""
        out = []
        for path in [self.path, *descendants(self.path)]:
            try:
                out += self.fs.procs(path)
            except CgroupError:
                pass
        return out

    def adopt(self, pid: int) -> bool:
        """Move a process nsrun started (and that has not forked) in here."""
        return self.fs.move(pid, self)

    def freeze(self) -> None:
        """``cgroup.freeze``, then wait until the kernel says ``frozen 1``."""
        self.write(CGROUP_FREEZE, "1")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while keyed(self.read(CGROUP_EVENTS)).get("frozen", 0) != 1:
            if time.monotonic() > deadline:
                raise CgroupError(_what(self.label, "freeze"), str(self.path / CGROUP_EVENTS),
                                  errno.ETIMEDOUT, "still not frozen")
            time.sleep(0.001)

    def thaw(self) -> None:
        self.write(CGROUP_FREEZE, "0")

    def frozen(self) -> bool:
        return keyed(self.read(CGROUP_EVENTS)).get("frozen", 0) == 1

    def set_devices(self, policy: Any) -> None:
        """The container's device allow-list as a BPF program on this cgroup (replacing the
        one set before)."""
        if self.fd < 0:
            raise CgroupError(_what(self.label, "attach device program"), str(self.path),
                              errno.EBADF)
        try:
            prog = self.fs.kernel.attach_device_filter(self.fd, policy, self.device_prog)
        except OSError as err:
            raise CgroupError(_what(self.label, "attach device program to"), str(self.path),
                              err.errno or 0, "BPF_PROG_TYPE_CGROUP_DEVICE") from None
        if self.device_prog >= 0:
            os.close(self.device_prog)
        self.device_prog = prog

    def kill(self) -> None:
        """SIGKILL every process in this cgroup and below (``cgroup.kill``, Linux ≥ 5.14)."""
        if self.fd < 0:
            return
        try:
            self.write(CGROUP_KILL, "1")
        except CgroupError as err:
            if err.errno != errno.ENOENT:
                raise
            self._kill_procs(self.path)

    def _kill_procs(self, path: Path) -> None:
        """Fallback for kernels without cgroup.kill: signal each listed pid, leaves first."""
        for child in children(path):
            self._kill_procs(child)
        try:
            pids = self.fs.procs(path)
        except CgroupError:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.device_prog >= 0:
            os.close(self.device_prog)
            self.device_prog = -1


def remove_tree(path: Path, rmdir: Callable[[Path], None],
                procs: Callable[[Path], list[int]], timeout: float = REMOVE_TIMEOUT) -> None:
    """rmdir a cgroup tree (leaves first), retrying while it still drains (EBUSY) until
    ``timeout``; the error names the cgroup that stayed busy and what is still in it."""
    if not path.is_dir():
        return
    for child in children(path):
        remove_tree(child, rmdir, procs, timeout)
    deadline, delay = time.monotonic() + timeout, 0.001
    while True:
        try:
            rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY or time.monotonic() > deadline:
                detail = _busy_detail(path, procs) if err.errno == errno.EBUSY else ""
                raise CgroupError("remove cgroup", str(path), err.errno or 0, detail) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _busy_detail(path: Path, procs: Callable[[Path], list[int]]) -> str:
    try:
        left = procs(path)
    except CgroupError:
        return ""
    return f"still has processes {' '.join(map(str, left[:8]))}" if left else ""


def _what(label: str, what: str) -> str:
    return f"{label}: {what}" if label else what


def children(path: Path) -> list[Path]:
    """The child cgroups of ``path``, in reverse name order; [] when unreadable. A
    directory's type comes with its entry (``scandir``): a v1 cgroup holds dozens of control
    files, and a ``stat`` of each made teardown walks cost milliseconds."""
    try:
        with os.scandir(path) as entries:
            names = [e.name for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return [path / name for name in sorted(names, reverse=True)]


def descendants(path: Path) -> list[Path]:
    out = []
    for child in children(path):
        out += [child, *descendants(child)]
    return out
