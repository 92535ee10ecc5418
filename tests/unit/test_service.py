"""The Service model: loading, defaulting, Kubernetes' validation messages (pure)."""

from __future__ import annotations

import pytest

from nsrun.core.objects import load_objects, ref
from nsrun.core.service import decode_service, validate_service
from nsrun.errors import SpecError

DOC_SERVICES = """kind: Service
apiVersion: v1
metadata:
  name: myservice
spec:
  ports:
  - protocol: TCP
    port: 80
    targetPort: 9376
---
kind: Service
apiVersion: v1
metadata:
  name: mydb
spec:
  ports:
  - protocol: TCP
    port: 80
    targetPort: 9377
"""


def svc(spec: dict, name: str = "web", **meta) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, **meta},
            "spec": spec}


def problems(doc: dict) -> list[str]:
    return [str(p) for p in validate_service(decode_service(doc)[0])]


def test_the_documents_services_load_and_default():
    objects, warnings = load_objects(DOC_SERVICES, "services.yaml")
    assert warnings == [] and [ref(o) for o in objects] == ["service/myservice", "service/mydb"]
    s = objects[0]
    assert (s.spec.type, s.spec.session_affinity, s.spec.cluster_ip) == ("ClusterIP", "None", None)
    assert (s.spec.ports[0].protocol, s.spec.ports[0].target_port) == ("TCP", 9376)
    assert validate_service(s) == []


def test_target_port_defaults_to_port_and_protocol_to_tcp():
    s = decode_service(svc({"ports": [{"port": 8080}]}))[0]
    assert (s.spec.ports[0].target_port, s.spec.ports[0].protocol) == (8080, "TCP")


def test_cluster_ips_follow_cluster_ip():
    s = decode_service(svc({"clusterIP": "None", "selector": {"a": "b"}}))[0]
    assert s.headless and s.spec.cluster_ips == ["None"] and validate_service(s) == []


LABEL_1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
              "start with an alphabetic character, and end with an alphanumeric character "
              "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
              "'[a-z]([-a-z0-9]*[a-z0-9])?')")


@pytest.mark.parametrize("doc,expected", [
    (svc({}), ["spec.ports: Required value"]),
    (svc({"ports": [{"port": 70000}]}),
     ["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
      "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    (svc({"ports": [{"port": 80, "name": "a"}, {"port": 81}]}), ["spec.ports[1].name: Required value"]),
    (svc({"ports": [{"port": 80, "name": "http"}, {"port": 81, "name": "http"}]}),
     ['spec.ports[1].name: Duplicate value: "http"']),
    (svc({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]}),
     ['spec.ports[1]: Duplicate value: core.ServicePortKey{Port:80, Protocol:"TCP"}']),
    (svc({"ports": [{"port": 80, "protocol": "ICMP"}]}),
     ['spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"']),
    (svc({"ports": [{"port": 80, "targetPort": 0}]}), []),  # 0 defaults to the port
    (svc({"ports": [{"port": 80, "targetPort": "a-very-long-port-name"}]}),
     ['spec.ports[0].targetPort: Invalid value: "a-very-long-port-name": must be no more '
      "than 15 characters"]),
    (svc({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}),
     ['spec.clusterIPs[0]: Invalid value: "10.0.0.300": must be a valid IP address, '
      "(e.g. 10.9.8.7 or 2001:db8::ffff)"]),
    (svc({"clusterIP": "169.254.200.5", "clusterIPs": ["169.254.200.6"], "ports": [{"port": 80}]}),
     ['spec.clusterIPs: Invalid value: []string{"169.254.200.6"}: first value must match '
      "`clusterIP`"]),
    (svc({"type": "Foo", "ports": [{"port": 80}]}),
     ['spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", '
      '"LoadBalancer", "NodePort"']),
    (svc({"type": "NodePort", "ports": [{"port": 80}]}),
     ["spec.type: Forbidden: not supported by nsrun: NodePort"]),
    (svc({"sessionAffinity": "X", "ports": [{"port": 80}]}),
     ['spec.sessionAffinity: Unsupported value: "X": supported values: "ClientIP", "None"']),
    (svc({"selector": {"app": "a b"}, "ports": [{"port": 80}]}),
     ['spec.selector: Invalid value: "a b": a valid label must be an empty string or consist '
      "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    (svc({"ports": [{"port": 80, "nodePort": 30000}]}),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    (svc({"ports": [{"port": 80}]}, name="My_Svc"),
     [f'metadata.name: Invalid value: "My_Svc": {LABEL_1035}']),
])
def test_validation_messages_are_kubernetes(doc, expected):
    assert problems(doc) == expected


def test_a_selector_that_is_not_a_map_names_the_field():
    with pytest.raises(SpecError) as err:
        decode_service(svc({"selector": ["app"], "ports": [{"port": 80}]}))
    assert str(err.value) == ('The Service "web" is invalid: spec.selector: Invalid value: '
                              "expected object, got array")


def test_unsupported_fields_are_refused_and_status_dropped():
    with pytest.raises(SpecError) as err:
        decode_service(svc({"externalIPs": ["1.2.3.4"], "ports": [{"port": 80}]}))
    assert [str(p) for p in err.value.problems] == [
        "spec.externalIPs: Forbidden: not supported by nsrun"]
    doc = svc({"ports": [{"port": 80}]}, resourceVersion="1")
    doc["status"] = {"loadBalancer": {}}
    assert decode_service(doc)[0].metadata.name == "web"


def test_mixed_manifest_keeps_file_order():
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: i}]\n"
    objects, _ = load_objects(pod + "---\n" + DOC_SERVICES)
    assert [ref(o) for o in objects] == ["pod/p", "service/myservice", "service/mydb"]


def test_other_kinds_are_refused():
    with pytest.raises(SpecError) as err:
        load_objects("kind: Deployment\napiVersion: apps/v1\n")
    assert str(err.value) == 'kind: Unsupported value: "Deployment": supported values: "Pod", "Service"'


def test_object_refs_name_objects_without_validating_them():
    from nsrun.core.objects import object_refs

    text = ("kind: Service\nmetadata: {name: a, namespace: team}\nspec: {ports: [{port: 0}]}\n"
            "---\nkind: Pod\nmetadata: {name: p}\n")
    assert object_refs(text) == [("Service", "team/a"), ("Pod", "p")]
