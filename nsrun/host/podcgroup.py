"""The pod's cgroup: ``<parent>/pod-<uid>/<container>`` on the cgroup2 hierarchy.

Modes (``--cgroups``): ``auto`` uses cgroup v2 with whatever controllers the host has and
says once which limits it cannot enforce; ``v2`` refuses a pod whose limits cannot be
enforced; ``none`` runs without a pod cgroup (no grouping, no limits).
"""

from __future__ import annotations

import sys
from pathlib import Path

from nsrun.errors import CgroupError, PreflightError
from nsrun.host import cgroupfs
from nsrun.host.cgroupfs import Cgroup

# Which controller a cgroup file needs.
CONTROLLER_OF = {"cpu.weight": "cpu", "cpu.max": "cpu", "memory.max": "memory",
                 "memory.min": "memory", "memory.low": "memory", "memory.high": "memory",
                 "memory.oom.group": "memory", "pids.max": "pids"}


def resolve_parent(parent: str | None) -> tuple[Path, Path]:
    """(cgroup2 mount, parent dir): ``parent`` absolute, relative to the mount, or the
    default ``<mount>/nsrun``."""
    mount = cgroupfs.find_cgroup2_mount()
    if mount is None:
        raise PreflightError("no cgroup2 hierarchy is mounted (use --cgroups=none to run "
                             "without a pod cgroup)")
    root = Path(mount)
    if not parent:
        return root, root / "nsrun"
    path = Path(parent)
    full = path if path.is_absolute() else root / path
    if not str(full).startswith(str(root) + "/"):
        raise PreflightError(f"--cgroup-parent {parent}: not below the cgroup2 mount {root}")
    return root, full


class PodCgroup:
    """Create, size, use and tear down one pod's cgroup tree."""

    def __init__(self, root: Path, path: Path) -> None:
        self.root, self.path = root, path
        self.pod: Cgroup | None = None
        self.leaves: dict[str, Cgroup] = {}
        self.available: set[str] = set()

    @classmethod
    def create(cls, parent: str | None, uid: str, values: dict[str, str], mode: str,
               declared: bool = True, warn=None) -> PodCgroup:
        """Make ``<parent>/pod-<uid>``, enable controllers, write the pod values
        (before any container starts). ``declared``: the pod asked for resources (a
        BestEffort pod's default cpu.weight is not worth a warning or a refusal)."""
        root, parent_path = resolve_parent(parent)
        self = cls(root, parent_path / f"pod-{uid}")
        self.available = cgroupfs.enable_controllers(root, self.path)
        wanted = {CONTROLLER_OF.get(k, k.split(".")[0]) for k in values} if declared else set()
        missing = sorted(wanted - self.available)
        if missing and mode == "v2":
            raise PreflightError(
                f"cgroup v2 at {root} lacks the {', '.join(missing)} controller(s) needed for "
                "this pod's limits (use --cgroups=auto to run without enforcing them)")
        self.pod = Cgroup.create(self.path)
        if missing:
            (warn or _warn)(f"cgroup v2 at {root} has no {', '.join(missing)} controller: "
                            f"this pod's {_files(values, missing)} not enforced on this host")
        self._write(self.pod, values)
        return self

    def _write(self, cg: Cgroup, values: dict[str, str]) -> None:
        for name, value in values.items():
            if CONTROLLER_OF.get(name, name.split(".")[0]) in self.available:
                cg.write(name, value)

    def leaf(self, name: str, values: dict[str, str] | None = None) -> Cgroup:
        """The container's leaf cgroup (created once, reused across restarts)."""
        if name not in self.leaves:
            cg = Cgroup.create(self.path / name)
            self._write(cg, values or {})
            self.leaves[name] = cg
        return self.leaves[name]

    def kill_leaf(self, name: str) -> None:
        if name in self.leaves:
            self.leaves[name].kill()

    def kill_all(self) -> None:
        if self.pod is not None:
            self.pod.kill()

    def destroy(self) -> None:
        """Kill what is left, close the dirfds and remove the tree (and the parent if it
        is nsrun's own default and now empty)."""
        self.kill_all()
        for cg in self.leaves.values():
            cg.close()
        if self.pod is not None:
            self.pod.close()
        cgroupfs.remove(self.path)
        _remove_if_empty(self.path.parent)


def _files(values: dict[str, str], missing: list[str]) -> str:
    names = [k for k in values if CONTROLLER_OF.get(k, k.split(".")[0]) in missing]
    return ", ".join(names) + (" is" if len(names) == 1 else " are")


def _warn(message: str) -> None:
    print(f"nsrun: warning: {message}", file=sys.stderr)


def _remove_if_empty(path: Path) -> None:
    try:
        if not any(p.is_dir() for p in path.iterdir()):
            path.rmdir()
    except OSError:
        pass


def destroy_path(path: Path) -> None:
    """Tear down a pod cgroup by path (``nsrun delete`` after a supervisor crash)."""
    if not path.is_dir():
        return
    try:
        cg = Cgroup.create(path)
        cg.kill()
        cg.close()
    except CgroupError:
        pass
    cgroupfs.remove(path)
    _remove_if_empty(path.parent)
