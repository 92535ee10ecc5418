"""``nsrun recover [POD…|--all]``: a new supervisor for each pod whose supervisor is gone
(killed, crashed, or the host rebooted), re-attached as ``runtime.reattach`` says.

A pod whose supervisor runs, or that has ended (Succeeded/Failed), is left alone with a line
saying so. A pod whose records are torn or corrupt is refused (exit 2) naming the file, and
nothing of it is touched. ``run`` and ``apply`` of a pod without a supervisor come here too.
"""

from __future__ import annotations

from typing import Any

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


def recover(state: StateRoot, name: str, world: Any = None) -> str:
    """Re-attach a detached supervisor to pod ``name``; a kubectl-like line saying what
    happened. ``world``: the options to use where the pod's records have none."""
    line, _ = _recover(state, name, world)
    return line


def recover_foreground(state: StateRoot, name: str, world: Any, on_change=None) -> int:
    """Re-attach, supervising in this process until the pod ends (``run`` of the same
    manifest in the foreground, as a restarted ``run --systemd -d`` unit does); ``run``'s
    exit code (0 at once when there was nothing to do)."""
    line, code = _recover(state, name, world, foreground=True, on_change=on_change)
    import sys

    print(f"nsrun: {line}", file=sys.stderr)
    return code


def _recover(state: StateRoot, name: str, world: Any, foreground: bool = False,
             on_change=None) -> tuple[str, int]:
    from nsrun.runtime import podrecords

    paths = state.existing(name)
    if supervisor_alive(paths):
        return f"pod/{name} unchanged: its supervisor is running (pid {_pid(paths)})", 0
    if not needs_recovery(paths):
        return f"pod/{name} unchanged: it has ended, there is nothing to supervise", 0
    saved = podrecords.load(paths)
    options = _options(saved, state, world, on_change)
    lock = PodLock(paths)
    if not lock.try_acquire():
        lock.close()
        return f"pod/{name} unchanged: another supervisor has just taken it", 0
    from nsrun.runtime import podrun

    code = podrun.supervise_existing(saved.pod, paths, options, lock, _begin(saved),
                                     foreground)
    return f"pod/{name} recovered", code


def _begin(saved):
    def begin(sup, paths: PodPaths) -> None:
        from nsrun.runtime.reattach import reattach

        try:
            reattach(sup, saved)
        except BaseException:
            _forget(sup)  # a failed re-attach kills nothing: the pod stays as it was
            raise
    return begin


def _forget(sup) -> None:
    from nsrun.host.cgroupdriver import NO_POD

    sup.executor, sup.sandbox, sup.networking, sup.cgroup = None, None, None, NO_POD


def _options(saved, state: StateRoot, world: Any, on_change=None):
    """The supervisor's options as the pod was run (its world and flags in runtime.json),
    with this command's state root."""
    import msgspec

    from nsrun.runtime import lifecycle

    recorded = saved.runtime.get("world")
    try:
        w = msgspec.convert(recorded, lifecycle.World) if recorded else world
        flags = msgspec.convert(saved.runtime.get("flags") or {}, lifecycle.RunFlags)
    except msgspec.ValidationError as err:
        from nsrun.runtime.podrecords import _corrupt

        raise _corrupt(state.pod(saved.pod.metadata.name).runtime, str(err)) from None
    if w is None:
        raise NsrunError("no world to recover in")
    w = msgspec.structs.replace(w, root=str(state.root))
    return lifecycle.pod_options(w, flags, saved.pod, on_change)


def _pid(paths: PodPaths) -> str:
    try:
        return paths.pidfile.read_text().strip()
    except OSError:
        return "?"


def recover_all(state: StateRoot, world: Any = None) -> list[str]:
    """Every pod of the state root that needs a supervisor (``recover --all``, at boot)."""
    lines = []
    for name in state.pod_names():
        paths = state.pod(name)
        if paths.dir.is_dir() and needs_recovery(paths):
            try:
                lines.append(recover(state, name, world))
            except NsrunError as err:
                lines.append(f"pod/{name} not recovered: {err}")
    return lines
