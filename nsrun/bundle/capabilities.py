"""A container's capability sets: the bundle's ``process.capabilities`` (runc's names,
``CAP_NET_ADMIN``), checked against what nsrun itself holds and against what ``capset``
accepts, and the Kubernetes ``securityContext.capabilities`` add/drop on top (containerd's
order: ``ALL`` first, then each add, then each drop). Capability numbers are the kernel's,
read from the extension (:mod:`nsrun.native`).
"""

from __future__ import annotations

import json
from typing import Any

from nsrun import native
from nsrun.bundle.configfields import Fields, json_type
from nsrun.core import capabilities as capnames
from nsrun.errors import BundleError, PreflightError
from nsrun.request import CapSets

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations are strings anyway
if TYPE_CHECKING:
    from nsrun.bundle.hostfacts import HostFacts
    from nsrun.core.spec import SecurityContext

# A bundle that names no capabilities gets what a Kubernetes pod gets from containerd (and
# CRI-O): the 14 default capabilities, so an image that works in a cluster works here.
DEFAULT_CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def cap_mask(names: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << native.CAPABILITIES[name]
    return mask


def cap_list(mask: int) -> list[str]:
    return [native.CAP_NAMES[i] for i in sorted(native.CAP_NAMES) if mask >> i & 1]


def kubernetes_capability(name: Any) -> str:
    """``NET_ADMIN`` (or ``CAP_NET_ADMIN``, any case) → ``CAP_NET_ADMIN``; ``ValueError`` for
    a name the kernel does not have (the rule pod validation applies: ``core.capabilities``)."""
    if not isinstance(name, str):
        raise ValueError(f"capability must be a string, not {json_type(name)}")
    if capnames.unknown(name, native.CAPABILITIES):
        raise ValueError(f'unknown capability "{name}"')
    return capnames.canonical(name)


def bundle_capabilities(f: Fields, host: HostFacts, warnings: list[str]) -> CapSets:
    caps = f.get("process.capabilities", dict)
    if caps is None:
        default = cap_mask(DEFAULT_CAPABILITIES)
        return CapSets(bounding=default, effective=default, permitted=default)
    masks = {}
    for name in CAP_SETS:
        listed = f.get(f"process.capabilities.{name}", list, [])
        mask = 0
        for i, cap in enumerate(listed):
            if not isinstance(cap, str) or cap not in native.CAPABILITIES:
                raise f.error(f"process.capabilities.{name}[{i}]",
                              f"unknown capability {json.dumps(cap)}")
            bit = 1 << native.CAPABILITIES[cap]
            if not host.capabilities & bit:
                raise f.error(f"process.capabilities.{name}[{i}]",
                              f"{cap} is not available to nsrun on this host (it is not in "
                              "nsrun's own bounding set)")
            mask |= bit
        masks[name] = mask
    return consistent(CapSets(**masks), "process.capabilities", f.error, warnings)


def consistent(caps: CapSets, where: str, error: Any, warnings: list[str]) -> CapSets:
    """Sets the kernel accepts: capset refuses an effective cap outside permitted and an
    inheritable one outside bounding; ambient ones outside permitted ∩ inheritable cannot
    be raised (dropped, as runc and crun do, with a warning)."""
    extra = caps.effective & ~caps.permitted
    if extra:
        raise error(f"{where}.effective", f"{' '.join(cap_list(extra))} not in the permitted "
                                          "set (the kernel refuses that)")
    extra = caps.inheritable & ~caps.bounding
    if extra:
        raise error(f"{where}.inheritable", f"{' '.join(cap_list(extra))} not in the "
                                            "bounding set (the kernel refuses that)")
    stray = caps.ambient & ~(caps.permitted & caps.inheritable)
    if stray:
        warnings.append(f"{where}.ambient: {' '.join(cap_list(stray))} ignored: an ambient "
                        "capability must be permitted and inheritable")
        caps = CapSets(caps.bounding, caps.effective, caps.permitted, caps.inheritable,
                       caps.ambient & ~stray)
    return caps


def kube_capabilities(caps: CapSets, sc: SecurityContext, host: HostFacts) -> CapSets:
    """containerd's WithCapabilities: ALL first, then each add (bounding, effective,
    permitted), then each drop (all five sets)."""
    assert sc.capabilities is not None
    add, drop = sc.capabilities.add or [], sc.capabilities.drop or []
    names: dict[str, list[tuple[int, str]]] = {"add": [], "drop": []}
    for which, listed in (("add", add), ("drop", drop)):
        for i, name in enumerate(listed):
            if capnames.is_all(name):
                continue
            try:
                names[which].append((i, kubernetes_capability(name)))
            except ValueError as err:
                raise BundleError(f"securityContext.capabilities.{which}[{i}]: {err}") from None
    b, e, p, i, a = (caps.bounding, caps.effective, caps.permitted, caps.inheritable,
                     caps.ambient)
    if any(capnames.is_all(n) for n in add):
        b = e = p = host.capabilities
    if any(capnames.is_all(n) for n in drop):
        b = e = p = i = a = 0
    for k, name in names["add"]:
        bit = 1 << native.CAPABILITIES[name]
        if not host.capabilities & bit:  # a valid pod this host cannot run (exit 3)
            raise PreflightError(f"securityContext.capabilities.add[{k}]: {name} is not "
                                 "available to nsrun on this host (it is not in nsrun's own "
                                 "bounding set)")
        b, e, p = b | bit, e | bit, p | bit
    for _, name in names["drop"]:
        bit = ~(1 << native.CAPABILITIES[name])
        b, e, p, i, a = b & bit, e & bit, p & bit, i & bit, a & bit
    return CapSets(b, e, p, i, a)
