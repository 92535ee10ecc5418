"""Cgroup preflight: what this host's cgroup hierarchy can enforce, decided before anything
is created, and the ``--cgroups`` modes.

* ``auto`` (default): cgroup v2 with whatever controllers the pod's parent cgroup can get.
  When some of the pod's limits cannot be enforced it says so once, in one line (a hybrid
  host has cpu, memory and pids on cgroup v1). On a cgroup v1-only host (no cgroup2 mount)
  or a read-only cgroup2 mount the pod runs without a pod cgroup.
* ``v2``: the same, but a pod whose limits cannot all be enforced is refused before anything
  is created, naming the missing controllers and the cgroup2 mount (exit code 3).
* ``v1``: the cgroup v1 hierarchies (``podcgroupv1``); ``none``: no pod cgroup at all (no
  grouping, no limits); nothing here runs for them. ``cgroupdriver.choose`` picks the driver.

Nothing in this module writes to cgroupfs; ``CgroupHost.probe`` reads ``/proc/self/mountinfo``
and ``/proc/self/cgroup`` (both injectable), and availability is read from the deepest
existing cgroup on the pod's path (controllers there are exactly what nsrun can enable below
it), through the ``cgroupfs.CgroupFs`` the caller passes. It also holds the delegation
helpers: whether nsrun's own cgroup is a delegated systemd unit (the ``systemd-run``
command ``nsrun run --systemd`` runs is ``nsrun.runtime.systemd``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from nsrun.errors import PreflightError
from nsrun.host import cgroupfs
from nsrun.host.cgroupfs import CgroupFs
from nsrun.host.mountinfo import read as mountinfo_lines

AUTO, V2, V1, NONE = "auto", "v2", "v1", "none"
MODES = (AUTO, V2, V1, NONE)

# The leaf nsrun moves its own processes into when it works inside its own cgroup.
SUPERVISOR_LEAF = "nsrun-supervisor"
# The v1 hierarchies the v1 driver uses (runc's set for a container, minus cpuset/blkio).
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "freezer", "devices")
DELEGATE_XATTRS = ("trusted.delegate", "user.delegate")
# Cgroups systemd owns: nsrun never removes them, even when empty.
SYSTEMD_UNIT_SUFFIXES = (".slice", ".scope", ".service", ".socket", ".mount", ".swap")


class CgroupHost(NamedTuple):
    """The cgroup layout nsrun runs on.

    ``mount``: the cgroup2 mount point (None on a v1-only host); ``mount_root``: which cgroup
    it shows (``/`` unless bind-mounted from below); ``readonly``; ``v1``: controller -> v1
    mount point (a hybrid or legacy host); ``own``: nsrun's own cgroup v2 path from
    ``/proc/self/cgroup`` (``/system.slice/x.scope``), None when unknown; ``v1_root``:
    controller -> which cgroup its mount shows; ``v1_own``: controller -> nsrun's own cgroup
    in that hierarchy (``/process_api/x``)."""

    mount: Path | None
    mount_root: str = "/"
    readonly: bool = False
    v1: dict[str, Path] = {}  # a NamedTuple: shared defaults, never changed in place
    own: str | None = None
    v1_root: dict[str, str] = {}
    v1_own: dict[str, str] = {}

    @classmethod
    def probe(cls, mountinfo: str = "/proc/self/mountinfo",
              proc_cgroup: str = "/proc/self/cgroup") -> CgroupHost:
        mount, mount_root, readonly, v1, v1_root = None, "/", False, {}, {}
        for m in mountinfo_lines(mountinfo):
            if m.fstype == "cgroup2" and mount is None:
                mount, mount_root, readonly = Path(m.point), m.root, "ro" in m.options
            elif m.fstype == "cgroup":
                for opt in m.super_options:
                    if opt not in ("rw", "ro") and "=" not in opt and opt not in v1:
                        v1[opt], v1_root[opt] = Path(m.point), m.root
        own, v1_own = _own_cgroups(proc_cgroup)
        return cls(mount, mount_root, readonly, v1, own, v1_root, v1_own)

    @property
    def layout(self) -> str:
        """``unified`` (cgroup v2 only), ``hybrid``, ``legacy`` (v1 only) or ``none``."""
        if self.mount is None:
            return "legacy" if self.v1 else "none"
        return "hybrid" if self.v1 else "unified"

    def own_cgroup(self) -> Path | None:
        """nsrun's own cgroup as a directory under the mount, when it is visible there."""
        if self.mount is None or self.own is None:
            return None
        return below(self.mount, self.mount_root, self.own)

    def on_v1(self, names: list[str]) -> str:
        """``cpu at /sys/fs/cgroup/cpu, memory at …`` for the named controllers bound to v1."""
        return ", ".join(f"{c} at {self.v1[c]}" for c in names if c in self.v1)


    def v1_own_cgroup(self, controller: str) -> Path | None:
        """nsrun's own cgroup in ``controller``'s v1 hierarchy, as a directory, when its
        mount shows it."""
        if controller not in self.v1 or controller not in self.v1_own:
            return None
        return below(self.v1[controller], self.v1_root.get(controller, "/"),
                      self.v1_own[controller])


