"""Confinement applied by the C child, checked from inside the container (busybox as the
probe) against what the bundle asked for: the five capability sets and NoNewPrivs, seccomp
and a denied syscall's errno, rlimits, credentials, masked and read-only paths, fds, sysctls,
devices, and mounts that an image's symlinks cannot send out of the rootfs. Root only; each
test checks that no mount, process or fd is left behind.

The requests are built by the real path: ``oci.plan`` (bundle + pod → LaunchPlan, with the
default mounts) and ``launcher.request``."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from nsrun import native
from nsrun.bundle import oci, security
from nsrun.bundle.security import PodContext, cap_mask
from nsrun.core.spec import Capabilities, SecurityContext
from nsrun.errors import SpawnError
from nsrun.host import mounts, nsfds
from nsrun.host.sandbox import Sandbox
from nsrun.host.spawn import spawn
from nsrun.request import Device, MountSpec, SpawnRequest
from nsrun.runtime import launcher

from world import wait

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, mounts")]

BUSYBOX_EXTRA = ("mkdir", "chmod", "stat", "wc", "cut", "readlink", "rm", "ln")
NBS, KILL, CHOWN = (cap_mask((f"CAP_{n}",)) for n in ("NET_BIND_SERVICE", "KILL", "CHOWN"))
POD_DEFAULT = cap_mask(security.DEFAULT_CAPABILITIES)



@pytest.fixture
def rootfs(busybox_rootfs: Path) -> Path:
    for applet in BUSYBOX_EXTRA:
        (busybox_rootfs / "bin" / applet).symlink_to("busybox")
    return busybox_rootfs


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host directory an image's symlinks aim at; it must stay exactly as it is."""
    d = tmp_path / "host"
    d.mkdir()
    (d / "victim").write_text("original\n")
    return d


def assert_untouched(host_dir: Path) -> None:
    assert sorted(os.listdir(host_dir)) == ["victim"]
    assert (host_dir / "victim").read_text() == "original\n"




def plan(rootfs: Path, config: dict, script: str, *, sc: SecurityContext | None = None,
         volume_mounts: tuple[dict, ...] = ()) -> oci.LaunchPlan:
    base = {"process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/"},
            "root": {"path": rootfs.name}}
    for key, value in config.items():
        base[key] = {**base.get(key, {}), **value}
    return oci.plan(base, rootfs.parent, command=["sh", "-c", script], args=None, env=[],
                    working_dir=None, volume_mounts=list(volume_mounts),
                    pod=PodContext("app", "p_default(u1)", sc, None))


def run(rootfs: Path, config: dict, script: str, *, sandbox: Sandbox | None = None,
        **kw) -> tuple[int, str]:
    """The script in a container from bundle ``config``: (exit code, stdout+stderr)."""
    p = plan(rootfs, config, script, **kw)
    log = rootfs.parent / "out.log"
    with open(log, "w+b") as out:
        req = launcher.request(p, sandbox or Sandbox({}, {}), -1, out.fileno())
        _, pidfd = spawn(req)
        code = wait(pidfd)
        out.seek(0)
        return code, out.read().decode()


def status(out: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in out.splitlines() if ":\t" in line)


