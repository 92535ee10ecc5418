"""An OCI config's ``linux.resources`` as cgroup file values, v2 (``v2_values``: runc's and
crun's conversions) and v1 (``v1_values``: the files runc writes).

``memory.limit`` → ``memory.max``, ``reservation`` → ``memory.low``, ``swap`` (memory+swap)
→ ``memory.swap.max`` (swap alone); ``cpu.shares`` → ``cpu.weight`` (``1 + (shares - 2) *
9999 / 262142``), ``quota``/``period`` → ``cpu.max``, ``cpus``/``mems`` → ``cpuset.*``,
``idle`` → ``cpu.idle``; ``pids.limit`` → ``pids.max``; ``blockIO.weight`` (10-1000) →
``io.weight`` (1-10000); ``hugepageLimits`` → ``hugetlb.<size>.max``; ``unified`` is written
as given (and wins). ``devices`` rules are not files (a BPF program): left to the caller.
"""

from __future__ import annotations

MAX = "max"


def _int(res: dict, path: str) -> int | None:
    node: object = res
    for key in path.split("."):
        if not isinstance(node, dict) or node.get(key) is None:
            return None
        node = node[key]
    if not isinstance(node, int) or isinstance(node, bool):
        raise ValueError(f"linux.resources.{path}: expected an integer")
    return node


def _limit(value: int) -> str:
    return MAX if value < 0 else str(value)


def _memory(res: dict, out: dict[str, str]) -> None:
    limit, low = _int(res, "memory.limit"), _int(res, "memory.reservation")
    swap = _int(res, "memory.swap")
    if limit is not None and limit != 0:
        out["memory.max"] = _limit(limit)
    if low is not None and low != 0:
        out["memory.low"] = _limit(low)
    if swap is not None and swap != 0:
        if swap < 0:
            out["memory.swap.max"] = MAX
        elif limit is None or limit <= 0:
            raise ValueError("linux.resources.memory.swap: needs memory.limit (swap is "
                             "memory+swap)")
        elif swap < limit:
            raise ValueError("linux.resources.memory.swap: below memory.limit")
        else:
            out["memory.swap.max"] = str(swap - limit)


def _cpu(res: dict, out: dict[str, str]) -> None:
    shares, quota = _int(res, "cpu.shares"), _int(res, "cpu.quota")
    period = _int(res, "cpu.period")
    if shares:
        out["cpu.weight"] = str(1 + ((shares - 2) * 9999) // 262142)
    if quota is not None or period is not None:
        quota_text = MAX if quota is None or quota <= 0 else str(quota)
        out["cpu.max"] = f"{quota_text} {period or 100000}"
    idle = _int(res, "cpu.idle")
    if idle is not None:
        out["cpu.idle"] = str(idle)
    cpu = res.get("cpu") or {}
    for key in ("cpus", "mems"):
        if cpu.get(key):
            if not isinstance(cpu[key], str):
                raise ValueError(f"linux.resources.cpu.{key}: expected a string")
            out[f"cpuset.{key}"] = cpu[key]


def _others(res: dict, out: dict[str, str]) -> None:
    pids = _int(res, "pids.limit")
    if pids is not None:
        out["pids.max"] = MAX if pids <= 0 else str(pids)
    weight = _int(res, "blockIO.weight")
    if weight:
        out["io.weight"] = f"default {1 + (weight - 10) * 9999 // 990}"
    for i, page in enumerate(res.get("hugepageLimits") or []):
        size, limit = (page or {}).get("pageSize"), (page or {}).get("limit")
        if not isinstance(size, str) or not isinstance(limit, int):
            raise ValueError(f"linux.resources.hugepageLimits[{i}]: needs pageSize and limit")
        out[f"hugetlb.{size}.max"] = str(limit)
    unified = res.get("unified") or {}
    if not isinstance(unified, dict):
        raise ValueError("linux.resources.unified: expected an object")
    for name, value in unified.items():
        if "/" in name or not isinstance(value, str):
            raise ValueError(f"linux.resources.unified.{name}: expected a file name and a "
                             "string value")
        out[name] = value


def v2_values(resources: dict | None) -> dict[str, str]:
    """``{cgroup v2 file: value}`` for ``linux.resources``; ``ValueError`` naming the field."""
    if not resources:
        return {}
    if not isinstance(resources, dict):
        raise ValueError("linux.resources: expected an object")
    out: dict[str, str] = {}
    _memory(resources, out)
    _cpu(resources, out)
    _others(resources, out)
    return out


def v1_values(resources: dict | None) -> dict[str, str]:
    """``{cgroup v1 file: value}`` for ``linux.resources`` (the CFS period before its quota,
    as the kernel checks the pair); ``unified`` is v2 only (left out); ``ValueError`` naming
    the field."""
    if not resources:
        return {}
    if not isinstance(resources, dict):
        raise ValueError("linux.resources: expected an object")
    out: dict[str, str] = {}
    for path, name in (("memory.limit", "memory.limit_in_bytes"),
                       ("memory.reservation", "memory.soft_limit_in_bytes"),
                       ("memory.swap", "memory.memsw.limit_in_bytes"),
                       ("memory.swappiness", "memory.swappiness"),
                       ("cpu.shares", "cpu.shares"), ("cpu.period", "cpu.cfs_period_us"),
                       ("cpu.quota", "cpu.cfs_quota_us"),
                       ("cpu.realtimePeriod", "cpu.rt_period_us"),
                       ("cpu.realtimeRuntime", "cpu.rt_runtime_us"),
                       ("blockIO.weight", "blkio.weight")):
        value = _int(resources, path)
        if value is not None and (value != 0 or path == "cpu.quota"):
            out[name] = str(value)
    if (resources.get("memory") or {}).get("disableOOMKiller"):
        out["memory.oom_control"] = "1"
    pids = _int(resources, "pids.limit")
    if pids is not None:
        out["pids.max"] = MAX if pids <= 0 else str(pids)
    cpu = resources.get("cpu") or {}
    for key in ("cpus", "mems"):
        if cpu.get(key):
            out[f"cpuset.{key}"] = str(cpu[key])
    for i, page in enumerate(resources.get("hugepageLimits") or []):
        size, limit = (page or {}).get("pageSize"), (page or {}).get("limit")
        if not isinstance(size, str) or not isinstance(limit, int):
            raise ValueError(f"linux.resources.hugepageLimits[{i}]: needs pageSize and limit")
        out[f"hugetlb.{size}.limit_in_bytes"] = str(limit)
    return out
