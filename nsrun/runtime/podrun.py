"""A supervised pod from start to end, and the ``delete``, ``restart`` and ``apply`` verbs.

The CLI hands a validated pod over (``runtime.supervise``); here its supervisor creates the
pod's cgroup and sandbox, supervises it in the foreground or in a detached session, and
tears everything down when the pod ends. Any failure before the first container starts
removes what was created.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from nsrun.core.spec import Pod
from nsrun.errors import NsrunError, StateError
from nsrun.state import PodLock, PodPaths, StateRoot, remove_pod, supervisor_alive, write_atomic

if TYPE_CHECKING:  # the CLI's verbs here (delete, restart, apply) need no supervisor
    from nsrun.runtime.supervisor import Options, Supervisor

PHASE_EXIT = {"Succeeded": 0, "Failed": 1}


def foreground(pod: Pod, paths: PodPaths, options: Options, lock: PodLock, keep: bool,
               begin=None) -> int:
    """Supervise in this process until the pod ends; ``begin(sup, paths)`` sets the
    supervisor up (default: a new pod's ``prepare``; ``recover``'s re-attaches)."""
    from nsrun.runtime.supervisor import Supervisor

    sup = Supervisor(pod, paths, options)  # SIGTERM/SIGINT handled from here to the end
    try:
        write_atomic(paths.pidfile, f"{os.getpid()}\n".encode(), durable=False)
        try:
            (begin or _prepare)(sup, paths)
            phase = sup.run()
            code = _signal_exit(sup) or PHASE_EXIT.get(phase, 1)
        finally:
            sup.teardown()
            lock.close()
        if not keep or _signal_exit(sup):  # Ctrl-C/SIGTERM delete the pod (README)
            remove_pod(paths)
        return code
    finally:
        sup.signals.close()


def _prepare(sup: Supervisor, paths: PodPaths) -> None:
    """Cgroup and sandbox; on failure undo them and remove the pod's state."""
    try:
        sup.prepare()
    except BaseException:
        sup.teardown()
        remove_pod(paths)
        raise


def _signal_exit(sup: Supervisor) -> int:
    sig = getattr(sup, "signal_received", 0)
    return 128 + sig if sig else 0


def detached_child(pod: Pod, paths: PodPaths, options: Options, lock: PodLock,
                   wfd: int, begin=None) -> int:
    os.setsid()
    if os.fork() != 0:
        return 0
    from nsrun.runtime.supervisor import Supervisor

    _redirect_stdio(paths)
    sup = Supervisor(pod, paths, options)  # SIGTERM/SIGINT handled from here to the exit
    write_atomic(paths.pidfile, f"{os.getpid()}\n".encode(), durable=False)
    try:
        try:
            (begin or _prepare)(sup, paths)
            sup.publish(time.time())  # `get` right after `run -d` finds the pod
        except NsrunError as err:
            os.write(wfd, f"{err.exit_code}\n{err}".encode())
            return 1
        os.write(wfd, b"ok")
        os.close(wfd)
        sup.run()
        return 0
    finally:
        sup.teardown()
        lock.close()


