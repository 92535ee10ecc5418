"""Table tests for the planner, status derivation and the kubectl STATUS column.

Each case starts from the same base pod (two init containers, one app) and one observed
history, and states the whole expected result.
"""

from __future__ import annotations

import msgspec
import pytest

from nsrun.core.actions import KillPod, StartContainer, WakeAt
from nsrun.core.backoff import BackoffPolicy, delay
from nsrun.core.manifest import load_pods
from nsrun.core.observed import Attempt, ContainerObs, Observed
from nsrun.core.plan import next_actions
from nsrun.core.printer import get_row, human_duration
from nsrun.core.status import derive_status

T0 = 1_800_000_000.0
POLICY = BackoffPolicy(initial=10, maximum=300)

BASE = """
metadata: {{name: myapp-pod, uid: u1}}
spec:
  restartPolicy: {policy}
  initContainers:
  - {{name: init-myservice, image: busybox}}
  - {{name: init-mydb, image: busybox}}
  containers:
  - {{name: myapp-container, image: busybox}}
"""


def pod(policy: str = "Always", deadline: int | None = None):
    p = load_pods(BASE.format(policy=policy))[0]
    if deadline is not None:
        p = msgspec.structs.replace(p, spec=msgspec.structs.replace(
            p.spec, active_deadline_seconds=deadline))
    return p


def ok(start: float, end: float) -> Attempt:
    return Attempt(start, end, 0, reason="Completed")


def fail(start: float, end: float, code: int = 1) -> Attempt:
    return Attempt(start, end, code, reason="Error")


def run(start: float) -> Attempt:
    return Attempt(start)


def observed(**containers: tuple[Attempt, ...]) -> Observed:
    return Observed(T0, {k.replace("_", "-"): ContainerObs(v) for k, v in containers.items()})


PLAN_CASES = {
    "nothing ran: first init starts": (
        "Always", observed(), T0, [StartContainer("init-myservice")]),
    "first init running: wait": (
        "Always", observed(init_myservice=(run(T0),)), T0 + 1, []),
    "first init ok: second starts": (
        "Always", observed(init_myservice=(ok(T0, T0 + 1),)), T0 + 1,
        [StartContainer("init-mydb")]),
    "all init ok: app starts": (
        "Always", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0 + 1, T0 + 2),)),
        T0 + 2, [StartContainer("myapp-container")]),
    "init failed, Never: nothing more": (
        "Never", observed(init_myservice=(fail(T0, T0 + 1),)), T0 + 1, []),
    "init failed once, OnFailure: immediate restart": (
        "OnFailure", observed(init_myservice=(fail(T0, T0 + 1),)), T0 + 1,
        [StartContainer("init-myservice")]),
    "init failed twice: back-off 10s": (
        "Always", observed(init_myservice=(fail(T0, T0 + 1), fail(T0 + 1, T0 + 2))), T0 + 3,
        [WakeAt(T0 + 12)]),
    "init failed twice, back-off elapsed: restart": (
        "Always", observed(init_myservice=(fail(T0, T0 + 1), fail(T0 + 1, T0 + 2))), T0 + 12,
        [StartContainer("init-myservice")]),
    "OOM-killed init with code 0 is a failure": (
        "Never", observed(init_myservice=(Attempt(T0, T0 + 1, 0, reason="OOMKilled"),)),
        T0 + 1, []),
    "app exited, Never: pod done": (
        "Never", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                          myapp_container=(ok(T0 + 1, T0 + 2),)), T0 + 2, []),
    "app exited, Always: restarted": (
        "Always", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                           myapp_container=(ok(T0 + 1, T0 + 2),)), T0 + 2,
        [StartContainer("myapp-container")]),
    "app started: successful init never re-runs": (
        "Always", observed(init_mydb=(ok(T0, T0 + 1),), myapp_container=(run(T0 + 1),)),
        T0 + 2, []),
}


@pytest.mark.parametrize("name", PLAN_CASES)
def test_next_actions(name):
    policy, obs, now, expected = PLAN_CASES[name]
    assert next_actions(pod(policy), obs, now, POLICY) == expected


def test_deadline_kills_pod_during_init():
    obs = observed(init_myservice=(run(T0),))
    assert next_actions(pod(deadline=5), obs, T0 + 1, POLICY) == [WakeAt(T0 + 5)]
    assert next_actions(pod(deadline=5), obs, T0 + 5, POLICY) == [
        KillPod("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")]


