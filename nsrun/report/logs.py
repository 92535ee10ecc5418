"""Per-container, per-attempt log files: ``logs/<container>/<attempt>.log``.

Unlike the kubelet, which keeps only the last attempt, every attempt stays readable for the
pod's life (``nsrun logs POD -c C --attempt N``).
"""

from __future__ import annotations

import os

from nsrun.errors import StateError
from nsrun.state import PodPaths


def open_for_attempt(paths: PodPaths, container: str, attempt: int) -> int:
    """An O_APPEND fd for the container's stdout and stderr in this attempt."""
    path = paths.log(container, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)


def choose_attempt(paths: PodPaths, container: str, previous: bool = False,
                   attempt: int | None = None) -> int:
    """The attempt to show: the latest, the one before it, or the one asked for."""
    attempts = paths.attempts(container)
    if attempt is not None:
        if attempt not in attempts:
            raise StateError(f'container "{container}": no log for attempt {attempt} '
                             f"(attempts: {', '.join(map(str, attempts)) or 'none'})")
        return attempt
    if previous:
        if len(attempts) < 2:
            raise StateError(f'previous terminated container "{container}" not found')
        return attempts[-2]
    if not attempts:
        raise StateError(f'container "{container}" has not started yet')
    return attempts[-1]
