"""The C spawn path (``nsrun._native`` through ``nsrun.host.native``) against the real kernel:
namespaces, mounts, pivot_root, credentials, stdio, cgroups. Root only; every test checks
that no mount, process or cgroup is left behind."""

from __future__ import annotations

import errno
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nsrun import native
from nsrun.bundle.mounts import mount_from_oci
from nsrun.errors import SandboxError, SpawnError
from nsrun.host import mounts, nsfds
from nsrun.host.childreq import exec_candidates
from nsrun.host.spawn import has_clone3, spawn
from nsrun.request import MountSpec, SpawnRequest

from world import wait

IS_ROOT = os.geteuid() == 0


def needs_root(fn):
    """``pytest.mark.root``, skipped unless root (namespaces, mounts, cgroups)."""
    skip = pytest.mark.skipif(not IS_ROOT, reason="needs root: namespaces, mounts, cgroups")
    return pytest.mark.root(skip(fn))

CGROUP2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"

PROC = MountSpec("/proc", "proc", "proc", native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
DEV = MountSpec("/dev", "tmpfs", "tmpfs", native.MS_NOSUID | native.MS_STRICTATIME,
                "mode=755,size=65536k")
PTS = MountSpec("/dev/pts", "devpts", "devpts", native.MS_NOSUID | native.MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620")
SYS = MountSpec("/sys", "sysfs", "sysfs",
                native.MS_RDONLY | native.MS_NOSUID | native.MS_NODEV | native.MS_NOEXEC)
BASE_MOUNTS = (PROC, DEV, PTS, SYS)
CLONE_MODES = (native.NSR_CLONE_AUTO, native.NSR_CLONE_FORK, native.NSR_CLONE_FALLBACK)


# ---- helpers ----------------------------------------------------------------------------




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


pytestmark = pytest.mark.usefixtures("no_leftovers")

@pytest.fixture
def held(busybox_rootfs: Path) -> Iterator[list[Held]]:
    """Collects Held containers and releases them even when the test fails."""
    items: list[Held] = []
    yield items
    for h in items:
        try:
            h.release()
        except OSError:
            pass



@pytest.fixture
def sandbox() -> Iterator[dict[str, int]]:
    fds = nsfds.create_sandbox("pod-sandbox-x")
    try:
        yield fds
    finally:
        for fd in fds.values():
            os.close(fd)


# ---- the Python side (no root needed) ---------------------------------------------------


def test_constants_and_step_names_come_from_the_extension() -> None:
    lib = native.ext().lib
    c_names = tuple(native.step_name(i) for i in range(lib.NSR_STEP_COUNT))
    assert c_names[:lib.NSR_CHILD_STEPS] == native.STEPS
    assert native.STEPS[0] == "signals" and native.STEPS[-1] == "execve"
    assert {"pipe", "clone", "cgroup_attach", "pidfd_open", "wait", "id_map"} <= set(
        c_names[lib.NSR_CHILD_STEPS:])
    assert len(set(c_names)) == len(c_names)  # every step id has its own name
    # every capability up to the kernel headers' last one has its name in the table
    assert sorted(native.CAPABILITIES.values()) == list(range(lib.CAP_LAST_CAP + 1))
    assert native.CAP_NAMES[native.CAP_SYS_ADMIN] == "CAP_SYS_ADMIN"
    flags = list(native.NS_FLAGS.values())
    assert len(set(flags)) == 7 and all(f and f & (f - 1) == 0 for f in flags)
    assert native.MS_PROPAGATION & native.MS_BIND == 0
    from nsrun import request

    assert set(request.JOIN_NAMESPACES) | set(request.EXEC_NAMESPACES) == set(native.NS_FLAGS)
    for name in ("nsr_spawn", "ext2", "MS_NOPE"):  # only integer constants, by known names
        with pytest.raises(AttributeError):
            getattr(native, name)


def test_mountspec_from_oci() -> None:
    m = mount_from_oci({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]})
    assert m == MountSpec("/dev", "tmpfs", "tmpfs",
                          native.MS_NOSUID | native.MS_STRICTATIME, "mode=755,size=65536k")
    b = mount_from_oci({"destination": "/data", "type": "bind", "source": "/srv",
                            "options": ["rbind", "ro", "rprivate"]})
    assert b.flags == native.MS_BIND | native.MS_REC | native.MS_RDONLY and b.fstype == ""
    assert b.propagation == native.MS_PRIVATE | native.MS_REC
    plain = mount_from_oci({"destination": "/d", "type": "none", "source": "/s",
                                "options": ["bind", "ro", "rw", "private"]})
    assert plain.flags == native.MS_BIND and plain.propagation == native.MS_PRIVATE
    rel = mount_from_oci({"destination": "/d", "source": "vol", "options": ["bind"]},
                             bundle="/bundles/b")
    assert rel.source == "/bundles/b/vol"


@pytest.mark.parametrize("entry, message", [
    ("nope", "must be an object"),
    ({"type": "tmpfs"}, "destination must be an absolute path"),
    ({"destination": "dev", "type": "tmpfs"}, "destination must be an absolute path"),
    ({"destination": "/d", "type": "tmpfs", "options": "ro"}, "options must be a list"),
    ({"destination": "/d", "options": ["bind"]}, "needs a source"),
    ({"destination": "/d", "source": "x"}, "a type is needed"),
    ({"destination": "/d", "type": "bind", "source": "/s", "options": ["mode=1"]},
     "unknown bind mount option"),
    ({"destination": "/d", "type": "tmpfs", "options": ["tmpcopyup"]}, "not supported"),
])
def test_mountspec_from_oci_rejects(entry, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        mount_from_oci(entry)


def test_resolve_in_root_stays_inside(tmp_path: Path) -> None:
    root = tmp_path / "r"
    (root / "real").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")           # absolute: relative to the root
    (root / "up").symlink_to("../../../../..")  # cannot climb out
    (root / "rel").symlink_to("real")
    r = str(root)
    assert mounts.resolve_in_root(r, "/abs/x") == f"{r}/etc/x"
    assert mounts.resolve_in_root(r, "/up/etc") == f"{r}/etc"
    assert mounts.resolve_in_root(r, "/rel/../rel/y") == f"{r}/real/y"
    assert mounts.resolve_in_root(r, "/missing/z") == f"{r}/missing/z"
    (root / "loop").symlink_to("loop")
    with pytest.raises(ValueError, match="symbolic links"):
        mounts.resolve_in_root(r, "/loop")


def test_exec_candidates_follow_path() -> None:
    assert exec_candidates("/bin/sh", []) == ["/bin/sh"]
    assert exec_candidates("./x", []) == ["./x"]
    assert exec_candidates("sh", ["PATH=/a:/b/:"]) == ["/a/sh", "/b/sh", "./sh"]
    assert exec_candidates("sh", [])[0] == "/usr/local/sbin/sh"


def test_bad_requests_are_value_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="argv"):
        spawn(SpawnRequest(argv=[], env=[], rootfs=str(tmp_path)))
    with pytest.raises(ValueError, match="cannot join"):
        spawn(SpawnRequest(argv=["x"], env=[], rootfs=str(tmp_path),
                                  join_ns={"mnt": 0}))
    with pytest.raises(ValueError, match="absolute host path"):
        spawn(SpawnRequest(argv=["x"], env=[], rootfs=str(tmp_path),
                                  mounts=(MountSpec("/d", "rel", flags=native.MS_BIND),)))


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


@needs_root
@pytest.mark.parametrize("kw, step, err", [
    ({"cwd": "/nonexistent"}, "chdir", errno.ENOENT),
    ({"argv": ["no-such-binary"]}, "execve", errno.ENOENT),
    ({"argv": ["/etc"]}, "execve", errno.EACCES),
    ({"mounts": (MountSpec("/data", "/nonexistent/source", flags=native.MS_BIND),)},
     "mount", errno.ENOENT),
    ({"mounts": (MountSpec("/x", "none", "no-such-fs"),)}, "mount", errno.ENODEV),
    ({"mounts": (MountSpec("/bin/busybox/sub", "tmpfs", "tmpfs"),)}, "mountpoint",
     errno.ENOTDIR),
    ({"rootfs": "/nonexistent-rootfs"}, "bind_rootfs", errno.ENOENT),
    ({"uid": 1000, "cwd": "/root"}, "chdir", errno.EACCES),
])
def test_failed_step_is_reported(busybox_rootfs: Path, kw: dict, step: str, err: int) -> None:
    (busybox_rootfs / "root").mkdir(mode=0o700)
    kw = {"argv": ["true"], "env": ["PATH=/bin"], "rootfs": str(busybox_rootfs), **kw}
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(**kw))
    assert (info.value.step, info.value.errno) == (step, err)
    assert str(info.value) == f"spawn failed at {step}: {os.strerror(err)}"
    named = info.value.for_container("web", "init container")
    assert str(named).startswith('init container "web": spawn failed at')
    # (no_leftovers checks that the failed child was reaped)


