"""The cgroup v1 driver: the pod's cgroups on the v1 hierarchies (a hybrid or a legacy
host), through ``cgroupv1fs`` (cgroupspy).

Layout, the same in each hierarchy nsrun uses (cpu, cpuacct, memory, pids, freezer,
devices; co-mounted controllers share one)::

    <own cgroup in the hierarchy>/    where nsrun runs (``/proc/self/cgroup``)
      nsrun/                          the default parent (``--cgroup-parent``, below)
        guaranteed/ burstable/ besteffort/
          pod-<uid>/                  cpu.shares, cpu.cfs_period_us, cpu.cfs_quota_us,
                                      memory.limit_in_bytes, pids.max (``core.resources``)
            <container>/ _pause/      one leaf per container: cpu.shares, cpu.cfs_*,
                                      memory.limit_in_bytes (+ memsw when swap is accounted),
                                      the device allow-list (devices.deny/devices.allow)

Parent: like runc's default (a relative cgroupsPath), pods go below the cgroup nsrun runs in,
in each hierarchy: the default ``nsrun`` and a relative ``--cgroup-parent`` are relative to
it, ``.`` is that cgroup itself, an absolute ``--cgroup-parent /a/b`` is ``/a/b`` from the
root of each hierarchy. So pods stay inside whatever limits nsrun's own cgroups carry (v1
has no delegation and no no-internal-processes rule to work around).

A container joins its leaf in every hierarchy before ``execve``: the C child waits at a sync
point (the go pipe) while the parent writes its pid into each ``cgroup.procs``, as runc does
(``Group.join_fds``). On a hybrid host the cgroup2 hierarchy is not used at all: one kind
of hierarchy per pod, and the freezer gives an atomic kill as ``cgroup.kill`` does.

Kill: ``freezer.state`` FROZEN, SIGKILL every process of the subtree, THAWED (no process can
fork in between); without a freezer hierarchy, signal until empty. OOM kills are counted
from ``memory.oom_control``'s ``oom_kill`` of the leaf (v1 has no ``memory.oom.group``: the
kernel kills the largest process of the cgroup whose limit was hit).
"""

from __future__ import annotations

import errno
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from nsrun.errors import CgroupError, PreflightError
from nsrun.host import preflight
from nsrun.host.cgroupfs import controller_of, descendants
from nsrun.host.cgroupv1fs import MEMORY_LIMIT, MEMORY_MEMSW_LIMIT, V1Fs
from nsrun.host.podcgroup import (
    DEFAULT_PARENT,
    POD_PREFIX,
    SELF_PARENT,
    Killing,
    build_retrying,
    prune_above,
    qos_level,
)
from nsrun.host.preflight import SYSTEMD_UNIT_SUFFIXES, V1_CONTROLLERS, CgroupHost

KILL_ROUNDS = 50  # without a freezer: signal, wait, look again


