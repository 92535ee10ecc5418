"""The cgroup v1 driver against a fake v1 tree in tmp_path (``fake_cgroupv1``): the layout
below nsrun's own cgroup in each hierarchy, the pod's and each leaf's values, the parent
forms, a missing hierarchy (a warning line in ``auto``, a refusal in ``v1``), a value the
kernel rejects (file, value, errno; nothing left), the freezer kill, teardown and pruning,
the recorded directories after a crash, ``nsrun exec``'s join, and the driver interface
(adopt, update, freeze, OOM count, pids)."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import pytest
from fake_cgroupv1 import FakeV1

from nsrun.errors import CgroupError, PreflightError
from nsrun.host.podcgroupv1 import V1Driver, V1Group
from nsrun.host.preflight import CgroupHost

UID = "0b5e5c6e-1111-2222-3333-444455556666"
OWN_MEMORY = "/process_api/abc"  # nsrun's own memory cgroup, as on the reference machine
NO_SUCH_PID = 4_999_999

POD = {"cpu.shares": "204", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000",
       "memory.limit_in_bytes": "268435456", "pids.max": "64"}
LEAVES = {
    "init": {"cpu.shares": "204", "cpu.cfs_period_us": "100000",
             "cpu.cfs_quota_us": "50000", "memory.limit_in_bytes": "268435456",
             "memory.memsw.limit_in_bytes": "268435456"},
    "app": {"cpu.shares": "102", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"},
}


class Lines(list):
    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def fake(tmp_path: Path) -> FakeV1:
    kernel = FakeV1(tmp_path / "cg")
    (kernel.mount("memory") / "process_api" / "abc").mkdir(parents=True)
    return kernel


def host_of(fake: FakeV1, **own: str) -> CgroupHost:
    v1 = {c: fake.mount(name) for name, cs in fake.hierarchies.items() for c in cs}
    owns = {c: "/" for c in v1} | {"memory": OWN_MEMORY} | own
    return CgroupHost(mount=None, v1=v1, v1_root={c: "/" for c in v1}, v1_own=owns)


def create(fake, parent="nsrun-t", values=POD, leaves=LEAVES, mode="auto", warn=None,
           host=None, qos="Burstable"):
    driver = V1Driver(host or host_of(fake), fake.fs, mode)
    return driver.create_pod(parent, UID, values, leaves, qos=qos, declared=True,
                             warn=warn if warn is not None else Lines())


def pod_dir(fake: FakeV1, hierarchy: str, parent: str = "nsrun-t") -> Path:
    base = fake.mount(hierarchy) / ("process_api/abc" if hierarchy == "memory" else "")
    return base / parent / "burstable" / f"pod-{UID}"


def dirs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir())


# ------------------------------------------------------------------ layout and values


def test_layout_below_the_own_cgroup_of_each_hierarchy(fake):
    said = Lines()
    pod = create(fake, warn=said)
    assert said == [] and pod.unenforced == []
    for h in fake.hierarchies:
        top = pod_dir(fake, h)
        assert sorted(p.name for p in top.iterdir() if p.is_dir()) == ["app", "init"], h
    assert pod.record == [str(pod_dir(fake, h)) for h in
                          ("cpu", "cpuacct", "memory", "pids", "freezer", "devices")]
    cpu, mem, pids = pod_dir(fake, "cpu"), pod_dir(fake, "memory"), pod_dir(fake, "pids")
    assert [fake.read(cpu, f) for f in ("cpu.shares", "cpu.cfs_period_us",
                                         "cpu.cfs_quota_us")] == ["204", "100000", "50000"]
    assert fake.read(mem, "memory.limit_in_bytes") == "268435456"
    assert fake.read(pids, "pids.max") == "64"
    assert fake.read(cpu / "app", "cpu.shares") == "102"
    assert fake.read(cpu / "app", "cpu.cfs_quota_us") == "-1"
    assert fake.read(mem / "init", "memory.memsw.limit_in_bytes") == "268435456"
    # the pod's values are written before any leaf exists
    order = [(Path(d).name, f) for d, f, _ in fake.writes]
    assert order.index((f"pod-{UID}", "pids.max")) < order.index(("init", "cpu.shares"))
    pod.destroy()
    assert dirs(fake.root) == ["cpu", "cpuacct", "devices", "freezer", "memory",
                               "memory/process_api", "memory/process_api/abc", "pids"]


def test_co_mounted_controllers_share_one_directory(tmp_path):
    fake = FakeV1(tmp_path / "cg", {"cpu,cpuacct": ("cpu", "cpuacct"), "memory": ("memory",),
                                    "pids": ("pids",), "freezer": ("freezer",),
                                    "devices": ("devices",)}, swap=False)
    pod = create(fake, host=host_of(fake, memory="/"))
    shared = fake.mount("cpu,cpuacct") / "nsrun-t" / "burstable" / f"pod-{UID}"
    assert pod.record[0] == str(shared) and len(pod.record) == 5
    assert fake.read(shared, "cpu.shares") == "204"
    leaf = pod.leaf("init")
    assert len(leaf.join_fds) == 5  # one fd per hierarchy: the parent writes the pid 5 times
    # no swap accounting: memsw is not there, and that is not an unenforced limit
    assert not (fake.mount("memory") / "nsrun-t" / "burstable" / f"pod-{UID}" / "init" /
                "memory.memsw.limit_in_bytes").exists()
    assert pod.unenforced == []
    pod.destroy()
    assert dirs(fake.root) == ["cpu,cpuacct", "devices", "freezer", "memory", "pids"]


def test_parent_forms(fake):
    driver = V1Driver(host_of(fake), fake.fs)
    mem = fake.mount("memory")
    assert driver.parent(None, "memory") == mem / "process_api/abc/nsrun"
    assert driver.parent(".", "memory") == mem / "process_api/abc"
    assert driver.parent("a/b", "memory") == mem / "process_api/abc/a/b"
    assert driver.parent("/a/b", "memory") == mem / "a/b"
    assert driver.parent("a/b", "cpu") == fake.mount("cpu") / "a/b"
    with pytest.raises(PreflightError, match="'..' is not allowed"):
        driver.parent("a/../../b", "cpu")
    other = V1Driver(host_of(fake), fake.fs, default_parent="nsrun-0badcafe")
    assert other.parent(None, "memory") == mem / "process_api/abc/nsrun-0badcafe"
    assert other.parent("a", "memory") == mem / "process_api/abc/a"


def test_a_leaf_made_later_and_adopting_a_process(fake):
    pod = create(fake, leaves={})
    leaf = pod.leaf("_pause")
    fake.add_proc(NO_SUCH_PID, {h: fake.mount(h) for h in fake.hierarchies})
    assert leaf.adopt(NO_SUCH_PID)
    for h in fake.hierarchies:
        assert fake.read(pod_dir(fake, h) / "_pause", "cgroup.procs") == str(NO_SUCH_PID)
    assert leaf.pids() == [NO_SUCH_PID] and pod.group.pids() == [NO_SUCH_PID]
    assert not leaf.adopt(NO_SUCH_PID + 1)  # ESRCH: already gone
    pod.destroy()
    assert fake.killed == [NO_SUCH_PID]


# ------------------------------------------------------------------ missing hierarchies


def without(fake: FakeV1, *gone: str) -> CgroupHost:
    host = host_of(fake)
    return CgroupHost(mount=None, v1={c: p for c, p in host.v1.items() if c not in gone},
                      v1_root=host.v1_root, v1_own=host.v1_own)


def test_auto_says_in_one_line_which_hierarchy_is_missing(fake):
    said = Lines()
    pod = create(fake, warn=said, host=without(fake, "memory", "devices"))
    assert said == ["cgroup v1 has no devices, memory hierarchies mounted: this pod's the "
                    "device allow-list, memory.limit_in_bytes, memory.memsw.limit_in_bytes "
                    "are not enforced"]
    assert "memory.limit_in_bytes" in pod.unenforced
    pod.destroy()


def test_v1_refuses_naming_the_missing_hierarchy_before_creating_anything(fake):
    with pytest.raises(PreflightError) as e:
        create(fake, mode="v1", host=without(fake, "pids"))
    assert str(e.value).startswith("--cgroups=v1: cgroup v1 has no pids hierarchy mounted: "
                                   "this pod's pids.max cannot be enforced")
    assert e.value.exit_code == 3 and fake.writes == []
    assert not (fake.mount("cpu") / "nsrun-t").exists()


# ------------------------------------------------------------------ bad values


def test_a_value_the_kernel_rejects_names_file_value_errno_and_leaves_nothing(fake):
    leaves = {"web": {"cpu.shares": "2", "cpu.cfs_period_us": "100000",
                      "cpu.cfs_quota_us": "500"}}
    with pytest.raises(CgroupError) as e:
        create(fake, leaves=leaves)
    assert e.value.errno == errno.EINVAL
    assert str(e.value) == (f'container "web": write {pod_dir(fake, "cpu")}/web/'
                            "cpu.cfs_quota_us: Invalid argument (value '500')")
    assert not (fake.mount("cpu") / "nsrun-t").exists()
    assert not (fake.mount("memory") / "process_api/abc/nsrun-t").exists()


def test_an_update_keeps_memsw_above_the_limit(fake):
    pod = create(fake)
    init = pod.leaf("init")
    init.update({"memory.limit_in_bytes": "536870912",
                 "memory.memsw.limit_in_bytes": "536870912"})  # up: memsw first
    init.update({"memory.limit_in_bytes": "16777216",
                 "memory.memsw.limit_in_bytes": "16777216"})  # down: the limit first
    assert fake.read(pod_dir(fake, "memory") / "init", "memory.limit_in_bytes") == "16777216"
    with pytest.raises(CgroupError) as e:
        init.update({"blkio.weight": "10"})
    assert "blkio.weight" in str(e.value)
    pod.destroy()


# ------------------------------------------------------------------ freezer, OOM, kill


def test_freeze_thaw_and_the_oom_count(fake):
    pod = create(fake)
    pod.group.freeze()
    assert pod.group.frozen() and fake.read(pod_dir(fake, "freezer"), "freezer.state") == "FROZEN"
    pod.group.thaw()
    assert not pod.group.frozen()
    app = pod_dir(fake, "memory") / "app"
    assert pod.leaf("app").oom_kills() == 0
    (app / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert pod.leaf("app").oom_kills() == 2
    pod.destroy()


def test_kill_freezes_signals_everything_below_then_thaws(fake):
    pod = create(fake)
    fake.add_proc(NO_SUCH_PID, {h: pod_dir(fake, h) / "app" for h in fake.hierarchies})
    fake.add_proc(NO_SUCH_PID + 1, {h: pod_dir(fake, h) / "init" for h in fake.hierarchies})
    pod.kill_all()
    assert sorted(fake.killed) == [NO_SUCH_PID, NO_SUCH_PID + 1]
    states = [v for d, f, v in fake.writes if f == "freezer.state"]
    assert states == ["FROZEN", "THAWED"]
    pod.destroy()
    assert not (fake.mount("pids") / "nsrun-t").exists()


def test_teardown_never_prunes_the_own_cgroup_or_a_parent_in_use(fake):
    a = create(fake)
    other = V1Driver(host_of(fake), fake.fs).create_pod("nsrun-t", "b", {}, {"x": {}},
                                                        qos="Burstable")
    a.destroy()
    assert (fake.mount("memory") / "process_api/abc/nsrun-t/burstable/pod-b/x").is_dir()
    other.destroy()
    dot = create(fake, parent=".")
    dot.destroy()
    assert (fake.mount("memory") / "process_api/abc").is_dir()


def test_destroy_recorded_after_a_crash_and_exec_join(fake, tmp_path):
    pod = create(fake)
    fake.add_proc(NO_SUCH_PID, {h: pod_dir(fake, h) / "app" for h in fake.hierarchies})
    record = [Path(p) for p in pod.record]
    proc = tmp_path / "proc"
    (proc / str(NO_SUCH_PID)).mkdir(parents=True)
    (proc / str(NO_SUCH_PID) / "cgroup").write_text("".join(
        f"{i}:{h}:{'/process_api/abc' if h == 'memory' else ''}/nsrun-t/burstable/pod-{UID}/app\n"
        for i, h in enumerate(fake.hierarchies, 1)) + "0::/\n")
    driver = V1Driver(host_of(fake), fake.fs, proc=str(proc))
    assert driver.group_of(NO_SUCH_PID, [fake.mount("cpu") / "elsewhere"]) is None
    group = driver.group_of(NO_SUCH_PID, record)
    assert isinstance(group, V1Group) and len(group.join_fds) == 6
    assert group.dirs["memory"] == pod_dir(fake, "memory") / "app"
    group.close()
    pod._close()  # the supervisor died: only the recorded directories are known
    driver.destroy_recorded(record)
    assert fake.killed == [NO_SUCH_PID]
    assert not (fake.mount("cpu") / "nsrun-t").exists()
    driver.destroy_recorded(record)  # twice is fine


def test_what_counts_as_a_v1_limit():
    from nsrun.host import preflight

    need = preflight.needed({"cpu.shares": "2", "cpu.cfs_period_us": "100000",
                             "cpu.cfs_quota_us": "-1", "memory.limit_in_bytes": "-1"},
                            {"a": {"memory.limit_in_bytes": "1048576"}}, declared=False)
    assert need == {"memory": ["memory.limit_in_bytes"]}
    assert preflight.needed({"cpu.shares": "307", "pids.max": "9"}, {}, True) == \
        {"cpu": ["cpu.shares"], "pids": ["pids.max"]}


class PrunedOnce(FakeV1):
    """Another pod's teardown prunes the empty QoS level right after this pod made it and
    before it makes its own directory in it (once per hierarchy)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pruned: list[Path] = []

    def mkdir(self, path: Path) -> bool:
        if path.name.startswith("pod-") and path.parent not in self.pruned:
            self.pruned.append(path.parent)
            shutil.rmtree(path.parent)  # an empty cgroup: only its interface files
        return super().mkdir(path)


def test_a_qos_level_pruned_by_another_pods_teardown_is_made_again(tmp_path):
    kernel = PrunedOnce(tmp_path / "cg")
    (kernel.mount("memory") / "process_api" / "abc").mkdir(parents=True)
    pod = create(kernel)
    assert kernel.pruned and all(pod_dir(kernel, h).is_dir() for h in ("cpu", "memory"))
    pod.destroy()
