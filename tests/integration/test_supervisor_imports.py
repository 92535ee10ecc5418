"""The detached supervisor that really runs a pod imports no YAML, argparse or validation
code, and, once the pod's seccomp program was compiled, no libseccomp binding either.

``PYTHONPROFILEIMPORTTIME`` makes every interpreter print each import on stderr. ``run -d``
is two interpreters, each starting with its own ``site``: the CLI, then the supervisor it
spawns, which writes on the CLI's stderr until it moves its own to ``supervisor.log``; that
log has the imports made while the pod ran (``tests/unit/test_import_sets.py`` checks the
same sets without running anything).
"""

from __future__ import annotations

import os

import pytest

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {name: imports}
spec:
  terminationGracePeriodSeconds: 0
  initContainers:
  - {name: init, image: busybox, command: [/bin/true]}
  containers:
  - {name: app, image: busybox, command: [sleep, "60"]}
"""
FORBIDDEN = {"yaml", "argparse", "nsrun.core.validate", "nsrun.cli", "pyseccomp"}


def names(text: str) -> list[str]:
    """The modules of ``-X importtime`` lines, in order."""
    return [line.rsplit("|", 1)[1].strip() for line in text.splitlines()
            if line.startswith("import time:") and "self [us]" not in line]


def imports_by_interpreter(stderr: str) -> list[set[str]]:
    out: list[set[str]] = []
    for name in names(stderr):
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
        world.nsrun(*world.run_args("-d", path), check=True)  # compiles the seccomp filter
        world.nsrun("delete", "imports", "--grace-period", "0", check=True)
        monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
        proc = world.nsrun(*world.run_args("-d", path), check=True)
        monkeypatch.delenv("PYTHONPROFILEIMPORTTIME")
        world.wait_column("imports", "Running")
        log = (world.root / "pods" / "imports" / "supervisor.log").read_text()
    finally:
        monkeypatch.delenv("PYTHONPROFILEIMPORTTIME", raising=False)
        assert world.clean() == []
    cli, spawned = imports_by_interpreter(proc.stderr)
    running = set(names(log))
    assert {"argparse", "nsrun.core.validate"} <= cli  # the check sees imports
    assert "nsrun.host.spawn" in running  # imported when the first container started
    assert (spawned | running) & FORBIDDEN == set()
