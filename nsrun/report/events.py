"""Pod events with the kubelet's reasons and messages, one JSON object per line.

Container events carry ``fieldPath`` ``spec.initContainers{name}`` / ``spec.containers{name}``
as the kubelet's do (kubelet reference E8).
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from nsrun.state import PodPaths

NORMAL, WARNING = "Normal", "Warning"


class EventLog:
    """Appends events to ``events.jsonl``; an unchanged repeat bumps ``count``."""

    def __init__(self, paths: PodPaths) -> None:
        self.fd = os.open(paths.events, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                          0o644)

    def emit(self, now: float, kind: str, reason: str, message: str,
             field_path: str = "") -> None:
        event: dict[str, Any] = {"type": kind, "reason": reason, "message": message,
                                 "time": now, "source": "nsrun"}
        if field_path:
            event["fieldPath"] = field_path
        os.write(self.fd, msgspec.json.encode(event) + b"\n")

    def close(self) -> None:
        """Close the log; again is fine (a failed prepare tears down twice)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read(paths: PodPaths) -> list[dict[str, Any]]:
    """Every event recorded for the pod, oldest first (corrupt lines skipped and counted:
    ``stateread.events``)."""
    from nsrun.report import stateread

    return stateread.events(paths)
