"""Helpers of the termination tests (``test_termination``, ``test_kubelet_rules``): a World
with the busybox image and a work directory of its own, container snippets, and waiting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from world import World, leftovers

STAMP = "read t x < /proc/uptime; echo $t"  # seconds since boot, 10 ms resolution
IGNORE_TERM = "trap '' TERM; while true; do sleep 0.1; done"


@pytest.fixture(name="world")
def world_fixture(tmp_path: Path) -> Iterator[World]:
    """A World with images busybox and busybox:v2 and ``tmp_path/out`` for the pods'
    ``work`` hostPath volume; afterwards every pod is force-deleted and nothing is left."""
    w = World(tmp_path)
    w.nsrun("image", "busybox", check=True)
    w.nsrun("image", "busybox", "busybox:v2", check=True)
    (tmp_path / "out").mkdir()
    yield w
    for pod in (w.root / "pods").glob("*") if (w.root / "pods").exists() else []:
        w.nsrun("delete", pod.name, "--force", "--timeout", "20")
    assert leftovers(tmp_path, w.cgroup_dirs) == []


def box(name: str, script: str, extra: str = "", sidecar: bool = False,
        image: str = "busybox") -> str:
    """One container of a manifest, with ``work`` mounted at /work."""
    return f"""
  - name: {name}
    image: {image}
    command: [sh, -c, {script!r}]
    volumeMounts: [{{name: work, mountPath: /work}}]{extra}""" + (
        "\n    restartPolicy: Always" if sidecar else "")


def manifest(world: World, apps: str, inits: str = "", grace: int = 5,
             policy: str = "Always") -> str:
    """A pod ``p``; its ``work`` volume is the test's ``out`` directory (a hostPath, so what
    the containers write there outlives the pod's deletion)."""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: {grace}
  initContainers:{inits or ' []'}
  containers:{apps}
  volumes:
  - {{name: work, hostPath: {{path: {world.tmp / 'out'}, type: Directory}}}}
"""


def out(world: World, name: str) -> str:
    with open(world.tmp / "out" / name) as f:
        return f.read()


def wait_for(predicate, timeout: float = 20) -> None:
    """Until ``predicate()``; a file or status not written yet counts as false."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, KeyError, IndexError, ValueError):
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
