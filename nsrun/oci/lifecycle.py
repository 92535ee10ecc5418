"""``start``, ``kill``, ``delete``, ``pause`` and ``resume``: the verbs that move a container
along its lifecycle, each with runc's checks and messages.

* ``start ID``: only a ``created`` container ("cannot start a container that has stopped",
  "cannot start an already running container"); runs the startContainer hooks, releases the
  init (one byte into ``exec.fifo``, which is removed), then the poststart hooks.
* ``kill ID [SIGNAL] [--all]``: SIGTERM by default; numbers, names and ``SIG`` names; a
  stopped container is "container not running"; ``--all`` signals every process of its
  cgroup (SIGKILL: ``cgroup.kill``).
* ``delete ID [--force]``: a running or paused container needs ``--force`` (SIGKILL to its
  cgroup first); a created one is killed and deleted, as runc does. Then the cgroup and the
  state are removed and the poststop hooks run. ``--force`` of an unknown ID succeeds.
* ``pause ID`` / ``resume ID``: ``cgroup.freeze`` of a running / paused container.
"""

from __future__ import annotations

import os
import signal

from nsrun.core import ocistate
from nsrun.errors import OciError
from nsrun.oci import args as flags
from nsrun.oci import hooks
from nsrun.oci.state import FIFO, Container, Created, existing, start_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nsrun.oci.main import Context

KILL_TIMEOUT = 10.0  # seconds delete waits for a killed init to die
# runc passes on every signal but SIGCHLD (and SIGWINCH, which resizes its terminal)
FORWARDED = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGUSR1,
             signal.SIGUSR2, signal.SIGCONT, signal.SIGALRM, signal.SIGPIPE)


def open_pidfd(record: dict) -> int:
    """A pidfd of the recorded init, checked to be that very process; ``OciError`` "container
    not running" otherwise."""
    pid = record.get("pid", 0)
    try:
        pidfd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        raise OciError("container not running") from None
    if start_time(pid) != record.get("start_time"):
        os.close(pidfd)
        raise OciError("container not running")
    return pidfd


def _state(record: dict, status: str) -> dict:
    return ocistate.state_document(record, status)


