"""The nftables ruleset of one world, in kube-proxy's nftables shape (pure).

``ruleset(cfg, services)`` returns the whole ``nft -f`` script that replaces the world's
table atomically (``add table`` / ``delete table`` / the new table, in one transaction):

* ``nat-prerouting`` (packets from the world's bridge) and ``nat-output`` (the host) jump to
  ``services``: ``ip daddr . meta l4proto . th dport vmap @service-ips`` → one chain per
  Service port → ``numgen random mod N`` → one chain per endpoint that DNATs to
  ``podIP:targetPort``;
* every connection to a Service is marked for masquerade (kube-proxy's ``masqueradeAll``):
  pods share one bridge, so without the host's global ``br_netfilter`` the server's reply
  would bypass the host's connection tracking; ``nat-postrouting`` masquerades marked
  packets, and pod traffic leaving through another interface (egress);
* ``filter-forward`` and ``filter-output`` reject whatever is still addressed to the service
  CIDR after NAT: a Service without ready endpoints, an unused address or port
  ("Connection refused", as kube-proxy's ``no-endpoint-services`` reject).

Chain names follow kube-proxy: ``service-<8 base32 of sha256>-<ns>/<svc>/<proto>/<port>``
(bare in the script: nft 1.0's parser takes no quoted chain names; Service, namespace and
port names are DNS labels, so they only bring ``[a-z0-9-]``).
"""

from __future__ import annotations

import base64

try:  # CPython's builtin: hashlib would map OpenSSL (~3.7 MiB) into every supervisor
    from _sha256 import sha256
except ImportError:  # pragma: no cover - Python 3.12 renamed it
    from hashlib import sha256

from nsrun.core.endpoints import Address, backends
from nsrun.core.netconfig import MASQUERADE_MARK, NetConfig
from nsrun.core.service import Service


def chain_name(prefix: str, base: str) -> str:
    """kube-proxy's ``hashAndTruncate``-style name: ``<prefix>-<HASH8>-<base>``."""
    digest = base64.b32encode(sha256(base.encode()).digest()).decode()[:8]
    return f"{prefix}-{digest}-{base}"


def _q(name: str) -> str:
    return '"' + name + '"'


def ruleset(cfg: NetConfig, services: list[tuple[Service, list[Address] | None]]) -> str:
    """The script that replaces table ``ip <cfg.table>`` with the rules for ``services``."""
    elements, chains = [], []
    for svc, addrs in services:
        if svc.headless or not svc.spec.cluster_ip:
            continue
        for port in svc.spec.ports or ():
            ends = backends(svc, port, addrs)
            if not ends:
                continue  # no element: the filter chains reject it
            proto = (port.protocol or "TCP").lower()
            base = f"{svc.metadata.namespace}/{svc.metadata.name}/{proto}/{port.name or ''}"
            service_chain = chain_name("service", base)
            elements.append(f"{svc.spec.cluster_ip} . {proto} . {port.port} : "
                            f"goto {service_chain}")
            chains.append(_service_chain(service_chain, base, svc.spec.cluster_ip, proto,
                                         port.port, ends))
            chains += [_endpoint_chain(base, proto, ip, target) for ip, target in ends]
    return _table(cfg, elements, chains)


def _service_chain(name: str, base: str, cluster_ip: str, proto: str, port: int,
                   ends: list[tuple[str, int]]) -> str:
    targets = ", ".join(f"{i} : goto {chain_name('endpoint', f'{base}__{ip}/{p}')}"
                        for i, (ip, p) in enumerate(ends))
    return (f"\tchain {name} {{\n"
            f"\t\tip daddr {cluster_ip} {proto} dport {port} jump mark-for-masquerade\n"
            f"\t\tnumgen random mod {len(ends)} vmap {{ {targets} }}\n\t}}\n")


def _endpoint_chain(base: str, proto: str, ip: str, port: int) -> str:
    name = chain_name("endpoint", f"{base}__{ip}/{port}")
    return (f"\tchain {name} {{\n"
            f"\t\tip saddr {ip} jump mark-for-masquerade\n"
            f"\t\tmeta l4proto {proto} dnat to {ip}:{port}\n\t}}\n")


def _table(cfg: NetConfig, elements: list[str], chains: list[str]) -> str:
    mark = f"0x{MASQUERADE_MARK:x}"
    elems = f"\t\telements = {{ {', '.join(elements)} }}\n" if elements else ""
    bridge, pods, svcs = _q(cfg.bridge), cfg.pod_cidr, cfg.service_cidr
    return (
        f"add table ip {cfg.table}\ndelete table ip {cfg.table}\n"
        f"table ip {cfg.table} {{\n"
        f"{_comment(cfg.root)}"
        "\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict\n"
        f"{elems}\t}}\n"
        f"\tchain mark-for-masquerade {{\n\t\tmeta mark set meta mark or {mark}\n\t}}\n"
        "\tchain masquerading {\n"
        f"\t\tmeta mark & {mark} == 0 return\n"
        f"\t\tmeta mark set meta mark xor {mark}\n"
        "\t\tmasquerade fully-random\n\t}\n"
        "\tchain services {\n\t\tip daddr . meta l4proto . th dport vmap @service-ips\n\t}\n"
        "\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; "
        f"policy accept;\n\t\tiifname {bridge} jump services\n\t}}\n"
        "\tchain nat-output {\n\t\ttype nat hook output priority -100; policy accept;\n"
        "\t\tjump services\n\t}\n"
        "\tchain nat-postrouting {\n\t\ttype nat hook postrouting priority srcnat; "
        "policy accept;\n\t\tjump masquerading\n"
        f"\t\tip saddr {pods} ip daddr != {pods} oifname != {bridge} masquerade\n\t}}\n"
        "\tchain filter-forward {\n\t\ttype filter hook forward priority filter; "
        f"policy accept;\n\t\tip daddr {svcs} reject\n\t}}\n"
        "\tchain filter-output {\n\t\ttype filter hook output priority filter; "
        f"policy accept;\n\t\tip daddr {svcs} reject\n\t}}\n"
        + "".join(chains) + "}\n")


def _comment(root: str) -> str:
    """The table's comment names its world's state root (how a dead world's table is
    recognised); a root nft could not quote is left out."""
    ok = root and len(root) < 100 and not any(c in root for c in '"\\\n')
    return f'\tcomment "{WORLD_COMMENT}{root}"\n' if ok else ""


WORLD_COMMENT = "nsrun world "


def delete_script(table: str) -> str:
    """Remove the table if it exists (``nft -f``; no error when it does not)."""
    return f"add table ip {table}\ndelete table ip {table}\n"