def caps_of(out: str) -> dict[str, int]:
    s = status(out)
    return {k: int(s[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


STATUS = "cat /proc/self/status"


# ---- capabilities and no_new_privs ---------------------------------------------------------


def test_five_capability_sets_and_no_new_privs_for_a_non_root_user(rootfs: Path) -> None:
    config = {"process": {"user": {"uid": 1000, "gid": 1000}, "noNewPrivileges": True,
                          "capabilities": {
                              "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                              **{s: ["CAP_NET_BIND_SERVICE"] for s in
                                 ("effective", "permitted", "inheritable", "ambient")}}}}
    code, out = run(rootfs, config, STATUS)
    assert code == 0, out
    assert caps_of(out) == {"CapBnd": CHOWN | KILL | NBS, "CapInh": NBS, "CapPrm": NBS,
                            "CapEff": NBS, "CapAmb": NBS}
    assert status(out)["NoNewPrivs"] == "1"


@pytest.mark.parametrize("nnp, granted", [(False, CHOWN | KILL), (True, KILL)])
def test_root_gets_its_bounding_set_unless_no_new_privs_clamps_it(rootfs: Path, nnp: bool,
                                                                   granted: int) -> None:
    # For uid 0, execve grants the bounding set; no_new_privs caps it at the permitted set
    # held before execve (why no_new_privs comes before capset).
    config = {"process": {"noNewPrivileges": nnp, "capabilities": {
        "bounding": ["CAP_CHOWN", "CAP_KILL"], "permitted": ["CAP_KILL"],
        "effective": ["CAP_KILL"]}}}
    code, out = run(rootfs, config, STATUS)
    assert code == 0, out
    c = caps_of(out)
    assert (c["CapBnd"], c["CapPrm"], c["CapEff"], c["CapInh"], c["CapAmb"]) == (
        CHOWN | KILL, granted, granted, 0, 0)
    assert status(out)["NoNewPrivs"] == str(int(nnp))


def test_bundle_without_capabilities_runs_with_the_pod_defaults_not_full_root(
        rootfs: Path) -> None:
    code, out = run(rootfs, {}, STATUS + "; mount -t tmpfs none /tmp 2>/dev/null || echo no-mount")
    assert code == 0, out
    c = caps_of(out)
    assert c["CapBnd"] == c["CapEff"] == c["CapPrm"] == POD_DEFAULT  # containerd's 14
    assert out.endswith("no-mount\n")  # CAP_SYS_ADMIN is not in the default set


def test_kubernetes_capability_names_add_and_drop(rootfs: Path) -> None:
    sc = SecurityContext(capabilities=Capabilities(add=["NET_ADMIN", "SYS_TIME"],
                                                   drop=["KILL"]))
    code, out = run(rootfs, {}, STATUS, sc=sc)
    assert code == 0, out
    want = POD_DEFAULT & ~KILL | cap_mask(("CAP_NET_ADMIN", "CAP_SYS_TIME"))
    assert caps_of(out)["CapBnd"] == caps_of(out)["CapEff"] == want


def test_privileged_gets_all_nsrun_holds_no_masks_and_host_devices(rootfs: Path) -> None:
    own = caps_of(Path("/proc/self/status").read_text())
    code, out = run(rootfs, {"process": {"noNewPrivileges": True}},
                    STATUS + "; grep -c ' /proc/sys ' /proc/self/mountinfo; ls /dev",
                    sc=SecurityContext(privileged=True))
    assert code == 0, out
    assert caps_of(out)["CapBnd"] == caps_of(out)["CapEff"] == own["CapBnd"] & own["CapPrm"]
    assert status(out)["NoNewPrivs"] == "0"
    lines = out.splitlines()
    assert "0" in lines  # /proc/sys is not a separate read-only mount
    host_devs = {e.name for e in os.scandir("/dev")
                 if stat.S_ISCHR(e.stat(follow_symlinks=False).st_mode)} - {"console"}
    assert host_devs <= set(lines)


# ---- seccomp ----------------------------------------------------------------------------

SECCOMP = {"defaultAction": "SCMP_ACT_ALLOW",
           "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
           "syscalls": [
               {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EOPNOTSUPP},
               # only chmod to mode 0700 is refused (the default errno: EPERM)
               {"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 0o700, "op": "SCMP_CMP_EQ"}]},
               {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"}]}]}
SECCOMP_PROBE = ("grep ^Seccomp: /proc/self/status; mkdir /tmp/d; touch /tmp/f; "
                 "chmod 600 /tmp/f && echo chmod-600-ok; chmod 700 /tmp/f")


@pytest.fixture
def libseccomp() -> None:
    pytest.importorskip("pyseccomp", reason="pyseccomp (libseccomp.so.2) not installed")


@pytest.mark.parametrize("user", [{"uid": 0}, {"uid": 1000, "gid": 1000}])
def test_seccomp_filter_denies_with_the_configured_errno(rootfs: Path, libseccomp: None,
                                                         user: dict) -> None:
    # non-root without noNewPrivileges: loading the filter needs CAP_SYS_ADMIN, which the
    # child raises for that one call (the user's final sets do not have it)
    config = {"process": {"user": user, "noNewPrivileges": False},
              "linux": {"seccomp": SECCOMP}}
    code, out = run(rootfs, config, SECCOMP_PROBE)
    assert code == 1, out
    assert out.splitlines()[0] == "Seccomp:\t2"
    assert f"can't create directory '/tmp/d': {os.strerror(errno.EOPNOTSUPP)}" in out
    assert "chmod-600-ok" in out
    assert out.rstrip().endswith(os.strerror(errno.EPERM))
    assert not (rootfs / "tmp" / "d").exists()


def test_privileged_has_no_seccomp_filter(rootfs: Path, libseccomp: None) -> None:
    code, out = run(rootfs, {"linux": {"seccomp": SECCOMP}}, "grep ^Seccomp: /proc/self/status",
                    sc=SecurityContext(privileged=True))
    assert (code, out) == (0, "Seccomp:\t0\n")


# ---- process attributes -------------------------------------------------------------------


def test_rlimits_user_groups_umask_oom_score_adj(rootfs: Path) -> None:
    config = {"process": {
        "user": {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o027},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 0}],
        "oomScoreAdj": 500}}
    script = ("ulimit -n; ulimit -Hn; grep 'core file' /proc/self/limits | tr -s ' ' | "
              "cut -d' ' -f1-7; id; umask; "
              "cat /proc/self/oom_score_adj")
    (rootfs / "bin" / "tr").symlink_to("busybox")
    code, out = run(rootfs, config, script)
    assert code == 0, out
    assert out.splitlines() == ["100", "200", "Max core file size 0 0 bytes",
                                "uid=1000 gid=1001 groups=10,20", "0027", "500"]


def test_only_stdio_reaches_the_container(rootfs: Path, tmp_path: Path) -> None:
    r, w = os.pipe()
    os.set_inheritable(r, True)  # even inheritable fds of the supervisor are closed
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # not CLOEXEC: a state dir fd
    try:
        code, out = run(rootfs, {}, "ls /proc/1/fd; true")  # pid 1 is the container's sh
    finally:
        for fd in (r, w, d):
            os.close(fd)
    assert (code, out.split()) == (0, ["0", "1", "2"])


# ---- filesystem: masked, read-only, devices, propagation ------------------------------------


def test_masked_and_read_only_paths_by_default(rootfs: Path) -> None:
    script = ("wc -c < /proc/keys; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; "
              "test ! -e /proc/kcore || wc -c < /proc/kcore; "
              "echo 1 > /proc/sys/kernel/ns_last_pid || echo sys-refused; "
              "grep -E ' /proc/(sys|sysrq-trigger|bus|fs|irq) ' /proc/self/mountinfo | "
              "cut -d' ' -f5,6 | cut -d, -f1")
    assert Path("/proc/timer_list").read_text() != ""  # the host's is not empty
    code, out = run(rootfs, {}, script)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:3] == ["0", "0", "0"]
    assert "Read-only file system" in out and "sys-refused" in lines
    ro = {line.split()[0]: line.split()[1] for line in lines if line.startswith("/proc/")}
    assert ro == {p: "ro" for p in security.DEFAULT_READONLY_PATHS if os.path.exists(p)}


def test_bundle_masked_paths_replace_the_defaults(rootfs: Path) -> None:
    code, out = run(rootfs, {"linux": {"maskedPaths": ["/proc/cpuinfo", "/etc", "/nope"],
                                       "readonlyPaths": []}},
                    "wc -c < /proc/cpuinfo; wc -c < /proc/keys | grep -qv '^0$' && echo keys;"
                    " ls -A /etc | wc -l; touch /etc/x || echo etc-ro")
    assert code == 0, out
    assert out.splitlines() == ["0", "keys", "0", "touch: /etc/x: Read-only file system",
                                "etc-ro"]


def test_devices_and_rootfs_propagation(rootfs: Path) -> None:
    config = {"linux": {"devices": [{"path": "/dev/mynull", "type": "c", "major": 1,
                                     "minor": 3, "fileMode": 0o622, "uid": 1000, "gid": 5},
                                    {"path": "/dev/sub/fifo", "type": "p"}],
                        "rootfsPropagation": "rshared"}}
    script = ("stat -c '%F %t,%T %a %u %g' /dev/mynull; echo x > /dev/mynull && echo wrote;"
              " stat -c %F /dev/sub/fifo; awk '$5 == \"/\" {print $7}' /proc/self/mountinfo")
    (rootfs / "bin" / "awk").symlink_to("busybox")
    code, out = run(rootfs, config, script)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[:3] == ["character special file 1,3 622 1000 5", "wrote", "fifo"]
    assert lines[3].startswith("shared:")


def test_sysctls_land_in_the_pods_namespaces_not_the_hosts(rootfs: Path) -> None:
    ns = nsfds.create_sandbox("sysctl-pod")
    host_port = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()
    host_rmid = Path("/proc/sys/kernel/shm_rmid_forced").read_text()
    try:
        config = {"linux": {"sysctl": {"net.ipv4.ip_unprivileged_port_start": "80",
                                       "kernel/shm_rmid_forced": "1"}}}
        code, out = run(rootfs, config, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start "
                                        "/proc/sys/kernel/shm_rmid_forced",
                        sandbox=Sandbox({"net": ns["net"], "ipc": ns["ipc"]}, {}))
    finally:
        for fd in ns.values():
            os.close(fd)
    assert (code, out.split()) == (0, ["80", "1"])
    assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text() == host_port
    assert Path("/proc/sys/kernel/shm_rmid_forced").read_text() == host_rmid


# ---- safe mounts -------------------------------------------------------------------------


def test_symlinked_mount_targets_cannot_reach_the_host(rootfs: Path, host_dir: Path,
                                                      tmp_path: Path) -> None:
    (rootfs / "data").symlink_to(str(host_dir))  # absolute: means <rootfs>/<host_dir>
    (rootfs / "up").symlink_to("../" * 20 + str(host_dir).lstrip("/"))  # climbs: stops at /
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "file").write_text("from the volume\n")
    mounts = ({"destination": "/data/newdir", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/up/victim", "type": "bind", "source": str(vol / "file"),
               "options": ["bind"]},
              {"destination": "/up/sub/deeper", "type": "bind", "source": str(vol),
               "options": ["rbind"]})
    code, out = run(rootfs, {}, "cat /up/victim; echo pwned > /data/victim; "
                                "echo pwned > /up/sub/deeper/written; ls /data",
                    volume_mounts=mounts)
    assert code == 0, out
    assert out.splitlines() == ["from the volume", "newdir", "sub", "victim"]
    assert_untouched(host_dir)
    inside = rootfs / str(host_dir).lstrip("/")
    assert sorted(os.listdir(inside)) == ["newdir", "sub", "victim"]  # made in the rootfs
    # /data/victim and /up/victim are the same file in the container: the bound one
    assert (vol / "file").read_text() == (vol / "written").read_text() == "pwned\n"


def test_dev_symlinked_out_of_the_rootfs(rootfs: Path, host_dir: Path) -> None:
    (rootfs / "dev").rmdir()
    (rootfs / "dev").symlink_to("../../../../../../../../" + str(host_dir).lstrip("/"))
    # no /dev tmpfs: the device nodes are made in the image's /dev
    req = SpawnRequest(argv=["true"], env=["PATH=/bin"], rootfs=str(rootfs),
                       devices=(Device("/dev/extra", "c", 1, 3),))
    _, pidfd = spawn(req)
    assert wait(pidfd) == 0
    assert_untouched(host_dir)
    inside = rootfs / str(host_dir).lstrip("/")
    assert {"null", "zero", "tty", "fd", "extra"} <= set(os.listdir(inside))


def test_device_node_symlink_in_image_is_refused(rootfs: Path, host_dir: Path) -> None:
    (rootfs / "dev" / "null").symlink_to(str(host_dir / "victim"))
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(rootfs)))
    assert (info.value.step, info.value.errno) == ("populate_dev", errno.ELOOP)
    assert info.value.__notes__ == ["/dev/null"]
    assert_untouched(host_dir)


