"""Log pruning and event times, tested so that a changed bound or a lost value fails
(issue 12: these mutations once went unnoticed)."""

from __future__ import annotations

import json

import pytest

from nsrun.report import events, logs
from nsrun.report.eventview import event_object, row
from nsrun.state import PodPaths


@pytest.fixture
def paths(tmp_path) -> PodPaths:
    p = PodPaths(tmp_path / "p")
    p.dir.mkdir()
    return p


def attempts(paths: PodPaths, sizes: list[int]) -> None:
    for n, size in enumerate(sizes):
        path = paths.log("app", n)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)


@pytest.mark.parametrize("sizes, max_attempts, max_bytes, kept", [
    ([10] * 5, 3, 10**6, [2, 3, 4]),          # exactly max_attempts stay
    ([10] * 5, 5, 10**6, [0, 1, 2, 3, 4]),    # at the limit nothing goes
    ([10] * 5, 1, 10**6, [4]),
    ([10] * 5, 100, 20, [3, 4]),              # exactly max_bytes stay
    ([10] * 5, 100, 29, [3, 4]),
    ([10] * 5, 100, 30, [2, 3, 4]),
    ([5, 30, 5, 5], 100, 15, [2, 3]),         # sizes count, not only the file count
    ([100], 1, 10, [0]),                      # the newest stays, whatever its size
    ([10, 100], 5, 10, [1]),
    ([], 3, 10, []),
])
def test_prune_keeps_the_newest_within_both_limits(paths, sizes, max_attempts, max_bytes,
                                                    kept):
    attempts(paths, sizes)
    logs.prune(paths, "app", max_attempts, max_bytes)
    assert paths.attempts("app") == kept
    assert [len(paths.log("app", a).read_bytes()) for a in kept] == [sizes[a] for a in kept]


def test_events_keep_the_time_they_were_emitted(paths):
    log = events.EventLog(paths)
    try:
        log.emit(1764850000.25, events.NORMAL, "Started", "Started container app",
                 "spec.containers{app}")
        log.emit(1764850007.5, events.WARNING, "BackOff", "Back-off restarting")
    finally:
        log.close()
    lines = [json.loads(line) for line in paths.events.read_text().splitlines()]
    assert [e["time"] for e in lines] == [1764850000.25, 1764850007.5]
    assert events.read(paths) == lines
    obj = event_object("p", "default", "u", 1, lines[1])
    assert obj["firstTimestamp"] == obj["lastTimestamp"] == "2025-12-04T12:06:47Z"
    assert obj["metadata"]["name"] == f"p.{int(1764850007.5 * 1e9):x}.1"
    assert row(obj, 1764850007.5 + 125)[0] == "2m5s"
    assert row(event_object("p", "default", "u", 0, lines[0]), 1764850000.25 + 3)[0] == "3s"
