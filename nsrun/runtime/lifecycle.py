"""The pod lifecycle API the command line calls: one ``World`` (the global options: state
root, image store, Secrets/ConfigMaps, network settings) and ``RunFlags`` (how a pod is
run), then ``run``, ``apply_pod``, ``restart``, ``delete``, ``exec_in``.

The CLI builds these from its arguments and passes them down; nothing below reads the
environment for them. What it computes from a manifest (resources, QoS, cgroup values) and
how it reaches the supervisor is here and below, never in the CLI.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import msgspec

from nsrun.errors import UsageError

DEFAULT_SECRETS, DEFAULT_CONFIGMAPS = "/etc/nsrun/secrets", "/etc/nsrun/configmaps"
DEFAULT_LOG_DIR = "/var/log/nsrun"


class World(msgspec.Struct, frozen=True):
    """The global options: one nsrun world (``--root`` and what goes with it)."""

    root: str
    images: str
    secrets: str = DEFAULT_SECRETS
    configmaps: str = DEFAULT_CONFIGMAPS
    pod_cidr: str = ""
    service_cidr: str = ""
    cluster_domain: str = ""
    cluster_dns: str = ""
    resolv_conf: str = "/etc/resolv.conf"
    log_dir: str = DEFAULT_LOG_DIR

    @property
    def state(self):
        from nsrun.state import StateRoot

        return StateRoot(Path(self.root))

    def absolute(self) -> World:
        """These options with absolute paths."""
        paths = {n: os.path.abspath(getattr(self, n)) for n in
                 ("root", "images", "secrets", "configmaps", "log_dir")}
        if self.resolv_conf:
            paths["resolv_conf"] = os.path.abspath(self.resolv_conf)
        return msgspec.structs.replace(self, **paths)

    def argv(self) -> list[str]:
        """These options as nsrun's global arguments (absolute paths), for a command run
        again elsewhere (a systemd unit starts with an empty environment)."""
        out, world = [], self.absolute()
        for name in self.__struct_fields__:
            value = getattr(world, name)
            if value or name == "resolv_conf":
                out += [f"--{name.replace('_', '-')}", value]
        return out


class RunFlags(msgspec.Struct):
    """How to run a pod (``run``/``create``/``apply`` options)."""

    cgroup_parent: str | None = None
    cgroups: str = "auto"
    pod_pids_limit: int | None = None
    backoff_initial: float = 10.0
    backoff_max: float = 300.0
    legacy_annotations: bool = False
    log_max_attempts: int = 20
    log_max_bytes: int = 10 * 1024 * 1024
    log_max_size: str = "10Mi"
    log_max_files: int = 5
    sdnotify: str = "none"

    @classmethod
    def of(cls, args: Any) -> RunFlags:
        """The flags among an argparse namespace's attributes."""
        return cls(**{f: getattr(args, f) for f in cls.__struct_fields__ if hasattr(args, f)})


def read_manifest(path: str) -> bytes:
    """A manifest's bytes (``-``: stdin), at most one byte past the loader's limit (so the
    loader names a file too big without reading all of it); ``UsageError`` when unreadable.
    The one reader of manifest files, for every verb that takes one."""
    from nsrun.core.manifest import MAX_BYTES

    try:
        if path == "-":
            return sys.stdin.buffer.read(MAX_BYTES + 1)
        with open(path, "rb") as f:
            return f.read(MAX_BYTES + 1)
    except OSError as err:
        raise UsageError(f"{path}: {err.strerror or err}") from None


def warn(lines: list[Any]) -> None:
    for w in lines:
        print(f"nsrun: warning: {w}", file=sys.stderr)


def pod_problems(pod) -> list[Any]:
    """The one validation of every verb that takes a Pod manifest (``validate``, ``run``,
    ``create``, ``apply``): Kubernetes' rules, no string a pod cannot use (a surrogate, a
    NUL byte), and only capability names the kernel has."""
    from nsrun import native
    from nsrun.core import validate

    return validate.validate(pod, native.CAPABILITIES)


def check_pod(pod, source: str = "") -> None:
    """``pod_problems`` as one ``SpecError`` (kubectl's shape), if there are any."""
    from nsrun.errors import SpecError

    problems = pod_problems(pod)
    if problems:
        raise SpecError(problems, pod=pod.metadata.name, source=source)


def load_one_pod(path: str, legacy: bool):
    """The one valid Pod of a manifest (with a uid), or ``UsageError``/``SpecError``."""
    from nsrun.core.manifest import load_pods_with_warnings
    from nsrun.runtime.supervise import with_uid

    pods, warnings = load_pods_with_warnings(read_manifest(path), path,
                                             legacy_annotations=legacy)
    warn(warnings)
    if len(pods) != 1:
        raise UsageError(f"{path}: run takes one Pod, found {len(pods)}")
    check_pod(pods[0], path)
    return with_uid(pods[0])


def load_objects(path: str, legacy: bool = False) -> list[Any]:
    """Every Pod and Service of a manifest (not validated yet)."""
    from nsrun.core.objects import load_objects as load

    objects, warnings = load(read_manifest(path), path, legacy_annotations=legacy)
    warn(warnings)
    return objects


