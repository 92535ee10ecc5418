"""A container's cgroups: where ``linux.cgroupsPath`` puts them, their values, and the
``cgroupdriver.Group`` that pause, resume, ps, kill --all, update and delete act on.

The kind of hierarchy is the pods' choice (``cgroupdriver.auto_kind``): cgroup v2 when the
cgroup2 mount holds the controllers (the container starts in its directory:
``CLONE_INTO_CGROUP``), cgroup v1 on a hybrid or legacy host (a directory in each hierarchy
the v1 driver uses: cpu, cpuacct, memory, pids, freezer, devices; the init joins them before
``execve``, as runc does), none without either. The path, in each hierarchy:

* ``--systemd-cgroup`` and ``slice:prefix:name``: ``/<slice tree>/<prefix>-<name>.scope``
  (``a-b.slice`` is ``a.slice/a-b.slice``), as systemd would place it (no unit is made);
* an absolute ``cgroupsPath``: from the root of the hierarchy;
* a relative one, or none (then ``<id>``): below the caller's own cgroup, as runc does.

``linux.resources`` become v2 or v1 files (``core.ociresources``); what the host cannot
enforce (no such controller or hierarchy) is logged as a warning. The record kept in
``state.json``: ``{"driver": "v2"|"v1"|"none", "dirs": {controller or "": directory}}``.
"""

from __future__ import annotations

import os

from nsrun.errors import CgroupError, OciError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from nsrun.oci.log import Log

NO_CGROUP = {"driver": "none", "dirs": {}}


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


def spec_path(config: dict, container_id: str, systemd: bool) -> tuple[str, bool]:
    """``(path, absolute)``: the container's cgroup path and whether it starts at the root
    of each hierarchy (else at the caller's own cgroup there)."""
    spec = (config.get("linux") or {}).get("cgroupsPath") or ""
    if not isinstance(spec, str):
        raise OciError("config.json: linux.cgroupsPath: expected a string")
    if systemd and spec:
        return _systemd_path(spec), True
    path = spec or container_id
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts) or not parts:
        raise OciError(f"config.json: linux.cgroupsPath: invalid path {spec!r}")
    return "/" + "/".join(parts), spec.startswith("/")


def relative_path(config: dict, container_id: str, systemd: bool) -> str:
    """The container's cgroup2 path, absolute within the hierarchy."""
    path, absolute = spec_path(config, container_id, systemd)
    return path if absolute else own_cgroup().rstrip("/") + path


def _kind():
    from nsrun.host import cgroupdriver
    from nsrun.host.cgroupfs import CgroupFs
    from nsrun.host.preflight import CgroupHost

    host, fs = CgroupHost.probe(), CgroupFs()
    return host, fs, cgroupdriver.auto_kind(host, fs)[0]


def create(config: dict, container_id: str, systemd: bool, log: Log):
    """Make (or reuse) the container's cgroups and write their values: ``(record, group)``;
    the group (None without cgroups) gives ``clone_fd``/``join_fds`` to the spawn and is
    closed by the caller, who removes the cgroups (:func:`remove`) on failure."""
    from nsrun.core import ociresources

    host, fs, kind = _kind()
    resources = (config.get("linux") or {}).get("resources")
    label = f"container {container_id}"
    try:
        if kind == "v2":
            values = ociresources.v2_values(resources)
            record, group, skipped = _create_v2(host, fs, config, container_id, systemd,
                                                values, label, log)
        elif kind == "v1":
            values = ociresources.v1_values(resources)
            if (resources or {}).get("unified"):
                log.warning("linux.resources.unified: cgroup v2 files, not applied on "
                            "cgroup v1")
            record, group, skipped = _create_v1(host, config, container_id, systemd,
                                                values, label)
        else:
            log.warning("no usable cgroup hierarchy: the container gets no cgroup")
            return dict(NO_CGROUP), None
    except ValueError as err:
        raise OciError(f"config.json: {err}") from None
    for name in skipped:
        log.warning(f"linux.resources: {name}={values[name]} not enforced: no such "
                    f"controller for this container's cgroup ({kind})")
    return record, group


