"""The pod network on the host: the world's bridge, each pod's veth, the node's address.

* ``ensure_bridge`` (once per world): the bridge with the gateway address, up, and two
  sysctls of its own: ``forwarding=1`` (enough for packets that enter from the bridge; the
  host's global ``ip_forward`` is left alone) and ``send_redirects=0`` (pods reach each
  other's Services through the gateway, which must not tell them to bypass it). A pod CIDR
  that an as-specific host route already covers (another bridge, another world) is refused
  before anything is made.
* ``attach``/``detach`` (every pod): the veth pair with its pod end created directly inside
  the pod's network namespace as ``eth0``, the pod's address, the cluster DNS address on the
  pod's ``lo``, the default route via the gateway.

All of it through ``nsrun.host.rtnl`` (why not pyroute2: see there).
* ``remove_bridge``: when the world's last pod is gone.
* ``node_ip``: the node's address (that of the interface of the default route), the pods'
  ``status.hostIP``.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import socket
import struct

from nsrun.core.netconfig import NetConfig
from nsrun.errors import SandboxError
from nsrun.host.rtnl import Rtnl

POD_IFNAME = "eth0"
LO_INDEX = 1
SIOCGIFADDR = 0x8915


def bridge_index(name: str) -> int | None:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def ensure_bridge(cfg: NetConfig) -> int:
    """The bridge's ifindex, creating and configuring it first if needed (call with the
    world's lock held)."""
    index = bridge_index(cfg.bridge)
    if index is not None:
        return index
    from nsrun.host import worldgc

    worldgc.collect()  # a dead world's bridge must not block this one's
    clash = overlapping_route(cfg.pod_net, routes())
    if clash is not None:
        net, dev = clash
        raise SandboxError(f"pod CIDR {cfg.pod_cidr} overlaps the host route {net} dev {dev}: "
                           "choose another --pod-cidr")
    try:
        with Rtnl.open() as rtnl:
            index = rtnl.add_bridge(cfg.bridge)
            rtnl.set_alias(index, cfg.root)
            _bridge_sysctls(cfg.bridge)
            rtnl.add_address(index, cfg.gateway, cfg.prefixlen)
    except OSError as err:
        remove_bridge(cfg)
        raise SandboxError("create bridge", cfg.bridge, err.errno or 0) from None
    return index


def routes(table: str = "/proc/net/route") -> list[tuple[ipaddress.IPv4Network, str]]:
    """The main table's IPv4 routes: (destination, device)."""
    out = []
    with open(table) as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            dest, mask = (int.from_bytes(bytes.fromhex(x), "little") for x in (fields[1],
                                                                               fields[7]))
            out.append((ipaddress.IPv4Network((dest, bin(mask).count("1")), strict=False),
                        fields[0]))
    return out


def overlapping_route(mine: ipaddress.IPv4Network,
                      table: list[tuple[ipaddress.IPv4Network, str]]
                      ) -> tuple[ipaddress.IPv4Network, str] | None:
    """A route at least as specific as ``mine`` that overlaps it (another world's bridge,
    a host network); a wider one (a default route, 169.254.0.0/16) is no clash."""
    return next(((net, dev) for net, dev in table
                 if net.prefixlen >= mine.prefixlen and net.overlaps(mine)), None)


def _bridge_sysctls(bridge: str) -> None:
    for key, value in (("forwarding", "1"), ("send_redirects", "0")):
        with open(f"/proc/sys/net/ipv4/conf/{bridge}/{key}", "w") as f:
            f.write(value)


def remove_bridge(cfg: NetConfig) -> None:
    with Rtnl.open() as rtnl:
        rtnl.delete_link(cfg.bridge)


def attach(cfg: NetConfig, net_fd: int, veth: str, ip: str) -> None:
    """Give the pod whose network namespace is ``net_fd`` its ``eth0`` (on the bridge) and
    ``ip``; on failure nothing of it is left."""
    master = bridge_index(cfg.bridge)
    if master is None:
        raise SandboxError("attach pod network: no bridge", cfg.bridge, errno.ENODEV)
    try:
        with Rtnl.open() as host:
            host.add_veth(veth, POD_IFNAME, net_fd, master)
        with Rtnl.open_in(net_fd) as pod:
            eth0 = pod.link_index(POD_IFNAME)
            pod.set_up(eth0)
            pod.add_address(eth0, ip, cfg.prefixlen)
            pod.add_address(LO_INDEX, cfg.cluster_dns, 32)
            pod.add_default_route(cfg.gateway, eth0)
    except OSError as err:
        detach(veth)
        raise SandboxError("attach pod network", veth, err.errno or 0) from None


def detach(veth: str) -> bool:
    """Remove the pod's veth pair (its host end); False when it was already gone."""
    with Rtnl.open() as host:
        return host.delete_link(veth)


def node_ip(route_table: str = "/proc/net/route") -> str:
    """The IPv4 address of the interface of the default route ("" when there is none)."""
    try:
        with open(route_table) as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return ""
    dev = next((r[0] for r in rows if len(r) > 2 and r[1] == "00000000"), None)
    if dev is None:
        return ""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            out = fcntl.ioctl(s.fileno(), SIOCGIFADDR, struct.pack("256s", dev.encode()[:15]))
        except OSError:
            return ""
    return socket.inet_ntoa(out[20:24])


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")
