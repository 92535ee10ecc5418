"""``nsrun run --systemd``: run the same command again inside a systemd transient unit with
``Delegate=yes`` (a scope in the foreground, a ``Type=forking`` service with ``-d``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nsrun.core.spec import Pod
from nsrun.errors import PreflightError, UsageError


def run_under_systemd(root: str, manifest: str, pod: Pod, detach: bool) -> int:
    """Re-run this command (without --systemd) under ``systemd-run``; returns its exit code
    (the foreground form replaces this process)."""
    import shutil
    import subprocess

    from nsrun.host import preflight
    from nsrun.state import StateRoot

    if shutil.which("systemd-run") is None:
        raise PreflightError("--systemd: systemd-run not found (is systemd running?)")
    if manifest == "-":
        raise UsageError("--systemd: the manifest cannot come from stdin (nsrun runs "
                         "again inside the unit and reads it there)")
    command = [sys.executable, "-m", "nsrun", *(a for a in sys.argv[1:] if a != "--systemd")]
    pidfile = str(StateRoot(Path(root)).pod(pod.metadata.name).pidfile)
    grace = float(pod.spec.termination_grace_period_seconds or 30)
    argv = preflight.systemd_run_argv(command, pod.metadata.name, detach=detach,
                                      pidfile=pidfile if detach else None,
                                      stop_timeout=grace + 30 if detach else None)
    if not detach:
        os.execvp(argv[0], argv)
    code = subprocess.run(argv).returncode
    if code == 0:
        print(pod.metadata.name)
    return code
