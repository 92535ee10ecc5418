"""Bad input: one clear line naming the file and the field, exit code 2, no traceback, and
nothing created on the host (no state, no cgroup)."""

from __future__ import annotations

import pytest

from world import World, leftovers

CASES = {
    "missing file": (None, "nosuch.yaml: No such file or directory"),
    "invalid yaml": ("spec: [unclosed\n", "invalid YAML"),
    "unknown field": ("metadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: busybox, imagee: x}\n",
                      "spec.containers[0].imagee"),
    "container without image": ("metadata: {name: p}\nspec:\n  containers:\n  - {name: a}\n",
                                "spec.containers[0].image: Required value"),
    "init container without name": (
        "metadata: {name: p}\nspec:\n  initContainers:\n  - {image: busybox}\n"
        "  containers:\n  - {name: a, image: busybox}\n",
        "spec.initContainers[0].name: Required value"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_manifest_is_refused_cleanly(tmp_path, case):
    text, expected = CASES[case]
    world = World(tmp_path)
    path = str(tmp_path / "nosuch.yaml") if text is None else world.manifest("bad", text)
    proc = world.nsrun("run", "--cgroup-parent", world.cgroup_parent, path)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("nsrun: ")
    assert not (world.root / "pods").exists() or not any((world.root / "pods").iterdir())
    assert leftovers(tmp_path, world.cgroup_dirs) == []
