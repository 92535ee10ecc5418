"""A fake cgroup v1 tree in a temp dir, for the v1 driver's unit tests.

One directory per hierarchy (``<root>/cpu``, ``<root>/memory``, … or co-mounted
``<root>/cpu,cpuacct``) with the kernel's interface files. The files are real, and the
driver's writes still go through cgroupspy (``V1Kernel.write``) after the kernel's rules
are checked here: a file must exist (ENOENT), ``cgroup.procs`` moves a known pid out of
every other cgroup of the hierarchy (ESRCH for an unknown one), ``cpu.cfs_quota_us`` is -1
or at least 1000 (EINVAL), ``cpu.shares`` at least 2, ``memory.memsw.limit_in_bytes`` is
never below ``memory.limit_in_bytes`` (EINVAL), ``freezer.state`` takes FROZEN/THAWED,
``devices.deny a`` empties ``devices.list`` and ``devices.allow`` adds to it, rmdir refuses
a cgroup with children or processes (EBUSY). ``fail`` injects an errno; ``kill`` removes a
pid (what SIGKILL does).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from nsrun.host.cgroupv1fs import V1Fs, V1Kernel

FILES = {
    "cpu": {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"},
    "cpuacct": {"cpuacct.usage": "0"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712",
               "memory.memsw.limit_in_bytes": "9223372036854771712",
               "memory.usage_in_bytes": "0", "memory.failcnt": "0",
               "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "freezer": {"freezer.state": "THAWED"},
    "devices": {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
}
BIG = 9223372036854771712


def _err(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


class FakeV1(V1Kernel):
    """``hierarchies``: mount directory name -> the controllers it carries."""

    def __init__(self, root: Path, hierarchies: dict[str, tuple[str, ...]] | None = None,
                 swap: bool = True) -> None:
        self.root = root
        self.hierarchies = hierarchies or {c: (c,) for c in FILES}
        self.swap = swap
        self.procs: dict[tuple[str, int], Path] = {}  # (hierarchy, pid) -> cgroup
        self.fail: dict[tuple[str, str], int] = {}  # (cgroup path, file) -> errno, once
        self.writes: list[tuple[str, str, str]] = []
        self.killed: list[int] = []
        self.fs = V1Fs(self)
        for name in self.hierarchies:
            (root / name).mkdir(parents=True)
            self._files(root / name, root=True)

    # -- helpers for tests ------------------------------------------------------------------

    def mount(self, name: str) -> Path:
        return self.root / name

    def mountinfo(self) -> str:
        """/proc/self/mountinfo lines for this tree."""
        return "".join(f"3{i} 1 0:{i} / {self.root / name} rw - cgroup cgroup rw,{','.join(cs)}\n"
                       for i, (name, cs) in enumerate(self.hierarchies.items()))

    def add_proc(self, pid: int, where: dict[str, Path]) -> None:
        for name, path in where.items():
            self.procs[(name, pid)] = path
            self._sync(name)

    def read(self, path: Path, name: str) -> str:
        return (path / name).read_text().strip()

    # -- the V1Kernel interface -------------------------------------------------------------

    def mkdir(self, path: Path) -> bool:
        if path.is_dir():
            return False
        if not path.parent.is_dir():
            raise _err(errno.ENOENT, path)
        path.mkdir()
        self._files(path)
        if (path.parent / "devices.list").exists():  # a child starts with its parent's list
            (path / "devices.list").write_text((path.parent / "devices.list").read_text())
        return True

    def rmdir(self, path: Path) -> None:
        if not path.is_dir():
            raise _err(errno.ENOENT, path)
        if any(p.is_dir() for p in path.iterdir()) or any(
                cg == path for cg in self.procs.values()):
            raise _err(errno.EBUSY, path)
        shutil.rmtree(path)

    def kill(self, pid: int, sig: int) -> None:
        if not any(p == pid for _, p in self.procs):
            raise ProcessLookupError(pid)
        self.killed.append(pid)
        for key in [k for k in self.procs if k[1] == pid]:
            del self.procs[key]
            self._sync(key[0])

    def write(self, path: Path, name: str, value: str) -> None:
        self.writes.append((str(path), name, value))
        code = self.fail.pop((str(path), name), 0)
        if code:
            raise _err(code, path / name)
        if not (path / name).exists():
            raise _err(errno.ENOENT, path / name)
        handler = getattr(self, "_w_" + name.replace(".", "_"), None)
        if handler is not None and handler(path, value.strip()):
            return
        super().write(path, name, value)

    # -- emulated files ---------------------------------------------------------------------

    def _w_cgroup_procs(self, path: Path, value: str) -> bool:
        pid, name = int(value), self._hierarchy(path)
        if not any(p == pid for _, p in self.procs):
            raise _err(errno.ESRCH, path / "cgroup.procs")
        self.procs[(name, pid)] = path
        self._sync(name)
        return True

    def _w_cpu_cfs_quota_us(self, path: Path, value: str) -> bool:
        if int(value) != -1 and int(value) < 1000:
            raise _err(errno.EINVAL, path / "cpu.cfs_quota_us")
        return False

    def _w_cpu_shares(self, path: Path, value: str) -> bool:
        if int(value) < 2:
            raise _err(errno.EINVAL, path / "cpu.shares")
        return False

    def _w_memory_limit_in_bytes(self, path: Path, value: str) -> bool:
        memsw = int((path / "memory.memsw.limit_in_bytes").read_text()) \
            if (path / "memory.memsw.limit_in_bytes").exists() else BIG
        if (BIG if int(value) == -1 else int(value)) > memsw:
            raise _err(errno.EINVAL, path / "memory.limit_in_bytes")
        return False

    def _w_memory_memsw_limit_in_bytes(self, path: Path, value: str) -> bool:
        if (BIG if int(value) == -1 else int(value)) < int(
                (path / "memory.limit_in_bytes").read_text()):
            raise _err(errno.EINVAL, path / "memory.memsw.limit_in_bytes")
        return False

    def _w_freezer_state(self, path: Path, value: str) -> bool:
        if value not in ("FROZEN", "THAWED"):
            raise _err(errno.EINVAL, path / "freezer.state")
        (path / "freezer.state").write_text(value)
        return True

    def _w_devices_deny(self, path: Path, value: str) -> bool:
        rules = (path / "devices.list").read_text().splitlines()
        rules = [] if value == "a" else [r for r in rules if r != value]
        (path / "devices.list").write_text("\n".join(rules))
        return False

    def _w_devices_allow(self, path: Path, value: str) -> bool:
        rules = (path / "devices.list").read_text().splitlines()
        (path / "devices.list").write_text("\n".join([*rules, value]))
        return False

    # -- internals --------------------------------------------------------------------------

    def _hierarchy(self, path: Path) -> str:
        return path.relative_to(self.root).parts[0]

    def _files(self, path: Path, root: bool = False) -> None:
        (path / "cgroup.procs").write_text("")
        for c in self.hierarchies[self._hierarchy(path)]:
            for name, value in FILES.get(c, {}).items():
                if root and name in ("freezer.state", "memory.limit_in_bytes"):
                    continue  # the root has no freezer.state, and no limit to set
                if name.startswith("memory.memsw.") and not self.swap:
                    continue
                (path / name).write_text(value)

    def _sync(self, name: str) -> None:
        for cg in [self.root / name, *(self.root / name).rglob("*")]:
            if cg.is_dir():
                pids = sorted(p for (h, p), where in self.procs.items()
                              if h == name and where == cg)
                (cg / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))
