"""Everything network a supervisor does for its pod, in one place.

``Networking.start``: the pod's address and veth (``podnetwork``), the files the kubelet
writes (``podfiles``), the Service environment variables, and the pod's cluster DNS
(``dns``) when its resolv.conf points at it. ``restart`` moves all of it to a new sandbox;
``close`` undoes it. ``published`` is called with every status the supervisor writes: when
what the pod's Services depend on changed (IP, readiness, phase, deletion), the world's
endpoints, DNS view and rules are recomputed (``netsync``).

When the pod CIDR is full, ``start`` raises ``NoAddress``: the supervisor records it and
retries (the pod waits, its containers do not start).

The DNS address: the cluster DNS address on the pod's own ``lo``; for a ``hostNetwork`` pod
with ``dnsPolicy: ClusterFirstWithHostNet``, which shares the node's namespace, a loopback
address of its own (``127.254.x.y``, from its uid) takes its place in resolv.conf.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from nsrun.core import servicelinks
from nsrun.core.netconfig import NetConfig
from nsrun.core.spec import Pod
from nsrun.errors import SandboxError
from nsrun.host.sandbox import Sandbox
from nsrun.netstate import NetState
from nsrun.runtime.podnetwork import PodNet, PodNetwork
from nsrun.state import PodPaths


class Networking:
    """One pod's network, DNS and network files."""

    def __init__(self, root: Path, cfg: NetConfig, pod: Pod, paths: PodPaths,
                 resolv_conf: str | None) -> None:
        self.root, self.cfg, self.pod, self.paths = root, cfg, pod, paths
        self.resolv_conf = resolv_conf
        self.podnet = PodNet(root, cfg, pod, paths)
        self.record: PodNetwork | None = None
        self.dns = None
        self.search: tuple[str, ...] = ()
        self.upstreams: tuple[str, ...] = ()
        self.events: list[tuple[str, str]] = []
        self._facts: tuple | None = None

    def start(self, sandbox: Sandbox) -> None:
        """Address, veth, files, Service variables and DNS for ``sandbox``."""
        self.record = self.podnet.setup(sandbox.ns_fds["net"])
        self._serve(sandbox)

    def resume(self, sandbox: Sandbox) -> None:
        """A new supervisor re-attaching to a live sandbox: the address and veth recorded in
        ``network.json`` (``start`` when there is none), files, variables and DNS again."""
        from nsrun.runtime.podnetwork import read_record

        self.record = self.podnet.record = read_record(self.paths)
        if self.record is None:
            return self.start(sandbox)
        self._serve(sandbox)

    def _serve(self, sandbox: Sandbox) -> None:
        from nsrun.runtime import podfiles

        assert self.record is not None
        host = podfiles.host_resolv(self.resolv_conf)
        mounts, resolv, self.events = podfiles.write(self.pod, self.paths, self.cfg,
                                                     [self.record.ip], host, self.dns_address)
        self.search = resolv.searches
        self.upstreams = tuple(s for s in host.nameservers if s != self.cfg.cluster_dns)
        sandbox.pod_ip, sandbox.host_ip = self.record.ip, self.record.host_ip
        sandbox.managed_mounts = mounts
        sandbox.service_links = self.service_env
        self._serve_dns(sandbox, resolv.nameservers)

    @property
    def dns_address(self) -> str:
        if not self.pod.spec.host_network:
            return self.cfg.cluster_dns
        h = zlib.crc32(self.pod.metadata.uid.encode())
        return f"127.254.{h >> 8 & 255}.{h & 255 or 1}"

    def _serve_dns(self, sandbox: Sandbox, nameservers: tuple[str, ...]) -> None:
        self._close_dns()
        if self.record is None or self.dns_address not in nameservers:
            return
        from nsrun.runtime.dns import PodDNS

        try:
            self.dns = PodDNS(sandbox.ns_fds["net"], self.dns_address,
                              NetState(self.root).view_file, self.search, self.upstreams)
        except OSError as err:
            raise SandboxError("serve the cluster DNS on", f"{self.dns_address}:53",
                               err.errno or 0) from None

    def restart(self, sandbox: Sandbox) -> None:
        """The pod got new namespaces (a pod restart): the same address in the new ones."""
        if self.record is None:
            return
        self.podnet.attach(sandbox.ns_fds["net"], again=True)
        if self.dns is not None:
            self._serve_dns(sandbox, (self.dns_address,))

    def service_env(self) -> list[tuple[str, str]]:
        """The Service variables for a container starting now."""
        ns = self.pod.metadata.namespace
        services = servicelinks.visible_services(NetState(self.root).services(ns), ns,
                                                 self.pod.spec.enable_service_links)
        return servicelinks.service_env(services)

    def status(self) -> dict[str, Any]:
        """``podIP``/``podIPs``/``hostIP``/``hostIPs`` for the pod's status."""
        out: dict[str, Any] = {}
        if self.record is None:
            return out
        if self.record.host_ip:
            out["hostIP"] = self.record.host_ip
            out["hostIPs"] = [{"ip": self.record.host_ip}]
        if self.record.ip:
            out["podIP"] = self.record.ip
            out["podIPs"] = [{"ip": self.record.ip}]
        return out

    def published(self, pod: dict[str, Any]) -> None:
        """Recompute the world's Services when what they see of this pod changed."""
        from nsrun.core.endpoints import facts

        now = facts(pod)
        if now == self._facts:
            return
        self._facts = now
        if NetState(self.root).has_services():
            from nsrun.runtime import netsync

            netsync.sync(self.root, self.cfg)

    def fds(self) -> list[int]:
        return self.dns.fds() if self.dns is not None else []

    def handle(self, fd: int) -> None:
        if self.dns is not None:
            self.dns.handle(fd)

    def _close_dns(self) -> None:
        if self.dns is not None:
            self.dns.close()
            self.dns = None

    def close(self) -> None:
        """DNS off, veth removed, address freed (the world's last pod takes the bridge)."""
        self._close_dns()
        self.podnet.teardown()
        self.record = None
