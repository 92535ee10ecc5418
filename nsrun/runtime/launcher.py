"""Turn one pod container into a running process: bundle + pod overrides → spawn request.

Resolves the image to a bundle, merges the container's command/args/env/workingDir and the
pod's and container's ``securityContext`` into the bundle's process (``nsrun.bundle.oci`` and
``nsrun.bundle.security``), adds the pod's volume mounts, and hands the request to the C
spawn path with the pod's namespaces and the container's cgroup leaf. Everything that can be
checked is checked before the clone: a container is started fully confined or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec

from nsrun.bundle import oci, seccomp_select, security
from nsrun.bundle.images import ImageStore
from nsrun.core import expand
from nsrun.core.spec import Container, Pod
from nsrun.errors import BundleError, SpecError
from nsrun.host.sandbox import Sandbox


class ImageMissing(Exception):
    """The image has no bundle in the store (the container waits: ErrImageNeverPull)."""


PROBE_OUTPUT_LIMIT = 10 * 1024  # the kubelet keeps at most 10 KiB of a probe's output


class Launched(msgspec.Struct, frozen=True):
    """A started container: its pid, pidfd, the request it was started with (exec
    probes and hooks get the same confinement) and its monitor's pidfd (-1: none)."""

    pid: int
    pidfd: int
    request: Any = None
    monitor_pidfd: int = -1


def resolve_bundle(store: ImageStore, image: str) -> Path:
    path = store.find(image)
    if path is None:
        raise ImageMissing(image)
    return path


def _kind(pod: Pod, container: Container) -> str:
    return ("init container" if any(c is container for c in pod.spec.init_containers)
            else "container")


def pod_context(pod: Pod, container: Container) -> security.PodContext:
    """The Kubernetes side of the container's confinement (names as the kubelet prints)."""
    meta = pod.metadata
    return security.PodContext(
        container=container.name, pod=f"{meta.name}_{meta.namespace}({meta.uid})",
        security_context=container.security_context,
        pod_security_context=pod.spec.security_context,
        seccomp=seccomp_select.Settings.from_env())


def build_plan(pod: Pod, container: Container, bundle: Path, sandbox: Sandbox) -> oci.LaunchPlan:
    """The container's launch plan: ``BundleError`` naming the container and the field if
    the bundle or the pod asks for something that cannot be applied exactly
    (``security.ContainerConfigError``, with the kubelet's message, for runAsNonRoot)."""
    try:
        links = sandbox.service_links() if sandbox.service_links else None
        env = expand.container_env(pod, container, pod_ip=sandbox.pod_ip,
                                   host_ip=sandbox.host_ip, key_refs=sandbox.key_refs(container),
                                   service_links=links)
        env_map = dict(env)
        volume_mounts = sandbox.mounts_for(container, env_map)
    except SpecError as err:  # a missing secret key, an unset subPathExpr variable
        raise security.ContainerConfigError(f'{_kind(pod, container)} "{container.name}": '
                                            f"{err}") from None
    try:
        plan = oci.plan(
            oci.load_config(bundle), bundle,
            command=[expand.expand(s, env_map) for s in container.command]
            if container.command else None,
            args=[expand.expand(s, env_map) for s in container.args]
            if container.args is not None else None,
            env=env, working_dir=container.working_dir,
            volume_mounts=volume_mounts, pod=pod_context(pod, container),
        )
    except security.ContainerConfigError:
        raise  # the kubelet's message already names the pod and the container
    except BundleError as err:
        raise BundleError(f'{_kind(pod, container)} "{container.name}": {err}') from None
    _warn_once(f'{_kind(pod, container)} "{container.name}"', plan.warnings)
    return plan


_WARNED: set[str] = set()


def _warn_once(name: str, warnings: tuple[str, ...]) -> None:
    """A bundle's warnings (ignored mountLabel, ambient capabilities that cannot be raised)
    on stderr, once per container and supervisor, not at every restart."""
    import sys

    for w in warnings:
        line = f"nsrun: warning: {name}: {w}"
        if line not in _WARNED:
            _WARNED.add(line)
            print(line, file=sys.stderr)


