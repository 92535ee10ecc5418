"""The kubelet's pod files (/etc/hosts, resolv.conf), pod DNS field validation, the world's
address plan and its nftables script (pure)."""

from __future__ import annotations

import pytest

from nsrun.core import netconfig, podnet, proxyrules, validate
from nsrun.core.endpoints import Address
from nsrun.core.manifest import load_pods
from nsrun.core.service import decode_service

CFG = netconfig.make_config("/run/nsrun")


def spec(**fields):
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: web-0}\nspec:\n" \
           "  containers: [{name: a, image: i}]\n"
    for key, value in fields.items():
        text += f"  {key}: {value}\n"
    return load_pods(text)[0].spec


HOST = podnet.parse_resolv_conf("# comment\nnameserver 192.0.2.53\nsearch corp.example.\n"
                                "search lab.example\noptions ndots:2 edns0\n")


def test_parse_resolv_conf_kubelet_rules():
    assert HOST == podnet.ResolvConf(("192.0.2.53",), ("lab.example",), ("ndots:2", "edns0"))
    assert podnet.parse_resolv_conf(None).nameservers == ("127.0.0.1",)


def test_hosts_file_with_subdomain_and_aliases():
    s = spec(subdomain="nginx", hostAliases='[{ip: "10.1.2.3", hostnames: [foo.local, bar]}]')
    hostname, domain = podnet.pod_hostname(s, "web-0", "default", "cluster.local")
    text = podnet.hosts_file(s, hostname, domain, ["169.254.100.7"])
    assert text == ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
                    "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n"
                    "169.254.100.7\tweb-0.nginx.default.svc.cluster.local\tweb-0\n"
                    "\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar\n")


def test_host_network_hosts_file_copies_the_nodes():
    s = spec(hostNetwork="true")
    text = podnet.hosts_file(s, "web-0", "", ["192.0.2.2"], "127.0.0.1 localhost\n")
    assert text == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n"


def test_hostname_is_cut_and_trimmed():
    s = spec(hostname="a" * 62 + "-b")
    assert podnet.pod_hostname(s, "x", "default", "cluster.local")[0] == "a" * 62


@pytest.mark.parametrize("fields,expected", [
    ({}, "search default.svc.cluster.local svc.cluster.local cluster.local lab.example\n"
         "nameserver 169.254.200.10\noptions ndots:5\n"),
    ({"dnsPolicy": "Default"}, "search lab.example\nnameserver 192.0.2.53\n"
                               "options ndots:2 edns0\n"),
    ({"hostNetwork": "true"}, "search lab.example\nnameserver 192.0.2.53\n"
                              "options ndots:2 edns0\n"),
    ({"hostNetwork": "true", "dnsPolicy": "ClusterFirstWithHostNet"},
     "search default.svc.cluster.local svc.cluster.local cluster.local lab.example\n"
     "nameserver 169.254.200.10\noptions ndots:5\n"),
    ({"dnsPolicy": "None", "dnsConfig": "{nameservers: [1.1.1.1], searches: [a.example], "
                                        "options: [{name: ndots, value: '1'}, {name: rotate}]}"},
     "search a.example\nnameserver 1.1.1.1\noptions ndots:1 rotate\n"),
    ({"dnsConfig": "{nameservers: [169.254.200.10, 1.1.1.1], options: [{name: ndots, "
                   "value: '2'}]}"},
     "search default.svc.cluster.local svc.cluster.local cluster.local lab.example\n"
     "nameserver 169.254.200.10\nnameserver 1.1.1.1\noptions ndots:2\n"),
])
def test_resolv_conf_per_dns_policy(fields, expected):
    conf, events = podnet.resolv_conf(spec(**fields), "default", CFG.cluster_dns,
                                      "cluster.local", HOST)
    assert (conf.render(), events) == (expected, [])


def test_resolv_conf_limits_raise_dns_config_forming():
    s = spec(dnsPolicy="None", dnsConfig="{nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3]}")
    conf, _ = podnet.resolv_conf(s, "default", "", "cluster.local", HOST)
    assert len(conf.nameservers) == 3
    s2 = spec(dnsConfig="{nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3]}")
    conf, events = podnet.resolv_conf(s2, "default", "10.0.0.10", "cluster.local", HOST)
    assert conf.nameservers == ("10.0.0.10", "1.1.1.1", "1.1.1.2")
    assert events == [("DNSConfigForming", "Nameserver limits were exceeded, some nameservers "
                       "have been omitted, the applied nameserver line is: 10.0.0.10 1.1.1.1 "
                       "1.1.1.2")]


