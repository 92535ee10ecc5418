"""Termination as the kubelet does it (issue 11), end to end with real processes and measured
times: ``Terminating`` at once, a shorter grace overriding a stop under way, liveness probes
ending when termination starts, sidecar teardown (preStops together, SIGTERM in reverse
order, everything left killed at grace + 2 s), and the phase held at Running meanwhile.

Times inside containers come from ``/proc/uptime`` (the host's clock since boot: containers
have no time namespace), so hooks and signal handlers can be compared with each other."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from world import World, leftovers

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

STAMP = "read t x < /proc/uptime; echo $t"  # seconds since boot, 10 ms resolution
IGNORE_TERM = "trap '' TERM; while true; do sleep 0.1; done"


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    w.nsrun("image", "busybox", check=True)
    yield w
    for pod in (w.root / "pods").glob("*") if (w.root / "pods").exists() else []:
        w.nsrun("delete", pod.name, "--force", "--timeout", "20")
    assert leftovers(tmp_path, w.cgroup_dirs) == []


def box(name: str, script: str, extra: str = "", sidecar: bool = False) -> str:
    return f"""
  - name: {name}
    image: busybox
    command: [sh, -c, {script!r}]
    volumeMounts: [{{name: work, mountPath: /work}}]{extra}""" + (
        "\n    restartPolicy: Always" if sidecar else "")


def pre_stop(script: str) -> str:
    return f"\n    lifecycle: {{preStop: {{exec: {{command: [sh, -c, {script!r}]}}}}}}"


def manifest(apps: str, inits: str = "", grace: int = 5, policy: str = "Always",
             out: str = "/nonexistent") -> str:
    """The pod; its ``work`` volume is the test's own directory ``out`` (a hostPath, so what
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
  - {{name: work, hostPath: {{path: {out}, type: Directory}}}}
