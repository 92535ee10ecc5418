"""``run --systemd -d`` under a real systemd (the guest's PID 1): a supervisor killed with
SIGKILL is restarted by systemd (``Restart=on-failure``) and re-attaches to its pod, whose
containers keep running with the same pids (the pod cgroup, the pause process and the
monitors are outside the unit, so its stop takes none of them along)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import require_systemd
from test_nsrun_cgroups import ctr, pod
from test_nsrun_delegation import unique, unit_of


@pytest.fixture
def systemd_host() -> None:
    require_systemd()


def _app_pid(pods, name: str) -> int:
    record = pods.pod_dir(name) / "containers" / "app" / "0.json"
    return json.loads(record.read_text())["pid"]


def _show(service: str, prop: str) -> str:
    return subprocess.run(["systemctl", "show", "-P", prop, service], capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.timeout(600)  # two unit starts and a graceful delete under TCG: minutes
def test_killed_supervisor_is_restarted_and_the_containers_keep_their_pids(
        pods, systemd_host, slow):
    name = unique("sd")
    service = f"{unit_of(pods, name)}.service"
    proc = pods.run(pod(ctr("init", "echo once >> /tmp/runs"), ctr("app", "sleep 600"),
                        name=name), "--systemd", "-d", name=name, parent=False)
    assert proc.returncode == 0, proc.stderr
    pods.wait_running(name, "app")
    assert _show(service, "Restart") == "on-failure"
    app, old = _app_pid(pods, name), pods.supervisor_pid(name)
    assert not str(pods.cgroup(name)).startswith("/sys/fs/cgroup/system.slice/")
    os.kill(old, signal.SIGKILL)
    pods.wait(lambda: pods.supervisor_pid(name) != old and
              _show(service, "ActiveState") == "active", 60, "systemd to restart nsrun")
    assert int(_show(service, "NRestarts")) >= 1
    os.kill(app, 0)  # the same container process, never restarted
    assert _app_pid(pods, name) == app
    pods.wait_running(name, "app")
    assert pods.container(name, "app")["restartCount"] == 0
    assert pods.container(name, "init")["restartCount"] == 0
    assert Path(f"/proc/{app}/cmdline").read_bytes().startswith(b"sleep")
    pods.delete(name)
    unit = Path("/sys/fs/cgroup/system.slice", service)
    pods.wait(lambda: not unit.exists(), 10, f"systemd to remove {unit}")
