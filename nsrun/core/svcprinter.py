"""kubectl's output for Services and Endpoints: ``get`` rows and ``describe`` (pure).

Services come as stored (plain data, as ``get svc -o json`` prints them); endpoints as
``core.endpoints.Address`` lists (None: the Service has no selector, so no Endpoints).
"""

from __future__ import annotations

from typing import Any

from nsrun.core.endpoints import Address, endpoints_column
from nsrun.core.printer import human_duration, parse_time

SERVICE_COLUMNS = ("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
ENDPOINTS_COLUMNS = ("NAME", "ENDPOINTS", "AGE")
POD_WIDE_COLUMNS = ("IP", "NODE", "NOMINATED NODE", "READINESS GATES")


def _age(obj: dict[str, Any], now: float) -> str:
    created = parse_time(obj.get("metadata", {}).get("creationTimestamp"))
    return human_duration(now - (created or now))


def ports_column(spec: dict[str, Any]) -> str:
    ports = [f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or ()]
    return ",".join(ports) or "<none>"


def selector_text(selector: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector or {}).items())) or "<none>"


def service_row(svc: dict[str, Any], now: float, wide: bool = False) -> tuple[str, ...]:
    spec = svc.get("spec", {})
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    row = (svc["metadata"]["name"], spec.get("type", "ClusterIP"), ips[0] if ips else "<none>",
           "<none>", ports_column(spec), _age(svc, now))
    return row + (selector_text(spec.get("selector")),) if wide else row


def service_columns(wide: bool) -> tuple[str, ...]:
    return SERVICE_COLUMNS + (("SELECTOR",) if wide else ())


def endpoints_row(svc: dict[str, Any], addrs: list[Address] | None,
                  now: float) -> tuple[str, str, str]:
    return svc["metadata"]["name"], endpoints_column(addrs), _age(svc, now)


def pod_wide(pod: dict[str, Any]) -> tuple[str, str, str, str]:
    """The four columns ``get pods -o wide`` adds."""
    status, spec = pod.get("status", {}), pod.get("spec", {})
    return (status.get("podIP") or "<none>", spec.get("nodeName") or "<none>", "<none>",
            "<none>")


def describe_service(svc: dict[str, Any], addrs: list[Address] | None) -> str:
    """kubectl's ``describe service`` text."""
    meta, spec = svc.get("metadata", {}), svc.get("spec", {})
    ip = spec.get("clusterIP", "")
    rows = [("Name", meta.get("name", "")), ("Namespace", meta.get("namespace", "default")),
            ("Labels", _lines(meta.get("labels"))), ("Annotations", _lines(
                meta.get("annotations"))), ("Selector", selector_text(spec.get("selector"))),
            ("Type", spec.get("type", "ClusterIP"))]
    if ip and ip != "None":
        rows += [("IP Family Policy", spec.get("ipFamilyPolicy", "SingleStack")),
                 ("IP Families", ",".join(spec.get("ipFamilies") or ["IPv4"]))]
    rows += [("IP", ip), ("IPs", ",".join(spec.get("clusterIPs") or [ip]))]
    for port in spec.get("ports") or ():
        proto = port.get("protocol", "TCP")
        rows.append(("Port", f"{port.get('name') or '<unset>'}  {port['port']}/{proto}"))
        target = port.get("targetPort", port["port"])
        rows.append(("TargetPort", f"{target}/{proto}"))
        rows.append(("Endpoints", _port_endpoints(addrs, port.get("name") or "")))
    rows += [("Session Affinity", spec.get("sessionAffinity", "None")),
             ("Internal Traffic Policy", spec.get("internalTrafficPolicy", "Cluster")),
             ("Events", "<none>")]
    width = max(len(k) for k, _ in rows) + 3
    return "\n".join(f"{(k + ':').ljust(width)}{v}".rstrip() for k, v in rows)


def _lines(values: dict[str, str] | None) -> str:
    pad = "\n" + " " * 26
    return pad.join(f"{k}={v}" for k, v in sorted((values or {}).items())) or "<none>"


def _port_endpoints(addrs: list[Address] | None, name: str) -> str:
    items = [f"{a.ip}:{a.port(name)}" for a in addrs or ()
             if a.ready and a.port(name) is not None]
    return ",".join(items) or "<none>"
