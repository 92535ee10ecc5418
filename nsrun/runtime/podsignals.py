"""The supervisor's signals: SIGTERM, SIGINT, SIGUSR1 and SIGHUP written to a wake-up pipe.

Installed when the supervisor is made and kept until its owner has finished the teardown, so
that ``nsrun delete``'s SIGTERM arriving at any moment (while the pod is prepared, while it
runs, or while it is torn down after it completed on its own) asks for a graceful stop and
never kills the supervisor halfway through its cleanup.
"""

from __future__ import annotations

import os
import signal

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP)


class SignalPipe:
    """The handled signals arrive as bytes on ``read_fd`` (see ``drain``)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old_fd = signal.set_wakeup_fd(self.write_fd, warn_on_full_buffer=False)
        self._old = {s: signal.signal(s, _ignore) for s in HANDLED}
        self.closed = False

    def drain(self) -> bytes:
        """The signal numbers received since the last call, oldest first."""
        try:
            return os.read(self.read_fd, 64)
        except BlockingIOError:
            return b""

    def close(self) -> None:
        """Restore the former handlers; from now on a signal acts as it did before."""
        if self.closed:
            return
        self.closed = True
        signal.set_wakeup_fd(self._old_fd)
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        os.close(self.read_fd)
        os.close(self.write_fd)


def _ignore(*_) -> None:
    """The handler: the wake-up fd carries the signal to the supervisor loop."""
