"""Fixtures of the exec tests: the busybox rootfs with the applets they use, a sandbox
with the pod's hostname, containers stopped after each test, and a confined container in its
own cgroup leaf."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsrun.host import nsfds

from .execkit import EXTRA_APPLETS, HOSTNAME, Container, confinement


@pytest.fixture
def rootfs(busybox_rootfs: Path) -> Path:
    for applet in EXTRA_APPLETS:
        (busybox_rootfs / "bin" / applet).symlink_to("busybox")
    (busybox_rootfs / "only").mkdir()
    return busybox_rootfs


@pytest.fixture
def sandbox() -> Iterator[dict[str, int]]:
    fds = nsfds.create_sandbox(HOSTNAME)
    try:
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


@pytest.fixture
def containers() -> Iterator[list[Container]]:
    """Containers to stop after the test, whatever happens."""
    items: list[Container] = []
    yield items
    for c in items:
        try:
            if c.pidfd >= 0:
                signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
            c.stop()
        except OSError:
            pass


@pytest.fixture
def confined(rootfs: Path, sandbox: dict[str, int], cgroup_leaf: Path,
             containers: list[Container]) -> Iterator[tuple[Container, int]]:
    """A confined container in its own cgroup leaf; (container, leaf dirfd)."""
    fd = os.open(cgroup_leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        c = Container(rootfs, sandbox, cgroup_fd=fd, **confinement())
        containers.append(c)
        yield c, fd
        assert c.stop() == 0
    finally:
        os.close(fd)