@pytest.mark.parametrize("fields,expected", [
    ({"dnsPolicy": "Cluster"}, ['spec.dnsPolicy: Unsupported value: "Cluster": supported '
                                'values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", '
                                '"None"']),
    ({"dnsPolicy": "None"}, ["spec.dnsConfig: Required value: must provide `dnsConfig` when "
                             "`dnsPolicy` is None"]),
    ({"dnsPolicy": "None", "dnsConfig": "{searches: [a.example]}"},
     ["spec.dnsConfig.nameservers: Required value: must provide at least one DNS nameserver "
      "when `dnsPolicy` is None"]),
    ({"dnsConfig": "{nameservers: [1.1.1.1, 1.1.1.2, 1.1.1.3, 1.1.1.4]}"},
     ['spec.dnsConfig.nameservers: Invalid value: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", '
      '"1.1.1.4"}: must not have more than 3 nameservers']),
    ({"dnsConfig": "{nameservers: [one]}"},
     ['spec.dnsConfig.nameservers[0]: Invalid value: "one": must be a valid IP address, '
      "(e.g. 10.9.8.7 or 2001:db8::ffff)"]),
    ({"dnsConfig": "{options: [{value: x}]}"}, ["spec.dnsConfig.options[0].name: Required value"]),
    ({"hostAliases": "[{ip: 1.2.3, hostnames: [Bad]}]"},
     ['spec.hostAliases[0].ip: Invalid value: "1.2.3": must be a valid IP address, '
      "(e.g. 10.9.8.7 or 2001:db8::ffff)",
      'spec.hostAliases[0].hostnames[0]: Invalid value: "Bad": a lowercase RFC 1123 subdomain '
      "must consist of lower case alphanumeric characters, '-' or '.', and must start and end "
      "with an alphanumeric character (e.g. 'example.com', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
])
def test_pod_dns_field_validation(fields, expected):
    text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" \
           "  containers: [{name: a, image: i}]\n" + "".join(
               f"  {k}: {v}\n" for k, v in fields.items())
    assert [str(p) for p in validate.validate(load_pods(text)[0])] == expected


def test_world_names_and_addresses():
    assert (CFG.bridge, CFG.table, CFG.gateway, CFG.cluster_dns) == (
        "nsrun0", "nsrun", "169.254.100.1", "169.254.200.10")
    other = netconfig.make_config("/tmp/w/state", "169.254.40.0/26", "169.254.72.0/26")
    assert other.bridge == other.table and other.bridge.startswith("nsrun-")
    assert len(other.bridge) <= 15 and len(other.veth_name("uid")) == 15
    assert other.pod_addresses()[0] == "169.254.40.2" and len(other.pod_addresses()) == 61
    assert "169.254.72.10" not in other.service_addresses()


@pytest.mark.parametrize("args,message", [
    (("not-a-cidr",), "--pod-cidr not-a-cidr: not an IPv4 CIDR"),
    (("169.254.1.0/30",), "--pod-cidr 169.254.1.0/30: too small (at most /29)"),
    (("169.254.0.0/16", "169.254.200.0/24"), "overlap"),
    (("169.254.100.0/24", "169.254.200.0/24", "-bad-"), "--cluster-domain -bad-: not a DNS domain"),
])
def test_bad_network_options(args, message):
    with pytest.raises(ValueError) as err:
        netconfig.make_config("/r", *args)
    assert message in str(err.value)


def test_addresses_are_handed_out_round_robin():
    pods = ["a", "b", "c", "d"]
    assert netconfig.free_address(pods, set()) == "a"
    assert netconfig.free_address(pods, {"b"}, after="a") == "c"
    assert netconfig.free_address(pods, {"a"}, after="d") == "b"
    assert netconfig.free_address(pods, set(pods), after="b") is None


def test_cluster_ip_checks_use_the_allocator_messages():
    problem = netconfig.cluster_ip_problem(CFG, "10.1.0.1", set())
    assert str(problem) == ('spec.clusterIPs: Invalid value: []string{"10.1.0.1"}: failed to '
                            "allocate IP 10.1.0.1: the provided IP (10.1.0.1) is not in the "
                            "valid range. The range of valid IPs is 169.254.200.0/24")
    taken = netconfig.cluster_ip_problem(CFG, "169.254.200.5", {"169.254.200.5"})
    assert str(taken).endswith("failed to allocate IP 169.254.200.5: provided IP is already "
                               "allocated")
    assert netconfig.cluster_ip_problem(CFG, "169.254.200.5", set()) is None


def test_ruleset_dispatches_services_with_ready_endpoints_only():
    web = decode_service({"kind": "Service", "metadata": {"name": "web"}, "spec": {
        "clusterIP": "169.254.200.5", "selector": {"a": "b"}, "ports": [{"port": 80}]}})[0]
    lonely = decode_service({"kind": "Service", "metadata": {"name": "lonely"}, "spec": {
        "clusterIP": "169.254.200.6", "ports": [{"port": 80}]}})[0]
    addrs = [Address("169.254.100.2", "p", "default", ports=(("", 80),)),
             Address("169.254.100.3", "q", "default", ready=False, ports=(("", 80),))]
    script = proxyrules.ruleset(CFG, [(web, addrs), (lonely, None)])
    assert script.startswith("add table ip nsrun\ndelete table ip nsrun\ntable ip nsrun {")
    assert "169.254.200.5 . tcp . 80 : goto service-" in script
    assert "169.254.200.6" not in script  # no endpoints: rejected by the filter chains
    assert "numgen random mod 1 vmap" in script
    assert "dnat to 169.254.100.2:80" in script and "169.254.100.3" not in script
    assert "ip daddr 169.254.200.0/24 reject" in script
    assert 'iifname "nsrun0" jump services' in script
    assert proxyrules.chain_name("service", "ns1/svc1/tcp/p80").startswith("service-")


def test_a_pod_cidr_clashes_only_with_as_specific_routes():
    import ipaddress

    from nsrun.host.network import overlapping_route

    net = ipaddress.IPv4Network
    table = [(net("0.0.0.0/0"), "eth0"), (net("169.254.0.0/16"), "eth0"),
             (net("192.0.2.0/24"), "eth0")]
    assert overlapping_route(net("169.254.100.0/24"), table) is None
    table.append((net("169.254.100.0/26"), "nsrun-1234abcd"))
    assert overlapping_route(net("169.254.100.0/24"), table) == (net("169.254.100.0/26"),
                                                                 "nsrun-1234abcd")
