"""A container's cgroup: where ``linux.cgroupsPath`` puts it, its values, and what pause,
resume, ps, kill --all, update and delete do to it.

The container runs in a cgroup2 directory (the unified hierarchy: ``/sys/fs/cgroup``, or
``/sys/fs/cgroup/unified`` on a hybrid host), entered at clone (``CLONE_INTO_CGROUP``):
``cgroup.freeze`` pauses it, ``cgroup.procs`` lists it, ``cgroup.kill`` ends it. Its path:

* ``--systemd-cgroup`` and ``slice:prefix:name``: ``/<slice tree>/<prefix>-<name>.scope``
  (``a-b.slice`` is ``a.slice/a-b.slice``), as systemd would place it (no unit is made);
* an absolute ``cgroupsPath``: under the cgroup2 mount;
* a relative one, or none (then ``<id>``): under the cgroup of the caller, as runc does.

``linux.resources`` are written where the hierarchy has the controller (enabled in the
parents' ``subtree_control`` on the way); what cannot be enforced is logged as a warning
(``runc`` would use the v1 hierarchies of a hybrid host for those).
"""

from __future__ import annotations

import os

from nsrun.errors import OciError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nsrun.oci.log import Log


def own_cgroup() -> str:
    """The caller's cgroup2 path (``0::`` of /proc/self/cgroup), "/" when unknown."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip() or "/"
    except OSError:
        pass
    return "/"


def _systemd_path(spec: str) -> str:
    parts = spec.split(":")
    if len(parts) != 3:
        raise OciError(f"expected cgroupsPath to be of format \"slice:prefix:name\" for "
                       f"systemd cgroups, got \"{spec}\" instead")
    slice_, prefix, name = parts
    slice_ = slice_ or "system.slice"
    tree, base = [], slice_.removesuffix(".slice")
    for i in range(len(base.split("-"))):
        tree.append("-".join(base.split("-")[: i + 1]) + ".slice")
    unit = f"{prefix}-{name}.scope" if prefix else name
    return "/" + "/".join([*tree, unit]) if slice_ != "-.slice" else "/" + unit


def relative_path(config: dict, container_id: str, systemd: bool) -> str:
    """The container's cgroup path, absolute within the hierarchy."""
    spec = (config.get("linux") or {}).get("cgroupsPath") or ""
    if not isinstance(spec, str):
        raise OciError("config.json: linux.cgroupsPath: expected a string")
    if systemd and spec:
        return _systemd_path(spec)
    if spec.startswith("/"):
        path = spec
    else:
        path = own_cgroup().rstrip("/") + "/" + (spec or container_id)
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts) or not parts:
        raise OciError(f"config.json: linux.cgroupsPath: invalid path {spec!r}")
    return "/" + "/".join(parts)


def _enable_down(mount: str, rel: str, wanted: set[str], log: Log) -> set[str]:
    """Enable ``wanted`` controllers from the mount down to the leaf's parent (creating the
    parents); returns what the leaf gets."""
    from pathlib import Path

    from nsrun.errors import CgroupError
    from nsrun.host import cgroupfs

    have = wanted
    path = Path(mount)
    for part in rel.strip("/").split("/")[:-1] + [None]:
        if have:
            cg = cgroupfs.Cgroup.open(path)
            try:
                have = cgroupfs.enable(cg, have)
            except CgroupError as err:
                log.warning(f"cannot enable controllers in {path}: {err}")
                have = set()
            finally:
                cg.close()
        if part is None:
            return have
        path = path / part
        if not path.is_dir():
            cgroupfs.Cgroup.create(path).close()
    return have


def create(config: dict, container_id: str, systemd: bool, log: Log) -> tuple[str, int]:
    """Make (or reuse) the container's cgroup and write its values: ``(directory, dirfd)``,
    ``("", -1)`` without a cgroup2 hierarchy. The caller removes it on failure."""
    from pathlib import Path

    from nsrun.core.ociresources import v2_values
    from nsrun.host import cgroupfs

    mount = cgroupfs.find_cgroup2_mount()
    if mount is None:
        log.warning("no cgroup2 hierarchy: the container gets no cgroup of its own")
        return "", -1
    try:
        values = v2_values((config.get("linux") or {}).get("resources"))
    except ValueError as err:
        raise OciError(f"config.json: {err}") from None
    rel = relative_path(config, container_id, systemd)
    wanted = {cgroupfs.controller_of(name) for name in values} - {"cgroup"}
    available = _enable_down(mount, rel, wanted, log)
    path = Path(mount + rel)
    cg = cgroupfs.Cgroup.create(path, f"container {container_id}")
    try:
        skipped = cg.write_values(values, available | {"cgroup"})
    except BaseException:
        cg.close()
        raise
    for name in skipped:
        log.warning(f"linux.resources: {name}={values[name]} not enforced: no "
                    f"{cgroupfs.controller_of(name)} controller in {path.parent}")
    return str(path), cg.fd


def remove(directory: str) -> None:
    """Remove the container's cgroup (what is left in it is killed first)."""
    if not directory or not os.path.isdir(directory):
        return
    from pathlib import Path

    from nsrun.host import cgroupfs

    cg = cgroupfs.Cgroup.open(Path(directory))
    try:
        if cg.populated():
            cg.kill()
    finally:
        cg.close()
    cgroupfs.remove(Path(directory))


def pids(directory: str) -> list[int]:
    """Every process in the container's cgroup and below."""
    out: list[int] = []
    for top, _dirs, _files in os.walk(directory):
        try:
            with open(f"{top}/cgroup.procs") as f:
                out += [int(p) for p in f.read().split()]
        except OSError:
            continue
    return out


def freeze(directory: str, frozen: bool, timeout: float = 5.0) -> None:
    """``cgroup.freeze``, then wait until ``cgroup.events`` says the cgroup got there."""
    import time

    _write(directory, "cgroup.freeze", "1" if frozen else "0")
    want = f"frozen {int(frozen)}"
    deadline = time.monotonic() + timeout
    while True:
        with open(f"{directory}/cgroup.events") as f:
            if want in f.read().splitlines():
                return
        if time.monotonic() > deadline:
            raise OciError(f"{directory}: the cgroup did not get {'frozen' if frozen else 'thawed'}"
                           f" within {timeout:g} s")
        time.sleep(0.001)


def kill_all(directory: str, sig: int) -> None:
    """``sig`` to every process of the cgroup (SIGKILL: ``cgroup.kill``, atomic)."""
    import signal

    if sig == signal.SIGKILL and os.path.exists(f"{directory}/cgroup.kill"):
        _write(directory, "cgroup.kill", "1")
        return
    for pid in pids(directory):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _write(directory: str, name: str, value: str) -> None:
    try:
        fd = os.open(f"{directory}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise OciError(f"write {directory}/{name}: {err.strerror} (value {value!r})") from None
