"""The cgroup v2 driver: the pod's cgroup tree on the cgroup2 hierarchy (layout, sizing,
delegation, teardown), through ``cgroupfs``.

Layout::

    <parent>/                     --cgroup-parent (see "Parent" below)
      nsrun-supervisor/           nsrun's own processes, only when <parent> is (or is below)
                                  the cgroup nsrun was started in (delegation)
      guaranteed/ burstable/ besteffort/
                                  the QoS level (the pod's ``status.qosClass``, lower case):
                                  groups pods by class, no values written
        pod-<uid>/                the pod: cpu.weight, cpu.max, memory.max, pids.max from
                                  ``core.resources`` (init-inclusive effective values)
          <container>/            one leaf per container (init, sidecar, app), all created
                                  with their own values before the first container starts:
                                  cpu.weight, cpu.max, memory.max, memory.oom.group=1

Unlike the kubelet (Guaranteed pods directly under ``kubepods``), every class has its level,
so the path alone tells a pod's class. Callers that pass no ``qos`` get ``<parent>/pod-<uid>``.
The ``cgroupdriver`` module has the interface (``V2Driver`` is one of its drivers); each
container's leaf is a ``cgroupfs.Cgroup`` (started into by ``CLONE_INTO_CGROUP``).

Parent: ``--cgroup-parent`` absolute, relative to the cgroup2 mount, or ``.`` (the cgroup
nsrun runs in). Without it: the cgroup nsrun runs in when that is a delegated systemd unit
made for it (``systemd-run --scope -p Delegate=yes nsrun run …``, or a ``Delegate=yes``
service running only nsrun; see ``preflight.delegated_home``), else ``<mount>/nsrun`` for
the default state root and ``<mount>/nsrun-<8 hex>`` (``netconfig.world_name``) for any other.

Order in ``create_pod`` (everything before the first init container starts):
1. preflight (``preflight.check``): which controllers the pod's limits need, which the
   deepest existing cgroup on the path offers; ``--cgroups=v2`` refuses here, before
   anything is created; ``auto`` warns once, in one line;
2. delegation: if that cgroup is nsrun's own (it holds nsrun's processes), every process in
   it moves into ``nsrun-supervisor`` first: cgroup v2's no-internal-processes rule forbids
   enabling controllers for children of a cgroup with processes;
3. down the path: each cgroup created, controllers (cpu memory pids io cpuset hugetlb, those
   available) enabled in its ``cgroup.subtree_control``;
4. pod values, then every container leaf with its values and ``memory.oom.group``.
Any failure undoes steps 3-4 (nothing is left behind) and raises an error naming the file,
the value, errno and the container.

Teardown: ``cgroup.kill`` on the pod (every process below it), rmdir leaves first with a
bounded retry while the cgroup drains, then the QoS level and the parent if they are empty
and nsrun's to remove (never the mount, nsrun's own cgroup, a systemd unit or a delegated
cgroup; see ``preflight.may_prune``).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from nsrun.errors import CgroupError, PreflightError
from nsrun.host import cgroupfs, preflight
from nsrun.host.cgroupfs import Cgroup, CgroupFs
from nsrun.host.preflight import SUPERVISOR_LEAF, CgroupHost
from nsrun.host.preflight import below as _below

P = TypeVar("P")
T = TypeVar("T")

QOS_DIRS = {"Guaranteed": "guaranteed", "Burstable": "burstable", "BestEffort": "besteffort"}
POD_PREFIX = "pod-"
DEFAULT_PARENT = "nsrun"
SELF_PARENT = "."


def resolve_parent(parent: str | None, host: CgroupHost, fs: CgroupFs,
                   default: str = DEFAULT_PARENT) -> tuple[Path, Path]:
    """(cgroup2 mount, parent cgroup) for ``--cgroup-parent`` (see the module docstring);
    ``default``: the parent's name below the mount when none is given or delegated."""
    if host.mount is None:
        raise PreflightError("no cgroup2 hierarchy is mounted (use --cgroups=none to run "
                             "without a pod cgroup)")
    root = host.mount
    if parent == SELF_PARENT:
        own = host.own_cgroup()
        if own is None:
            raise PreflightError(f"--cgroup-parent .: nsrun's own cgroup is not visible "
                                 f"under the cgroup2 mount {root}")
        return root, preflight.base_of(own)
    if not parent:
        home = preflight.delegated_home(host, fs)
        return root, home if home is not None else root / default
    path = Path(parent)
    full = path if path.is_absolute() else root / path
    if ".." in full.parts or not (full == root or root in full.parents):
        raise PreflightError(f"--cgroup-parent {parent}: not below the cgroup2 mount {root}")
    return root, full


def qos_level(parent: Path, qos: str | None) -> Path:
    """Where a pod of class ``qos`` goes below ``parent``."""
    return parent / QOS_DIRS[qos] if qos in QOS_DIRS else parent


class Killing:
    """``kill_leaf``/``kill_all`` of a driver's pod, which has ``leaves`` and ``pod``."""

    leaves: dict[str, Any]
    pod: Any

    def kill_leaf(self, name: str) -> None:
        if name in self.leaves:
            self.leaves[name].kill()

    def kill_all(self) -> None:
        if self.pod is not None:
            self.pod.kill()


