"""``describe pod``'s container block as kubectl prints it: ports, limits/requests and the
probe lines (kubectl's ``DescribeProbe``), in kubectl's order."""

from __future__ import annotations

import pytest

from nsrun.report.describe import describe, probe_text

TIMING = {"initialDelaySeconds": 3, "timeoutSeconds": 2, "periodSeconds": 5,
          "successThreshold": 1, "failureThreshold": 4}


@pytest.mark.parametrize(("probe", "text"), [
    ({"exec": {"command": ["cat", "/tmp/ok"]}, **TIMING},
     "exec [cat /tmp/ok] delay=3s timeout=2s period=5s #success=1 #failure=4"),
    ({"httpGet": {"path": "/healthz", "port": 8080}},
     "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3"),
    ({"httpGet": {"host": "10.0.0.1", "port": "web", "scheme": "HTTPS", "path": "/"}},
     "http-get https://10.0.0.1:web/ delay=0s timeout=1s period=10s #success=1 #failure=3"),
    ({"tcpSocket": {"port": 5432}},
     "tcp-socket :5432 delay=0s timeout=1s period=10s #success=1 #failure=3"),
    ({"grpc": {"port": 9000, "service": "health"}},
     "grpc <pod>:9000 health delay=0s timeout=1s period=10s #success=1 #failure=3"),
])
def test_probe_text_is_kubectls(probe, text):
    assert probe_text(probe) == text


def test_container_block_order_ports_resources_probes():
    app = {"name": "app", "image": "busybox", "command": ["sleep", "9"],
           "ports": [{"containerPort": 8080}],
           "resources": {"limits": {"cpu": "200m", "memory": "64Mi"},
                         "requests": {"cpu": "100m"}},
           "livenessProbe": {"exec": {"command": ["true"]}, **TIMING},
           "readinessProbe": {"tcpSocket": {"port": 8080}}}
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [app]},
           "status": {"containerStatuses": [{"name": "app", "restartCount": 2,
                                             "ready": True, "state": {}}]}}
    text = describe(pod, [], 0.0).splitlines()
    block = text[text.index("Containers:"):text.index("Conditions:")]
    assert block[block.index("    Restart Count:  2") + 1:] == [
        "    Limits:",
        "      cpu:     200m",
        "      memory:  64Mi",
        "    Requests:",
        "      cpu:  100m",
        "    Liveness:       exec [true] delay=3s timeout=2s period=5s #success=1 #failure=4",
        "    Readiness:      tcp-socket :8080 delay=0s timeout=1s period=10s #success=1 "
        "#failure=3",
        "    Environment:    <none>",
        "    Mounts:         <none>"]
    assert "    Port:           8080/TCP" in block
