"""The escape suite (issue 9): each escape tried from inside a real container through the real
``nsrun`` CLI, each refused, with the mechanism that refused it asserted by its errno.

* **Devices**: ``mknod`` + ``open`` of null (c 1:3), fuse (c 10:229), loop0 (b 7:0) and the
  host's own disk (its major:minor from /sys/block) in ``/dev`` and in an ``emptyDir``:
  ``mknod`` is allowed by the device cgroup (runc's ``c *:* m``) and the open fails with
  ``EACCES``: both mounts are ``nodev``. In a fresh tmpfs mounted ``dev`` (CAP_SYS_ADMIN),
  the device cgroup refuses with ``EPERM`` (null still opens). With ``--cgroups none`` there
  is no device cgroup: ``CAP_MKNOD`` is gone, so ``mknod`` itself fails with ``EPERM``, even
  when the pod adds MKNOD.
* **Keyrings**: the test puts a key in host root's user keyring (``@u``); the container's
  session keyring is its own (``_ses.<namespace>_<pod>_<container>``), so the key is not
  possessed and reading it fails with ``EACCES``.
* **seccomp** (``RuntimeDefault``, containerd's profile): ``unshare(CLONE_NEWUSER)``,
  ``bpf``, ``keyctl``, ``perf_event_open``, ``process_vm_readv`` and ``AF_VSOCK``/``AF_ALG``
  sockets fail with ``EPERM``; the same calls under ``Unconfined`` get the kernel's own
  answer (so EPERM came from the filter). Devices and keyrings stay closed when Unconfined.

The probe (``tests/shared/escape_probe.c``, built static with gcc into a copy of the busybox
image) refuses to run unless ``/.nsrun-escape-marker`` exists: the test puts it only in the
image's rootfs, the container's "/"."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, keyrings)"),
              pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")]

PROBE_SRC = Path(__file__).parents[1] / "shared" / "escape_probe.c"
MARKER = ".nsrun-escape-marker"


@pytest.fixture
def world(net_world):
    return net_world


@pytest.fixture
def image(world) -> str:
    """``escape``: the busybox image plus the static probe and the marker in its rootfs."""
    src, dst = world.images / "busybox" / "latest", world.images / "escape" / "latest"
    shutil.copytree(src, dst, symlinks=True)
    add_probe(dst / "rootfs")
    return "escape"


def add_probe(rootfs: Path) -> None:
    """The static probe in ``rootfs``/bin and the marker at its top."""
    subprocess.run(["gcc", "-static", "-O1", "-o", str(rootfs / "bin" / "escape_probe"),
                    str(PROBE_SRC)], check=True, capture_output=True)
    (rootfs / MARKER).write_text("only in the container's rootfs\n")


def test_probe_refuses_to_run_on_the_host(image, world):
    probe = world.images / "escape" / "latest" / "rootfs" / "bin" / "escape_probe"
    assert not os.path.exists("/" + MARKER)
    proc = subprocess.run([str(probe), "unshare-user"], capture_output=True, text=True)
    assert proc.returncode == 99 and proc.stdout == "", proc


_libc = ctypes.CDLL(None, use_errno=True)
_SYS_ADD_KEY, _SYS_KEYCTL = 248, 250  # x86_64
_KEY_SPEC_USER_KEYRING, _KEYCTL_INVALIDATE = -4, 21


@pytest.fixture
def host_key():
    """A key in host root's user keyring (@u), invalidated afterwards: its serial."""
    if os.uname().machine != "x86_64":
        pytest.skip("syscall numbers are x86_64's")
    payload = b"host secret"
    serial = _libc.syscall(_SYS_ADD_KEY, b"user", f"nsrun-escape-{os.getpid()}".encode(),
                           payload, len(payload), _KEY_SPEC_USER_KEYRING)
    if serial < 0:
        pytest.skip(f"add_key: {os.strerror(ctypes.get_errno())}")
    yield serial
    _libc.syscall(_SYS_KEYCTL, _KEYCTL_INVALIDATE, serial)


def host_disk() -> str:
    """"major:minor" of a real block device of this host (not loop, ram or zram)."""
    for dev in sorted(os.listdir("/sys/block")):
        if not dev.startswith(("loop", "ram", "zram", "nbd")):
            return (Path("/sys/block") / dev / "dev").read_text().strip()
    pytest.skip("no real block device in /sys/block")


