"""The crossing from the CLI to a pod's supervisor, and the supervisor's lean entry point.

CLI side (``start``): the manifest is parsed and validated, the options computed; the pod's
state directory is created with ``pod.json`` and ``supervisor.json`` (``runtime.options``)
and its lock taken. Then:

* ``-d``, ``create``, ``apply``: a fresh interpreter running ``main`` is spawned in a session
  of its own (the lock's fd and a report pipe passed down); the CLI returns once the pod can
  start, and only the lean supervisor stays;
* a foreground ``run`` that a service manager watches (``--sdnotify``, as the systemd unit of
  ``run --systemd -d`` is): the CLI replaces itself with ``main`` (same pid and exit code),
  so the unit holds only the lean supervisor;
* a foreground ``run`` at a terminal: the CLI supervises the pod itself. A second
  interpreter would cost more than a container start (measured: ``bench/``), and the user
  waits on this process anyway.

Supervisor side (``main``): reads the already-validated pod and its options back and
supervises it (``runtime.podrun``). It never imports PyYAML, argparse or the validation code
(``tests/unit/test_import_sets.py``), so a resident supervisor holds only what it needs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import msgspec

from nsrun import exitcodes
from nsrun.errors import NsrunError, PreflightError, tell
from nsrun.runtime import options as handoff_io
from nsrun.state import (
    PodLock,
    PodPaths,
    StateRoot,
    link_logs,
    remove_pod,
    supervisor_alive,
    write_atomic_all,
)

ENTRY = "from nsrun.runtime.supervise import main; main()"


def new_uid() -> str:
    """A random (version 4) UUID, as the API server assigns a Pod (the uuid module would
    cost its import of platform on the start path)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def with_uid(pod):
    """The pod with ``metadata.uid`` filled in (a new UUID when the manifest has none)."""
    if pod.metadata.uid:
        return pod
    meta = msgspec.structs.replace(pod.metadata, uid=new_uid())
    return msgspec.structs.replace(pod, metadata=meta)


def preflight() -> None:
    if os.geteuid() != 0:
        raise PreflightError("nsrun must run as root (namespaces, mounts and cgroups need it)")


def start(pod, state: StateRoot, handoff: handoff_io.Handoff) -> int:
    """Hand ``pod`` to a supervisor; returns the exit code (see the module docstring)."""
    preflight()
    paths = state.create(pod.metadata.name)
    try:
        write_atomic_all([(paths.manifest, msgspec.json.encode(pod)),
                          (paths.handoff, handoff_io.encode(handoff))])
        link_logs(paths, handoff.options.log_dir, pod.metadata.namespace, pod.metadata.uid)
        lock = PodLock(paths)
        lock.try_acquire()
    except BaseException:
        remove_pod(paths)
        raise
    if handoff.detach:
        return _spawn_detached(_command(paths, lock), paths, lock)
    if handoff.report.sdnotify == "none":  # the user waits on this process: supervise here
        _seccomp_cache(paths)
        return _run_foreground(pod, paths, handoff, lock)
    sys.stdout.flush()  # a service systemd watches: only the lean process stays
    sys.stderr.flush()
    argv = _command(paths, lock)
    os.execv(argv[0], argv)
    raise AssertionError("unreachable")


def resume(paths: PodPaths, lock: PodLock, detach: bool,
           report: handoff_io.Report | None = None) -> int:
    """A supervisor re-attached to a pod whose supervisor is gone (``recover``; the lock is
    held): detached, in the foreground (``report``: what it tells), or, for a service systemd
    watches, in place of this process. Its options are the pod's ``supervisor.json``."""
    argv = [*_command(paths, lock), "--recover", "1"]
    if detach:
        return _spawn_detached(argv, paths, lock, fresh=False)
    if report is not None and report.sdnotify != "none":
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(argv[0], argv)
    pod, handoff, _ = _load(paths, lock.fd)
    if report is not None:
        handoff = msgspec.structs.replace(handoff, report=report)
    return _run_foreground(pod, paths, handoff, lock, _reattach)


def _reattach(sup, paths: PodPaths) -> None:
    from nsrun.runtime.recover import begin

    begin(sup, paths)


def _command(paths: PodPaths, lock: PodLock) -> list[str]:
    """The lean entry point's command line; the lock's fd is passed down."""
    os.set_inheritable(lock.fd, True)
    return [sys.executable, "-c", ENTRY, str(paths.dir), "--lock-fd", str(lock.fd)]


def _seccomp_cache(paths: PodPaths) -> None:
    """Compiled seccomp programs outlive the pod, in its state root (``bundle.seccompcache``)."""
    from nsrun.bundle.seccompcache import ENV_CACHE

    os.environ.setdefault(ENV_CACHE, str(paths.dir.parent.parent / "cache" / "seccomp"))