"""


def start(world: World, text: str) -> None:
    world.nsrun(*world.run_args("-d", world.manifest("p", text)), check=True)


def delete_in_background(world: World, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nsrun", *world.global_args(), "delete", "p", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def out(world: World) -> str:
    path = world.tmp / "out"
    path.mkdir(exist_ok=True)
    return str(path)


def work(world: World, name: str) -> str:
    with open(world.tmp / "out" / name) as f:
        return f.read()


def stamp(world: World, name: str) -> float:
    return float(work(world, name))


def wait_for(predicate, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, KeyError, IndexError, ValueError):
            pass
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_terminating_shows_at_once_with_the_deletion_timestamp(world):
    start(world, manifest(box("app", IGNORE_TERM), out=out(world)))
    world.wait_column("p", "Running")
    began = time.monotonic()
    deleting = delete_in_background(world)
    world.wait_column("p", "Terminating", timeout=3)
    assert time.monotonic() - began < 3  # while the container still ignores its SIGTERM
    meta = world.status("p")["metadata"]
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 5
    assert deleting.wait(timeout=30) == 0, deleting.stderr.read()
    assert 5 <= time.monotonic() - began < 9


def test_a_shorter_grace_period_overrides_a_stop_under_way(world):
    start(world, manifest(box("app", IGNORE_TERM), grace=60, out=out(world)))
    world.wait_column("p", "Running")
    first = delete_in_background(world)
    world.wait_column("p", "Terminating", timeout=5)
    time.sleep(1)
    began = time.monotonic()
    second = world.nsrun("delete", "p", "--grace-period", "1", timeout=30)
    took = time.monotonic() - began
    assert second.returncode == 0, second.stderr
    assert took < 4, took  # SIGKILL 2 s after the first SIGTERM at the latest, not 60 s
    assert first.wait(timeout=30) == 0, first.stderr.read()
    assert not (world.root / "pods" / "p").exists()


def test_liveness_probes_stop_at_termination_readiness_goes_on(world):
    probes = ("\n    livenessProbe: {exec: {command: [sh, -c, 'echo x >> /work/live']}, "
              "periodSeconds: 1}"
              "\n    readinessProbe: {exec: {command: [sh, -c, 'echo x >> /work/ready']}, "
              "periodSeconds: 1}")
    hook = pre_stop("touch /work/prestop; sleep 4")
    start(world, manifest(box("app", "trap 'exit 0' TERM; while true; do sleep 0.1; done",
                              probes + hook), grace=10, out=out(world)))
    wait_for(lambda: len(work(world, "live").split()) >= 2 and
             len(work(world, "ready").split()) >= 2)
    deleting = delete_in_background(world)
    wait_for(lambda: os.path.exists(world.tmp / "out" / "prestop"), 5)
    time.sleep(0.5)  # a liveness probe launched just before the delete may still write
    live, ready = len(work(world, "live").split()), len(work(world, "ready").split())
    time.sleep(2.5)  # well inside the 4 s preStop
    assert len(work(world, "live").split()) == live  # no liveness probe during preStop
    assert len(work(world, "ready").split()) >= ready + 2  # readiness goes on
    assert deleting.wait(timeout=30) == 0


def sidecar_pod(world: World, grace: int, sidecar_main: str, hook: str = "") -> str:
    inits = "".join(box(f"side{i}", sidecar_main.replace("N", str(i)), hook.replace(
        "N", str(i)), sidecar=True) for i in range(1, 4))
    app = box("app", f"trap '{STAMP} > /work/term-app; exit 0' TERM; "
                     "while true; do sleep 0.05; done")
    return manifest(app, inits, grace, out=out(world))


def test_sidecars_get_sigterm_in_reverse_order_after_the_app(world):
    main = (f"trap '{STAMP} > /work/term-N; sleep 0.3; exit 0' TERM; "
            "while true; do sleep 0.05; done")
    start(world, sidecar_pod(world, 10, main))
    world.wait_column("p", "Running")
    began = time.monotonic()
    world.nsrun("delete", "p", check=True, timeout=30)
    took = time.monotonic() - began
    order = sorted(["app", "1", "2", "3"], key=lambda n: stamp(world, f"term-{n}"))
    assert order == ["app", "3", "2", "1"]  # each after the later ones have exited
    gaps = [stamp(world, f"term-{b}") - stamp(world, f"term-{a}")
            for a, b in (("3", "2"), ("2", "1"))]
    assert all(g >= 0.25 for g in gaps), gaps  # a sidecar takes 0.3 s to exit
    assert took < 10, took  # the whole teardown inside the grace period


def test_sidecar_teardown_with_hooks_that_never_return(world):
    """Sidecars whose preStop never returns and which ignore SIGTERM, grace 5 s: the three
    preStops start together with the app's SIGTERM, and everything left is killed at
    grace + 2 s."""
    hook = pre_stop(f"{STAMP} > /work/pre-N; sleep 60")
    start(world, sidecar_pod(world, 5, IGNORE_TERM, hook))
    world.wait_column("p", "Running")
    began = time.monotonic()
    deleting = delete_in_background(world)
    assert deleting.wait(timeout=30) == 0, deleting.stderr.read()
    took = time.monotonic() - began
    pres = [stamp(world, f"pre-{i}") for i in (1, 2, 3)]
    assert max(pres) - min(pres) <= 0.5, pres  # every preStop starts together
    assert abs(stamp(world, "term-app") - min(pres)) <= 0.5  # with the app's SIGTERM
    assert abs(took - 7) <= 1.0, took  # killed at grace + 2 s


def test_the_phase_stays_running_until_the_sidecars_have_stopped(world):
    side = box("side", "trap 'sleep 1.5; exit 0' TERM; while true; do sleep 0.05; done",
               sidecar=True)
    start(world, manifest(box("app", "sleep 0.5"), side, grace=10, policy="Never",
                          out=out(world)))
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status = world.status("p")["status"]
        except (OSError, ValueError):
            continue
        side_state = status["initContainerStatuses"][0]["state"]
        seen.append((status["phase"], "running" in side_state))
        if status["phase"] in ("Succeeded", "Failed"):
            break
        time.sleep(0.02)
    assert ("Succeeded", True) not in seen
    assert ("Running", True) in seen and seen[-1] == ("Succeeded", False)
