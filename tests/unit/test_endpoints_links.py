"""Endpoints (selector → ready pods), Service env vars, get/describe output (pure)."""

from __future__ import annotations

import pytest

from nsrun.core import endpoints, svcprinter
from nsrun.core.service import decode_service
from nsrun.core.servicelinks import service_env, var_name, visible_services


def service(spec: dict, name: str = "web", namespace: str = "default"):
    return decode_service({"kind": "Service", "apiVersion": "v1",
                           "metadata": {"name": name, "namespace": namespace},
                           "spec": spec})[0]


def pod(name: str, ip: str | None, labels: dict, ready: bool = True, phase: str = "Running",
        ports: list | None = None, **extra) -> dict:
    meta = {"name": name, "namespace": extra.pop("namespace", "default"), "labels": labels,
            "uid": f"u-{name}"}
    if extra.pop("deleting", False):
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status = {"phase": phase, "conditions": [{"type": "Ready",
                                              "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    spec = {"containers": [{"name": "c", "ports": ports or []}], "nodeName": "n1", **extra}
    return {"metadata": meta, "spec": spec, "status": status}


WEB = service({"selector": {"app": "web"},
               "ports": [{"name": "http", "port": 80, "targetPort": "http"},
                         {"name": "raw", "port": 81, "targetPort": 9000}]})
NAMED = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_ready_matching_pods_with_ips_are_endpoints():
    pods = [pod("a", "169.254.100.3", {"app": "web"}, ports=NAMED),
            pod("b", "169.254.100.2", {"app": "web", "x": "y"}),
            pod("c", "169.254.100.4", {"app": "other"}),
            pod("d", None, {"app": "web"}),
            pod("e", "169.254.100.5", {"app": "web"}, phase="Succeeded"),
            pod("f", "169.254.100.6", {"app": "web"}, deleting=True),
            pod("g", "169.254.100.7", {"app": "web"}, namespace="other"),
            pod("h", "169.254.100.8", {"app": "web"}, ready=False)]
    addrs = endpoints.addresses(WEB, pods)
    assert [(a.ip, a.ready) for a in addrs] == [("169.254.100.2", True), ("169.254.100.3", True),
                                                ("169.254.100.8", False)]
    assert endpoints.backends(WEB, WEB.spec.ports[0], addrs) == [("169.254.100.3", 8080)]
    assert endpoints.backends(WEB, WEB.spec.ports[1], addrs) == [("169.254.100.2", 9000),
                                                                 ("169.254.100.3", 9000)]
    assert endpoints.endpoints_column(addrs) == ("169.254.100.2:9000,169.254.100.3:8080,"
                                                 "169.254.100.3:9000")


def test_no_selector_means_no_endpoints_object():
    assert endpoints.addresses(service({"ports": [{"port": 80}]}), [pod("a", "1.2.3.4", {})]) is None


def test_publish_not_ready_addresses_and_hostname():
    svc = service({"selector": {"app": "db"}, "clusterIP": "None", "ports": [{"port": 5432}],
                   "publishNotReadyAddresses": True}, name="db")
    addrs = endpoints.addresses(svc, [pod("db-0", "169.254.100.9", {"app": "db"}, ready=False,
                                          hostname="db-0", subdomain="db")])
    assert [(a.ready, a.hostname) for a in addrs] == [(True, "db-0")]
    obj = endpoints.endpoints_object(svc, addrs)
    assert obj["subsets"] == [{"ports": [{"port": 5432, "protocol": "TCP"}], "addresses": [
        {"ip": "169.254.100.9", "hostname": "db-0", "nodeName": "n1",
         "targetRef": {"kind": "Pod", "namespace": "default", "name": "db-0", "uid": "u-db-0"}}]}]


def test_endpoints_column_cuts_after_three():
    addrs = [endpoints.Address(f"10.0.0.{i}", "p", "default", ports=(("", 80),)) for i in range(5)]
    assert endpoints.endpoints_column(addrs) == "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more..."
    assert endpoints.endpoints_column([]) == "<none>"


def test_service_env_variables():
    svc = service({"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80},
                                                       {"name": "dns", "port": 53,
                                                        "protocol": "UDP"}]}, name="my-svc")
    assert service_env([svc]) == [
        ("MY_SVC_SERVICE_HOST", "10.96.0.20"), ("MY_SVC_SERVICE_PORT", "80"),
        ("MY_SVC_SERVICE_PORT_HTTP", "80"), ("MY_SVC_SERVICE_PORT_DNS", "53"),
        ("MY_SVC_PORT", "tcp://10.96.0.20:80"),
        ("MY_SVC_PORT_80_TCP", "tcp://10.96.0.20:80"), ("MY_SVC_PORT_80_TCP_PROTO", "tcp"),
        ("MY_SVC_PORT_80_TCP_PORT", "80"), ("MY_SVC_PORT_80_TCP_ADDR", "10.96.0.20"),
        ("MY_SVC_PORT_53_UDP", "udp://10.96.0.20:53"), ("MY_SVC_PORT_53_UDP_PROTO", "udp"),
        ("MY_SVC_PORT_53_UDP_PORT", "53"), ("MY_SVC_PORT_53_UDP_ADDR", "10.96.0.20")]
    assert var_name("a-b-c") == "A_B_C"


@pytest.mark.parametrize("links,namespace,count", [(None, "default", 1), (False, "default", 0),
                                                   (True, "other", 0)])
def test_visible_services(links, namespace, count):
    svc = service({"clusterIP": "10.96.0.20", "ports": [{"port": 80}]})
    assert len(visible_services([svc], namespace, links)) == count


def test_headless_services_give_no_variables():
    assert service_env([service({"clusterIP": "None", "ports": [{"port": 80}]})]) == []


def test_get_svc_row_and_describe():
    obj = {"metadata": {"name": "mydb", "namespace": "default",
                        "creationTimestamp": "2026-01-01T00:00:00Z"},
           "spec": {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
                    "ports": [{"port": 5432, "protocol": "TCP", "targetPort": 5432}]}}
    assert svcprinter.service_row(obj, 1767225608.0) == (
        "mydb", "ClusterIP", "None", "<none>", "5432/TCP", "8s")
    text = svcprinter.describe_service(obj, None)
    assert text.splitlines()[:2] == ["Name:                     mydb",
                                     "Namespace:                default"]
    assert "Port:                     <unset>  5432/TCP" in text
    assert "Endpoints:                <none>" in text
