"""How the end of a process is read and reported, in one place: from ``os.waitid``'s
result (a pidfd's ``siginfo``), the exit code as shells and runtimes give it (the process's
own status, or 128+n when signal n ended it) and the words of a failure message."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any


def decode(info: Any) -> tuple[int, int | None]:
    """``(exit code, signal)``: a signal death is reported as 128+n (signal n), else None."""
    if info.si_code == os.CLD_EXITED:
        return info.si_status, None
    return 128 + info.si_status, info.si_status


def exit_code(info: Any) -> int:
    """The exit code of ``info``: the process's status, or 128+n for signal n."""
    return decode(info)[0]


def describe(info: Any) -> str:
    """``exited with 3`` or ``was killed by signal 9``."""
    if info.si_code == os.CLD_EXITED:
        return f"exited with {info.si_status}"
    return f"was killed by signal {info.si_status}"
