"""A pod's DNS and host-name fields, and the files the kubelet writes from them (pure).

Owns:

* the models of ``spec.hostAliases`` and ``spec.dnsConfig`` (``spec.py`` puts them on the
  PodSpec) and their validation with Kubernetes' messages (``validate_pod_network``), with
  ``spec.dnsPolicy`` and the host-network ``hostPort`` rule;
* ``hosts_file``: ``/etc/hosts`` as the kubelet writes it (``managedHostsFileContent``);
* ``resolv_conf``: ``/etc/resolv.conf`` per ``dnsPolicy`` (the kubelet's ``GetPodDNS`` and
  the CRI runtime's file format), with the ``DNSConfigForming`` limits;
* ``parse_resolv_conf``: the kubelet's reading of its ``--resolv-conf`` file;
* ``pod_hostname``: the hostname and domain the pod gets.
"""

from __future__ import annotations

import ipaddress

import msgspec

from nsrun.core.fielderrors import invalid, not_supported, required
from nsrun.errors import Problem

DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOST_NETWORK_HEADER = "# Kubernetes-managed hosts file (host network).\n"
LOCAL_HOSTS = ("127.0.0.1\tlocalhost\n"
               "::1\tlocalhost ip6-localhost ip6-loopback\n"
               "fe00::0\tip6-localnet\n"
               "fe00::0\tip6-mcastprefix\n"
               "fe00::1\tip6-allnodes\n"
               "fe00::2\tip6-allrouters\n")


class _N(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True,
         omit_defaults=True):
    """Base of the pod network objects (the same encoding as ``spec.py``'s)."""


class HostAlias(_N):
    ip: str = ""
    hostnames: list[str] | None = None


class PodDNSConfigOption(_N):
    name: str = ""
    value: str | None = None


class PodDNSConfig(_N):
    nameservers: list[str] | None = None
    searches: list[str] | None = None
    options: list[PodDNSConfigOption] | None = None


# ---------------------------------------------------------------- validation


def _go_strings(values: list[str]) -> str:
    """A string list as Go's ``%#v`` prints it (Kubernetes' value rendering)."""
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def validate_pod_network(spec, subdomain_rule) -> list[Problem]:
    """Problems with ``dnsPolicy``, ``dnsConfig`` and ``hostAliases`` (``spec`` is a PodSpec;
    ``subdomain_rule`` is validate's DNS-1123 subdomain check, returning messages)."""

    out: list[Problem] = []
    policy = spec.dns_policy or "ClusterFirst"
    if policy not in DNS_POLICIES:
        out.append(not_supported("spec.dnsPolicy", policy, DNS_POLICIES))
    if policy == "None" and spec.dns_config is None:
        out.append(required("spec.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is "
                            "None"))
    if spec.dns_config is not None:
        out += _dns_config(spec.dns_config, policy, subdomain_rule, invalid, required)
    for i, alias in enumerate(spec.host_aliases or ()):
        path = f"spec.hostAliases[{i}]"
        if not is_ip(alias.ip):
            out.append(invalid(f"{path}.ip", alias.ip, IP_MSG))
        for j, name in enumerate(alias.hostnames or ()):
            out += [invalid(f"{path}.hostnames[{j}]", name, m) for m in subdomain_rule(name)]
    return out


def _dns_config(cfg: PodDNSConfig, policy: str, subdomain_rule, invalid,
                required) -> list[Problem]:
    out: list[Problem] = []
    servers, searches = cfg.nameservers or [], cfg.searches or []
    if policy == "None" and not servers:
        out.append(required("spec.dnsConfig.nameservers", "must provide at least one DNS "
                            "nameserver when `dnsPolicy` is None"))
    if len(servers) > MAX_NAMESERVERS:
        out.append(Problem("spec.dnsConfig.nameservers", "Invalid value",
                           f"{_go_strings(servers)}: must not have more than "
                           f"{MAX_NAMESERVERS} nameservers"))
    out += [invalid(f"spec.dnsConfig.nameservers[{i}]", s, IP_MSG)
            for i, s in enumerate(servers) if not is_ip(s)]
    if len(searches) > MAX_SEARCHES:
        out.append(Problem("spec.dnsConfig.searches", "Invalid value",
                           f"{_go_strings(searches)}: must not have more than "
                           f"{MAX_SEARCHES} search paths"))
    if len(" ".join(searches)) > MAX_SEARCH_CHARS:
        out.append(invalid("spec.dnsConfig.searches", " ".join(searches),
                           f"must not have more than {MAX_SEARCH_CHARS} characters (including "
                           "spaces) in the search list"))
    for i, s in enumerate(searches):
        name = s[:-1] if s.endswith(".") else s
        out += [invalid(f"spec.dnsConfig.searches[{i}]", s, m) for m in subdomain_rule(name)]
    out += [required(f"spec.dnsConfig.options[{i}].name")
            for i, o in enumerate(cfg.options or ()) if not o.name]
    return out


# ---------------------------------------------------------------- /etc/hosts


