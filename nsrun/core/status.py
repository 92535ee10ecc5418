"""Status derivation: ``derive_status(pod, observed, now)`` → a Kubernetes PodStatus (pure).

The result is the JSON shape ``kubectl get pod -o json`` shows under ``status``: phase,
conditions, ``initContainerStatuses``, ``containerStatuses``, reason/message, startTime,
with the kubelet's reasons and messages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nsrun.core import rules
from nsrun.core.backoff import KUBELET, BackoffPolicy
from nsrun.core.observed import (
    CONTAINER_CREATING,
    CRASH_LOOP_BACK_OFF,
    POD_INITIALIZING,
    Attempt,
    ContainerObs,
    Observed,
)
from nsrun.core.spec import Container, Pod, is_sidecar


def rfc3339(t: float | None) -> str | None:
    """Epoch seconds → ``2026-11-25T02:01:37Z`` (Kubernetes' metav1.Time, seconds)."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive_status(pod: Pod, observed: Observed, now: float,
                  policy: BackoffPolicy = KUBELET) -> dict[str, Any]:
    """The pod's status as the kubelet would report it at ``now``."""
    phase = rules.phase(pod, observed)
    done = phase in (rules.SUCCEEDED, rules.FAILED)
    default_wait = POD_INITIALIZING if pod.spec.init_containers else CONTAINER_CREATING
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": _conditions(pod, observed, phase),
        "startTime": rfc3339(observed.start_time),
        "initContainerStatuses": [
            _container_status(pod, c, observed, now, policy, True, POD_INITIALIZING,
                              done)
            for c in pod.spec.init_containers],
        "containerStatuses": [
            _container_status(pod, c, observed, now, policy, False, default_wait,
                              done)
            for c in pod.spec.containers],
    }
    if observed.killed_reason:
        status["reason"] = observed.killed_reason
        status["message"] = observed.killed_message or rules.DEADLINE_MESSAGE
    if not pod.spec.init_containers:
        del status["initContainerStatuses"]
    return status


def _terminated(a: Attempt) -> dict[str, Any]:
    state: dict[str, Any] = {"exitCode": a.exit_code, "reason": a.reason,
                             "startedAt": rfc3339(a.started_at),
                             "finishedAt": rfc3339(a.finished_at)}
    if a.signal:
        state["signal"] = a.signal
    if a.message:
        state["message"] = a.message
    return {"terminated": state}


def _state(pod: Pod, c: Container, obs: ContainerObs, hist: ContainerObs, now: float,
           policy: BackoffPolicy, is_init: bool, default_wait: str,
           done: bool) -> tuple[dict, dict]:
    """(state, lastState) of one container: ``obs`` holds the attempts of the current
    sandbox, ``hist`` every attempt (lastState survives a pod restart)."""
    cur = obs.current
    last = hist.attempts[-1] if hist.attempts else None
    if obs.waiting_reason:
        waiting = {"reason": obs.waiting_reason, "message": obs.waiting_message}
        return {"waiting": waiting}, (_terminated(last) if last else {})
    if cur is None:
        return {"waiting": {"reason": default_wait}}, (_terminated(last) if last else {})
    previous = _terminated(hist.attempts[-2]) if len(hist.attempts) > 1 else {}
    if cur.running:
        return {"running": {"startedAt": rfc3339(cur.started_at)}}, previous
    if rules.wants_restart(pod, c, obs, is_init) and not done:
        due = rules.restart_time(obs, policy)
        if due > now:
            return {"waiting": _backoff_waiting(pod, c, cur, due)}, _terminated(cur)
    return _terminated(cur), previous


def _backoff_waiting(pod: Pod, c: Container, cur: Attempt, due: float) -> dict[str, str]:
    seconds = int(round(due - (cur.finished_at or cur.started_at)))
    return {"reason": CRASH_LOOP_BACK_OFF,
            "message": f"back-off {_duration(seconds)} restarting failed "
                       f"container={c.name} pod={pod.metadata.name}_{pod.metadata.namespace}"
                       f"({pod.metadata.uid})"}


