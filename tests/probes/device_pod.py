"""The device cgroup probe's pod (``device_probe.sh`` as the command of a container with
CAP_SYS_ADMIN and CAP_MKNOD), for the host and the VM tests."""

from __future__ import annotations

import json
from pathlib import Path

PROBE = (Path(__file__).parent / "device_probe.sh").read_text()


def manifest(image: str, disk: str) -> str:
    """A pod ``dev`` whose container ``probe`` runs the probe; ``disk``: "major minor" of a
    block device to try."""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: dev}}
spec:
  restartPolicy: Never
  containers:
  - name: probe
    image: {image}
    command: [sh, -c, {json.dumps(PROBE)}]
    env: [{{name: NSRUN_DEVICE_PROBE, value: in-container}}, {{name: PROBE_DISK, value: "{disk}"}}]
    securityContext: {{capabilities: {{add: [SYS_ADMIN, MKNOD]}}}}
"""
