"""Corrupt state is contained (issue 9 item 6), with real pods and the real CLI.

Every file of a running pod's state dir is corrupted in turn, four ways (truncated, junk,
non-UTF-8, JSON of the wrong types), and every verb is run against it: none may exit 125
or print a traceback, ``get`` still lists the other pod, and the file is named. Then the
same corruptions under ``restart`` and ``delete``: they work from what can still be read,
and nothing is left on the host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from world import World, leftovers

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  initContainers:
  - {{name: init, image: busybox, command: [sh, -c, 'echo init done']}}
  containers:
  - {{name: app, image: busybox, command: [sh, -c, 'echo hello; exec sleep 1000']}}
"""
# Not state: the container's own files (mounted into it), volumes, and container logs.
SKIP = ("logs", "shm", "volumes", "serviceaccount")


# Every state file of a running pod with an init container (``test_the_list_is_complete``
# fails when a new one appears, so that it gets fuzzed too).
FILES = ("cgroup", "containers/app/0.json", "containers/init/0.json", "etc-hosts",
         "events.jsonl", "initialized", "lock", "network.json", "observed.json", "pod.json",
         "resolv.conf", "runtime.json", "sandbox.pid", "status.json", "supervisor.log",
         "supervisor.json", "supervisor.pid", "termination/app/0", "termination/init/0")


def read_verbs(pod: str) -> list[list[str]]:
    return [["get"], ["get", pod], ["get", "-o", "json"], ["describe", "pod", pod],
            ["logs", pod], ["logs", pod, "-c", "init"], ["events", "--for", f"pod/{pod}"],
            ["exec", pod, "--", "true"],
            ["wait", "--for=condition=Ready", f"pod/{pod}", "--timeout", "1s"]]


