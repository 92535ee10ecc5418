"""A fake cgroup v2 filesystem in a temp dir, for the driver's unit tests.

Directories and files are real (the driver lists, stats and reads them); the kernel's rules
are emulated where the driver writes, through the ``Kernel`` passed to ``CgroupFs`` (``fake.fs``
is one over this fake): a new cgroup gets the
interface files of the controllers its parent enabled, ``cgroup.subtree_control`` only takes
available controllers and refuses (EBUSY) a non-root cgroup with processes,
``cgroup.procs`` moves a process (EBUSY into an inner cgroup, ESRCH for an unknown pid),
``cgroup.kill`` empties a subtree, values are range-checked like the kernel does
(``cpu.weight`` ERANGE, ``cpu.max`` below 1 ms EINVAL), rmdir refuses a cgroup with children
or processes (EBUSY). ``fail``/``busy`` inject errors.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from nsrun.host import cgroupfs

ALL = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids")
PAGE = 4096

FILES = {
    "cpu": {"cpu.weight": "100", "cpu.max": "max 100000",
            "cpu.stat": "usage_usec 0\nnr_throttled 0\nthrottled_usec 0"},
    "memory": {"memory.max": "max", "memory.current": "0", "memory.oom.group": "0",
               "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0"},
    "pids": {"pids.max": "max", "pids.current": "0"},
    "io": {"io.max": ""},
    "cpuset": {"cpuset.cpus": "", "cpuset.mems": ""},
    "hugetlb": {"hugetlb.2MB.max": "max"},
}


def _err(code: int, path: Path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


class FakeKernel(cgroupfs.Kernel):
    """``root``: the fake mount point, whose ``cgroup.controllers`` is ``controllers``."""

    def __init__(self, root: Path, controllers: tuple[str, ...] = ALL) -> None:
        self.root = root
        self.procs: dict[int, Path] = {}  # pid -> cgroup
        self.fail: dict[tuple[str, str], int] = {}  # (cgroup path, file) -> errno, once
        self.fail_always: dict[tuple[str, str], int] = {}
        self.busy: dict[str, int] = {}  # cgroup path -> rmdir EBUSY this many times
        self.mkdir_fail: dict[str, int] = {}  # cgroup path -> errno, once
        self.xattr: dict[str, list[str]] = {}
        self.refuse: set[str] = set()  # controllers subtree_control refuses (EINVAL)
        self.writes: list[tuple[str, str, str]] = []  # (cgroup path, file, value)
        self.killed: list[int] = []
        self.device_programs: dict[str, object] = {}  # cgroup path -> the policy attached
        self.fs = cgroupfs.CgroupFs(self)
        root.mkdir(parents=True, exist_ok=True)
        self._files(root, list(controllers), is_root=True)

    # -- helpers for tests ------------------------------------------------------------------

    def add_proc(self, pid: int, cgroup: Path) -> None:
        self.procs[pid] = cgroup
        self._sync(cgroup)

    def pids_in(self, cgroup: Path) -> list[int]:
        return sorted(p for p, cg in self.procs.items() if cg == cgroup)

    def read_text(self, cgroup: Path, name: str) -> str:
        return (cgroup / name).read_text()

    def enabled(self, cgroup: Path) -> set[str]:
        return set((cgroup / "cgroup.subtree_control").read_text().split())

    def make(self, path: Path, enable: tuple[str, ...] = ()) -> Path:
        """mkdir -p with the kernel's files (a pre-existing hierarchy), enabling ``enable``
        in each new directory's parent."""
        if path == self.root or path.is_dir():
            return path
        self.make(path.parent, enable)
        if enable:
            self._set_enabled(path.parent, self.enabled(path.parent) | set(enable))
        self.mkdir(path)
        return path

    # -- the Kernel interface ---------------------------------------------------------------

    def mkdir(self, path: Path) -> bool:
        code = self.mkdir_fail.pop(str(path), 0)
        if code:
            raise _err(code, path)
        if path.is_dir():
            return False
        if not path.parent.is_dir():
            raise _err(errno.ENOENT, path)
        path.mkdir()
        self._files(path, sorted(self.enabled(path.parent)))
        return True

    def rmdir(self, path: Path) -> None:
        if not path.is_dir():
            raise _err(errno.ENOENT, path)
        if self.busy.get(str(path), 0) > 0:
            self.busy[str(path)] -= 1
            raise _err(errno.EBUSY, path)
        if any(p.is_dir() for p in path.iterdir()) or self.pids_in(path):
            raise _err(errno.EBUSY, path)
        shutil.rmtree(path)

    def xattrs(self, path: Path) -> list[str]:
        return list(self.xattr.get(str(path), []))

    def attach_device_filter(self, dirfd: int, policy: object, replace_fd: int) -> int:
        """Records the policy; the program fd is a fresh /dev/null fd (closed by the
        driver when replaced)."""
        cg = os.readlink(f"/proc/self/fd/{dirfd}")
        code = self.fail.pop((cg, "bpf"), 0)
        if code:
            raise _err(code, Path(cg))
        self.device_programs[cg] = policy
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    def write_at(self, dirfd: int, name: str, data: bytes) -> None:
        cg = Path(os.readlink(f"/proc/self/fd/{dirfd}"))
        target = cg / name
        value = data.decode()
        self.writes.append((str(cg), name, value))
        code = self.fail.pop((str(cg), name), 0) or self.fail_always.get((str(cg), name), 0)
        if code:
            raise _err(code, target)
        if not target.exists():
            raise _err(errno.ENOENT, target)
        handler = getattr(self, "_w_" + name.replace(".", "_"), None)
        if handler is not None:
            handler(cg, target, value.strip())
        else:
            target.write_text(value)

    # -- emulated files ---------------------------------------------------------------------

    def _w_cgroup_subtree_control(self, cg: Path, target: Path, value: str) -> None:
        have = set((cg / "cgroup.controllers").read_text().split())
        enabled = self.enabled(cg)
        for token in value.split():
            sign, name = token[0], token[1:]
            if sign not in "+-":
                raise _err(errno.EINVAL, target)
            if name not in have:
                raise _err(errno.ENOENT, target)
            if sign == "+":
                if name in self.refuse:
                    raise _err(errno.EINVAL, target)
                if cg != self.root and self.pids_in(cg):
                    raise _err(errno.EBUSY, target)
                enabled.add(name)
            else:
                enabled.discard(name)
        self._set_enabled(cg, enabled)

    def _w_cgroup_procs(self, cg: Path, target: Path, value: str) -> None:
        pid = int(value)
        if pid not in self.procs:
            raise _err(errno.ESRCH, target)
        if cg != self.root and self.enabled(cg):
            raise _err(errno.EBUSY, target)
        old = self.procs[pid]
        self.procs[pid] = cg
        self._sync(old)
        self._sync(cg)

    def _w_cgroup_kill(self, cg: Path, target: Path, value: str) -> None:
        if value != "1":
            raise _err(errno.EINVAL, target)
        for pid, where in list(self.procs.items()):
            if where == cg or cg in where.parents:
                del self.procs[pid]
                self.killed.append(pid)
                self._sync(where)

    def _w_cgroup_freeze(self, cg: Path, target: Path, value: str) -> None:
        if value not in ("0", "1"):
            raise _err(errno.EINVAL, target)
        target.write_text(value)
        self._sync(cg)

    def _w_cpu_weight(self, cg: Path, target: Path, value: str) -> None:
        if not value.isdigit():
            raise _err(errno.EINVAL, target)
        if not 1 <= int(value) <= 10000:
            raise _err(errno.ERANGE, target)
        target.write_text(value)

    def _w_cpu_max(self, cg: Path, target: Path, value: str) -> None:
        parts = value.split()
        if not parts or len(parts) > 2 or (parts[0] != "max" and not parts[0].isdigit()):
            raise _err(errno.EINVAL, target)
        if parts[0] != "max" and int(parts[0]) < 1000:
            raise _err(errno.EINVAL, target)
        target.write_text(f"{parts[0]} {parts[1] if len(parts) > 1 else 100000}")

    def _w_memory_max(self, cg: Path, target: Path, value: str) -> None:
        if value != "max" and not value.isdigit():
            raise _err(errno.EINVAL, target)
        target.write_text(value if value == "max" else str(int(value) // PAGE * PAGE))

    def _w_pids_max(self, cg: Path, target: Path, value: str) -> None:
        if value != "max" and not value.isdigit():
            raise _err(errno.EINVAL, target)
        target.write_text(value)

    def _w_memory_oom_group(self, cg: Path, target: Path, value: str) -> None:
        if value not in ("0", "1"):
            raise _err(errno.EINVAL, target)
        target.write_text(value)

    # -- internals --------------------------------------------------------------------------

    def _files(self, path: Path, controllers: list[str], is_root: bool = False) -> None:
        (path / "cgroup.controllers").write_text(" ".join(controllers))
        (path / "cgroup.subtree_control").write_text("")
        (path / "cgroup.procs").write_text("")
        if not is_root:
            (path / "cgroup.events").write_text("populated 0\nfrozen 0\n")
            (path / "cgroup.kill").write_text("")
            (path / "cgroup.freeze").write_text("0")
            for c in controllers:
                for name, value in FILES.get(c, {}).items():
                    (path / name).write_text(value)

    def _set_enabled(self, cg: Path, enabled: set[str]) -> None:
        (cg / "cgroup.subtree_control").write_text(
            " ".join(c for c in ALL if c in enabled))

    def _sync(self, cg: Path) -> None:
        """Rewrite cgroup.procs and the populated flags up the tree."""
        if not cg.is_dir():
            return
        (cg / "cgroup.procs").write_text("".join(f"{p}\n" for p in self.pids_in(cg)))
        node = cg
        while node != self.root and self.root in node.parents:
            populated = any(where == node or node in where.parents
                            for where in self.procs.values())
            events = node / "cgroup.events"
            if events.exists():
                frozen = (node / "cgroup.freeze").read_text().strip()
                events.write_text(f"populated {int(populated)}\nfrozen {frozen}\n")
            node = node.parent
