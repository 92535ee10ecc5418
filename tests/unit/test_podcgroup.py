"""The pod cgroup against a fake cgroupfs in tmp_path: QoS layout, controllers enabled down
the path, pod and leaf values written before any container starts, the ``--cgroups`` modes
on unified, hybrid, v1-only and read-only hosts, delegation (the no-internal-processes rule),
rollback of a half-made tree, teardown and pruning."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from fake_cgroupfs import FakeKernel

from nsrun.errors import CgroupError, PreflightError
from nsrun.host import cgroupdriver, cgroupfs, preflight
from nsrun.host.podcgroup import V2Driver, V2Pod, destroy_path, resolve_parent
from nsrun.host.preflight import SUPERVISOR_LEAF, CgroupHost

NO_SUCH_PID = 4_999_999
UID = "0b5e5c6e-1111-2222-3333-444455556666"

POD = {"cpu.weight": "39", "cpu.max": "150000 100000", "memory.max": "268435456",
       "pids.max": "64"}
LEAVES = {
    "init-db": {"cpu.weight": "100", "cpu.max": "150000 100000", "memory.max": "268435456"},
    "app": {"cpu.weight": "59", "cpu.max": "max 100000", "memory.max": "134217728"},
}


@pytest.fixture
def fake(tmp_path: Path) -> FakeKernel:
    return FakeKernel(tmp_path / "cg")


def host_of(fake: FakeKernel, own: str = "/", **kw) -> CgroupHost:
    return CgroupHost(mount=fake.root, own=own, **kw)


class Warnings(list):
    def __call__(self, message: str) -> None:
        self.append(message)


def create(fake, host=None, parent=None, values=POD, mode="auto", declared=True,
           qos="Burstable", leaves=LEAVES, warn=None, uid=UID) -> V2Pod:
    warn = warn if warn is not None else Warnings()
    return V2Driver(host or host_of(fake), fake.fs, mode).create_pod(
        parent, uid, values, leaves, qos=qos, declared=declared, warn=warn)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


# ------------------------------------------------------------------ layout and values


def test_layout_values_and_controllers_down_the_path(fake):
    warned = Warnings()
    cg = create(fake, warn=warned)
    pod = fake.root / "nsrun" / "burstable" / f"pod-{UID}"
    assert cg.path == pod and warned == []
    assert tree(fake.root) == ["nsrun", "nsrun/burstable", f"nsrun/burstable/pod-{UID}",
                               f"nsrun/burstable/pod-{UID}/app",
                               f"nsrun/burstable/pod-{UID}/init-db"]
    for level in (fake.root, fake.root / "nsrun", fake.root / "nsrun" / "burstable", pod):
        assert fake.enabled(level) == set(cgroupfs.WANTED), level
    for name, value in POD.items():
        assert fake.read_text(pod, name) == value
    for leaf, values in LEAVES.items():
        for name, value in values.items():
            assert fake.read_text(pod / leaf, name) == value
        assert fake.read_text(pod / leaf, "memory.oom.group") == "1"
        assert cg.leaf(leaf) is cg.leaves[leaf]
    # the pod's values are written before any leaf exists
    order = [(Path(d).name, f) for d, f, _ in fake.writes if f != "cgroup.subtree_control"]
    assert order.index((f"pod-{UID}", "memory.max")) < order.index(("init-db", "cpu.weight"))
    assert cg.unenforced == []
    cg.destroy()
    assert tree(fake.root) == []


@pytest.mark.parametrize("qos, level", [("Guaranteed", "guaranteed"),
                                        ("BestEffort", "besteffort"), (None, None)])
def test_qos_levels(fake, qos, level):
    cg = create(fake, qos=qos, values={"cpu.weight": "1"}, leaves={})
    parent = fake.root / "nsrun"
    assert cg.path == (parent / level if level else parent) / f"pod-{UID}"
    cg.destroy()
    assert not parent.exists()


def test_a_leaf_made_later_gets_its_values(fake):
    cg = create(fake, leaves={})
    leaf = cg.leaf("late", {"memory.max": "8388608"})
    assert leaf is not None and fake.read_text(leaf.path, "memory.max") == "8388608"
    assert fake.read_text(leaf.path, "memory.oom.group") == "1"
    assert cg.leaf("late") is leaf
    cg.destroy()


def test_parent_forms(fake):
    host = host_of(fake, own="/user.slice/x.scope")
    assert resolve_parent("a/b", host, fake.fs) == (fake.root, fake.root / "a" / "b")
    assert resolve_parent(str(fake.root / "abs"), host, fake.fs)[1] == fake.root / "abs"
    assert resolve_parent(None, host, fake.fs)[1] == fake.root / "nsrun"
    assert resolve_parent(None, host, fake.fs, "nsrun-0badcafe")[1] == \
        fake.root / "nsrun-0badcafe"
    assert resolve_parent(".", host, fake.fs)[1] == fake.root / "user.slice" / "x.scope"
    for bad in ("/elsewhere", "../up", "a/../../b"):
        with pytest.raises(PreflightError, match="not below the cgroup2 mount"):
            resolve_parent(bad, host, fake.fs)


# ------------------------------------------------------------------ modes


def hybrid(tmp_path: Path) -> FakeKernel:
    return FakeKernel(tmp_path / "unified", controllers=("hugetlb",))


V1 = {"cpu": Path("/sys/fs/cgroup/cpu"), "memory": Path("/sys/fs/cgroup/memory"),
      "pids": Path("/sys/fs/cgroup/pids")}


def test_auto_on_a_hybrid_host_says_once_what_is_not_enforced(tmp_path):
    fake = hybrid(tmp_path)
    warned = Warnings()
    cg = create(fake, host_of(fake, v1=V1), warn=warned)
    assert len(warned) == 1
    line = warned[0]
    assert "\n" not in line
    assert line.startswith(f"cgroup v2 at {fake.root} has no cpu, memory, pids controllers "
                           "(hybrid host, cgroup v1 holds cpu at /sys/fs/cgroup/cpu, ")
    assert line.endswith("this pod's cpu.weight, cpu.max, memory.max, pids.max are not enforced")
    assert cg.available == {"hugetlb"}
    assert cg.unenforced == ["cpu.weight", "cpu.max", "memory.max", "pids.max"]
    assert cg.leaf("app") is not None  # still grouped and killed through cgroup2
    cg.destroy()
    assert tree(fake.root) == []


def test_auto_best_effort_pod_is_not_worth_a_warning(tmp_path):
    fake = hybrid(tmp_path)
    warned = Warnings()
    leaves = {"app": {"cpu.weight": "1", "cpu.max": "max 100000"}}
    cg = create(fake, host_of(fake, v1=V1), values={"cpu.weight": "1"}, declared=False,
                qos="BestEffort", leaves=leaves, warn=warned)
    assert warned == []
    cg.destroy()
    # but a node pids limit is a limit even for a BestEffort pod
    cg = create(fake, host_of(fake, v1=V1), values={"cpu.weight": "1", "pids.max": "9"},
                declared=False, qos="BestEffort", leaves=leaves, warn=warned)
    assert warned == [f"cgroup v2 at {fake.root} has no pids controller (hybrid host, "
                      "cgroup v1 holds pids at /sys/fs/cgroup/pids): this pod's pids.max "
                      "is not enforced"]
    cg.destroy()


def test_v2_refuses_on_a_hybrid_host_before_creating_anything(tmp_path):
    fake = hybrid(tmp_path)
    with pytest.raises(PreflightError) as e:
        create(fake, host_of(fake, v1=V1), mode="v2")
    text = str(e.value)
    assert text.startswith(f"--cgroups=v2: cgroup v2 at {fake.root} has no cpu, memory, "
                           "pids controllers")
    assert "cannot be enforced (use --cgroups=auto" in text
    assert e.value.exit_code == 3
    assert tree(fake.root) == [] and fake.writes == []


def test_v2_runs_a_pod_whose_limits_are_all_enforceable(fake):
    cg = create(fake, mode="v2")
    assert cg.available == set(cgroupfs.WANTED)
    cg.destroy()


def test_a_controller_not_delegated_to_the_parent(fake):
    fake.make(fake.root / "outer", enable=("cpu", "pids"))  # memory not given to outer
    warned = Warnings()
    cg = create(fake, parent="outer", warn=warned)
    assert warned == [f"memory is not enabled for {fake.root}/outer (its parent's "
                      "cgroup.subtree_control lacks it): this pod's memory.max is not enforced"]
    cg.destroy()
    assert (fake.root / "outer").is_dir() is False  # empty, not a unit: pruned
    fake.make(fake.root / "outer", enable=("cpu", "pids"))
    with pytest.raises(PreflightError, match="memory is not enabled for"):
        create(fake, parent="outer", mode="v2")


@pytest.mark.parametrize("mountinfo, why", [
    ("", "no cgroup2 hierarchy is mounted"),
    ("35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
     "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n",
     "no cgroup2 hierarchy is mounted (cgroup v1 only: memory at /sys/fs/cgroup/memory, "
     "pids at /sys/fs/cgroup/pids)"),
    ("25 24 0:23 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw\n",
     "the cgroup2 mount /sys/fs/cgroup is read-only"),
])
def test_without_a_usable_cgroup2_hierarchy(tmp_path, mountinfo, why):
    (tmp_path / "mi").write_text(mountinfo)
    (tmp_path / "pc").write_text("1:memory:/\n")
    host = CgroupHost.probe(str(tmp_path / "mi"), str(tmp_path / "pc"))
    warned, said = Warnings(), Warnings()
    fs = FakeKernel(tmp_path / "none").fs
    if "cgroup v1 only" in why:  # auto takes cgroup v1 there: the v2 driver's own verdict
        driver = cgroupdriver.NoCgroups(host, "auto")
    else:
        driver = cgroupdriver.choose("auto", host, fs, say=said)
        assert said == ["cgroup driver none: no usable cgroup hierarchy; no device cgroup: "
                        "containers get nodev mounts and no CAP_MKNOD"]
    cg = driver.create_pod(None, UID, POD, LEAVES, qos="Burstable", warn=warned)
    assert warned == [f"{why}: running without a pod cgroup, this pod's cpu.weight, "
                      "cpu.max, memory.max, pids.max are not enforced"]
    assert cg is cgroupdriver.NO_POD and not cg.enabled and cg.record == []
    leaf = cg.leaf("app")
    assert (leaf.clone_fd, leaf.join_fds, leaf.oom_kills(), leaf.pids()) == (-1, (), 0, [])
    cg.kill_leaf("app")
    cg.kill_all()
    cg.destroy()
    quiet = Warnings()
    driver.create_pod(None, UID, {"cpu.weight": "1"}, declared=False, warn=quiet)
    assert quiet == []
    with pytest.raises(PreflightError) as e:
        V2Driver(host, fs, "v2").create_pod(None, UID, {"cpu.weight": "1"}, declared=False)
    assert str(e.value).startswith(f"--cgroups=v2: {why}")


# ------------------------------------------------------------------ bad values, rollback


def test_a_value_the_kernel_rejects_names_the_container_and_leaves_nothing(fake):
    leaves = {"web": {"cpu.weight": "100", "cpu.max": "500 100000"}}
    with pytest.raises(CgroupError) as e:
        create(fake, leaves=leaves)
    pod = fake.root / "nsrun" / "burstable" / f"pod-{UID}"
    assert str(e.value) == (f'container "web": write {pod}/web/cpu.max: Invalid argument '
                            "(value '500 100000')")
    assert e.value.errno == errno.EINVAL
    assert tree(fake.root) == []


def test_a_pod_value_the_kernel_rejects(fake):
    fake.make(fake.root / "keep", enable=("cpu",))  # a parent that was there stays
    with pytest.raises(CgroupError) as e:
        create(fake, parent="keep", values={"cpu.weight": "0"})
    assert e.value.errno == errno.ERANGE and "cpu.weight" in str(e.value)
    assert "'0'" in str(e.value)
    assert tree(fake.root) == ["keep"]


def test_a_concurrent_teardown_removing_the_level_is_retried(fake):
    fake.mkdir_fail[str(fake.root / "nsrun" / "burstable")] = errno.ENOENT
    cg = create(fake)
    assert cg.path is not None and cg.path.is_dir()
    cg.destroy()


# ------------------------------------------------------------------ delegation


def scope(fake: FakeKernel, name: str = "nsrun-p.scope", delegate: bool = True) -> Path:
    path = fake.make(fake.root / "system.slice" / name, enable=("cpu", "memory", "pids", "io"))
    if delegate:
        fake.xattr[str(path)] = ["trusted.delegate", "user.delegate"]
    return path


def test_own_cgroup_as_parent_moves_its_processes_into_a_leaf_first(fake):
    unit = scope(fake)
    fake.add_proc(os.getpid(), unit)
    fake.add_proc(NO_SUCH_PID, unit)  # e.g. the foreground `nsrun run -d`
    host = host_of(fake, own="/system.slice/nsrun-p.scope")
    cg = create(fake, host, parent=".")
    assert cg.path == unit / "burstable" / f"pod-{UID}"
    assert fake.pids_in(unit) == []
    assert fake.pids_in(unit / SUPERVISOR_LEAF) == sorted([os.getpid(), NO_SUCH_PID])
    assert fake.enabled(unit) == {"cpu", "memory", "pids", "io"}
    # the move happened before the first subtree_control write in the unit
    first = [f for d, f, _ in fake.writes if d in (str(unit), str(unit / SUPERVISOR_LEAF))]
    assert first[:3] == ["cgroup.procs", "cgroup.procs", "cgroup.subtree_control"]
    assert sorted(cg.moved) == sorted([os.getpid(), NO_SUCH_PID])
    cg.destroy()
    # the unit and the supervisor leaf stay (systemd removes the unit)
    assert tree(unit) == [SUPERVISOR_LEAF]


def test_second_pod_from_the_supervisor_leaf(fake):
    unit = scope(fake)
    fake.add_proc(os.getpid(), unit)
    first = create(fake, host_of(fake, own="/system.slice/nsrun-p.scope"), parent=".")
    # a later nsrun started from a process in the leaf: its home is the unit, not the leaf
    host = host_of(fake, own=f"/system.slice/nsrun-p.scope/{SUPERVISOR_LEAF}")
    second = create(fake, host, parent=".", uid="other", qos="Guaranteed", leaves={})
    assert second.path == unit / "guaranteed" / "pod-other"
    second.destroy()
    first.destroy()
    assert tree(unit) == [SUPERVISOR_LEAF]


def test_default_parent_is_a_delegated_scope_nsrun_runs_in(fake):
    unit = scope(fake)
    fake.add_proc(os.getpid(), unit)
    fake.add_proc(1, unit)  # anything may run in a scope made for the command
    cg = create(fake, host_of(fake, own="/system.slice/nsrun-p.scope"))
    assert cg.path == unit / "burstable" / f"pod-{UID}"
    cg.destroy()


def test_default_parent_in_a_delegated_service(fake):
    unit = scope(fake, "nsrun-p.service")
    fake.add_proc(os.getpid(), unit)
    fake.add_proc(NO_SUCH_PID, unit)  # gone or unreadable: counted as ours
    host = host_of(fake, own="/system.slice/nsrun-p.service")
    assert preflight.delegated_home(host, fake.fs) == unit
    fake.add_proc(1, unit)  # a service running something else (a CI runner, pytest)
    assert preflight.delegated_home(host, fake.fs) is None
    assert resolve_parent(None, host, fake.fs)[1] == fake.root / "nsrun"


def test_an_undelegated_scope_is_not_taken_over(fake):
    unit = scope(fake, delegate=False)
    fake.add_proc(os.getpid(), unit)
    host = host_of(fake, own="/system.slice/nsrun-p.scope")
    assert preflight.delegated_home(host, fake.fs) is None
    assert resolve_parent(None, host, fake.fs)[1] == fake.root / "nsrun"


def test_processes_in_a_cgroup_that_is_not_nsrun_own(fake):
    busy = fake.make(fake.root / "busy", enable=("cpu", "memory", "pids"))
    fake.add_proc(NO_SUCH_PID, busy)
    with pytest.raises(PreflightError) as e:
        create(fake, parent="busy")
    text = str(e.value)
    assert f"cgroup {busy} holds processes ({NO_SUCH_PID})" in text
    assert "no-internal-processes rule" in text and "Delegate=yes" in text
    assert tree(fake.root) == ["busy"]  # the level it made is gone again


# ------------------------------------------------------------------ teardown


def test_destroy_kills_and_prunes_only_what_is_empty(fake):
    a = create(fake)
    b = create(fake, uid="b", leaves={"x": {}})
    fake.add_proc(NO_SUCH_PID, a.path / "app")
    a.destroy()
    assert NO_SUCH_PID in fake.killed
    assert tree(fake.root / "nsrun") == ["burstable", "burstable/pod-b", "burstable/pod-b/x"]
    b.destroy()
    assert tree(fake.root) == []


def test_destroy_waits_for_a_draining_cgroup(fake):
    cg = create(fake)
    assert cg.path is not None
    fake.busy[str(cg.path / "app")] = 5
    fake.busy[str(cg.path)] = 5
    cg.destroy()
    assert tree(fake.root) == []


def test_units_delegated_cgroups_and_the_mount_are_never_pruned(fake):
    host = host_of(fake, own="/a/b")
    assert not preflight.may_prune(fake.root, host, fake.fs)
    assert not preflight.may_prune(fake.root / "a", host, fake.fs)  # above nsrun's own cgroup
    assert not preflight.may_prune(fake.root / "a" / "b", host, fake.fs)
    assert not preflight.may_prune(fake.root / "x.slice", host, fake.fs)
    assert not preflight.may_prune(fake.root / "y.service", host, fake.fs)
    assert not preflight.may_prune(fake.root / SUPERVISOR_LEAF, host, fake.fs)
    assert not preflight.may_prune(Path("/elsewhere/nsrun"), host, fake.fs)
    fake.xattr[str(fake.root / "d")] = ["user.delegate"]
    assert not preflight.may_prune(fake.root / "d", host, fake.fs)
    assert preflight.may_prune(fake.root / "nsrun", host, fake.fs)


def test_destroy_path_after_a_supervisor_crash(fake):
    cg = create(fake)
    assert cg.path is not None
    fake.add_proc(NO_SUCH_PID, cg.path / "init-db")
    cg._close()  # the supervisor died: only the path is known
    destroy_path(cg.path, host_of(fake), fake.fs)
    assert NO_SUCH_PID in fake.killed and tree(fake.root) == []
    destroy_path(cg.path, host_of(fake), fake.fs)  # twice is fine


@pytest.mark.parametrize("path", ["None", "relative/pod-x", "/elsewhere/pod-x"])
def test_destroy_path_touches_only_pod_cgroups_below_the_mount(fake, path):
    keep = fake.make(fake.root / "nsrun" / "keep")
    destroy_path(Path(path), host_of(fake), fake.fs)
    destroy_path(keep, host_of(fake), fake.fs)  # not a pod-* cgroup
    destroy_path(fake.root / "nsrun" / "pod-x" / ".." / "keep", host_of(fake), fake.fs)
    assert keep.is_dir()


# ------------------------------------------------------------------ preflight helpers


def test_what_counts_as_a_limit():
    need = preflight.needed({"cpu.weight": "2", "cpu.max": "max 100000", "pids.max": "max"},
                            {"a": {"memory.max": "max", "memory.oom.group": "1"},
                             "b": {"memory.max": "1048576", "cpu.weight": "100"}},
                            declared=False)
    assert need == {"memory": ["memory.max"]}
    assert preflight.needed({"cpu.weight": "39", "pids.max": "9"}, {}, True) == \
        {"cpu": ["cpu.weight"], "pids": ["pids.max"]}
