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


# What validate once accepted and run then failed on (exit 125, or 5 with -d): refused by
# both, with the same words, before anything is created (issue 9 item 7). JSON, because
# YAML's own escapes refuse a lone surrogate already.
RUN_ONLY = {
    "surrogate": ('{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", '
                  '"image": "busybox", "command": ["echo", "\\ud800"]}]}}',
                  'spec.containers[0].command[1]: Invalid value: "\\ud800": invalid UTF-8'),
    "NUL in hostPath": ('{"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a", '
                        '"image": "busybox"}], "volumes": [{"name": "h", "hostPath": '
                        '{"path": "/tmp/a\\u0000b"}}]}}',
                        'spec.volumes[0].hostPath.path: Invalid value: "/tmp/a\\u0000b": must '
                        "not contain a NUL byte"),
    "unknown capability": (
        "metadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: busybox, "
        "securityContext: {capabilities: {add: [NET_ADMIN, FLY]}}}\n",
        'spec.containers[0].securityContext.capabilities.add[1]: Invalid value: "FLY": '
        "unknown capability"),
}


@pytest.mark.parametrize("case", RUN_ONLY)
def test_validate_and_run_refuse_the_same_manifest(tmp_path, case):
    text, expected = RUN_ONLY[case]
    world = World(tmp_path)
    world.nsrun("image", "busybox", check=True)
    path = tmp_path / "bad.json"
    path.write_text(text)
    for verb in (["validate"], ["run"], ["run", "-d"], ["create", "-f"]):
        proc = world.nsrun(*verb, *(["--cgroup-parent", world.cgroup_parent]
                                    if verb[0] == "run" else []), str(path))
        assert (proc.returncode, expected in proc.stderr) == (2, True), (verb, proc.stderr)
        assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert not (world.root / "pods").exists() or not any((world.root / "pods").iterdir())
    assert leftovers(tmp_path, world.cgroup_dirs) == []
