"""Table tests for what a re-attaching supervisor makes of a pod (nsrun/core/recovery.py):
records reconciled with observed.json, lost init records restored by the kubelet's rules,
and a lost sandbox."""

from __future__ import annotations

import pytest

from nsrun.core import recovery
from nsrun.core.manifest import load_pods
from nsrun.core.observed import Attempt, ContainerObs, Observed

T0 = 1_800_000_000.0
BASE = """
metadata: {{name: p, uid: u1}}
spec:
  restartPolicy: {policy}
  initContainers:
  - {{name: a, image: busybox}}
  - {{name: b, image: busybox}}
  - {{name: c, image: busybox}}
  containers:
  - {{name: app, image: busybox}}
"""


def pod(policy: str = "Always"):
    return load_pods(BASE.format(policy=policy))[0]


def done(at: float = T0, code: int = 0, gen: int = 0) -> Attempt:
    return Attempt(at, gen=gen).finish(at + 1, code)


def running(at: float = T0, gen: int = 0) -> Attempt:
    return Attempt(at, pid=42, gen=gen)


def observed(gen: int = 0, **containers: tuple[Attempt, ...]) -> Observed:
    return Observed(T0, {n: ContainerObs(a) for n, a in containers.items()}, sandbox_gen=gen)


@pytest.mark.parametrize("found, want", [
    # the running attempt ended while no supervisor ran: its real code and time
    (recovery.Found(0, exit_code=3, finished_at=T0 + 5), (3, None, T0 + 5, "Error")),
    (recovery.Found(0, exit_code=137, signal=9, finished_at=T0 + 5), (137, 9, T0 + 5, "Error")),
    # still alive: still running
    (recovery.Found(0, alive=True), (None, None, None, "")),
    # gone without a record: the kubelet's ContainerStatusUnknown
    (recovery.Found(0), (137, None, T0 + 60, "ContainerStatusUnknown")),
])
def test_reconcile_finishes_the_running_attempt(found, want):
    obs = recovery.reconcile(observed(app=(running(),)), {"app": [found]}, T0 + 60)
    cur = obs.history("app").current
    assert (cur.exit_code, cur.signal, cur.finished_at, cur.reason) == want


def test_reconcile_adds_an_attempt_the_old_supervisor_did_not_save():
    before = observed(app=(done(),))
    found = {"app": [recovery.Found(1, pid=7, started_at=T0 + 10, exit_code=0,
                                    finished_at=T0 + 11)]}
    obs = recovery.reconcile(before, found, T0 + 60).history("app")
    assert obs.restart_count == 1 and obs.current.pid == 7
    assert (obs.current.started_at, obs.current.finished_at) == (T0 + 10, T0 + 11)


def test_reconcile_finishes_the_running_attempt_then_adds_the_unsaved_ones():
    """The old supervisor reaped attempt 0 and started attempt 1, then died before it
    saved either: both are found, in order."""
    before = observed(app=(running(),))
    found = {"app": [recovery.Found(0, exit_code=2, finished_at=T0 + 1),
                     recovery.Found(1, pid=8, started_at=T0 + 2, alive=True)]}
    obs = recovery.reconcile(before, found, T0 + 60).history("app")
    assert [(a.exit_code, a.running) for a in obs.attempts] == [(2, False), (None, True)]


def test_reconcile_leaves_finished_attempts_alone():
    before = observed(app=(done(code=1),))
    after = recovery.reconcile(before, {"app": [recovery.Found(0, exit_code=0)]}, T0 + 60)
    assert after.history("app").current.exit_code == 1


@pytest.mark.parametrize("containers, initialized, want", [
    # the initialized record covers every init container
    ({}, 0, {"a", "b", "c"}),
    # an older generation's record does not
    ({}, None, set()),
    # an app attempt in this sandbox: initialization was done
    ({"app": (running(),)}, None, {"a", "b", "c"}),
    # the last init container with a status: those before it completed
    ({"c": (running(),)}, None, {"a", "b"}),
    ({"b": (done(code=1),)}, None, {"a"}),
    # a completed one keeps its own attempt
    ({"a": (done(),), "c": (running(),)}, None, {"b"}),
])
def test_restore_inits_by_the_kubelets_rules(containers, initialized, want):
    before = observed(**containers)
    after = recovery.restore_inits(pod(), before, initialized, T0 + 60)
    restored = {n for n in "abc" if after.get(n).attempts
                and after.get(n).current.message == recovery.RESTORED_MESSAGE}
    assert restored == want
    for name in restored:
        assert after.get(name).current.succeeded


def test_restore_inits_ignores_an_older_sandbox_generation():
    before = observed(gen=1, a=(done(gen=0),), c=(done(gen=0),))
    after = recovery.restore_inits(pod(), before, 0, T0 + 60)
    assert after == before


@pytest.mark.parametrize("policy, terminal, deleting, restarting", [
    ("Always", False, False, True),
    ("OnFailure", False, False, True),
    ("Never", False, False, False),  # not restarted: its lost containers fail it
    ("Always", True, False, False),
    ("Always", False, True, False),
])
def test_sandbox_lost(policy, terminal, deleting, restarting):
    before = Observed(T0, deleting=deleting)
    assert recovery.sandbox_lost(pod(policy), before, terminal).restarting is restarting
