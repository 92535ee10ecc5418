"""The device allow-list on pure cgroup v2: nsrun's BPF_PROG_TYPE_CGROUP_DEVICE program on each
container's cgroup. In a container with CAP_MKNOD and CAP_SYS_ADMIN the probe mounts a tmpfs
with ``dev`` and makes nodes there: mknod works (runc's ``c *:* m``), the twin of /dev/null
opens, fuse (c 10:229), loop0 (b 7:0), tun (c 10:200) and sda (b 8:0) are refused with EPERM (the program's
answer: ``nodev`` would be EACCES), and the program is seen attached to the leaf
(``bpf_prog`` in ``/proc/<pid>/fdinfo`` is not needed: the refusal itself is the proof).

The probe runs only in the container (a marker variable, and pid 1 of its pid namespace)."""

from __future__ import annotations

import json
from pathlib import Path

PROBE = (Path(__file__).parents[1] / "probes" / "device_probe.sh").read_text()

POD = f"""apiVersion: v1
kind: Pod
metadata: {{name: dev}}
spec:
  restartPolicy: Never
  containers:
  - name: probe
    image: busybox
    command: [sh, -c, {json.dumps(PROBE)}]
    env: [{{name: NSRUN_DEVICE_PROBE, value: in-container}}, {{name: PROBE_DISK, value: "8 0"}}]
    securityContext: {{capabilities: {{add: [SYS_ADMIN, MKNOD]}}}}
"""


def test_the_device_program_denies_all_but_the_allowed_devices(pods):
    proc = pods.run(POD, "--cgroups", "v2", name="dev")
    assert proc.returncode == 0, proc.stderr  # the pod Succeeded: the probe ran to its end
    log = (pods.pod_dir("dev") / "logs" / "probe" / "0.log").read_text()
    assert "mknod null ok" in log and "open null ok" in log, log
    for name in ("fuse", "loop0", "tun", "disk"):
        assert f"mknod {name} ok" in log, log
        assert f"open {name} ok" not in log, log
        assert f"/tmp/d/{name}: Operation not permitted" in log, log
    assert "Permission denied" not in log, log
    assert not pods.parent.exists()
