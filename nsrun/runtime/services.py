"""Creating, updating and deleting Services in a world (what the API server and the
endpoints controller would do).

A Service gets a ClusterIP from the service CIDR (the lowest free one, or the one it asks
for when free), a ``uid`` and a ``creationTimestamp``, and is stored in the state root; the
world's endpoints, DNS view and rules are then recomputed at once (``netsync.sync``), so a
new Service resolves and routes before the command returns, and a deleted one stops at once.
Every check runs before anything is written: ``problems`` returns, for a batch of Services,
every reason one of them cannot be created, in Kubernetes' words.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import msgspec

from nsrun.core.netconfig import NetConfig, cluster_ip_problem, free_address
from nsrun.core.service import HEADLESS, Service
from nsrun.core.status import rfc3339
from nsrun.errors import Problem, SpecError, StateError
from nsrun.netstate import NetState


def used_ips(net: NetState, skip: tuple[str, str] | None = None) -> set[str]:
    """ClusterIPs taken by stored Services (but ``skip``, a (namespace, name))."""
    return {s.spec.cluster_ip for s in net.services()
            if s.spec.cluster_ip and s.spec.cluster_ip != HEADLESS
            and (s.metadata.namespace, s.metadata.name) != skip}


def problems(root: Path, cfg: NetConfig, services: list[Service],
             replace: bool = False) -> list[tuple[Service, Problem | str]]:
    """Why each of ``services`` cannot be stored: a Problem for its ClusterIP, or a line
    (AlreadyExists) when it exists and ``replace`` is false."""
    net = NetState(root)
    out: list[tuple[Service, Problem | str]] = []
    taken = used_ips(net)
    for svc in services:
        meta = svc.metadata
        old = net.service(meta.namespace, meta.name)
        if old is not None and not replace:
            out.append((svc, f'services "{meta.name}" already exists'))
            continue
        ip = svc.spec.cluster_ip
        if old is not None and ip and ip != old.spec.cluster_ip:
            out.append((svc, Problem("spec.clusterIPs[0]", "Invalid value",
                                     f'"{ip}": may not change once set')))
            continue
        if ip and ip != HEADLESS and (old is None or ip != old.spec.cluster_ip):
            problem = cluster_ip_problem(cfg, ip, taken)
            if problem is not None:
                out.append((svc, problem))
                continue
            taken.add(ip)
    return out


def store(root: Path, cfg: NetConfig, svc: Service) -> str:
    """Create or update ``svc`` (already validated and checked); kubectl's word for what
    happened: created, configured or unchanged."""
    net = NetState(root)
    meta = svc.metadata
    with net.locked():
        old = net.service_object(meta.namespace, meta.name)
        obj = _stored_object(net, cfg, svc, old)
        if old is not None and obj == old:
            return "unchanged"
        net.write_service(obj)
    from nsrun.runtime import netsync

    netsync.sync(root, cfg)
    return "created" if old is None else "configured"


def _stored_object(net: NetState, cfg: NetConfig, svc: Service,
                   old: dict[str, Any] | None) -> dict[str, Any]:
    obj = msgspec.to_builtins(svc)
    meta, spec = obj.setdefault("metadata", {}), obj.setdefault("spec", {})
    meta["namespace"] = svc.metadata.namespace
    if old is not None:
        meta["uid"] = old["metadata"].get("uid", "")
        meta["creationTimestamp"] = old["metadata"].get("creationTimestamp")
        spec.setdefault("clusterIP", old["spec"].get("clusterIP"))
    else:
        from nsrun.runtime.supervise import new_uid

        meta["uid"] = meta.get("uid") or new_uid()
        meta["creationTimestamp"] = rfc3339(time.time())
    if not spec.get("clusterIP"):
        ip = free_address(cfg.service_addresses(), used_ips(net))
        if ip is None:
            raise SpecError([Problem("spec.clusterIPs", "Internal error",
                                     "failed to allocate a serviceIP: range is full")],
                            pod=svc.metadata.name, kind="Service")
        spec["clusterIP"] = ip
    spec["clusterIPs"] = [spec["clusterIP"]]
    if spec["clusterIP"] != HEADLESS:
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    obj["status"] = {"loadBalancer": {}}
    return obj


def delete(root: Path, cfg: NetConfig | None, namespace: str, name: str) -> None:
    """Remove the Service; its rules and DNS name go at once."""
    net = NetState(root)
    with net.locked():
        if not net.remove_service(namespace, name):
            raise StateError(f'services "{name}" not found')
    if cfg is not None:
        from nsrun.runtime import netsync

        netsync.sync(root, cfg)
