"""The cgroup v2 device filter: a ``core.devices.Policy`` compiled by the C extension into a
``BPF_PROG_TYPE_CGROUP_DEVICE`` program (``csrc/devices_bpf.c``) and attached to a cgroup.
Called by ``host/cgroupfs.py``, the gatekeeper of cgroup directories."""

from __future__ import annotations

import os

from nsrun import native

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from typing import Any


def attach_device_filter(cgroup_fd: int, policy: Any, replace_fd: int = -1) -> int:
    """Attach ``policy`` (a ``core.devices.Policy``) to the cgroup2 directory ``cgroup_fd`` as
    a BPF_PROG_TYPE_CGROUP_DEVICE program (``devices_bpf.c``), replacing the program
    ``replace_fd`` when >= 0; returns the program's fd (CLOEXEC: the program stays attached
    after it is closed, until the cgroup is removed). ``OSError`` with errno."""
    mod = native.ext()
    lib = mod.lib
    kinds = {"c": lib.BPF_DEVCG_DEV_CHAR, "b": lib.BPF_DEVCG_DEV_BLOCK, "a": 0}
    bits = {"r": lib.BPF_DEVCG_ACC_READ, "w": lib.BPF_DEVCG_ACC_WRITE,
            "m": lib.BPF_DEVCG_ACC_MKNOD}
    rules = mod.ffi.new("struct nsr_dev_rule[]", max(1, len(policy.exceptions)))
    for i, rule in enumerate(policy.exceptions):
        rules[i].type = kinds[rule.type]
        rules[i].major = -1 if rule.major is None else rule.major
        rules[i].minor = -1 if rule.minor is None else rule.minor
        rules[i].access = sum(bits[c] for c in rule.access)
    fd = lib.nsr_device_filter(cgroup_fd, rules, len(policy.exceptions),
                               int(policy.default_allow), replace_fd)
    if fd < 0:
        err = mod.ffi.errno
        raise OSError(err, os.strerror(err))
    return fd
