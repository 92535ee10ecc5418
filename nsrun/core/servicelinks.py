"""Service environment variables, as the kubelet gives every container (pure).

``service_env(services)``: for each Service with a ClusterIP (not headless), in name order,
``<NAME>_SERVICE_HOST``, ``<NAME>_SERVICE_PORT``, ``<NAME>_SERVICE_PORT_<PORTNAME>`` and the
Docker-link style ``<NAME>_PORT``, ``<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]``
(``FromServices``, ``makeLinkVariables``). ``visible_services`` picks the Services of the
pod's namespace when ``enableServiceLinks`` is not false. nsrun has no API server, so there
is no ``kubernetes`` Service and no ``KUBERNETES_*`` variables.
"""

from __future__ import annotations

from collections.abc import Iterable

from nsrun.core.service import Service


def var_name(name: str) -> str:
    """``my-svc`` → ``MY_SVC`` (``makeEnvVariableName``)."""
    return name.upper().replace("-", "_")


def visible_services(services: Iterable[Service], namespace: str,
                     enable_links: bool | None) -> list[Service]:
    """The Services whose variables a container of the pod gets."""
    if enable_links is False:
        return []
    return [s for s in services if s.metadata.namespace == namespace]


def service_env(services: Iterable[Service]) -> list[tuple[str, str]]:
    """The variables, Services sorted by name, ports in spec order."""
    out: list[tuple[str, str]] = []
    for svc in sorted(services, key=lambda s: s.metadata.name):
        ip = svc.spec.cluster_ip
        ports = svc.spec.ports or []
        if not ip or ip == "None" or not ports:
            continue
        prefix = var_name(svc.metadata.name)
        out.append((f"{prefix}_SERVICE_HOST", ip))
        out.append((f"{prefix}_SERVICE_PORT", str(ports[0].port)))
        out += [(f"{prefix}_SERVICE_PORT_{var_name(p.name)}", str(p.port))
                for p in ports if p.name]
        out += _link_vars(prefix, ip, ports)
    return out


def _link_vars(prefix: str, ip: str, ports) -> list[tuple[str, str]]:
    first = ports[0]
    out = [(f"{prefix}_PORT", f"{(first.protocol or 'TCP').lower()}://{ip}:{first.port}")]
    for p in ports:
        proto = (p.protocol or "TCP").upper()
        base = f"{prefix}_PORT_{p.port}_{proto}"
        out += [(base, f"{proto.lower()}://{ip}:{p.port}"), (f"{base}_PROTO", proto.lower()),
                (f"{base}_PORT", str(p.port)), (f"{base}_ADDR", ip)]
    return out

