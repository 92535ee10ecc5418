"""The bundle's ``process`` fields that are plain values: ``user`` (uid, gid,
additionalGids, umask), ``rlimits`` (checked against what this host can grant) and
``oomScoreAdj``. Errors name the field (:class:`~nsrun.bundle.configfields.Fields`)."""

from __future__ import annotations

import json

from nsrun import native
from nsrun.bundle.configfields import Fields, json_type
from nsrun.bundle.hostfacts import RLIMITS

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from nsrun.bundle.hostfacts import HostFacts

DEFAULT_UMASK = 0o022


def rlimits(f: Fields, host: HostFacts) -> tuple[tuple[int, int, int], ...]:
    out: list[tuple[int, int, int]] = []
    seen: set[str] = set()
    for i, rl in enumerate(f.get("process.rlimits", list, [])):
        where = f"process.rlimits[{i}]"
        if not isinstance(rl, dict):
            raise f.error(where, f"expected object, got {json_type(rl)}")
        kind = rl.get("type")
        if kind not in RLIMITS:
            raise f.error(f"{where}.type", f"unknown rlimit {json.dumps(kind)} (one of "
                                           f"{', '.join(sorted(RLIMITS))})")
        if kind in seen:
            raise f.error(f"{where}.type", f"{kind} given twice")
        seen.add(kind)
        soft = f.uint(f"{where}.soft", rl.get("soft"), 64)
        hard = f.uint(f"{where}.hard", rl.get("hard"), 64)
        if soft > hard:
            raise f.error(where, f"{kind} soft limit {soft} is above its hard limit {hard}")
        number = RLIMITS[kind]
        current = host.rlimits.get(number)
        if current is not None and hard > current[1] and not host.sys_resource:
            raise f.error(where, f"{kind} hard limit {_show(hard)} is above this host's "
                                 f"{_show(current[1])}, and nsrun lacks CAP_SYS_RESOURCE to "
                                 "raise it")
        if kind == "RLIMIT_NOFILE" and hard > host.nr_open:
            raise f.error(where, f"{kind} hard limit {_show(hard)} is above the kernel's "
                                 f"fs.nr_open {host.nr_open}")
        out.append((number, soft, hard))
    return tuple(out)


def _show(limit: int) -> str:
    return "unlimited" if limit == native.RLIM_INFINITY else str(limit)


def user(f: Fields) -> tuple[int, int, tuple[int, ...], int | None]:
    if f.get("process.user.username", str):
        raise f.error("process.user.username", "not supported on Linux (give uid and gid)")
    uid = f.uint("process.user.uid", f.get("process.user.uid", int, 0))
    gid = f.uint("process.user.gid", f.get("process.user.gid", int, 0))
    gids = tuple(f.uint(f"process.user.additionalGids[{i}]", g)
                 for i, g in enumerate(f.get("process.user.additionalGids", list, [])))
    umask = f.get("process.user.umask", int)
    if umask is not None and not 0 <= umask <= 0o777:
        raise f.error("process.user.umask", f"must be in 0..0777, not {umask}")
    return uid, gid, gids, DEFAULT_UMASK if umask is None else umask


def oom_score_adj(f: Fields, host: HostFacts) -> int | None:
    value = f.get("process.oomScoreAdj", int)
    if value is None:
        return None
    if not -1000 <= value <= 1000:
        raise f.error("process.oomScoreAdj", f"must be in -1000..1000, not {value}")
    if value < host.oom_score_adj and not host.sys_resource:
        raise f.error("process.oomScoreAdj", f"{value} is below nsrun's own "
                                             f"{host.oom_score_adj}, and nsrun lacks "
                                             "CAP_SYS_RESOURCE to lower it")
    return value
