"""The ``run`` and ``delete`` verbs: from a validated Pod to a supervised pod, and back.

``run`` checks everything before touching the host (manifest, preflight, state), then
creates the pod's state, cgroup and sandbox, supervises it in the foreground or in a detached
process, and tears everything down when the pod ends. Any failure before the first container
starts removes what was created.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from nsrun.core.spec import Pod
from nsrun.errors import NsrunError, PreflightError, StateError
from nsrun.runtime.supervisor import Options, Supervisor
from nsrun.state import PodLock, PodPaths, StateRoot, remove_tree, supervisor_alive, write_atomic

PHASE_EXIT = {"Succeeded": 0, "Failed": 1}


def with_uid(pod: Pod) -> Pod:
    """The pod with ``metadata.uid`` filled in (a new UUID when the manifest has none)."""
    import msgspec

    if pod.metadata.uid:
        return pod
    meta = msgspec.structs.replace(pod.metadata, uid=new_uid())
    return msgspec.structs.replace(pod, metadata=meta)


def new_uid() -> str:
    """A random (version 4) UUID, as the API server assigns a Pod (the uuid module would
    cost its import of platform on the start path)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def preflight() -> None:
    if os.geteuid() != 0:
        raise PreflightError("nsrun must run as root (namespaces, mounts and cgroups need it)")


def run(pod: Pod, state: StateRoot, options: Options, *, detach: bool, keep: bool,
        quiet: bool = False) -> int:
    """Run ``pod``; returns the exit code (see the README's table)."""
    preflight()
    paths = state.create(pod.metadata.name)
    try:
        import msgspec

        write_atomic(paths.manifest, msgspec.json.encode(pod))
        lock = PodLock(paths)
        lock.try_acquire()
    except BaseException:
        remove_tree(paths.dir)
        raise
    if detach:
        return _detach(pod, paths, options, lock, quiet)
    return _foreground(pod, paths, options, lock, keep)


def _foreground(pod: Pod, paths: PodPaths, options: Options, lock: PodLock, keep: bool) -> int:
    sup = Supervisor(pod, paths, options)  # SIGTERM/SIGINT handled from here to the end
    try:
        write_atomic(paths.pidfile, f"{os.getpid()}\n".encode())
        try:
            _prepare(sup, paths)
            phase = sup.run()
            code = _signal_exit(sup) or PHASE_EXIT.get(phase, 1)
        finally:
            sup.teardown()
            lock.close()
        if not keep or _signal_exit(sup):  # Ctrl-C/SIGTERM delete the pod (README)
            remove_tree(paths.dir)
        return code
    finally:
        sup.signals.close()


def _prepare(sup: Supervisor, paths: PodPaths) -> None:
    """Cgroup and sandbox; on failure undo them and remove the pod's state."""
    try:
        sup.prepare()
    except BaseException:
        sup.teardown()
        remove_tree(paths.dir)
        raise


def _signal_exit(sup: Supervisor) -> int:
    sig = getattr(sup, "signal_received", 0)
    return 128 + sig if sig else 0


def _detach(pod: Pod, paths: PodPaths, options: Options, lock: PodLock,
            quiet: bool = False) -> int:
    """Fork a session leader that supervises the pod; return once its containers can start."""
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the detached child
        os.close(rfd)
        os._exit(_detached_child(pod, paths, options, lock, wfd))
    os.close(wfd)
    lock.close()
    report = _read_all(rfd)
    os.close(rfd)
    if report != b"ok":
        os.waitpid(pid, 0)
        raise _reported_error(report)
    if not quiet:
        print(pod.metadata.name)
    return 0


def _detached_child(pod: Pod, paths: PodPaths, options: Options, lock: PodLock,
                    wfd: int) -> int:
    os.setsid()
    if os.fork() != 0:
        return 0
    _redirect_stdio(paths)
    sup = Supervisor(pod, paths, options)  # SIGTERM/SIGINT handled from here to the exit
    write_atomic(paths.pidfile, f"{os.getpid()}\n".encode())
    try:
        try:
            _prepare(sup, paths)
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


def _reported_error(report: bytes) -> NsrunError:
    """The error the detached supervisor reported (``<exit code>\n<message>``)."""
    code, _, message = report.decode(errors="replace").partition("\n")
    err = NsrunError(message or "detached supervisor died before the pod started")
    err.exit_code = int(code) if code.isdigit() else NsrunError.exit_code
    return err


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


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


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
            write_atomic(paths.grace_override, f"{grace}\n".encode())
        _stop_supervisor(paths, timeout)
    left = podclean.clean(state.root, paths)
    if left:
        raise podclean.Leftovers(name, left)


def _stop_supervisor(paths: PodPaths, timeout: float | None) -> None:
    """SIGTERM the supervisor (through a pidfd taken while it holds the pod's lock, so a
    recycled pid is never signalled) and wait until it has released the lock."""
    pid = _supervisor_pid(paths)
    try:
        pidfd = os.pidfd_open(pid)
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
    import json

    if paths.grace_override.exists():
        return float(paths.grace_override.read_text())
    try:
        spec = json.loads(paths.manifest.read_bytes()).get("spec", {})
    except (OSError, ValueError):
        return 30.0
    return float(spec.get("terminationGracePeriodSeconds", 30))


def restart(state: StateRoot, name: str) -> None:
    """Restart the pod: every container stops, a new sandbox is made, and every init
    container runs again in order (``nsrun restart``)."""
    paths = _live(state, name)
    os.kill(_supervisor_pid(paths), signal.SIGUSR1)


def apply(state: StateRoot, new: Pod, options: Options) -> str:
    """Create the pod, or update the running one (``nsrun apply``); returns kubectl's word
    for what happened: created, configured or unchanged."""
    import msgspec

    from nsrun.core.update import plan_update, validate_update
    from nsrun.errors import SpecError

    if not state.pod(new.metadata.name).dir.exists():
        run(with_uid(new), state, options, detach=True, keep=True, quiet=True)
        return "created"
    paths = _live(state, new.metadata.name)
    old = msgspec.json.decode(paths.manifest.read_bytes(), type=Pod)
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
        raise StateError(f'pod "{name}" is not running (its supervisor has exited)')
    return paths


def _supervisor_pid(paths: PodPaths) -> int:
    return int(paths.pidfile.read_text().strip())
