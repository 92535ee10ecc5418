"""Fixtures shared by the integration tests (root, real kernel objects)."""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"
BUSYBOX_APPLETS = ("sh", "cat", "ls", "hostname", "id", "mount", "true", "false", "sleep",
                   "ip", "touch", "echo", "pwd", "test", "head", "env", "grep")
ROOTFS_DIRS = ("proc", "dev", "sys", "tmp", "etc")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``pytest.mark.root(WHAT)`` (a module's ``pytestmark``): skipped unless run as root,
    the reason naming what needs it. One mark, instead of a skipif per module."""
    if os.geteuid() == 0:
        return
    for item in items:
        mark = item.get_closest_marker("root")
        if mark is not None:
            why = ", ".join(mark.args) or "namespaces, mounts"
            item.add_marker(pytest.mark.skip(reason=f"needs root ({why})"))


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


_LEAF_IDS = itertools.count()


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return left.split()[4]
    return None


@pytest.fixture
def cgroup_leaf() -> Iterator[Path]:
    """A leaf cgroup2 directory for this test (skipped without a cgroup2 mount). Afterwards
    whatever is still in it is killed (``cgroup.kill``) and it is removed."""
    mount = _cgroup2_mount()
    if mount is None or not os.access(os.path.join(mount, "cgroup.procs"), os.W_OK):
        pytest.skip("no writable cgroup2 hierarchy")
    path = Path(mount) / f"nsrun-test-leaf-{os.getpid()}-{next(_LEAF_IDS)}"
    path.mkdir()
    try:
        yield path
    finally:
        if (path / "cgroup.kill").exists() and (path / "cgroup.procs").read_text().strip():
            (path / "cgroup.kill").write_text("1")
        for _ in range(200):  # an exited process leaves its cgroup asynchronously
            try:
                path.rmdir()
                break
            except OSError as err:
                if err.errno != errno.EBUSY:
                    raise
                time.sleep(0.01)
        else:
            raise AssertionError(f"cgroup {path} still busy: {(path / 'cgroup.procs').read_text()}")


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """After the test: no mount mentioning tmp_path, no child process, no new fd (the spawn
    tests use it on every test: ``pytestmark = pytest.mark.usefixtures("no_leftovers")``)."""
    fds_before = set(os.listdir("/proc/self/fd"))
    yield
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f if str(tmp_path) in line]
    assert mounts == [], f"mounts left behind: {mounts}"
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child: neither running nor a zombie
    leaked = set(os.listdir("/proc/self/fd")) - fds_before
    assert not {fd for fd in leaked if os.path.exists(f"/proc/self/fd/{fd}")}, "fds leaked"


@pytest.fixture
def net_world(tmp_path: Path) -> Iterator:
    """A World (its own state, images, cgroup parent and network) with the busybox image;
    afterwards every pod and Service is deleted and nothing may be left on the host (the
    test's parent cgroups are scrubbed in every hierarchy even when it fails)."""
    from world import World, scrub

    w = World(tmp_path)
    w.nsrun("image", "busybox", check=True)
    yield w
    left = w.clean()
    scrub(w.cgroup_dirs)
    assert left == []


@pytest.fixture
def world(net_world):
    """``net_world`` under the name most modules use (a module may define its own)."""
    return net_world


@pytest.fixture
def oci(tmp_path: Path) -> Iterator:
    """An ``OciWorld`` (``ociworld.py``): this process is a child subreaper for the test (as
    conmon and containerd's shim are), and afterwards nothing of the test may be left."""
    from ociworld import OciWorld, reap, set_subreaper

    world = OciWorld(tmp_path)
    set_subreaper(True)
    try:
        yield world
    finally:
        left = world.cleanup()
        set_subreaper(False)
        reap()
    assert left == [], f"left behind: {left}"


@pytest.fixture
def held(busybox_rootfs: Path) -> Iterator[list]:
    """Collects ``nativekit.Held`` containers and releases them even when the test fails."""
    items: list = []
    yield items
    for h in items:
        try:
            h.release()
        except OSError:
            pass


@pytest.fixture
def sandbox() -> Iterator[dict[str, int]]:
    """A pod's net, ipc and uts namespaces (no pause process), closed after the test."""
    from nsrun.host import nsfds

    fds = nsfds.create_sandbox("pod-sandbox-x")
    try:
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)
