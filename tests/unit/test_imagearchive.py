"""The pure decisions of ``image import --oci-archive|--docker-archive``: layer entry names
and whiteouts, choosing the image, the image config as the bundle's process, and the
entrypoint kept for a pod's ``args``."""

from __future__ import annotations

import pytest

from nsrun.bundle.oci import ENTRYPOINT_ANNOTATION, command_line, image_entrypoint
from nsrun.core import imagearchive as ia


@pytest.mark.parametrize("name, kind, path", [
    ("bin/sh", b"0", ("bin", "sh")),
    ("./etc/", b"5", ("etc",)),
    ("a//b/./c", b"0", ("a", "b", "c")),
    ("lib/.wh.libc.so", b"0", ("lib", "libc.so")),
    ("var/.wh..wh..opq", b"0", ("var",)),
    (".wh..wh..opq", b"0", ()),
    ("dev/sda", b"4", ("dev", "sda")),
    ("dev/fuse", b"3", ("dev", "fuse")),
    ("p", b"6", ("p",)),
    ("./", b"5", ()),
    ("usr/.wh..wh.plnk", b"0", ("usr", ".wh..wh.plnk")),
])
def test_entries(name, kind, path):
    expected = {"bin/sh": ia.FILE, "./etc/": ia.DIR, "a//b/./c": ia.FILE,
                "lib/.wh.libc.so": ia.REMOVE, "var/.wh..wh..opq": ia.EMPTY,
                ".wh..wh..opq": ia.EMPTY, "dev/sda": ia.SKIP_DEVICE,
                "dev/fuse": ia.SKIP_DEVICE, "p": ia.FIFO, "./": ia.SKIP,
                "usr/.wh..wh.plnk": ia.SKIP}[name]
    assert ia.entry(name, kind) == ia.Entry(expected, path)


def test_links_and_refusals():
    assert ia.entry("b", b"1", "./a/b") == ia.Entry(ia.HARDLINK, ("b",), ("a", "b"))
    assert ia.entry("s", b"2", "/etc/../x") == ia.Entry(ia.SYMLINK, ("s",))  # never followed
    for name, why in (("../x", "'..' component"), ("a/../../x", "'..' component"),
                      ("/etc/passwd", "an absolute name"), ("a\0b", "NUL")):
        with pytest.raises(ia.ArchiveError, match=why):
            ia.entry(name, b"0")
    with pytest.raises(ia.ArchiveError, match="'..' component"):
        ia.entry("h", b"1", "../../etc/shadow")
    with pytest.raises(ia.ArchiveError, match="unsupported entry type"):
        ia.entry("x", b"V")


def _desc(n: int, ref: str = "", arch: str = "") -> dict:
    d = {"digest": f"sha256:{n:064x}"}
    if ref:
        d["annotations"] = {ia.REF_NAME: ref}
    if arch:
        d["platform"] = {"os": "linux", "architecture": arch}
    return d


def test_choosing_the_oci_image():
    want = ("busybox", "1.36")
    one = {"manifests": [_desc(1)]}
    assert ia.choose_oci(one, want, "amd64") == _desc(1)
    named = {"manifests": [_desc(1, "docker.io/library/busybox:1.35"),
                           _desc(2, "docker.io/library/busybox:1.36"), _desc(3, "other:1.36")]}
    assert ia.choose_oci(named, want, "amd64") == named["manifests"][1]
    assert ia.choose_oci({"manifests": [_desc(1, "1.35"), _desc(2, "1.36")]}, want,
                         "amd64")["digest"].endswith("2")
    platforms = {"manifests": [_desc(1, arch="arm64"), _desc(2, arch="amd64")]}
    assert ia.choose_oci(platforms, want, "amd64") == _desc(2, arch="amd64")
    with pytest.raises(ia.ArchiveError, match=r"2 images \(a:1, b:1\); import it under one"):
        ia.choose_oci({"manifests": [_desc(1, "a:1"), _desc(2, "b:1")]}, want, "amd64")
    for bad in ({}, {"manifests": []}, {"manifests": ["x"]}, []):
        with pytest.raises(ia.ArchiveError, match="index.json"):
            ia.choose_oci(bad, want, "amd64")
    with pytest.raises(ia.ArchiveError, match="is not sha256:<64 hex>"):
        ia.digest_of({"digest": "sha256:../../etc/passwd"}, "index.json")


