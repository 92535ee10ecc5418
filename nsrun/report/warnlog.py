"""Where a detached supervisor's stderr goes: ``supervisor.log``, and also

* the pod's events: each ``nsrun: warning: …`` line becomes a ``Warning`` event (reason
  ``NsrunWarning``), so ``describe`` and ``events`` show it;
* the journal, when nsrun was started with its stderr connected to it (systemd sets
  ``JOURNAL_STREAM`` to that stream's ``device:inode``).
"""

from __future__ import annotations

import os
import time

from nsrun.state import PodPaths

PREFIX = "nsrun: warning: "
REASON = "NsrunWarning"


def journal_fd(fd: int = 2, env: dict[str, str] | None = None) -> int | None:
    """A duplicate of ``fd`` when it is the journal stream systemd gave this process."""
    stream = (env if env is not None else os.environ).get("JOURNAL_STREAM", "")
    dev, _, ino = stream.partition(":")
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    if dev.isdigit() and ino.isdigit() and (st.st_dev, st.st_ino) == (int(dev), int(ino)):
        return os.dup(fd)
    return None


class WarningTee:
    """A text stream writing to the log fd, the journal fd (if any), and warnings to the
    pod's events."""

    def __init__(self, log_fd: int, paths: PodPaths, journal: int | None) -> None:
        self.fds = [log_fd] + ([journal] if journal is not None else [])
        self.paths = paths
        self.pending = ""

    def write(self, text: str) -> int:
        data = text.encode(errors="replace")
        for fd in self.fds:
            try:
                os.write(fd, data)
            except OSError:
                pass  # a full disk or a closed journal never stops the supervisor
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if line.startswith(PREFIX):
                self._event(line[len(PREFIX):])
        return len(text)

    def _event(self, message: str) -> None:
        from nsrun.report.events import WARNING, EventLog

        try:
            log = EventLog(self.paths)
        except OSError:
            return
        try:
            log.emit(time.time(), WARNING, REASON, message)
        finally:
            log.close()

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        return self.fds[0]

    def isatty(self) -> bool:
        return False
