"""What a new supervisor makes of a pod it re-attaches to (pure: facts in, ``Observed`` out).

``observed.json`` is the last state the old supervisor saved; the monitors' records and the
processes still alive are what happened since. :func:`reconcile` brings the one up to date
with the other. :func:`restore_inits` applies the kubelet's rules for init containers whose
records are lost: a pod-level "initialized" record, else "every init container before the
last one with a status has completed". :func:`sandbox_lost` is the kubelet's answer to a
sandbox that is gone: a new one and every init container again (``SandboxChanged``), except
for a ``restartPolicy: Never`` pod, which is not restarted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from nsrun.core.observed import COMPLETED, Attempt, ContainerObs, Observed
from nsrun.core.spec import Pod, is_sidecar

UNKNOWN_REASON = "ContainerStatusUnknown"
UNKNOWN_MESSAGE = "The container could not be located when the pod was terminated"
UNKNOWN_EXIT = 137  # the kubelet's code for a container it lost
RESTORED_MESSAGE = "completed before the supervisor restarted (its record was lost)"


class Found(msgspec.Struct, frozen=True):
    """A container's latest attempt as found on the host: its monitor's record (the exit
    fields once it was reaped) and whether its process is still the one that was started."""

    attempt: int
    pid: int = 0
    started_at: float | None = None
    exit_code: int | None = None
    signal: int | None = None
    finished_at: float | None = None
    alive: bool = False


def reconcile(observed: Observed, found: Mapping[str, Sequence[Found]],
              now: float) -> Observed:
    """``observed`` with what ``found`` tells, attempt by attempt in order: an attempt the
    old supervisor started but did not save is added; a running attempt that has ended is
    finished, with its real exit code, or with the kubelet's ``ContainerStatusUnknown`` when
    nothing recorded it."""
    for name, attempts in found.items():
        obs = observed.history(name)
        for f in attempts:
            if f.attempt == len(obs.attempts) and not obs.running:
                obs = obs.started(Attempt(f.started_at or now, pid=f.pid,
                                          gen=observed.sandbox_gen))
            if f.attempt == len(obs.attempts) - 1 and obs.running:
                obs = _finish(obs, f, now)
        observed = observed.with_container(name, obs)
    return observed


def _finish(obs: ContainerObs, f: Found, now: float) -> ContainerObs:
    current = obs.current
    assert current is not None
    if f.exit_code is not None:
        return obs.finished(current.finish(f.finished_at or now, f.exit_code, f.signal))
    if f.alive:
        return obs
    return obs.finished(current.finish(now, UNKNOWN_EXIT, None, UNKNOWN_REASON,
                                       UNKNOWN_MESSAGE))


def restore_inits(pod: Pod, observed: Observed, initialized_gen: int | None,
                  now: float) -> Observed:
    """Regular init containers that must have completed, given a completed attempt where
    their records are lost: all of them when the pod-level record says this sandbox was
    initialized or an app container has an attempt in it; else those before the last init
    container with an attempt in this sandbox (the kubelet's rule)."""
    inits = list(pod.spec.init_containers)
    done = initialized_gen == observed.sandbox_gen or any(
        observed.get(c.name).attempts for c in pod.spec.containers)
    with_status = [i for i, c in enumerate(inits) if observed.get(c.name).attempts]
    upto = len(inits) if done else (with_status[-1] if with_status else 0)
    for c in inits[:upto]:
        obs = observed.get(c.name)
        if is_sidecar(c) or (obs.current is not None and obs.current.succeeded):
            continue
        if obs.running:
            continue
        attempt = Attempt(now, gen=observed.sandbox_gen).finish(now, 0, None, COMPLETED,
                                                                RESTORED_MESSAGE)
        observed = observed.with_container(c.name, observed.history(c.name).started(attempt))
    return observed


def sandbox_lost(pod: Pod, observed: Observed, terminal: bool) -> Observed:
    """The sandbox is gone (a reboot, its pause process killed): the pod starts over in a new
    one, unless it is ``terminal`` or has ``restartPolicy: Never`` (then it is not restarted:
    its lost containers make it ``Failed``)."""
    if terminal or observed.deleting or pod.spec.restart_policy == "Never":
        return observed
    return msgspec.structs.replace(observed, restarting=True)
