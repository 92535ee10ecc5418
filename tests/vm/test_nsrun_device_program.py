"""The device allow-list on pure cgroup v2: nsrun's BPF_PROG_TYPE_CGROUP_DEVICE program on each
container's cgroup. In a container with CAP_MKNOD and CAP_SYS_ADMIN the probe mounts a tmpfs
with ``dev`` and makes nodes there: mknod works (runc's ``c *:* m``), the twin of /dev/null
opens, fuse (c 10:229), loop0 (b 7:0), tun (c 10:200) and sda (b 8:0) are refused with EPERM (the program's
answer: ``nodev`` would be EACCES), and the program is seen attached to the leaf
(``bpf_prog`` in ``/proc/<pid>/fdinfo`` is not needed: the refusal itself is the proof).

The probe runs only in the container (a marker variable, and pid 1 of its pid namespace)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "probes"))
import device_pod  # noqa: E402 - the probe shared with the host ring

POD = device_pod.manifest("busybox", "8 0")


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
