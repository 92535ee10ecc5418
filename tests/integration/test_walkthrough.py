"""The init-container walk-through of ``examples/myapp.yaml``, verbatim: its YAML byte for
byte, its commands with nsrun in place of kubectl (real namespaces, veths, nftables and the
image's own busybox ``nslookup`` against the pod's cluster DNS).

Each variant waits for the init loop's ``sleep 2`` once or twice: about 4 s each.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, veths)")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
VARIANTS = {  # name: (pod manifest, services manifest, extra create options)
    "spec": ("myapp.yaml", "services.yaml", ()),
    "annotations": ("myapp-annotations.yaml", "services.yaml", ("--legacy-annotations",)),
    "english": ("en/myapp.yaml", "en/services.yaml", ()),
}


@pytest.fixture
def world(net_world):
    net_world.nsrun("image", "busybox", "busybox:1.28", check=True)
    return net_world


def wait_for(world: World, pod: str, want: str, timeout: float = 20) -> list[str]:
    """Poll the STATUS column until ``want``; the statuses seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = world.column(pod)
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == want:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"{pod}: statuses {seen}, never {want}")


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_documents_walkthrough(world, variant):
    pod_file, svc_file, extra = VARIANTS[variant]
    myapp, services = str(EXAMPLES / pod_file), str(EXAMPLES / svc_file)

    created = world.nsrun("create", "-f", myapp, "--cgroup-parent", world.cgroup_parent,
                          *extra, check=True)
    assert created.stdout == "pod/myapp-pod created\n"

    wait_for(world, "myapp-pod", "Init:0/2")
    table = world.nsrun("get", "-f", myapp, check=True).stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert table[1].split()[:4] == ["myapp-pod", "0/1", "Init:0/2", "0"]

    described = _described_once_running(world, myapp)
    assert "Name:             myapp-pod" in described
    assert "Status:           Pending" in described
    init_myservice = described.split("  init-myservice:")[1].split("  init-mydb:")[0]
    assert "State:          Running" in init_myservice
    init_mydb = described.split("  init-mydb:")[1].split("Containers:")[0]
    assert "State:          Waiting" in init_mydb and "Reason:       PodInitializing" in init_mydb

    deadline = time.monotonic() + 10
    while "waiting for myservice" not in world.nsrun("logs", "myapp-pod", "-c",
                                                     "init-myservice").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    made = world.nsrun("create", "-f", services, check=True)
    assert made.stdout == "service/myservice created\nservice/mydb created\n"
    seen = wait_for(world, "myapp-pod", "Running")
    assert seen[-1] == "Running" and set(seen) <= {"Init:0/2", "Init:1/2", "PodInitializing",
                                                   "Running"}
    row = world.nsrun("get", "-f", myapp, check=True).stdout.splitlines()[1].split()
    assert row[:4] == ["myapp-pod", "1/1", "Running", "0"]
    assert world.nsrun("logs", "myapp-pod", "-c", "myapp-container").stdout == \
        "The app is running!\n"
    # init-mydb found its Service at its first try
    assert "waiting for mydb" not in world.nsrun("logs", "myapp-pod", "-c", "init-mydb").stdout

    gone = world.nsrun("delete", "-f", services, check=True)
    assert gone.stdout == 'service "myservice" deleted\nservice "mydb" deleted\n'
    gone = world.nsrun("delete", "-f", myapp, "--grace-period", "0", check=True)
    assert gone.stdout == 'pod "myapp-pod" deleted\n'


def _described_once_running(world: World, myapp: str, timeout: float = 20) -> str:
    """`describe -f` once init-myservice has started: `Init:0/2` is already shown while the
    first init container is still being created (Waiting), as the kubelet shows it."""
    deadline = time.monotonic() + timeout
    while True:
        described = world.nsrun("describe", "-f", myapp, check=True).stdout
        first = described.split("  init-myservice:")[1].split("  init-mydb:")[0]
        if "State:          Running" in first or time.monotonic() > deadline:
            return described
        time.sleep(0.1)
