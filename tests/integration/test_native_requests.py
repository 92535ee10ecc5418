"""The Python side of the C spawn path (no root needed): constants and step names read
from the extension, OCI mounts into mount specs, paths resolved inside a root, the PATH
lookup and requests refused before any clone."""

from __future__ import annotations

from pathlib import Path

import pytest

from nsrun import native
from nsrun.bundle.mounts import mount_from_oci
from nsrun.host import mounts
from nsrun.host.childreq import exec_candidates
from nsrun.host.spawn import spawn
from nsrun.request import MountSpec, SpawnRequest

pytestmark = pytest.mark.usefixtures("no_leftovers")


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
