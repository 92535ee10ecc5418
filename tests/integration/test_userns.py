"""A container in a user namespace (OCI ``linux.uidMappings``/``gidMappings`` with a
``user`` entry in ``linux.namespaces``): root inside, an unprivileged uid outside, still in
the pod's network namespace. Root only, real processes; nothing is left behind.

The container's root is host uid 100000, which has no rights over directories of the host's
root: the rootfs and the volume live in a directory every uid may traverse (as with runc)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsrun import native
from nsrun.bundle import oci
from nsrun.bundle.security import PodContext
from nsrun.errors import BundleError, SpawnError
from nsrun.host import nsfds
from nsrun.host.execin import exec_in
from nsrun.host.sandbox import Sandbox
from nsrun.host.spawn import spawn
from nsrun.request import ExecRequest
from nsrun.runtime import launcher

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, mounts")]

HOST_ROOT = 100000
USER_NS = {"namespaces": [{"type": "user"}],
           "uidMappings": [{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}],
           "gidMappings": [{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}]}


@pytest.fixture
def world(busybox_rootfs: Path) -> Iterator[Path]:
    """A traversable copy of the busybox rootfs and a writable volume directory."""
    base = Path(tempfile.mkdtemp(prefix="nsrun-userns-", dir="/tmp"))
    try:
        base.chmod(0o711)
        shutil.copytree(busybox_rootfs, base / "rootfs", symlinks=True)
        (base / "rootfs").chmod(0o755)
        (base / "rootfs" / "vol").mkdir()  # the container cannot make it in a host-owned dir
        vol = base / "vol"
        vol.mkdir()
        os.chown(vol, HOST_ROOT, HOST_ROOT)
        yield base
        with open("/proc/self/mountinfo") as f:
            assert [line for line in f if str(base) in line] == []
    finally:
        shutil.rmtree(base)


def run(base: Path, linux: dict, script: str, sandbox: Sandbox | None = None,
        clone_mode: int | None = None) -> tuple[int, str]:
    config = {"process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/"},
              "root": {"path": "rootfs"}, "linux": linux}
    vol = [{"destination": "/vol", "type": "bind", "source": str(base / "vol"),
            "options": ["rbind", "rw"]}]
    plan = oci.plan(config, base, command=["sh", "-c", script], args=None, env=[],
                    working_dir=None, volume_mounts=vol, pod=PodContext("app", "p_default(u1)"))
    log = base / "out.log"
    with open(log, "w+b") as out:
        req = launcher.request(plan, sandbox or Sandbox({}, {}), -1, out.fileno())
        pid, pidfd = spawn(req, clone_mode=clone_mode)
        try:
            info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        finally:
            os.close(pidfd)
        assert info is not None and info.si_code == os.CLD_EXITED
        out.seek(0)
        return info.si_status, out.read().decode()


def test_root_inside_is_host_uid_100000_in_the_pods_netns(world: Path) -> None:
    ns = nsfds.create_sandbox("userns-pod")
    try:
        net_inode = os.fstat(ns["net"]).st_ino
        code, out = run(world, USER_NS, "id; cat /proc/self/uid_map /proc/self/gid_map; "
                                        "readlink /proc/self/ns/net; touch /vol/made; "
                                        "cat /proc/1/status | grep ^NSpid; hostname",
                        Sandbox(dict(ns), {}))
    finally:
        for fd in ns.values():
            os.close(fd)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("uid=0(") or lines[0].startswith("uid=0 "), out
    assert "gid=0" in lines[0]
    assert lines[1].split() == ["0", str(HOST_ROOT), "65536"]
    assert lines[2].split() == ["0", str(HOST_ROOT), "65536"]
    assert lines[3] == f"net:[{net_inode}]"
    assert lines[4].split()[-1] == "1"  # pid 1 of its own pid namespace
    assert lines[5] == "userns-pod"
    st = os.stat(world / "vol" / "made")
    assert (st.st_uid, st.st_gid) == (HOST_ROOT, HOST_ROOT)


@pytest.mark.parametrize("mode", [native.NSR_CLONE_AUTO, native.NSR_CLONE_FORK,
                                  native.NSR_CLONE_FALLBACK])
def test_proc_sys_and_masked_paths_by_each_clone_path(world: Path, mode: int) -> None:
    linux = {**USER_NS}
    config_script = ("test -r /proc/self/status && echo proc; ls /sys/kernel >/dev/null && "
                     "echo sys; touch /sys/x 2>/dev/null || echo sys-ro; "
                     "cat /proc/kcore 2>/dev/null | head -c1 | wc -c")
    code, out = run(world, linux, config_script, clone_mode=mode)
    assert code == 0, out
    assert out.split() == ["proc", "sys", "sys-ro", "0"]


def test_exec_joins_the_user_namespace(world: Path) -> None:
    config = {"process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/"},
              "root": {"path": "rootfs"}, "linux": USER_NS}
    plan = oci.plan(config, world, command=["sleep", "30"], args=None, env=[],
                    working_dir=None, volume_mounts=[], pod=PodContext("app", "p_default(u1)"))
    req = launcher.request(plan, Sandbox({}, {}), -1, -1)
    pid, pidfd = spawn(req)
    try:
        r, w = os.pipe()
        try:
            xreq = ExecRequest.from_spawn(req, ["sh", "-c", "id -u; cat /proc/self/uid_map"],
                                                 stdout_fd=w)
            xpid, xpidfd = exec_in(pid, pidfd, xreq)
            os.close(w)
            w = -1
            out = b""
            while chunk := os.read(r, 4096):
                out += chunk
            info = os.waitid(os.P_PIDFD, xpidfd, os.WEXITED)
            os.close(xpidfd)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)
        assert info is not None and info.si_status == 0, out
        lines = out.decode().splitlines()
        assert lines[0] == "0"
        assert lines[1].split() == ["0", str(HOST_ROOT), "65536"]
    finally:
        import signal

        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        os.close(pidfd)


def test_mappings_without_user_namespace_or_malformed_are_refused(world: Path) -> None:
    bad = [
        ({"uidMappings": USER_NS["uidMappings"], "gidMappings": USER_NS["gidMappings"]},
         "linux.uidMappings: mappings need a user namespace"),
        ({"namespaces": [{"type": "user"}], "uidMappings": USER_NS["uidMappings"]},
         "linux.gidMappings: a user namespace (linux.namespaces[0]) needs gidMappings"),
        ({**USER_NS, "uidMappings": [{"containerID": 0, "hostID": HOST_ROOT}]},
         "linux.uidMappings[0].size: expected an unsigned 32-bit integer"),
        ({**USER_NS, "uidMappings": [{"containerID": 0, "hostID": 1, "size": 10},
                                     {"containerID": 5, "hostID": 100, "size": 10}]},
         "linux.uidMappings: malformed mapping: the ranges overlap"),
        ({**USER_NS, "uidMappings": [{"containerID": 1, "hostID": HOST_ROOT, "size": 10}]},
         "linux.uidMappings: the container's uid 0 is not mapped"),
    ]
    for linux, message in bad:
        with pytest.raises(BundleError) as info:
            run(world, linux, "true")
        assert message in str(info.value), (message, str(info.value))
    assert os.listdir(world / "vol") == []


def test_a_failed_step_in_the_user_namespace_is_reported_and_reaped(world: Path) -> None:
    config = {"process": {"args": ["/nope"], "env": ["PATH=/bin"], "cwd": "/"},
              "root": {"path": "rootfs"}, "linux": USER_NS}
    plan = oci.plan(config, world, command=None, args=None, env=[], working_dir=None,
                    volume_mounts=[], pod=PodContext("app", "p_default(u1)"))
    with pytest.raises(SpawnError, match="execve"):
        spawn(launcher.request(plan, Sandbox({}, {}), -1, -1))