class V1Group:
    """One cgroup in each v1 hierarchy (``dirs``: controller -> its directory)."""

    clone_fd = -1

    def __init__(self, fs: V1Fs, dirs: Mapping[str, Path], label: str = "") -> None:
        self.fs, self.dirs, self.label = fs, dict(dirs), label
        self.unique = list(dict.fromkeys(self.dirs.values()))
        fds: list[int] = []
        try:
            for path in self.unique:
                fds.append(fs.open_dir(path, label))
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self.join_fds: tuple[int, ...] = tuple(fds)
        self.devices: object = None  # the policy written last

    def write_values(self, values: Mapping[str, str]) -> list[str]:
        """Write each ``file -> value`` whose hierarchy is mounted (memory limits in an
        order the kernel accepts: memsw is never below the limit); returns the files
        skipped. memsw is written only where swap is accounted (the file exists)."""
        skipped = []
        for name, value in _ordered(values, self._limit()):
            where = self.dirs.get(controller_of(name))
            if where is None or (name == MEMORY_MEMSW_LIMIT and not (where / name).exists()):
                skipped.append(name)
                continue
            self.fs.write(where, name, value, self.label)
        return skipped

    def _limit(self) -> int | None:
        where = self.dirs.get("memory")
        if where is None:
            return None
        try:
            value = self.fs.get(where, MEMORY_LIMIT)
        except CgroupError:
            return None
        return int(value) if isinstance(value, int) else None

    def update(self, values: dict[str, str]) -> None:
        skipped = self.write_values(values)
        missing = [n for n in skipped if n != MEMORY_MEMSW_LIMIT]
        if missing:
            raise CgroupError(_what(self.label, "update"), ", ".join(missing), errno.ENOENT,
                              "no such cgroup v1 hierarchy")

    def oom_kills(self) -> int:
        where = self.dirs.get("memory")
        if where is None:
            return 0
        try:
            return self.fs.oom_kills(where)
        except CgroupError:
            return 0

    def pids(self) -> list[int]:
        """Every process here and below, in any hierarchy."""
        found: set[int] = set()
        for top in self.unique:
            for path in [top, *descendants(top)]:
                try:
                    found.update(self.fs.procs(path))
                except CgroupError:
                    pass
        return sorted(found)

    def adopt(self, pid: int) -> bool:
        """Move a process nsrun started (and that has not forked) into every hierarchy."""
        return all([self.fs.move(pid, path, self.label) for path in self.unique])

    def freeze(self) -> None:
        self.fs.freeze(self._freezer(), self.label)

    def thaw(self) -> None:
        self.fs.thaw(self._freezer(), self.label)

    def frozen(self) -> bool:
        return "freezer" in self.dirs and self.fs.state(self.dirs["freezer"]) == "FROZEN"

    def _freezer(self) -> Path:
        if "freezer" not in self.dirs:
            raise PreflightError("cgroup v1 has no freezer hierarchy: cannot freeze")
        return self.dirs["freezer"]

    def set_devices(self, policy) -> None:
        """The device allow-list (``core.devices.Policy``) in the devices controller."""
        where = self.dirs.get("devices")
        if where is None or policy == self.devices:
            return
        for name, value in policy.v1_writes():
            self.fs.write(where, name, value, self.label)
        self.devices = policy

    def kill(self) -> None:
        """SIGKILL every process here and below: frozen first so none can fork."""
        frozen = False
        if "freezer" in self.dirs:
            try:
                self.freeze()
                frozen = True
            except CgroupError:
                pass
        try:
            for _ in range(1 if frozen else KILL_ROUNDS):
                pids = self.pids()
                if not pids:
                    return
                for pid in pids:
                    self.fs.sigkill(pid)
                if not frozen:
                    time.sleep(0.002)
        finally:
            if frozen:
                self.thaw()

    def close(self) -> None:
        for fd in self.join_fds:
            os.close(fd)
        self.join_fds = ()


def _ordered(values: Mapping[str, str], limit: int | None) -> list[tuple[str, str]]:
    """``values`` with memsw after the memory limit when the limit goes down, before it
    when it goes up (the kernel keeps memsw >= limit at every write)."""
    items = list(values.items())
    if MEMORY_LIMIT not in values or MEMORY_MEMSW_LIMIT not in values:
        return items
    new = int(values[MEMORY_LIMIT])
    raising = limit is not None and (new < 0 or new > limit)
    first, second = (MEMORY_MEMSW_LIMIT, MEMORY_LIMIT) if raising else \
        (MEMORY_LIMIT, MEMORY_MEMSW_LIMIT)
    rest = [(k, v) for k, v in items if k not in (first, second)]
    return [*rest, (first, values[first]), (second, values[second])]


def _what(label: str, what: str) -> str:
    return f"{label}: {what}" if label else what


# ------------------------------------------------------------------ the driver


