"""Turn one pod container into a running process: bundle + pod overrides → spawn request.

Resolves the image to a bundle, merges the container's command/args/env/workingDir/
securityContext into the bundle's process, adds the pod's volume mounts, and hands the
request to the C spawn path with the pod's namespaces and the container's cgroup leaf.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nsrun.bundle import oci
from nsrun.bundle.images import ImageStore
from nsrun.core import expand
from nsrun.core.spec import Container, Pod
from nsrun.errors import BundleError
from nsrun.host.sandbox import Sandbox


class ImageMissing(Exception):
    """The image has no bundle in the store (the container waits: ErrImageNeverPull)."""


@dataclass(frozen=True)
class Launched:
    pid: int
    pidfd: int


def resolve_bundle(store: ImageStore, image: str) -> Path:
    path = store.find(image)
    if path is None:
        raise ImageMissing(image)
    return path


def build_plan(pod: Pod, container: Container, bundle: Path, sandbox: Sandbox) -> oci.LaunchPlan:
    """The container's launch plan (``BundleError`` if the bundle cannot be used)."""
    env = expand.container_env(pod, container)
    env_map = dict(env)
    sc = container.security_context
    return oci.plan(
        oci.load_config(bundle), bundle,
        command=[expand.expand(s, env_map) for s in container.command] if container.command
        else None,
        args=[expand.expand(s, env_map) for s in container.args]
        if container.args is not None else None,
        env=env, working_dir=container.working_dir,
        run_as_user=sc.run_as_user if sc else None,
        run_as_group=sc.run_as_group if sc else None,
        volume_mounts=sandbox.mounts_for(container),
    )


def spawn(plan: oci.LaunchPlan, sandbox: Sandbox, cgroup_fd: int, log_fd: int) -> Launched:
    """Start the process (``SpawnError`` if a step in the child failed)."""
    from nsrun.host import native

    try:
        mounts = tuple(native.MountSpec.from_oci(m) for m in plan.mounts)
    except ValueError as err:
        raise BundleError(f"mounts: {err}") from None
    request = native.SpawnRequest(
        argv=plan.argv, env=plan.env, rootfs=plan.rootfs, cwd=plan.cwd, uid=plan.uid,
        gid=plan.gid, additional_gids=plan.additional_gids, rootfs_readonly=plan.readonly,
        mounts=mounts, join_ns=dict(sandbox.ns_fds), cgroup_fd=cgroup_fd,
        stdout_fd=log_fd, stderr_fd=log_fd)
    pid, pidfd = native.spawn(request)
    return Launched(pid, pidfd)