def wrong_types(value):
    """The same JSON with every value of another type (objects stay objects, so the
    readers' field lookups reach the wrong types)."""
    if isinstance(value, dict):
        return {k: wrong_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return {"0": [wrong_types(v) for v in value]}
    if isinstance(value, bool) or value is None:
        return "yes"
    if isinstance(value, (int, float)):
        return str(value)
    return [value]


def corruptions(original: bytes) -> dict[str, bytes]:
    try:
        typed = [json.dumps(wrong_types(json.loads(line))).encode()
                 for line in original.splitlines() if line.strip()]
    except ValueError:
        typed = [b'{"pid": "one", "spec": 5}']
    return {"truncated": original[:len(original) // 2],
            "junk": b"\x00\x01{[}\x7fnot json\n" * 3,
            "non-utf8": b"\xff\xfe\xc3(" + original[:20] + b"\x80\n",
            "wrong-types": b"\n".join(typed) + b"\n"}


def state_files(pod_dir: Path) -> list[Path]:
    """Every regular file of the pod's state, the nested ones included."""
    out = []
    for top, dirs, files in os.walk(pod_dir):
        dirs[:] = [d for d in dirs if Path(top, d).relative_to(pod_dir).parts[0] not in SKIP]
        out += [Path(top, f) for f in files if f not in SKIP]
    return sorted(out)


def run_all(world: World, verbs: list[list[str]]) -> list[tuple[list[str], int, str, str]]:
    """Every verb at once (separate processes), each with its exit code and output."""
    cmd = [sys.executable, "-m", "nsrun", *world.global_args()]
    procs = [(v, subprocess.Popen(cmd + v, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, errors="replace")) for v in verbs]
    out = []
    for verb, proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        out.append((verb, proc.returncode, stdout, stderr))
    return out


def contained(results, what: str) -> list[str]:
    """The verbs that failed the way no corrupt file may make them fail."""
    return [f"{what}: {' '.join(verb)} exited {code}: {err.strip()[-300:]}"
            for verb, code, _, err in results
            if code == 125 or "Traceback" in err or "internal error" in err]


def start(world: World, names: list[str]) -> None:
    for name in names:
        world.nsrun(*world.run_args("-d", world.manifest(name, POD.format(name=name))),
                    check=True)
    for name in names:
        world.wait_column(name, "Running", timeout=60)


@pytest.fixture
def world(net_world):
    return net_world


@pytest.fixture(scope="module")
def two_pods(tmp_path_factory):
    """One world for the reading verbs: "victim" has its files corrupted, "other" not."""
    w = World(tmp_path_factory.mktemp("corrupt"))
    try:
        w.nsrun("image", "busybox", check=True)
        start(w, ["victim", "other"])
        yield w
    finally:
        assert w.clean() == []


def test_the_list_is_complete(two_pods):
    pod_dir = two_pods.root / "pods" / "victim"
    assert sorted(str(p.relative_to(pod_dir)) for p in state_files(pod_dir)) == sorted(FILES)


@pytest.mark.parametrize("name", FILES)
def test_a_corrupt_state_file_breaks_no_reading_verb(two_pods, name):
    """Truncated, junk, non-UTF-8, wrong JSON types: every reading verb still answers
    (any exit but 125, no traceback), and ``get`` lists both pods."""
    path = two_pods.root / "pods" / "victim" / name
    original = path.read_bytes()
    failures = []
    for kind, data in corruptions(original).items():
        path.write_bytes(data)
        try:
            results = run_all(two_pods, read_verbs("victim"))
        finally:
            path.write_bytes(original)
        failures += contained(results, f"{name} {kind}")
        listed = results[0][2]
        if "other" not in listed or "victim" not in listed:
            failures.append(f"{name} {kind}: get does not list both pods: {listed!r}")
    assert failures == []
    assert two_pods.column("victim") == "Running" and two_pods.column("other") == "Running"


@pytest.mark.parametrize("name, kind", [
    ("status.json", "junk"), ("status.json", "wrong-types"), ("status.json", "non-utf8")])
def test_a_corrupt_status_shows_that_pod_unknown_and_names_the_file(world, name, kind):
    start(world, ["victim", "other"])
    path = world.root / "pods" / "victim" / name
    path.write_bytes(corruptions(path.read_bytes())[kind])
    got = world.nsrun("get")
    assert got.returncode == 0, got.stderr
    rows = {line.split()[0]: line.split()[2] for line in got.stdout.splitlines()[1:]}
    assert rows == {"victim": "Unknown", "other": "Running"}
    assert got.stderr.count("warning") == 1 and str(path) in got.stderr
    described = world.nsrun("describe", "pod", "victim")
    assert described.returncode == 0, described.stderr
    assert "Status:" in described.stdout and "Unknown" in described.stdout


def test_corrupt_events_keep_their_good_lines(world):
    start(world, ["victim"])
    events = world.root / "pods" / "victim" / "events.jsonl"
    good = events.read_bytes()
    events.write_bytes(b"\xff\xfe not an event\n" + good + b'{"time": "late"}\n')
    described = world.nsrun("describe", "pod", "victim")
    assert described.returncode == 0, described.stderr
    assert "Started container app" in described.stdout
    assert f"{events}: corrupt (2 unreadable line(s))" in described.stderr


@pytest.mark.parametrize("kind", ["truncated", "junk", "non-utf8", "wrong-types"])
def test_restart_and_delete_work_with_any_state_file_corrupt(world, kind):
    """One pod per state file, that file corrupted: restart reaches its supervisor, delete
    removes the pod and everything it had on the host."""
    pods = {f"p{i}": name for i, name in enumerate(FILES)}
    start(world, list(pods))
    for pod, name in pods.items():
        path = world.root / "pods" / pod / name
        path.write_bytes(corruptions(path.read_bytes())[kind])
    restarted = run_all(world, [["restart", pod] for pod in pods])
    failures = contained(restarted, "restart")
    failures += [f"restart {verb[1]} ({pods[verb[1]]}): exit {code}: {err.strip()}"
                 for verb, code, _, err in restarted if code != 0]
    deleted = run_all(world, [["delete", pod, "--timeout", "30"] for pod in pods])
    failures += contained(deleted, "delete")
    failures += [f"delete {verb[1]} ({pods[verb[1]]}): exit {code}: {err.strip()}"
                 for verb, code, _, err in deleted if code != 0]
    failures += [f"{pod} ({name}) left its state dir" for pod, name in pods.items()
                 if (world.root / "pods" / pod).exists()]
    assert failures + leftovers(world.tmp, []) == []