def device_args(where: str) -> list[str]:
    major, minor = host_disk().split(":")
    return [f"mknod:{where}/null2:c:1:3", f"mknod:{where}/fuse:c:10:229",
            f"mknod:{where}/loop0:b:7:0", f"mknod:{where}/disk:b:{major}:{minor}"]


def drivers() -> list:
    from nsrun.host import cgroupdriver
    from nsrun.host.preflight import CgroupHost

    host = CgroupHost.probe()
    v1 = "devices" in cgroupdriver.v1_hierarchies(host)
    v2 = host.mount is not None and not host.readonly
    return [pytest.param("v1", marks=pytest.mark.skipif(not v1, reason="no v1 devices")),
            pytest.param("v2", marks=pytest.mark.skipif(not v2, reason="no cgroup2 mount")),
            "none"]


def run_pod(world, containers: list[dict], *extra: str, profile: str | None = None,
            options: tuple[str, ...] = ()) -> dict:
    """Run pod ``esc`` to completion; each container's probe lines as {what: result}."""
    spec = {"restartPolicy": "Never", "containers": containers,
            "volumes": [{"name": "vol", "emptyDir": {}}]}
    if profile:
        spec["securityContext"] = {"seccompProfile": {"type": profile}}
    text = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "esc"},
                       "spec": spec})
    proc = world.nsrun(*options, *world.run_args("-d", *extra), world.manifest("esc", text))
    assert proc.returncode == 0, proc.stderr
    world.wait_column("esc", "Completed", timeout=30)
    out = {}
    for c in containers:
        log = (world.root / "pods" / "esc" / "logs" / c["name"] / "0.log").read_text()
        out[c["name"]] = dict(line.rsplit(" ", 1) for line in log.splitlines()
                              if line.count(" ") >= 1 and not line.startswith("nsrun:"))
        out[c["name"]]["log"] = log
    return out


def container(name: str, args: list[str], *, shell: str = "", caps: list[str] = ()) -> dict:
    command = (["sh", "-c", f'{shell} && exec /bin/escape_probe "$@"', "probe", *args]
               if shell else ["/bin/escape_probe", *args])
    c = {"name": name, "image": "escape", "command": command,
         "volumeMounts": [{"name": "vol", "mountPath": "/vol"}]}
    if caps:
        c["securityContext"] = {"capabilities": {"add": list(caps)}}
    return c


FRESH_DEV = "mkdir -p /vol/d && mount -t tmpfs -o dev,mode=755 probe /vol/d"


@pytest.mark.parametrize("driver", drivers())
def test_device_nodes_do_not_open(world, image, host_key, driver):
    found = run_pod(world, [
        container("plain", [*device_args("/dev"), *device_args("/vol"),
                            f"keyread:{host_key}", "keyring"]),
        container("admin", device_args("/vol/d"), shell=FRESH_DEV, caps=["SYS_ADMIN", "MKNOD"]),
    ], "--cgroups", driver, profile="Unconfined")
    plain, admin = found["plain"], found["admin"]
    for where in ("/dev", "/vol"):
        for node in ("null2", "fuse", "loop0", "disk"):
            if driver == "none":  # no device cgroup: no CAP_MKNOD
                assert plain[f"mknod {where}/{node}"] == "EPERM", plain["log"]
            else:  # the device cgroup allows mknod; nodev refuses the open
                assert plain[f"mknod {where}/{node}"] == "ok", plain["log"]
                assert plain[f"open {where}/{node}"] == "EACCES", plain["log"]
    for node in ("fuse", "loop0", "disk"):
        if driver == "none":
            assert admin[f"mknod /vol/d/{node}"] == "EPERM", admin["log"]
        else:  # a mount with dev: the device cgroup's EPERM
            assert admin[f"open /vol/d/{node}"] == "EPERM", admin["log"]
    if driver != "none":
        assert admin["open /vol/d/null2"] == "ok", admin["log"]
    # keyrings: not the supervisor's session keyring, so host root's key is not possessed
    assert plain["keyread"] == "EACCES", plain["log"]
    assert plain["keyring"].endswith(";_ses.default_esc_plain"), plain["log"]


SYSCALLS = ["unshare-user", "bpf", "keyctl", "perf", "vsock", "alg", "ptrace"]


def test_runtime_default_denies_with_eperm(world, image, host_key):
    found = run_pod(world, [container("probe", [*SYSCALLS, f"keyread:{host_key}"])],
                    profile="RuntimeDefault")["probe"]
    for what in ("unshare-user", "bpf", "keyctl", "perf", "vsock", "alg", "process_vm_readv",
                 "keyread"):
        assert found[what] == "EPERM", (what, found["log"])
    # containerd allows ptrace itself (kernel >= 4.8): it reaches only the container's own
    assert found["ptrace"] == "ok", found["log"]


