"""The device allow-list of every container, on the cgroup v1 driver (the devices
controller) and the cgroup v2 driver (a BPF_PROG_TYPE_CGROUP_DEVICE program; it works on a
hybrid host's cgroup2 mount too), with real processes through the real ``nsrun`` CLI.

In a container that holds CAP_MKNOD and CAP_SYS_ADMIN, the probe mounts a fresh tmpfs with
``dev`` (so ``nodev`` cannot be what refuses) and makes device nodes there: ``mknod`` works
(runc's ``c *:* m``/``b *:* m``), /dev/null's twin opens, and fuse (c 10:229), loop0 (b 7:0)
and the host's own disk are refused with EPERM: the device cgroup's answer (a ``nodev`` mount
gives EACCES, a missing capability fails the mknod). A bundle's ``linux.resources.devices``
rule opens one more device. On v1 the leaf's ``devices.list`` is checked from the host too.

The probe refuses to run outside a container: it needs the marker variable the manifest sets
and to be pid 1 of its own pid namespace."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from world import World

sys.path.insert(0, str(Path(__file__).parents[1] / "probes"))
import device_pod  # noqa: E402 - the probe shared with the VM ring


@pytest.fixture
def world(net_world):
    return net_world


def host_disk() -> str:
    """major and minor of a block device of this host (its first disk)."""
    with open("/proc/partitions") as f:
        major, minor = next(line.split()[:2] for line in f.read().splitlines()[2:] if line)
    return f"{major} {minor}"


def drivers() -> list:
    from nsrun.host import cgroupdriver
    from nsrun.host.preflight import CgroupHost

    host = CgroupHost.probe()
    v1 = "devices" in cgroupdriver.v1_hierarchies(host)
    v2 = host.mount is not None and not host.readonly
    return [pytest.param("v1", marks=pytest.mark.skipif(not v1, reason="no v1 devices")),
            pytest.param("v2", marks=pytest.mark.skipif(not v2, reason="no cgroup2 mount"))]


pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (cgroups, mknod)")]


def with_device_rules(world: World, name: str, rules: list[dict]) -> str:
    """A copy of the busybox image whose bundle has ``linux.resources.devices``."""
    src, dst = world.images / "busybox" / "latest", world.images / name / "latest"
    shutil.copytree(src, dst, symlinks=True)
    config = json.loads((dst / "config.json").read_text())
    config.setdefault("linux", {}).setdefault("resources", {})["devices"] = rules
    (dst / "config.json").write_text(json.dumps(config))
    return name


def probe(world: World, driver: str, image: str = "busybox", extra: str = "") -> dict:
    text = device_pod.manifest(image, host_disk())
    proc = world.nsrun(*world.run_args("--cgroups", driver, "-d", *extra.split()),
                       world.manifest("dev", text))
    assert proc.returncode == 0, proc.stderr
    world.wait_column("dev", "Completed", timeout=30)
    out = (world.root / "pods" / "dev" / "logs" / "probe" / "0.log").read_text()
    mountinfo = out.splitlines()[0]
    assert " /tmp/d " in mountinfo and "nodev" not in mountinfo, out  # dev is allowed there
    return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in out.splitlines()[1:]
            if line.startswith(("mknod ", "open "))} | {"log": out}


@pytest.mark.parametrize("driver", drivers())
def test_only_allowed_devices_open(world, driver):
    found = probe(world, driver)
    log = found["log"]
    assert "mknod null ok" in log and "open null ok" in log, log
    for name in ("fuse", "loop0", "tun", "disk"):
        assert f"mknod {name} ok" in log, log
        assert f"open {name} ok" not in log, log
        assert f"/tmp/d/{name}: Operation not permitted" in log, log  # EPERM, not EACCES
    assert "Permission denied" not in log, log


@pytest.mark.parametrize("driver", drivers())
def test_a_bundle_rule_allows_one_more_device(world, driver):
    image = with_device_rules(world, "busytun", [
        {"allow": False, "access": "rwm"},  # as runc spec and containerd write it
        {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rw"}])
    log = probe(world, driver, image)["log"]
    assert "open tun ok" in log and "open null ok" in log, log
    assert "/tmp/d/fuse: Operation not permitted" in log, log


def test_v1_leaf_devices_list(world):
    from nsrun.host import cgroupdriver
    from nsrun.host.preflight import CgroupHost

    if "devices" not in cgroupdriver.v1_hierarchies(CgroupHost.probe()):
        pytest.skip("no cgroup v1 devices hierarchy")
    text = """apiVersion: v1
kind: Pod
metadata: {name: dev}
spec:
  containers: [{name: app, image: busybox, command: [sleep, "600"]}]
"""
    proc = world.nsrun(*world.run_args("--cgroups", "v1", "-d"), world.manifest("dev", text))
    assert proc.returncode == 0, proc.stderr
    world.wait_column("dev", "Running")
    record = (world.root / "pods" / "dev" / "cgroup").read_text().split()
    leaf = Path(next(p for p in record if "/devices/" in p)) / "app"
    assert (leaf / "devices.list").read_text().split("\n")[:-1] == [
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
        "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm"]
    world.nsrun("delete", "dev", "--grace-period", "0", check=True)
