"""OCI ``mounts`` entries (and ``linux.rootfsPropagation``) read into what the C child
mounts: the option words (``ro``, ``nosuid``, ``rbind``, ``rslave``, ...) as the kernel's
``MS_*`` flags, read from the extension (:mod:`nsrun.native`), a bind's source made
absolute, nsrun's ``subPath`` key checked. Options runc and crun add beyond mount(8)'s words
and this runtime does not implement are refused, not passed to the kernel as data.
Used by ``bundle/oci.py`` (the launch request) and ``bundle/security.py`` (rootfs
propagation); ``nsrun-oci features`` lists the options.
"""

from __future__ import annotations

import functools
import os

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any

    from nsrun.request import MountSpec


# runc/crun extensions this runtime does not implement: refused rather than passed as data.
UNSUPPORTED_OPTIONS = frozenset({
    "remount", "tmpcopyup", "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec",
    "rexec", "rnoatime", "ratime", "rrelatime", "rnorelatime", "rstrictatime",
    "rnostrictatime", "idmap", "ridmap", "copy-symlink", "nosymfollow", "rnosymfollow",
})


@functools.cache
def mount_flags() -> dict[str, tuple[int, int]]:
    """OCI mount options that are ``MS_*`` flags: option -> (flags set, flags cleared)."""
    from nsrun import native as n

    return {
        "defaults": (0, 0),
        "ro": (n.MS_RDONLY, 0), "rw": (0, n.MS_RDONLY),
        "nosuid": (n.MS_NOSUID, 0), "suid": (0, n.MS_NOSUID),
        "nodev": (n.MS_NODEV, 0), "dev": (0, n.MS_NODEV),
        "noexec": (n.MS_NOEXEC, 0), "exec": (0, n.MS_NOEXEC),
        "sync": (n.MS_SYNCHRONOUS, 0), "async": (0, n.MS_SYNCHRONOUS),
        "dirsync": (n.MS_DIRSYNC, 0),
        "mand": (n.MS_MANDLOCK, 0), "nomand": (0, n.MS_MANDLOCK),
        "noatime": (n.MS_NOATIME, 0), "atime": (0, n.MS_NOATIME),
        "nodiratime": (n.MS_NODIRATIME, 0), "diratime": (0, n.MS_NODIRATIME),
        "relatime": (n.MS_RELATIME, 0), "norelatime": (0, n.MS_RELATIME),
        "strictatime": (n.MS_STRICTATIME, 0), "nostrictatime": (0, n.MS_STRICTATIME),
        "lazytime": (n.MS_LAZYTIME, 0), "nolazytime": (0, n.MS_LAZYTIME),
        "bind": (n.MS_BIND, 0), "rbind": (n.MS_BIND | n.MS_REC, 0),
    }


@functools.cache
def propagation_flags() -> dict[str, int]:
    """OCI propagation options (of a mount, and ``linux.rootfsPropagation``) as ``MS_*``."""
    from nsrun import native as n

    return {
        "private": n.MS_PRIVATE, "rprivate": n.MS_PRIVATE | n.MS_REC,
        "slave": n.MS_SLAVE, "rslave": n.MS_SLAVE | n.MS_REC,
        "shared": n.MS_SHARED, "rshared": n.MS_SHARED | n.MS_REC,
        "unbindable": n.MS_UNBINDABLE, "runbindable": n.MS_UNBINDABLE | n.MS_REC,
    }


def parse_mount_options(dest: str, options: list[str]) -> tuple[int, int, str]:
    """``(flags, propagation, data)`` of a mount's OCI ``options``; ``ValueError`` for an
    option this runtime does not implement."""
    flags, propagation, data = 0, 0, []
    table, propagations = mount_flags(), propagation_flags()
    for opt in options:
        if opt in table:
            set_, clear = table[opt]
            flags = (flags | set_) & ~clear
        elif opt in propagations:
            propagation = propagations[opt]
        elif opt in UNSUPPORTED_OPTIONS:
            raise ValueError(f"mount {dest}: option {opt!r} is not supported")
        elif opt:
            data.append(opt)
    return flags, propagation, ",".join(data)


def _mount_fields(m: Any) -> tuple[str, str, str, list[str]]:
    """(destination, type, source, options) of an OCI mount entry, their types checked."""
    if not isinstance(m, dict):
        raise ValueError(f"mount entry must be an object, not {type(m).__name__}")
    dest = m.get("destination")
    if not isinstance(dest, str) or not dest.startswith("/"):
        raise ValueError(f"mount destination must be an absolute path, not {dest!r}")
    fstype, source, options = m.get("type", ""), m.get("source", ""), m.get("options", [])
    if not isinstance(fstype, str) or not isinstance(source, str):
        raise ValueError(f"mount {dest}: type and source must be strings")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ValueError(f"mount {dest}: options must be a list of strings")
    return dest, fstype, source, options


def mount_from_oci(m: dict[str, Any], *, bundle: str | None = None) -> MountSpec:
    """The :class:`~nsrun.request.MountSpec` of an OCI ``config.json`` ``mounts`` entry
    (``ValueError`` naming what is wrong). ``bundle`` resolves a relative bind source
    (relative to the bundle directory, as the spec says)."""
    from nsrun import native as n
    from nsrun.request import SUB_PATH_KEY, MountSpec

    dest, fstype, source, options = _mount_fields(m)
    flags, propagation, data = parse_mount_options(dest, options)
    if fstype == "bind":
        flags |= n.MS_BIND
    if flags & n.MS_BIND:
        if data:
            raise ValueError(f"mount {dest}: unknown bind mount option {data.split(',')[0]!r}")
        if not source:
            raise ValueError(f"mount {dest}: a bind mount needs a source")
        if bundle and not source.startswith("/"):
            source = os.path.join(bundle, source)
        fstype = ""
    elif not fstype or fstype == "none":
        raise ValueError(f"mount {dest}: a type is needed (or a bind/rbind option)")
    sub_path = m.get(SUB_PATH_KEY, "")
    if not isinstance(sub_path, str) or (sub_path and not flags & n.MS_BIND):
        raise ValueError(f"mount {dest}: {SUB_PATH_KEY} must be a string, for a bind")
    return MountSpec(target=dest, source=source, fstype=fstype, flags=flags, data=data,
                     propagation=propagation, sub_path=sub_path)