def _create_v2(host, fs, config, container_id, systemd, values, label, log):
    from pathlib import Path

    from nsrun.host.cgroupfs import controller_of

    rel = relative_path(config, container_id, systemd)
    wanted = {controller_of(n) for n in values} - {"cgroup"}
    available, path = wanted, Path(str(host.mount))
    for part in rel.strip("/").split("/"):
        if available:
            cg = fs.open(path)
            try:
                available = fs.enable(cg, available)
            except CgroupError as err:
                log.warning(f"cannot enable controllers in {path}: {err}")
                available = set()
            finally:
                cg.close()
        path = path / part
        if not path.is_dir():
            fs.mkdir(path, label)
    group = fs.open(path, label)
    try:
        skipped = group.write_values(values, available | {"cgroup"})
    except BaseException:
        group.close()
        raise
    return {"driver": "v2", "dirs": {"": str(path)}}, group, skipped


def _create_v1(host, config, container_id, systemd, values, label):
    from pathlib import Path

    from nsrun.host.cgroupdriver import v1_hierarchies
    from nsrun.host.cgroupv1fs import V1Fs
    from nsrun.host.podcgroupv1 import V1Group

    fs = V1Fs()
    rel, absolute = spec_path(config, container_id, systemd)
    dirs = {}
    for c in v1_hierarchies(host):
        base = host.v1[c] if absolute else (host.v1_own_cgroup(c) or host.v1[c])
        dirs[c] = Path(str(base) + rel)
    for path in dict.fromkeys(dirs.values()):
        missing = [p for p in [path, *path.parents] if not p.is_dir()]
        for p in reversed(missing):
            fs.mkdir(p, label)
    group = V1Group(fs, dirs, label)
    try:
        skipped = group.write_values(values)
    except BaseException:
        group.close()
        raise
    return {"driver": "v1", "dirs": {c: str(p) for c, p in dirs.items()}}, group, skipped


def set_devices(group, policy, container_id: str) -> None:
    """The device allow-list (``linux.resources.devices`` and the defaults, ``core.devices``)
    on the container's cgroup: a BPF program on v2, the devices controller on v1."""
    try:
        group.set_devices(policy)
    except CgroupError as err:
        raise OciError(f"container {container_id}: device cgroup: {err}") from None


def open_group(record: dict):
    """The container's ``cgroupdriver.Group`` from its record; None without cgroups (or
    when they are gone)."""
    from pathlib import Path

    cg = record.get("cgroup") or NO_CGROUP
    dirs = {c: Path(p) for c, p in (cg.get("dirs") or {}).items()}
    try:
        if cg.get("driver") == "v2" and "" in dirs:
            from nsrun.host.cgroupfs import CgroupFs

            return CgroupFs().open(dirs[""])
        if cg.get("driver") == "v1" and dirs:
            from nsrun.host.cgroupv1fs import V1Fs
            from nsrun.host.podcgroupv1 import V1Group

            return V1Group(V1Fs(), {c: p for c, p in dirs.items() if p.is_dir()})
    except CgroupError:
        return None
    return None


def remove(record: dict) -> None:
    """Kill what is left in the container's cgroups and remove them."""
    from pathlib import Path

    cg = record.get("cgroup") or NO_CGROUP
    dirs = [Path(p) for p in dict.fromkeys((cg.get("dirs") or {}).values())]
    if not any(p.is_dir() for p in dirs):
        return
    group = open_group(record)
    if group is not None:
        try:
            if group.pids():
                group.kill()
        finally:
            group.close()
    if cg["driver"] == "v2":
        from nsrun.host.cgroupfs import CgroupFs

        fs = CgroupFs()
    else:
        from nsrun.host.cgroupv1fs import V1Fs

        fs = V1Fs()
    for path in dirs:
        fs.remove(path)


def frozen(record: dict) -> bool:
    """The container's cgroup is frozen (read directly: ``state`` calls this every time)."""
    cg = record.get("cgroup") or NO_CGROUP
    dirs = cg.get("dirs") or {}
    try:
        if cg.get("driver") == "v2" and "" in dirs:
            with open(f"{dirs['']}/cgroup.freeze", "rb") as f:
                return f.read().strip() == b"1"
        if cg.get("driver") == "v1" and "freezer" in dirs:
            with open(f"{dirs['freezer']}/freezer.state", "rb") as f:
                return f.read().strip() in (b"FROZEN", b"FREEZING")
    except OSError:
        return False
    return False


def has_cgroup(record: dict) -> bool:
    return (record.get("cgroup") or NO_CGROUP).get("driver", "none") != "none"


def signal_all(record: dict, sig: int) -> None:
    """``sig`` to every process of the container's cgroups (SIGKILL: the group's atomic
    kill)."""
    import signal

    group = open_group(record)
    if group is None:
        return
    try:
        if sig == signal.SIGKILL:
            group.kill()
            return
        for pid in group.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    finally:
        group.close()