def _redirect_stdio(paths: PodPaths) -> None:
    """stdout and stderr to ``supervisor.log``; warnings also to the pod's events and, when
    nsrun was started on the journal's stream, to the journal (``report.warnlog``)."""
    from nsrun.report.warnlog import WarningTee, journal_fd

    journal = journal_fd(2)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(paths.supervisor_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = WarningTee(2, paths, journal)


def delete(state: StateRoot, name: str, timeout: float | None = None,
           grace: float | None = None) -> None:
    """Stop the pod gracefully (its supervisor does it) and remove every trace of it.
    ``grace`` overrides the pod's ``terminationGracePeriodSeconds`` (kubectl's
    ``--grace-period``); a shorter one also shortens a stop already under way. Success only
    once the state dir, mounts and cgroups are gone; otherwise ``Leftovers`` names them."""
    from nsrun.runtime import podclean

    paths = state.existing(name)
    if supervisor_alive(paths):
        if grace is not None:
            write_atomic(paths.grace_override, f"{grace}\n".encode(), durable=False)
        _stop_supervisor(paths, timeout)
    left = podclean.clean(state.root, paths)
    if left:
        raise podclean.Leftovers(name, left)


def _stop_supervisor(paths: PodPaths, timeout: float | None) -> None:
    """SIGTERM the supervisor (through a pidfd taken while it holds the pod's lock, so a
    recycled pid is never signalled) and wait until it has released the lock."""
    from nsrun.report import stateread

    pid = stateread.supervisor_pid(paths)
    try:
        pidfd = os.pidfd_open(pid) if pid is not None else -1
    except (ProcessLookupError, OSError):
        pidfd = -1  # it has just exited: the lock tells
    try:
        if pidfd >= 0 and supervisor_alive(paths):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
    except ProcessLookupError:
        pass
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    limit = time.monotonic() + (timeout if timeout is not None else _grace(paths) + 10)
    while supervisor_alive(paths):
        if time.monotonic() > limit:
            raise StateError(f'pod "{paths.name}": supervisor {pid} did not stop in time')
        time.sleep(0.02)


def _grace(paths: PodPaths) -> float:
    from nsrun.report import stateread

    grace = stateread.grace_override(paths)
    if grace is not None:
        return grace
    spec = (stateread.manifest(paths) or {}).get("spec", {})
    seconds = spec.get("terminationGracePeriodSeconds")
    return float(seconds) if isinstance(seconds, int) and seconds >= 0 else 30.0


def restart(state: StateRoot, name: str) -> None:
    """Restart the pod: every container stops, a new sandbox is made, and every init
    container runs again in order (``nsrun restart``)."""
    paths = _live(state, name)
    os.kill(_supervisor_pid(paths), signal.SIGUSR1)


def update(state: StateRoot, new: Pod) -> str:
    """Update the running pod (``nsrun apply`` of an existing pod); returns kubectl's word
    for what happened: configured or unchanged."""
    import msgspec

    from nsrun.core.update import plan_update, validate_update
    from nsrun.errors import SpecError

    paths = _live(state, new.metadata.name)
    from nsrun.report import stateread

    stored = stateread.manifest(paths)
    if stored is None:
        raise StateError(f'pod "{paths.name}": its manifest {paths.manifest} cannot be read, '
                         "so no update can be planned; delete the pod and create it again")
    old = msgspec.convert(stored, Pod)
    new = msgspec.structs.replace(new, metadata=msgspec.structs.replace(
        new.metadata, uid=old.metadata.uid))
    problems = validate_update(old, new)
    if problems:
        raise SpecError(problems, pod=new.metadata.name)
    if plan_update(old, new).noop:
        return "unchanged"
    write_atomic(paths.next_manifest, msgspec.json.encode(new))
    os.kill(_supervisor_pid(paths), signal.SIGHUP)
    _wait_adopted(paths)
    return "configured"


def _wait_adopted(paths: PodPaths, timeout: float = 10.0) -> None:
    limit = time.monotonic() + timeout
    while paths.next_manifest.exists():
        if time.monotonic() > limit:
            raise StateError(f'pod "{paths.name}": the supervisor did not take the update')
        time.sleep(0.01)


def _live(state: StateRoot, name: str) -> PodPaths:
    paths = state.existing(name)
    if not supervisor_alive(paths):
        raise StateError(f'pod "{name}" is not running (its supervisor has exited; '
                         f"nsrun recover {name} re-attaches one if the pod has not ended)")
    return paths


def _supervisor_pid(paths: PodPaths) -> int:
    from nsrun.report import stateread

    pid = stateread.supervisor_pid(paths)
    if pid is None:
        raise StateError(f'pod "{paths.name}" is not running (its supervisor has exited)')
    return pid