def test_magic_link_mount_target_is_refused(rootfs: Path, host_dir: Path) -> None:
    mounts = (MountSpec("/proc", "proc", "proc"),
              MountSpec(f"/proc/self/root{host_dir}/m", "tmpfs", "tmpfs"))
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(rootfs), mounts=mounts))
    assert info.value.step == "mountpoint"
    assert info.value.errno in (errno.ELOOP, errno.EXDEV)
    assert_untouched(host_dir)


def test_sub_path_symlink_stays_inside_its_volume(rootfs: Path, host_dir: Path,
                                                   tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "escape").symlink_to(str(host_dir))  # a previous container left this behind
    (vol / "up").symlink_to("../host")
    mounts = (MountSpec("/a", str(vol), flags=native.MS_BIND, sub_path="escape/x"),
              MountSpec("/b", str(vol), flags=native.MS_BIND, sub_path="up/victim"))
    req = SpawnRequest(argv=["sh", "-c", "echo pwned > /a/f; echo pwned > /b/g"],
                       env=["PATH=/bin"], rootfs=str(rootfs), mounts=mounts)
    _, pidfd = spawn(req)
    assert wait(pidfd) == 0
    assert_untouched(host_dir)
    assert (vol / str(host_dir).lstrip("/") / "x" / "f").read_text() == "pwned\n"
    assert (vol / "host" / "victim" / "g").read_text() == "pwned\n"


