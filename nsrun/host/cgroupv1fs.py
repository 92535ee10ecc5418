"""The cgroup v1 gatekeeper: the only opener of cgroup v1 files.

File access goes through cgroupspy, the maintained library for cgroup v1 trees: its
controller classes give the typed files (``memory.limit_in_bytes``, ``cpu.shares``,
``cpu.cfs_quota_us``, ``memory.oom_control``, ``devices.allow`` …) of one cgroup directory.
Only ``cgroupspy.controllers`` is imported (its tree module imports ``logging``, ~13 ms),
and only on the v1 path. Every failure is a ``CgroupError`` carrying the file, the value
written and errno, as cgroup v2's do::

    container "web": write /sys/fs/cgroup/cpu/nsrun/…/web/cpu.cfs_quota_us: Invalid argument (value '500')

What this module knows is the kernel's v1 interface: a directory per cgroup in each
hierarchy, ``cgroup.procs``, ``freezer.state`` (``FREEZING`` until ``FROZEN``),
``memory.oom_control``'s ``oom_kill`` count, the devices controller's ``devices.allow``/
``devices.deny``, rmdir while a cgroup drains. The pod layout lives in ``podcgroupv1``.

Every system call goes through a ``V1Kernel`` given to ``V1Fs`` (the real one by default);
the unit tests pass a fake that emulates the kernel's rules on a tree in a temp dir.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path
from typing import Any

from nsrun.errors import CgroupError
from nsrun.host.cgroupfs import DirFs, DirKernel, controller_of

CGROUP_PROCS = "cgroup.procs"
FREEZER_STATE = "freezer.state"
MEMORY_OOM_CONTROL = "memory.oom_control"
MEMORY_LIMIT = "memory.limit_in_bytes"
MEMORY_MEMSW_LIMIT = "memory.memsw.limit_in_bytes"
MEMORY_USAGE = "memory.usage_in_bytes"
DEVICES_ALLOW = "devices.allow"
DEVICES_DENY = "devices.deny"
DEVICES_LIST = "devices.list"
FROZEN, THAWED = "FROZEN", "THAWED"

FREEZE_TIMEOUT = 5.0

# cgroup file -> the cgroupspy controller attribute that types it, for writes and reads
_TYPED_WRITE = {
    MEMORY_LIMIT: "limit_in_bytes", MEMORY_MEMSW_LIMIT: "memsw_limit_in_bytes",
    "cpu.shares": "shares", "cpu.cfs_quota_us": "cfs_quota_us",
    "cpu.cfs_period_us": "cfs_period_us", DEVICES_ALLOW: "allow", DEVICES_DENY: "deny",
}
_TYPED_READ = {
    **{k: v for k, v in _TYPED_WRITE.items() if not k.startswith("devices.")},
    "memory.failcnt": "failcnt", MEMORY_OOM_CONTROL: "oom_control", "cpuacct.usage": "usage",
    CGROUP_PROCS: "procs", DEVICES_LIST: "list",
}


class _Node:
    """What a cgroupspy controller needs of its node: the directory."""

    def __init__(self, path: Path) -> None:
        self.full_path = os.fsencode(path)


def _controller_class(kind: str) -> Any:
    from cgroupspy import controllers as c

    return {"memory": c.MemoryController, "cpu": c.CpuController,
            "cpuacct": c.CpuAcctController, "devices": c.DevicesController}.get(
                kind, c.Controller)


class V1Kernel(DirKernel):
    """The system calls the driver makes on the v1 hierarchies (real ones; files through
    cgroupspy's controllers)."""

    def kill(self, pid: int, sig: int) -> None:
        """Signal a process found in a cgroup (ProcessLookupError when it is gone)."""
        os.kill(pid, sig)

    def controller(self, path: Path, kind: str) -> Any:
        """A cgroupspy controller of ``kind`` bound to the cgroup directory ``path``."""
        return _controller_class(kind)(_Node(path))

    def write(self, path: Path, name: str, value: str) -> None:
        ctrl = self.controller(path, controller_of(name))
        attr = _TYPED_WRITE.get(name)
        if attr is None or value.strip() == "a":  # "a": all devices, no major:minor
            ctrl.set_property(name.encode(), value)
        else:
            setattr(ctrl, attr, value)

    def get(self, path: Path, name: str) -> Any:
        """A file's value, typed by cgroupspy where it knows the file (else the text)."""
        ctrl = self.controller(path, controller_of(name))
        attr = _TYPED_READ.get(name)
        return ctrl.get_property(name.encode()) if attr is None else getattr(ctrl, attr)


class V1Fs(DirFs):
    """The cgroup v1 files, through ``kernel``."""

    def __init__(self, kernel: V1Kernel | None = None) -> None:
        self.kernel: V1Kernel = kernel if kernel is not None else V1Kernel()

    def write(self, path: Path, name: str, value: str, label: str = "") -> None:
        try:
            self.kernel.write(path, name, value)
        except OSError as err:
            raise CgroupError(_what(label, "write"), str(path / name), err.errno or 0,
                              f"value {value!r}") from None

    def get(self, path: Path, name: str) -> Any:
        try:
            return self.kernel.get(path, name)
        except OSError as err:
            raise CgroupError("read", str(path / name), err.errno or 0) from None
        except ValueError:
            raise CgroupError("read", str(path / name), errno.EINVAL) from None

    def procs(self, path: Path) -> list[int]:
        """The processes in the cgroup at ``path`` (not below it)."""
        return list(self.get(path, CGROUP_PROCS) or [])

    def move(self, pid: int, path: Path, label: str = "") -> bool:
        """Move process ``pid`` into ``path``; False when it has already exited."""
        try:
            self.write(path, CGROUP_PROCS, str(pid), label)
        except CgroupError as err:
            if err.errno == errno.ESRCH:
                return False
            raise
        return True

    def oom_kills(self, path: Path) -> int:
        """``oom_kill`` of ``memory.oom_control``: processes of this cgroup the OOM killer
        killed (Linux >= 4.13)."""
        control = self.get(path, MEMORY_OOM_CONTROL)
        return int(control.get("oom_kill", 0)) if isinstance(control, dict) else 0

    def freeze(self, path: Path, label: str = "") -> None:
        """``FROZEN`` into ``freezer.state``, then wait until the kernel says so (it says
        ``FREEZING`` while tasks are still running)."""
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            self.write(path, FREEZER_STATE, FROZEN, label)
            if self.state(path) == FROZEN:
                return
            if time.monotonic() > deadline:
                raise CgroupError(_what(label, "freeze"), str(path / FREEZER_STATE),
                                  errno.ETIMEDOUT, "still FREEZING")
            time.sleep(0.001)

    def thaw(self, path: Path, label: str = "") -> None:
        self.write(path, FREEZER_STATE, THAWED, label)

    def state(self, path: Path) -> str:
        return str(self.get(path, FREEZER_STATE)).strip()

    def sigkill(self, pid: int) -> None:
        try:
            self.kernel.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _what(label: str, what: str) -> str:
    return f"{label}: {what}" if label else what
