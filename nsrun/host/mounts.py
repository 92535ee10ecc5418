"""Mounts and paths the supervisor handles itself, on the host side (a container's own
mounts are made by its child, ``host/spawn.py``): a tmpfs on a volume directory, detaching a
mount, and paths inside a root that never lead out of it (``openat2(RESOLVE_IN_ROOT)`` in C,
and the same rule in Python for what needs no fd)."""

from __future__ import annotations

import errno
import os

from nsrun import native
from nsrun.errors import SandboxError


def mount_tmpfs(target: str, data: str = "") -> None:
    """Mount a tmpfs on a host directory (``emptyDir`` with ``medium: Memory``)."""
    mod = native.ext()
    rc = mod.lib.mount(b"tmpfs", os.fsencode(target), b"tmpfs",
                       native.MS_NOSUID | native.MS_NODEV,
                       os.fsencode(data) if data else mod.ffi.NULL)
    if rc < 0:
        raise SandboxError("mount tmpfs on", target, mod.ffi.errno, data)


def umount(target: str) -> None:
    """Detach the mount on ``target``; a path that is no mount point (any more) is fine."""
    mod = native.ext()
    if mod.lib.umount2(os.fsencode(target), mod.lib.MNT_DETACH) < 0:
        err = mod.ffi.errno
        if err not in (errno.EINVAL, errno.ENOENT):  # not a mount point (any more), gone
            raise SandboxError("unmount", target, err)


def open_in_root(root: str | int, path: str, create: str = "") -> int:
    """An ``O_PATH|O_CLOEXEC`` fd of ``path`` inside ``root`` (a directory path or fd),
    resolved by the kernel as if ``root`` were ``/`` (``openat2(RESOLVE_IN_ROOT)``): no
    symlink or ``..`` leads out of it. ``create`` ``"dir"`` or ``"file"`` makes what is
    missing (directories, the last one a directory or an empty file). ``OSError`` otherwise."""
    mod = native.ext()
    mode = {"": mod.lib.NSR_CREATE_NONE, "dir": mod.lib.NSR_CREATE_DIR,
            "file": mod.lib.NSR_CREATE_FILE}[create]
    rootfd = root if isinstance(root, int) else os.open(
        root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = mod.lib.nsr_open_in_root(rootfd, os.fsencode(path), mode)
        if fd < 0:
            err = mod.ffi.errno
            raise OSError(err, os.strerror(err), f"{path} in {root}")
        return fd
    finally:
        if not isinstance(root, int):
            os.close(rootfd)


def resolve_in_root(root: str, path: str) -> str:
    """``root`` joined with ``path`` as if ``root`` were ``/``: symlinks are followed but
    never out of ``root`` (like filepath-securejoin); missing parts are kept as written."""
    root = root.rstrip("/")
    todo = [p for p in reversed(path.split("/")) if p and p != "."]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            continue
        try:
            link = os.readlink(root + "/" + "/".join(done + [part]))
        except OSError:  # not a symlink, or not there (yet)
            done.append(part)
            continue
        links += 1
        if links > 40:
            raise ValueError(f"too many levels of symbolic links in {path!r} under {root}")
        if link.startswith("/"):
            done = []
        todo.extend(p for p in reversed(link.split("/")) if p and p != ".")
    return root + "/" + "/".join(done)
