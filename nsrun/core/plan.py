"""The planner: ``next_actions(pod, observed, now)`` decides what to do next (pure).

Built from small named rules tried in order; the first that applies decides. Like the
kubelet's computePodActions, it never acts: the executor carries the actions out and the
supervisor calls the planner again on every change or wake-up.
"""

from __future__ import annotations

from nsrun.core import rules
from nsrun.core.actions import (
    Action,
    KillContainer,
    KillPod,
    RestartPod,
    SetupNetwork,
    StartContainer,
    WakeAt,
)
from nsrun.core.backoff import KUBELET, BackoffPolicy, start_retry_at
from nsrun.core.observed import ContainerObs, Observed
from nsrun.core.spec import Container, Pod, is_sidecar


def next_actions(pod: Pod, observed: Observed, now: float,
                 policy: BackoffPolicy = KUBELET) -> list[Action]:
    """What the executor should do now; ``WakeAt`` says when to ask again."""
    for rule in (_deleting, _deadline, _restarting, _terminal, _network, _liveness,
                 _initialize, _keep_running):
        actions = rule(pod, observed, now, policy)
        if actions is not None:
            return actions + _deadline_wake(pod, observed, now)
    return _deadline_wake(pod, observed, now)


def _any_running(observed: Observed) -> bool:
    return any(o.running for o in observed.containers.values())


def _deleting(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """A delete was asked: stop everything, start nothing."""
    if not observed.deleting:
        return None
    return [KillPod()] if _any_running(observed) else []


def _deadline(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """``activeDeadlineSeconds`` counts from the pod's start, initialization included."""
    limit = pod.spec.active_deadline_seconds
    if observed.killed_reason:
        return [KillPod(observed.killed_reason)] if _any_running(observed) else []
    if limit is None or now - observed.start_time < limit:
        return None
    return [KillPod(rules.DEADLINE_EXCEEDED, rules.DEADLINE_MESSAGE)]


def _deadline_wake(pod: Pod, observed: Observed, now: float) -> list[Action]:
    limit = pod.spec.active_deadline_seconds
    if limit is None or observed.killed_reason or observed.deleting:
        return []
    due = observed.start_time + limit
    return [WakeAt(due)] if due > now else []


def _restarting(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """A pod restart was asked: stop everything, then start over in a new sandbox."""
    if not observed.restarting:
        return None
    return [KillPod()] if _any_running(observed) else [RestartPod()]


def _network(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """No container starts before the pod has its network; the setup is retried with
    back-off (the kubelet's ``FailedCreatePodSandBox`` retries)."""
    if not observed.network_pending:
        return None
    due = start_retry_at(observed.network_failures, observed.network_failed_at or now, policy)
    return [SetupNetwork()] if due <= now else [WakeAt(due)]


def _liveness(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """A container whose liveness or startup probe failed (``unhealthy`` holds the
    kubelet's message) is killed, and restarted per policy."""
    kills: list[Action] = [
        KillContainer(name, observed.get(name).attempts[-1].unhealthy)
        for name in observed.containers
        if observed.get(name).running and observed.get(name).attempts[-1].unhealthy]
    return kills or None


def _terminal(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """A Succeeded/Failed pod runs nothing more; what still runs (sidecars) is stopped."""
    if not rules.terminal(pod, observed):
        return None
    return [KillPod()] if _any_running(observed) else []


def _initialize(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """Init containers one at a time, in order, each to completion (A1, A2, A6, B)."""
    if rules.initialized(pod, observed):
        return None
    for c in pod.spec.init_containers:
        obs = observed.get(c.name)
        if rules.init_complete(c, obs):
            continue
        if obs.running:
            return []
        return _start_when_due(pod, c, obs, now, policy, is_init=True)
    return None


def _keep_running(pod: Pod, observed: Observed, now: float, policy: BackoffPolicy):
    """After initialization: start the app containers in order, and restart sidecars and
    app containers per their restart rules. As the kubelet's SyncPod, a container with a
    postStart hook is started alone: the next one starts after the hook returned."""
    sidecars = [c for c in pod.spec.init_containers if is_sidecar(c)]
    both = [(c, True) for c in sidecars] + [(c, False) for c in pod.spec.containers]
    if any(observed.get(c.name).running and observed.get(c.name).attempts[-1].post_start_pending
           for c, _ in both):
        return []
    actions: list[Action] = []
    for c, is_init in both:
        obs = observed.get(c.name)
        if obs.running or (obs.attempts and not rules.wants_restart(pod, c, obs, is_init)):
            continue
        actions += _start_when_due(pod, c, obs, now, policy, is_init)
        if actions and actions[-1] == StartContainer(c.name) and _post_start(c):
            break
    return actions


def _post_start(c: Container) -> bool:
    return bool(c.lifecycle and c.lifecycle.post_start)


def _start_when_due(pod: Pod, c: Container, obs: ContainerObs, now: float,
                    policy: BackoffPolicy, is_init: bool) -> list[Action]:
    """Start now, or say when: after a failed start (missing image) or crash-loop back-off."""
    if obs.waiting_reason and obs.last_failed_start is not None:
        due = start_retry_at(obs.failed_starts, obs.last_failed_start, policy)
    elif obs.attempts:
        if not rules.wants_restart(pod, c, obs, is_init):
            return []
        due = rules.restart_time(obs, policy)
    else:
        due = now
    return [StartContainer(c.name)] if due <= now else [WakeAt(due)]
