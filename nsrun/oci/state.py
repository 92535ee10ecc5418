"""A container's state directory under ``--root`` and the host facts its status comes from.

Layout (``<root>/<id>/``, ``--root`` default ``/run/nsrun/oci``)::

    state.json   the record written once the create finished: pid and its start time
                 (the pid's identity), bundle, rootfs, created, annotations, and the
                 cgroups (``{"driver": "v2"|"v1"|"none", "dirs": {...}}``, ``oci.cgroup``)
    config.json  the bundle's config.json as created (exec defaults, hooks at start/delete)
    exec.fifo    exists while the init waits for ``start`` (it reads its go byte from it)

The directory itself is the lock: ``create`` holds an exclusive ``flock`` on it until the
record is written, every verb that changes the container takes it too. The status is derived
each time (``nsrun.core.ocistate.derive_status``), never stored.
"""

from __future__ import annotations

import errno
import fcntl
import os

from nsrun import jsonlite
from nsrun.core import ocistate
from nsrun.errors import OciError
from nsrun.files import write_atomic
from nsrun.oci import cgroup

DEFAULT_ROOT = "/run/nsrun/oci"
STATE_FILE, CONFIG_FILE, FIFO = "state.json", "config.json", "exec.fifo"


def start_time(pid: int) -> int | None:
    """The start time (clock ticks after boot) of ``pid``, None when it is not running (gone
    or a zombie). With the pid, it names one process for the life of the host."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Container:
    """One container's state directory (which may not exist)."""

    def __init__(self, root: str, container_id: str) -> None:
        problem = ocistate.id_problem(container_id)
        if problem:
            raise OciError(problem)
        self.id, self.root = container_id, root
        self.dir = f"{root}/{container_id}"
        self.lock_fd = -1

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def record(self) -> dict | None:
        """The record written at create, None before (or when it is unreadable)."""
        try:
            with open(self.path(STATE_FILE), "rb") as f:
                data = jsonlite.loads(f.read())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_record(self, record: dict) -> None:
        """Atomic, not durable (no ``fsync``), as runc writes its ``state.json``: what it
        names (processes, namespaces, cgroups) does not outlive the machine."""
        write_atomic(self.path(STATE_FILE), jsonlite.dumps(record).encode(), durable=False)

    def config(self) -> dict:
        """The config.json the container was created with."""
        try:
            with open(self.path(CONFIG_FILE), "rb") as f:
                return jsonlite.loads(f.read())
        except (OSError, ValueError) as err:
            raise OciError(f"container {self.id}: cannot read its config: {err}") from None

    # ---- locking

    def lock(self, blocking: bool = True) -> bool:
        """Take the container's exclusive lock (held until :meth:`unlock` or exit); False
        when ``blocking`` is off and another process holds it."""
        if self.lock_fd < 0:
            try:
                self.lock_fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise OciError("container does not exist") from None
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return True

    def unlock(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def _locked_by_other(self) -> bool:
        try:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError as err:
            return err.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
        finally:
            os.close(fd)

    # ---- status

    def alive(self, record: dict) -> bool:
        """The recorded init is running (the same process: pid and start time)."""
        pid = record.get("pid", 0)
        return bool(pid) and start_time(pid) == record.get("start_time")

    def status(self, record: dict | None) -> str:
        if record is None:
            return ocistate.derive_status(recorded=False, creating=self._locked_by_other(),
                                          alive=False, waiting=False, frozen=False)
        alive = self.alive(record)
        return ocistate.derive_status(
            recorded=True, creating=False, alive=alive,
            waiting=alive and os.path.exists(self.path(FIFO)),
            frozen=alive and cgroup.frozen(record))


def existing(root: str, container_id: str) -> tuple[Container, dict | None]:
    """The container and its record; ``OciError`` "container does not exist" otherwise."""
    c = Container(root, container_id)
    if not c.exists():
        raise OciError("container does not exist")
    return c, c.record()


def container_ids(root: str) -> list[str]:
    try:
        return sorted(n for n in os.listdir(root) if ocistate.id_problem(n) is None and
                      os.path.isdir(f"{root}/{n}"))
    except FileNotFoundError:
        return []


class Created:
    """A created container: its init waits on the FIFO (``pidfd`` ours until we exit)."""

    def __init__(self, container: Container, config: dict, record: dict, request: object,
                 pidfd: int, report_fd: int) -> None:
        self.container, self.config, self.record = container, config, record
        self.request, self.pidfd, self.report_fd = request, pidfd, report_fd