class V1Driver:
    """Pod cgroups on the cgroup v1 hierarchies. ``mode``: ``v1`` refuses a pod that needs
    a hierarchy the host lacks, ``auto`` says so in one line."""

    name = preflight.V1

    def __init__(self, host: CgroupHost, fs: V1Fs | None = None,
                 mode: str = preflight.AUTO, proc: str = "/proc",
                 default_parent: str = DEFAULT_PARENT) -> None:
        self.host, self.fs, self.mode = host, fs if fs is not None else V1Fs(), mode
        self.proc, self.default_parent = proc, default_parent
        self.controllers = [c for c in V1_CONTROLLERS if c in host.v1]

    def create_pod(self, parent: str | None, uid: str, values: Mapping[str, str],
                   leaves: Mapping[str, Mapping[str, str]] | None = None, *,
                   qos: str | None = None, declared: bool = True,
                   warn: Callable[[str], None] | None = None) -> V1Pod:
        """Make the pod's cgroups in every hierarchy and write the pod's and every leaf's
        values, before any container starts; nothing is left behind on failure."""
        leaves = dict(leaves or {})
        message = self._check(preflight.needed(values, leaves, declared))
        pod_dirs = {c: qos_level(self.parent(parent, c), qos) / f"{POD_PREFIX}{uid}"
                    for c in self.controllers}
        pod, _ = build_retrying(lambda: V1Pod(self, pod_dirs),
                                lambda pod: pod.build(values, leaves), V1Pod.undo)
        if message:
            (warn if warn is not None else _warn)(message)
        return pod

    def _check(self, need: dict[str, list[str]]) -> str | None:
        """The hierarchies the pod needs (its limits', and devices for the device
        allow-list) that the host lacks: ``v1`` refuses, ``auto`` returns the one line."""
        wanted = {**need, "devices": ["the device allow-list"]}
        missing = [c for c in sorted(wanted) if c not in self.host.v1]
        if not missing:
            return None
        files = [f for c in missing for f in wanted[c]]
        s = "y" if len(missing) == 1 else "ies"
        why = f"cgroup v1 has no {', '.join(missing)} hierarch{s} mounted"
        if self.mode == preflight.V1:
            raise PreflightError(f"--cgroups=v1: {why}: this pod's {', '.join(files)} "
                                 "cannot be enforced (use --cgroups=auto to run it without)")
        verb = "is" if len(files) == 1 else "are"
        return f"{why}: this pod's {', '.join(files)} {verb} not enforced"

    def parent(self, parent: str | None, controller: str) -> Path:
        """The parent cgroup of the pods in ``controller``'s hierarchy (module docstring)."""
        mount = self.host.v1[controller]
        own = self.host.v1_own_cgroup(controller) or mount
        if parent is None or parent == "":
            return own / self.default_parent
        if parent == SELF_PARENT:
            return own
        path = Path(parent)
        if ".." in path.parts:
            raise PreflightError(f"--cgroup-parent {parent}: '..' is not allowed")
        return mount / path.relative_to("/") if path.is_absolute() else own / path

    def may_prune(self, path: Path, controller: str) -> bool:
        """Whether nsrun may rmdir the empty ``path`` it worked under: never a mount, nsrun's
        own cgroup or one above it, or a systemd unit."""
        mount = self.host.v1[controller]
        own = self.host.v1_own_cgroup(controller)
        if path == mount or mount not in path.parents:
            return False
        if own is not None and (path == own or path in own.parents):
            return False
        return not path.name.endswith(SYSTEMD_UNIT_SUFFIXES)

    def _controllers_at(self, path: Path) -> list[str]:
        return [c for c in self.controllers
                if self.host.v1[c] == path or self.host.v1[c] in path.parents]

    def destroy_recorded(self, paths: list[Path]) -> None:
        """Kill and remove pods' cgroups by their recorded directories."""
        dirs = {c: p for p in paths if p.name.startswith(POD_PREFIX) and ".." not in p.parts
                for c in self._controllers_at(p)}
        existing = {c: p for c, p in dirs.items() if p.is_dir()}
        if existing:
            group = V1Group(self.fs, existing)
            try:
                group.kill()
            finally:
                group.close()
        V1Pod(self, dirs).remove()

    def group_of(self, pid: int, paths: list[Path]) -> V1Group | None:
        """The cgroups ``pid`` is in below the pod's recorded directories (``nsrun exec``)."""
        found = preflight.proc_cgroups(f"{self.proc}/{pid}/cgroup")
        dirs = {}
        for pod_dir in paths:
            for c in self._controllers_at(pod_dir):
                rel = found.get(c)
                path = None if rel is None else preflight.below(
                    self.host.v1[c], self.host.v1_root.get(c, "/"), rel)
                if path is not None and (path == pod_dir or pod_dir in path.parents):
                    dirs[c] = path
        if not dirs:
            return None
        try:
            return V1Group(self.fs, dirs)
        except CgroupError:
            return None


