"""Which processes hold a directory open, found through ``/proc/<pid>/fd`` (``recover``
finds a container's monitor that has not written its start record yet by the descriptor
it holds on the container's record directory: it needs no cgroup, so ``--cgroups none``
is covered as well)."""

from __future__ import annotations

import os


def holders(directory: str | os.PathLike) -> dict[int, int]:
    """Every other process with a descriptor open on ``directory``: pid -> its start time
    (clock ticks after boot, as the monitors record it). Empty when it does not exist."""
    try:
        st = os.stat(directory)
    except OSError:
        return {}
    key = (st.st_dev, st.st_ino)
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != os.getpid() and _holds(entry.name, key):
            ticks = start_ticks(int(entry.name))
            if ticks is not None:
                found[int(entry.name)] = ticks
    return found


def _holds(pid: str, key: tuple[int, int]) -> bool:
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False  # gone, or a kernel thread
    for fd in fds:
        try:
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == key:
            return True
    return False


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks after boot (field 22 of its ``stat``)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