def build_retrying(make: Callable[[], P], build: Callable[[P], T],
                   undo: Callable[[P], None]) -> tuple[P, T]:
    """``build(make())``, undone on any failure. A concurrent pod's teardown may remove an
    empty level (the QoS or parent cgroup) between our ``mkdir``s: ENOENT while creating a
    cgroup is tried twice more, from the top."""
    for attempt in range(3):
        pod = make()
        try:
            return pod, build(pod)
        except CgroupError as err:
            undo(pod)
            if err.errno != errno.ENOENT or attempt == 2 or err.what != "create cgroup":
                raise
        except BaseException:
            undo(pod)
            raise
    raise AssertionError("unreachable: the last attempt returns or raises")


class V2Driver:
    """Pod cgroups on the cgroup2 hierarchy. ``mode``: ``v2`` refuses limits it cannot
    enforce, ``auto`` warns about them."""

    name = preflight.V2

    def __init__(self, host: CgroupHost, fs: CgroupFs | None = None,
                 mode: str = preflight.AUTO, proc: str = "/proc",
                 default_parent: str = DEFAULT_PARENT) -> None:
        self.host, self.fs, self.mode = host, fs if fs is not None else CgroupFs(), mode
        self.proc, self.default_parent = proc, default_parent

    def create_pod(self, parent: str | None, uid: str, values: Mapping[str, str],
                   leaves: Mapping[str, Mapping[str, str]] | None = None, *,
                   qos: str | None = None, declared: bool = True,
                   warn: Callable[[str], None] | None = None) -> V2Pod:
        """Make the pod's cgroup tree and write its values, before any container starts.

        ``values``: the pod cgroup's files (``resources.compute(...).pod_cgroup``);
        ``leaves``: container name -> its leaf's files, all created now so a value the kernel
        rejects stops the pod before it starts; ``declared``: the pod asked for resources (a
        BestEffort pod's default cpu.weight is not worth a warning or a refusal); ``qos``:
        the pod's QoS class (the QoS level); ``warn``: where the one-line warning goes."""
        host, fs = self.host, self.fs
        leaves = dict(leaves or {})
        need = preflight.needed(values, leaves, declared)
        say = warn if warn is not None else _warn
        if host.mount is None or host.readonly:
            preflight.without_cgroup(host, preflight.V2, need)  # raises
        root, parent_path = resolve_parent(parent, host, fs, self.default_parent)
        pod_path = qos_level(parent_path, qos) / f"{POD_PREFIX}{uid}"
        anchor = preflight.anchor_of(pod_path, root)
        if self.mode == preflight.V2:  # refuse before anything is created
            available = fs.controllers(anchor) & set(cgroupfs.WANTED)
            preflight.check(host, self.mode, need, available, anchor, fs)

        def build(pod: V2Pod) -> str | None:
            pod._build(anchor, values, leaves)
            return preflight.check(host, self.mode, need, pod.available, anchor, fs)

        pod, message = build_retrying(lambda: V2Pod(root, pod_path, host, fs), build,
                                      V2Pod._undo)
        if message:
            say(message)
        pod.unenforced = [f for c in sorted(set(need) - pod.available) for f in need[c]]
        return pod

    def destroy_recorded(self, paths: list[Path]) -> None:
        for path in paths:
            destroy_path(path, self.host, self.fs)

    def group_of(self, pid: int, paths: list[Path]) -> Cgroup | None:
        """The cgroup ``pid`` is in, opened, when it is below the pod's directory ``paths[0]``
        (``nsrun exec``)."""
        rel = preflight.proc_cgroups(f"{self.proc}/{pid}/cgroup").get("")
        if self.host.mount is None or rel is None or not paths:
            return None
        path = _below(self.host.mount, self.host.mount_root, rel)
        if path is None or not (paths[0] == path or paths[0] in path.parents):
            return None
        try:
            return self.fs.open(path)
        except CgroupError:
            return None


