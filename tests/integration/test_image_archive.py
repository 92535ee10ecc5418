"""``nsrun image import NAME --oci-archive|--docker-archive FILE`` through the real CLI:
archives built with tarfile (``imagekit``) and, where podman works, by ``podman save``; each
imported image runs a pod. Layers are applied in order with whiteouts; the image config
becomes the bundle's process; a bad archive is refused naming the entry, writes nothing
outside the bundle and keeps the old image."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tarfile
import uuid

import pytest

import imagekit
from imagekit import Layer
from world import pod

pytestmark = [pytest.mark.root("owners, pods"),
              pytest.mark.skipif(not os.path.exists(imagekit.BUSYBOX),
                                 reason="needs busybox-static")]

CONFIG = {"Env": ["PATH=/bin", "GREETING=hi"], "Entrypoint": ["/bin/sh", "-c"],
          "Cmd": ["echo $GREETING; id -u; id -g; pwd; ls /opq; test ! -e /gone && echo gone"],
          "WorkingDir": "/work", "User": "app:staff"}


def layers() -> list[Layer]:
    """busybox; then a layer with files the next one whites out; then the whiteouts."""
    lower = Layer().dir("opq").file("opq/x", "x").file("gone", "g").dir("keep")
    lower.file("keep/old", "old").file("keep/big", "b" * 100_000)
    upper = Layer().file(".wh.gone", "").dir("opq").file("opq/.wh..wh..opq", "")
    upper.file("opq/y", "y").dir("work", 0o777).add("keep/hard", tarfile.LNKTYPE, link="keep/big")
    upper.add("keep/fifo", tarfile.FIFOTYPE, mode=0o600)
    upper.add("keep/fuse", tarfile.CHRTYPE, mode=0o666, devmajor=10, devminor=229)
    upper.file("keep/suid", "s", 0o4755, uid=1000, gid=50)
    return [imagekit.busybox_layer(), lower, upper]


def run_log(world, name: str, image: str, **fields) -> str:
    """The log of a pod whose one container runs ``image`` (``fields``: command, args)."""
    text = pod(name, [{"name": "c", "image": image, **fields}], restartPolicy="Never")
    proc = world.nsrun(*world.run_args(world.manifest(name, text)))
    assert proc.returncode == 0, proc.stderr
    return world.nsrun("logs", name, check=True).stdout


@pytest.mark.parametrize("form", ["oci-dir", "oci-archive", "oci-zstd", "docker-archive"])
def test_an_imported_archive_runs_with_its_layers_and_config(net_world, tmp_path, form):
    world = net_world
    if form == "docker-archive":
        archive = imagekit.docker_archive(tmp_path / "d.tar", CONFIG, layers(), "demo:1")
    else:
        imagekit.oci_layout(tmp_path / "layout", CONFIG, layers(), ref="1",
                            compress="zstd" if form == "oci-zstd" else "gzip")
        archive = tmp_path / "layout" if form == "oci-dir" else \
            imagekit.tar_of(tmp_path / "layout", tmp_path / "o.tar")
    option = "--docker-archive" if form == "docker-archive" else "--oci-archive"
    proc = world.nsrun("image", "import", "demo:1", option, str(archive))
    assert proc.returncode == 0, proc.stderr
    assert "1 device node(s) skipped" in proc.stderr
    rootfs = world.images / "demo" / "1" / "rootfs"
    assert sorted(os.listdir(rootfs / "opq")) == ["y"] and not (rootfs / "gone").exists()
    keep = rootfs / "keep"
    assert sorted(os.listdir(keep)) == ["big", "fifo", "hard", "old", "suid"]
    assert os.stat(keep / "hard").st_ino == os.stat(keep / "big").st_ino
    assert stat.S_ISFIFO(os.lstat(keep / "fifo").st_mode)
    suid = os.stat(keep / "suid")
    assert (suid.st_mode & 0o7777, suid.st_uid, suid.st_gid) == (0o4755, 1000, 50)
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    process = json.loads((rootfs.parent / "config.json").read_text())["process"]
    assert process["user"] == {"uid": 1000, "gid": 50} and process["cwd"] == "/work"
    assert run_log(world, "p", "demo:1") == "hi\n1000\n50\n/work\ny\ngone\n"
    # the pod's args replace Cmd only: the image's two-word Entrypoint stays
    assert run_log(world, "q", "demo:1", args=["echo $GREETING from-args"]) == \
        "hi from-args\n"


def escaping_layers(outside: str) -> dict[str, tuple[Layer, str]]:
    """Layers that try to write outside the rootfs, and what the refusal says."""
    return {
        "dotdot": (Layer().file("../escaped", "x"), "'..' component leaves the root"),
        "absolute": (Layer().file(f"{outside}/escaped", "x"), "an absolute name"),
        "symlinked parent": (Layer().symlink("out", outside).file("out/escaped", "x"),
                             "out is not a directory (a symbolic link or a file)"),
        "hardlink out": (Layer().add("hard", tarfile.LNKTYPE, link="../escaped"),
                         "'..' component leaves the root"),
        "hardlink through a symlink": (Layer().symlink("out", outside).add(
            "hard", tarfile.LNKTYPE, link="out/escaped"), "out is not a directory"),
        "whiteout through a symlink": (Layer().symlink("out", outside).file(
            "out/.wh.escaped", ""), "out is not a directory"),
    }


CASES = sorted(escaping_layers("/x"))


@pytest.mark.parametrize("case", CASES)
def test_an_escaping_entry_is_refused_and_the_old_image_stays(net_world, tmp_path, case):
    world = net_world
    imagekit.oci_layout(tmp_path / "good", {"Cmd": ["echo", "old"]},
                        [imagekit.busybox_layer()])
    world.nsrun("image", "import", "x", "--oci-archive", str(tmp_path / "good"), check=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "escaped").write_text("host file\n")
    layer, message = escaping_layers(str(outside))[case]
    bad = tmp_path / "bad"
    imagekit.oci_layout(bad, {"Cmd": ["echo", "new"]}, [imagekit.busybox_layer(), layer])
    proc = world.nsrun("image", "import", "x", "--oci-archive", str(bad))
    assert proc.returncode == 2, proc
    assert proc.stderr.startswith(f"nsrun: --oci-archive {bad}: layer 1 (sha256:"), proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (outside / "escaped").read_text() == "host file\n"
    assert sorted(os.listdir(outside)) == ["escaped"]
    assert not list(world.images.rglob("escaped")) and not list(world.images.rglob("hard"))
    assert sorted(os.listdir(world.images / "x")) == ["latest"]  # no half-built bundle
    assert run_log(world, "p", "x") == "old\n"


def test_a_corrupt_layer_or_a_bad_config_is_refused_and_leaves_nothing(net_world, tmp_path):
    world = net_world
    blobs = imagekit.oci_layout(tmp_path / "o", {"Cmd": ["true"]}, [imagekit.busybox_layer()])
    layer = next(d for d, b in blobs.items() if b[:2] == b"\x1f\x8b")
    path = tmp_path / "o" / "blobs" / "sha256" / layer.split(":")[1]
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # the gzip trailer: the tar is whole, the bytes are not the blob
    path.write_bytes(bytes(data))
    proc = world.nsrun("image", "import", "c", "--oci-archive", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"layer 0 ({layer})" in proc.stderr, proc.stderr
    assert not (world.images / "c").exists()
    imagekit.oci_layout(tmp_path / "u", {"User": "nobody"}, [imagekit.busybox_layer()])
    proc = world.nsrun("image", "import", "u", "--oci-archive", str(tmp_path / "u"))
    assert proc.returncode == 2, proc.stderr
    assert 'config.User "nobody": no user "nobody" in the image\'s /etc/passwd' in proc.stderr
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 100)
    for option, archive, message in (
            ("--docker-archive", tmp_path / "junk.tar", "not a readable tar archive"),
            ("--oci-archive", tmp_path / "nosuch", "no such file or directory"),
            ("--docker-archive", tmp_path / "o", "manifest.json: not in the archive (it has "
             "oci-layout: use --oci-archive)")):
        proc = world.nsrun("image", "import", "j", option, str(archive))
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert sorted(os.listdir(world.images)) == ["busybox"]


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120,
                          check=check)


@pytest.fixture
def podman_image(tmp_path):
    """A podman image made from a busybox rootfs tar (``podman import``), removed after."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (make setup installs it)")
    name = f"localhost/nsrun-test-{uuid.uuid4().hex[:8]}:v1"
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(imagekit.busybox_layer().bytes())
    _podman("import", "--change", 'CMD ["echo", "from podman"]', "--change", "ENV WHO=podman",
            str(rootfs), name)
    yield name
    _podman("rmi", "--force", name, check=False)


