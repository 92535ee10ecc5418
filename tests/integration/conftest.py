"""Fixtures shared by the integration tests (root, real kernel objects)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "cat", "ls", "hostname", "id", "mount", "true", "false", "sleep",
                   "ip", "touch", "echo", "pwd", "test", "head", "env", "grep")
ROOTFS_DIRS = ("proc", "dev", "sys", "tmp", "etc")


@pytest.fixture
def busybox_rootfs(tmp_path: Path) -> Path:
    """A minimal rootfs in ``tmp_path/rootfs``: a private copy of the static busybox (never
    a hardlink: a container with a writable root could change the host's binary), applet
    symlinks in /bin, and empty proc dev sys tmp etc."""
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"{BUSYBOX} missing: apt-get install busybox-static")
    root = tmp_path / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in BUSYBOX_APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    for d in ROOTFS_DIRS:
        (root / d).mkdir()
    (root / "tmp").chmod(0o1777)
    return root
