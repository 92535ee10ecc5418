"""Fault injection with real processes (issue 11): the supervisor is SIGKILLed at random
moments across the init sequence, a failed init container's back-off wait, the app phase
and the pod's end, left dead for a random while (exits happen meanwhile), then ``recover``
runs. Whatever the moment: no completed init container ran twice, every exit shows up with
its real code, restart counts are right, the logs are complete, and nothing is leaked.

``make test`` runs a sample of ``NSRUN_FAULTS`` moments (15); ``make test-faults`` 100.
The seed is printed, and ``NSRUN_FAULT_SEED`` replays a run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time

import pytest

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

MOMENTS = int(os.environ.get("NSRUN_FAULTS", "15"))
SEED = int(os.environ.get("NSRUN_FAULT_SEED", str(random.randrange(1 << 30))))
PARALLEL = 5
SPAN = 2.6  # seconds from `run -d` to the pod's end, about

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: OnFailure
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: one
    image: busybox
    command: [sh, -c, 'echo one >> /work/runs; echo one; sleep 0.3']
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: two
    image: busybox
    command: [sh, -c, 'if [ ! -e /work/failed ]; then touch /work/failed; echo fail; exit 2;
      fi; echo two >> /work/runs; echo two; sleep 0.2']
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo app >> /work/runs; echo app; sleep 0.6']
    volumeMounts: [{{name: work, mountPath: /work}}]
  volumes:
  - {{name: work, emptyDir: {{}}}}
"""


@pytest.fixture
def world(net_world):
    """A World of its own (conftest's ``net_world``): nothing may be left afterwards."""
    (net_world.tmp / "ctl").mkdir()
    return net_world


def _phase(w: World, name: str) -> str:
    try:
        return w.status(name)["status"]["phase"]
    except (OSError, ValueError, KeyError):
        return ""


def _one_fault(w: World, name: str, kill_at: float, down_for: float, errors: list) -> None:
    try:
        w.nsrun(*w.run_args("-d", w.manifest(name, POD.format(name=name))), check=True)
        time.sleep(kill_at)
        pid = int((w.root / "pods" / name / "supervisor.pid").read_text())
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it had already finished the pod
        time.sleep(down_for)
        proc = w.nsrun("recover", name)
        assert proc.returncode == 0, proc.stderr
        deadline = time.monotonic() + 40
        while _phase(w, name) != "Succeeded" and time.monotonic() < deadline:
            time.sleep(0.1)
        _check(w, name)
    except BaseException as err:  # reported by the test, with the moment and the records
        errors.append(f"{name} (killed at {kill_at:.2f}s, down {down_for:.2f}s): {err!r}\n"
                      f"{_records(w, name)}")


def _records(w: World, name: str) -> str:
    pod = w.root / "pods" / name
    files = [pod / "observed.json", *sorted((pod / "containers").rglob("*.json"))]
    return "\n".join(f"  {p.relative_to(pod)}: {p.read_text().strip()}" for p in files
                     if p.exists())


def _check(w: World, name: str) -> None:
    status = w.status(name)["status"]
    assert status["phase"] == "Succeeded", status
    runs = (w.root / "pods" / name / "volumes" / "work" / "runs").read_text().split()
    assert runs == ["one", "two", "app"], runs  # nothing completed ran twice
    one, two = status["initContainerStatuses"]
    app = status["containerStatuses"][0]
    assert [one["restartCount"], two["restartCount"], app["restartCount"]] == [0, 1, 0]
    assert two["lastState"]["terminated"]["exitCode"] == 2  # the failure, with its code
    for cs in (one, two, app):
        assert cs["state"]["terminated"]["exitCode"] == 0, cs
    logs = {c: w.nsrun("logs", name, "-c", c).stdout for c in ("one", "two", "app")}
    assert logs == {"one": "one\n", "two": "two\n", "app": "app\n"}, logs
    assert w.nsrun("logs", name, "-c", "two", "--previous").stdout == "fail\n"


@pytest.mark.timeout(60 + 8 * MOMENTS)  # about 3 s a moment, 5 at a time, on a busy host
def test_supervisor_killed_at_random_moments_then_recovered(world):
    rng = random.Random(SEED)
    print(f"fault seed {SEED} (NSRUN_FAULT_SEED), {MOMENTS} moments")
    errors: list[str] = []
    for batch in range(0, MOMENTS, PARALLEL):
        threads = [threading.Thread(target=_one_fault, args=(
            world, f"f{i}", rng.uniform(0, SPAN), rng.uniform(0, 0.6), errors))
            for i in range(batch, min(batch + PARALLEL, MOMENTS))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        world.clean()
    assert errors == [], f"seed {SEED}:\n" + "\n".join(errors)


def test_recover_of_a_pod_that_ended_is_a_no_op(world):
    name = "done"
    manifest = world.manifest(name, POD.format(name=name))
    world.nsrun(*world.run_args(manifest), check=True)  # foreground, to its end
    proc = world.nsrun("recover", name)
    assert proc.returncode == 0 and "nothing to supervise" in proc.stdout
    assert json.loads((world.root / "pods" / name / "status.json").read_text())[
        "status"]["phase"] == "Succeeded"