@pytest.mark.parametrize("fmt", ["oci-archive", "docker-archive"])
def test_podman_save_archives_import_and_run(net_world, tmp_path, podman_image, fmt):
    world = net_world
    archive = tmp_path / f"{fmt}.tar"
    _podman("save", "--format", fmt, "-o", str(archive), podman_image)
    short = podman_image.removeprefix("localhost/")
    proc = world.nsrun("image", "import", short, f"--{fmt}", str(archive))
    assert proc.returncode == 0, proc.stderr
    assert run_log(world, "p", short, command=["sh", "-c", "echo $WHO"]) == "podman\n"
    assert run_log(world, "q", short) == "from podman\n"


def test_command_replaces_the_images_entrypoint_and_cmd(net_world, tmp_path):
    world = net_world
    imagekit.oci_layout(tmp_path / "o", CONFIG, [imagekit.busybox_layer(), Layer().dir("work")])
    world.nsrun("image", "import", "cmd", "--oci-archive", str(tmp_path / "o"), "--command",
                "echo", "from-command", check=True)
    config = json.loads((world.images / "cmd" / "latest" / "config.json").read_text())
    assert config["process"]["args"] == ["echo", "from-command"]
    assert config["annotations"] == {"org.nsrun.image.entrypoint": "[]"}
    assert run_log(world, "p", "cmd") == "from-command\n"
    # no Entrypoint left: a pod's args are the whole command line
    assert run_log(world, "q", "cmd", args=["echo", "from-args"]) == "from-args\n"