def net_config(world: World):
    """The world's network settings (fixed in the state root on first use)."""
    from nsrun.core.netconfig import make_config
    from nsrun.netstate import NetState

    root = os.path.abspath(world.root)
    try:
        wanted = make_config(os.path.normpath(root), world.pod_cidr, world.service_cidr,
                             world.cluster_domain, world.cluster_dns)
    except ValueError as err:
        raise UsageError(str(err)) from None
    return NetState(Path(root)).settle_config(wanted)


def node_memory(meminfo: str = "/proc/meminfo") -> int | None:
    """The node's memory capacity in bytes (``MemTotal``), or None if unknown."""
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def pod_options(world: World, flags: RunFlags, pod):
    """The supervisor's ``Options`` for ``pod``: its resources computed, the world's dirs."""
    from nsrun.core import resources
    from nsrun.core.backoff import BackoffPolicy
    from nsrun.core.netconfig import world_name
    from nsrun.runtime.options import Options

    computed = resources.compute(pod, node_pids_limit=flags.pod_pids_limit,
                                 node_memory=node_memory())
    return Options(images=os.path.abspath(world.images),
                   backoff=BackoffPolicy(flags.backoff_initial, flags.backoff_max),
                   cgroup_parent=flags.cgroup_parent, cgroup_mode=flags.cgroups,
                   cgroup_default=world_name(os.path.normpath(os.path.abspath(world.root))),
                   cgroup_files=computed.cgroup_files(), qos_class=computed.qos_class,
                   oom_score_adj={c.name: computed.oom_score_adj(c.name)
                                  for c in computed.containers},
                   log_max_attempts=max(1, flags.log_max_attempts),
                   log_max_bytes=flags.log_max_bytes,
                   log_max_size=log_max_size(flags.log_max_size),
                   log_max_files=_log_max_files(flags.log_max_files),
                   log_dir=os.path.abspath(world.log_dir),
                   net=net_config(world), resolv_conf=world.resolv_conf,
                   secrets=world.secrets, configmaps=world.configmaps)


def log_max_size(text: str) -> int:
    """``--log-max-size``: bytes, or a quantity (``10Mi``), more than 0."""
    from nsrun.core.quantity import parse_quantity, value

    try:
        size = value(parse_quantity(text))
    except ValueError:
        size = 0
    if size <= 0:
        raise UsageError(f'invalid argument "{text}" for "--log-max-size": a size in bytes '
                         "or a quantity (10Mi), more than 0")
    return size


def _log_max_files(n: int) -> int:
    if n < 2:
        raise UsageError(f'invalid argument "{n}" for "--log-max-files": at least 2 (the '
                         "live file and one rotated file), as the kubelet requires")
    return n


def _recoverable(world: World, pod, same_spec: bool) -> bool:
    """The existing pod of ``pod``'s name has no supervisor and has not ended (with
    ``same_spec``: and its spec is ``pod``'s): ``run``/``apply`` re-attach to it."""
    from nsrun.core.spec import Pod
    from nsrun.runtime import recover

    paths = world.state.pod(pod.metadata.name)
    if not paths.dir.is_dir() or not recover.needs_recovery(paths):
        return False
    if same_spec:
        try:
            stored = msgspec.json.decode(paths.manifest.read_bytes(), type=Pod)
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            return False
        return msgspec.to_builtins(stored.spec) == msgspec.to_builtins(pod.spec)
    return True


def run(world: World, flags: RunFlags, pod, *, detach: bool, keep: bool = True,
        report=None) -> int:
    """Hand ``pod`` to its supervisor (``runtime.supervise``): foreground, this process
    becomes the supervisor and exits with the pod's code; ``detach``: returns 0 once the
    pod can start. ``report``: what the supervisor tells (``runtime.options.Report``). The
    same pod without a supervisor is re-attached instead (``recover``)."""
    from nsrun.runtime import options, recover, supervise

    report = report or options.Report(sdnotify=flags.sdnotify)
    if _recoverable(world, pod, same_spec=True):
        return recover.resume(world.state, pod.metadata.name, detach, report)
    handoff = options.Handoff(pod_options(world, flags, pod), detach=detach, keep=keep,
                              report=report)
    return supervise.start(pod, world.state, handoff)


def apply_pod(world: World, flags: RunFlags, pod) -> str:
    """Create or update ``pod``: kubectl's word for what happened."""
    from nsrun.runtime import podrun
    from nsrun.runtime.supervise import with_uid

    if not world.state.pod(pod.metadata.name).dir.exists():
        run(world, flags, with_uid(pod), detach=True)
        return "created"
    if _recoverable(world, pod, same_spec=False):
        from nsrun.runtime import recover

        print(f"nsrun: {recover.recover(world.state, pod.metadata.name)}", file=sys.stderr)
    return podrun.update(world.state, pod)


def preflight() -> None:
    from nsrun.runtime.supervise import preflight as check

    check()


def restart(world: World, name: str) -> None:
    from nsrun.runtime import podrun

    podrun.restart(world.state, name)


def delete_pod(world: World, name: str, timeout: float | None = None,
               grace: float | None = None) -> None:
    from nsrun.runtime import podrun

    podrun.delete(world.state, name, timeout, grace)


def exec_in(world: World, pod: str, container: str | None, command: list[str],
            tty: bool) -> int:
    from nsrun.runtime import execcmd

    return execcmd.exec_in_pod(Path(world.root), pod, container, command, tty=tty,
                               images=world.images, secrets=world.secrets,
                               configmaps=world.configmaps)