def below(mount: Path, mount_root: str, own: str) -> Path | None:
    """The directory of the cgroup ``own`` (a /proc/<pid>/cgroup path) under a mount that
    shows ``mount_root``; None when the mount does not show it."""
    root = mount_root.rstrip("/")
    if root and not (own == root or own.startswith(root + "/")):
        return None
    rel = own[len(root):].strip("/")
    return mount / rel if rel else mount


def proc_cgroups(proc_cgroup: str) -> dict[str, str]:
    """A ``/proc/<pid>/cgroup`` file as ``{"": cgroup v2 path, controller: v1 path}``
    (``{}`` when unreadable; named hierarchies such as ``name=systemd`` left out)."""
    try:
        with open(proc_cgroup) as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        path = path.removesuffix(" (deleted)")
        if hid == "0" and controllers == "":
            out[""] = path
        for c in controllers.split(","):
            if c and "=" not in c:
                out[c] = path
    return out


def _own_cgroups(proc_cgroup: str) -> tuple[str | None, dict[str, str]]:
    """(the cgroup v2 path, controller -> v1 path) from ``/proc/self/cgroup``."""
    found = proc_cgroups(proc_cgroup)
    return found.pop("", None), found


# ------------------------------------------------------------------ what the pod needs


# v2 and v1 files that never enforce a limit by themselves, and the cpu request files.
_NOT_LIMITS = (cgroupfs.MEMORY_OOM_GROUP, "cpu.cfs_period_us")
_CPU_REQUEST = (cgroupfs.CPU_WEIGHT, "cpu.shares")


def is_limit(name: str, value: str, declared: bool) -> bool:
    """Whether writing ``value`` to ``name`` enforces something the pod asked for:
    ``max`` (v2) and ``-1`` (v1) values are the kernel's defaults, and a BestEffort pod's
    cpu.weight (cpu.shares) is not a request (``declared`` False)."""
    if value.strip().startswith("max") or value.strip() == "-1":
        return False
    if name in _CPU_REQUEST and not declared:
        return False
    return name not in _NOT_LIMITS


def needed(values: Mapping[str, str], leaves: Mapping[str, Mapping[str, str]],
           declared: bool) -> dict[str, list[str]]:
    """controller -> the limit files (pod and container leaves) that need it."""
    out: dict[str, list[str]] = {}
    for vals in (values, *leaves.values()):
        for name, value in vals.items():
            if is_limit(name, value, declared):
                files = out.setdefault(cgroupfs.controller_of(name), [])
                if name not in files:
                    files.append(name)
    return out


def _files(need: dict[str, list[str]], missing: list[str]) -> list[str]:
    files: list[str] = []
    for c in missing:
        files += [f for f in need.get(c, []) if f not in files]
    return files


def _join(items: list[str]) -> str:
    return ", ".join(items)


# ------------------------------------------------------------------ the verdicts


def without_cgroup(host: CgroupHost, mode: str, need: dict[str, list[str]]) -> str | None:
    """No usable cgroup2 hierarchy (v1-only host, read-only mount). ``v2`` refuses;
    ``auto`` runs without a pod cgroup: returns the one-line warning (None when the pod has
    no limits to lose)."""
    if host.mount is None:
        why = "no cgroup2 hierarchy is mounted"
        if host.v1:
            why += f" (cgroup v1 only: {host.on_v1(sorted(host.v1)) or 'v1 hierarchies'})"
    else:
        why = f"the cgroup2 mount {host.mount} is read-only"
    if mode == V2:
        raise PreflightError(f"--cgroups=v2: {why} (use --cgroups=auto or --cgroups=none "
                             "to run without a pod cgroup)")
    files = _files(need, sorted(need))
    if not files:
        return None
    return f"{why}: running without a pod cgroup, this pod's {_join(files)} " \
           f"{'is' if len(files) == 1 else 'are'} not enforced"


def anchor_of(pod_path: Path, mount: Path) -> Path:
    """The deepest existing cgroup on the way from the mount to ``pod_path`` (exclusive):
    nsrun creates everything below it, and can enable there what it has."""
    current = mount
    for part in pod_path.relative_to(mount).parts[:-1]:
        nxt = current / part
        if not nxt.is_dir():
            break
        current = nxt
    return current


