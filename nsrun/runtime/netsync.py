"""Keeping a world's Services served: endpoints → DNS view and nftables rules.

There is no controller process: whoever changes something a Service depends on calls
``sync`` — ``create``/``apply``/``delete`` of a Service, a supervisor whose pod got or lost
its IP, readiness or existence, ``delete`` after a crashed supervisor. ``sync`` reads the
Services and every live pod's ``status.json`` (a pod whose supervisor is gone serves
nothing), computes the endpoints (``core.endpoints``), writes the DNS view every pod's DNS
reads (``network/view.json``) and replaces the world's nftables table in one transaction.
It runs under ``network/sync.lock``, so the last writer always worked from fresh state.

The table is removed when the world has neither a pod (no bridge) nor a Service.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from nsrun.core import dnsnames, endpoints, proxyrules
from nsrun.core.netconfig import NetConfig
from nsrun.core.service import Service
from nsrun.netstate import NetState
from nsrun.state import StateRoot, supervisor_alive, write_atomic


def live_pods(root: Path) -> list[dict[str, Any]]:
    """The Pod objects of every pod whose supervisor runs."""
    from nsrun.report import statusfile

    state = StateRoot(root)
    out = []
    for name in state.pod_names():
        paths = state.pod(name)
        if supervisor_alive(paths):
            try:
                pod = statusfile.read(paths)
            except (OSError, msgspec.DecodeError):
                pod = None
            if pod:
                out.append(pod)
    return out


def sync(root: Path, cfg: NetConfig) -> None:
    """Recompute every Service's endpoints; write the DNS view; load the rules (or remove
    the table when the world has no pod and no Service)."""
    from nsrun.host import network, nft

    net = NetState(root)
    with net.locked("sync.lock"):
        services = net.services()
        pods = live_pods(root)
        pairs = [(svc, endpoints.addresses(svc, pods)) for svc in services]
        # derived from the Services and the pods at every sync: atomic, no fsync
        write_atomic(net.view_file, msgspec.json.encode(view(cfg, pairs, pods)), durable=False)
        if services or network.bridge_index(cfg.bridge) is not None:
            nft.load(proxyrules.ruleset(cfg, pairs))
        else:
            nft.remove_table(cfg.table)


def view(cfg: NetConfig, pairs: list[tuple[Service, list[endpoints.Address] | None]],
         pods: list[dict[str, Any]]) -> dnsnames.View:
    records = []
    for svc, addrs in pairs:
        ready = tuple(dnsnames.EndpointRecord(a.ip, a.hostname, a.ports)
                      for a in addrs or () if a.ready)
        ports = tuple((p.name or "", p.protocol or "TCP", p.port) for p in svc.spec.ports or ())
        records.append(dnsnames.ServiceRecord(svc.metadata.name, svc.metadata.namespace,
                                              svc.spec.cluster_ip or "", ports, ready))
    spaces = sorted({p.get("metadata", {}).get("namespace", "default") for p in pods})
    return dnsnames.View(cfg.cluster_domain, tuple(records), tuple(spaces))
