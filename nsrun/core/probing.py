"""Probe bookkeeping as the kubelet's prober does it (pure: results in, decisions out).

A container's startup probe runs first; liveness and readiness wait until it succeeded.
``initialDelaySeconds`` counts from the container's start, then a probe runs every
``periodSeconds``. ``successThreshold`` consecutive successes make a readiness probe pass
(always 1 for startup and liveness); ``failureThreshold`` consecutive failures make any probe
fail: a failed startup or liveness probe kills the container (restarted per policy), a failed
readiness probe marks it not ready.
"""

from __future__ import annotations

import msgspec

from nsrun.core.spec import Container, Probe

STARTUP, LIVENESS, READINESS = "Startup", "Liveness", "Readiness"


class ProbeState(msgspec.Struct, frozen=True):
    """One probe of one container attempt."""

    container: str
    kind: str
    probe: Probe
    next_at: float
    successes: int = 0
    failures: int = 0
    passed: bool = False
    in_flight: bool = False
    init: bool = False  # of a sidecar (an init container): the kubelet says so on a kill

    @property
    def period(self) -> float:
        return float(self.probe.period_seconds or 10)

    @property
    def timeout(self) -> float:
        return float(self.probe.timeout_seconds or 1)


class Verdict(msgspec.Struct, frozen=True):
    """What one probe result changes: ``started``/``ready`` flags (None: unchanged), and a
    kill message when a startup or liveness probe has failed for good."""

    started: bool | None = None
    ready: bool | None = None
    kill: str = ""


def probes_for(container: Container, started_at: float,
               init: bool = False) -> list[ProbeState]:
    """The probes of a container that just started, in the order the kubelet gates them
    (``init``: a sidecar)."""
    states = []
    for kind, probe in ((STARTUP, container.startup_probe), (LIVENESS, container.liveness_probe),
                        (READINESS, container.readiness_probe)):
        if probe is not None:
            delay = float(probe.initial_delay_seconds or 0)
            states.append(ProbeState(container.name, kind, probe, started_at + delay,
                                     init=init))
    return states


def gated(state: ProbeState, started: bool) -> bool:
    """Liveness and readiness wait for the startup probe (and postStart) to finish."""
    return state.kind != STARTUP and not started


def due(states: list[ProbeState], started: bool, now: float,
        stopping: bool = False) -> list[ProbeState]:
    """Probes to run now (a container being stopped keeps only its readiness probe)."""
    return [s for s in _active(states, started, stopping) if s.next_at <= now]


def next_wake(states: list[ProbeState], started: bool, stopping: bool = False) -> float | None:
    return min((s.next_at for s in _active(states, started, stopping)), default=None)


def _active(states: list[ProbeState], started: bool, stopping: bool) -> list[ProbeState]:
    return [s for s in states if not s.in_flight and not (s.kind == STARTUP and s.passed)
            and not gated(s, started) and not (stopping and s.kind != READINESS)]


def record(state: ProbeState, ok: bool, now: float) -> tuple[ProbeState, Verdict]:
    """The probe's new state after one result, and what it decides."""
    successes = state.successes + 1 if ok else 0
    failures = 0 if ok else state.failures + 1
    new = msgspec.structs.replace(state, successes=successes, failures=failures, in_flight=False,
                  next_at=now + state.period)
    needed = int(state.probe.success_threshold or 1) if state.kind == READINESS else 1
    if ok and successes >= needed:
        new = msgspec.structs.replace(new, passed=True)
        return new, _passed(state.kind)
    if not ok and failures >= int(state.probe.failure_threshold or 3):
        return msgspec.structs.replace(new, passed=False), _failed(state)
    return new, Verdict()


def _passed(kind: str) -> Verdict:
    if kind == STARTUP:
        return Verdict(started=True)
    if kind == READINESS:
        return Verdict(ready=True)
    return Verdict()


def _failed(state: ProbeState) -> Verdict:
    if state.kind == READINESS:
        return Verdict(ready=False)
    who = "Init container" if state.init else "Container"
    return Verdict(kill=f"{who} {state.container} failed {state.kind.lower()} probe, "
                        "will be restarted")
