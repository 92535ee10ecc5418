"""``nsrun recover [POD…|--all]``: a new supervisor for each pod whose supervisor is gone
(killed, crashed, or the host rebooted), re-attached as ``runtime.reattach`` says, with the
options the pod was started with (its ``supervisor.json``).

A pod whose supervisor runs, or that has ended (Succeeded/Failed), is left alone with a line
saying so. A pod whose records are torn or corrupt is refused (exit 2) naming the file, and
nothing of it is touched. ``run`` and ``apply`` of a pod without a supervisor come here too.
"""

from __future__ import annotations

from nsrun.errors import NsrunError
from nsrun.state import PodLock, PodPaths, StateRoot, supervisor_alive

DONE_PHASES = ("Succeeded", "Failed")


def needs_recovery(paths: PodPaths) -> bool:
    """The pod has no supervisor and has not ended."""
    from nsrun.report import statusfile

    if supervisor_alive(paths):
        return False
    try:
        phase = ((statusfile.read(paths) or {}).get("status") or {}).get("phase")
    except (OSError, ValueError):
        phase = None
    return phase not in DONE_PHASES


def recover(state: StateRoot, name: str) -> str:
    """Re-attach a detached supervisor to pod ``name``; a kubectl-like line saying what
    happened."""
    line, _ = _recover(state, name, detach=True)
    return line


def resume(state: StateRoot, name: str, detach: bool, report=None) -> int:
    """``run`` of the same manifest on a pod without a supervisor: re-attach, detached or
    in the foreground (then ``run``'s exit code once the pod ends)."""
    import sys

    line, code = _recover(state, name, detach, report)
    print(f"nsrun: {line}", file=sys.stderr)
    return code


def _recover(state: StateRoot, name: str, detach: bool, report=None) -> tuple[str, int]:
    from nsrun.runtime import podrecords, supervise

    paths = state.existing(name)
    if supervisor_alive(paths):
        return f"pod/{name} unchanged: its supervisor is running (pid {_pid(paths)})", 0
    if not needs_recovery(paths):
        return f"pod/{name} unchanged: it has ended, there is nothing to supervise", 0
    podrecords.load(paths)  # every record readable, or one error naming the file
    lock = PodLock(paths)
    if not lock.try_acquire():
        lock.close()
        return f"pod/{name} unchanged: another supervisor has just taken it", 0
    code = supervise.resume(paths, lock, detach, report)
    return f"pod/{name} recovered", code


def begin(sup, paths: PodPaths) -> None:
    """Set a new supervisor up on the pod as it is found (``podrun``'s ``begin``): a failed
    re-attach kills nothing, the pod stays as it was."""
    from nsrun.runtime import podrecords
    from nsrun.runtime.reattach import reattach

    try:
        reattach(sup, podrecords.load(paths))
    except BaseException:
        _forget(sup)
        raise


def _forget(sup) -> None:
    from nsrun.host.cgroupdriver import NO_POD

    sup.executor, sup.sandbox, sup.networking, sup.cgroup = None, None, None, NO_POD


def _pid(paths: PodPaths) -> str:
    try:
        return paths.pidfile.read_text().strip()
    except OSError:
        return "?"


def recover_all(state: StateRoot) -> list[str]:
    """Every pod of the state root that needs a supervisor (``recover --all``, at boot)."""
    lines = []
    for name in state.pod_names():
        paths = state.pod(name)
        if paths.dir.is_dir() and needs_recovery(paths):
            try:
                lines.append(recover(state, name))
            except NsrunError as err:
                lines.append(f"pod/{name} not recovered: {err}")
    return lines
