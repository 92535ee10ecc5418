"""Table test of what a re-attaching supervisor does with an unfinished attempt
(nsrun/core/reattachment.py): every combination of record state, monitor, container and
"already waited", so a live monitor is never given up for lost."""

from __future__ import annotations

import itertools

import pytest

from nsrun.core.reattachment import (
    EXITED,
    LAUNCHING,
    MISSING,
    STARTED,
    Facts,
    Verdict,
    decide,
    record_state,
)

V = Verdict
ANY = (False, True)

# record, monitor alive, container alive, waited -> verdict (None: any)
TABLE = [
    (EXITED, None, None, None, V.EXITED),
    (STARTED, True, True, None, V.SUPERVISE),
    (STARTED, True, False, False, V.WAIT),
    (STARTED, True, False, True, V.SUPERVISE_ENDED),
    (STARTED, False, True, None, V.SUPERVISE_UNMONITORED),
    (STARTED, False, False, None, V.UNKNOWN),
    (LAUNCHING, None, None, None, V.UNKNOWN),
    (MISSING, None, None, None, V.UNKNOWN),
]


def _expand(row):
    record, monitor, container, waited, verdict = row
    for m, c, w in itertools.product(*[ANY if v is None else (v,)
                                       for v in (monitor, container, waited)]):
        yield record, m, c, w, verdict


CASES = [case for row in TABLE for case in _expand(row)]


@pytest.mark.parametrize("record,monitor,container,waited,verdict", CASES)
def test_the_table(record, monitor, container, waited, verdict):
    assert decide(Facts(record, monitor, container), waited) is verdict


def test_the_table_covers_every_combination():
    seen = {case[:4] for case in CASES}
    assert len(seen) == len(CASES) == 4 * 2 * 2 * 2


@pytest.mark.parametrize("record", [EXITED, STARTED])
@pytest.mark.parametrize("container", ANY)
@pytest.mark.parametrize("waited", ANY)
def test_a_live_monitor_is_never_given_up(record, container, waited):
    verdict = decide(Facts(record, monitor_alive=True, container_alive=container), waited)
    assert verdict is not V.UNKNOWN


@pytest.mark.parametrize("pid,exit_code,state", [
    (None, None, MISSING),  # absent, torn or unreadable
    (0, None, LAUNCHING),  # the supervisor's placeholder
    (42, None, STARTED),
    (42, 0, EXITED),
    (42, 137, EXITED),
])
def test_record_state(pid, exit_code, state):
    assert record_state(pid, exit_code) == state
