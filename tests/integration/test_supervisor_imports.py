"""The supervisor that really runs a pod imports no YAML, argparse or validation code, and,
once the pod's seccomp program was compiled, no libseccomp binding either.

``PYTHONPROFILEIMPORTTIME`` makes every interpreter print each import on stderr; a
foreground ``nsrun run`` is two interpreters (the CLI, then the supervisor it execs), each
starting with its own ``site``, so the lines after the second ``site`` are the supervisor's,
lazy imports made while the pod ran included (``tests/unit/test_import_sets.py`` checks the
same sets without running anything).
"""

from __future__ import annotations

import os

import pytest
from world import World, leftovers

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {name: imports}
spec:
  restartPolicy: Never
  initContainers:
  - {name: init, image: busybox, command: [/bin/true]}
  containers:
  - {name: app, image: busybox, command: [/bin/true]}
"""
FORBIDDEN = {"yaml", "argparse", "nsrun.core.validate", "nsrun.cli", "pyseccomp"}


def imports_by_interpreter(stderr: str) -> list[set[str]]:
    out: list[set[str]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        name = line.rsplit("|", 1)[1].strip()
        if name == "site":
            out.append(set())
        elif out:
            out[-1].add(name)
    return out


def test_the_running_supervisor_imports_only_what_it_needs(tmp_path, monkeypatch):
    world = World(tmp_path)
    world.nsrun("image", "busybox", check=True)
    path = world.manifest("imports", POD)
    try:
        world.nsrun(*world.run_args("--rm", path), check=True)  # compiles the seccomp filter
        monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
        proc = world.nsrun(*world.run_args("--rm", path), check=True)
    finally:
        monkeypatch.delenv("PYTHONPROFILEIMPORTTIME", raising=False)
        assert world.clean() == []
    cli, supervisor = imports_by_interpreter(proc.stderr)
    assert {"argparse", "nsrun.core.validate"} <= cli  # the check sees imports
    assert {"nsrun.runtime.supervisor", "nsrun.host.spawn"} <= supervisor
    assert supervisor & FORBIDDEN == set()
    assert leftovers(tmp_path, world.cgroup_dirs) == []