def pod_hostname(spec, name: str, namespace: str, cluster_domain: str) -> tuple[str, str]:
    """(hostname, domain): ``spec.hostname`` or the pod's name, cut to 63 characters and
    trimmed of trailing ``-``/``.``; the domain ``<subdomain>.<ns>.svc.<cluster domain>``
    when ``spec.subdomain`` is set, else empty (``GeneratePodHostNameAndDomain``)."""
    hostname = (spec.hostname or name)[:63].rstrip("-.")
    domain = (f"{spec.subdomain}.{namespace}.svc.{cluster_domain}" if spec.subdomain
              else "")
    return hostname, domain


def hosts_file(spec, hostname: str, domain: str, pod_ips: list[str],
               node_hosts: str = "") -> str:
    """``/etc/hosts`` for the pod; ``node_hosts`` is the node's own file (host network)."""
    if spec.host_network:
        text = HOST_NETWORK_HEADER + node_hosts
        if text and not text.endswith("\n"):
            text += "\n"
    else:
        text = HOSTS_HEADER + LOCAL_HOSTS
        for ip in pod_ips:
            text += (f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain
                     else f"{ip}\t{hostname}\n")
    if spec.host_aliases:
        text += "\n# Entries added by HostAliases.\n"
        for alias in spec.host_aliases:
            text += "\t".join([alias.ip, *(alias.hostnames or [])]) + "\n"
    return text


# ---------------------------------------------------------------- /etc/resolv.conf


class ResolvConf(msgspec.Struct, frozen=True):
    """What a resolv.conf says: nameservers, search domains, options."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """The file as containerd writes it (empty sections left out)."""
        text = f"search {' '.join(self.searches)}\n" if self.searches else ""
        text += "".join(f"nameserver {s}\n" for s in self.nameservers)
        return text + (f"options {' '.join(self.options)}\n" if self.options else "")


def parse_resolv_conf(text: str | None) -> ResolvConf:
    """The kubelet's ``parseResolvConf``: nameservers accumulate, the last ``search`` and
    the last ``options`` line win, ``#`` lines are comments. ``None`` (``--resolv-conf=""``):
    nameserver 127.0.0.1, no search."""
    if text is None:
        return ResolvConf(("127.0.0.1",))
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] == "search":
            searches = [d.rstrip(".") or "." for d in fields[1:]]
        elif fields[0] == "options":
            options = fields[1:]
    return ResolvConf(tuple(servers), tuple(searches), tuple(options))


def dns_type(policy: str | None, host_network: bool) -> str:
    """``cluster``, ``host`` or ``none``, as the kubelet's ``getPodDNSType``."""
    policy = policy or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not host_network):
        return "cluster"
    return "host"


def resolv_conf(spec, namespace: str, cluster_dns: str, cluster_domain: str,
                host: ResolvConf) -> tuple[ResolvConf, list[tuple[str, str]]]:
    """The pod's resolv.conf and the Warning events (reason, message) forming it raised; a
    cluster policy without a cluster DNS falls back to the host's (``MissingClusterDNS``)."""
    events: list[tuple[str, str]] = []
    kind = dns_type(spec.dns_policy, spec.host_network)
    if kind == "cluster" and not cluster_dns:
        kind = "host"
        events.append(("MissingClusterDNS", "kubelet does not have ClusterDNS IP configured "
                       'and cannot create Pod using "ClusterFirst" policy. Falling back to '
                       '"Default" policy.'))
    if kind == "none":
        base = ResolvConf()
    elif kind == "host":
        base = host
    else:
        local = (f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain)
        base = ResolvConf((cluster_dns,), _unique(local + host.searches), ("ndots:5",))
    if spec.dns_config is not None:
        base = _merge(base, spec.dns_config)
    return _limits(base, events)


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _merge(base: ResolvConf, cfg: PodDNSConfig) -> ResolvConf:
    """``appendDNSConfig``: servers and searches appended then de-duplicated, options merged
    by name (the pod's value wins), in first-seen order."""
    options: dict[str, str] = {}
    for opt in base.options:
        name, _, value = opt.partition(":")
        options[name] = opt
    for o in cfg.options or ():
        options[o.name] = f"{o.name}:{o.value}" if o.value else o.name
    return ResolvConf(_unique(base.nameservers + tuple(cfg.nameservers or ())),
                      _unique(base.searches + tuple(cfg.searches or ())),
                      tuple(options.values()))


def _limits(conf: ResolvConf, events: list[tuple[str, str]]
            ) -> tuple[ResolvConf, list[tuple[str, str]]]:
    servers = conf.nameservers
    if len(servers) > MAX_NAMESERVERS:
        servers = servers[:MAX_NAMESERVERS]
        events.append(("DNSConfigForming", "Nameserver limits were exceeded, some nameservers "
                       "have been omitted, the applied nameserver line is: "
                       + " ".join(servers)))
    searches = tuple(s for s in conf.searches if len(s) <= 253)
    cut = len(searches) != len(conf.searches)
    while len(searches) > MAX_SEARCHES or len(" ".join(searches)) > MAX_SEARCH_CHARS:
        searches, cut = searches[:-1], True
    if cut:
        events.append(("DNSConfigForming", "Search Line limits were exceeded, some search "
                       "paths have been omitted, the applied search line is: "
                       + " ".join(searches)))
    return ResolvConf(servers, searches, conf.options), events
