"""What the tests of the C spawn path share: the mounts a container gets, a container run to
its end (:func:`run`) or held alive on a pipe (:class:`Held`; the ``held`` fixture of
conftest.py releases them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nsrun import native
from nsrun.host.spawn import spawn
from nsrun.request import MountSpec, SpawnRequest

from world import wait

IS_ROOT = os.geteuid() == 0


def needs_root(fn):
    """``pytest.mark.root``, skipped unless root (namespaces, mounts, cgroups)."""
    skip = pytest.mark.skipif(not IS_ROOT, reason="needs root: namespaces, mounts, cgroups")
    return pytest.mark.root(skip(fn))


PROC = MountSpec("/proc", "proc", "proc", native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
DEV = MountSpec("/dev", "tmpfs", "tmpfs", native.MS_NOSUID | native.MS_STRICTATIME,
                "mode=755,size=65536k")
PTS = MountSpec("/dev/pts", "devpts", "devpts", native.MS_NOSUID | native.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620")
SYS = MountSpec("/sys", "sysfs", "sysfs",
                native.MS_RDONLY | native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
BASE_MOUNTS = (PROC, DEV, PTS, SYS)
CLONE_MODES = (native.NSR_CLONE_AUTO, native.NSR_CLONE_FORK, native.NSR_CLONE_FALLBACK)


def run(rootfs: Path, argv: list[str], log: Path | None = None, clone_mode: int | None = None,
        **kw) -> tuple[int, str]:
    """Spawn (by ``clone_mode``), wait, and return (exit code, stdout+stderr)."""
    log = log or rootfs.parent / "out.log"
    kw.setdefault("mounts", BASE_MOUNTS)
    kw.setdefault("env", ["PATH=/bin"])
    with open(log, "w+b") as out:
        pid, pidfd = spawn(SpawnRequest(argv=argv, rootfs=str(rootfs), stdout_fd=out.fileno(),
                                        stderr_fd=out.fileno(), **kw), clone_mode=clone_mode)
        code = wait(pidfd)
        out.seek(0)
        return code, out.read().decode()


class Held:
    """A container kept alive by ``cat`` on a pipe: inspect it from the host, then release."""

    def __init__(self, rootfs: Path, clone_mode: int | None = None, **kw) -> None:
        r, self.w = os.pipe()
        kw.setdefault("mounts", BASE_MOUNTS)
        try:
            self.pid, self.pidfd = spawn(SpawnRequest(
                argv=["cat"], env=["PATH=/bin"], rootfs=str(rootfs), stdin_fd=r, **kw),
                clone_mode=clone_mode)
        except BaseException:
            os.close(self.w)
            raise
        finally:
            os.close(r)

    def release(self) -> int:
        os.close(self.w)
        return wait(self.pidfd)
