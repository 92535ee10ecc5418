"""The device allow-list on pure cgroup v2: nsrun's BPF_PROG_TYPE_CGROUP_DEVICE program on each
container's cgroup, proven two ways.

* **What a container meets** (the escape probe, ``tests/shared/escape_probe.c``, built static
  into a copy of the busybox image): in ``/dev`` and an ``emptyDir`` a node can be made
  (runc's ``c *:* m``) and none opens (``nodev``: EACCES); in a fresh tmpfs mounted ``dev``
  (CAP_SYS_ADMIN, CAP_MKNOD) the twin of /dev/null (c 1:3) opens while fuse (c 10:229),
  loop0 (b 7:0), tun (c 10:200) and sda (b 8:0) are refused with EPERM, the program's answer.
* **The mechanism**: while that container runs, the bpf syscall (``BPF_PROG_QUERY`` on its
  cgroup, then the program's info by id) finds exactly one program of type
  ``BPF_PROG_TYPE_CGROUP_DEVICE`` attached for ``BPF_CGROUP_DEVICE``; a cgroup the test makes
  beside it has none, so the query can tell.

The probe runs only in the container: it refuses to run unless ``/.nsrun-escape-marker``
exists, a file the test puts only in the image's rootfs (checked here on the guest's "/").
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROBE_SRC = Path(__file__).parents[1] / "shared" / "escape_probe.c"
MARKER = ".nsrun-escape-marker"
NODES = {"null2": "c:1:3", "fuse": "c:10:229", "loop0": "b:7:0", "tun": "c:10:200",
         "disk": "b:8:0"}
FRESH_DEV = "mkdir -p /vol/d && mount -t tmpfs -o dev,mode=755 probe /vol/d"
HOLD = "until [ -e /vol/release ]; do sleep 0.1; done"

_libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF = 321  # x86_64
BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY = 13, 15, 16
BPF_CGROUP_DEVICE, BPF_PROG_TYPE_CGROUP_DEVICE = 6, 15


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    rc = _libc.syscall(SYS_BPF, cmd, attr, len(attr))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return rc


def device_programs(cgroup: Path) -> list[int]:
    """The types of the programs attached to ``cgroup`` for BPF_CGROUP_DEVICE."""
    ids = (ctypes.c_uint32 * 16)()
    attr = ctypes.create_string_buffer(64)
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        ctypes.c_uint32.from_buffer(attr, 0).value = fd  # query.target_fd
        ctypes.c_uint32.from_buffer(attr, 4).value = BPF_CGROUP_DEVICE  # query.attach_type
        ctypes.c_uint64.from_buffer(attr, 16).value = ctypes.addressof(ids)  # query.prog_ids
        ctypes.c_uint32.from_buffer(attr, 24).value = len(ids)  # query.prog_cnt
        _bpf(BPF_PROG_QUERY, attr)
    finally:
        os.close(fd)
    count = ctypes.c_uint32.from_buffer(attr, 24).value
    return [_program_type(ids[i]) for i in range(count)]


def _program_type(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(64)
    ctypes.c_uint32.from_buffer(attr, 0).value = prog_id
    fd = _bpf(BPF_PROG_GET_FD_BY_ID, attr)
    try:
        info = ctypes.create_string_buffer(256)  # struct bpf_prog_info: type is its first u32
        attr = ctypes.create_string_buffer(64)
        ctypes.c_uint32.from_buffer(attr, 0).value = fd
        ctypes.c_uint32.from_buffer(attr, 4).value = len(info)
        ctypes.c_uint64.from_buffer(attr, 8).value = ctypes.addressof(info)
        _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    finally:
        os.close(fd)
    return ctypes.c_uint32.from_buffer(info, 0).value


@pytest.fixture
def escape_image(pods, tmp_path) -> str:
    """``escape``: the busybox image with the static probe and the marker in its rootfs."""
    assert shutil.which("gcc"), "the VM ring needs gcc (the guest's / is the host's)"
    assert not os.path.exists("/" + MARKER)
    images = tmp_path / "images"
    shutil.copytree(pods.images, images, symlinks=True)
    rootfs = images / "escape" / "latest" / "rootfs"
    shutil.copytree(images / "busybox" / "latest", rootfs.parent, symlinks=True)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(rootfs / "bin" / "escape_probe"),
                    str(PROBE_SRC)], check=True, capture_output=True, timeout=60 * pods.slow)
    (rootfs / MARKER).write_text("only in the container's rootfs\n")
    pods.images = images
    return "escape"


def probe_args(where: str) -> list[str]:
    return [f"mknod:{where}/{name}:{spec}" for name, spec in NODES.items()]


def manifest(image: str) -> str:
    plain = ["/bin/escape_probe", *probe_args("/dev"), *probe_args("/vol")]
    admin = ["sh", "-c", f'{FRESH_DEV} && /bin/escape_probe "$@"; {HOLD}', "probe",
             *probe_args("/vol/d")]
    containers = [{"name": "plain", "image": image, "command": plain},
                  {"name": "admin", "image": image, "command": admin,
                   "securityContext": {"capabilities": {"add": ["SYS_ADMIN", "MKNOD"]}}}]
    for c in containers:
        c["volumeMounts"] = [{"name": "vol", "mountPath": "/vol"}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dev"},
                       "spec": {"restartPolicy": "Never", "containers": containers,
                                "securityContext": {"seccompProfile": {"type": "Unconfined"}},
                                "volumes": [{"name": "vol", "emptyDir": {}}]}})


def results(pods, container: str) -> dict[str, str]:
    log = (pods.pod_dir("dev") / "logs" / container / "0.log").read_text()
    return dict(line.rsplit(" ", 1) for line in log.splitlines() if " " in line)


def test_the_device_program_denies_all_but_the_allowed_devices(pods, escape_image,
                                                               cgroup_factory):
    proc = pods.run(manifest(escape_image), "-d", "--cgroups", "v2", name="dev")
    assert proc.returncode == 0, proc.stderr
    log = pods.pod_dir("dev") / "logs" / "admin" / "0.log"
    pods.wait(lambda: "open /vol/d/disk" in log.read_text(), 60, "the admin probe's lines")
    pod = pods.cgroup("dev")
    assert device_programs(pod / "admin") == [BPF_PROG_TYPE_CGROUP_DEVICE]
    assert device_programs(cgroup_factory().path) == []  # the query sees when there is none
    (pods.pod_dir("dev") / "volumes" / "vol" / "release").write_text("")
    pods.wait(lambda: pods.status("dev")["status"]["phase"] == "Succeeded", 60, "Succeeded")
    plain, admin = results(pods, "plain"), results(pods, "admin")
    for name in NODES:
        for where in ("/dev", "/vol"):  # made (the program's "c *:* m"), nodev refuses
            assert plain[f"mknod {where}/{name}"] == "ok", plain
            assert plain[f"open {where}/{name}"] == "EACCES", plain
        assert admin[f"mknod /vol/d/{name}"] == "ok", admin
    assert admin["open /vol/d/null2"] == "ok", admin
    for name in ("fuse", "loop0", "tun", "disk"):
        assert admin[f"open /vol/d/{name}"] == "EPERM", admin  # the program, not nodev
