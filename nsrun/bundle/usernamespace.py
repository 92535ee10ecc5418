"""A container in a user namespace: ``linux.uidMappings``/``gidMappings`` and the ``user``
entry of ``linux.namespaces`` (both or neither, as runc), checked as the kernel would
(at most 340 lines, no overlap, within 2^32), and what such a container cannot have
(``privileged``, device nodes, an unmapped uid or gid)."""

from __future__ import annotations

from nsrun.bundle.configfields import Fields

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from nsrun.request import Device

Mapping = tuple[int, int, int]  # (containerID, hostID, size), as in /proc/<pid>/uid_map
_MAX_MAPPINGS = 340  # the kernel's limit on lines of a uid_map (Linux >= 4.15)


def _overlap(ranges: list[tuple[int, int]]) -> bool:
    ranges = sorted(ranges)
    return any(a + n > b for (a, n), (b, _) in zip(ranges, ranges[1:], strict=False))


def _mapping_list(f: Fields, key: str) -> tuple[Mapping, ...]:
    out = []
    listed = f.get(f"linux.{key}", list) or []
    for i, m in enumerate(listed):
        where = f"linux.{key}[{i}]"
        if not isinstance(m, dict) or set(m) - {"containerID", "hostID", "size"}:
            raise f.error(where, "malformed mapping: expected {containerID, hostID, size}")
        cid, hid, size = (f.uint(f"{where}.{part}", m.get(part))
                          for part in ("containerID", "hostID", "size"))
        if size == 0:
            raise f.error(f"{where}.size", "malformed mapping: size must be at least 1")
        if cid + size > 2**32 or hid + size > 2**32:
            raise f.error(where, "malformed mapping: the range passes 2^32")
        out.append((cid, hid, size))
    if len(out) > _MAX_MAPPINGS:
        raise f.error(f"linux.{key}", f"at most {_MAX_MAPPINGS} mappings")
    if _overlap([(c, n) for c, _, n in out]) or _overlap([(h, n) for _, h, n in out]):
        raise f.error(f"linux.{key}", "malformed mapping: the ranges overlap")
    return tuple(out)


def mappings(f: Fields) -> tuple[tuple[Mapping, ...], tuple[Mapping, ...]]:
    """``linux.uidMappings``/``gidMappings`` and the ``user`` namespace that needs them:
    both or neither (as runc). Returns (uid mappings, gid mappings), empty without one."""
    uids, gids = _mapping_list(f, "uidMappings"), _mapping_list(f, "gidMappings")
    user_ns = None
    for i, ns in enumerate(f.get("linux.namespaces", list, [])):
        if isinstance(ns, dict) and ns.get("type") == "user":
            user_ns = f"linux.namespaces[{i}]"
            if ns.get("path"):
                raise f.error(f"{user_ns}.path", "joining an existing user namespace is not "
                                                 "supported: give uidMappings/gidMappings")
    if user_ns is None:
        for key, listed in (("uidMappings", uids), ("gidMappings", gids)):
            if listed:
                raise f.error(f"linux.{key}", "mappings need a user namespace "
                                              '({"type": "user"} in linux.namespaces)')
        return (), ()
    for key, listed in (("uidMappings", uids), ("gidMappings", gids)):
        if not listed:
            raise f.error(f"linux.{key}", f"a user namespace ({user_ns}) needs {key}")
    return uids, gids


def _mapped(ids: tuple[Mapping, ...], value: int) -> bool:
    return any(c <= value < c + n for c, _, n in ids)


def check_user_ns(f: Fields, uids: tuple[Mapping, ...], gids: tuple[Mapping, ...], uid: int,
                   gid: int, additional: tuple[int, ...], privileged: bool,
                   devices: tuple[Device, ...]) -> None:
    """What a container in a user namespace cannot have (BundleError, before any clone)."""
    if privileged:
        raise f.error("linux.uidMappings", "a privileged container cannot run in a user "
                                           "namespace")
    if devices:
        raise f.error("linux.devices", f"device nodes cannot be created in a user namespace "
                                       f"({devices[0].path})")
    if not _mapped(uids, uid):
        raise f.error("linux.uidMappings", f"the container's uid {uid} is not mapped")
    for g in (gid, *additional):
        if not _mapped(gids, g):
            raise f.error("linux.gidMappings", f"the container's gid {g} is not mapped")