class V1Pod(Killing):
    """One pod's cgroups in every v1 hierarchy."""

    enabled = True

    def __init__(self, driver: V1Driver, dirs: Mapping[str, Path]) -> None:
        self.driver, self.fs, self.dirs = driver, driver.fs, dict(dirs)
        self.pod: V1Group | None = None
        self.leaves: dict[str, V1Group] = {}
        self.created: list[tuple[str, Path]] = []  # (controller, dir) made above the pod
        self.unenforced: list[str] = []

    @property
    def record(self) -> list[str]:
        """The pod's directory in each hierarchy, one per line of the ``cgroup`` file."""
        return [str(p) for p in dict.fromkeys(self.dirs.values())]

    @property
    def group(self) -> V1Group:
        assert self.pod is not None
        return self.pod

    def build(self, values: Mapping[str, str], leaves: Mapping[str, Mapping[str, str]]) -> None:
        for c, path in self._hierarchies().items():
            self._make_pod_dir(c, path)
        self.pod = V1Group(self.fs, self.dirs)
        self.unenforced = self.pod.write_values(values)
        for name, vals in leaves.items():
            self.leaf(name, vals)

    def _hierarchies(self) -> dict[str, Path]:
        """One controller per distinct directory (co-mounted controllers share one)."""
        out: dict[str, Path] = {}
        for c, path in self.dirs.items():
            if path not in out.values():
                out[c] = path
        return out

    def _make_pod_dir(self, controller: str, path: Path, tries: int = 5) -> None:
        """The pod's directory and its parents. Another pod's teardown prunes an empty QoS
        level (``besteffort``) it shares: when that happens between making the level and
        the pod's directory (ENOENT), the parents are made again."""
        for attempt in range(tries):
            self._mkdirs(controller, path.parent)
            try:
                self.fs.mkdir(path)
                return
            except CgroupError as err:
                if err.errno != errno.ENOENT or attempt == tries - 1:
                    raise

    def _mkdirs(self, controller: str, path: Path) -> None:
        if path.is_dir():
            return
        self._mkdirs(controller, path.parent)
        if self.fs.mkdir(path):
            self.created.append((controller, path))

    def leaf(self, name: str, values: Mapping[str, str] | None = None) -> V1Group:
        """The container's leaf in every hierarchy (made by ``create_pod``, or now)."""
        if name not in self.leaves:
            dirs = {c: p / name for c, p in self.dirs.items()}
            for path in dict.fromkeys(dirs.values()):
                self.fs.mkdir(path, f'container "{name}"')
            group = V1Group(self.fs, dirs, f'container "{name}"')
            self.leaves[name] = group
            self.unenforced += [f for f in group.write_values(values or {})
                                if f not in self.unenforced and f != MEMORY_MEMSW_LIMIT]
        return self.leaves[name]

    def destroy(self) -> None:
        """Kill what is left, close the fds, remove every directory nsrun made."""
        self.kill_all()
        self._close()
        self.remove()

    def undo(self) -> None:
        """Remove what a failed ``create_pod`` made (no process was started in it)."""
        self._close()
        try:
            self.remove()
        except CgroupError:
            pass

    def remove(self) -> None:
        """rmdir the pod in each hierarchy, then the QoS level and the parent when empty
        and nsrun's to remove; one hierarchy that stays busy does not keep the others: the
        first error is raised at the end."""
        first: CgroupError | None = None
        for c, path in self._hierarchies().items():
            try:
                self.fs.remove(path)
            except CgroupError as err:
                first = first or err
                continue
            prune_above(path, lambda p, c=c: self.driver.may_prune(p, c), self.fs.rmdir_quiet)
        if first is not None:
            raise first

    def _close(self) -> None:
        for group in self.leaves.values():
            group.close()
        if self.pod is not None:
            self.pod.close()


def _warn(message: str) -> None:
    print(f"nsrun: warning: {message}", file=sys.stderr)
