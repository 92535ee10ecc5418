"""``nsrun run --systemd``: run the same pod again inside a systemd transient unit with
``Delegate=yes``, and the ``systemd-run`` command line for it.

Foreground: a scope around the very same command (same terminal and working directory;
Ctrl-C still deletes the pod), ``KillMode=mixed`` so ``systemctl stop`` sends SIGTERM to
nsrun only, which stops the containers as a delete does (preStop, grace period, sidecars
last), and SIGKILL to what is left. ``-d``: a ``Type=notify`` service whose main process is
the pod's supervisor (``nsrun run --sdnotify=initialized``, foreground): its start job ends
once the pod is initialized, so a unit ordered ``After=`` it starts only then; it fails if
the pod fails first. A supervisor that crashes is restarted (``Restart=on-failure``) and
re-attaches to the pod (``run`` of the same manifest): so that the pod survives the unit's
stop, its cgroups are outside the unit (the world's parent, ``nsrun`` or ``nsrun-<8 hex>``,
at the top of the cgroup mount, unless ``--cgroup-parent`` is given: see ``pods_parent``), as
the kubelet keeps pods in a slice of their own, and its monitors and pause process live in
them. Every property nsrun sets is listed in ``properties`` (and the README).

Unit names are ``nsrun-<pod>`` for the default state root and ``nsrun-<8 hex>-<pod>`` for
any other (the same hash as the world's bridge), so two state roots never collide.
"""

from __future__ import annotations

import os
import sys

from nsrun.errors import PreflightError, UsageError

SYSTEMD_RUNTIME_DIR = "/run/systemd/system"  # exists iff systemd is PID 1 (sd_booted(3))
STOP_MARGIN = 30  # seconds beyond the grace period before systemd kills what is left
NOT_A_CRASH = "1 2 3 4 5"  # the pod Failed, or bad input/state/host: not restarted


def unit_name(root: str, pod: str) -> str:
    """The transient unit's name (without ``.scope``/``.service``)."""
    from nsrun.core.netconfig import world_name

    return f"{world_name(os.path.normpath(os.path.abspath(root)))}-{pod}"


def preflight(runtime_dir: str = SYSTEMD_RUNTIME_DIR) -> None:
    """``PreflightError`` (exit 3) unless systemd runs this host and ``systemd-run`` is
    there."""
    import shutil

    if not os.path.isdir(runtime_dir):
        raise PreflightError(f"--systemd: systemd is not running on this host ({runtime_dir} "
                             "does not exist); run without --systemd")
    if shutil.which("systemd-run") is None:
        raise PreflightError("--systemd: systemd-run not found in PATH")


def properties(detach: bool, grace: float) -> list[str]:
    """The unit properties nsrun sets."""
    props = ["Delegate=yes", "KillMode=mixed"]
    if detach:
        props += ["Type=notify", "NotifyAccess=all", "SuccessExitStatus=130 143",
                  f"TimeoutStopSec={max(1, int(grace + STOP_MARGIN + 0.999))}",
                  "TimeoutStartSec=infinity", "Restart=on-failure",
                  f"RestartPreventExitStatus={NOT_A_CRASH}"]
    return props


def systemd_run_argv(command: list[str], unit: str, *, detach: bool,
                     grace: float = 30.0) -> list[str]:
    """The ``systemd-run`` command line; ``command`` is the nsrun command to run in it."""
    argv = ["systemd-run", "--quiet", "--collect", f"--unit={unit}"]
    argv += ["--same-dir"] if detach else ["--scope"]
    for prop in properties(detach, grace):
        argv += ["-p", prop]
    return [*argv, "--", *command]


def pods_parent(root: str, mode: str = "auto") -> str | None:
    """The ``--cgroup-parent`` that puts a detached unit's pods outside it: the world's name
    (``netconfig.world_name``: ``nsrun``, ``nsrun-<8 hex>`` for a state root but the default)
    at the top of the cgroup2 mount (an absolute path) for the v2 driver, ``/<name>`` (from
    each hierarchy's root) for v1; None without a pod cgroup."""
    from nsrun.core.netconfig import world_name
    from nsrun.host import cgroupdriver
    from nsrun.host.cgroupfs import CgroupFs
    from nsrun.host.preflight import CgroupHost

    host = CgroupHost.probe()
    kind = mode if mode in ("v1", "v2", "none") else cgroupdriver.auto_kind(host, CgroupFs())[0]
    name = world_name(os.path.normpath(os.path.abspath(root)))
    if kind == "v2" and host.mount is not None:
        return os.path.join(host.mount, name)
    return f"/{name}" if kind == "v1" else None


def inner_command(world, rest: list[str], detach: bool, sdnotify: str,
                  pods_parent: str | None = None) -> list[str]:
    """The nsrun command the unit runs: this world's options spelled out (a service starts
    with an empty environment), then the verb's words; ``-d`` becomes a foreground run
    that tells systemd when it is ready."""
    words, skip = [], False
    for w in rest:
        if not skip and w not in ("-d", "--detach") and not w.startswith("--sdnotify"):
            words.append(w)
        skip = w == "--sdnotify"
    if detach:
        words[1:1] = [f"--sdnotify={sdnotify}", "--quiet"]
        given = any(w == "--cgroup-parent" or w.startswith("--cgroup-parent=") for w in words)
        if pods_parent and not given:
            words[1:1] = ["--cgroup-parent", pods_parent]
    return [sys.executable, "-m", "nsrun", *world.argv(), *words]


def run_under_systemd(world, flags, manifest: str, pod, detach: bool,
                      rest: list[str]) -> int:
    """Run this command under ``systemd-run``; the foreground form replaces this process,
    ``-d`` returns once the unit is active (the pod initialized) and prints its name."""
    import subprocess

    if manifest == "-":
        raise UsageError("--systemd: the manifest cannot come from stdin (nsrun runs "
                         "again inside the unit and reads it there)")
    preflight()
    grace = float(pod.spec.termination_grace_period_seconds or 30)
    parent = pods_parent(world.root, flags.cgroups) if detach else None
    argv = systemd_run_argv(inner_command(world, rest, detach, flags.sdnotify, parent),
                            unit_name(world.root, pod.metadata.name), detach=detach,
                            grace=grace)
    if not detach:
        os.execvp(argv[0], argv)
    code = subprocess.run(argv).returncode
    if code == 0:
        print(pod.metadata.name)
    return code