@needs_root
def test_failed_mount_names_the_mount(busybox_rootfs: Path) -> None:
    mounts = (PROC, MountSpec("/data", "/nonexistent/source", flags=native.MS_BIND))
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(busybox_rootfs),
                                  mounts=mounts))
    assert info.value.__notes__ == ["mount #1: /nonexistent/source on /data"]


@needs_root
def test_setns_failure(busybox_rootfs: Path) -> None:
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(SpawnError) as info:
            spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(busybox_rootfs),
                                      join_ns={"net": fd}))
    finally:
        os.close(fd)
    assert (info.value.step, info.value.errno) == ("setns", errno.EINVAL)
    assert info.value.__notes__ == ["namespace net"]


@needs_root
@pytest.mark.parametrize("mode", CLONE_MODES)
def test_spawn_into_cgroup(busybox_rootfs: Path, cgroup_leaf: Path, held: list[Held],
                           mode: int) -> None:
    fd = os.open(cgroup_leaf, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        h = Held(busybox_rootfs, clone_mode=mode, cgroup_fd=fd)
    finally:
        os.close(fd)
    held.append(h)
    with open(f"/proc/{h.pid}/cgroup") as f:
        v2 = [line for line in f.read().splitlines() if line.startswith("0::")]
    assert v2 == [f"0::/{cgroup_leaf.name}"]
    assert (cgroup_leaf / "cgroup.procs").read_text().split() == [str(h.pid)]
    assert h.release() == 0


@needs_root
@pytest.mark.parametrize("mode", CLONE_MODES[1:])
def test_other_clone_paths_run_the_same_steps(busybox_rootfs: Path, mode: int) -> None:
    assert run(busybox_rootfs, ["sh", "-c", "echo $$; hostname"], hostname="h",
               clone_mode=mode) == (0, "1\nh\n")
    with pytest.raises(SpawnError, match="chdir"):
        run(busybox_rootfs, ["true"], cwd="/nonexistent", clone_mode=mode)


@needs_root
def test_spawn_into_missing_cgroup_fails_in_parent(busybox_rootfs: Path) -> None:
    fd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)  # not a cgroup directory
    try:
        with pytest.raises(SpawnError) as info:
            spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(busybox_rootfs),
                                      cgroup_fd=fd))
    finally:
        os.close(fd)
    assert (info.value.step, info.value.errno) == ("clone", errno.EBADF)


