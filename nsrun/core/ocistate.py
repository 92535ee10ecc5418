"""The OCI runtime face's pure decisions: a container's status, the runtime spec's state
document, which container IDs and signals are valid, and which verb may act on which status.

A container's status is derived, never stored (so it is right even after the process exited
while nobody watched): from whether the create finished (the record exists), whether its
init is alive (its pid with the start time recorded at create, not a zombie), whether it
still waits for ``start`` (the exec FIFO exists) and whether its cgroup is frozen.
"""

from __future__ import annotations

CREATING, CREATED, RUNNING, PAUSED, STOPPED = "creating", "created", "running", "paused", \
    "stopped"

# What the runtime spec's state holds (runc 1.1 adds owner), in runc's order.
STATE_KEYS = ("ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
              "annotations", "owner")

# Linux signal numbers (x86, arm, riscv and most others; asm-generic/signal.h).
SIGNALS: dict[str, int] = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN, SIGRTMAX = 34, 64


def derive_status(*, recorded: bool, creating: bool, alive: bool, waiting: bool,
                  frozen: bool) -> str:
    """``recorded``: the create finished (state written); ``creating``: a create holds the
    container's lock right now; ``alive``: its init runs (identity checked); ``waiting``: the
    init waits for ``start``; ``frozen``: its cgroup is frozen."""
    if not recorded:
        return CREATING if creating else STOPPED
    if not alive:
        return STOPPED
    if waiting:
        return CREATED
    return PAUSED if frozen else RUNNING


def state_document(record: dict, status: str) -> dict:
    """The runtime spec's ``state`` of a container (``pid`` only while it has a process)."""
    doc = {key: record.get(key) for key in STATE_KEYS}
    doc["status"] = status
    doc["pid"] = record.get("pid", 0) if status != STOPPED else 0
    doc["annotations"] = record.get("annotations") or {}
    doc["owner"] = record.get("owner", "")
    return doc


def id_problem(container_id: str) -> str | None:
    """None for a valid container ID (runc's rule: letters, digits, ``_+-.``, not ``.`` or
    ``..``: it names a directory), else runc's message."""
    ok = container_id not in ("", ".", "..") and all(
        c.isascii() and (c.isalnum() or c in "_+-.") for c in container_id)
    return None if ok else f"invalid id format: {container_id}"


def parse_signal(text: str) -> int:
    """``9``, ``KILL``, ``SIGKILL``, ``sigkill``, ``RTMIN+3`` → the signal number;
    ``ValueError`` with runc's message otherwise."""
    if text.isdigit():
        number = int(text)
        if 1 <= number <= SIGRTMAX:
            return number
        raise ValueError(f"unknown signal {text!r}")
    name = text.upper().removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    for base, start, sign in (("RTMIN", SIGRTMIN, "+"), ("RTMAX", SIGRTMAX, "-")):
        rest = name.removeprefix(base)
        if rest == name:
            continue
        if rest == "":
            return start
        if rest[0] == sign and rest[1:].isdigit():
            number = start + int(rest[1:]) * (1 if sign == "+" else -1)
            if SIGRTMIN <= number <= SIGRTMAX:
                return number
    raise ValueError(f"unknown signal {text!r}")


def start_problem(container_id: str, status: str) -> str | None:
    """Why ``start`` cannot start a container in ``status`` (runc's messages), or None."""
    if status == CREATED:
        return None
    if status == STOPPED:
        return "cannot start a container that has stopped"
    if status in (RUNNING, PAUSED):
        return "cannot start an already running container"
    return f"cannot start a container in the {status} state"


def delete_problem(container_id: str, status: str, force: bool) -> str | None:
    """Why ``delete`` (without ``--force``) refuses (runc's message), or None. A ``created``
    container is deleted (killed first), as runc and crun do: shims rely on it."""
    if force or status in (STOPPED, CREATED):
        return None
    return f"cannot delete container {container_id} that is not stopped: {status}"
