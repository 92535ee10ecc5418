"""What this host (and nsrun's own process) can grant a container, read once: the
capabilities nsrun holds, its rlimits and ``fs.nr_open``, its ``oom_score_adj``, which LSMs
are on, and the host's device nodes for a privileged container. :class:`HostFacts` is
injected into ``security.confine`` (tests pass their own).
"""

from __future__ import annotations

import functools
import os
import resource
import stat

import msgspec

from nsrun import native
from nsrun.request import Device

RLIMITS = {name: getattr(resource, name) for name in (
    "RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE", "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE", "RLIMIT_NPROC",
    "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
) if hasattr(resource, name)}
RLIMITS.setdefault("RLIMIT_LOCKS", 10)  # not exported by Python's resource module

# Host /dev entries a privileged container does not get as device nodes (containerd's list).
_HOST_DEV_SKIP = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev",
                            "console"})


class HostFacts(msgspec.Struct, frozen=True):
    """What this host (and nsrun's own process) can grant; injectable for tests."""

    capabilities: int             # capabilities nsrun can hand out (its bounding ∩ permitted)
    sys_resource: bool            # CAP_SYS_RESOURCE effective: may raise hard rlimits
    rlimits: dict[int, tuple[int, int]]  # resource -> (soft, hard) of nsrun's process
    nr_open: int                  # fs.nr_open: the ceiling of RLIMIT_NOFILE, even for root
    oom_score_adj: int
    apparmor: bool
    selinux: bool
    # the host's device nodes (a privileged container gets them); None: read /dev when needed
    devices: tuple[Device, ...] | None = None

    @classmethod
    def probe(cls) -> HostFacts:
        return _probe()

    def host_devices(self) -> tuple[Device, ...]:
        """:attr:`devices`, or those of the host's /dev."""
        return host_devices() if self.devices is None else self.devices


def _status_mask(status: str, key: str) -> int:
    for line in status.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1], 16)
    return 0


def _read(path: str, default: str = "") -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _limit(value: int) -> int:
    return native.RLIM_INFINITY if value == resource.RLIM_INFINITY else value


@functools.cache
def _probe() -> HostFacts:
    status = _read("/proc/self/status")
    eff = _status_mask(status, "CapEff")
    limits = {}
    for number in RLIMITS.values():
        try:
            soft, hard = resource.getrlimit(number)
        except (ValueError, OSError):
            continue
        limits[number] = (_limit(soft), _limit(hard))
    return HostFacts(
        capabilities=_status_mask(status, "CapBnd") & _status_mask(status, "CapPrm"),
        sys_resource=bool(eff >> native.CAP_SYS_RESOURCE & 1),
        rlimits=limits,
        nr_open=int(_read("/proc/sys/fs/nr_open", "1048576") or 1048576),
        oom_score_adj=int(_read("/proc/self/oom_score_adj", "0") or 0),
        apparmor=_read("/sys/module/apparmor/parameters/enabled") == "Y",
        selinux=os.path.exists("/sys/fs/selinux/enforce"),
    )


def host_devices(root: str = "/dev") -> tuple[Device, ...]:
    """Every character and block device under the host's /dev (for a privileged container),
    with its owner and mode; /dev/pts, /dev/shm and the like are left out."""
    out: list[Device] = []

    def walk(path: str, rel: str) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError:
            return
        for entry in entries:
            if entry.name in _HOST_DEV_SKIP:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                walk(entry.path, f"{rel}/{entry.name}")
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append(Device(f"/dev{rel}/{entry.name}",
                                  "c" if stat.S_ISCHR(st.st_mode) else "b",
                                  os.major(st.st_rdev), os.minor(st.st_rdev),
                                  stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))

    walk(root, "")
    return tuple(out)
