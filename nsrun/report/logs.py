"""Per-container, per-attempt log files: ``logs/<container>/<attempt>.log``.

Unlike the kubelet, which keeps only the last attempt, every attempt stays readable for the
pod's life (``nsrun logs POD -c C --attempt N``). Within an attempt the container's monitor
rotates the file as the kubelet does (``--log-max-size``, ``--log-max-files``: its
``containerLogMaxSize`` and ``containerLogMaxFiles``): ``<attempt>.log`` is the live file,
``<attempt>.log.<k>`` the rotated ones, and ``logs`` shows the live one.
"""

from __future__ import annotations

import os

from nsrun.errors import StateError
from nsrun.state import PodPaths

# Retention per container (``--log-max-attempts``, ``--log-max-bytes``): the newest
# attempts are kept, the running one always.
MAX_ATTEMPTS = 20
MAX_BYTES = 10 * 1024 * 1024
MAX_SIZE, MAX_FILES = 10 * 1024 * 1024, 5  # rotation within an attempt (the kubelet's)
TERMINATION_MESSAGE_MAX = 4096  # the kubelet reads at most 4096 bytes
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048  # FallbackToLogsOnError: the log's tail


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


def prune(paths: PodPaths, container: str, max_attempts: int = MAX_ATTEMPTS,
          max_bytes: int = MAX_BYTES) -> None:
    """Drop the oldest attempt logs beyond ``max_attempts`` files or ``max_bytes`` in all
    (the newest attempt is always kept)."""
    attempts = paths.attempts(container)
    sizes = {a: _size(paths.log(container, a)) for a in attempts}
    total = sum(sizes.values())
    for a in attempts[:-1]:
        if len(attempts) <= max_attempts and total <= max_bytes:
            return
        _unlink_attempt(paths, container, a)
        attempts = attempts[1:]
        total -= sizes[a]


def _unlink_attempt(paths: PodPaths, container: str, attempt: int) -> None:
    """An attempt's log and its rotated files."""
    live = paths.log(container, attempt)
    for path in [live, *live.parent.glob(f"{live.name}.*")]:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _size(path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def termination_file(paths: PodPaths, container: str, attempt: int) -> str:
    """A fresh, world-writable file the container sees at its ``terminationMessagePath``."""
    path = paths.termination_file(container, attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    os.fchmod(fd, 0o666)
    os.close(fd)
    return str(path)


def termination_message(paths: PodPaths, container: str, attempt: int, policy: str,
                        exit_code: int) -> str:
    """The terminated state's message: the file's first 4096 bytes; with
    ``FallbackToLogsOnError`` and a failure with no message, the log's last 80 lines
    (at most 2048 bytes)."""
    message = _head(paths.termination_file(container, attempt))
    if message or policy != "FallbackToLogsOnError" or exit_code == 0:
        return message
    try:
        with open(paths.log(container, attempt), "rb") as f:
            f.seek(max(0, _size(paths.log(container, attempt)) - 64 * 1024))
            tail = b"\n".join(f.read().splitlines()[-FALLBACK_LINES:])
    except FileNotFoundError:
        return ""
    return tail[-FALLBACK_BYTES:].decode(errors="replace")


def _head(path) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(TERMINATION_MESSAGE_MAX).decode(errors="replace")
    except FileNotFoundError:
        return ""