def test_choosing_the_docker_image():
    images = [{"RepoTags": ["a:1"], "Config": "1.json"}, {"RepoTags": ["b:latest"]}]
    assert ia.choose_docker(images, ("b", "latest")) == images[1]
    assert ia.choose_docker(images[:1], ("x", "latest")) == images[0]
    with pytest.raises(ia.ArchiveError, match=r"2 images \(a:1, b:latest\)"):
        ia.choose_docker(images, ("x", "latest"))
    with pytest.raises(ia.ArchiveError, match="not a list of images"):
        ia.choose_docker({"Config": "x"}, ("x", "latest"))
    assert ia.member_path("./abc/layer.tar", "Layers[0]") == "abc/layer.tar"
    with pytest.raises(ia.ArchiveError, match="'..'"):
        ia.member_path("../../etc/shadow", "Layers[0]")


def test_the_image_config_as_the_process():
    cfg = ia.image_config({"config": {"Entrypoint": ["/e", "-x"], "Cmd": ["c"],
                                      "Env": ["A=1"], "WorkingDir": "/w"}}, "c.json")
    assert ia.process(cfg, "/bin") == {"args": ["/e", "-x", "c"], "env": ["PATH=/bin", "A=1"],
                                       "cwd": "/w"}
    assert ia.process({"Env": ["PATH=/x"]}, "/bin") == {"args": ["sh"], "env": ["PATH=/x"],
                                                        "cwd": "/"}
    with pytest.raises(ia.ArchiveError, match="c.json: config.Cmd is not a list of strings"):
        ia.image_config({"config": {"Cmd": "echo"}}, "c.json")
    assert ia.diff_ids({}, 2, "c.json") == [None, None]
    with pytest.raises(ia.ArchiveError, match="rootfs.diff_ids has 1 entries for 2 layers"):
        ia.diff_ids({"rootfs": {"diff_ids": [f"sha256:{0:064x}"]}}, 2, "c.json")


PASSWD = "root:x:0:0::/:/bin/sh\napp:x:1000:1001::/:/bin/sh\nbad:x:x:y::/:\n"
GROUP = "root:x:0:\nstaff:x:50:\n"


@pytest.mark.parametrize("spec, ids", [("app", (1000, 1001)), ("1000", (1000, 1001)),
                                       ("4242", (4242, 0)), ("app:staff", (1000, 50)),
                                       ("app:7", (1000, 7)), ("0:staff", (0, 50))])
def test_users(spec, ids):
    assert ia.user(spec, PASSWD, GROUP) == ids


def test_unknown_users_and_groups_are_named():
    with pytest.raises(ia.ArchiveError, match='no user "bad" in the image'):
        ia.user("bad", PASSWD, GROUP)
    with pytest.raises(ia.ArchiveError, match='no group "wheel" in the image'):
        ia.user("app:wheel", PASSWD, GROUP)


def test_a_pods_args_keep_the_images_whole_entrypoint():
    config = {"annotations": {ENTRYPOINT_ANNOTATION: '["/bin/sh", "-c"]'}}
    entrypoint = image_entrypoint(config)
    assert command_line(["/bin/sh", "-c", "cmd"], None, ["echo"], entrypoint) == \
        ["/bin/sh", "-c", "echo"]
    assert command_line(["cmd", "x"], None, ["y"], image_entrypoint({"annotations": {
        ENTRYPOINT_ANNOTATION: "[]"}})) == ["y"]  # no Entrypoint: args replace Cmd whole
    assert command_line(["a", "b"], None, ["y"], image_entrypoint({})) == ["a", "y"]
    assert command_line(["a"], ["c"], ["d"], entrypoint) == ["c", "d"]
    assert image_entrypoint({"annotations": {ENTRYPOINT_ANNOTATION: "{"}}) is None