def _spawn_detached(argv: list[str], paths: PodPaths, lock: PodLock, fresh: bool = True) -> int:
    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    os.set_inheritable(wfd, True)
    try:
        pid = os.posix_spawn(sys.executable, [*argv, "--report-fd", str(wfd)], os.environ)
    finally:
        os.close(wfd)
        lock.close()
    report = _read_all(rfd)
    os.close(rfd)
    os.waitpid(pid, 0)  # it forked the supervisor off and exited
    if report != b"ok":
        if fresh and not supervisor_alive(paths):  # it died before it could clean up
            remove_pod(paths)
        raise _reported_error(report)
    return 0


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


def _reported_error(report: bytes) -> NsrunError:
    """The error the detached supervisor reported (``<exit code>\n<message>``)."""
    code, _, message = report.decode(errors="replace").partition("\n")
    err = NsrunError(message or "detached supervisor died before the pod started")
    err.exit_code = int(code) if code.isdigit() else NsrunError.exit_code
    return err


def main(argv: list[str] | None = None) -> None:
    """``POD_DIR --lock-fd N [--report-fd M]``: supervise the pod in ``POD_DIR``."""
    args = sys.argv[1:] if argv is None else argv
    fds = {k: int(v) for k, v in zip(args[1::2], args[2::2], strict=True)}
    paths = PodPaths(Path(args[0]))
    report_fd = fds.get("--report-fd")
    begin = _reattach if fds.get("--recover") else None
    if report_fd is not None:
        os._exit(_detached(paths, fds["--lock-fd"], report_fd, begin))
    sys.exit(_foreground(paths, fds["--lock-fd"], begin))


def _load(paths: PodPaths, lock_fd: int):
    from nsrun.core.spec import Pod

    _seccomp_cache(paths)

    pod = msgspec.json.decode(paths.manifest.read_bytes(), type=Pod)
    handoff = handoff_io.decode(paths.handoff.read_bytes())
    return pod, handoff, PodLock.of_fd(lock_fd)


def _options(handoff: handoff_io.Handoff, detached: bool, on_change=None):
    """The supervisor's ``Options``: the image store, and ``on_change`` calling the
    foreground's report and systemd's notifier (only when there is a socket to tell)."""
    from nsrun.bundle.images import ImageStore

    calls = [on_change] if on_change is not None else []
    if handoff.report.sdnotify != "none" and os.environ.get("NOTIFY_SOCKET"):
        from nsrun.runtime import sdnotify

        calls.append(sdnotify.Notifier.from_env(handoff.report.sdnotify, detached=detached))
    return msgspec.structs.replace(
        handoff.options, images=ImageStore(handoff.options.images),
        on_change=(lambda obj: [f(obj) for f in calls]) if calls else None)


def _detached(paths: PodPaths, lock_fd: int, report_fd: int, begin=None) -> int:
    from nsrun.runtime import podrun

    try:
        pod, handoff, lock = _load(paths, lock_fd)
    except (OSError, ValueError) as err:
        os.write(report_fd, f"{exitcodes.INTERNAL}\n{paths.dir}: {err}".encode())
        return 1
    return podrun.detached_child(pod, paths, _options(handoff, True), lock, report_fd, begin)


def _foreground(paths: PodPaths, lock_fd: int, begin=None) -> int:
    """Run the pod, tell what the CLI asked for, and map errors to exit codes as it does."""
    try:
        pod, handoff, lock = _load(paths, lock_fd)
        return _run_foreground(pod, paths, handoff, lock, begin)
    except KeyboardInterrupt:
        return exitcodes.SIGNALLED + 2
    except Exception as err:  # an NsrunError, or a bug in nsrun: one line either way
        return tell(err)


def _run_foreground(pod, paths: PodPaths, handoff: handoff_io.Handoff, lock: PodLock,
                    begin=None) -> int:
    from nsrun.runtime import podrun

    wanted = handoff.report
    report = None
    if wanted.tell or wanted.watch or wanted.output:
        from nsrun.report.runreport import RunReport

        rows = sys.stdout if wanted.watch else (sys.stderr if wanted.rows else None)
        report = RunReport(paths, rows_out=rows, tell=wanted.tell,
                           final=wanted.rows or wanted.watch)
    code = podrun.foreground(pod, paths, _options(handoff, False, report), lock,
                             handoff.keep, begin)
    if report is not None:
        report.finish(code)
        if wanted.output and report.last:
            from nsrun.report import output

            output.print_objects([report.last], wanted.output, single=True)
    return code
