"""The C spawn path (``nsrun._native`` through ``nsrun.host.spawn``) against the real kernel:
namespaces, mounts, pivot_root, credentials, stdio, /dev. Root only; every test checks that
no mount, process or cgroup is left behind. Failures, cgroups and clone paths are in
test_native_failures.py."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nsrun import native
from nsrun.bundle.mounts import mount_from_oci
from nsrun.errors import SandboxError
from nsrun.host import nsfds
from nsrun.host.spawn import has_clone3, spawn
from nsrun.request import MountSpec, SpawnRequest

from nativekit import (
    BASE_MOUNTS,
    Held,
    needs_root,
    run,
)
from world import wait

pytestmark = pytest.mark.usefixtures("no_leftovers")


# ---- the child, on the real kernel ------------------------------------------------------


@needs_root
def test_has_clone3() -> None:
    assert has_clone3() is True  # kernel 6.x; the fallback is tested by forcing it


@needs_root
@pytest.mark.parametrize("code", [0, 7])
def test_exit_status_via_pidfd(busybox_rootfs: Path, code: int) -> None:
    assert run(busybox_rootfs, ["sh", "-c", f"exit {code}"]) == (code, "")


@needs_root
def test_pidfd_is_cloexec_and_signals(busybox_rootfs: Path) -> None:
    import signal

    pid, pidfd = spawn(SpawnRequest(argv=["sleep", "30"], env=["PATH=/bin"],
                                           rootfs=str(busybox_rootfs)))
    assert not os.get_inheritable(pidfd)
    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    assert wait(pidfd) == 128 + signal.SIGKILL


@needs_root
def test_host_tmpfs_helpers_in_a_private_mount_namespace(tmp_path: Path) -> None:
    """mount_tmpfs/umount act on the caller's mount namespace: run them under unshare -m."""
    import subprocess
    import sys

    target = tmp_path / "vol"
    target.mkdir()
    code = (
        "import os, sys\n"
        "from nsrun.errors import SandboxError\n"
        "from nsrun.host import mounts\n"
        "t = sys.argv[1]\n"
        "mounts.mount_tmpfs(t, 'mode=777,size=1m')\n"
        "assert any(l.split()[4] == t for l in open('/proc/self/mountinfo'))\n"
        "mounts.umount(t)\n"
        "mounts.umount(t)  # not a mount point any more: fine\n"
        "assert not any(l.split()[4] == t for l in open('/proc/self/mountinfo'))\n"
        "try:\n"
        "    mounts.mount_tmpfs(t + '/missing')\n"
        "except SandboxError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                          "-c", code, str(target)], capture_output=True, text=True, check=True)
    assert out.stdout == f"mount tmpfs on {target}/missing: No such file or directory\n"


@needs_root
def test_pid_1_in_own_pid_and_mount_namespace(busybox_rootfs: Path, held: list[Held]) -> None:
    assert run(busybox_rootfs, ["sh", "-c", "echo $$"]) == (0, "1\n")
    h = Held(busybox_rootfs)
    held.append(h)
    for ns in ("mnt", "pid"):
        assert os.readlink(f"/proc/{h.pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
    assert os.readlink(f"/proc/{h.pid}/ns/net") == os.readlink("/proc/self/ns/net")
    assert os.readlink(f"/proc/{h.pid}/root") == "/"  # pivot_root, not chroot
    with open(f"/proc/{h.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[3]) == h.pid  # session id: setsid made it a session leader
    assert h.release() == 0


@needs_root
def test_without_new_pid_ns(busybox_rootfs: Path) -> None:
    code, out = run(busybox_rootfs, ["sh", "-c", "echo $$"], new_pid_ns=False)
    assert code == 0 and int(out) > 1


@needs_root
def test_joins_sandbox_namespaces(busybox_rootfs: Path, sandbox: dict[str, int],
                                  held: list[Held]) -> None:
    assert set(sandbox) == {"net", "ipc", "uts"}
    for fd in sandbox.values():
        assert not os.get_inheritable(fd)
    h = Held(busybox_rootfs, join_ns=sandbox, hostname="ignored-when-joining")
    held.append(h)
    for ns, fd in sandbox.items():
        assert os.readlink(f"/proc/{h.pid}/ns/{ns}") == os.readlink(f"/proc/self/fd/{fd}")
        assert os.readlink(f"/proc/self/fd/{fd}") != os.readlink(f"/proc/self/ns/{ns}")
    assert h.release() == 0
    code, out = run(busybox_rootfs, ["sh", "-c", "hostname; cat /sys/class/net/lo/flags; "
                                     "ls /sys/class/net; ip link show lo"], join_ns=sandbox)
    lines = out.splitlines()
    assert code == 0, out
    assert lines[0] == "pod-sandbox-x"
    assert int(lines[1], 16) & 0x1  # IFF_UP
    assert lines[2] == "lo"  # a new netns: nothing but lo
    assert "UP" in lines[3].split("<")[1].split(">")[0].split(",")


@needs_root
def test_hostname_in_new_uts_namespace(busybox_rootfs: Path) -> None:
    host = os.uname().nodename
    assert run(busybox_rootfs, ["hostname"], hostname="c1") == (0, "c1\n")
    assert os.uname().nodename == host


@needs_root
def test_sandbox_hostname_too_long() -> None:
    with pytest.raises(SandboxError, match="sethostname") as info:
        nsfds.create_sandbox("x" * 65)
    assert info.value.errno == errno.EINVAL


@needs_root
def test_bind_mounts(busybox_rootfs: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in").write_text("hello\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    single = tmp_path / "single.txt"
    single.write_text("one file\n")
    mounts = BASE_MOUNTS + (
        mount_from_oci({"destination": "/data", "type": "bind", "source": str(data),
                            "options": ["rbind", "rw"]}),
        mount_from_oci({"destination": "/deep/ro", "type": "bind", "source": str(ro),
                            "options": ["rbind", "ro", "nosuid"]}),
        MountSpec("/etc/single.txt", str(single), flags=native.MS_BIND),
    )
    code, out = run(busybox_rootfs, ["sh", "-c", "cat /data/in /etc/single.txt; "
                                     "echo written > /data/out; "
                                     "touch /deep/ro/x || echo refused"], mounts=mounts)
    assert code == 0, out
    assert out.splitlines()[:2] == ["hello", "one file"]
    assert "Read-only file system" in out and out.endswith("refused\n")
    assert (data / "out").read_text() == "written\n"
    assert not (ro / "x").exists()
    assert (busybox_rootfs / "etc" / "single.txt").is_file()  # the file mount point


@needs_root
def test_mount_target_symlink_stays_in_rootfs(busybox_rootfs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (busybox_rootfs / "escape").symlink_to(str(outside))  # absolute: means <rootfs>/<outside>
    mounts = BASE_MOUNTS + (MountSpec("/escape/sub", "tmpfs", "tmpfs"),)
    code, out = run(busybox_rootfs, ["true"], mounts=mounts)
    assert code == 0, out
    assert list(outside.iterdir()) == []
    assert (busybox_rootfs / str(outside).lstrip("/") / "sub").is_dir()


@needs_root
def test_readonly_root(busybox_rootfs: Path) -> None:
    code, out = run(busybox_rootfs, ["sh", "-c", "touch /x || exit 3; echo no"],
                    rootfs_readonly=True)
    assert code == 3 and "Read-only file system" in out
    assert not (busybox_rootfs / "x").exists()
    # the mounts on top stay writable
    assert run(busybox_rootfs, ["sh", "-c", "echo ok > /dev/shmtest && cat /dev/shmtest"],
               rootfs_readonly=True) == (0, "ok\n")


@needs_root
def test_user_groups_cwd_env(busybox_rootfs: Path) -> None:
    (busybox_rootfs / "work").mkdir()
    code, out = run(busybox_rootfs, ["sh", "-c", 'id; pwd; echo "$FOO"; env | grep -c .'],
                    uid=1000, gid=1001, additional_gids=(10, 20), cwd="/work",
                    env=["PATH=/bin", "FOO=bar baz"])
    assert code == 0, out
    assert out.splitlines()[:3] == ["uid=1000 gid=1001 groups=10,20", "/work", "bar baz"]


@needs_root
def test_no_supplementary_groups_by_default(busybox_rootfs: Path) -> None:
    code, out = run(busybox_rootfs, ["sh", "-c", "id; grep Groups /proc/self/status"],
                    uid=5, gid=6)
    assert code == 0 and out.split() == ["uid=5", "gid=6", "Groups:"]


@needs_root
def test_path_lookup_uses_container_path(busybox_rootfs: Path) -> None:
    (busybox_rootfs / "opt" / "tools").mkdir(parents=True)
    (busybox_rootfs / "opt" / "tools" / "hello").write_text("#!/bin/sh\necho from-opt\n")
    (busybox_rootfs / "opt" / "tools" / "hello").chmod(0o755)
    assert run(busybox_rootfs, ["hello"], env=["PATH=/nope:/opt/tools:/bin"]) == \
        (0, "from-opt\n")


@needs_root
def test_stdout_stderr_and_stdin(busybox_rootfs: Path, tmp_path: Path) -> None:
    log = tmp_path / "c.log"
    log.write_text("previous\n")
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    try:
        pid, pidfd = spawn(SpawnRequest(
            argv=["sh", "-c", "echo out; echo err >&2; cat; echo eof"], env=["PATH=/bin"],
            rootfs=str(busybox_rootfs), mounts=BASE_MOUNTS, stdout_fd=fd, stderr_fd=fd))
    finally:
        os.close(fd)
    assert wait(pidfd) == 0
    assert log.read_text() == "previous\nout\nerr\neof\n"  # stdin was /dev/null


@needs_root
def test_stdio_fds_may_be_0_1_2(busybox_rootfs: Path, tmp_path: Path) -> None:
    # stdout_fd=2 and stderr_fd=1: swapped, dup2 in sequence would clobber one of them
    log1, log2 = tmp_path / "1.log", tmp_path / "2.log"
    with open(log1, "wb") as f1, open(log2, "wb") as f2:
        pid, pidfd = spawn(SpawnRequest(
            argv=["sh", "-c", "echo to1; echo to2 >&2"], env=["PATH=/bin"],
            rootfs=str(busybox_rootfs), stdout_fd=f2.fileno(), stderr_fd=f1.fileno()))
        assert wait(pidfd) == 0
    assert log1.read_text() == "to2\n" and log2.read_text() == "to1\n"


@needs_root
def test_only_stdio_fds_reach_the_container(busybox_rootfs: Path) -> None:
    r, w = os.pipe()
    os.set_inheritable(r, True)  # even inheritable fds are closed
    try:
        code, out = run(busybox_rootfs, ["ls", "/proc/self/fd"])
    finally:
        os.close(r)
        os.close(w)
    assert code == 0
    assert out.split() == ["0", "1", "2", "3"]  # 3: the directory ls is reading


@needs_root
def test_signals_are_reset(busybox_rootfs: Path) -> None:
    code, out = run(busybox_rootfs, ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
    assert code == 0
    assert out.split() == ["SigBlk:", "0" * 16, "SigIgn:", "0" * 16]  # Python ignores SIGPIPE


@needs_root
def test_dev_is_populated(busybox_rootfs: Path) -> None:
    script = ("for n in null zero full random urandom tty; do test -c /dev/$n || echo no $n; "
              "done; for l in fd stdin stdout stderr ptmx; do test -L /dev/$l || echo no $l; "
              "done; echo x > /dev/null && head -c 3 /dev/zero | grep -c . ; "
              "test -e /dev/pts/ptmx && echo pts")
    code, out = run(busybox_rootfs, ["sh", "-c", script])
    assert code == 0, out
    assert out.split("\n")[-2] == "pts" and "no " not in out


@needs_root
def test_populate_dev_off(busybox_rootfs: Path) -> None:
    assert run(busybox_rootfs, ["sh", "-c", "ls /dev | grep -c null"],
               populate_dev=False) == (1, "0\n")
