"""Endpoints: which pods serve a Service, on which ports (pure; the endpoints controller).

A pod is a candidate when it is in the Service's namespace, its labels match the selector,
it has a pod IP, it is not terminal (``Succeeded``/``Failed``) and not being deleted. It is
*ready* when its ``Ready`` condition is True (its init containers are done and its
containers ready) or the Service publishes not-ready addresses. A named ``targetPort`` is
looked up in the pod's container ports (name and protocol); a pod without it is left out of
that port. A Service without a selector has no managed Endpoints (``None``).

Pods come as the Pod objects of ``status.json`` (plain data); Services as ``Service``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from nsrun.core.service import Service, ServicePort


class Address(msgspec.Struct, frozen=True):
    """One pod behind a Service."""

    ip: str
    pod: str
    namespace: str
    uid: str = ""
    node: str = ""
    hostname: str = ""
    ready: bool = True
    ports: tuple[tuple[str, int], ...] = ()  # (service port name, target port number)

    def port(self, name: str) -> int | None:
        return next((p for n, p in self.ports if n == name), None)


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def facts(pod: dict[str, Any]) -> tuple:
    """What of a pod its Services depend on (a change means recomputing them)."""
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    return (status.get("podIP"), is_ready(pod), status.get("phase"),
            bool(meta.get("deletionTimestamp")))


def candidate(svc: Service, pod: dict[str, Any]) -> bool:
    meta, status = pod.get("metadata", {}), pod.get("status", {})
    return (meta.get("namespace", "default") == svc.metadata.namespace
            and matches(svc.spec.selector or {}, meta.get("labels") or {})
            and bool(status.get("podIP"))
            and status.get("phase") not in ("Succeeded", "Failed")
            and not meta.get("deletionTimestamp"))


def addresses(svc: Service, pods: list[dict[str, Any]]) -> list[Address] | None:
    """The Service's endpoints, sorted by IP; None without a selector."""
    if not svc.spec.selector:
        return None
    out = []
    for pod in pods:
        if candidate(svc, pod):
            out.append(_address(svc, pod))
    return sorted(out, key=lambda a: tuple(int(x) for x in a.ip.split(".")))


def _address(svc: Service, pod: dict[str, Any]) -> Address:
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod["status"]
    ports = []
    for sp in svc.spec.ports or ():
        number = target_port(sp, spec)
        if number is not None:
            ports.append((sp.name or "", number))
    hostname = spec.get("hostname", "") if spec.get("subdomain") == svc.metadata.name else ""
    return Address(status["podIP"], meta.get("name", ""), meta.get("namespace", "default"),
                   meta.get("uid", ""), spec.get("nodeName", ""), hostname or "",
                   is_ready(pod) or bool(svc.spec.publish_not_ready_addresses), tuple(ports))


def target_port(port: ServicePort, pod_spec: dict[str, Any]) -> int | None:
    """The pod's port number for a Service port (``FindPort``)."""
    target = port.target_port
    if isinstance(target, int):
        return target
    for c in pod_spec.get("containers", []):
        for cp in c.get("ports") or ():
            if cp.get("name") == target and cp.get("protocol", "TCP") == port.protocol:
                return cp.get("containerPort")
    return None


def ready_ips(addrs: list[Address] | None) -> list[str]:
    return [a.ip for a in addrs or () if a.ready]


def backends(svc: Service, port: ServicePort, addrs: list[Address] | None
             ) -> list[tuple[str, int]]:
    """(pod IP, target port) of every ready endpoint of one Service port."""
    out = []
    for a in addrs or ():
        number = a.port(port.name or "")
        if a.ready and number is not None:
            out.append((a.ip, number))
    return out


def endpoints_object(svc: Service, addrs: list[Address] | None,
                     created: str | None = None) -> dict[str, Any]:
    """The v1 Endpoints object (``get ep -o json``): one subset per distinct port set."""
    meta = {"name": svc.metadata.name, "namespace": svc.metadata.namespace}
    if created:
        meta["creationTimestamp"] = created
    if svc.metadata.labels:
        meta["labels"] = dict(svc.metadata.labels)
    subsets: dict[tuple, dict[str, Any]] = {}
    by_name = {p.name or "": p for p in svc.spec.ports or ()}
    for a in addrs or ():
        subset = subsets.setdefault(a.ports, {"ports": [
            {**({"name": n} if n else {}), "port": num, "protocol": by_name[n].protocol}
            for n, num in a.ports]})
        key = "addresses" if a.ready else "notReadyAddresses"
        subset.setdefault(key, []).append(_address_json(a))
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta}
    items = [{k: v for k, v in s.items() if v} for s in subsets.values()]
    if items:
        out["subsets"] = items
    return out


def _address_json(a: Address) -> dict[str, Any]:
    out: dict[str, Any] = {"ip": a.ip}
    if a.hostname:
        out["hostname"] = a.hostname
    if a.node:
        out["nodeName"] = a.node
    out["targetRef"] = {"kind": "Pod", "namespace": a.namespace, "name": a.pod,
                        **({"uid": a.uid} if a.uid else {})}
    return out


def endpoints_column(addrs: list[Address] | None) -> str:
    """``get ep``'s ENDPOINTS: ready ``ip:port``s, the first three then `` + N more...``."""
    items = []
    for a in addrs or ():
        if not a.ready:
            continue
        items += [f"{a.ip}:{p}" for _, p in a.ports] if a.ports else [a.ip]
    if not items:
        return "<none>"
    shown = ",".join(items[:3])
    return shown + (f" + {len(items) - 3} more..." if len(items) > 3 else "")
