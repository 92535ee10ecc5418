"""The cgroup v2 driver against a fake cgroupfs in tmp_path (no root, no kernel): mountinfo
and /proc/self/cgroup parsing for unified, hybrid and v1-only hosts, dirfd-relative writes
whose errors carry the file, the value and errno, subtree_control enabling, cgroup.kill and
the bounded rmdir retry."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from fake_cgroupfs import FakeKernel

from nsrun.errors import CgroupError
from nsrun.host import cgroupfs
from nsrun.host.preflight import CgroupHost

NO_SUCH_PID = 4_999_999  # above any pid_max: os.kill gives ProcessLookupError

UNIFIED = """\
24 30 0:22 / /sys ro,nosuid - sysfs sysfs rw
25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 \
rw,nsdelegate,memory_recursiveprot
"""

# this project's reference machine: v1 controllers, a cgroup2 mount without them
HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

LEGACY = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
"""


def probe(tmp_path: Path, mountinfo: str, proc_cgroup: str = "0::/\n") -> CgroupHost:
    mi, pc = tmp_path / "mountinfo", tmp_path / "cgroup"
    mi.write_text(mountinfo)
    pc.write_text(proc_cgroup)
    return CgroupHost.probe(str(mi), str(pc))


@pytest.fixture
def fake(tmp_path: Path) -> FakeKernel:
    return FakeKernel(tmp_path / "cg")


# ------------------------------------------------------------------ host survey


def test_probe_unified_host(tmp_path):
    host = probe(tmp_path, UNIFIED, "0::/system.slice/nsrun-x.scope\n")
    assert host.mount == Path("/sys/fs/cgroup") and not host.readonly
    assert host.layout == "unified" and host.v1 == {}
    assert host.own_cgroup() == Path("/sys/fs/cgroup/system.slice/nsrun-x.scope")


def test_probe_hybrid_host(tmp_path):
    host = probe(tmp_path, HYBRID, "4:memory:/x\n1:cpu:/\n0::/\n")
    assert host.mount == Path("/sys/fs/cgroup/unified")
    assert host.layout == "hybrid"
    assert host.v1["memory"] == Path("/sys/fs/cgroup/memory")
    assert "systemd" not in host.v1 and "name=systemd" not in host.v1
    assert host.own_cgroup() == host.mount
    assert host.on_v1(["cpu", "io"]) == "cpu at /sys/fs/cgroup/cpu"


def test_probe_v1_only_host(tmp_path):
    host = probe(tmp_path, LEGACY, "4:memory:/x\n1:cpu,cpuacct:/\n")
    assert host.mount is None and host.layout == "legacy"
    assert host.v1["cpu"] == host.v1["cpuacct"] == Path("/sys/fs/cgroup/cpu,cpuacct")
    assert host.own is None and host.own_cgroup() is None


def test_probe_nothing_mounted_and_unreadable_files(tmp_path):
    host = CgroupHost.probe(str(tmp_path / "missing"), str(tmp_path / "missing"))
    assert host.mount is None and host.layout == "none" and host.own is None


def test_probe_read_only_and_escaped_mount(tmp_path):
    line = "25 24 0:23 / /run/my\\040cg ro,nosuid - cgroup2 cgroup2 rw\n"
    host = probe(tmp_path, line)
    assert host.mount == Path("/run/my cg") and host.readonly
    (tmp_path / "mi").write_text(line)
    assert cgroupfs.find_cgroup2_mount(str(tmp_path / "mi")) == "/run/my cg"


def test_own_cgroup_of_a_mount_showing_a_subtree(tmp_path):
    line = "25 24 0:23 /nsrun.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    host = probe(tmp_path, line, "0::/nsrun.slice/a.scope (deleted)\n")
    assert host.own_cgroup() == Path("/sys/fs/cgroup/a.scope")
    elsewhere = probe(tmp_path, line, "0::/other.slice\n")
    assert elsewhere.own_cgroup() is None


def test_keyed_and_controller_of():
    assert cgroupfs.keyed("oom 1\noom_kill 2\nbad\nx y\n") == {"oom": 1, "oom_kill": 2}
    assert cgroupfs.controller_of("memory.oom.group") == "memory"
    assert cgroupfs.controller_of("pids.max") == "pids"


# ------------------------------------------------------------------ writes and errors


