"""``exec ID [flags] [CMD ARG…]``: a new process in a running container (``runc exec``).

The process comes from ``--process FILE`` (a runtime-spec ``process`` object, as shims pass
it) or from the container's own ``process`` with ``CMD ARG…``, ``--env K=V`` (added),
``--cwd``, ``--user UID[:GID]``, ``--additional-gids``, ``--cap`` (added), ``--no-new-privs``
and ``--tty``. Its confinement is computed by the same code as the container's
(``nsrun.bundle.security.confine`` over the container's config with this process; seccomp
from the container's ``linux.seccomp``), and the C path that joins a container
(``host.execin.exec_in``) starts it in the container's namespaces and cgroup, as a child of the
caller. ``--console-socket``: its pty (of the container's devpts) goes there; ``--tty``
without one: ``nsrun-oci`` relays it. ``--detach`` returns once it runs (``--pid-file``
holds its pid); otherwise the exit status is its own (128+n for signal n).
"""

from __future__ import annotations

import errno
import os

from nsrun.errors import OciError, SpawnError
from nsrun.oci import args as flags
from nsrun.oci.state import existing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nsrun.oci.main import Context

EXEC_FLAGS = {
    "--process": ("process", flags.STR), "-p": ("process", flags.STR),
    "--detach": ("detach", flags.BOOL), "-d": ("detach", flags.BOOL),
    "--pid-file": ("pid_file", flags.STR), "--tty": ("tty", flags.BOOL),
    "-t": ("tty", flags.BOOL), "--console-socket": ("console_socket", flags.STR),
    "--cwd": ("cwd", flags.STR), "--env": ("env", flags.LIST), "-e": ("env", flags.LIST),
    "--user": ("user", flags.STR), "-u": ("user", flags.STR),
    "--additional-gids": ("gids", flags.LIST), "-g": ("gids", flags.LIST),
    "--cap": ("caps", flags.LIST), "-c": ("caps", flags.LIST),
    "--no-new-privs": ("no_new_privs", flags.BOOL), "--preserve-fds": ("preserve_fds", flags.INT),
    "--process-label": ("label", flags.STR), "--apparmor": ("apparmor", flags.STR),
    "--ignore-paused": ("ignore_paused", flags.BOOL), "--cgroup": ("cgroup", flags.LIST),
    "--pidfd-socket": ("pidfd_socket", flags.STR),
}


def _load_process(path: str) -> dict:
    from nsrun import jsonlite

    try:
        return jsonlite.load_object(path)
    except (OSError, ValueError) as err:
        raise OciError(f"process {path}: {err}") from None


def _process(config: dict, opts: dict, argv: list[str]) -> dict:
    """The process to run, runc's way: ``--process`` as given, else the container's with
    the command line's changes."""
    if opts["process"]:
        return _load_process(opts["process"])
    if not argv:
        raise OciError("exec: no command given (arguments or --process)")
    process = dict(config.get("process") or {})
    process["args"] = argv
    process["terminal"] = bool(opts["tty"])
    process["env"] = [*(process.get("env") or []), *opts["env"]]
    if opts["cwd"]:
        process["cwd"] = opts["cwd"]
    user = dict(process.get("user") or {})
    if opts["user"]:
        uid, _, gid = opts["user"].partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise OciError(f"invalid --user {opts['user']!r}: UID[:GID] in numbers")
        user["uid"], user["gid"] = int(uid), int(gid or 0)
    if opts["gids"]:
        user["additionalGids"] = [int(g) for g in opts["gids"]]
    process["user"] = user
    if opts["caps"]:
        caps = {k: list(v) for k, v in (process.get("capabilities") or {}).items()}
        for name in ("bounding", "effective", "permitted"):
            caps[name] = [*caps.get(name, []), *opts["caps"]]
        process["capabilities"] = caps
    if opts["no_new_privs"]:
        process["noNewPrivileges"] = True
    return process


