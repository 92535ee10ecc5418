"""``nsrun exec POD [-c CONTAINER] [-t] -- CMD...``: run a command in a running container,
with ``kubectl exec`` semantics.

The command joins every namespace of the container's init (mount, pid, network, IPC, UTS, and
cgroup when it has its own), starts in the container's cgroup, and gets what the container
got: user, groups, capabilities, no_new_privs, seccomp filter, rlimits, umask, env and working
directory (``host.execin.exec_in``). Its stdio is the caller's (``-t``: a pty this process relays
to its terminal); the exit code is the command's, 128+n when a signal ends it. SIGINT,
SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to ``nsrun exec`` are passed on to it.

Where things come from (the pod's state dir, ``nsrun.state``):

* ``pod.json``: the manifest; the container's confinement is rebuilt from it and the image
  store exactly as the launcher built it for the container (``launcher.build_plan`` and
  ``launcher.request``);
* ``status.json``: whether the container is running (the error names its state otherwise);
* ``pids.json`` (``{"<container>": <pid>}``, written by the supervisor) for the container's
  init; without it, the init is found in the container's cgroup leaf (the ``cgroup`` file
  names the pod's cgroup): the process there that is pid 1 of its own pid namespace;
* ``runtime.json`` (``{"images": ..., "secrets": ..., "configmaps": ...}``, written by the
  supervisor): the image store and secret/configMap dirs the pod was started with. Without
  it: the arguments, else the defaults (``NSRUN_IMAGES``, ``NSRUN_SECRETS``, ...).

The init must be a child of the pod's supervisor (``supervisor.pid``): a pid that was reused
by an unrelated process is refused.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
from pathlib import Path
from typing import Any

from nsrun.errors import NsrunError, SpawnError, StateError
from nsrun.runtime.forward import Forward

PIDS_FILE = "pids.json"
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"
EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND = 126, 127  # as a shell (and docker exec) reports them


class ExecError(StateError):
    """The pod or the container cannot be exec'd into (exit code 4)."""


class ContainerNotFound(ExecError):
    """No container of that name in the pod."""


class ContainerNotRunning(ExecError):
    """The pod or the container is not running."""


