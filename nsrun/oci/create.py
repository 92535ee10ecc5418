"""``create`` and ``run``: a container from a bundle, its init waiting right before ``execve``.

``create ID [--bundle B] [--pid-file F] [--console-socket S] [--preserve-fds N]``: the bundle's
config.json becomes a spawn request through the pods' own reader (``nsrun.bundle.oci``,
``nsrun.bundle.security``): namespaces, mounts, pivot_root, credentials, capabilities,
seccomp and cgroup are all done by the C child, which then waits on ``exec.fifo``
(``csrc/oci.c``). The init is a child of the caller's process tree (conmon and containerd's
shim are child subreapers and reap it); nothing of nsrun stays behind. The pid file (the
init's host pid) is written before ``create`` returns; on any failure nothing is left (no
process, cgroup or state). The init joins a new session keyring named ``_ses.<ID>`` (as
runc's), unless ``--no-new-keyring``. ``--no-pivot`` is accepted: nsrun always pivots.

``run ID [--bundle B] [--detach] ...``: create, then start; in the foreground it passes the
signals it gets to the container, waits for it, deletes it (runc's ``run``) and exits with
its status (128+n for signal n).
"""

from __future__ import annotations

import os

from nsrun.errors import BundleError, OciError, SpawnError
from nsrun.oci import args as flags
from nsrun.oci import hooks
from nsrun.oci.log import rfc3339_now
from nsrun.oci.state import CONFIG_FILE, FIFO, Container, Created, start_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nsrun.oci.main import Context

CREATE_FLAGS = {
    "--bundle": ("bundle", flags.STR), "-b": ("bundle", flags.STR),
    "--pid-file": ("pid_file", flags.STR), "--console-socket": ("console_socket", flags.STR),
    "--no-pivot": ("no_pivot", flags.BOOL), "--no-new-keyring": ("no_new_keyring", flags.BOOL),
    "--preserve-fds": ("preserve_fds", flags.INT), "--pidfd-socket": ("pidfd_socket", flags.STR),
}
RUN_FLAGS = {**CREATE_FLAGS, "--detach": ("detach", flags.BOOL), "-d": ("detach", flags.BOOL),
             "--keep": ("keep", flags.BOOL), "--no-subreaper": ("no_subreaper", flags.BOOL)}
SUPPORTED_OCI = ("1.0.", "1.1.", "1.2.")