def test_deleting_kills_running_and_starts_nothing():
    o = Observed(T0, {"init-myservice": ContainerObs((run(T0),))}, deleting=True)
    assert next_actions(pod(), o, T0 + 1, POLICY) == [KillPod()]
    o = Observed(T0, {"init-myservice": ContainerObs((fail(T0, T0 + 1),))}, deleting=True)
    assert next_actions(pod(), o, T0 + 1, POLICY) == []


def test_missing_image_retries_with_backoff():
    o = Observed(T0, {"init-myservice": ContainerObs().start_failed(
        "ErrImageNeverPull", "image not present", T0)})
    assert next_actions(pod(), o, T0 + 1, POLICY) == [WakeAt(T0 + 10)]
    assert next_actions(pod(), o, T0 + 10, POLICY) == [StartContainer("init-myservice")]


@pytest.mark.parametrize("failures,expected", [(1, 0), (2, 10), (3, 20), (4, 40), (6, 160),
                                               (7, 300), (12, 300)])
def test_backoff_delays(failures, expected):
    assert delay(failures, POLICY) == expected


STATUS_CASES = {
    "fresh pod": ("Always", observed(), T0, "Pending", "Init:0/2", "0/1"),
    "first init running": ("Always", observed(init_myservice=(run(T0),)), T0 + 1,
                           "Pending", "Init:0/2", "0/1"),
    "second init running": ("Always", observed(init_myservice=(ok(T0, T0 + 1),),
                                               init_mydb=(run(T0 + 1),)), T0 + 2,
                            "Pending", "Init:1/2", "0/1"),
    "init done, app not yet started": (
        "Always", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),)),
        T0 + 2, "Pending", "PodInitializing", "0/1"),
    "running": ("Always", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                                   myapp_container=(run(T0 + 1),)), T0 + 2,
                "Running", "Running", "1/1"),
    "init failed, Never": ("Never", observed(init_myservice=(fail(T0, T0 + 1),)), T0 + 2,
                           "Failed", "Init:Error", "0/1"),
    "init crash loop": ("Always", observed(init_myservice=(fail(T0, T0 + 1), fail(T0 + 1, T0 + 2))),
                        T0 + 3, "Pending", "Init:CrashLoopBackOff", "0/1"),
    "init failed, restart due": ("OnFailure", observed(init_myservice=(fail(T0, T0 + 1),)),
                                 T0 + 1, "Pending", "Init:Error", "0/1"),
    "init killed by signal": ("Never", observed(init_myservice=(
        Attempt(T0, T0 + 1, 137, 9, reason=""),)), T0 + 1, "Failed", "Init:Signal:9", "0/1"),
    "completed": ("Never", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                                    myapp_container=(ok(T0 + 1, T0 + 2),)), T0 + 3,
                  "Succeeded", "Completed", "0/1"),
    "app error": ("Never", observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                                    myapp_container=(fail(T0 + 1, T0 + 2),)), T0 + 3,
                  "Failed", "Error", "0/1"),
}


@pytest.mark.parametrize("name", STATUS_CASES)
def test_status_and_kubectl_column(name):
    policy, obs, now, phase, column, ready = STATUS_CASES[name]
    p = pod(policy)
    status = derive_status(p, obs, now, POLICY)
    assert status["phase"] == phase
    whole = {"metadata": {"name": "myapp-pod"}, "spec": msgspec.to_builtins(p.spec),
             "status": status}
    row = get_row(whole, now)
    assert row[:3] == ("myapp-pod", ready, column)