def test_write_error_carries_file_value_and_errno(fake):
    cg = fake.fs.create(fake.root / "a", 'container "web"')
    with pytest.raises(CgroupError) as e:
        cg.write("cpu.max", "500 100000")  # no cpu controller enabled: no file
    assert e.value.errno == errno.ENOENT
    fake.make(fake.root / "b", enable=("cpu",))
    cg2 = fake.fs.open(fake.root / "b", 'container "web"')
    with pytest.raises(CgroupError) as e:
        cg2.write("cpu.max", "500 100000")
    text = str(e.value)
    assert e.value.errno == errno.EINVAL
    assert text == (f'container "web": write {fake.root}/b/cpu.max: Invalid argument '
                    "(value '500 100000')")
    with pytest.raises(CgroupError) as e:
        cg2.write("cpu.weight", "10001")
    assert e.value.errno == errno.ERANGE and "'10001'" in str(e.value)
    cg.close()
    cg2.close()


def test_writes_are_dirfd_relative(fake, tmp_path):
    fake.make(fake.root / "a", enable=("pids",))
    cg = fake.fs.open(fake.root / "a")
    (fake.root / "a").rename(fake.root / "renamed")  # the dirfd still names the cgroup
    cg.write("pids.max", "7")
    assert (fake.root / "renamed" / "pids.max").read_text() == "7"
    cg.close()
    with pytest.raises(CgroupError) as e:
        cg.write("pids.max", "8")
    assert e.value.errno == errno.EBADF


def test_write_values_skips_unavailable_controllers(fake):
    fake.make(fake.root / "a", enable=("cpu", "pids"))
    cg = fake.fs.open(fake.root / "a")
    skipped = cg.write_values({"cpu.weight": "39", "memory.max": "1048576", "pids.max": "9"},
                              {"cpu", "pids"})
    assert skipped == ["memory.max"]
    assert fake.read_text(cg.path, "cpu.weight") == "39"
    assert fake.read_text(cg.path, "pids.max") == "9"
    cg.close()


def test_memory_max_below_current_usage_is_refused(fake):
    fake.make(fake.root / "a", enable=("memory",))
    (fake.root / "a" / "memory.current").write_text("8388608")
    cg = fake.fs.open(fake.root / "a", 'container "app"')
    with pytest.raises(CgroupError) as e:
        cg.write_values({"memory.max": "4194304"}, {"memory"})
    assert "memory.max" in str(e.value) and "'4194304'" in str(e.value)
    assert "current usage 8388608" in str(e.value)
    assert fake.read_text(cg.path, "memory.max") == "max"
    cg.write_values({"memory.max": "16777216"}, {"memory"})
    assert fake.read_text(cg.path, "memory.max") == "16777216"
    cg.close()


def test_open_and_create_errors_name_the_cgroup(fake):
    with pytest.raises(CgroupError) as e:
        fake.fs.open(fake.root / "missing", 'container "x"')
    assert e.value.errno == errno.ENOENT and str(fake.root / "missing") in str(e.value)
    fake.mkdir_fail[str(fake.root / "a")] = errno.EACCES
    with pytest.raises(CgroupError) as e:
        fake.fs.create(fake.root / "a")
    assert e.value.errno == errno.EACCES and "create cgroup" in str(e.value)


# ------------------------------------------------------------------ subtree_control


def test_enable_writes_once_and_only_what_is_missing(fake):
    top = fake.fs.open(fake.root)
    got = fake.fs.enable(top, {"cpu", "memory", "pids", "rdma"})
    assert got == {"cpu", "memory", "pids"}
    assert fake.writes == [(str(fake.root), "cgroup.subtree_control", "+cpu +memory +pids")]
    assert fake.fs.enable(top, {"cpu", "memory"}) == {"cpu", "memory"}
    assert len(fake.writes) == 1  # nothing missing: no write
    top.close()


def test_enable_falls_back_to_one_controller_at_a_time(fake):
    top = fake.fs.open(fake.root)
    fake.refuse.add("cpuset")  # one odd controller does not cost the others
    got = fake.fs.enable(top, {"cpu", "memory", "cpuset"})
    assert got == {"cpu", "memory"}
    assert [w[2] for w in fake.writes] == ["+cpu +memory +cpuset", "+cpu", "+memory", "+cpuset"]
    top.close()


def test_enable_in_a_cgroup_with_processes_is_ebusy(fake):
    fake.make(fake.root / "busy", enable=("memory",))
    fake.add_proc(NO_SUCH_PID, fake.root / "busy")
    fake.make(fake.root / "busy" / "child")
    cg = fake.fs.open(fake.root / "busy")
    with pytest.raises(CgroupError) as e:
        fake.fs.enable(cg, {"memory"})
    assert e.value.errno == errno.EBUSY
    cg.close()


