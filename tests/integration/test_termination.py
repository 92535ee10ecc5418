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
from termkit import IGNORE_TERM, STAMP, box, manifest, out, wait_for, world_fixture  # noqa: F401

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]


def pre_stop(script: str) -> str:
    return f"\n    lifecycle: {{preStop: {{exec: {{command: [sh, -c, {script!r}]}}}}}}"


def start(world: World, text: str) -> None:
    world.nsrun(*world.run_args("-d", world.manifest("p", text)), check=True)


def delete_in_background(world: World, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "nsrun", *world.global_args(), "delete", "p", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stamp(world: World, name: str) -> float:
    return float(out(world, name))


def test_terminating_shows_at_once_with_the_deletion_timestamp(world):
    start(world, manifest(world, box("app", IGNORE_TERM), grace=8))
    world.wait_column("p", "Running")
    began = time.monotonic()
    deleting = delete_in_background(world)
    world.wait_column("p", "Terminating", timeout=8)
    pod = world.status("p")
    # shown while the container still runs (it ignores its SIGTERM for the 8 s of grace)
    assert "running" in pod["status"]["containerStatuses"][0]["state"]
    assert pod["metadata"]["deletionTimestamp"]
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 8
    assert deleting.wait(timeout=30) == 0, deleting.stderr.read()
    assert 8 <= time.monotonic() - began < 14


def test_a_shorter_grace_period_overrides_a_stop_under_way(world):
    start(world, manifest(world, box("app", IGNORE_TERM), grace=60))
    world.wait_column("p", "Running")
    first = delete_in_background(world)
    world.wait_column("p", "Terminating", timeout=5)
    time.sleep(1)
    began = time.monotonic()
    second = world.nsrun("delete", "p", "--grace-period", "1", timeout=30)
    took = time.monotonic() - began
    assert second.returncode == 0, second.stderr
    assert took < 8, took  # killed about 1 s after the second delete, not after 60 s
    assert first.wait(timeout=30) == 0, first.stderr.read()
    assert not (world.root / "pods" / "p").exists()


def test_liveness_probes_stop_at_termination_readiness_goes_on(world):
    probes = ("\n    livenessProbe: {exec: {command: [sh, -c, 'echo x >> /work/live']}, "
              "periodSeconds: 1}"
              "\n    readinessProbe: {exec: {command: [sh, -c, 'echo x >> /work/ready']}, "
              "periodSeconds: 1}")
    hook = pre_stop("touch /work/prestop; sleep 5")
    start(world, manifest(world, box("app", "trap 'exit 0' TERM; while true; do sleep 0.1; done",
                              probes + hook), grace=10))
    wait_for(lambda: len(out(world, "live").split()) >= 2 and
             len(out(world, "ready").split()) >= 2)
    deleting = delete_in_background(world)
    wait_for(lambda: os.path.exists(world.tmp / "out" / "prestop"), 5)
    time.sleep(1)  # a liveness probe launched just before the delete may still write
    live, ready = len(out(world, "live").split()), len(out(world, "ready").split())
    time.sleep(2.5)  # well inside the 5 s preStop
    assert len(out(world, "live").split()) == live  # no liveness probe during preStop
    assert len(out(world, "ready").split()) >= ready + 2  # readiness goes on
    assert deleting.wait(timeout=30) == 0


def sidecar_pod(world: World, grace: int, sidecar_main: str, hook: str = "") -> str:
    inits = "".join(box(f"side{i}", sidecar_main.replace("N", str(i)), hook.replace(
        "N", str(i)), sidecar=True) for i in range(1, 4))
    app = box("app", f"trap '{STAMP} > /work/term-app; exit 0' TERM; "
                     "while true; do sleep 0.05; done")
    return manifest(world, app, inits, grace)


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
    grace + 2 s (the last heartbeat of each sidecar, on the containers' clock)."""
    hook = pre_stop(f"{STAMP} > /work/pre-N; sleep 60")
    beat = (f"trap '' TERM; while true; do {STAMP} > /work/.beat-N; "
            "mv /work/.beat-N /work/beat-N; sleep 0.1; done")  # never an empty file
    start(world, sidecar_pod(world, 5, beat, hook))
    world.wait_column("p", "Running")
    began = time.monotonic()
    deleting = delete_in_background(world)
    assert deleting.wait(timeout=30) == 0, deleting.stderr.read()
    assert time.monotonic() - began < 12
    pres = [stamp(world, f"pre-{i}") for i in (1, 2, 3)]
    start_at = min(pres + [stamp(world, "term-app")])
    assert max(pres) - min(pres) <= 0.5, pres  # every preStop starts together
    assert stamp(world, "term-app") - min(pres) <= 0.5  # with the app's SIGTERM
    killed = [stamp(world, f"beat-{i}") - start_at for i in (1, 2, 3)]
    assert all(abs(k - 7) <= 1.0 for k in killed), killed  # killed at grace + 2 s


def test_the_phase_stays_running_until_the_sidecars_have_stopped(world):
    side = box("side", "trap 'sleep 1.5; exit 0' TERM; while true; do sleep 0.05; done",
               sidecar=True)
    start(world, manifest(world, box("app", "sleep 0.5"), side, grace=10, policy="Never"))
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
