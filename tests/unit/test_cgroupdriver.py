"""``--cgroups``: which driver ``auto`` picks on a hybrid, a pure v2, a pure v1 and a host
without cgroups (fake mountinfo, /proc/self/cgroup and cgroupfs), what it says in one line,
what ``v2``/``v1``/``none`` do, and the driver records read back from a state dir."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_cgroupfs import FakeKernel
from fake_cgroupv1 import FakeV1

from nsrun.errors import PreflightError
from nsrun.host import cgroupdriver
from nsrun.host.cgroupdriver import NO_POD, NoCgroups
from nsrun.host.podcgroup import V2Driver
from nsrun.host.podcgroupv1 import V1Driver
from nsrun.host.preflight import CgroupHost


class Lines(list):
    def __call__(self, message: str) -> None:
        self.append(message)


def host(tmp_path: Path, mountinfo: str, proc_cgroup: str) -> CgroupHost:
    (tmp_path / "mi").write_text(mountinfo)
    (tmp_path / "pc").write_text(proc_cgroup)
    return CgroupHost.probe(str(tmp_path / "mi"), str(tmp_path / "pc"))


def v2_line(root: Path) -> str:
    return f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n"


@pytest.fixture
def hybrid(tmp_path):
    """The reference machine: v1 controllers, a cgroup2 mount with only hugetlb."""
    v2 = FakeKernel(tmp_path / "unified", controllers=("hugetlb",))
    v1 = FakeV1(tmp_path / "v1")
    h = host(tmp_path, v1.mountinfo() + v2_line(v2.root),
             "4:memory:/process_api/x\n1:cpu:/\n0::/\n")
    return h, v2


def test_auto_picks_v1_on_a_hybrid_host_and_says_so(hybrid, tmp_path):
    h, v2 = hybrid
    said = Lines()
    driver = cgroupdriver.choose("auto", h, v2.fs, say=said)
    assert isinstance(driver, V1Driver) and driver.mode == "auto"
    assert said == [f"cgroup driver v1: hybrid host: cgroup2 at {v2.root} has no cpu, memory "
                    "or pids controller, cgroup v1 holds cpu, cpuacct, memory, pids, freezer, "
                    "devices"]
    assert h.v1_own_cgroup("memory") == tmp_path / "v1" / "memory" / "process_api" / "x"


def test_auto_picks_v2_on_a_pure_v2_host_silently(tmp_path):
    v2 = FakeKernel(tmp_path / "cg")
    said = Lines()
    driver = cgroupdriver.choose("auto", host(tmp_path, v2_line(v2.root), "0::/\n"), v2.fs,
                                 say=said)
    assert isinstance(driver, V2Driver) and driver.mode == "auto" and said == []


def test_auto_picks_v1_on_a_pure_v1_host(tmp_path):
    v1 = FakeV1(tmp_path / "v1")
    said = Lines()
    driver = cgroupdriver.choose("auto", host(tmp_path, v1.mountinfo(), "1:cpu:/\n"),
                                 FakeKernel(tmp_path / "none").fs, say=said)
    assert isinstance(driver, V1Driver)
    assert said == ["cgroup driver v1: no cgroup2 hierarchy, cgroup v1 holds cpu, cpuacct, "
                    "memory, pids, freezer, devices"]


def test_auto_picks_none_without_any_hierarchy(tmp_path):
    said, warned = Lines(), Lines()
    h = host(tmp_path, "", "")
    driver = cgroupdriver.choose("auto", h, FakeKernel(tmp_path / "none").fs, say=said)
    assert isinstance(driver, NoCgroups)
    assert said == ["cgroup driver none: no usable cgroup hierarchy; no device cgroup: "
                    "containers get nodev mounts and no CAP_MKNOD"]
    pod = driver.create_pod(None, "u", {"memory.max": "1048576"}, {}, warn=warned)
    assert pod is NO_POD
    assert warned == ["no cgroup2 hierarchy is mounted: running without a pod cgroup, this "
                      "pod's memory.max is not enforced"]


def test_a_v2_mount_without_controllers_and_no_v1_is_still_v2(tmp_path):
    """Grouping, cgroup.kill and the device program still need a cgroup."""
    v2 = FakeKernel(tmp_path / "cg", controllers=())
    driver = cgroupdriver.choose("auto", host(tmp_path, v2_line(v2.root), "0::/\n"), v2.fs)
    assert isinstance(driver, V2Driver)


def test_explicit_modes(hybrid, tmp_path):
    h, v2 = hybrid
    said = Lines()
    assert isinstance(cgroupdriver.choose("v2", h, v2.fs, say=said), V2Driver)
    assert isinstance(cgroupdriver.choose("v1", h, v2.fs, say=said), V1Driver)
    assert said == []  # auto says what it picked; v2 and v1 are what was asked
    assert isinstance(cgroupdriver.choose("none", h, v2.fs, say=said), NoCgroups)
    assert said == ["cgroup driver none: no device cgroup: containers get nodev mounts and "
                    "no CAP_MKNOD"]  # what a pod then lacks, said in one line
    with pytest.raises(PreflightError, match="--cgroups=v1: no cgroup v1 hierarchy"):
        cgroupdriver.choose("v1", host(tmp_path, v2_line(v2.root), "0::/\n"), v2.fs)


def test_none_group_refuses_what_needs_a_cgroup():
    group = NO_POD.leaf("x")
    group.update({})
    group.set_devices(object())  # no device cgroup: confinement does without
    with pytest.raises(PreflightError, match="--cgroups=none"):
        group.update({"memory.max": "1"})
    with pytest.raises(PreflightError, match="cannot freeze"):
        group.freeze()


def test_records_outside_every_hierarchy_are_ignored(hybrid):
    h, _ = hybrid
    cgroupdriver.destroy_recorded(["/etc", "relative/pod-x", "/sys/../pod-x"], h)
    assert cgroupdriver.group_of(1, ["/etc"], h) is None