def test_move_a_process_and_a_gone_one(fake):
    fake.make(fake.root / "a")
    fake.add_proc(NO_SUCH_PID, fake.root)
    cg = fake.fs.open(fake.root / "a")
    assert fake.fs.move(NO_SUCH_PID, cg) is True
    assert fake.fs.procs(fake.root / "a") == [NO_SUCH_PID]
    assert fake.fs.move(NO_SUCH_PID + 1, cg) is False  # ESRCH: already exited
    cg.close()


# ------------------------------------------------------------------ kill and remove


def test_kill_empties_the_subtree(fake):
    fake.make(fake.root / "pod" / "app")
    fake.add_proc(NO_SUCH_PID, fake.root / "pod" / "app")
    pod = fake.fs.open(fake.root / "pod")
    assert pod.populated()
    pod.kill()
    assert fake.killed == [NO_SUCH_PID] and not pod.populated()
    pod.close()
    pod.kill()  # closed: nothing to do


def test_kill_without_cgroup_kill_signals_each_process(fake):
    fake.make(fake.root / "pod" / "app")
    fake.add_proc(NO_SUCH_PID, fake.root / "pod" / "app")
    (fake.root / "pod" / "cgroup.kill").unlink()  # a kernel before 5.14
    pod = fake.fs.open(fake.root / "pod")
    pod.kill()  # os.kill of a pid that does not exist: no error
    assert fake.killed == []  # no cgroup.kill write took effect
    assert (str(fake.root / "pod"), "cgroup.kill", "1") in fake.writes  # it was tried first
    assert pod.pids() == [NO_SUCH_PID]  # the fake's pid cannot die: still listed
    pod.close()


def test_oom_kills(fake):
    fake.make(fake.root / "m", enable=("memory",))
    fake.make(fake.root / "n")
    m, n = fake.fs.open(fake.root / "m"), fake.fs.open(fake.root / "n")
    assert m.oom_kills() == 0 and n.oom_kills() == 0
    (fake.root / "m" / "memory.events").write_text("oom 2\noom_kill 3\n")
    assert m.oom_kills() == 3
    m.close()
    n.close()


def test_remove_leaves_first_with_a_bounded_retry(fake):
    fake.make(fake.root / "pod" / "a")
    fake.make(fake.root / "pod" / "b")
    fake.busy[str(fake.root / "pod" / "a")] = 3
    fake.fs.remove(fake.root / "pod")
    assert not (fake.root / "pod").exists()
    fake.fs.remove(fake.root / "pod")  # already gone: fine


def test_remove_gives_up_naming_the_cgroup_and_its_processes(fake):
    fake.make(fake.root / "pod" / "a")
    fake.add_proc(NO_SUCH_PID, fake.root / "pod" / "a")
    with pytest.raises(CgroupError) as e:
        fake.fs.remove(fake.root / "pod", timeout=0.05)
    assert e.value.errno == errno.EBUSY
    assert f"remove cgroup {fake.root}/pod/a" in str(e.value)
    assert str(NO_SUCH_PID) in str(e.value)


# ------------------------------------------------------------------ the Group interface


def test_freeze_thaw_pids_adopt_and_update(fake):
    fake.make(fake.root / "pod" / "app", enable=("memory", "pids"))
    fake.add_proc(NO_SUCH_PID, fake.root)
    pod, app = fake.fs.open(fake.root / "pod"), fake.fs.open(fake.root / "pod" / "app")
    assert (app.clone_fd, app.join_fds) == (app.fd, ())
    assert app.adopt(NO_SUCH_PID) and pod.pids() == [NO_SUCH_PID]
    pod.freeze()
    assert pod.frozen() and fake.read_text(pod.path, "cgroup.freeze") == "1"
    pod.thaw()
    assert not pod.frozen()
    app.update({"pids.max": "9", "memory.max": "16777216"})
    assert fake.read_text(app.path, "pids.max") == "9"
    with pytest.raises(CgroupError) as e:
        app.update({"cpu.max": "50000 100000"})  # cpu not enabled: no such file
    assert e.value.errno == errno.ENOENT and "cpu.max" in str(e.value)
    pod.close()
    app.close()


def test_device_program_is_replaced_and_closed(fake):
    fake.make(fake.root / "app")
    app = fake.fs.open(fake.root / "app", 'container "app"')
    app.set_devices("first")
    first = app.device_prog
    app.set_devices("second")
    assert fake.device_programs[str(app.path)] == "second" and app.device_prog != first
    fake.fail[(str(app.path), "bpf")] = errno.EPERM
    with pytest.raises(CgroupError) as e:
        app.set_devices("third")
    assert str(e.value).startswith(f'container "app": attach device program to {app.path}')
    assert e.value.errno == errno.EPERM
    app.close()
    assert app.device_prog == -1
