"""Small named rules shared by the planner and status derivation (pure).

Each rule answers one kubelet question: is initialization done, will this container be
restarted, when, and which phase is the pod in, as the kubelet decides it.
"""

from __future__ import annotations

from nsrun.core import backoff
from nsrun.core.observed import ContainerObs, Observed
from nsrun.core.spec import Container, Pod, is_sidecar

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


def init_complete(c: Container, obs: ContainerObs) -> bool:
    """A regular init container is done once an attempt succeeded; a sidecar once it runs
    and has started (its startupProbe succeeded and its postStart hook finished; B)."""
    if is_sidecar(c):
        return obs.running and obs.attempts[-1].started
    return obs.current is not None and obs.current.succeeded


def init_failed(obs: ContainerObs) -> bool:
    """Finished and not successful: non-zero exit, OOM kill or a start error (A4)."""
    cur = obs.current
    return cur is not None and not cur.running and not cur.succeeded


def initialized(pod: Pod, observed: Observed) -> bool:
    """Every init container complete, or an app container already started (A3)."""
    if any(observed.get(c.name).attempts for c in pod.spec.containers):
        return True
    return all(init_complete(c, observed.get(c.name)) for c in pod.spec.init_containers)


def wants_restart(pod: Pod, c: Container, obs: ContainerObs, is_init: bool) -> bool:
    """Whether a finished container is to run again (pod policy; A6, B, and app rules; a
    container killed because its definition changed restarts whatever the policy, A11)."""
    cur = obs.current
    if cur is None or cur.running:
        return False
    if cur.restart_requested or (is_init and is_sidecar(c)):
        return True
    if is_init:
        return not cur.succeeded and pod.spec.restart_policy != "Never"
    if pod.spec.restart_policy == "Always":
        return True
    return pod.spec.restart_policy == "OnFailure" and not cur.succeeded


def restart_time(obs: ContainerObs, policy: backoff.BackoffPolicy) -> float:
    """When a finished container may start again (crash-loop back-off)."""
    return backoff.restart_at(obs.attempts, policy)


def terminal(pod: Pod, observed: Observed) -> bool:
    """The pod will run nothing more: killed, or its regular containers settled it
    Succeeded/Failed (its sidecars, if any still run, are then stopped; B5)."""
    return _phase(pod, observed, sidecars_hold=False) in (SUCCEEDED, FAILED)


def phase(pod: Pod, observed: Observed) -> str:
    """The pod phase, following the kubelet's getPhase (E1): a running sidecar counts as
    running, so a pod whose app containers are done stays Running until its sidecars have
    been stopped."""
    return _phase(pod, observed, sidecars_hold=True)


def _phase(pod: Pod, observed: Observed, sidecars_hold: bool) -> str:
    if observed.killed_reason == DEADLINE_EXCEEDED:
        return FAILED
    regular = [c for c in pod.spec.init_containers if not is_sidecar(c)]
    if pod.spec.restart_policy == "Never" and any(init_failed(observed.get(c.name))
                                                    for c in regular):
        return FAILED
    if observed.deleting and not any(o.running for o in observed.containers.values()):
        return _deleted_phase(pod, observed)
    if not initialized(pod, observed):
        return PENDING
    settled = _app_phase(pod, observed)
    if sidecars_hold and settled in (SUCCEEDED, FAILED) and any(
            observed.get(c.name).running for c in pod.spec.init_containers if is_sidecar(c)):
        return RUNNING
    return settled


def _deleted_phase(pod: Pod, observed: Observed) -> str:
    """A deleted pod whose containers all stopped: Succeeded only if every app container
    ran and exited 0 (the kubelet's terminal-pod rule)."""
    apps = [observed.get(c.name).current for c in pod.spec.containers]
    return SUCCEEDED if all(a is not None and a.succeeded for a in apps) else FAILED


def _app_phase(pod: Pod, observed: Observed) -> str:
    apps = [observed.get(c.name) for c in pod.spec.containers]
    if any(not o.attempts for o in apps):
        return PENDING
    if any(o.running or o.attempts[-1].restart_requested for o in apps):
        return RUNNING
    succeeded = all(o.current is not None and o.current.succeeded for o in apps)
    policy = pod.spec.restart_policy
    if policy == "Always":
        return RUNNING
    if succeeded:
        return SUCCEEDED
    return FAILED if policy == "Never" else RUNNING