def request(config: dict, process: dict, group: object, console_fd: int,
            preserve: int):
    """The :class:`~nsrun.request.ExecRequest` for ``process`` in a container made from
    ``config``."""
    from nsrun.bundle import security
    from nsrun.errors import BundleError
    from nsrun.request import ExecRequest

    try:
        c = security.confine({**config, "process": process}, "process")
    except BundleError as err:
        raise OciError(str(err)) from None
    argv = process.get("args")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise OciError("process.args: a non-empty array of strings is needed")
    return ExecRequest(
        argv=argv, env=[str(e) for e in process.get("env") or []],
        cwd=process.get("cwd") or "/", uid=c.uid, gid=c.gid, additional_gids=c.additional_gids,
        capabilities=c.capabilities, no_new_privs=c.no_new_privileges,
        seccomp_bpf=c.seccomp.bpf if c.seccomp else b"",
        seccomp_flags=c.seccomp.flags if c.seccomp else 0, rlimits=c.rlimits,
        umask=-1 if c.umask is None else c.umask, oom_score_adj=c.oom_score_adj,
        cgroup_fd=getattr(group, "clone_fd", -1),
        cgroup_join_fds=getattr(group, "join_fds", ()), stdin_fd=0, stdout_fd=1, stderr_fd=2,
        console_fd=console_fd,
        preserve_fds=preserve)


def _target(ctx: Context, cid: str, ignore_paused: bool) -> tuple:
    from nsrun.core import ocistate

    container, record = existing(ctx.root, cid)
    status = container.status(record)
    if status == ocistate.PAUSED and not ignore_paused:
        raise OciError("cannot exec in a paused container (use --ignore-paused to override)")
    if record is None or status not in (ocistate.RUNNING, ocistate.CREATED, ocistate.PAUSED):
        raise OciError("cannot exec in a stopped container")
    return container, record


def cmd_exec(ctx: Context, argv: list[str]) -> int:
    from nsrun.oci.create import connect_console, fill_preserved
    from nsrun.oci.lifecycle import open_pidfd

    opts, rest = flags.parse(argv, EXEC_FLAGS)
    flags.need(rest, 1, "exec", exact=False)
    container, record = _target(ctx, rest[0], bool(opts["ignore_paused"]))
    process = _process(container.config(), opts, rest[1:])
    terminal = bool(process.get("terminal"))
    if opts["console_socket"] and not terminal:
        raise OciError("cannot use console socket if nsrun-oci will not detach or allocate tty")
    if terminal and opts["detach"] and not opts["console_socket"]:
        raise OciError("cannot allocate tty if nsrun-oci will detach without setting console "
                       "socket")
    preserve = max(0, opts["preserve_fds"] or 0)
    fill_preserved(preserve)
    from nsrun.oci import cgroup

    pidfd = open_pidfd(record)
    group = cgroup.open_group(record)
    ours = theirs = -1
    try:
        if terminal:
            if opts["console_socket"]:
                theirs = connect_console(opts["console_socket"])
            else:
                from nsrun.host import console

                ours, theirs = console.pair()
        req = request(container.config(), process, group, theirs, preserve)
        child = _start(record, pidfd, req)
    finally:
        for fd in (theirs, pidfd):
            if fd >= 0:
                os.close(fd)
        if group is not None:
            group.close()
    if opts["pid_file"]:
        from nsrun.files import write_atomic

        write_atomic(os.path.abspath(opts["pid_file"]), str(child[0]).encode(), durable=False)
    if opts["detach"]:
        return 0
    return _wait(child[1], ours)


def _start(record: dict, pidfd: int, req) -> tuple[int, int]:
    from nsrun.host.execin import exec_in

    try:
        return exec_in(record["pid"], pidfd, req)
    except SpawnError as err:
        if err.step == "setns" and err.errno == errno.ESRCH:
            raise OciError("cannot exec in a stopped container") from None
        from nsrun.oci.create import start_failure

        raise start_failure(err, req.argv[0], "exec failed") from None


def _wait(child_pidfd: int, console_sock: int) -> int:
    """Forward signals to the process, relay its terminal (``console_sock``: ours to read
    the master from), wait for it; its exit status."""
    from nsrun.oci.lifecycle import FORWARDED
    from nsrun.runtime.forward import Forward

    master = -1
    try:
        if console_sock >= 0:
            from nsrun.host import console

            master, _ = console.receive(console_sock)
        with Forward(child_pidfd, FORWARDED):
            if master >= 0:
                from nsrun.host import console

                console.relay(master, child_pidfd)
            info = os.waitid(os.P_PIDFD, child_pidfd, os.WEXITED)
    finally:
        for fd in (master, console_sock, child_pidfd):
            if fd >= 0:
                os.close(fd)
    from nsrun.exitstatus import exit_code

    return exit_code(info)
