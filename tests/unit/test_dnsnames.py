"""Cluster DNS answers (CoreDNS's shapes) and the busybox NODATA rule (pure)."""

from __future__ import annotations

import pytest

from nsrun.core.dnsnames import (
    NOERROR,
    NXDOMAIN,
    EndpointRecord,
    ServiceRecord,
    View,
    Zone,
    lookup,
)

SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
ZONE = Zone(View("cluster.local", (
    ServiceRecord("myservice", "default", "169.254.200.1", (("", "TCP", 80),)),
    ServiceRecord("web", "default", "169.254.200.2", (("http", "TCP", 80),),
                  (EndpointRecord("169.254.100.5", "", (("http", 8080),)),)),
    ServiceRecord("db", "default", "None", (("pg", "TCP", 5432),),
                  (EndpointRecord("169.254.100.7", "db-0", (("pg", 5432),)),
                   EndpointRecord("169.254.100.8", "", (("pg", 5432),)))),
    ServiceRecord("empty", "default", "None", (("", "TCP", 80),)),
), ("default", "other")))


def data(answer):
    return [r.data for r in answer.records]


@pytest.mark.parametrize("qname,qtype,rcode,records", [
    ("myservice.default.svc.cluster.local.", "A", NOERROR, ["169.254.200.1"]),
    ("MyService.Default.svc.cluster.local", "A", NOERROR, ["169.254.200.1"]),
    ("myservice.default.svc.cluster.local", "AAAA", NOERROR, []),  # NODATA
    ("nothere.default.svc.cluster.local", "A", NXDOMAIN, []),
    ("myservice.other.svc.cluster.local", "A", NXDOMAIN, []),
    ("db.default.svc.cluster.local", "A", NOERROR, ["169.254.100.7", "169.254.100.8"]),
    ("db-0.db.default.svc.cluster.local", "A", NOERROR, ["169.254.100.7"]),
    ("169-254-100-8.db.default.svc.cluster.local", "A", NOERROR, ["169.254.100.8"]),
    ("empty.default.svc.cluster.local", "A", NXDOMAIN, []),  # headless, no ready endpoint
    ("default.svc.cluster.local", "A", NOERROR, []),
    ("nons.svc.cluster.local", "A", NXDOMAIN, []),
    ("svc.cluster.local", "A", NOERROR, []),
    ("cluster.local", "A", NOERROR, []),
    ("169-254-100-5.default.pod.cluster.local", "A", NXDOMAIN, []),  # pods disabled
    ("1.200.254.169.in-addr.arpa", "PTR", NOERROR, ["myservice.default.svc.cluster.local"]),
    ("7.100.254.169.in-addr.arpa", "PTR", NOERROR, ["db-0.db.default.svc.cluster.local"]),
])
def test_cluster_answers(qname, qtype, rcode, records):
    answer = lookup(ZONE, qname, qtype)
    assert (answer.rcode, data(answer), answer.forward) == (rcode, records, False)


def test_srv_for_a_named_port():
    answer = lookup(ZONE, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert data(answer) == [(0, 100, 80, "web.default.svc.cluster.local")]
    assert [r.data for r in answer.additional] == ["169.254.200.2"]
    headless = lookup(ZONE, "_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert data(headless) == [(0, 50, 5432, "db-0.db.default.svc.cluster.local"),
                              (0, 50, 5432, "169-254-100-8.db.default.svc.cluster.local")]


def test_names_outside_the_zone_are_forwarded():
    assert lookup(ZONE, "example.com", "A").forward
    assert lookup(ZONE, "1.1.168.192.in-addr.arpa", "PTR").forward


@pytest.mark.parametrize("qname", ["myservice.svc.cluster.local", "myservice.cluster.local"])
def test_busybox_rule_nodata_for_the_other_search_suffixes(qname):
    plain = lookup(ZONE, qname, "A")
    assert plain.rcode == NXDOMAIN  # CoreDNS's answer
    answer = lookup(ZONE, qname, "A", SEARCH)
    assert (answer.rcode, answer.records, answer.forward) == (NOERROR, (), False)


def test_busybox_rule_keeps_nxdomain_for_a_missing_service():
    for suffix in SEARCH:
        assert lookup(ZONE, f"nothere.{suffix}", "A", SEARCH).rcode == NXDOMAIN
    # a headless Service with no ready endpoint does not exist yet either
    assert lookup(ZONE, "empty.svc.cluster.local", "A", SEARCH).rcode == NXDOMAIN


def test_busybox_rule_covers_host_search_domains_without_forwarding():
    search = SEARCH + ("corp.example",)
    answer = lookup(ZONE, "myservice.corp.example", "A", search)
    assert (answer.rcode, answer.forward) == (NOERROR, False)
    assert lookup(ZONE, "other.corp.example", "A", search).forward
