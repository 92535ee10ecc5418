"""The cgroup driver interface: what the runtime asks of a pod's cgroups whatever the host
has (cgroup v2, cgroup v1, or none), and the choice of driver (``--cgroups``).

Three drivers implement it: ``podcgroup.V2Driver`` (the cgroup2 hierarchy, through
``cgroupfs``), ``podcgroupv1.V1Driver`` (the v1 hierarchies, through ``cgroupv1fs`` and
cgroupspy) and ``NoCgroups`` here. "No cgroup" is represented one way only: the ``none``
driver's ``NoPod``, whose groups start nothing anywhere and enforce nothing.

``choose`` (``--cgroups``):

* ``auto``: v2 when the cgroup2 hierarchy is writable and holds the controllers (or is the
  only kind of hierarchy: grouping, ``cgroup.kill`` and the device program still work);
  v1 when the controllers are on cgroup v1 (a hybrid or a legacy host); none otherwise.
  Anything but v2 is said in one line on stderr.
* ``v2``, ``v1``: that driver; a pod whose limits it cannot all enforce is refused.
* ``none``: no pod cgroup, no limits, no device cgroup.

Imports stay lazy: the v1 driver (and cgroupspy) is never imported on the v2 path.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from nsrun.errors import PreflightError
from nsrun.host import preflight
from nsrun.host.cgroupfs import CgroupFs
from nsrun.host.preflight import AUTO, NONE, V1, V1_CONTROLLERS, V2, CgroupHost

# The controllers a pod's limits need: cgroup v2 "has the controllers" when it has one of them.
LIMIT_CONTROLLERS = {"cpu", "memory", "pids"}


class Group(Protocol):
    """One cgroup of a pod or container, in every hierarchy the driver uses.

    ``clone_fd``: a cgroup2 directory fd to start a process in (``CLONE_INTO_CGROUP``), or
    -1; ``join_fds``: cgroup v1 directory fds the process joins before ``execve`` (the
    parent writes its pid while it waits)."""

    clone_fd: int
    join_fds: tuple[int, ...]

    def oom_kills(self) -> int: ...        # processes OOM-killed here so far
    def pids(self) -> list[int]: ...       # every process here and below
    def adopt(self, pid: int) -> bool: ...  # move in a process nsrun started
    def update(self, values: dict[str, str]) -> None: ...  # write cgroup files
    def freeze(self) -> None: ...          # returns once every process is frozen
    def thaw(self) -> None: ...
    def frozen(self) -> bool: ...
    def set_devices(self, policy: Any) -> None: ...  # a core.devices.Policy
    def kill(self) -> None: ...            # SIGKILL everything here and below
    def close(self) -> None: ...


class PodCgroups(Protocol):
    """A pod's cgroups: the pod's ``group``, one leaf per container (and ``_pause``).
    ``record``: what the state dir's ``cgroup`` file keeps, the pod's cgroup directory in
    each hierarchy, one per line (``destroy_recorded`` and ``nsrun exec`` read it)."""

    enabled: bool
    record: list[str]
    unenforced: list[str]

    @property
    def group(self) -> Group: ...
    def leaf(self, name: str, values: Mapping[str, str] | None = None) -> Group: ...
    def kill_leaf(self, name: str) -> None: ...
    def kill_all(self) -> None: ...
    def destroy(self) -> None: ...


class CgroupDriver(Protocol):
    """``create_pod`` makes a pod's cgroups and writes their values before any container
    starts (``values``: the pod's files, ``leaves``: container -> its files, in this
    driver's file names); ``destroy_recorded`` and ``group_of`` work from a pod's recorded
    cgroup directories (``PodCgroups.record``) when only the state dir is left."""

    name: str

    def create_pod(self, parent: str | None, uid: str, values: Mapping[str, str],
                   leaves: Mapping[str, Mapping[str, str]] | None = None, *,
                   qos: str | None = None, declared: bool = True,
                   warn: Callable[[str], None] | None = None) -> PodCgroups: ...
    def destroy_recorded(self, paths: list[Path]) -> None: ...
    def group_of(self, pid: int, paths: list[Path]) -> Group | None: ...


# ------------------------------------------------------------------ none


class NoGroup:
    """The ``none`` driver's group: nothing to start in, join, count or limit."""

    clone_fd = -1
    join_fds: tuple[int, ...] = ()

    def oom_kills(self) -> int:
        return 0

    def pids(self) -> list[int]:
        return []

    def adopt(self, pid: int) -> bool:
        return False

    def update(self, values: dict[str, str]) -> None:
        if values:
            raise PreflightError("no pod cgroup (--cgroups=none): nothing to update")

    def freeze(self) -> None:
        raise PreflightError("no pod cgroup (--cgroups=none): cannot freeze")

    def thaw(self) -> None:
        pass

    def frozen(self) -> bool:
        return False

    def set_devices(self, policy: Any) -> None:
        """No device cgroup: confinement does without it (no CAP_MKNOD, nodev)."""

    def kill(self) -> None:
        pass

    def close(self) -> None:
        pass


NO_GROUP = NoGroup()


class NoPod:
    """A pod without cgroups (``--cgroups=none``, or ``auto`` on a host without any)."""

    enabled = False
    record: list[str] = []
    unenforced: list[str] = []
    group = NO_GROUP

    def leaf(self, name: str, values: Mapping[str, str] | None = None) -> NoGroup:
        return NO_GROUP

    def kill_leaf(self, name: str) -> None:
        pass

    def kill_all(self) -> None:
        pass

    def destroy(self) -> None:
        pass


NO_POD = NoPod()


class NoCgroups:
    """The ``none`` driver. Chosen by ``auto``, it says in one line which of the pod's
    limits go unenforced."""

    name = NONE

    def __init__(self, host: CgroupHost | None = None, mode: str = NONE) -> None:
        self.host, self.mode = host, mode

    def create_pod(self, parent: str | None, uid: str, values: Mapping[str, str],
                   leaves: Mapping[str, Mapping[str, str]] | None = None, *,
                   qos: str | None = None, declared: bool = True,
                   warn: Callable[[str], None] | None = None) -> NoPod:
        if self.mode == AUTO and self.host is not None:
            message = preflight.without_cgroup(self.host, AUTO,
                                               preflight.needed(values, leaves or {}, declared))
            if message:
                (warn if warn is not None else _warn)(message)
        return NO_POD

    def destroy_recorded(self, paths: list[Path]) -> None:
        pass

    def group_of(self, pid: int, paths: list[Path]) -> Group | None:
        return None


# ------------------------------------------------------------------ the choice


# Said once when a pod gets no cgroup (bundle/hardening.py does what it says).
NO_DEVICE_CGROUP = "no device cgroup: containers get nodev mounts and no CAP_MKNOD"


def choose(mode: str, host: CgroupHost | None = None, fs: CgroupFs | None = None,
           say: Callable[[str], None] | None = None,
           default_parent: str = "nsrun") -> CgroupDriver:
    """The driver for ``--cgroups mode`` on ``host``; in ``auto`` a choice other than v2
    is said in one line (``say``, stderr by default). ``default_parent``: the parent's name
    when the pod names none (one per state root, ``netconfig.world_name``)."""
    host = host if host is not None else CgroupHost.probe()
    fs = fs if fs is not None else CgroupFs()
    if mode == NONE:
        (say if say is not None else _say)(f"cgroup driver none: {NO_DEVICE_CGROUP}")
        return NoCgroups(host, NONE)
    if mode == V2:
        return _v2(host, fs, V2, default_parent)
    if mode == V1:
        if not v1_hierarchies(host):
            raise PreflightError("--cgroups=v1: no cgroup v1 hierarchy is mounted (use "
                                 "--cgroups=v2 or --cgroups=none)")
        return _v1(host, V1, default_parent)
    kind, why = auto_kind(host, fs)
    if kind != V2:
        extra = f"; {NO_DEVICE_CGROUP}" if kind == NONE else ""
        (say if say is not None else _say)(f"cgroup driver {kind}: {why}{extra}")
    if kind == V1:
        return _v1(host, AUTO, default_parent)
    return _v2(host, fs, AUTO, default_parent) if kind == V2 else NoCgroups(host, AUTO)


def auto_kind(host: CgroupHost, fs: CgroupFs) -> tuple[str, str]:
    """What ``auto`` picks on ``host`` and why: (``v2``|``v1``|``none``, reason)."""
    v2_usable = host.mount is not None and not host.readonly
    v1 = v1_hierarchies(host)
    if v2_usable:
        try:
            at_root = fs.controllers(host.mount) if host.mount_root == "/" else LIMIT_CONTROLLERS
        except Exception:  # noqa: BLE001 - unreadable: take it as having them
            at_root = LIMIT_CONTROLLERS
        if at_root & LIMIT_CONTROLLERS or not v1:
            return V2, f"cgroup2 at {host.mount}"
        return V1, (f"hybrid host: cgroup2 at {host.mount} has no cpu, memory or pids "
                    f"controller, cgroup v1 holds {', '.join(v1)}")
    if v1:
        why = ("the cgroup2 mount is read-only" if host.mount is not None
               else "no cgroup2 hierarchy")
        return V1, f"{why}, cgroup v1 holds {', '.join(v1)}"
    return NONE, "no usable cgroup hierarchy"


def v1_hierarchies(host: CgroupHost) -> list[str]:
    """The v1 controllers nsrun uses that this host mounts."""
    return [c for c in V1_CONTROLLERS if c in host.v1]


def _v2(host: CgroupHost, fs: CgroupFs, mode: str, default_parent: str = "nsrun") -> CgroupDriver:
    from nsrun.host.podcgroup import V2Driver

    return V2Driver(host, fs, mode, default_parent=default_parent)


def _v1(host: CgroupHost, mode: str, default_parent: str = "nsrun") -> CgroupDriver:
    from nsrun.host.podcgroupv1 import V1Driver

    return V1Driver(host, mode=mode, default_parent=default_parent)


# ------------------------------------------------------------------ from the state dir


def _recorded_kind(line: str, host: CgroupHost) -> str | None:
    path = Path(line)
    if not path.is_absolute() or ".." in path.parts:
        return None
    if host.mount is not None and host.mount in path.parents:
        return V2
    if any(mount in path.parents for mount in host.v1.values()):
        return V1
    return None


def _by_driver(record: list[str], host: CgroupHost) -> list[tuple[CgroupDriver, list[Path]]]:
    """The recorded pod directories grouped by the driver that made them."""
    out = []
    for kind, make in ((V2, lambda: _v2(host, CgroupFs(), AUTO)), (V1, lambda: _v1(host, AUTO))):
        paths = [Path(line) for line in record if _recorded_kind(line, host) == kind]
        if paths:
            out.append((make(), paths))
    return out


def destroy_recorded(record: list[str], host: CgroupHost | None = None) -> None:
    """Kill and remove a pod's cgroups by what its state dir recorded (``nsrun delete``
    after the supervisor was killed)."""
    host = host if host is not None else CgroupHost.probe()
    for driver, paths in _by_driver(record, host):
        driver.destroy_recorded(paths)


def group_of(pid: int, record: list[str], host: CgroupHost | None = None) -> Group | None:
    """The cgroups of the running process ``pid`` of a pod whose state dir recorded
    ``record``, opened to start another process there (``nsrun exec``); None when it is
    in none of them."""
    host = host if host is not None else CgroupHost.probe()
    for driver, paths in _by_driver(record, host):
        return driver.group_of(pid, paths)
    return None


def proc_cgroups(pid: int) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` (see ``preflight.proc_cgroups``)."""
    return preflight.proc_cgroups(f"/proc/{pid}/cgroup")


def _say(message: str) -> None:
    print(f"nsrun: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"nsrun: warning: {message}", file=sys.stderr)
