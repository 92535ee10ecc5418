"""Table tests for probe bookkeeping (thresholds, gating, verdicts)."""

from __future__ import annotations

from nsrun.core.manifest import load_pods
from nsrun.core.probing import LIVENESS, READINESS, STARTUP, due, probes_for, record

POD = """
metadata: {name: p}
spec:
  containers:
  - name: app
    image: busybox
    startupProbe: {exec: {command: [x]}, periodSeconds: 1, failureThreshold: 2}
    livenessProbe: {exec: {command: [x]}, initialDelaySeconds: 5, periodSeconds: 2}
    readinessProbe: {exec: {command: [x]}, successThreshold: 2, failureThreshold: 1}
"""


def states():
    c = load_pods(POD)[0].spec.containers[0]
    return {s.kind: s for s in probes_for(c, 100.0)}


def test_initial_delay_and_startup_gating():
    s = list(states().values())
    assert [x.kind for x in due(s, started=False, now=100)] == [STARTUP]
    assert [x.kind for x in due(s, started=True, now=100)] == [STARTUP, READINESS]
    assert [x.kind for x in due(s, started=True, now=105)] == [STARTUP, LIVENESS, READINESS]


def test_startup_failure_threshold_kills():
    st = states()[STARTUP]
    st, v = record(st, False, 101)
    assert (v.kill, st.failures, st.next_at) == ("", 1, 102)
    st, v = record(st, False, 102)
    assert v.kill == "Container app failed startup probe, will be restarted"


def test_startup_success_starts_the_container():
    st, v = record(states()[STARTUP], True, 101)
    assert (v.started, st.passed) == (True, True)


def test_liveness_needs_three_failures_by_default():
    st = states()[LIVENESS]
    for _ in range(2):
        st, v = record(st, False, 110)
        assert v.kill == ""
    st, v = record(st, False, 112)
    assert v.kill == "Container app failed liveness probe, will be restarted"
    st, v = record(st, True, 114)
    assert v.kill == "" and st.failures == 0


def test_readiness_success_threshold_and_failure():
    st = states()[READINESS]
    st, v = record(st, True, 101)
    assert v.ready is None
    st, v = record(st, True, 111)
    assert v.ready is True
    st, v = record(st, False, 121)
    assert v.ready is False
