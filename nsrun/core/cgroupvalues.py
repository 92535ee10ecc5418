"""Cgroup numbers as the kubelet and the OCI runtimes compute them (pure): cpu shares from
millicores, the CFS quota, the shares-to-``cpu.weight`` formulas, and ``Limits``, one
cgroup's values written as cgroup v2 or v1 files.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

CPU_WEIGHT = "cpu.weight"
CPU_MAX = "cpu.max"
MEMORY_MAX = "memory.max"
PIDS_MAX = "pids.max"
CPU_SHARES = "cpu.shares"
CPU_CFS_PERIOD = "cpu.cfs_period_us"
CPU_CFS_QUOTA = "cpu.cfs_quota_us"
MEMORY_LIMIT = "memory.limit_in_bytes"
MEMORY_MEMSW_LIMIT = "memory.memsw.limit_in_bytes"

CPU_PERIOD_US = 100_000
MIN_QUOTA_US = 1_000
MIN_SHARES = 2
MAX_SHARES = 262_144
SHARES_PER_CPU = 1024


def milli_cpu_to_shares(milli_cpu: int) -> int:
    """Kubernetes' ``MilliCPUToShares``: 0 -> 2, clamped to [2, 262144]."""
    if milli_cpu == 0:
        return MIN_SHARES
    return min(max(milli_cpu * SHARES_PER_CPU // 1000, MIN_SHARES), MAX_SHARES)


def milli_cpu_to_quota(milli_cpu: int, period: int = CPU_PERIOD_US) -> int:
    """Kubernetes' ``MilliCPUToQuota``: 0 stays 0 (no quota), else at least 1000 µs."""
    if milli_cpu == 0:
        return 0
    return max(milli_cpu * period // 1000, MIN_QUOTA_US)


def cpu_weight_linear(shares: int) -> int:
    """The kubelet's shares -> ``cpu.weight`` for its own (pod) cgroups."""
    if shares >= MAX_SHARES:
        return 10_000
    return 1 + (shares - 2) * 9999 // 262_142


def cpu_weight_runtime(shares: int) -> int:
    """The OCI runtimes' shares -> ``cpu.weight`` (opencontainers/cgroups, runc >= 1.3.2,
    crun >= 1.23), used for container cgroups: 1024 -> 100."""
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= MAX_SHARES:
        return 10_000
    log = math.log2(shares)
    return math.ceil(10 ** ((log * log + 125 * log) / 612.0 - 7.0 / 34.0))


def cpu_max(quota: int, period: int = CPU_PERIOD_US) -> str:
    """The ``cpu.max`` line: ``"<quota> <period>"``, or ``"max <period>"`` for no quota."""
    return f"{quota if quota > 0 else 'max'} {period}"


class Limits(msgspec.Struct, frozen=True):
    """One cgroup's values before they are file names: cpu shares; the CFS quota in µs per
    ``CPU_PERIOD_US`` (<= 0: none, None: not written); the memory limit in bytes and
    ``pids.max`` (None: not written)."""

    shares: int
    quota: int | None = None
    memory: int | None = None
    pids: int | None = None

    def v2(self, weight: Callable[[int], int]) -> dict[str, str]:
        """As cgroup v2 files; ``weight`` turns shares into ``cpu.weight``."""
        out = {CPU_WEIGHT: str(weight(self.shares))}
        if self.quota is not None:
            out[CPU_MAX] = cpu_max(self.quota)
        if self.memory is not None:
            out[MEMORY_MAX] = str(self.memory)
        if self.pids is not None:
            out[PIDS_MAX] = str(self.pids)
        return out

    def v1(self, no_swap: bool = False) -> dict[str, str]:
        """As cgroup v1 files (the period before the quota: the kernel checks the pair);
        ``no_swap``: memsw equal to the memory limit."""
        out = {CPU_SHARES: str(self.shares)}
        if self.quota is not None:
            out[CPU_CFS_PERIOD] = str(CPU_PERIOD_US)
            out[CPU_CFS_QUOTA] = str(self.quota if self.quota > 0 else -1)
        if self.memory is not None:
            out[MEMORY_LIMIT] = str(self.memory)
            if no_swap:
                out[MEMORY_MEMSW_LIMIT] = str(self.memory)
        if self.pids is not None:
            out[PIDS_MAX] = str(self.pids)
        return out


class CgroupFiles(msgspec.Struct, frozen=True):
    """The files a cgroup driver writes: the pod's, and each container's leaf's."""

    pod: dict[str, str]
    leaves: dict[str, dict[str, str]]
