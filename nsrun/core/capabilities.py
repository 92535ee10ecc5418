"""Capability names in a container's ``securityContext.capabilities`` (pure).

Kubernetes writes them without the prefix (``NET_ADMIN``); runtimes also take ``CAP_NET_ADMIN``
in any case, and ``ALL``. The API server checks no name, but every runtime refuses one the
kernel does not have when the container is created; nsrun refuses it when the pod is
validated, for ``validate`` and ``run`` alike. The names the kernel has are not typed here:
the caller passes them (``nsrun.native.CAPABILITIES``, read from the C extension).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from nsrun.errors import Problem

ALL = "ALL"


def is_all(name: Any) -> bool:
    return isinstance(name, str) and name.upper() == ALL


def canonical(name: str) -> str:
    """``net_admin``, ``NET_ADMIN`` or ``CAP_NET_ADMIN`` → ``CAP_NET_ADMIN``."""
    upper = name.upper()
    return upper if upper.startswith("CAP_") else "CAP_" + upper


def unknown(name: str, known: Collection[str]) -> str | None:
    """Why ``name`` is not a capability of ``known`` (None when it is one, or ``ALL``)."""
    if is_all(name) or canonical(name) in known:
        return None
    return f"{json.dumps(name)}: unknown capability (the kernel has no {canonical(name)})"


def problems(add: list[str] | None, drop: list[str] | None, path: str,
             known: Collection[str]) -> list[Problem]:
    """Every unknown name of ``add`` and ``drop`` (``path``: the ``capabilities`` field)."""
    out = []
    for which, names in (("add", add or []), ("drop", drop or [])):
        for i, name in enumerate(names):
            why = unknown(name, known)
            if why:
                out.append(Problem(f"{path}.{which}[{i}]", "Invalid value", why))
    return out
