"""One nsrun world's network settings, names and address arithmetic (pure).

A *world* is everything under one ``--root``: its pods share one bridge, one nftables table
and one pod CIDR, its Services one service CIDR. Names derive from the root so that worlds
never share (or tear down) each other's objects: the default root gets the friendly
``nsrun0`` bridge and ``nsrun`` table, any other root ``nsrun-<8 hex>`` for both (a hash of
its path). Host veth ends are ``nsrun<10 hex>`` (of world and pod uid): every link nsrun makes
carries "nsrun" in its name. (CRC-32, not a cryptographic hash: names only need to differ,
and zlib is already loaded on the start path where hashlib's OpenSSL would cost 3 ms.)

Address plan: the pod CIDR's first host is the gateway on the bridge, the others go to pods;
the cluster DNS address (default: the service CIDR's tenth address, as kubeadm's
``10.96.0.10``) is on every pod's ``lo`` and is never given to a Service.
"""

from __future__ import annotations

import ipaddress
import zlib

import msgspec

from nsrun.errors import Problem

DEFAULT_POD_CIDR = "169.254.100.0/24"
DEFAULT_SERVICE_CIDR = "169.254.200.0/24"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_ROOT = "/run/nsrun"
DNS_OFFSET = 10
MASQUERADE_MARK = 0x4000  # kube-proxy's masquerade bit


class NetConfig(msgspec.Struct, frozen=True):
    """A world's network settings (stored in the state root once a pod or Service uses
    them)."""

    pod_cidr: str = DEFAULT_POD_CIDR
    service_cidr: str = DEFAULT_SERVICE_CIDR
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    cluster_dns: str = ""
    bridge: str = "nsrun0"
    table: str = "nsrun"
    world: str = ""
    root: str = ""  # the state root; also on the bridge (its ifalias) and in the table's comment

    @property
    def pod_net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.pod_cidr)

    @property
    def service_net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.service_cidr)

    @property
    def gateway(self) -> str:
        return str(self.pod_net.network_address + 1)

    @property
    def prefixlen(self) -> int:
        return self.pod_net.prefixlen

    def pod_range(self) -> tuple[str, str]:
        """The first and last address a pod may get (the gateway is not one)."""
        net = self.pod_net
        return str(net.network_address + 2), str(net.broadcast_address - 1)

    def pod_addresses(self) -> list[str]:
        """Every address a pod may get, lowest first."""
        first, last = (int(ipaddress.IPv4Address(a)) for a in self.pod_range())
        return [_dotted(a) for a in range(first, last + 1)]

    def service_addresses(self) -> list[str]:
        """Every address a Service may get, lowest first (not the cluster DNS)."""
        return [str(a) for a in self.service_net.hosts() if str(a) != self.cluster_dns]

    def veth_name(self, pod_uid: str) -> str:
        """The host end of a pod's veth: ``nsrun`` + 10 hex of (world, pod uid)."""
        return "nsrun" + _digest(f"{self.world}/{pod_uid}") + _digest(pod_uid)[:2]


def _dotted(address: int) -> str:
    """``str(IPv4Address(address))`` without building an object per address."""
    return ".".join(str(address >> shift & 255) for shift in (24, 16, 8, 0))


def _digest(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


def world_name(root: str) -> str:
    """``nsrun`` for the default state root, ``nsrun-<8 hex>`` (a hash of ``root``, an
    absolute normalized path) for any other: the name of the world's nftables table, its
    systemd units' prefix and its default cgroup parent."""
    return "nsrun" if root == DEFAULT_ROOT else f"nsrun-{_digest(root)}"


def make_config(root: str, pod_cidr: str = DEFAULT_POD_CIDR,
                service_cidr: str = DEFAULT_SERVICE_CIDR,
                cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
                cluster_dns: str = "") -> NetConfig:
    """The settings of the world at ``root`` (an absolute, normalized path); ``ValueError``
    naming the option when one is unusable."""
    problems = check_options(pod_cidr, service_cidr, cluster_domain, cluster_dns)
    if problems:
        raise ValueError("; ".join(problems))
    svc = ipaddress.IPv4Network(service_cidr)
    dns = cluster_dns or str(svc.network_address + DNS_OFFSET)
    world, name = _digest(root), world_name(root)
    return NetConfig(str(ipaddress.IPv4Network(pod_cidr)), str(svc), cluster_domain.strip("."),
                     dns, "nsrun0" if root == DEFAULT_ROOT else name, name, world, root)


def check_options(pod_cidr: str, service_cidr: str, domain: str, dns: str) -> list[str]:
    out: list[str] = []
    nets = []
    for option, value, smallest in (("--pod-cidr", pod_cidr, 29),
                                    ("--service-cidr", service_cidr, 28)):
        try:
            net = ipaddress.IPv4Network(value)
        except ValueError as err:
            out.append(f"{option} {value}: not an IPv4 CIDR ({err})")
            continue
        if net.prefixlen > smallest:
            out.append(f"{option} {value}: too small (at most /{smallest})")
        nets.append(net)
    if len(nets) == 2 and nets[0].overlaps(nets[1]):
        out.append(f"--pod-cidr {pod_cidr} and --service-cidr {service_cidr} overlap")
    labels = domain.strip(".").split(".")
    if not domain.strip(".") or not all(_label(part) for part in labels):
        out.append(f"--cluster-domain {domain}: not a DNS domain")
    if dns:
        try:
            ipaddress.IPv4Address(dns)
        except ValueError:
            out.append(f"--cluster-dns {dns}: not an IPv4 address")
    return out


def _label(part: str) -> bool:
    return 0 < len(part) <= 63 and all(c.isascii() and (c.isalnum() or c == "-")
                                       for c in part) and part[0] != "-" != part[-1]


def cluster_ip_problem(cfg: NetConfig, ip: str, used: set[str]) -> Problem | None:
    """Why a requested ClusterIP cannot be had (Kubernetes' allocator messages), or None."""
    value = f'[]string{{"{ip}"}}'
    fail = f"{value}: failed to allocate IP {ip}:"
    addr = ipaddress.IPv4Address(ip)
    if addr not in cfg.service_net or ip not in cfg.service_addresses():
        reason = (f"the provided IP ({ip}) is not in the valid range. The range of valid IPs "
                  f"is {cfg.service_cidr}")
        if ip == cfg.cluster_dns:
            reason = "provided IP is already allocated (the cluster DNS address)"
        return Problem("spec.clusterIPs", "Invalid value", f"{fail} {reason}")
    if ip in used:
        return Problem("spec.clusterIPs", "Invalid value", f"{fail} provided IP is already "
                       "allocated")
    return None


def free_address(candidates: list[str], used: set[str], after: str = "") -> str | None:
    """The first candidate not in ``used``, looking from the one after ``after`` on (and
    round to the start): round-robin when ``after`` is the last address handed out."""
    start = candidates.index(after) + 1 if after in candidates else 0
    for i in range(len(candidates)):
        address = candidates[(start + i) % len(candidates)]
        if address not in used:
            return address
    return None


def reverse_pointer(ip: str) -> str:
    """``5.0.96.10.in-addr.arpa`` for ``10.96.0.5``."""
    return ipaddress.IPv4Address(ip).reverse_pointer
