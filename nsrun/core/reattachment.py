"""What a re-attaching supervisor does with a container attempt it finds unfinished (pure:
the facts about the attempt's monitor, its process and its record in, a verdict out).

The act (``runtime.reattach``) gathers the facts in this order, and the table relies on it:
first whether the monitor and the container are still the processes the record names (pidfd
plus start time), then the record is read again. The monitor writes the exit record before
it exits, so a record read after its monitor was found gone is final: without an exit in it,
nobody will ever write one. A monitor still alive is never given up for lost.

A "launching" record (the supervisor writes it before it forks the monitor) names no
process. Its monitor is looked for among the processes holding the container's record
directory open that no record of the container names ("unaccounted"; ``host.holders``):
while one lives, its start record is still to come (or it exits, its start failed), however
long it takes; the record is read after that look, so a "launching" one read when no
unaccounted monitor lives is final. (The forked monitor also holds the supervisor's pod
lock until its start record is written, so ``recover`` does not even begin meanwhile; this
look does not rely on it.)

==========  ========  =========  ======  ==============================================
record      monitor   container  waited  verdict
==========  ========  =========  ======  ==============================================
exited      any       any        any     EXITED: its real exit code
started     alive     alive      any     SUPERVISE: watch the monitor
started     alive     gone       no      WAIT for the monitor's exit, then look again
started     alive     gone       yes     SUPERVISE_ENDED: watch the monitor, no process
                                         to signal (its record is still to come)
started     gone      alive      any     SUPERVISE_UNMONITORED: watch the container
                                         itself; its exit will be unknown
started     gone      gone       any     UNKNOWN: ``ContainerStatusUnknown`` (137)
launching   unacc.    -          any     WAIT_LAUNCH for its start record or its exit,
                                         then look again
launching   none      -          any     UNKNOWN: it never started (the record goes)
missing     -         -          any     UNKNOWN (absent, torn or unreadable)
==========  ========  =========  ======  ==============================================
"""

from __future__ import annotations

import enum

import msgspec

EXITED, STARTED, LAUNCHING, MISSING = "exited", "started", "launching", "missing"


class Verdict(enum.Enum):
    EXITED = "exited"
    SUPERVISE = "supervise"
    WAIT = "wait"
    WAIT_LAUNCH = "wait-launch"
    SUPERVISE_ENDED = "supervise-ended"
    SUPERVISE_UNMONITORED = "supervise-unmonitored"
    UNKNOWN = "unknown"


class Facts(msgspec.Struct, frozen=True):
    """One look at an attempt: its record's state (``EXITED``: with an exit code;
    ``STARTED``: the monitor's start record; ``LAUNCHING``: the supervisor's "launching"
    placeholder; ``MISSING``: absent or unreadable), and whether the monitor and the
    container it names are still those processes (checked before the record was read);
    ``unaccounted``: a monitor of the container that no record names is alive (looked
    for before the record was read)."""

    record: str
    monitor_alive: bool = False
    container_alive: bool = False
    unaccounted: bool = False


def record_state(pid: int | None, exit_code: int | None) -> str:
    """The state of a record with these fields (``pid`` None: no record could be read)."""
    if pid is None:
        return MISSING
    if exit_code is not None:
        return EXITED
    return STARTED if pid else LAUNCHING


def decide(facts: Facts, waited: bool) -> Verdict:
    """The verdict of the module's table; ``waited``: the monitor was already waited for."""
    if facts.record == EXITED:
        return Verdict.EXITED
    if facts.record == LAUNCHING:
        return Verdict.WAIT_LAUNCH if facts.unaccounted else Verdict.UNKNOWN
    if facts.record != STARTED:
        return Verdict.UNKNOWN
    if facts.monitor_alive:
        if facts.container_alive:
            return Verdict.SUPERVISE
        return Verdict.SUPERVISE_ENDED if waited else Verdict.WAIT
    if facts.container_alive:
        return Verdict.SUPERVISE_UNMONITORED
    return Verdict.UNKNOWN