def start(ctx: Context, container: Container, record: dict | None, config: dict,
          pidfd: int = -1) -> None:
    """Release a created container's init (see the module docstring)."""
    status = container.status(record) if record is not None else ocistate.STOPPED
    problem = ocistate.start_problem(container.id, status)
    if problem or record is None:
        raise OciError(problem or "container does not exist")
    own = pidfd < 0
    pidfd = open_pidfd(record) if own else pidfd
    try:
        if hooks.of(config, "startContainer"):
            _start_hooks(ctx, record, config, pidfd)
        try:
            fifo = os.open(container.path(FIFO), os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:  # ENXIO: nobody reads it any more (the init died)
            raise OciError("cannot start a container that has stopped") from None
        try:
            os.unlink(container.path(FIFO))
            os.write(fifo, b"g")
        finally:
            os.close(fifo)
    finally:
        if own:
            os.close(pidfd)
    hooks.run(config, "poststart", _state(record, ocistate.RUNNING), ctx.log)


def _start_hooks(ctx: Context, record: dict, config: dict, pidfd: int) -> None:
    from nsrun.oci import cgroup

    group = cgroup.open_group(record)
    try:
        hooks.run(config, "startContainer", _state(record, ocistate.CREATED), ctx.log,
                  pid=record["pid"], pidfd=pidfd, group=group)
    finally:
        if group is not None:
            group.close()


def cmd_start(ctx: Context, argv: list[str]) -> int:
    _, rest = flags.parse(argv, {})
    flags.need(rest, 1, "start")
    container, record = existing(ctx.root, rest[0])
    container.lock()
    record = container.record()
    start(ctx, container, record, container.config() if record else {})
    return 0


def cmd_kill(ctx: Context, argv: list[str]) -> int:
    opts, rest = flags.parse(argv, {"--all": ("all", flags.BOOL), "-a": ("all", flags.BOOL)})
    flags.need(rest, 1, "kill", exact=False)
    if len(rest) > 2:
        raise OciError('"kill" requires a maximum of 2 argument(s)')
    try:
        sig = ocistate.parse_signal(rest[1] if len(rest) > 1 else "SIGTERM")
    except ValueError as err:
        raise OciError(str(err)) from None
    container, record = existing(ctx.root, rest[0])
    if record is None or container.status(record) == ocistate.STOPPED:
        raise OciError("container not running")
    from nsrun.oci import cgroup

    if opts["all"] and cgroup.has_cgroup(record):
        cgroup.signal_all(record, sig)
        return 0
    pidfd = open_pidfd(record)
    try:
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise OciError("container not running") from None
    finally:
        os.close(pidfd)
    return 0


def _wait_gone(pidfd: int, group: object, timeout: float) -> bool:
    """Until the process behind ``pidfd`` exited (it need not be our child) or, with a
    cgroup, nothing runs in it any more: a container's pid 1 that exits waits in the kernel
    until its namespace's last zombies are reaped, which is the caller's job (a shim's), not
    ours."""
    import select
    import time

    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    deadline = time.monotonic() + timeout
    while True:
        if poller.poll(0 if group else int(timeout * 1000)):
            return True
        if group and not group.pids():
            return True
        if time.monotonic() > deadline:
            return False
        poller.poll(2)


def _kill_init(ctx: Context, container: Container, record: dict) -> None:
    from nsrun.oci import cgroup

    if not container.alive(record):
        return
    try:
        pidfd = open_pidfd(record)
    except OciError:
        return
    group = cgroup.open_group(record)
    try:
        if group is not None:
            group.kill()
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        if not _wait_gone(pidfd, group, KILL_TIMEOUT):
            ctx.log.warning(f"container {container.id}: its init {record['pid']} still runs "
                            f"{KILL_TIMEOUT:g} s after SIGKILL")
    finally:
        os.close(pidfd)
        if group is not None:
            group.close()


def destroy(ctx: Context, container: Container, record: dict | None, config: dict) -> None:
    """Kill what is left, remove the cgroup and the state, run the poststop hooks."""
    from nsrun.files import remove_tree
    from nsrun.oci import cgroup

    if record is not None:
        _kill_init(ctx, container, record)
        cgroup.remove(record)
    remove_tree(container.dir)
    if record is not None:
        hooks.run(config, "poststop", _state(record, ocistate.STOPPED), ctx.log)


def cmd_delete(ctx: Context, argv: list[str]) -> int:
    opts, rest = flags.parse(argv, {"--force": ("force", flags.BOOL),
                                    "-f": ("force", flags.BOOL)})
    flags.need(rest, 1, "delete")
    container = Container(ctx.root, rest[0])
    if not container.exists():
        if opts["force"]:
            return 0
        raise OciError("container does not exist")
    if not container.lock(blocking=bool(opts["force"])):
        raise OciError(f"cannot delete container {container.id} that is not stopped: "
                       f"{ocistate.CREATING}")
    record = container.record()
    status = container.status(record)
    problem = ocistate.delete_problem(container.id, status, bool(opts["force"]))
    if problem:
        raise OciError(problem)
    config = {}
    if record is not None:
        try:
            config = container.config()
        except OciError as err:
            ctx.log.warning(f"{err}: its poststop hooks are not run")
    destroy(ctx, container, record, config)
    return 0


def _freeze(ctx: Context, argv: list[str], verb: str, frozen: bool) -> int:
    from nsrun.oci import cgroup

    _, rest = flags.parse(argv, {})
    flags.need(rest, 1, verb)
    container, record = existing(ctx.root, rest[0])
    status = container.status(record)
    want = ocistate.RUNNING if frozen else ocistate.PAUSED
    if status != want or record is None:
        raise OciError("container not running" if frozen else "container not paused")
    group = cgroup.open_group(record)
    if group is None:
        raise OciError(f"container {container.id} has no cgroup to freeze")
    try:
        group.freeze() if frozen else group.thaw()
    finally:
        group.close()
    return 0


def cmd_pause(ctx: Context, argv: list[str]) -> int:
    return _freeze(ctx, argv, "pause", True)


def cmd_resume(ctx: Context, argv: list[str]) -> int:
    return _freeze(ctx, argv, "resume", False)


def wait_and_delete(ctx: Context, made: Created, keep: bool) -> int:
    """``run`` in the foreground: forward signals, wait for the init (our child), then delete
    the container (unless ``keep``); the exit status, 128+n for signal n."""
    from nsrun.host.spawn import next_stop
    from nsrun.runtime.forward import Forward

    with Forward(made.pidfd, FORWARDED):
        failure = None
        if made.report_fd >= 0:
            try:
                next_stop(made.request, made.report_fd)
            except Exception as err:  # noqa: BLE001 - reported after the reaping
                failure = err
        info = os.waitid(os.P_PIDFD, made.pidfd, os.WEXITED)
    if not keep:
        destroy(ctx, made.container, made.record, made.config)
    if failure is not None:
        raise failure
    from nsrun.exitstatus import exit_code

    return exit_code(info)