def test_sub_path_through_a_file_fails_cleanly(rootfs: Path, tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "file").write_text("x")
    req = SpawnRequest(argv=["true"], env=[], rootfs=str(rootfs),
                       mounts=(MountSpec("/a", str(vol), flags=native.MS_BIND,
                                         sub_path="file/below"),))
    with pytest.raises(SpawnError) as info:
        spawn(req)
    assert (info.value.step, info.value.errno) == ("subpath", errno.ENOTDIR)
    assert info.value.__notes__ == [f"mount #0: {vol} (subPath file/below) on /a"]


def test_open_in_root_never_leaves_the_root(tmp_path: Path, host_dir: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    (root / "abs").symlink_to(str(host_dir))
    (root / "rel").symlink_to("../../../../../../" + str(host_dir).lstrip("/"))
    for path in ("abs/victim", "rel/victim", "../host/victim"):
        with pytest.raises(FileNotFoundError):
            os.close(mounts.open_in_root(str(root), path))
    fd = mounts.open_in_root(str(root), "abs/victim", "file")
    try:
        assert os.readlink(f"/proc/self/fd/{fd}") == f"{root}{host_dir}/victim"
    finally:
        os.close(fd)
    assert_untouched(host_dir)


def test_failures_name_their_item(rootfs: Path) -> None:
    too_high = native.RLIM_INFINITY  # the host's NOFILE hard limit is lower: EPERM
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(rootfs),
                                  rlimits=((7, 10, too_high),)))  # RLIMIT_NOFILE
    assert (info.value.step, info.value.__notes__) == ("rlimits", ["RLIMIT_NOFILE"])
    with pytest.raises(SpawnError) as info:
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(rootfs),
                                  sysctls=(("net.ipv4.no_such_key", "1"),)))
    assert (info.value.step, info.value.errno) == ("sysctl", errno.ENOENT)
    assert info.value.__notes__ == ["sysctl net.ipv4.no_such_key"]
    with pytest.raises(ValueError, match="invalid sysctl key"):
        spawn(SpawnRequest(argv=["true"], env=[], rootfs=str(rootfs),
                                  sysctls=(("net/../../etc/x", "1"),)))


def test_confinement_is_checked_before_anything_is_cloned(rootfs: Path) -> None:
    """A bundle asking for more than the host grants never reaches the spawn path."""
    config = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1,
                                       "hard": native.RLIM_INFINITY}]}}
    with pytest.raises(security.BundleError, match=r"process\.rlimits\[0\]: RLIMIT_NOFILE"):
        plan(rootfs, config, "true")

