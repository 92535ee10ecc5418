"""nsrun in a delegated cgroup subtree, in the guest kernel.

cgroup v2's no-internal-processes rule: a cgroup that holds processes cannot enable
controllers for its children. When nsrun puts pods below the cgroup it was started in (a
``Delegate=yes`` systemd unit, or ``--cgroup-parent .``), it first moves every process of
that cgroup into ``nsrun-supervisor``. Each test proves the controllers work below the
delegated cgroup with a container OOM-killed by its own memory limit.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import require_systemd
from test_nsrun_cgroups import HOG, ctr, pod

SUPERVISOR_LEAF = "nsrun-supervisor"
OOM_POD = (ctr("init", "true", limits="memory: 32Mi"), ctr("hog", HOG, limits="memory: 32Mi"))


@pytest.fixture
def systemd() -> None:
    require_systemd()


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def dirs(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_dir())


def level(base: Path, qos: str) -> Path:
    """Where pods of class ``qos`` go below ``base``."""
    return base / qos


def assert_oomkilled(pods, name: str) -> None:
    st = pods.container(name, "hog")["state"]["terminated"]
    assert (st["reason"], st["exitCode"]) == ("OOMKilled", 137), st


def test_manually_delegated_subtree(pods, cgroup_factory):
    """nsrun started inside a cgroup (no systemd needed), told to use it: ``.``"""
    home = cgroup_factory()
    proc = pods.run(pod(*OOM_POD), "--cgroup-parent", ".", "--quiet", parent=False,
                    preexec_fn=home.enter)
    assert proc.returncode == 1, proc.stderr  # the pod Failed: its container was OOM-killed
    assert proc.stderr == ""  # no warning (--quiet: nor the report of the failure)
    assert_oomkilled(pods, "p")
    uid = pods.status("p")["metadata"]["uid"]
    assert pods.cgroup("p") == level(home.path, "burstable") / f"pod-{uid}"
    assert {"cpu", "memory", "pids"} <= set(home.read("cgroup.subtree_control").split())
    # what is left is the (now empty) leaf nsrun moved itself into
    assert dirs(home.path) == [SUPERVISOR_LEAF]


def test_systemd_run_scope_delegate_yes(pods, systemd, slow):
    """``systemd-run --scope -p Delegate=yes nsrun run pod.yaml``: pods go in the scope."""
    unit = unique("nsrun-vmtest-")
    argv = ["systemd-run", "--scope", "--quiet", f"--unit={unit}", "-p", "Delegate=yes",
            "--", *pods.argv("run", "--quiet", "--backoff-initial", "0.2",
                             pods.manifest("p", pod(*OOM_POD)))]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60 * slow,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    assert_oomkilled(pods, "p")
    scope = Path("/sys/fs/cgroup/system.slice", f"{unit}.scope")
    uid = pods.status("p")["metadata"]["uid"]
    assert pods.cgroup("p") == level(scope, "burstable") / f"pod-{uid}"
    pods.wait(lambda: not scope.exists(), 10, f"systemd to remove {scope}")


def unit_of(pods, name: str) -> str:
    from nsrun.runtime.systemd import unit_name

    return unit_name(str(pods.root), name)


def test_run_systemd_foreground_is_a_scope(pods, systemd):
    name = unique("sd")
    proc = pods.run(pod(ctr("init", "true"), ctr("app", "true"), name=name), "--systemd",
                    name=name, parent=False)
    assert proc.returncode == 0, proc.stderr
    uid = pods.status(name)["metadata"]["uid"]
    scope = Path("/sys/fs/cgroup/system.slice", f"{unit_of(pods, name)}.scope")
    assert pods.cgroup(name) == scope / "besteffort" / f"pod-{uid}"
    pods.wait(lambda: not scope.exists(), 10, f"systemd to remove {scope}")


def test_run_systemd_detached_is_a_service(pods, systemd, slow):
    name = unique("sd")
    service = f"{unit_of(pods, name)}.service"
    proc = pods.run(pod(ctr("init", "true"), ctr("app", "sleep 600", limits="memory: 64Mi"),
                        name=name), "--systemd", "-d", name=name, parent=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [name]
    state = subprocess.run(["systemctl", "is-active", service], capture_output=True, text=True)
    assert state.stdout.strip() == "active", state
    pods.wait_running(name, "app")
    unit = Path("/sys/fs/cgroup/system.slice", service)
    uid = pods.status(name)["metadata"]["uid"]
    cg = pods.cgroup(name)
    # the pod outside the unit (a restarted supervisor finds it alive), under this state
    # root's own parent (two roots never share one), the supervisor in the unit
    from nsrun.core.netconfig import world_name

    parent = world_name(str(pods.root))
    assert parent != "nsrun" and cg == Path("/sys/fs/cgroup", parent, "burstable", f"pod-{uid}")
    assert (cg / "app" / "memory.max").read_text().strip() == str(64 << 20)
    supervisor = Path(f"/proc/{pods.supervisor_pid(name)}/cgroup").read_text().strip()
    assert supervisor == f"0::/system.slice/{service}"
    pods.delete(name)
    pods.wait(lambda: not unit.exists(), 10, f"systemd to remove {unit}")


def test_notify_unit_is_active_only_after_the_last_init_container(pods, systemd, slow):
    """``run --systemd -d`` is a ``Type=notify`` unit: ``systemd-run`` returns, and the
    unit turns ``active``, only once the pod is Initialized."""
    name = unique("sd")
    service = f"{unit_of(pods, name)}.service"
    text = pod(ctr("init-1", "sleep 1") + ", " + ctr("init-2", "sleep 2"),
               ctr("app", "sleep 600"), name=name)
    proc = subprocess.Popen(pods.argv("run", "--systemd", "-d", pods.manifest(name, text)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    while proc.poll() is None:
        state = subprocess.run(["systemctl", "show", "-P", "ActiveState", service],
                               capture_output=True, text=True).stdout.strip()
        if state == "active":
            inits = pods.status(name)["status"]["initContainerStatuses"]
            assert all(s["state"].get("terminated", {}).get("exitCode") == 0 for s in inits)
        seen.append(state)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert out.split() == [name]
    assert "activating" in seen, seen
    inits = pods.status(name)["status"]["initContainerStatuses"]
    assert [s["state"]["terminated"]["exitCode"] for s in inits] == [0, 0]
    show = subprocess.run(["systemctl", "show", "-P", "ActiveState", service],
                          capture_output=True, text=True).stdout.strip()
    assert show == "active"
    props = subprocess.run(["systemctl", "show", "-P", "KillMode", service],
                           capture_output=True, text=True).stdout.strip()
    assert props == "mixed"
    pods.delete(name)
    unit = Path("/sys/fs/cgroup/system.slice", service)
    pods.wait(lambda: not unit.exists(), 10 * slow, f"systemd to remove {unit}")
