"""runc's log: ``--log FILE`` (appended) in ``--log-format text|json``, else stderr.

Lines as logrus writes them, which is what shims parse: ``json`` is one object per line with
``level``, ``msg`` and ``time`` (containerd's shim and conmon show the last ``error`` msg to the
user); ``text`` is ``time="…" level=error msg="…"``. An error also goes to stderr as a plain
line when there is a log file (runc's ``fatal``). Warnings and debug lines go only to the log
file (``--debug`` for debug lines): without one, stderr may be a container's log pipe.
"""

from __future__ import annotations

import os
import time

from nsrun import jsonlite


def rfc3339_now() -> str:
    """The current time as Go's RFC 3339 with nanoseconds, in UTC (runc's ``created``)."""
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


class Log:
    def __init__(self, path: str | None = None, fmt: str = "text", debug: bool = False) -> None:
        self.path, self.fmt, self.debug_on = path or None, fmt, debug

    def line(self, level: str, msg: str) -> str:
        now = rfc3339_now()
        if self.fmt == "json":
            return jsonlite.dumps({"level": level, "msg": msg, "time": now}) + "\n"
        return f"time={jsonlite.dumps(now)} level={level} msg={jsonlite.dumps(msg)}\n"

    def _append(self, text: str) -> bool:
        if not self.path:
            return False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError:
            return False
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return True

    def error(self, msg: str) -> None:
        logged = self._append(self.line("error", msg))
        _stderr(msg + "\n" if logged else self.line("error", msg))

    def warning(self, msg: str) -> None:
        self._append(self.line("warning", msg))

    def debug(self, msg: str) -> None:
        if self.debug_on:
            self._append(self.line("debug", msg))


def _stderr(text: str) -> None:
    try:
        os.write(2, text.encode(errors="replace"))
    except OSError:
        pass
