"""The pod sandbox: the shared network, IPC and UTS namespaces, and the pod's volumes.

The namespaces are held by fds (no bind mount under /run/netns): they live exactly as long as
the supervisor keeps the fds open or a container runs in them. ``lo`` is up and the hostname
is the pod's. Volumes: ``emptyDir`` is a directory in the pod's state dir (``medium: Memory``
mounts a tmpfs there), ``hostPath`` is the host path; containers see them through binds.

``secret`` and ``configMap`` volumes are materialized from files the user provides, one
directory per object and one file per key (the file's bytes are the value, not base64)::

    <secrets dir>/<secretName>/<key>        --secrets DIR     (NSRUN_SECRETS,
                                                               default /etc/nsrun/secrets)
    <configmaps dir>/<name>/<key>           --configmaps DIR  (NSRUN_CONFIGMAPS,
                                                               default /etc/nsrun/configmaps)

Each such volume is its own tmpfs under the pod's state dir (``volumes/<volume>``), written
before any container starts, with ``items`` (key → path, mode) and ``defaultMode`` applied
(``fsGroup``: group-owned and group-readable, as the kubelet does). A container sees it only
if one of its ``volumeMounts`` names it, and always read-only; every other container has its
own mount namespace rooted in its image, where the tmpfs does not exist. The same files
answer ``env[].valueFrom.secretKeyRef`` / ``configMapKeyRef``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec

from nsrun.core.spec import Container, Pod, Volume
from nsrun.errors import SandboxError
from nsrun.state import PodPaths

SHM_OPTIONS = "mode=1777,size=65536k"  # the kubelet's 64 MiB default (nosuid, nodev)
DEFAULT_SECRETS_DIR, DEFAULT_CONFIGMAPS_DIR = "/etc/nsrun/secrets", "/etc/nsrun/configmaps"
MAX_OBJECT_BYTES = 1024 * 1024  # the API server's limit for one Secret or ConfigMap
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def secrets_dir() -> str:
    return DEFAULT_SECRETS_DIR


def configmaps_dir() -> str:
    return DEFAULT_CONFIGMAPS_DIR


class Sandbox(msgspec.Struct):
    """The pod's namespaces (fds) and volume sources (host paths)."""

    ns_fds: dict[str, int]
    volume_paths: dict[str, str]
    read_only_volumes: set[str] = msgspec.field(default_factory=set)
    tmpfs_mounts: list[str] = msgspec.field(default_factory=list)
    pod: Pod | None = None
    secrets_dir: str = DEFAULT_SECRETS_DIR
    configmaps_dir: str = DEFAULT_CONFIGMAPS_DIR
    pause_pid: int = 0
    pause_pidfd: int = -1
    shm_path: str = ""
    pod_ip: str = ""
    host_ip: str = ""
    managed_mounts: list[dict[str, Any]] = msgspec.field(default_factory=list)
    service_links: Any = None  # () -> Service env variables, read at each container start
    outlive: bool = False  # the pause process outlives the supervisor (a pod cgroup finds it)

    @classmethod
    def create(cls, pod: Pod, paths: PodPaths, *, secrets: str | None = None,
               configmaps: str | None = None, cgroup_fd: int = -1,
               outlive: bool = False) -> Sandbox:
        """Volumes first (a missing secret fails before any namespace exists), then the
        namespaces. ``secrets``/``configmaps`` (``--secrets``/``--configmaps``) default to
        ``/etc/nsrun/{secrets,configmaps}``."""
        self = cls(ns_fds={}, volume_paths={}, pod=pod,
                   secrets_dir=secrets or secrets_dir(),
                   configmaps_dir=configmaps or configmaps_dir(), outlive=outlive)
        try:
            for volume in pod.spec.volumes:
                self.volume_paths[volume.name] = self._prepare(volume, paths)
            self._pod_shm(paths)
            self.new_namespaces(cgroup_fd)
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def attach(cls, pod: Pod, paths: PodPaths, pause_pid: int, pause_pidfd: int, *,
               secrets: str | None = None, configmaps: str | None = None) -> Sandbox:
        """The sandbox of a live pause process (a new supervisor re-attaching): its
        namespaces, and the volumes as the first supervisor left them (mounted, filled)."""
        from nsrun.host import nsfds

        self = cls(ns_fds={}, volume_paths={}, pod=pod, secrets_dir=secrets or secrets_dir(),
                   configmaps_dir=configmaps or configmaps_dir(), outlive=True,
                   pause_pid=pause_pid, pause_pidfd=pause_pidfd, shm_path=str(paths.shm))
        self.tmpfs_mounts.append(self.shm_path)
        for volume in pod.spec.volumes:
            path = str(paths.volume(volume.name))
            if volume.host_path is not None:
                path = _host_path(volume)
            elif volume.secret is not None or volume.config_map is not None:
                self.read_only_volumes.add(volume.name)
                self.tmpfs_mounts.append(path)
            elif volume.empty_dir is not None and volume.empty_dir.medium == "Memory":
                self.tmpfs_mounts.append(path)
            self.volume_paths[volume.name] = path
        self.ns_fds = nsfds.of_process(pause_pid)
        return self

    def _pod_shm(self, paths: PodPaths) -> None:
        """One /dev/shm for the whole pod, as the kubelet gives its sandbox: the containers
        share the IPC namespace, so POSIX shared memory must be shared too."""
        from nsrun.host import mounts

        path = paths.shm
        path.mkdir(exist_ok=True)
        mounts.mount_tmpfs(str(path), SHM_OPTIONS)
        self.tmpfs_mounts.append(str(path))
        self.shm_path = str(path)

    def new_namespaces(self, cgroup_fd: int = -1) -> None:
        """Fresh network, IPC and UTS namespaces held by a pause process (as the kubelet's
        sandbox is; with ``hostNetwork`` only IPC is fresh, network and UTS are the node's):
        when it dies the sandbox is lost and the pod starts over. The old ones, if any, are
        released; volumes are kept."""
        from nsrun.host import nsfds

        assert self.pod is not None
        hostname = (self.pod.spec.hostname or self.pod.metadata.name)[:64]
        if self.pod.spec.host_network:
            hostname = None  # the node's network and UTS namespaces, as the kubelet's
        fresh = nsfds.create_sandbox(hostname, keep=True, cgroup_fd=cgroup_fd,
                                     outlive=self.outlive)
        self._release_namespaces()
        self.pause_pid, self.pause_pidfd = fresh.pop("pid"), fresh.pop("pidfd")
        self.ns_fds = fresh

    def pause_died(self) -> None:
        """Reap the dead pause process (its pidfd polled readable)."""
        if self.pause_pidfd >= 0:
            try:
                os.waitid(os.P_PIDFD, self.pause_pidfd, os.WEXITED)
            except ChildProcessError:
                pass  # re-attached: not our child (init reaps it)
            os.close(self.pause_pidfd)
            self.pause_pidfd, self.pause_pid = -1, 0

    def _release_namespaces(self) -> None:
        import signal

        for fd in self.ns_fds.values():
            os.close(fd)
        self.ns_fds = {}
        if self.pause_pidfd >= 0:
            try:
                signal.pidfd_send_signal(self.pause_pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pause_died()

    def _prepare(self, volume: Volume, paths: PodPaths) -> str:
        if volume.empty_dir is not None:
            return self._empty_dir(volume, paths)
        if volume.host_path is not None:
            return _host_path(volume)
        if volume.secret is not None or volume.config_map is not None:
            return self._key_volume(volume, paths)
        raise SandboxError(f'volume "{volume.name}": only emptyDir, hostPath, secret and '
                           "configMap volumes are implemented in this version")

    def _empty_dir(self, volume: Volume, paths: PodPaths) -> str:
        path = paths.volume(volume.name)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)  # like the kubelet: any container user may write
        if volume.empty_dir is not None and volume.empty_dir.medium == "Memory":
            from nsrun.host import mounts

            size = _bytes(volume.empty_dir.size_limit)
            mounts.mount_tmpfs(str(path), f"mode=777{f',size={size}' if size else ''}")
            self.tmpfs_mounts.append(str(path))
        return str(path)

    # -- secret and configMap volumes ------------------------------------------------------

    def _key_volume(self, volume: Volume, paths: PodPaths) -> str:
        """A pod-owned tmpfs holding the object's keys as files (see the module doc)."""
        from nsrun.host import mounts

        kind, name, source = _key_source(volume)
        fail = f'MountVolume.SetUp failed for volume "{volume.name}" :'
        keys = self.read_object(kind, name)
        if keys is None:
            if not source.optional:
                raise SandboxError(f'{fail} {kind.lower()} "{name}" not found (nsrun reads '
                                   f"{self._base(kind)}/{name}/<key>)")
            keys = {}
        files = _files(volume, kind, keys, source, fail)
        path = paths.volume(volume.name)
        path.mkdir(parents=True, exist_ok=True)
        pages = sum(len(data) // 4096 + 1 for _, data, _ in files)
        mounts.mount_tmpfs(str(path), f"mode=755,size={(pages + 16) * 4096},"
                                      f"nr_inodes={2 * len(files) + 16}")
        self.tmpfs_mounts.append(str(path))
        fs_group = self.pod.spec.security_context.fs_group if (
            self.pod and self.pod.spec.security_context) else None
        for rel, data, mode in files:
            _write_key(path, rel, data, mode, fs_group)
        if fs_group is not None:
            os.chown(path, 0, fs_group)
            os.chmod(path, 0o2755)
        self.read_only_volumes.add(volume.name)
        return str(path)

    def _base(self, kind: str) -> str:
        return self.secrets_dir if kind == "Secret" else self.configmaps_dir

    def read_object(self, kind: str, name: str) -> dict[str, bytes] | None:
        """The keys of Secret or ConfigMap ``name`` (None when it has no directory)."""
        if not _NAME.match(name or ""):
            raise SandboxError(f'{kind.lower()} name "{name}": not a valid object name')
        base = Path(self._base(kind)) / name
        try:
            entries = sorted(os.scandir(base), key=lambda e: e.name)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise SandboxError(f"read {kind.lower()}", str(base), err.errno or 0) from None
        keys, total = {}, 0
        for entry in entries:
            if not _KEY.match(entry.name) or entry.name in (".", "..") or not entry.is_file():
                continue  # not a key (a subdirectory, an editor's backup~)
            try:
                with open(entry.path, "rb") as f:
                    keys[entry.name] = f.read(MAX_OBJECT_BYTES + 1)
            except OSError as err:
                raise SandboxError(f"read {kind.lower()} key", entry.path,
                                   err.errno or 0) from None
            total += len(keys[entry.name])
            if total > MAX_OBJECT_BYTES:
                raise SandboxError(f'{kind.lower()} "{name}" ({base}): more than '
                                   f"{MAX_OBJECT_BYTES} bytes")
        return keys

    def key_refs(self, container: Container) -> dict[tuple[str, str, str], str]:
        """Values for the container's ``secretKeyRef``/``configMapKeyRef`` env entries
        (``expand.container_env``'s ``key_refs``); a missing one is left out."""
        refs: dict[tuple[str, str, str], str] = {}
        for var in container.env or ():
            source = var.value_from
            if source is None:
                continue
            for kind, ref in (("secret", source.secret_key_ref),
                              ("configMap", source.config_map_key_ref)):
                if ref is None or not ref.name:
                    continue
                try:
                    keys = self.read_object("Secret" if kind == "secret" else "ConfigMap",
                                            ref.name)
                except SandboxError:
                    keys = None
                if keys and ref.key in keys:
                    refs[(kind, ref.name, ref.key)] = keys[ref.key].decode(errors="replace")
        return refs

    # -- what a container sees -------------------------------------------------------------

    def mounts_for(self, container: Container, env: dict[str, str] | None = None
                   ) -> list[dict[str, Any]]:
        """OCI bind mounts of the container's ``volumeMounts``, in manifest order, then the
        files the kubelet writes (``managed_mounts``: /etc/hosts, /etc/resolv.conf, the
        service account) where the container mounts nothing itself. A ``subPath`` (or
        ``subPathExpr`` expanded with ``env``) is resolved inside its volume by the spawn
        path, never following a symlink out of it."""
        from nsrun.request import SUB_PATH_KEY

        mounts = []
        for vm in container.volume_mounts or []:
            source = self.volume_paths[vm.name]
            read_only = vm.read_only or vm.name in self.read_only_volumes
            mount = {"destination": vm.mount_path, "type": "bind", "source": source,
                     "options": ["rbind", "ro" if read_only else "rw"]}
            sub_path = vm.sub_path
            if vm.sub_path_expr:
                from nsrun.core import expand

                sub_path = expand.expand_sub_path_expr(vm.sub_path_expr, env or {})
            if sub_path:
                mount[SUB_PATH_KEY] = sub_path
            mounts.append(mount)
        if self.shm_path and not any(m["destination"] == "/dev/shm" for m in mounts):
            mounts.insert(0, {"destination": "/dev/shm", "type": "bind", "source": self.shm_path,
                              "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]})
        own = {m["destination"] for m in mounts}
        return mounts + [m for m in self.managed_mounts if m["destination"] not in own]

    def close(self) -> None:
        """Release the namespaces and unmount memory-backed volumes."""
        from nsrun.host import mounts

        self._release_namespaces()
        for path in self.tmpfs_mounts:
            mounts.umount(path)
        self.tmpfs_mounts = []


def _bytes(limit: str | int | None) -> int | None:
    """``sizeLimit`` (a quantity such as ``64Mi``) in bytes, as tmpfs's ``size=`` wants."""
    if limit is None:
        return None
    from nsrun.core.quantity import parse_json_quantity

    return parse_json_quantity(limit).value()


def _key_source(volume: Volume) -> tuple[str, str, Any]:
    if volume.secret is not None:
        return "Secret", volume.secret.secret_name or "", volume.secret
    assert volume.config_map is not None
    return "ConfigMap", volume.config_map.name or "", volume.config_map


def _files(volume: Volume, kind: str, keys: dict[str, bytes], source: Any,
           fail: str) -> list[tuple[str, bytes, int]]:
    """(relative path, bytes, mode) of every file of the volume: ``items`` or every key."""
    default_mode = 0o644 if source.default_mode is None else source.default_mode
    if not source.items:
        return [(key, data, default_mode) for key, data in keys.items()]
    out = []
    for i, item in enumerate(source.items):
        parts = item.path.split("/")
        if not item.path or item.path.startswith("/") or any(p in ("", ".", "..")
                                                             for p in parts):
            raise SandboxError(f'volume "{volume.name}": items[{i}].path "{item.path}": must '
                               "be a relative path without '..'")
        if item.key not in keys:
            if source.optional:
                continue
            what = "secret" if kind == "Secret" else "configmap"
            raise SandboxError(f"{fail} {what} references non-existent {what} key: "
                               f"{item.key}")
        out.append((item.path, keys[item.key], default_mode if item.mode is None
                    else item.mode))
    return out


def _write_key(root: Path, rel: str, data: bytes, mode: int, fs_group: int | None) -> None:
    """One file in the fresh tmpfs (never through a symlink, never over a file)."""
    path = root / rel
    for parent in reversed(path.relative_to(root).parents[:-1]):
        d = root / parent
        if not d.is_dir():
            d.mkdir(mode=0o755)
            if fs_group is not None:
                os.chown(d, 0, fs_group)
                os.chmod(d, 0o2755)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if fs_group is not None:
            os.fchown(fd, 0, fs_group)
            mode |= 0o440  # the kubelet's read-only mask for an fsGroup
        os.fchmod(fd, mode & 0o777)
    finally:
        os.close(fd)


def _host_path(volume: Volume) -> str:
    assert volume.host_path is not None
    path, kind = volume.host_path.path, volume.host_path.type or ""
    if kind == "DirectoryOrCreate":
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif kind == "FileOrCreate" and not os.path.exists(path):
        Path(path).touch(mode=0o644)
    checks = {"Directory": os.path.isdir, "File": os.path.isfile,
              "Socket": lambda p: Path(p).is_socket(), "CharDevice": lambda p: Path(p).is_char_device(),
              "BlockDevice": lambda p: Path(p).is_block_device()}
    if kind in checks and not checks[kind](path):
        raise SandboxError(f'volume "{volume.name}": hostPath {path} is not a {kind}')
    if not os.path.exists(path):
        raise SandboxError(f'volume "{volume.name}": hostPath', path, 2)
    return path
