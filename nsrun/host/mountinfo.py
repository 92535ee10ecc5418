"""The one reader of ``/proc/self/mountinfo``: each mount as a ``Mount``, paths unescaped.

Used for the cgroup hierarchies (``preflight.CgroupHost``, ``cgroupfs.find_cgroup2_mount``)
and for the mounts left below a pod's state dir. A line the kernel would not write is
skipped; an unreadable file is no mounts. Plain named tuples: ``nsrun-oci delete`` reaches
this module through the cgroup driver, and msgspec would cost it a fifth of its start.
"""

from __future__ import annotations

from typing import NamedTuple

PATH = "/proc/self/mountinfo"


class Mount(NamedTuple):
    """One line: ``root`` (the mounted directory inside its filesystem), ``point``,
    ``options`` (per mount), ``fstype``, ``source``, ``super_options`` (per superblock)."""

    root: str
    point: str
    options: tuple[str, ...]
    fstype: str
    source: str = ""
    super_options: tuple[str, ...] = ()


def parse(text: str) -> list[Mount]:
    """Every well-formed line of a mountinfo file."""
    out = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 6 or not rest:
            continue
        out.append(Mount(unescape(fields[3]), unescape(fields[4]),
                         tuple(fields[5].split(",")), rest[0],
                         unescape(rest[1]) if len(rest) > 1 else "",
                         tuple(rest[2].split(",")) if len(rest) > 2 else ()))
    return out


def read(path: str = PATH) -> list[Mount]:
    try:
        with open(path) as f:
            return parse(f.read())
    except OSError:
        return []


def unescape(field: str) -> str:
    """A mountinfo path field: ``\\040`` and friends back to characters."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit() and i + 4 <= len(field):
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
