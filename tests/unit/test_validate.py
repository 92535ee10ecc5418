"""Validation: one table row per rule, with Kubernetes' exact field paths and messages."""

from __future__ import annotations

import json

import pytest

from nsrun.core.manifest import load_pods
from nsrun.core.spec import Pod
from nsrun.core.validate import check, validate
from nsrun.errors import SpecError

LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
INIT_ONLY = "Forbidden: may not be set for init containers without restartPolicy=Always"


def app(**kw) -> dict:
    return {"name": "app", "image": "busybox", **kw}


def init(**kw) -> dict:
    return {"name": "init", "image": "busybox", **kw}


def pod(spec: dict | None = None, meta: dict | None = None) -> Pod:
    spec = {"containers": [app()], **(spec or {})}
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", **(meta or {})},
           "spec": spec}
    return load_pods(json.dumps(doc))[0]


def problems(spec: dict | None = None, meta: dict | None = None) -> list[str]:
    return [str(p) for p in validate(pod(spec, meta))]


def probe(**kw) -> dict:
    return {"exec": {"command": ["true"]}, **kw}


CASES = [
    # (id, spec, expected problems)
    ("valid", {}, []),
    ("container name required", {"containers": [{"image": "b"}]},
     ["spec.containers[0].name: Required value"]),
    ("container name DNS-1123", {"containers": [app(name="My_App")]},
     [f'spec.containers[0].name: Invalid value: "My_App": {LABEL_MSG}']),
    ("container name too long", {"containers": [app(name="a" * 64)]},
     [f'spec.containers[0].name: Invalid value: "{"a" * 64}": must be no more than 63 '
      "characters"]),
    ("init name required", {"initContainers": [{"image": "b"}]},
     ["spec.initContainers[0].name: Required value"]),
    ("duplicate app names", {"containers": [app(), app()]},
     ['spec.containers[1].name: Duplicate value: "app"']),
    ("init duplicates app", {"initContainers": [init(name="app")]},
     ['spec.initContainers[0].name: Duplicate value: "app"']),
    ("init duplicates init", {"initContainers": [init(), init()]},
     ['spec.initContainers[1].name: Duplicate value: "init"']),
    ("image required", {"containers": [app(image="")]},
     ["spec.containers[0].image: Required value"]),
    ("init image required", {"initContainers": [init(image="")]},
     ["spec.initContainers[0].image: Required value"]),
    ("image whitespace", {"containers": [app(image="busybox ")]},
     ['spec.containers[0].image: Invalid value: "busybox ": must not have leading or trailing '
      "whitespace"]),
    ("containers required", {"containers": []}, ["spec.containers: Required value"]),
    ("lifecycle on init", {"initContainers": [init(lifecycle={"preStop": probe()})]},
     [f"spec.initContainers[0].lifecycle: {INIT_ONLY}"]),
    ("liveness on init", {"initContainers": [init(livenessProbe=probe())]},
     [f"spec.initContainers[0].livenessProbe: {INIT_ONLY}"]),
    ("readiness on init", {"initContainers": [init(readinessProbe=probe())]},
     [f"spec.initContainers[0].readinessProbe: {INIT_ONLY}"]),
    ("startup on init", {"initContainers": [init(startupProbe=probe())]},
     [f"spec.initContainers[0].startupProbe: {INIT_ONLY}"]),
    ("all four on init", {"initContainers": [init(
        lifecycle={"postStart": probe()}, livenessProbe=probe(), readinessProbe=probe(),
        startupProbe=probe())]},
     [f"spec.initContainers[0].{f}: {INIT_ONLY}"
      for f in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")]),
    ("sidecar may have probes and lifecycle", {"initContainers": [init(
        restartPolicy="Always", lifecycle={"preStop": probe()}, livenessProbe=probe(),
        readinessProbe=probe(), startupProbe=probe())]}, []),
    ("sidecar probes are validated", {"initContainers": [init(
        restartPolicy="Always", livenessProbe=probe(successThreshold=2))]},
     ["spec.initContainers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("init restartPolicy values", {"initContainers": [init(restartPolicy="OnFailure")]},
     ['spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: '
      '"Always"']),
    ("init restartPolicy Never", {"initContainers": [init(restartPolicy="Never")]},
     ['spec.initContainers[0].restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"']),
    ("app restartPolicy", {"containers": [app(restartPolicy="Always")]},
     ["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"]),
    ("pod restartPolicy value", {"restartPolicy": "Sometimes"},
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", '
      '"OnFailure", "Never"']),
    ("pod restartPolicy empty", {"restartPolicy": ""}, ["spec.restartPolicy: Required value"]),
    ("pod restartPolicy OnFailure", {"restartPolicy": "OnFailure"}, []),
    ("activeDeadlineSeconds zero", {"activeDeadlineSeconds": 0},
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, "
      "inclusive"]),
    ("activeDeadlineSeconds negative", {"activeDeadlineSeconds": -5},
     ["spec.activeDeadlineSeconds: Invalid value: -5: must be between 1 and 2147483647, "
      "inclusive"]),
    ("activeDeadlineSeconds too big", {"activeDeadlineSeconds": 2**31},
     ["spec.activeDeadlineSeconds: Invalid value: 2147483648: must be between 1 and "
      "2147483647, inclusive"]),
    ("activeDeadlineSeconds bounds", {"activeDeadlineSeconds": 2**31 - 1}, []),
    ("activeDeadlineSeconds one", {"activeDeadlineSeconds": 1}, []),
    # probes
    ("liveness successThreshold", {"containers": [app(livenessProbe=probe(successThreshold=3))]},
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 3: must be 1"]),
    ("startup successThreshold", {"containers": [app(startupProbe=probe(successThreshold=2))]},
     ["spec.containers[0].startupProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("readiness successThreshold may be more", {"containers": [app(
        readinessProbe=probe(successThreshold=3))]}, []),
    ("readiness grace", {"containers": [app(readinessProbe=probe(
        terminationGracePeriodSeconds=10))]},
     ["spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 10: "
      "must not be set for readinessProbes"]),
    ("probe grace must be positive", {"containers": [app(livenessProbe=probe(
        terminationGracePeriodSeconds=-1))]},
     ["spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: -1: "
      "must be greater than 0"]),
    ("probe without handler", {"containers": [app(livenessProbe={"periodSeconds": 5})]},
     ["spec.containers[0].livenessProbe: Required value: must specify a handler type"]),
    ("probe with two handlers", {"containers": [app(livenessProbe=probe(
        tcpSocket={"port": 80}))]},
     ["spec.containers[0].livenessProbe.tcpSocket: Forbidden: may not specify more than 1 "
      "handler type"]),
    ("probe negative timing", {"containers": [app(livenessProbe=probe(
        initialDelaySeconds=-1))]},
     ["spec.containers[0].livenessProbe.initialDelaySeconds: Invalid value: -1: must be "
      "greater than or equal to 0"]),
    ("exec without command", {"containers": [app(livenessProbe={"exec": {}})]},
     ["spec.containers[0].livenessProbe.exec.command: Required value"]),
    ("httpGet port range", {"containers": [app(readinessProbe={"httpGet": {"port": 0}})]},
     ["spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 "
      "and 65535, inclusive"]),
    ("httpGet named port", {"containers": [app(readinessProbe={"httpGet": {"port": "web"}})]},
     []),
    ("httpGet scheme", {"containers": [app(readinessProbe={"httpGet": {"port": 80,
                                                                       "scheme": "FTP"}})]},
     ['spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: "FTP": supported '
      'values: "HTTP", "HTTPS"']),
    ("tcpSocket bad name", {"containers": [app(livenessProbe={"tcpSocket": {"port": "a--b"}})]},
     ['spec.containers[0].livenessProbe.tcpSocket.port: Invalid value: "a--b": must not '
      "contain consecutive hyphens"]),
    ("lifecycle handler", {"containers": [app(lifecycle={"postStart": {}})]},
     ["spec.containers[0].lifecycle.postStart: Required value: must specify a handler type"]),
    # volumes and mounts
    ("mount names an existing volume", {"volumes": [{"name": "data"}], "containers": [app(
        volumeMounts=[{"name": "data", "mountPath": "/data"}])]}, []),
    ("mount names a missing volume", {"containers": [app(
        volumeMounts=[{"name": "data", "mountPath": "/data"}])]},
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    ("init mount names a missing volume", {"initContainers": [init(
        volumeMounts=[{"name": "x", "mountPath": "/x"}])]},
     ['spec.initContainers[0].volumeMounts[0].name: Not found: "x"']),
    ("mountPath required and unique", {"volumes": [{"name": "v"}], "containers": [app(
        volumeMounts=[{"name": "v"}, {"name": "v", "mountPath": "/a"},
                      {"name": "v", "mountPath": "/a"}])]},
     ["spec.containers[0].volumeMounts[0].mountPath: Required value",
      'spec.containers[0].volumeMounts[2].mountPath: Invalid value: "/a": must be unique']),
    ("subPath", {"volumes": [{"name": "v"}], "containers": [app(
        volumeMounts=[{"name": "v", "mountPath": "/a", "subPath": "../x"},
                      {"name": "v", "mountPath": "/b", "subPath": "/abs"}])]},
     ['spec.containers[0].volumeMounts[0].subPath: Invalid value: "../x": must not contain '
      "'..'",
      'spec.containers[0].volumeMounts[1].subPath: Invalid value: "/abs": must be a relative '
      "path"]),
    ("bidirectional needs privileged", {"volumes": [{"name": "v"}], "containers": [app(
        volumeMounts=[{"name": "v", "mountPath": "/a", "mountPropagation": "Bidirectional"}])]},
     ["spec.containers[0].volumeMounts[0].mountPropagation: Forbidden: Bidirectional mount "
      "propagation is available only to privileged containers"]),
    ("volume name", {"volumes": [{"name": "Data"}]},
     [f'spec.volumes[0].name: Invalid value: "Data": {LABEL_MSG}']),
    ("volume duplicate", {"volumes": [{"name": "v"}, {"name": "v"}]},
     ['spec.volumes[1].name: Duplicate value: "v"']),
    ("volume two sources", {"volumes": [{"name": "v", "emptyDir": {},
                                         "hostPath": {"path": "/x"}}]},
     ["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"]),
    ("invalid volume cannot be mounted", {"volumes": [{"name": "v", "hostPath": {"path": ""}}],
                                          "containers": [app(volumeMounts=[
                                              {"name": "v", "mountPath": "/v"}])]},
     ["spec.volumes[0].hostPath.path: Required value",
      'spec.containers[0].volumeMounts[0].name: Not found: "v"']),
    ("hostPath type", {"volumes": [{"name": "v", "hostPath": {"path": "/x", "type": "Dir"}}]},
     ['spec.volumes[0].hostPath.type: Unsupported value: "Dir": supported values: "", '
      '"BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", '
      '"Socket"']),
    ("secret name", {"volumes": [{"name": "v", "secret": {}}]},
     ["spec.volumes[0].secret.secretName: Required value"]),
    ("configMap mode", {"volumes": [{"name": "v", "configMap": {"name": "c",
                                                                "defaultMode": 1000}}]},
     ["spec.volumes[0].configMap.defaultMode: Invalid value: 1000: must be a number between 0 "
      "and 0777 (octal), both inclusive"]),
    ("emptyDir medium", {"volumes": [{"name": "v", "emptyDir": {"medium": "Memory",
                                                                 "sizeLimit": "64Mi"}}]}, []),
    ("emptyDir negative size", {"volumes": [{"name": "v", "emptyDir": {"sizeLimit": "-1"}}]},
     ["spec.volumes[0].emptyDir.sizeLimit: Forbidden: SizeLimit field must be a valid resource "
      "quantity"]),
    # resources
    ("requests <= limits", {"containers": [app(resources={"requests": {"cpu": "2"},
                                                          "limits": {"cpu": "1"}})]},
     ['spec.containers[0].resources.requests: Invalid value: "2": must be less than or equal '
      "to cpu limit of 1"]),
    ("memory requests <= limits", {"containers": [app(resources={
        "requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}})]},
     ['spec.containers[0].resources.requests: Invalid value: "1Gi": must be less than or equal '
      "to memory limit of 512Mi"]),
    ("init requests <= limits", {"initContainers": [init(resources={
        "requests": {"cpu": "500m"}, "limits": {"cpu": "250m"}})]},
     ['spec.initContainers[0].resources.requests: Invalid value: "500m": must be less than or '
      "equal to cpu limit of 250m"]),
    ("requests equal limits", {"containers": [app(resources={"requests": {"cpu": "1"},
                                                             "limits": {"cpu": "1000m"}})]}, []),
    ("negative quantity", {"containers": [app(resources={"limits": {"cpu": "-1"}})]},
     ['spec.containers[0].resources.limits[cpu]: Invalid value: "-1": must be greater than or '
      "equal to 0"]),
    ("bad quantity", {"containers": [app(resources={"limits": {"memory": "1GB"}})]},
     ['spec.containers[0].resources.limits[memory]: Invalid value: "1GB": quantities must '
      "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
    ("unknown resource", {"containers": [app(resources={"limits": {"gpu": "1"}})]},
     ['spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
      "resource type or fully qualified",
      'spec.containers[0].resources.limits[gpu]: Invalid value: "gpu": must be a standard '
      "resource for containers"]),
    ("extended resource", {"containers": [app(resources={"limits": {"nvidia.com/gpu": 1}})]},
     ["spec.containers[0].resources.limits[nvidia.com/gpu]: Forbidden: not supported by "
      "nsrun"]),
    ("hugepages", {"containers": [app(resources={"limits": {"hugepages-2Mi": "2Mi",
                                                            "memory": "1Gi"}})]},
     ["spec.containers[0].resources.limits[hugepages-2Mi]: Forbidden: not supported by nsrun"]),
    ("overhead", {"overhead": {"cpu": "-1"}},
     ['spec.overhead[cpu]: Invalid value: "-1": must be greater than or equal to 0']),
    ("pod-level requests cover containers", {
        "resources": {"requests": {"cpu": "500m"}},
        "containers": [app(resources={"requests": {"cpu": "1"}})]},
     ['spec.resources.requests[cpu]: Invalid value: "500m": must be greater than or equal to '
      "aggregate container requests of 1"]),
    ("pod-level limit caps containers", {
        "resources": {"limits": {"memory": "1Gi"}},
        "containers": [app(resources={"limits": {"memory": "2Gi"}})]},
     ['spec.resources.requests: Invalid value: "2Gi": must be less than or equal to memory '
      "limit of 1Gi",  # the pod-level request defaulted from the containers' requests
      'spec.containers[0].resources.limits[memory]: Invalid value: "2Gi": must be less than '
      "or equal to pod limits of 1Gi"]),
    ("pod-level names", {"resources": {"limits": {"ephemeral-storage": "1Gi"}}},
     ['spec.resources.limits[ephemeral-storage]: Unsupported value: "ephemeral-storage": '
      'supported values: "cpu", "hugepages-", "memory"']),
    ("pod-level requests <= limits", {"resources": {"requests": {"cpu": "2"},
                                                    "limits": {"cpu": "1"}}},
     ['spec.resources.requests: Invalid value: "2": must be less than or equal to cpu limit '
      "of 1"]),
    # host ports
    ("host port conflict across app containers", {"containers": [
        app(ports=[{"containerPort": 80, "hostPort": 8080}]),
        app(name="b", ports=[{"containerPort": 81, "hostPort": 8080}])]},
     ['spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//8080"']),
    ("different protocols do not conflict", {"containers": [
        app(ports=[{"containerPort": 80, "hostPort": 8080},
                   {"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])]}, []),
    ("init containers are checked one at a time", {
        "initContainers": [init(ports=[{"containerPort": 80, "hostPort": 8080}]),
                           init(name="i2", ports=[{"containerPort": 80, "hostPort": 8080}])],
        "containers": [app(ports=[{"containerPort": 80, "hostPort": 8080}])]}, []),
    ("conflict inside one init container", {"initContainers": [init(ports=[
        {"containerPort": 80, "hostPort": 8080}, {"containerPort": 81, "hostPort": 8080}])]},
     ['spec.initContainers[0].ports[1].hostPort: Duplicate value: "TCP//8080"']),
    ("port range", {"containers": [app(ports=[{"containerPort": 70000}])]},
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and "
      "65535, inclusive"]),
    ("port required", {"containers": [app(ports=[{"name": "web"}])]},
     ["spec.containers[0].ports[0].containerPort: Required value"]),
    ("port protocol", {"containers": [app(ports=[{"containerPort": 1, "protocol": "tcp"}])]},
     ['spec.containers[0].ports[0].protocol: Unsupported value: "tcp": supported values: '
      '"SCTP", "TCP", "UDP"']),
    ("duplicate port name", {"containers": [app(ports=[{"containerPort": 1, "name": "web"},
                                                       {"containerPort": 2, "name": "web"}])]},
     ['spec.containers[0].ports[1].name: Duplicate value: "web"']),
    ("hostNetwork ports must match", {"hostNetwork": True, "containers": [app(
        ports=[{"containerPort": 80, "hostPort": 81}])]},
     ["spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` "
      "when `hostNetwork` is true"]),
    # env
    ("env name required", {"containers": [app(env=[{"value": "x"}])]},
     ["spec.containers[0].env[0].name: Required value",
      'spec.containers[0].env[0].name: Invalid value: "": environment variable name must be '
      "non-empty"]),
    ("env name charset", {"containers": [app(env=[{"name": "A=B"}])]},
     ['spec.containers[0].env[0].name: Invalid value: "A=B": a valid environment variable '
      "name must consist only of printable ASCII characters other than '='"]),
    ("env value and valueFrom", {"containers": [app(env=[{"name": "A", "value": "x",
                                                          "valueFrom": {"fieldRef": {
                                                              "fieldPath": "metadata.name"}}}])]},
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not be specified when '
      "`value` is not empty"]),
    ("env two sources", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name"},
        "resourceFieldRef": {"resource": "limits.cpu"}}}])]},
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": may not have more than one '
      "field specified at a time"]),
    ("env empty valueFrom", {"containers": [app(env=[{"name": "A", "valueFrom": {}}])]},
     ['spec.containers[0].env[0].valueFrom: Invalid value: "": must specify one of: '
      "`fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"]),
    ("fieldRef unknown path", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "spec.foo"}}}])]},
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "spec.foo": '
      "error converting fieldPath: field label not supported: spec.foo"]),
    ("fieldRef not for env", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.labels"}}}])]},
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: '
      '"metadata.labels": supported values: "metadata.name", "metadata.namespace", '
      '"metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", '
      '"status.hostIPs", "status.podIP", "status.podIPs"']),
    ("fieldRef subscript", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.labels['app']"}}}])]}, []),
    ("fieldRef bad version", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v2"}}}])]},
     ['spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: "metadata.name"'
      ": error converting fieldPath: unsupported pod version: v2"]),
    ("resourceFieldRef resource", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "resourceFieldRef": {"resource": "limits.gpu"}}}])]},
     ['spec.containers[0].env[0].valueFrom.resourceFieldRef.resource: Unsupported value: '
      '"limits.gpu": supported values: "limits.cpu", "limits.ephemeral-storage", '
      '"limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"']),
    ("resourceFieldRef divisor", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "resourceFieldRef": {"resource": "limits.memory", "divisor": "3"}}}])]},
     ['spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: '
      '"limits.memory": only divisor\'s values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, '
      "1Pi, 1Ei are supported with the memory resource"]),
    ("resourceFieldRef container", {"containers": [app(env=[{"name": "A", "valueFrom": {
        "resourceFieldRef": {"resource": "limits.cpu", "containerName": "nope"}}}])]},
     ['spec.containers[0].env[0].valueFrom.resourceFieldRef.containerName: Not found: "nope"']),
    # security context and other pod fields
    ("runAsUser range", {"containers": [app(securityContext={"runAsUser": -1})]},
     ["spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and "
      "2147483647, inclusive"]),
    ("privileged without escalation", {"containers": [app(securityContext={
        "privileged": True, "allowPrivilegeEscalation": False})]},
     ["spec.containers[0].securityContext: Invalid value: cannot set "
      "`allowPrivilegeEscalation` to false and `privileged` to true"]),
    ("hostname", {"hostname": "My.Host"},
     [f'spec.hostname: Invalid value: "My.Host": {LABEL_MSG}']),
    ("termination message policy", {"containers": [app(terminationMessagePolicy="Logs")]},
     ['spec.containers[0].terminationMessagePolicy: Unsupported value: "Logs": supported '
      'values: "File", "FallbackToLogsOnError"']),
    ("image pull policy", {"containers": [app(imagePullPolicy="Sometimes")]},
     ['spec.containers[0].imagePullPolicy: Unsupported value: "Sometimes": supported values: '
      '"Always", "IfNotPresent", "Never"']),
]