def test_unconfined_gets_the_kernels_answers(world, image, host_key):
    """The same calls without a filter: the kernel's own errors (so EPERM above was the
    filter's), and still no device access (test_device_nodes_do_not_open) and no key."""
    found = run_pod(world, [container("probe", [*SYSCALLS, f"keyread:{host_key}"])],
                    profile="Unconfined")["probe"]
    assert found["unshare-user"] == "ok", found["log"]
    assert found["bpf"] == "EINVAL" and found["keyctl"] == "EOPNOTSUPP", found["log"]
    assert found["perf"] == "EFAULT", found["log"]
    assert found["vsock"] != "EPERM" and found["alg"] != "EPERM", found["log"]
    assert found["keyread"] == "EACCES", found["log"]  # not possessed: its own keyring


@pytest.mark.parametrize(("options", "unshare"), [
    ((), "EPERM"),                              # --seccomp-default is on unless said
    (("--seccomp-default",), "EPERM"),
    (("--seccomp-default=false",), "ok"),       # the kubelet's default
])
def test_seccomp_default_option(world, image, options, unshare):
    found = run_pod(world, [container("probe", ["unshare-user"])], options=options)["probe"]
    assert found["unshare-user"] == unshare, found["log"]


OCI_CAPS = ["CAP_SYS_ADMIN", "CAP_MKNOD"]
OCI_PROBE = ("mount -t tmpfs -o dev,mode=755 t /tmp && mknod /tmp/tun c 10 200; "
             "mknod /tmp/fuse c 10 229; head -c 0 /tmp/tun && echo tun-ok; head -c 0 /tmp/fuse")


@pytest.mark.parametrize("name", ["nsrun-oci", "runc"])
def test_oci_bundle_device_rules_apply(oci, name):
    """nsrun-oci applies ``linux.resources.devices`` (issue 13) as runc does: the one device
    the bundle allows opens, another is refused with EPERM (runc already refuses its mknod:
    its list has no ``c *:* m``; nsrun adds runc >= 1.2's defaults, so mknod works and the
    open is refused)."""
    if oci_driver() not in ("v1", "v2"):
        pytest.skip("no cgroup for a device allow-list")
    caps = {k: OCI_CAPS for k in ("bounding", "effective", "permitted")}
    bundle = oci.bundle("dev1", ["sh", "-c", OCI_PROBE], process_capabilities=caps,
                        linux_resources={"devices": [
                            {"allow": False, "access": "rwm"},
                            {"allow": True, "type": "c", "major": 10, "minor": 200,
                             "access": "rwm"}]})
    for applet in ("mount", "mknod"):
        link = oci.tmp / "rootfs" / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    out = oci.runtimes[name]("run", "--bundle", str(bundle), "dev1", stdin=open(os.devnull))
    assert "tun-ok" in out.stdout, out
    assert "fuse: Operation not permitted" in out.stderr, out


def oci_driver() -> str:
    from nsrun.host import cgroupdriver
    from nsrun.host.cgroupfs import CgroupFs
    from nsrun.host.preflight import CgroupHost

    return cgroupdriver.auto_kind(CgroupHost.probe(), CgroupFs())[0]


@pytest.mark.parametrize(("extra", "want"), [((), ";_ses.k1"), (("--no-new-keyring",), None)])
def test_oci_session_keyring(oci, extra, want):
    """``nsrun-oci create`` joins a new session keyring named as runc names it, unless
    ``--no-new-keyring`` (then the caller's stays)."""
    bundle = oci.bundle("k1", ["/bin/escape_probe", "keyring"])
    add_probe(oci.tmp / "rootfs")
    rt = oci.runtimes["nsrun-oci"]
    assert oci.create(rt, "k1", bundle, *extra).returncode == 0
    rt("start", "k1", check=True)
    rt.wait_status("k1", "stopped")
    out = oci.output("k1")[0]
    rt("delete", "k1", check=True)
    own = ctypes.create_string_buffer(256)
    _libc.syscall(_SYS_KEYCTL, 6, -3, own, 256)  # KEYCTL_DESCRIBE @s: the caller's
    line = out.strip().split(" ", 1)[1]
    assert line.endswith(want) if want else line == own.value.decode(), (out, own.value)
