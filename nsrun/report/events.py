"""Pod events with the kubelet's reasons and messages, one JSON object per line.

Container events carry ``fieldPath`` ``spec.initContainers{name}`` / ``spec.containers{name}``
as the kubelet's do.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from nsrun.state import PodPaths

NORMAL, WARNING = "Normal", "Warning"


class EventLog:
    """Appends events to ``events.jsonl``. An event that cannot be written (a full disk) is
    dropped and counted in ``dropped``; the next one that can be written is preceded by a
    Warning that says how many were lost."""

    def __init__(self, paths: PodPaths) -> None:
        self.fd = os.open(paths.events, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                          0o644)
        self.dropped = 0

    def emit(self, now: float, kind: str, reason: str, message: str,
             field_path: str = "") -> None:
        event: dict[str, Any] = {"type": kind, "reason": reason, "message": message,
                                 "time": now, "source": "nsrun"}
        if field_path:
            event["fieldPath"] = field_path
        line = msgspec.json.encode(event) + b"\n"
        if self.dropped:
            line = msgspec.json.encode({
                "type": WARNING, "reason": "EventsDropped", "source": "nsrun", "time": now,
                "message": f"{self.dropped} event(s) lost: the state disk was full"}) + b"\n" + line
        if _append_whole(self.fd, line):
            self.dropped = 0
        else:
            self.dropped += 1

    def close(self) -> None:
        """Close the log; again is fine (a failed prepare tears down twice)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _append_whole(fd: int, line: bytes) -> bool:
    """Append ``line`` whole or not at all (a short write on a full disk is cut off again,
    so no torn line is left)."""
    try:
        size = os.fstat(fd).st_size
        written = os.write(fd, line)
    except OSError:
        return False
    if written < len(line):
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        return False
    return True


def read(paths: PodPaths) -> list[dict[str, Any]]:
    """Every event recorded for the pod, oldest first (corrupt lines skipped and counted:
    ``stateread.events``)."""
    from nsrun.report import stateread

    return stateread.events(paths)
