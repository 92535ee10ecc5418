"""What a re-attaching supervisor does with a container attempt it finds unfinished (pure:
the facts about the attempt's monitor, its process and its record in, a verdict out).

The act (``runtime.reattach``) gathers the facts in this order, and the table relies on it:
first whether the monitor and the container are still the processes the record names (pidfd
plus start time), then the record is read again. The monitor writes the exit record before
it exits, so a record read after its monitor was found gone is final: without an exit in it,
nobody will ever write one. A monitor still alive is never given up for lost.

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
launching   -         -          any     UNKNOWN: no process can be identified
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
    SUPERVISE_ENDED = "supervise-ended"
    SUPERVISE_UNMONITORED = "supervise-unmonitored"
    UNKNOWN = "unknown"


class Facts(msgspec.Struct, frozen=True):
    """One look at an attempt: its record's state (``EXITED``: with an exit code;
    ``STARTED``: the monitor's start record; ``LAUNCHING``: the supervisor's "launching"
    placeholder; ``MISSING``: absent or unreadable), and whether the monitor and the
    container it names are still those processes (checked before the record was read)."""

    record: str
    monitor_alive: bool = False
    container_alive: bool = False


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
    if facts.record != STARTED:
        return Verdict.UNKNOWN
    if facts.monitor_alive:
        if facts.container_alive:
            return Verdict.SUPERVISE
        return Verdict.SUPERVISE_ENDED if waited else Verdict.WAIT
    if facts.container_alive:
        return Verdict.SUPERVISE_UNMONITORED
    return Verdict.UNKNOWN
