"""The state directory: where each pod's files live, as a path calculator, plus a pod lock.

Layout under ``--root`` (default ``/run/nsrun``)::

    pods/<name>/pod.json            the manifest as accepted (JSON)
    pods/<name>/pod.next.json       an update from ``nsrun apply``, until the supervisor adopts it
    pods/<name>/status.json         the whole Pod with status, written atomically
    pods/<name>/events.jsonl        one event per line
    pods/<name>/supervisor.pid      pid of the pod's supervisor
    pods/<name>/supervisor.log      the detached supervisor's own stderr
    pods/<name>/supervisor.json     how the CLI asked the pod to be supervised (runtime.options)
    pods/<name>/lock                flock held by the supervisor while it runs
    pods/<name>/delete-grace        grace period asked by ``delete --grace-period``
    pods/<name>/volumes/<volume>/   emptyDir volumes
    pods/<name>/logs/<container>/<attempt>.log   one log per attempt (kubelet naming)

Every file is a :class:`PodPaths` property; who writes and reads each one, and the signals
between the CLI, the supervisor and the containers, are in ``nsrun.runtime.protocol``.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import msgspec

from nsrun.errors import AlreadyExists, HostError, NotFound
from nsrun.files import remove_tree, write_atomic, write_atomic_all  # noqa: F401 (re-exported)

DEFAULT_ROOT = "/run/nsrun"
DEFAULT_IMAGES = "/var/lib/nsrun/images"


class PodPaths(msgspec.Struct, frozen=True):
    """Paths of one pod's state."""

    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    manifest = property(lambda self: self.dir / "pod.json")
    next_manifest = property(lambda self: self.dir / "pod.next.json")
    status = property(lambda self: self.dir / "status.json")
    events = property(lambda self: self.dir / "events.jsonl")
    pidfile = property(lambda self: self.dir / "supervisor.pid")
    supervisor_log = property(lambda self: self.dir / "supervisor.log")
    handoff = property(lambda self: self.dir / "supervisor.json")
    lockfile = property(lambda self: self.dir / "lock")
    grace_override = property(lambda self: self.dir / "delete-grace")
    volumes = property(lambda self: self.dir / "volumes")
    logs = property(lambda self: self.dir / "logs")
    cgroup_record = property(lambda self: self.dir / "cgroup")
    sandbox_pid = property(lambda self: self.dir / "sandbox.pid")
    runtime = property(lambda self: self.dir / "runtime.json")
    pids = property(lambda self: self.dir / "pids.json")
    network = property(lambda self: self.dir / "network.json")
    hosts = property(lambda self: self.dir / "etc-hosts")
    resolv_conf = property(lambda self: self.dir / "resolv.conf")
    service_account = property(lambda self: self.dir / "serviceaccount")
    shm = property(lambda self: self.dir / "shm")
    termination = property(lambda self: self.dir / "termination")
    observed = property(lambda self: self.dir / "observed.json")
    initialized = property(lambda self: self.dir / "initialized")
    records = property(lambda self: self.dir / "containers")

    def termination_file(self, container: str, attempt: int) -> Path:
        return self.termination / container / str(attempt)

    def record(self, container: str, attempt: int) -> Path:
        """The monitor's durable record of one attempt (pids, exit status, finish time)."""
        return self.records / container / f"{attempt}.json"

    def volume(self, name: str) -> Path:
        return self.volumes / name

    def log(self, container: str, attempt: int) -> Path:
        return self.logs / container / f"{attempt}.log"

    def attempts(self, container: str) -> list[int]:
        """Attempt numbers with a log file, oldest first."""
        try:
            names = os.listdir(self.logs / container)
        except FileNotFoundError:
            return []
        return sorted(int(n[:-4]) for n in names if n.endswith(".log") and n[:-4].isdigit())


class StateRoot(msgspec.Struct, frozen=True):
    """The whole state directory."""

    root: Path

    def pod(self, name: str) -> PodPaths:
        return PodPaths(self.root / "pods" / name)

    def pod_names(self) -> list[str]:
        try:
            return sorted(os.listdir(self.root / "pods"))
        except FileNotFoundError:
            return []

    def existing(self, name: str) -> PodPaths:
        """The pod's paths, or ``StateError`` when no such pod exists."""
        paths = self.pod(name)
        if not paths.dir.is_dir():
            raise NotFound("pods", name)
        return paths

    def create(self, name: str) -> PodPaths:
        """Make a new pod dir, or ``StateError`` if the pod already exists."""
        paths = self.pod(name)
        paths.dir.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
        try:
            paths.dir.mkdir(mode=0o711)
        except FileExistsError:
            raise AlreadyExists("pods", name) from None
        return paths


def link_logs(paths: PodPaths, log_dir: str, namespace: str, uid: str) -> None:
    """``logs`` as a symlink to the pod's own directory under ``--log-dir``, named as the
    kubelet names it (``<namespace>_<name>_<uid>``); ``HostError`` when it cannot be made."""
    target = Path(log_dir) / f"{namespace}_{paths.name}_{uid}"
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o750)
        os.symlink(target, paths.logs)
    except OSError as err:
        raise HostError(f"--log-dir {log_dir}: cannot make {target}: {err.strerror}") from None


def remove_pod(paths: PodPaths) -> None:
    """The pod's state directory, and the log directory its ``logs`` link names (only one
    named as :func:`link_logs` names it: a link that was tampered with removes nothing)."""
    try:
        target = os.readlink(paths.logs)
    except OSError:
        target = ""
    parts = os.path.basename(target).split("_")
    if len(parts) == 3 and parts[1] == paths.name and os.path.isabs(target):
        remove_tree(target)
    remove_tree(paths.dir)


class PodLock:
    """An exclusive flock on the pod's lock file, held by its supervisor while it runs."""

    def __init__(self, paths: PodPaths) -> None:
        self.fd = os.open(paths.lockfile, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    @classmethod
    def of_fd(cls, fd: int) -> PodLock:
        """The lock held through ``fd`` (passed down by the CLI that took it)."""
        os.set_inheritable(fd, False)
        lock = cls.__new__(cls)
        lock.fd = fd
        return lock

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise

    def close(self) -> None:
        os.close(self.fd)


def supervisor_alive(paths: PodPaths) -> bool:
    """True while some process holds the pod's lock (its supervisor)."""
    if not paths.lockfile.exists():
        return False
    lock = PodLock(paths)
    try:
        return not lock.try_acquire()
    finally:
        lock.close()