def load_config(bundle: str) -> tuple[dict, bytes]:
    """The bundle's config.json, parsed and its ``ociVersion`` checked (runc's messages)."""
    from nsrun import jsonlite

    try:
        with open(f"{bundle}/config.json", "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise OciError("JSON specification file config.json not found") from None
    except OSError as err:
        raise OciError(f"{bundle}/config.json: {err.strerror}") from None
    try:
        config = jsonlite.loads(raw)
    except ValueError as err:
        raise OciError(f"{bundle}/config.json: invalid JSON: {err}") from None
    if not isinstance(config, dict):
        raise OciError(f"{bundle}/config.json: not a JSON object")
    version = config.get("ociVersion")
    if not isinstance(version, str) or not version.startswith(SUPPORTED_OCI):
        raise OciError(f"{bundle}/config.json: unsupported ociVersion {version!r} (nsrun-oci "
                       "runs 1.0.x to 1.2.x)")
    return config, raw


def start_failure(err: SpawnError, argv0: str, what: str) -> OciError:
    """runc's wording (``what``: ``exec failed``, ``nsrun-oci create failed``), which podman
    and containerd map to exit codes 127 (not found) and 126 (not executable)."""
    import errno

    head = f"{what}: unable to start container process"
    if err.step == "execve" and err.errno in (errno.ENOENT, errno.ENOTDIR):
        return OciError(f'{head}: exec: "{argv0}": executable file not found in $PATH')
    if err.step == "execve" and err.errno == errno.EACCES:
        return OciError(f'{head}: exec: "{argv0}": permission denied')
    notes = "".join(f" ({n})" for n in getattr(err, "__notes__", ()))
    return OciError(f"{head}: {err}{notes}")


class Undo:
    """What a failed create takes back, last first."""

    def __init__(self) -> None:
        self.steps: list = []

    def __call__(self, step) -> None:
        self.steps.append(step)

    def run(self) -> None:
        for step in reversed(self.steps):
            try:
                step()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass


def _kill_child(pid: int, pidfd: int) -> None:
    import signal

    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    os.close(pidfd)


def connect_console(path: str) -> int:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise OciError(f"connect to console socket {path}: {err.strerror}") from None
    return sock.detach()


def fill_preserved(count: int) -> None:
    """fds 3..3+count-1 are the caller's to pass on; a hole gets /dev/null so that no fd of
    ours lands there."""
    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open("/dev/null", os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _stdio() -> tuple[int, int, int]:
    """Our fds 0-2 go to the container untouched (the shim's pipes); a closed one is
    /dev/null there."""
    out = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            out.append(fd)
        except OSError:
            out.append(-1)
    return out[0], out[1], out[2]


def _plan(config: dict, bundle: str):
    from pathlib import Path

    from nsrun.bundle import oci as bundle_oci

    try:
        return bundle_oci.plan(config, Path(bundle), command=None, args=None, env=[],
                               working_dir=None, volume_mounts=[])
    except BundleError as err:
        raise OciError(str(err).replace(f"{bundle}/", "")) from None


def _terminal(config: dict, console_socket: str | None) -> bool:
    terminal = bool((config.get("process") or {}).get("terminal"))
    if terminal and not console_socket:
        raise OciError("cannot allocate tty if nsrun-oci will detach without setting "
                       "console socket")
    if console_socket and not terminal:
        raise OciError("cannot use console socket if nsrun-oci will not detach or allocate "
                       "tty")
    return terminal


def create(ctx: Context, cid: str, opts: dict) -> Created:
    """Create container ``cid`` (see the module docstring); ``OciError`` and nothing left
    behind otherwise."""
    container = Container(ctx.root, cid)
    bundle = os.path.abspath(opts["bundle"] or ".")
    config, raw = load_config(bundle)
    _terminal(config, opts["console_socket"])
    os.makedirs(ctx.root, mode=0o711, exist_ok=True)
    try:
        os.mkdir(container.dir, 0o711)
    except FileExistsError:
        raise OciError(f"container with id exists: {cid}") from None
    undo = Undo()
    undo(lambda: _remove_dir(container))
    container.lock()
    try:
        return _create(ctx, container, bundle, config, raw, opts, undo)
    except BaseException:
        undo.run()
        raise


def _remove_dir(container: Container) -> None:
    from nsrun.files import remove_tree

    remove_tree(container.dir)


def _create(ctx: Context, container: Container, bundle: str, config: dict, raw: bytes,
            opts: dict, undo: Undo) -> Created:
    from nsrun import native
    from nsrun.bundle.oci import spawn_request
    from nsrun.host.spawn import next_stop, spawn_stopped
    from nsrun.oci import cgroup, namespaces

    plan = _plan(config, bundle)
    ns = namespaces.resolve(config, ctx.root)
    undo(ns.close)
    if config.get("hostname") and "uts" not in ns.new and "uts" not in ns.join:
        raise OciError("unable to set hostname without a private UTS namespace")
    cg_record, group = cgroup.create(config, container.id, ctx.systemd_cgroup, ctx.log)
    undo(lambda: cgroup.remove({"cgroup": cg_record}))
    if group is not None:
        undo(group.close)
    clone_fd, join_fds = (group.clone_fd, group.join_fds) if group else (-1, ())
    if group is not None:  # the allow-list, with linux.resources.devices (core.devices)
        cgroup.set_devices(group, plan.confinement.device_policy, container.id)
    os.mkfifo(container.path(FIFO), 0o600)
    fifo_fd = os.open(container.path(FIFO), os.O_RDWR | os.O_CLOEXEC)
    undo(lambda: os.close(fifo_fd))
    console_fd = connect_console(opts["console_socket"]) if opts["console_socket"] else -1
    if console_fd >= 0:
        undo(lambda: os.close(console_fd))
    preserve = max(0, opts["preserve_fds"] or 0)
    fill_preserved(preserve)
    early = any(hooks.of(config, s) for s in (*hooks.CREATE_STAGES, "createContainer"))
    req = spawn_request(plan, join_ns=ns.join, cgroup_fd=clone_fd, cgroup_join_fds=join_fds,
                        stdio=_stdio(),
                        new_pid_ns=ns.new_pid, console_fd=console_fd, preserve_fds=preserve,
                        stops=native.NSR_STOP_START | (native.NSR_STOP_HOOKS if early else 0),
                        stop_fd=fifo_fd, session_keyring=None if opts["no_new_keyring"]
                        else f"_ses.{container.id}")
    try:
        pid, pidfd, report_fd, stop = spawn_stopped(req)
    except SpawnError as err:
        raise start_failure(err, plan.argv[0], "nsrun-oci create failed") from None
    undo(lambda: _kill_child(pid, pidfd))
    if report_fd >= 0:
        undo(lambda: os.close(report_fd))
    record = {"ociVersion": config["ociVersion"], "id": container.id, "pid": pid,
              "start_time": start_time(pid), "bundle": bundle, "rootfs": plan.rootfs,
              "created": rfc3339_now(), "annotations": config.get("annotations") or {},
              "owner": "", "cgroup": cg_record}
    if stop == "stop_hooks":
        _early_hooks(config, record, pid, pidfd, group, ctx)
        os.write(fifo_fd, b"g")
        try:
            stop = next_stop(req, report_fd)
        except SpawnError as err:
            raise start_failure(err, plan.argv[0], "nsrun-oci create failed") from None
    if stop != "wait_start":
        raise OciError(f"container init did not wait for start (at {stop or 'execve'})")
    with open(container.path(CONFIG_FILE), "wb") as f:
        f.write(raw)
    container.write_record(record)
    if opts["pid_file"]:
        from nsrun.files import write_atomic

        write_atomic(os.path.abspath(opts["pid_file"]), str(pid).encode(), durable=False)
    ns.close()
    os.close(fifo_fd)
    if console_fd >= 0:
        os.close(console_fd)
    if group is not None:
        group.close()
    return Created(container, config, record, req, pidfd, report_fd)


def _early_hooks(config: dict, record: dict, pid: int, pidfd: int, group: object,
                 ctx: Context) -> None:
    from nsrun.core.ocistate import CREATING, state_document

    state = state_document(record, CREATING)
    for stage in hooks.CREATE_STAGES:
        hooks.run(config, stage, state, ctx.log)
    hooks.run(config, "createContainer", state, ctx.log, pid=pid, pidfd=pidfd, group=group)


def cmd_create(ctx: Context, argv: list[str]) -> int:
    opts, rest = flags.parse(argv, CREATE_FLAGS)
    flags.need(rest, 1, "create")
    create(ctx, rest[0], opts)
    return 0


def cmd_run(ctx: Context, argv: list[str]) -> int:
    from nsrun.oci import lifecycle

    opts, rest = flags.parse(argv, RUN_FLAGS)
    flags.need(rest, 1, "run")
    if not opts["detach"] and opts["console_socket"]:
        raise OciError("nsrun-oci run in the foreground relays no terminal: use --detach "
                       "with --console-socket")
    made = create(ctx, rest[0], opts)
    try:
        lifecycle.start(ctx, made.container, made.record, made.config, pidfd=made.pidfd)
    except BaseException:
        lifecycle.destroy(ctx, made.container, made.record, made.config)
        raise
    if opts["detach"]:
        return 0
    return lifecycle.wait_and_delete(ctx, made, keep=bool(opts["keep"]))
