"""The termination plan (``nsrun.core.termination``) as tables: who gets preStop, SIGTERM
and SIGKILL when, with sidecars, grace periods, the 2 s minimum and shorter overrides."""

from __future__ import annotations

import pytest

from nsrun.core.termination import (
    MIN_GRACE,
    Member,
    Steps,
    begin,
    kill_at,
    my_turn,
    shorten,
    steps,
)

T0 = 1000.0
APP, HOOKED = Member("app"), Member("web", pre_stop=True)
SIDE0, SIDE1 = Member("log", sidecar=0), Member("proxy", sidecar=1)


@pytest.mark.parametrize("members,now,want", [
    # at the start: every hook starts together (sidecars' too), hookless regular get SIGTERM
    ([APP, HOOKED, Member("log", sidecar=0, pre_stop=True)], T0,
     Steps(pre_stop=("web", "log"), sigterm=("app",), wake=T0 + 5)),
    # sidecars wait for the regular containers, the last sidecar goes first
    ([APP, SIDE0, SIDE1], T0, Steps(sigterm=("app",), wake=T0 + 5)),
    ([SIDE0, SIDE1], T0 + 1, Steps(sigterm=("proxy",), wake=T0 + 5)),
    ([SIDE0], T0 + 1.5, Steps(sigterm=("log",), wake=T0 + 5)),
    # a hook that returned lets SIGTERM go; one still running holds it until the grace ends
    ([Member("web", pre_stop=True, hook_started=True, hook_done=True)], T0 + 1,
     Steps(sigterm=("web",), wake=T0 + 5)),
    ([Member("web", pre_stop=True, hook_started=True)], T0 + 4.9, Steps(wake=T0 + 5)),
    # the grace period ends: whoever still waits gets SIGTERM, killed 2 s later
    ([Member("web", pre_stop=True, hook_started=True), APP, SIDE1], T0 + 5,
     Steps(sigterm=("web", "app", "proxy"), wake=T0 + 7)),
    # SIGKILL at the grace period's end for a SIGTERM sent early enough
    ([Member("app", term_at=T0)], T0 + 4, Steps(wake=T0 + 5)),
    ([Member("app", term_at=T0)], T0 + 5, Steps(sigkill=("app",))),
    # ... and never sooner than 2 s after the SIGTERM
    ([Member("proxy", sidecar=1, term_at=T0 + 4.5)], T0 + 5.5, Steps(wake=T0 + 6.5)),
    ([Member("proxy", sidecar=1, term_at=T0 + 4.5)], T0 + 6.5, Steps(sigkill=("proxy",))),
    # a killed container is not killed again: wait for it to be reaped
    ([Member("app", term_at=T0, killed=True)], T0 + 6, Steps()),
])
def test_steps_with_a_5s_grace(members, now, want):
    assert steps(begin(T0, 5), members, now) == want


def test_after_the_deadline_no_hook_starts_and_sigterm_goes_at_once():
    late = steps(begin(T0, 1), [HOOKED], T0 + 1)
    assert late == Steps(sigterm=("web",), wake=T0 + 1 + MIN_GRACE)


def test_a_zero_grace_from_the_spec_still_gives_2s_after_sigterm():
    term = begin(T0, 0)
    assert steps(term, [APP], T0) == Steps(sigterm=("app",), wake=T0 + 2)
    assert steps(term, [Member("app", term_at=T0)], T0 + 2) == Steps(sigkill=("app",))


def test_forced_kills_everything_at_once_without_hooks():
    term = begin(T0, 0, forced=True)
    assert steps(term, [HOOKED, SIDE0, Member("x", killed=True)], T0) == Steps(
        sigkill=("web", "log"))


@pytest.mark.parametrize("grace,forced,deadline", [
    (1, False, T0 + 11),    # shorter: the new end wins
    (60, False, T0 + 30),   # longer: nothing changes
    (0, True, T0 + 10),     # force: now
])
def test_a_later_grace_only_shortens(grace, forced, deadline):
    term = shorten(begin(T0, 30), T0 + 10, grace, forced)
    assert (term.deadline, term.forced) == (deadline, forced)


def test_shortened_grace_kills_2s_after_a_sigterm_sent_at_the_start():
    term = shorten(begin(T0, 30), T0 + 10, 1)
    assert kill_at(term, T0) == T0 + 11
    assert kill_at(term, T0 + 10.5) == T0 + 12.5


@pytest.mark.parametrize("member,others,turn", [
    (APP, [SIDE0], True),
    (SIDE0, [APP], False),
    (SIDE0, [SIDE1], False),
    (SIDE1, [SIDE0], True),
    (SIDE0, [], True),
])
def test_turns_follow_reverse_declaration_order(member, others, turn):
    assert my_turn(member, [member, *others]) is turn


@pytest.mark.parametrize("grace,stored", [(-1, 1), (-30, 1), (0, 0), (45, 45)])
def test_a_negative_grace_period_is_accepted_and_stored_as_1(grace, stored):
    from nsrun.core.manifest import load_pods
    from nsrun.core.validate import validate

    pod = load_pods(f"""metadata: {{name: g}}
spec:
  terminationGracePeriodSeconds: {grace}
  containers: [{{name: app, image: busybox}}]
""")[0]
    assert pod.spec.termination_grace_period_seconds == stored
    assert validate(pod) == []