def _duration(seconds: int) -> str:
    """Go's time.Duration string for whole seconds: 10s, 1m20s, 5m0s."""
    if seconds < 60:
        return f"{seconds}s"
    return f"{seconds // 60}m{seconds % 60}s"


def _container_status(pod: Pod, c: Container, observed: Observed, now: float,
                      policy: BackoffPolicy, is_init: bool, default_wait: str,
                      done: bool) -> dict:
    obs, hist = observed.get(c.name), observed.history(c.name)
    state, last = _state(pod, c, obs, hist, now, policy, is_init, default_wait, done)
    cur = obs.current
    running = cur is not None and cur.running
    if is_init and not is_sidecar(c):
        ready = "terminated" in state and state["terminated"]["exitCode"] == 0
    else:
        ready = running and cur is not None and cur.ready
    return {"name": c.name, "image": c.image, "imageID": "", "containerID": _cid(pod, c, hist),
            "state": state, "lastState": last, "ready": ready,
            "restartCount": hist.restart_count,
            "started": running and cur is not None and cur.started}


def _cid(pod: Pod, c: Container, hist: ContainerObs) -> str:
    if hist.current is None:
        return ""
    return f"nsrun://{pod.metadata.uid}/{c.name}/{hist.restart_count}"


def _condition(kind: str, ok: bool, when: float | None, reason: str = "",
               message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False",
                            "lastProbeTime": None, "lastTransitionTime": rfc3339(when)}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _conditions(pod: Pod, observed: Observed, phase: str) -> list[dict[str, Any]]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled (E2)."""
    start = observed.start_time
    sandbox = phase not in (rules.SUCCEEDED, rules.FAILED)
    init_ok = rules.initialized(pod, observed)
    incomplete = [c.name for c in pod.spec.init_containers
                  if not rules.init_complete(c, observed.get(c.name))]
    init_reason, init_msg = "", ""
    if phase == rules.SUCCEEDED:
        init_reason = "PodCompleted"
    elif not init_ok:
        init_reason = "ContainersNotInitialized"
        init_msg = f"containers with incomplete status: [{' '.join(incomplete)}]"
    unready = [c.name for c in _ready_set(pod) if not _is_ready(observed.get(c.name))]
    ready = not unready and phase == rules.RUNNING
    ready_reason, ready_msg = _ready_reason(phase, unready)
    return [
        _condition("PodReadyToStartContainers", sandbox, start),
        _condition("Initialized", init_ok, _initialized_at(pod, observed), init_reason, init_msg),
        _condition("Ready", ready, _ready_at(pod, observed), ready_reason, ready_msg),
        _condition("ContainersReady", ready, _ready_at(pod, observed), ready_reason, ready_msg),
        _condition("PodScheduled", True, start),
    ]


def _is_ready(obs: ContainerObs) -> bool:
    return obs.running and obs.attempts[-1].ready


def _ready_set(pod: Pod) -> list[Container]:
    return [c for c in pod.spec.init_containers if is_sidecar(c)] + list(pod.spec.containers)


def _ready_reason(phase: str, unready: list[str]) -> tuple[str, str]:
    if phase == rules.FAILED:
        return "PodFailed", ""
    if phase == rules.SUCCEEDED:
        return "PodCompleted", ""
    if unready:
        return "ContainersNotReady", f"containers with unready status: [{' '.join(unready)}]"
    return "", ""


def _initialized_at(pod: Pod, observed: Observed) -> float:
    ends = [observed.get(c.name).current for c in pod.spec.init_containers]
    times = [a.finished_at or a.started_at for a in ends if a is not None]
    return max(times, default=observed.start_time)


def _ready_at(pod: Pod, observed: Observed) -> float:
    cur = [observed.get(c.name).current for c in _ready_set(pod)]
    times = [a.finished_at or a.started_at for a in cur if a is not None]
    return max(times, default=observed.start_time)
