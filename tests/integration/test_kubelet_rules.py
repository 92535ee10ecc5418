"""Smaller kubelet rules of issue 11, end to end: app containers start one at a time after
each postStart, a sidecar's startup-probe kill names an init container, a negative grace
period is stored as 1, a new image through ``apply`` resets the crash-loop back-off, a bad
``subPathExpr`` leaves the container Waiting with ``CreateContainerConfigError``, and Ctrl-C
to a foreground ``run`` deletes the pod."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from termkit import STAMP, box, manifest, wait_for, world_fixture  # noqa: F401

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]


def pod(world: World, containers: str, inits: str = "") -> str:
    return world.manifest("p", manifest(world, containers, inits, grace=2))


def events(world: World) -> list[dict]:
    text = (world.root / "pods" / "p" / "events.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_app_containers_start_after_the_previous_post_start_returned(world):
    hook = (f"\n    lifecycle: {{postStart: {{exec: {{command: [sh, -c, "
            f"'sleep 1; {STAMP} > /work/a-hook']}}}}}}")
    path = pod(world, box("a", "sleep 300", hook) + box("b", f"{STAMP} > /work/b; sleep 300"))
    world.nsrun(*world.run_args("-d", path), check=True)
    out = world.tmp / "out"
    wait_for(lambda: (out / "b").read_text().strip())
    assert float((out / "b").read_text()) >= float((out / "a-hook").read_text())


def test_a_sidecars_startup_probe_failure_names_an_init_container(world):
    probe = ("\n    restartPolicy: Always"
             "\n    startupProbe: {exec: {command: ['false']}, periodSeconds: 1, "
             "failureThreshold: 1}")
    path = pod(world, box("app", "sleep 300"), box("side", "sleep 300", probe))
    world.nsrun(*world.run_args("-d", path), check=True)
    want = "Init container side failed startup probe, will be restarted"
    wait_for(lambda: any(e["reason"] == "Killing" and e["message"] == want
                         for e in events(world)))


def test_a_negative_grace_period_is_stored_as_1(world):
    text = open(pod(world, box("app", "sleep 300"))).read()
    path = world.manifest("p", text.replace("terminationGracePeriodSeconds: 2",
                                            "terminationGracePeriodSeconds: -1"))
    assert world.nsrun("validate", path).returncode == 0
    world.nsrun(*world.run_args("-d", path), check=True)
    shown = json.loads(world.nsrun("get", "p", "-o", "json", check=True).stdout)
    assert shown["spec"]["terminationGracePeriodSeconds"] == 1


def test_a_new_image_through_apply_resets_the_crash_loop_back_off(world):
    path = pod(world, box("app", "echo x >> /work/runs; exit 1"))
    world.nsrun("run", "-d", "--cgroup-parent", world.cgroup_parent, "--backoff-initial", "60",
                "--backoff-max", "120", path, check=True)
    runs = world.tmp / "out" / "runs"
    wait_for(lambda: len(runs.read_text().split()) >= 2)  # now 60 s of back-off
    world.wait_column("p", "CrashLoopBackOff")
    updated = world.manifest("p", open(path).read().replace("image: busybox\n",
                                                            "image: busybox:v2\n"))
    began = time.monotonic()
    assert world.nsrun("apply", "-f", updated, check=True).stdout.strip() == "pod/p configured"
    wait_for(lambda: len(runs.read_text().split()) >= 3, timeout=30)
    assert time.monotonic() - began < 20  # not the 60 s back-off of the former image


@pytest.mark.parametrize("value,message", [
    ("/etc", "error SubPath `/etc` must not be an absolute path"),
    ("a/../..", "unable to provision SubPath `a/../..`: must not contain '..'"),
])
def test_a_bad_sub_path_expr_is_a_create_container_config_error(world, value, message):
    extra = (f"\n    env: [{{name: SUB, value: {value!r}}}]"
             "\n    volumeMounts: [{name: work, mountPath: /w, subPathExpr: $(SUB)}]")
    path = pod(world, box("app", "sleep 300").replace(
        "\n    volumeMounts: [{name: work, mountPath: /work}]", "") + extra)
    world.nsrun(*world.run_args("-d", path), check=True)
    world.wait_column("p", "CreateContainerConfigError")
    waiting = world.status("p")["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CreateContainerConfigError"
    assert message in waiting["message"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_a_foreground_run_deletes_the_pod(world, sig, code):
    path = pod(world, box("app", "trap 'exit 0' TERM; while true; do sleep 0.05; done"))
    cmd = [sys.executable, "-m", "nsrun", *world.global_args(), *world.run_args(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        world.wait_column("p", "Running")
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == code
    assert not (world.root / "pods" / "p").exists()
    world.nsrun(*world.run_args("-d", path), check=True)  # the name is free again