class CommandError(NsrunError):
    """The command could not be started in the container: exit code 127 when it was not
    found, 126 otherwise (as a shell reports it)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def exec_in_pod(state_root: Any, pod_name: str, container_name: str | None,
                argv: list[str], tty: bool = False, *, images: str | None = None,
                secrets: str | None = None, configmaps: str | None = None,
                stdio: tuple[int, int, int] = (0, 1, 2)) -> int:
    """Run ``argv`` in container ``container_name`` (None: the pod's default container) of
    the running pod ``pod_name`` under ``state_root``; returns the command's exit code
    (128+n for signal n). ``images``/``secrets``/``configmaps``: used when the pod's
    ``runtime.json`` does not name them. ``ExecError`` subclasses when the pod or container
    cannot be reached, ``CommandError`` when the command cannot be started."""
    from nsrun.state import StateRoot

    if not argv:
        raise ExecError("you must specify at least one command for the container")
    root = state_root if isinstance(state_root, StateRoot) else StateRoot(Path(state_root))
    paths = root.existing(pod_name)
    pod = _load_pod(paths)
    container = _choose_container(pod, container_name)
    name = container.name
    pid = _running_pid(paths, pod_name, name)
    pidfd = _open_target(paths, pod_name, name, pid)
    cgroup = None
    try:
        cgroup = _open_cgroup(paths, pid)
        base = _container_request(paths, pod, container, images, secrets, configmaps)
        if tty:
            return _exec_tty(pid, pidfd, base, argv, cgroup, pod_name, name)
        return _exec_plain(pid, pidfd, base, argv, cgroup, stdio, pod_name, name)
    finally:
        if cgroup is not None:
            cgroup.close()
        os.close(pidfd)


# ---- which process ------------------------------------------------------------------------


def _load_pod(paths) -> Any:
    import msgspec

    from nsrun.core.spec import Pod

    try:
        return msgspec.json.decode(paths.manifest.read_bytes(), type=Pod)
    except FileNotFoundError:
        raise ContainerNotRunning(f'pod "{paths.name}" has no manifest yet (starting?)') \
            from None
    except msgspec.DecodeError as err:
        raise ExecError(f"{paths.manifest}: {err}") from None


def _choose_container(pod: Any, name: str | None) -> Any:
    every = list(pod.spec.containers) + list(pod.spec.init_containers)
    if name is None:
        name = pod.metadata.annotations.get(DEFAULT_CONTAINER_ANNOTATION) or \
            pod.spec.containers[0].name
        if len(every) > 1:
            names = [c.name for c in pod.spec.containers] + \
                [f"{c.name} (init)" for c in pod.spec.init_containers]
            print(f'Defaulted container "{name}" out of: {", ".join(names)}', file=sys.stderr)
    for c in every:
        if c.name == name:
            return c
    raise ContainerNotFound(f'container "{name}" not found in pod "{pod.metadata.name}" '
                            f"(containers: {', '.join(c.name for c in every)})")


def _container_state(paths, name: str) -> tuple[str, dict[str, Any]]:
    """(phase, the container's ``state``) from status.json ("" and {} when unknown)."""
    from nsrun.report import statusfile

    pod = statusfile.read(paths) or {}
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + \
            (status.get("containerStatuses") or []):
        if cs.get("name") == name:
            return status.get("phase", ""), cs.get("state") or {}
    return status.get("phase", ""), {}


def _not_running(paths, pod_name: str, name: str) -> ContainerNotRunning:
    phase, state = _container_state(paths, name)
    if phase in ("Succeeded", "Failed"):
        return ContainerNotRunning("cannot exec into a container in a completed pod; "
                                   f"current phase is {phase}")
    detail = ""
    if "waiting" in state:
        detail = f" (waiting: {state['waiting'].get('reason', '')})"
    elif "terminated" in state:
        t = state["terminated"]
        detail = f" (terminated: {t.get('reason', '')}, exit code {t.get('exitCode')})"
    return ContainerNotRunning(f'container "{name}" in pod "{pod_name}" is not running{detail}')


def _running_pid(paths, pod_name: str, name: str) -> int:
    from nsrun.state import supervisor_alive

    if not supervisor_alive(paths):
        phase, _ = _container_state(paths, name)
        if phase in ("Succeeded", "Failed"):
            raise _not_running(paths, pod_name, name)
        raise ContainerNotRunning(f'pod "{pod_name}" is not running (no supervisor)')
    _, state = _container_state(paths, name)
    if "running" not in state:
        raise _not_running(paths, pod_name, name)
    pid = _recorded_pid(paths, name) or _pid_in_leaf(paths, name)
    if not pid:
        raise ContainerNotRunning(f'container "{name}" in pod "{pod_name}": its process was '
                                  f"not found (no {PIDS_FILE}, no cgroup leaf)")
    return pid


def _recorded_pid(paths, name: str) -> int:
    import json

    try:
        value = json.loads((paths.pids).read_bytes()).get(name)
    except (OSError, ValueError, AttributeError):
        return 0
    if isinstance(value, dict):
        value = value.get("pid")
    return value if isinstance(value, int) and value > 0 else 0


def _nspid(pid: int) -> list[int]:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(p) for p in line.split()[1:]]
    return [pid]


def _pid_in_leaf(paths, name: str) -> int:
    """The init of the container: in its cgroup leaf, pid 1 of a pid namespace of its own."""
    from nsrun.report.stateread import cgroup_record

    try:
        pod_cgroup = cgroup_record(paths)[0]  # any hierarchy
        procs = (Path(pod_cgroup) / name / "cgroup.procs").read_text().split()
    except (OSError, IndexError):
        return 0
    for p in procs:
        try:
            ns = _nspid(int(p))
        except (OSError, ValueError):
            continue
        if len(ns) > 1 and ns[-1] == 1:
            return int(p)
    return 0


def _open_target(paths, pod_name: str, name: str, pid: int) -> int:
    """A pidfd of the container's init, checked to be the process its monitor started for
    the latest attempt (the pid and start time in the monitor's record; alive after the
    pidfd was opened: so the check was about this very process)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise _not_running(paths, pod_name, name) from None
    try:
        if not _is_recorded(paths, name, pid):
            raise ExecError(f'container "{name}" in pod "{pod_name}": process {pid} is not '
                            f"the pod's (stale {PIDS_FILE}?)")
        signal.pidfd_send_signal(pidfd, 0)
    except (ProcessLookupError, FileNotFoundError):
        os.close(pidfd)
        raise _not_running(paths, pod_name, name) from None
    except BaseException:
        os.close(pidfd)
        raise
    return pidfd


def _is_recorded(paths, name: str, pid: int) -> bool:
    from nsrun.host.monitor import latest_record, start_ticks

    rec = latest_record(paths.records / name)
    return rec is not None and rec.pid == pid and rec.exit_code is None and \
        rec.start_ticks == start_ticks(pid)


def _open_cgroup(paths, pid: int):
    """The cgroups ``pid`` is in below the pod's recorded ones (the ``cgroup`` file), opened
    for the new process (``cgroupdriver.Group``); ``NO_GROUP`` without any."""
    from nsrun.host import cgroupdriver
    from nsrun.report.stateread import cgroup_record

    record = cgroup_record(paths)
    group = cgroupdriver.group_of(pid, record) if record else None
    return group if group is not None else cgroupdriver.NO_GROUP


# ---- what the process gets ------------------------------------------------------------------


def _runtime_dirs(paths, images: str | None, secrets: str | None,
                  configmaps: str | None) -> tuple[str, str, str]:
    from nsrun.host import sandbox
    from nsrun.report.stateread import record
    from nsrun.state import DEFAULT_IMAGES

    recorded = record(paths.runtime, dict[str, str], "the defaults are used") or {}
    return (recorded.get("images") or images or os.environ.get("NSRUN_IMAGES") or
            DEFAULT_IMAGES,
            recorded.get("secrets") or secrets or sandbox.secrets_dir(),
            recorded.get("configmaps") or configmaps or sandbox.configmaps_dir())


def _volume_paths(pod: Any, paths) -> dict[str, str]:
    """Where each volume lives on the host, as ``Sandbox.create`` put it (nothing is made)."""
    out = {}
    for v in pod.spec.volumes:
        if v.host_path is not None:
            out[v.name] = v.host_path.path
        else:
            out[v.name] = str(paths.volume(v.name))
    return out


def _container_request(paths, pod: Any, container: Any, images: str | None,
                       secrets: str | None, configmaps: str | None):
    """The container's SpawnRequest, rebuilt the way the launcher built it."""
    import contextlib
    import io

    from nsrun.bundle.images import ImageStore
    from nsrun.errors import BundleError
    from nsrun.host.sandbox import Sandbox
    from nsrun.runtime import launcher

    images_dir, secrets_dir, configmaps_dir = _runtime_dirs(paths, images, secrets,
                                                            configmaps)
    from nsrun.runtime.podnetwork import read_record

    net = read_record(paths)  # the downward API's status.podIP/hostIP, as the container got
    sandbox = Sandbox(ns_fds={}, volume_paths=_volume_paths(pod, paths), pod=pod,
                      secrets_dir=secrets_dir, configmaps_dir=configmaps_dir,
                      pod_ip=net.ip if net else "", host_ip=net.host_ip if net else "")
    try:
        bundle = launcher.resolve_bundle(ImageStore(images_dir), container.image)
        # the bundle's warnings were shown when the container started
        with contextlib.redirect_stderr(io.StringIO()):
            plan = launcher.build_plan(pod, container, bundle, sandbox)
        return launcher.request(plan, sandbox, -1, -1)
    except launcher.ImageMissing:
        raise ExecError(f'container "{container.name}": image "{container.image}" is not '
                        f"in the image store {images_dir} any more") from None
    except BundleError as err:
        raise ExecError(f'container "{container.name}": {err}') from None


# ---- running it ---------------------------------------------------------------------------


def _start(pid: int, pidfd: int, base, argv: list[str], cgroup,
           stdio: tuple[int, int, int], pod_name: str, name: str,
           console_fd: int = -1) -> tuple[int, int]:
    from nsrun.host.execin import exec_in
    from nsrun.request import ExecRequest

    req = ExecRequest.from_spawn(base, argv, cgroup_fd=cgroup.clone_fd,
                                        cgroup_join_fds=cgroup.join_fds, stdin_fd=stdio[0],
                                        stdout_fd=stdio[1], stderr_fd=stdio[2],
                                        console_fd=console_fd)
    try:
        return exec_in(pid, pidfd, req)
    except SpawnError as err:
        if err.step == "setns" and err.errno == errno.ESRCH:
            raise ContainerNotRunning(f'container "{name}" in pod "{pod_name}" is not '
                                      "running") from None
        where = f'container "{name}" in pod "{pod_name}"'
        if err.step == "execve":
            code = EXIT_NOT_FOUND if err.errno in (errno.ENOENT, errno.ENOTDIR) \
                else EXIT_CANNOT_EXECUTE
            what = "executable file not found in $PATH" if code == EXIT_NOT_FOUND \
                else os.strerror(err.errno)
            raise CommandError(f'exec "{argv[0]}" in {where}: {what}', code) from None
        raise CommandError(f"exec in {where}: {err}", EXIT_CANNOT_EXECUTE) from None


def _exit_code(pidfd: int) -> int:
    info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    assert info is not None
    from nsrun.exitstatus import exit_code

    return exit_code(info)


def _exec_plain(pid: int, pidfd: int, base, argv: list[str], cgroup,
                stdio: tuple[int, int, int], pod_name: str, name: str) -> int:
    _, child = _start(pid, pidfd, base, argv, cgroup, stdio, pod_name, name)
    try:
        with Forward(child):
            return _exit_code(child)
    finally:
        os.close(child)


def _exec_tty(pid: int, pidfd: int, base, argv: list[str], cgroup, pod_name: str,
              name: str) -> int:
    """The command on a pty of the container's devpts (its master sent back to us over a
    socket pair); this process relays its terminal (raw mode) to it."""
    import termios
    import tty

    from nsrun.host import console

    ours, theirs = console.pair()
    try:
        try:
            _, child = _start(pid, pidfd, base, argv, cgroup, (-1, -1, -1), pod_name, name,
                              console_fd=theirs)
        finally:
            os.close(theirs)
        master, _ = console.receive(ours)
    finally:
        os.close(ours)
    try:
        term = next((fd for fd in (0, 1) if os.isatty(fd)), -1)
        if term >= 0:
            console.copy_winsize(term, master)
        saved = termios.tcgetattr(0) if os.isatty(0) else None
        try:
            if saved is not None:
                tty.setraw(0)
            resize = {signal.SIGWINCH: lambda *_: console.copy_winsize(term, master)} \
                if term >= 0 else {}
            with Forward(child, extra=resize):
                console.relay(master, child)
                return _exit_code(child)
        finally:
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
            os.close(child)
    finally:
        os.close(master)