def check(host: CgroupHost, mode: str, need: dict[str, list[str]], available: set[str],
          anchor: Path, fs: CgroupFs) -> str | None:
    """The controllers the pod's limits need against those ``anchor`` offers. ``v2`` raises
    ``PreflightError`` naming what is missing and the mount; ``auto`` returns the one-line
    warning (or None)."""
    missing = sorted(set(need) - available)
    if not missing:
        return None
    assert host.mount is not None
    files = _files(need, missing)
    why = _why_missing(host, missing, anchor, fs)
    verb = "is" if len(files) == 1 else "are"
    if mode == V2:
        raise PreflightError(f"--cgroups=v2: {why}: this pod's {_join(files)} cannot be "
                             "enforced (use --cgroups=auto to run it without them)")
    return f"{why}: this pod's {_join(files)} {verb} not enforced"


def _why_missing(host: CgroupHost, missing: list[str], anchor: Path, fs: CgroupFs) -> str:
    assert host.mount is not None
    try:
        at_root = fs.controllers(host.mount) if host.mount_root == "/" else set()
    except Exception:  # noqa: BLE001 - unreadable root: say what we know
        at_root = set()
    absent = [c for c in missing if c not in at_root]
    undelegated = [c for c in missing if c in at_root]
    parts = []
    if absent:
        s = "" if len(absent) == 1 else "s"
        text = f"cgroup v2 at {host.mount} has no {_join(absent)} controller{s}"
        v1 = host.on_v1(absent)
        if v1:
            text += f" (hybrid host, cgroup v1 holds {v1})"
        parts.append(text)
    if undelegated:
        verb = "is" if len(undelegated) == 1 else "are"
        parts.append(f"{_join(undelegated)} {verb} not enabled for {anchor} (its parent's "
                     f"cgroup.subtree_control lacks {'it' if verb == 'is' else 'them'})")
    return "; ".join(parts)


# ------------------------------------------------------------------ delegation


def delegated(path: Path, fs: CgroupFs) -> bool:
    """Whether systemd delegated ``path`` (``Delegate=yes`` sets these xattrs, systemd
    ≥ 251)."""
    return fs.delegated(path, DELEGATE_XATTRS)


def base_of(own: Path) -> Path:
    """nsrun's home cgroup: its own, or the parent of the supervisor leaf it moved into."""
    return own.parent if own.name == SUPERVISOR_LEAF else own


def delegated_home(host: CgroupHost, fs: CgroupFs, proc: str = "/proc") -> Path | None:
    """The cgroup nsrun should put pods in by default when it was launched in a delegated
    systemd unit made for it: a ``Delegate=yes`` scope (``systemd-run --scope -p
    Delegate=yes nsrun run …``), or a delegated service whose processes are all this very
    command (``systemd-run -p Delegate=yes --unit nsrun-<pod> nsrun run …``). A delegated
    service that runs other things (a CI runner, a test harness) is not taken over."""
    own = host.own_cgroup()
    if own is None or own == host.mount:
        return None
    base = base_of(own)
    if base == host.mount or not delegated(base, fs):
        return None
    if base.name.endswith(".scope") or only_this_command(own, fs, proc):
        return base
    return None


def only_this_command(cgroup: Path, fs: CgroupFs, proc: str = "/proc") -> bool:
    """Every process in ``cgroup`` runs this process's command line (the foreground nsrun,
    its detached supervisor) or is on its way out."""
    mine = _cmdline(f"{proc}/self/cmdline")
    try:
        pids = fs.procs(cgroup)
    except Exception:  # noqa: BLE001 - unreadable: not ours to take over
        return False
    for pid in pids:
        theirs = _cmdline(f"{proc}/{pid}/cmdline")
        if theirs and theirs != mine:
            return False
    return True


def _cmdline(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def may_prune(path: Path, host: CgroupHost, fs: CgroupFs) -> bool:
    """Whether nsrun may rmdir the (empty) cgroup ``path`` it worked under: never the mount
    root, nsrun's own cgroup or one above it, a systemd unit, a delegated cgroup or the
    supervisor leaf."""
    if host.mount is None or path == host.mount or host.mount not in path.parents:
        return False
    own = host.own_cgroup()
    if own is not None and (path == own or path in own.parents):
        return False
    if path.name.endswith(SYSTEMD_UNIT_SUFFIXES) or path.name == SUPERVISOR_LEAF:
        return False
    return not delegated(path, fs)