class V2Pod(Killing):
    """Create, size, use and tear down one pod's cgroup tree."""

    enabled = True

    def __init__(self, root: Path, path: Path, host: CgroupHost, fs: CgroupFs) -> None:
        self.root, self.path, self.host, self.fs = root, path, host, fs
        self.pod: Cgroup | None = None
        self.leaves: dict[str, Cgroup] = {}
        self.available: set[str] = set()
        self.created: list[Path] = []  # cgroups above the pod that this create made
        self.unenforced: list[str] = []  # limit files not written (controller missing)
        self.moved: list[int] = []  # processes moved into the supervisor leaf

    @property
    def record(self) -> list[str]:
        """What the state dir's ``cgroup`` file holds: the pod's cgroup directory."""
        return [str(self.path)]

    @property
    def group(self) -> Cgroup:
        """The pod's own cgroup (freeze, update, pids of the whole pod)."""
        assert self.pod is not None
        return self.pod

    # -- building ---------------------------------------------------------------------------

    def _build(self, anchor: Path, values: Mapping[str, str],
               leaves: Mapping[str, Mapping[str, str]]) -> None:
        own = self.host.own_cgroup()
        if own is not None and own != self.root and anchor == own:
            self._leave(own)
        available = self.fs.controllers(anchor) & set(cgroupfs.WANTED)
        chain = [anchor, *_between(anchor, self.path)]
        for path in chain:
            if path != anchor and self.fs.mkdir(path):
                self.created.append(path)
            cg = self.fs.open(path)
            try:
                available = self._enable(cg, available)
            finally:
                cg.close()
        self.pod = self.fs.create(self.path)
        self.available = self._enable(self.pod, available)
        self.pod.write_values(dict(values), self.available)
        for name, vals in leaves.items():
            self._make_leaf(name, vals)

    def _leave(self, own: Path) -> None:
        """Move every process of ``own`` (nsrun's own cgroup) into its supervisor leaf."""
        leaf = self.fs.create(own / SUPERVISOR_LEAF, "supervisor leaf")
        try:
            for _ in range(5):  # a process may fork while the others move
                pids = self.fs.procs(own)
                if not pids:
                    return
                self.moved += [p for p in pids if self.fs.move(p, leaf)]
        finally:
            leaf.close()

    def _enable(self, cg: Cgroup, available: set[str]) -> set[str]:
        try:
            return self.fs.enable(cg, available)
        except CgroupError as err:
            if err.errno != errno.EBUSY:
                raise
            raise PreflightError(_internal_processes(cg.path, self.fs)) from None

    def _make_leaf(self, name: str, values: Mapping[str, str]) -> Cgroup:
        cg = self.fs.create(self.path / name, f'container "{name}"')
        self.leaves[name] = cg
        cg.write_values(dict(values), self.available)
        if "memory" in self.available:
            cg.write(cgroupfs.MEMORY_OOM_GROUP, "1")
        return cg

    def _undo(self) -> None:
        """Remove what a failed ``create`` made (no process was started in it)."""
        self._close()
        try:
            self.fs.remove(self.path)
        except CgroupError:
            pass
        for path in reversed(self.created):
            self.fs.rmdir_quiet(path)

    # -- use --------------------------------------------------------------------------------

    def leaf(self, name: str, values: Mapping[str, str] | None = None) -> Cgroup:
        """The container's leaf cgroup (made by ``create_pod``, or now; reused across
        restarts)."""
        if name not in self.leaves:
            self._make_leaf(name, values or {})
        return self.leaves[name]

    def destroy(self) -> None:
        """Kill what is left, close the dirfds, remove the tree, then the QoS level and the
        parent when empty and nsrun's to remove."""
        self.kill_all()
        self._close()
        self.fs.remove(self.path)
        _prune_above(self.path, self.host, self.fs)

    def _close(self) -> None:
        for cg in self.leaves.values():
            cg.close()
        if self.pod is not None:
            self.pod.close()


def _between(anchor: Path, pod: Path) -> list[Path]:
    """The cgroups strictly between ``anchor`` and ``pod``, top down."""
    out = []
    current = anchor
    for part in pod.relative_to(anchor).parts[:-1]:
        current = current / part
        out.append(current)
    return out


def _internal_processes(path: Path, fs: CgroupFs) -> str:
    try:
        pids = " ".join(map(str, fs.procs(path)[:8]))
    except CgroupError:
        pids = "?"
    return (f"cgroup {path} holds processes ({pids}) so it cannot enable controllers for "
            "child cgroups (cgroup v2's no-internal-processes rule): choose a "
            "--cgroup-parent whose cgroups hold no processes, or run nsrun in a delegated "
            "unit (systemd-run --scope -p Delegate=yes nsrun run …)")


def _warn(message: str) -> None:
    print(f"nsrun: warning: {message}", file=sys.stderr)


def _prune_above(pod: Path, host: CgroupHost, fs: CgroupFs) -> None:
    prune_above(pod, lambda p: preflight.may_prune(p, host, fs), fs.rmdir_quiet)


def prune_above(pod: Path, may_prune: Callable[[Path], bool],
                rmdir_quiet: Callable[[Path], bool]) -> None:
    """rmdir the QoS level and the parent above a removed pod when they are empty and
    ``may_prune`` (both drivers)."""
    level = pod.parent
    if level.name in QOS_DIRS.values():
        if level.is_dir() and not (may_prune(level) and rmdir_quiet(level)):
            return
        level = level.parent
    if level.is_dir() and may_prune(level):
        rmdir_quiet(level)


def destroy_path(path: Path, host: CgroupHost, fs: CgroupFs) -> None:
    """Tear down a pod cgroup by path (``nsrun delete`` after the supervisor was killed).
    Only a ``pod-*`` cgroup below a cgroup2 mount is touched."""
    if (host.mount is None or not path.is_absolute() or host.mount not in path.parents
            or not path.name.startswith(POD_PREFIX) or ".." in path.parts):
        return
    if not path.is_dir():
        _prune_above(path, host, fs)
        return
    try:
        cg = fs.open(path)
        try:
            cg.kill()
        finally:
            cg.close()
    except CgroupError:
        pass
    fs.remove(path)
    _prune_above(path, host, fs)
