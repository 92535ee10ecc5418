"""Removing a pod's host objects from what can still be read, and naming what is left.

``nsrun delete`` calls ``clean`` once the pod's supervisor is gone (stopped by the delete,
finished on its own, or killed halfway through its teardown). It works only from the state
directory and the host: the cgroups the pod recorded (their processes are killed through the
cgroup), the mounts below the state directory (the pod's ``/dev/shm`` tmpfs, volumes) and the
network record. The state directory is removed last and only when nothing else is left, so a
second ``delete`` still finds the records it needs to finish the job.
"""

from __future__ import annotations

import os
from pathlib import Path

from nsrun.errors import NsrunError
from nsrun.state import PodPaths, remove_pod


class Leftovers(NsrunError):
    """``delete`` could not remove everything of the pod (a host operation failed: exit 5,
    ``NsrunError``'s code)."""

    def __init__(self, name: str, left: list[str]) -> None:
        self.left = left
        super().__init__(f'pod "{name}" was stopped but is not fully deleted; left: '
                         f"{', '.join(left)} (run delete again to retry)")


def clean(root: Path, paths: PodPaths) -> list[str]:
    """Kill and remove everything of the pod; what is left, named (empty: all is gone)."""
    cgroups = recorded_cgroups(paths)
    _destroy_cgroups(cgroups)
    _unmount_below(paths.dir)
    _release_network(root, paths)
    left = _host_leftovers(paths, cgroups)
    if not left:
        remove_pod(paths)  # and its log directory
        if paths.dir.exists():
            left.append(f"state directory {paths.dir}")
    return left


def recorded_cgroups(paths: PodPaths) -> list[str]:
    """The cgroup directories the pod recorded (none when unreadable or not made; a corrupt
    record is named and its bad lines ignored)."""
    from nsrun.report.stateread import cgroup_record

    return cgroup_record(paths)


def _destroy_cgroups(record: list[str]) -> None:
    from nsrun.errors import CgroupError
    from nsrun.host import cgroupdriver

    if not record:
        return
    try:
        cgroupdriver.destroy_recorded(record)
    except (CgroupError, OSError):
        pass  # named by _host_leftovers


def mounts_below(directory: Path) -> list[str]:
    """Mount points below ``directory``, deepest first."""
    from nsrun.host import mountinfo

    prefix = str(directory.resolve()) + "/"
    return sorted((m.point for m in mountinfo.read() if m.point.startswith(prefix)),
                  reverse=True)


def _unmount_below(directory: Path) -> None:
    from nsrun.errors import SandboxError
    from nsrun.host import mounts

    for target in mounts_below(directory):
        try:
            mounts.umount(target)
        except SandboxError:
            pass  # named by _host_leftovers


def _release_network(root: Path, paths: PodPaths) -> None:
    from nsrun.runtime.podnetwork import cleanup_after_crash

    try:
        cleanup_after_crash(root, paths)
    except (OSError, ValueError):
        pass


def _host_leftovers(paths: PodPaths, cgroups: list[str]) -> list[str]:
    left = [f"mount {t}" for t in mounts_below(paths.dir)]
    return left + [f"cgroup {c}" for c in cgroups if os.path.isdir(c)]