@needs_root
def test_concurrent_spawns_with_signals_arriving(busybox_rootfs: Path) -> None:
    """Spawns from several threads while a Python SIGALRM handler fires every 0.5 ms: the
    children share the parent's memory until execve, so this catches a child that runs a
    parent handler or tramples a parent frame."""
    import signal
    import threading

    hits = []
    old = signal.signal(signal.SIGALRM, lambda *_: hits.append(1))
    signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
    errors: list[BaseException] = []
    cwd = os.getcwd()

    def worker(n: int) -> None:
        try:
            for i in range(25):
                code, out = run(busybox_rootfs,
                                ["sh", "-c", f"echo {n}-{i}"], mounts=(), populate_dev=False,
                                log=busybox_rootfs.parent / f"w{n}.log")
                assert (code, out) == (0, f"{n}-{i}\n")
        except Exception as err:  # reported by the main thread
            errors.append(err)

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)
    assert errors == []
    assert hits, "the timer never fired"
    assert os.getcwd() == cwd  # pivot_root/chdir happened in the children only


@needs_root
def test_spawn_latency(busybox_rootfs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """spawn + wait of /bin/true (no mounts): reported, not asserted."""
    req = SpawnRequest(argv=["/bin/true"], env=[], rootfs=str(busybox_rootfs))
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        _, pidfd = spawn(req)
        assert wait(pidfd) == 0
        times.append(time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\nspawn+wait /bin/true: median {statistics.median(times) * 1e3:.3f} ms, "
              f"min {min(times) * 1e3:.3f} ms over {len(times)}")
