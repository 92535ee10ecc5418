"""Passing signals on: while a foreground command (``nsrun exec``, ``nsrun-oci run`` and
``exec``) waits for a process, the signals it gets go to that process (by pidfd)."""

from __future__ import annotations

import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# What a terminal or a supervisor sends to a foreground command.
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2)


class Forward:
    """While inside: ``signals`` we get go to ``pidfd``; ``extra`` installs other handlers
    (e.g. SIGWINCH for a terminal) for the same time."""

    def __init__(self, pidfd: int, signals: Iterable[int] = FORWARDED,
                 extra: dict[int, Callable] | None = None) -> None:
        self.pidfd, self.signals, self.extra = pidfd, tuple(signals), extra or {}
        self.old: dict[int, object] = {}

    def _send(self, sig: int, _frame: object) -> None:
        try:
            signal.pidfd_send_signal(self.pidfd, sig)
        except ProcessLookupError:
            pass

    def __enter__(self) -> Forward:
        for sig in self.signals:
            self.old[sig] = signal.signal(sig, self._send)
        for sig, handler in self.extra.items():
            self.old[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, *_: object) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
