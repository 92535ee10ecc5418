"""The pod sandbox: the shared network, IPC and UTS namespaces, and the pod's volumes.

The namespaces are held by fds (no bind mount under /run/netns): they live exactly as long as
the supervisor keeps the fds open or a container runs in them. ``lo`` is up and the hostname
is the pod's. Volumes: ``emptyDir`` is a directory in the pod's state dir (``medium: Memory``
mounts a tmpfs there), ``hostPath`` is the host path; containers see them through binds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nsrun.core.spec import Container, Pod, Volume
from nsrun.errors import SandboxError
from nsrun.state import PodPaths


@dataclass
class Sandbox:
    """The pod's namespaces (fds) and volume sources (host paths)."""

    ns_fds: dict[str, int]
    volume_paths: dict[str, str]
    read_only_volumes: set[str] = field(default_factory=set)
    tmpfs_mounts: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, pod: Pod, paths: PodPaths) -> Sandbox:
        from nsrun.host import native

        hostname = pod.spec.hostname or pod.metadata.name
        self = cls(ns_fds={}, volume_paths={})
        try:
            for volume in pod.spec.volumes:
                self.volume_paths[volume.name] = self._prepare(volume, paths)
            self.ns_fds = native.create_sandbox(hostname[:64])
        except BaseException:
            self.close()
            raise
        return self

    def _prepare(self, volume: Volume, paths: PodPaths) -> str:
        if volume.empty_dir is not None:
            return self._empty_dir(volume, paths)
        if volume.host_path is not None:
            return _host_path(volume)
        raise SandboxError(f'volume "{volume.name}": only emptyDir and hostPath volumes are '
                           "implemented in this version")

    def _empty_dir(self, volume: Volume, paths: PodPaths) -> str:
        path = paths.volume(volume.name)
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o777)  # like the kubelet: any container user may write
        if volume.empty_dir is not None and volume.empty_dir.medium == "Memory":
            from nsrun.host import native

            size = volume.empty_dir.size_limit
            native.mount_tmpfs(str(path), f"mode=777{f',size={size}' if size else ''}")
            self.tmpfs_mounts.append(str(path))
        return str(path)

    def mounts_for(self, container: Container) -> list[dict[str, Any]]:
        """OCI bind mounts of the container's ``volumeMounts``, in manifest order."""
        mounts = []
        for vm in container.volume_mounts or []:
            source = self.volume_paths[vm.name]
            if vm.sub_path:
                source = os.path.join(source, vm.sub_path)
                os.makedirs(source, exist_ok=True)
            options = ["rbind", "ro" if vm.read_only else "rw"]
            mounts.append({"destination": vm.mount_path, "type": "bind", "source": source,
                           "options": options})
        return mounts

    def close(self) -> None:
        """Release the namespaces and unmount memory-backed volumes."""
        from nsrun.host import native

        for fd in self.ns_fds.values():
            os.close(fd)
        self.ns_fds = {}
        for path in self.tmpfs_mounts:
            native.umount(path)
        self.tmpfs_mounts = []


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
