"""Reading a pod's state files that may be corrupt: name the file, go on with what is left.

A crash, a full disk or a hand edit can leave any byte in a state file. No verb fails for
that, and no other pod is affected: the corrupt file is named in one warning line on stderr
(``nsrun: warning: <file>: corrupt (<why>); …``, once per file and process) and the reader
uses what can still be read:

* ``status.json`` → the pod shown as ``Unknown`` (``unknown_pod``: its manifest, or its name
  alone, with phase ``Unknown`` and a message naming the file);
* ``pod.json`` → ``manifest`` is None;
* ``events.jsonl`` → its good lines (``events``);
* ``supervisor.pid`` → the process found holding the pod's lock (``supervisor_pid``);
* ``delete-grace`` → the manifest's grace period (``grace_override`` is None);
* ``cgroup`` → its well-formed lines (``cgroup_record``), records such as ``runtime.json`` →
  None (``record``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from nsrun.core import stateshape
from nsrun.state import PodPaths, supervisor_alive

_warned: set[str] = set()


def warn_corrupt(path: Path, why: str, instead: str) -> None:
    """One warning line naming the corrupt ``path`` (once per path in this process)."""
    if str(path) in _warned:
        return
    _warned.add(str(path))
    print(f"nsrun: warning: {path}: corrupt ({why}); {instead}", file=sys.stderr)


def read_bytes(path: Path, instead: str) -> bytes | None:
    """The file's bytes; None when it is missing, or unreadable (then named)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        warn_corrupt(path, err.strerror or type(err).__name__, instead)
        return None


def manifest(paths: PodPaths) -> dict[str, Any] | None:
    """pod.json as plain data, checked against the model; None when missing or corrupt."""
    from nsrun.core.spec import Pod

    data = read_bytes(paths.manifest, "its manifest is ignored")
    if data is None:
        return None
    try:
        value = stateshape.decode_object(data)
        msgspec.convert(value, Pod)
    except (stateshape.Corrupt, msgspec.ValidationError) as err:
        warn_corrupt(paths.manifest, str(err).splitlines()[0][:200], "its manifest is ignored")
        return None
    return value


def unknown_pod(paths: PodPaths, why: str) -> dict[str, Any]:
    """The pod as ``get`` and ``describe`` show it when its status cannot be read."""
    pod = manifest(paths) or {"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": paths.name, "namespace": "default"},
                              "spec": {"containers": []}}
    message = f"{paths.status.name} is corrupt ({why}): the pod's state is unknown"
    return {**pod, "status": {"phase": "Unknown", "message": message}}


def status(paths: PodPaths) -> dict[str, Any] | None:
    """status.json's Pod object; ``unknown_pod`` when it is corrupt, None when missing."""
    instead = "the pod is shown as Unknown"
    try:
        data = paths.status.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        why = err.strerror or type(err).__name__
        warn_corrupt(paths.status, why, instead)
        return unknown_pod(paths, why)
    try:
        return stateshape.pod_object(data)
    except stateshape.Corrupt as err:
        warn_corrupt(paths.status, str(err), instead)
        return unknown_pod(paths, str(err))


def events(paths: PodPaths) -> list[dict[str, Any]]:
    """Every well-formed event line, oldest first; bad lines are skipped and counted."""
    data = read_bytes(paths.events, "no events are shown")
    out, bad = [], 0
    for line in (data or b"").splitlines():
        if not line.strip():
            continue
        try:
            out.append(stateshape.event(line))
        except stateshape.Corrupt:
            bad += 1
    if bad:
        warn_corrupt(paths.events, f"{bad} unreadable line(s)", "they are skipped")
    return out


def record(path: Path, tp: type, instead: str) -> Any:
    """A JSON record decoded as ``tp`` (a msgspec type); None when missing or corrupt."""
    data = read_bytes(path, instead)
    if data is None:
        return None
    try:
        return msgspec.json.decode(data, type=tp)
    except msgspec.DecodeError as err:  # ValidationError included
        warn_corrupt(path, str(err).splitlines()[0][:200], instead)
        return None


def cgroup_record(paths: PodPaths) -> list[str]:
    """The pod's recorded cgroup directories (one absolute path a line); lines that are
    not such paths are dropped and the file named."""
    path = paths.cgroup_record
    data = read_bytes(path, "its bad lines are ignored")
    lines = (data or b"").decode(errors="replace").split()
    good = [line for line in lines if line.startswith("/") and "\0" not in line
            and "\ufffd" not in line and ".." not in line.split("/")]
    if len(good) < len(lines):
        warn_corrupt(path, f"{len(lines) - len(good)} line(s) not a cgroup directory",
                     "its bad lines are ignored")
    return good


def grace_override(paths: PodPaths) -> float | None:
    """The grace period ``delete --grace-period`` asked for; None when none (or corrupt)."""
    data = read_bytes(paths.grace_override, "the pod's own grace period applies")
    if data is None:
        return None
    try:
        value = float(data.decode())
    except (UnicodeDecodeError, ValueError):
        value = -1.0
    if not 0 <= value < 2**63:
        warn_corrupt(paths.grace_override, "not a number of seconds",
                     "the pod's own grace period applies")
        return None
    return value


def supervisor_pid(paths: PodPaths) -> int | None:
    """The pid of the pod's running supervisor: the one supervisor.pid names when that
    process holds the pod's lock, else the process found holding it; None when none runs."""
    if not supervisor_alive(paths):
        return None
    data = read_bytes(paths.pidfile, "the supervisor is found by its lock")
    text = data.decode(errors="replace").strip() if data is not None else ""
    if text.isdigit() and holds_lock(int(text), paths.lockfile):
        return int(text)
    if data is not None:
        why = f"process {text} does not hold the pod's lock" if text.isdigit() else "not a pid"
        warn_corrupt(paths.pidfile, why, "the supervisor is found by its lock")
    return next((pid for pid in _pids() if holds_lock(pid, paths.lockfile)), None)


def holds_lock(pid: int, lockfile: Path) -> bool:
    """True when process ``pid`` holds a flock through an open file of ``lockfile`` (the
    kernel lists a lock in the fd's ``fdinfo``; the pid in /proc/locks is the locker's,
    which is not the supervisor when ``run -d`` locked before it forked)."""
    want = {str(lockfile), f"{lockfile} (deleted)"}
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") not in want:
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                if any(line.startswith("lock:") and "FLOCK" in line for line in f):
                    return True
        except OSError:
            continue
    return False


def _pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
