"""Carrying out the termination plan (``nsrun.core.termination``) for one pod's executor.

The executor calls ``step`` on every pass of the supervisor loop while the planner asks for
``KillPod``: it turns the running containers into the plan's members, starts the preStop
hooks, and sends SIGTERM and SIGKILL as the plan says, with the kubelet's ``Killing`` event
for each container when its termination begins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nsrun.core import termination
from nsrun.core.spec import is_sidecar
from nsrun.report.events import NORMAL

if TYPE_CHECKING:
    from nsrun.runtime.executor import Executor, Running


def step(ex: Executor, term: termination.Termination, now: float) -> float | None:
    """Do what the plan says now; when to look again (None: on a container's exit)."""
    for proc in ex.running.values():
        _announce(ex, proc, now)
    plan = termination.steps(term, [_member(ex, p) for p in ex.running.values()], now)
    for name in plan.pre_stop:
        _pre_stop(ex, ex.running[name])
    for name in plan.sigterm:
        ex.terminate(name, now)
    for name in plan.sigkill:
        ex.sigkill(name)
    if plan.pre_stop and all(ex.running[n].hook_done for n in plan.pre_stop):
        return now  # no hook could run: plan again at once
    return plan.wake


def _announce(ex: Executor, proc: Running, now: float) -> None:
    """``Killing`` once per container (a container already being stopped said it)."""
    if proc.announced:
        return
    proc.announced = True
    ex.emit_for(proc.name, now, NORMAL, "Killing", f"Stopping container {proc.name}")


def _pre_stop(ex: Executor, proc: Running) -> None:
    container, _ = ex.containers[proc.name]
    current = ex.current_attempt(proc.name)
    proc.hook_started = True
    if current is None or not ex.health.pre_stop(proc.name, container, current.started_at):
        proc.hook_done = True


def _member(ex: Executor, proc: Running) -> termination.Member:
    container, _ = ex.containers[proc.name]
    sidecars = [c.name for c in ex.pod.spec.init_containers if is_sidecar(c)]
    return termination.Member(
        proc.name, sidecars.index(proc.name) if proc.name in sidecars else -1,
        pre_stop=ex.health.has_pre_stop(container), hook_started=proc.hook_started,
        hook_done=proc.hook_done, term_at=proc.term_at, killed=proc.killed)