def test_initialized_condition_names_incomplete_containers():
    status = derive_status(pod(), observed(init_myservice=(run(T0),)), T0 + 1, POLICY)
    init = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert init == {"type": "Initialized", "status": "False", "lastProbeTime": None,
                    "lastTransitionTime": "2027-01-15T08:00:00Z",
                    "reason": "ContainersNotInitialized",
                    "message": "containers with incomplete status: [init-myservice init-mydb]"}
    assert [c["type"] for c in status["conditions"]] == [
        "PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]


def test_crash_loop_waiting_state_and_last_state():
    obs = observed(init_myservice=(fail(T0, T0 + 1), fail(T0 + 1, T0 + 2)))
    cs = derive_status(pod(), obs, T0 + 3, POLICY)["initContainerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["state"]["waiting"]["message"].startswith(
        "back-off 10s restarting failed container=init-myservice pod=myapp-pod")
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["restartCount"] == 1
    app = derive_status(pod(), obs, T0 + 3, POLICY)["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}


def test_deadline_exceeded_status():
    o = Observed(T0, {"init-myservice": ContainerObs((Attempt(T0, T0 + 5, 137, 9, "Error"),))},
                 killed_reason="DeadlineExceeded")
    status = derive_status(pod(deadline=5), o, T0 + 6, POLICY)
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed", "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline")


@pytest.mark.parametrize("secs,text", [(0, "0s"), (45, "45s"), (119, "119s"), (200, "3m20s"),
                                       (900, "15m"), (5 * 3600, "5h"), (3 * 86400, "3d")])
def test_human_duration(secs, text):
    assert human_duration(secs) == text


SIDECAR_POD = """
metadata: {name: sc, uid: u2}
spec:
  restartPolicy: Never
  initContainers:
  - {name: log, image: busybox, restartPolicy: Always}
  - {name: setup, image: busybox}
  containers:
  - {name: app, image: busybox}
"""


def sidecar_pod():
    return load_pods(SIDECAR_POD)[0]


def test_sidecar_gates_next_init_until_started():
    obs = Observed(T0, {"log": ContainerObs((Attempt(T0, started=False),))})
    assert next_actions(sidecar_pod(), obs, T0 + 1, POLICY) == []
    obs = Observed(T0, {"log": ContainerObs((Attempt(T0),))})
    assert next_actions(sidecar_pod(), obs, T0 + 1, POLICY) == [StartContainer("setup")]


def test_sidecar_restarts_on_any_exit_even_with_never():
    obs = Observed(T0, {"log": ContainerObs((ok(T0, T0 + 1),)),
                        "setup": ContainerObs((ok(T0, T0 + 1),)),
                        "app": ContainerObs((run(T0 + 1),))})
    assert next_actions(sidecar_pod(), obs, T0 + 2, POLICY) == [StartContainer("log")]


def test_sidecar_does_not_keep_the_pod_alive_and_stops_last():
    obs = Observed(T0, {"log": ContainerObs((run(T0),)),
                        "setup": ContainerObs((ok(T0, T0 + 1),)),
                        "app": ContainerObs((ok(T0 + 1, T0 + 2),))})
    status = derive_status(sidecar_pod(), obs, T0 + 3, POLICY)
    assert status["phase"] == "Running"  # until the sidecar has been stopped
    assert next_actions(sidecar_pod(), obs, T0 + 3, POLICY) == [KillPod()]
    stopped = obs.with_container("log", ContainerObs((Attempt(T0, T0 + 4, 143, 15),)))
    assert derive_status(sidecar_pod(), stopped, T0 + 4, POLICY)["phase"] == "Succeeded"
    assert next_actions(sidecar_pod(), stopped, T0 + 4, POLICY) == []


def test_liveness_failure_kills_with_the_kubelet_message():
    from nsrun.core.actions import KillContainer

    obs = observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                   myapp_container=(Attempt(T0 + 1, unhealthy=(
                       "Container myapp-container failed liveness probe, will be restarted")),))
    assert next_actions(pod(), obs, T0 + 5, POLICY) == [KillContainer(
        "myapp-container", "Container myapp-container failed liveness probe, will be restarted")]


def test_definition_change_restarts_app_even_with_never():
    obs = observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                   myapp_container=(Attempt(T0 + 1, T0 + 2, 137, 9, "Error",
                                            restart_requested=True),))
    assert next_actions(pod("Never"), obs, T0 + 2, POLICY) == [StartContainer("myapp-container")]


def test_pod_restart_stops_everything_then_reinitializes_from_the_first_init():
    from nsrun.core.actions import RestartPod

    done = observed(init_myservice=(ok(T0, T0 + 1),), init_mydb=(ok(T0, T0 + 1),),
                    myapp_container=(run(T0 + 1),))
    restarting = msgspec.structs.replace(done, restarting=True)
    assert next_actions(pod(), restarting, T0 + 2, POLICY) == [KillPod()]
    stopped = restarting.with_container("myapp-container", ContainerObs(
        (Attempt(T0 + 1, T0 + 3, 143, 15, "Error"),)))
    assert next_actions(pod(), stopped, T0 + 3, POLICY) == [RestartPod()]
    new_gen = msgspec.structs.replace(stopped, restarting=False, sandbox_gen=1)
    assert next_actions(pod(), new_gen, T0 + 3, POLICY) == [StartContainer("init-myservice")]
    status = derive_status(pod(), new_gen, T0 + 3, POLICY)
    assert status["phase"] == "Pending"
    app = status["containerStatuses"][0]
    assert app["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert app["lastState"]["terminated"]["exitCode"] == 143
    assert status["initContainerStatuses"][0]["restartCount"] == 0