def check_pod(pod: Pod, store: ImageStore) -> list[str]:
    """Every container's bundle and security context, checked before the pod starts (no
    sandbox, no cgroup, no process yet): the first problem as ``BundleError``; returns the
    warnings (``container "app": linux.mountLabel ignored: ...``). A missing image is not a
    problem here (the container waits with ``ErrImageNeverPull``)."""
    warnings: list[str] = []
    for container in pod.spec.init_containers + pod.spec.containers:
        try:
            bundle = resolve_bundle(store, container.image)
        except (ImageMissing, BundleError):
            continue
        name = f'{_kind(pod, container)} "{container.name}"'
        try:
            plan = oci.plan(oci.load_config(bundle), bundle, command=container.command or None,
                            args=container.args, env=[], working_dir=None, volume_mounts=[],
                            pod=pod_context(pod, container))
        except security.ContainerConfigError:
            raise
        except BundleError as err:
            raise BundleError(f"{name}: {err}") from None
        warnings.extend(f"{name}: {w}" for w in plan.warnings)
    return warnings


def request(plan: oci.LaunchPlan, sandbox: Sandbox, cgroup_fd: int, log_fd: int,
            join_fds: tuple[int, ...] = (), keyring: str | None = None):
    """The :class:`~nsrun.request.SpawnRequest` for ``plan`` (``BundleError`` for a
    mount the spawn path cannot express); ``cgroup_fd``/``join_fds``: the container's
    cgroup (``cgroupdriver.Group``); ``keyring``: its session keyring's name."""
    return oci.spawn_request(plan, join_ns=sandbox.ns_fds, cgroup_fd=cgroup_fd,
                             cgroup_join_fds=join_fds, stdio=(-1, log_fd, log_fd),
                             session_keyring=keyring,
                             # no pod cgroup: nothing could find it after a crash
                             die_with_parent=cgroup_fd < 0 and not join_fds)


def spawn(plan: oci.LaunchPlan, sandbox: Sandbox, cgroup, spec,
          keyring: str | None = None) -> Launched:
    """Start the process in the ``cgroupdriver.Group`` ``cgroup`` under a monitor
    (``host.monitor.MonitorSpec`` ``spec``: where its record and log go), with a session
    keyring of its own named ``keyring``; ``SpawnError`` if a step in the child failed."""
    from nsrun.host import monitor

    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        req = request(plan, sandbox, cgroup.clone_fd, wfd, cgroup.join_fds, keyring)
        spec = msgspec.structs.replace(spec, die_with_parent=req.die_with_parent)
        started = monitor.spawn(req, spec, rfd)
    finally:
        os.close(rfd)
        os.close(wfd)
    return Launched(started.pid, started.pidfd, req, started.monitor_pidfd)


def exec_check(launched: Launched, argv: list[str], cgroup,
               timeout: float | None) -> tuple[bool, str]:
    """Run ``argv`` in the running container ``launched`` with its confinement (an exec
    probe or hook): (exited 0, the first ``PROBE_OUTPUT_LIMIT`` bytes of its output). ``timeout`` None: no limit."""
    import signal

    from nsrun.host.execin import exec_in
    from nsrun.request import ExecRequest

    rfd, wfd = os.pipe2(os.O_CLOEXEC)
    try:
        req = ExecRequest.from_spawn(launched.request, argv,
                                     cgroup_fd=cgroup.clone_fd,
                                     cgroup_join_fds=cgroup.join_fds,
                                     stdout_fd=wfd, stderr_fd=wfd)
        pid, pidfd = exec_in(launched.pid, launched.pidfd, req)
    except BaseException:
        os.close(rfd)
        os.close(wfd)
        raise
    os.close(wfd)
    try:
        exited, output = _wait_reading(pidfd, rfd, timeout)
        if not exited:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    finally:
        os.close(pidfd)
        os.close(rfd)
    if not exited:
        return False, f"command {argv!r} timed out"
    ok = info.si_code == os.CLD_EXITED and info.si_status == 0
    if ok:
        return True, output
    from nsrun.exitstatus import describe

    return False, f"command {argv!r} {describe(info)}: {output}".rstrip(": ")


def _wait_reading(pidfd: int, rfd: int, timeout: float | None,
                  limit: int = PROBE_OUTPUT_LIMIT) -> tuple[bool, str]:
    """Wait for the process while draining its output (kept up to ``limit`` bytes):
    (exited before the timeout, output)."""
    import select
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    out = bytearray()
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = select.select([pidfd, rfd], [], [], left)[0]
        if rfd in ready:
            chunk = os.read(rfd, 65536)
            out += chunk[: max(0, limit - len(out))]
            if chunk:
                continue
        if pidfd in ready:
            return True, out.decode(errors="replace")
        if not ready:
            return False, out.decode(errors="replace")