@pytest.mark.parametrize("spec,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(spec, expected):
    assert problems(spec) == expected


META_CASES = [
    ("name required", {"name": ""},
     ["metadata.name: Required value: name or generateName is required"]),
    ("name subdomain", {"name": "My_Pod"},
     [f'metadata.name: Invalid value: "My_Pod": {SUBDOMAIN_MSG}']),
    ("dotted name is fine", {"name": "my.pod-1"}, []),
    ("namespace", {"namespace": "Prod"},
     [f'metadata.namespace: Invalid value: "Prod": {LABEL_MSG}']),
    ("label value", {"labels": {"app": "-x"}},
     ['metadata.labels: Invalid value: "-x": a valid label must be an empty string or consist '
      "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("label key", {"labels": {"a/b/c": "x"}},
     ['metadata.labels: Invalid value: "a/b/c": a qualified name must consist of alphanumeric '
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
      "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
      "'/' (e.g. 'example.com/MyName')"]),
]


@pytest.mark.parametrize("meta,expected", [c[1:] for c in META_CASES],
                         ids=[c[0] for c in META_CASES])
def test_metadata_rule(meta, expected):
    assert problems(meta=meta) == expected


def test_every_problem_at_once_in_kubectls_shape():
    bad = pod({"initContainers": [{"image": "busybox"}], "containers": [app(image="")]},
              {"name": "myapp-pod"})
    with pytest.raises(SpecError) as info:
        check(bad, "pod.yaml")
    assert str(info.value) == (
        'pod.yaml: The Pod "myapp-pod" is invalid:\n'
        "* spec.containers[0].image: Required value\n"
        "* spec.initContainers[0].name: Required value")
    assert info.value.exit_code == 2


def test_check_passes_a_valid_pod():
    check(pod())


def test_validate_does_not_change_the_pod():
    p = Pod()
    validate(p)
    assert p == Pod()


def test_validate_defaults_a_pod_built_in_code():
    from nsrun.core.spec import Container, PodSpec, Probe, TCPSocketAction

    p = Pod(spec=PodSpec(containers=[Container(
        name="a", image="b", liveness_probe=Probe(tcp_socket=TCPSocketAction(port=80)))]))
    p.metadata.name = "x"
    assert validate(p) == []


def test_very_long_names_are_checked_in_linear_time():
    import time

    start = time.monotonic()
    long = "a" * 200_000 + "!"
    found = problems({"containers": [app(name=long)], "hostname": long},
                     {"name": long + ".x" * 1000, "labels": {long: long}})
    assert time.monotonic() - start < 2
    assert len(found) == 10


@pytest.mark.parametrize("doc, want", [
    ({"metadata": {"name": "p", "labels": {"a": "x\0"}}},
     ['metadata.labels.a: Invalid value: "x\\u0000": must not contain a NUL byte']),
    ({"metadata": {"name": "p", "annotations": {"k\ud800": "v"}}},
     ['metadata.annotations.k\\ud800: Invalid value: "k\\ud800": invalid UTF-8: a lone '
      "surrogate is not a character"]),
    ({"spec": {"containers": [{"args": ["ok", "\udfff"]}]}},
     ['spec.containers[0].args[1]: Invalid value: "\\udfff": invalid UTF-8: a lone surrogate '
      "is not a character"]),
    ({"spec": {"containers": [{"name": "a"}], "hostname": "h"}}, []),
])
def test_strings_no_pod_can_use(doc, want):
    from nsrun.core import rawstrings

    assert [str(p) for p in rawstrings.problems(doc)] == want


def test_capability_names_are_checked_against_the_kernels():
    known = {"CAP_KILL", "CAP_NET_ADMIN"}
    pod = load_pods(json.dumps({"metadata": {"name": "p"}, "spec": {"containers": [app(
        securityContext={"capabilities": {"add": ["kill", "ALL", "FLY"],
                                          "drop": ["all", "CAP_NET_ADMIN", "CAP_"]}})]}}))[0]
    where = "spec.containers[0].securityContext.capabilities"
    assert [str(p) for p in validate(pod, known)] == [
        f'{where}.add[2]: Invalid value: "FLY": unknown capability (the kernel has no CAP_FLY)',
        f'{where}.drop[2]: Invalid value: "CAP_": unknown capability (the kernel has no CAP_)']
    assert validate(pod) == []  # names unchecked without the kernel's list
