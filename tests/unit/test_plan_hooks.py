"""The kubelet's ordering around hooks and probes (pure): app containers start one at a
time, each after the previous one's postStart returned; a stopping container keeps only its
readiness probe; a sidecar's probe failure says ``Init container``."""

from __future__ import annotations

import pytest

from nsrun.core import probing
from nsrun.core.actions import StartContainer
from nsrun.core.backoff import BackoffPolicy
from nsrun.core.manifest import load_pods
from nsrun.core.observed import Attempt, ContainerObs, Observed
from nsrun.core.plan import next_actions

T0 = 1_800_000_000.0
POLICY = BackoffPolicy(initial=10, maximum=300)
HOOK = "lifecycle: {postStart: {exec: {command: ['true']}}}"

POD = f"""
metadata: {{name: p, uid: u1}}
spec:
  containers:
  - {{name: a, image: busybox, {HOOK}}}
  - {{name: b, image: busybox}}
  - {{name: c, image: busybox, {HOOK}}}
  - {{name: d, image: busybox}}
"""


def obs(**attempts: Attempt) -> Observed:
    return Observed(T0, {k: ContainerObs((a,)) for k, a in attempts.items()})


@pytest.mark.parametrize("observed,want", [
    (obs(), ["a"]),  # a has a postStart hook: it starts alone
    (obs(a=Attempt(T0, started=False, post_start_pending=True)), []),  # its hook runs
    (obs(a=Attempt(T0)), ["b", "c"]),  # returned: b, then c (hooked) alone
    (obs(a=Attempt(T0), b=Attempt(T0), c=Attempt(T0, post_start_pending=True)), []),
    (obs(a=Attempt(T0), b=Attempt(T0), c=Attempt(T0)), ["d"]),
])
def test_app_containers_start_one_at_a_time_after_each_post_start(observed, want):
    pod = load_pods(POD)[0]
    actions = next_actions(pod, observed, T0 + 1, POLICY)
    assert actions == [StartContainer(n) for n in want]


PROBED = load_pods("""
metadata: {name: p}
spec:
  containers:
  - name: a
    image: busybox
    startupProbe: {exec: {command: ['true']}}
    livenessProbe: {exec: {command: ['true']}}
    readinessProbe: {exec: {command: ['true']}}
""")[0].spec.containers[0]


@pytest.mark.parametrize("started,stopping,kinds", [
    (False, False, ["Startup"]),
    (True, False, ["Startup", "Liveness", "Readiness"]),
    (True, True, ["Readiness"]),  # termination began: liveness and startup end
    (False, True, []),
])
def test_only_readiness_probes_run_while_a_container_stops(started, stopping, kinds):
    states = probing.probes_for(PROBED, T0)
    assert [s.kind for s in probing.due(states, started, T0, stopping)] == kinds
    wake = probing.next_wake(states, started, stopping)
    assert wake == (T0 if kinds else None)


@pytest.mark.parametrize("init,message", [
    (True, "Init container a failed startup probe, will be restarted"),
    (False, "Container a failed startup probe, will be restarted"),
])
def test_a_sidecars_probe_failure_names_an_init_container(init, message):
    state = probing.probes_for(PROBED, T0, init)[0]
    for _ in range(3):
        state, verdict = probing.record(state, False, T0)
    assert verdict.kill == message


def test_a_changed_definition_resets_the_crash_loop_back_off():
    from nsrun.core.backoff import restart_at

    crashes = tuple(Attempt(T0 + i, T0 + i + 0.5, 1, reason="Error") for i in range(6))
    assert restart_at(crashes, POLICY) == T0 + 5.5 + 160  # deep in the back-off
    import msgspec

    updated = crashes[:-1] + (msgspec.structs.replace(crashes[-1], restart_requested=True),)
    assert restart_at(updated, POLICY) == T0 + 5.5  # the new image starts at once
    after = updated + (Attempt(T0 + 6, T0 + 6.5, 1, reason="Error"),
                       Attempt(T0 + 7, T0 + 7.5, 1, reason="Error"))
    assert restart_at(after, POLICY) == T0 + 7.5 + 10  # and counts its own crashes
