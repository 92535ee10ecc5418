"""The kubelet's pod termination, as a plan (pure): who gets the preStop hook, SIGTERM and
SIGKILL, and when (kubelet reference B6 and G2).

When the pod stops (a delete, a deadline, a pod restart, or the pod completed and its
sidecars go), every running container is handled at once, as the kubelet's killContainer
goroutines are:

- every preStop hook starts at the start of termination, sidecars' included;
- a regular container gets SIGTERM when its hook returned (at once without one);
- a sidecar gets SIGTERM when, in addition, every regular container and every sidecar
  declared after it have exited: reverse declaration order;
- waiting (for a hook or a turn) ends with the grace period: then SIGTERM goes out anyway;
- SIGKILL comes at the end of the grace period, but never less than 2 s after the
  container's SIGTERM (``minimumGracePeriodInSeconds``). So the whole pod is gone by
  grace + 2 s, and what is still there then is killed together.

A later, shorter grace period (``delete --grace-period``) moves the end earlier; grace 0 from
a delete (kubectl's force) kills everything at once (nsrun's choice: there is no API object
to keep, see the README).
"""

from __future__ import annotations

import msgspec

MIN_GRACE = 2.0  # the kubelet never gives less than 2 s between SIGTERM and SIGKILL


class Termination(msgspec.Struct, frozen=True):
    """A termination under way: since ``started_at``; ``deadline`` ends the grace period."""

    started_at: float
    deadline: float
    forced: bool = False


class Member(msgspec.Struct, frozen=True):
    """A running container as termination sees it (``sidecar``: its position among the
    sidecars in declaration order; -1 for a regular or app container)."""

    name: str
    sidecar: int = -1
    pre_stop: bool = False
    hook_started: bool = False
    hook_done: bool = False
    term_at: float | None = None
    killed: bool = False


class Steps(msgspec.Struct, frozen=True):
    """What to do now, and when to look again (None: when a container exits or a hook
    returns)."""

    pre_stop: tuple[str, ...] = ()
    sigterm: tuple[str, ...] = ()
    sigkill: tuple[str, ...] = ()
    wake: float | None = None


def begin(now: float, grace: float, forced: bool = False) -> Termination:
    """A termination starting ``now`` with ``grace`` seconds (the pod's, or a delete's)."""
    return Termination(now, now + max(grace, 0.0), forced)


def shorten(term: Termination, now: float, grace: float, forced: bool = False) -> Termination:
    """A later request with ``grace``: the earlier end wins (a longer one changes nothing)."""
    return msgspec.structs.replace(term, deadline=min(term.deadline, now + max(grace, 0.0)),
                                   forced=term.forced or forced)


def kill_at(term: Termination, term_at: float) -> float:
    """When a container that got SIGTERM at ``term_at`` is killed."""
    return max(term.deadline, term_at + MIN_GRACE)


def steps(term: Termination, members: list[Member], now: float) -> Steps:
    """The next steps for the running ``members``."""
    if term.forced:
        return Steps(sigkill=tuple(m.name for m in members if not m.killed))
    pre_stop, sigterm, sigkill, wakes = [], [], [], []
    for m in members:
        if m.term_at is None:
            hook_now = m.pre_stop and not m.hook_started and now < term.deadline
            pre_stop += [m.name] if hook_now else []
            if not _sigterm_due(term, m, members, now, hook_now):
                wakes.append(term.deadline)
                continue
            sigterm.append(m.name)
            m = msgspec.structs.replace(m, term_at=now)
        assert m.term_at is not None
        due = kill_at(term, m.term_at)
        if m.killed:
            continue
        if now >= due:
            sigkill.append(m.name)
        else:
            wakes.append(due)
    return Steps(tuple(pre_stop), tuple(sigterm), tuple(sigkill), min(wakes, default=None))


def _sigterm_due(term: Termination, m: Member, members: list[Member], now: float,
                 hook_now: bool) -> bool:
    """SIGTERM once the hook returned and it is the container's turn, or the grace ended."""
    if now >= term.deadline:
        return True
    hook_pending = hook_now or (m.pre_stop and m.hook_started and not m.hook_done)
    return not hook_pending and my_turn(m, members)


def my_turn(m: Member, members: list[Member]) -> bool:
    """A regular container's turn is at once; a sidecar's once the regular containers and
    the sidecars declared after it have exited."""
    if m.sidecar < 0:
        return True
    return not any(o.sidecar < 0 or o.sidecar > m.sidecar for o in members)
