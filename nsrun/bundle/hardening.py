"""What keeps device nodes and host keys out of a container beyond its device cgroup (issue 9):
``nodev`` on its mounts, no ``CAP_MKNOD`` where no device cgroup exists, and the name of its
own session keyring.

* **nodev**: ``/dev`` (a tmpfs) and every volume are mounted ``nodev``, so a node made (or
  found) there does not open (``EACCES``) whatever the device cgroup says; the rootfs gets it
  from the C child (``csrc/mount.c``, ``bind_rootfs``). Left alone: ``devpts`` (its ptys are
  nodes), a bind whose source is itself a device node (a ``hostPath`` of type
  ``CharDevice``), ``/dev`` of a container that creates device nodes there (the bundle's
  ``linux.devices``, a privileged container's host devices), and every mount of a privileged
  container. The nodes nsrun binds into ``/dev`` (null, zero, ...) are mounts of their own
  and keep opening.
* **--cgroups none**: there is no cgroup to hold a device allow-list, so ``CAP_MKNOD`` leaves
  every capability set (a privileged container keeps it) and ``nodev`` is all that refuses.
* **keyring**: runc's ``_ses.<container id>``; a pod container's id here is
  ``<namespace>_<pod>_<container>``.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import msgspec

NODEV_SKIP_TYPES = frozenset({"devpts"})
_MKNOD_BIT = 1 << 27  # CAP_MKNOD (<linux/capability.h>)


def _is_device(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode)


def _needs_dev(m: dict[str, Any], makes_nodes: bool) -> bool:
    """Whether ``m`` must stay without ``nodev``."""
    if m.get("type") in NODEV_SKIP_TYPES:
        return True
    if m.get("destination", "").rstrip("/") == "/dev" and makes_nodes:
        return True
    opts = m.get("options") or []
    is_bind = m.get("type") == "bind" or "bind" in opts or "rbind" in opts
    return is_bind and _is_device(m.get("source", ""))


def nodev(mounts: list[dict[str, Any]], *, makes_nodes: bool,
          privileged: bool) -> list[dict[str, Any]]:
    """``mounts`` with ``nodev`` added where the module docstring says (``dev`` dropped)."""
    if privileged:
        return mounts
    out = []
    for m in mounts:
        opts = list(m.get("options") or [])
        if not _needs_dev(m, makes_nodes) and "nodev" not in opts:
            m = {**m, "options": [o for o in opts if o != "dev"] + ["nodev"]}
        out.append(m)
    return out


def without_mknod(plan: Any) -> Any:
    """The launch plan with ``CAP_MKNOD`` out of every capability set (not for a privileged
    container, which is allowed every device)."""
    c = plan.confinement
    if c.privileged:
        return plan
    caps = c.capabilities
    keep = ~_MKNOD_BIT
    caps = msgspec.structs.replace(
        caps, bounding=caps.bounding & keep, effective=caps.effective & keep,
        permitted=caps.permitted & keep, inheritable=caps.inheritable & keep,
        ambient=caps.ambient & keep)
    return msgspec.structs.replace(plan, confinement=msgspec.structs.replace(
        c, capabilities=caps))


def keyring_name(pod: Any, container: str) -> str:
    """The session keyring of a pod's container (runc names it ``_ses.<id>``)."""
    meta = pod.metadata
    return f"_ses.{meta.namespace or 'default'}_{meta.name}_{container}"
