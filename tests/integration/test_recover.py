"""A pod outlives its supervisor (issue 11), with real processes: ``kill -9`` of the
supervisor costs nothing, ``nsrun recover`` re-attaches (same container pids, exits that
happened meanwhile with their real codes, restart counts kept), ``get`` says ``Unknown``
while no supervisor runs, a lost sandbox (a reboot) starts the pod over, and completed init
containers never run twice."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time

import pytest

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]

POD = """apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: busybox
    command: [sh, -c, 'echo first >> /work/runs; echo first-log']
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: second
    image: busybox
    command: [sh, -c, 'echo second >> /work/runs']
    volumeMounts: [{{name: work, mountPath: /work}}]
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo app >> /work/runs; while [ ! -e /ctl/exit ]; do sleep 0.1; done; exit 3']
    volumeMounts: [{{name: work, mountPath: /work}}, {{name: ctl, mountPath: /ctl}}]
  volumes:
  - {{name: work, emptyDir: {{}}}}
  - {{name: ctl, hostPath: {{path: {ctl}}}}}
"""


@pytest.fixture
def world(net_world):
    """A World of its own (conftest's ``net_world``): nothing may be left afterwards."""
    (net_world.tmp / "ctl").mkdir()
    return net_world


def start(w: World, name: str = "r", policy: str = "Always") -> str:
    ctl = w.tmp / "ctl"
    manifest = w.manifest(name, POD.format(name=name, policy=policy, ctl=ctl))
    w.nsrun(*w.run_args("-d", manifest), check=True)
    w.wait_column(name, "Running")
    return manifest


def kill_supervisor(w: World, name: str = "r") -> None:
    pid = int((w.root / "pods" / name / "supervisor.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.02)


def runs(w: World, name: str = "r") -> list[str]:
    return (w.root / "pods" / name / "volumes" / "work" / "runs").read_text().split()


def app_pid(w: World, name: str = "r") -> int:
    rec = json.loads((w.root / "pods" / name / "containers" / "app" / "0.json").read_text())
    return rec["pid"]


def app_status(w: World, name: str = "r") -> dict:
    return w.status(name)["status"]["containerStatuses"][0]


def test_kill_9_then_recover_keeps_the_containers_and_counts(world):
    start(world)
    pid = app_pid(world)
    kill_supervisor(world)
    assert world.column("r") == "Unknown"
    assert "nsrun recover r" in world.nsrun("describe", "pod", "r").stdout
    os.kill(pid, 0)  # the container outlived its supervisor
    proc = world.nsrun("recover", "r")
    assert (proc.returncode, proc.stdout.strip()) == (0, "pod/r recovered"), proc.stderr
    world.wait_column("r", "Running")
    assert app_pid(world) == pid and runs(world) == ["first", "second", "app"]
    again = world.nsrun("recover", "r")
    assert again.returncode == 0 and "unchanged: its supervisor is running" in again.stdout
    (world.tmp / "ctl" / "exit").touch()  # exits 3, seen by the new supervisor
    deadline = time.monotonic() + 20
    while app_status(world)["restartCount"] < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert app_status(world)["lastState"]["terminated"]["exitCode"] == 3


def test_an_exit_while_no_supervisor_runs_is_reported_with_its_code(world):
    start(world, policy="Never")
    kill_supervisor(world)
    (world.tmp / "ctl" / "exit").touch()
    rec = world.root / "pods" / "r" / "containers" / "app" / "0.json"
    deadline = time.monotonic() + 10
    while "exitCode" not in rec.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert world.nsrun("recover", "r").returncode == 0
    world.wait_column("r", "Error")
    term = app_status(world)["state"]["terminated"]
    assert term["exitCode"] == 3 and world.status("r")["status"]["phase"] == "Failed"
    assert runs(world) == ["first", "second", "app"]
    assert world.nsrun("logs", "r", "-c", "first").stdout == "first-log\n"


def test_run_of_the_same_manifest_reattaches_instead_of_exit_4(world):
    manifest = start(world)
    pid = app_pid(world)
    kill_supervisor(world)
    proc = world.nsrun(*world.run_args("-d", manifest))
    assert proc.returncode == 0 and "recovered" in proc.stderr, proc.stderr
    world.wait_column("r", "Running")
    assert app_pid(world) == pid


def test_reboot_runs_every_init_again_and_keeps_counts(world):
    start(world)
    pods = world.root / "pods" / "r"
    pause = int((pods / "sandbox.pid").read_text())
    pid = app_pid(world)
    kill_supervisor(world)
    for victim in (pid, pause):  # a reboot: every process of the pod is gone
        os.kill(victim, signal.SIGKILL)
    time.sleep(0.5)
    assert world.nsrun("recover", "r").returncode == 0
    deadline = time.monotonic() + 20
    while runs(world).count("app") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runs(world) == ["first", "second", "app"] * 2
    world.wait_column("r", "Running")
    status = world.status("r")["status"]
    assert [s["restartCount"] for s in status["initContainerStatuses"]] == [1, 1]
    assert status["containerStatuses"][0]["restartCount"] == 1
    reasons = [json.loads(line)["reason"] for line in (pods / "events.jsonl").open()]
    assert "SandboxChanged" in reasons


def test_reboot_of_a_never_pod_ends_failed(world):
    start(world, policy="Never")
    pods = world.root / "pods" / "r"
    kill_supervisor(world)
    for victim in (app_pid(world), int((pods / "sandbox.pid").read_text())):
        os.kill(victim, signal.SIGKILL)
    time.sleep(0.5)
    assert world.nsrun("recover", "r").returncode == 0
    deadline = time.monotonic() + 20
    while world.status("r")["status"]["phase"] != "Failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert world.status("r")["status"]["phase"] == "Failed"
    assert runs(world) == ["first", "second", "app"]


@pytest.mark.parametrize("keep_initialized", [True, False])
def test_deleted_init_records_do_not_rerun_completed_inits(world, keep_initialized):
    """The records of the completed init containers are deleted while no supervisor runs
    (their attempts in observed.json and their monitors' records): the pod-level
    ``initialized`` record, or without it the app's status, says they completed."""
    start(world)
    pods = world.root / "pods" / "r"
    kill_supervisor(world)
    observed = json.loads((pods / "observed.json").read_text())
    for name in ("first", "second"):
        observed["containers"].pop(name)
        for path in (pods / "containers" / name).iterdir():
            path.unlink()
    (pods / "observed.json").write_text(json.dumps(observed))
    if not keep_initialized:
        (pods / "initialized").unlink()
    assert world.nsrun("recover", "r").returncode == 0
    world.wait_column("r", "Running")
    time.sleep(1)
    assert runs(world) == ["first", "second", "app"]


def test_recover_refuses_a_corrupt_record_and_kills_nothing(world):
    start(world)
    pid = app_pid(world)
    kill_supervisor(world)
    observed = world.root / "pods" / "r" / "observed.json"
    observed.write_text('{"start_time": "torn')
    proc = world.nsrun("recover", "r")
    assert proc.returncode == 2 and str(observed) in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.splitlines()) == 1
    os.kill(pid, 0)  # nothing was killed


def test_recover_needs_names_or_all(world):
    proc = world.nsrun("recover")
    assert proc.returncode == 2 and "--all" in proc.stderr
    assert world.nsrun("recover", "nope").returncode == 4


def test_recover_all_takes_every_pod_without_a_supervisor(world):
    start(world, "r1")
    start(world, "r2")
    kill_supervisor(world, "r1")
    proc = world.nsrun("recover", "--all")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["pod/r1 recovered"]  # r2 has its supervisor
    world.wait_column("r1", "Running")


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _end_app_under_a_stopped_monitor(w: World) -> int:
    """The app exits while its monitor is held (SIGSTOP) before it writes the exit record:
    the moment of issue 11's race, made to last. Returns the monitor's pid."""
    start(w, policy="Never")
    rec = json.loads((w.root / "pods" / "r" / "containers" / "app" / "0.json").read_text())
    kill_supervisor(w)
    os.kill(rec["monitorPid"], signal.SIGSTOP)
    (w.tmp / "ctl" / "exit").touch()
    deadline = time.monotonic() + 10
    while not _zombie(rec["pid"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _zombie(rec["pid"])  # ended, not reaped: its monitor is stopped
    return rec["monitorPid"]


def _assert_real_exit(w: World) -> None:
    deadline = time.monotonic() + 20
    while w.status("r")["status"]["phase"] != "Failed" and time.monotonic() < deadline:
        time.sleep(0.1)
    term = app_status(w)["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error"), term  # not ContainerStatusUnknown
    assert runs(w) == ["first", "second", "app"]


def test_recover_waits_for_a_monitor_still_writing_the_record(world):
    monitor = _end_app_under_a_stopped_monitor(world)
    resume = threading.Timer(1.0, os.kill, (monitor, signal.SIGCONT))
    resume.start()  # while recover waits for it
    try:
        assert world.nsrun("recover", "r").returncode == 0
    finally:
        resume.join()
    _assert_real_exit(world)


def test_a_monitor_slower_than_recover_keeps_the_container_supervised(world):
    monitor = _end_app_under_a_stopped_monitor(world)
    try:
        assert world.nsrun("recover", "r").returncode == 0  # after its wait for the monitor
        world.wait_column("r", "Running")  # not given up for lost while the monitor lives
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(monitor, signal.SIGCONT)
    _assert_real_exit(world)
