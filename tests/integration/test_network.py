"""Pod networking on real kernel objects: pod → Service → pod through nsrun's nftables
table, endpoints that follow readiness, headless Services, egress to the host, Service env
vars and the downward API's podIP, DNS relaying to a fake upstream on loopback, bad
Services. Every address is in 169.254.0.0/16 or on loopback (``netslot``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from nsrun.host import nsfds

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, veths)")]


@pytest.fixture
def world(net_world):
    return net_world


def create(world: World, text: str, name: str = "m") -> str:
    proc = world.nsrun("create", "-f", world.manifest(name, text), "--cgroup-parent",
                       world.cgroup_parent, "--backoff-initial", "0.2", "--backoff-max", "1")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def pod_yaml(name: str, script: str, labels: str = "{}", inits: str = "", extra: str = "") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, labels: {labels}}}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never{inits}
  containers:
  - name: main
    image: busybox
    command: [sh, -c, {json.dumps(script)}]{extra}
"""


def logs(world: World, pod: str, container: str = "main") -> str:
    return world.nsrun("logs", pod, "-c", container).stdout


def wait(cond, timeout: float = 20, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


SERVER = pod_yaml("server", "hostname > /www/index.html && sleep 1 && touch /www/ready && "
                  "exec httpd -f -p 8080 -h /www", "{app: web}", extra="""
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      exec: {command: [test, -e, /www/ready]}
      periodSeconds: 1
    volumeMounts: [{name: www, mountPath: /www}]
  volumes: [{name: www, emptyDir: {}}]""")
GET = "printf \"GET / HTTP/1.0\\r\\n\\r\\n\""  # busybox's wget -q crashes in 1.35
WEB_SVC = """apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
"""


def test_pod_to_service_to_pod(world):
    assert create(world, WEB_SVC, "svc") == "service/web created\n"
    create(world, SERVER, "server")
    # no endpoint before the server is Ready
    assert world.nsrun("get", "ep", "web").stdout.splitlines()[1].split()[:2] == ["web", "<none>"]
    client = pod_yaml("client", f"{GET} | nc $WEB_SERVICE_HOST $WEB_SERVICE_PORT | tail -n 1",
                      inits=f"""
  initContainers:
  - name: wait-web
    image: busybox
    command: [sh, -c, 'until nslookup web.default.svc.cluster.local && {GET} | nc -w 1 web.default.svc.cluster.local 80 | grep -q server; do sleep 0.2; done']""")
    create(world, client, "client")
    world.wait_column("client", "Completed", timeout=30)
    assert logs(world, "client").strip() == "server"
    server_ip = world.status("server")["status"]["podIP"]
    row = world.nsrun("get", "endpoints").stdout.splitlines()[1].split()
    assert row[:2] == ["web", f"{server_ip}:8080"]
    status = world.status("client")["status"]
    assert status["podIP"] != server_ip and status["hostIP"]


def test_service_without_endpoints_refuses_and_deleting_it_stops_at_once(world):
    create(world, WEB_SVC, "svc")
    ip = json.loads(world.nsrun("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    probe = pod_yaml("probe", f"nc -w 2 {ip} 80 </dev/null; echo rc=$?; "
                     "until ! nslookup web.default.svc.cluster.local >/dev/null; do sleep 0.1; "
                     "done; echo gone; sleep 30")
    create(world, probe, "probe")
    wait(lambda: "rc=1" in logs(world, "probe"), what="connection refused")
    assert "Connection refused" in logs(world, "probe")
    out = world.nsrun("delete", "svc", "web", check=True).stdout
    assert out == 'service "web" deleted\n'
    wait(lambda: "gone" in logs(world, "probe"), timeout=5, what="DNS name removed")
    cfg = json.loads((world.root / "network" / "config.json").read_text())
    table = subprocess.run(["nft", "list", "table", "ip", cfg["table"]], capture_output=True,
                           text=True).stdout
    assert "service-ips" in table and ip not in table


def test_headless_service_resolves_to_pod_ips(world):
    create(world, """apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432}]
""", "svc")
    create(world, pod_yaml("db-0", "sleep 30", "{app: db}"), "db")
    ip = wait(lambda: world.status("db-0")["status"].get("podIP"))
    lookup = pod_yaml("look", "until nslookup db.default.svc.cluster.local; do sleep 0.2; done")
    create(world, lookup, "look")
    world.wait_column("look", "Completed")
    assert f"Address: {ip}" in logs(world, "look")
    assert world.nsrun("get", "svc", "db").stdout.splitlines()[1].split()[2] == "None"


def test_busybox_nslookup_of_a_bare_name_exits_by_the_services_existence(world):
    script = "nslookup later; echo first=$?; until nslookup later; do sleep 0.1; done; echo found"
    create(world, pod_yaml("bb", script), "bb")
    wait(lambda: "first=1" in logs(world, "bb"), what="NXDOMAIN before the Service")
    create(world, WEB_SVC.replace("name: web", "name: later"), "svc")
    start = time.monotonic()
    world.wait_column("bb", "Completed", timeout=5)
    assert time.monotonic() - start < 2  # the new Service resolves at the next query
    assert "Name:\tlater.default.svc.cluster.local" in logs(world, "bb")


def test_egress_to_a_server_on_the_bridge_address(world):
    gateway = world.pod_cidr.rsplit(".", 1)[0] + "." + str(int(
        world.pod_cidr.split("/")[0].rsplit(".", 1)[1]) + 1)
    fetch = pod_yaml("fetch", "cat /work/file", inits=f"""
  initContainers:
  - name: get
    image: busybox
    command: [sh, -c, 'until wget -O /work/file http://{gateway}:18080/file; do sleep 0.2; done']
    volumeMounts: [{{name: work, mountPath: /work}}]""", extra="""
    volumeMounts: [{name: work, mountPath: /work}]
  volumes: [{name: work, emptyDir: {}}]""")
    create(world, fetch, "fetch")
    wait(lambda: os.path.exists(f"/sys/class/net/{bridge_of(world)}"), what="bridge")
    server = socket.create_server((gateway, 18080))
    thread = threading.Thread(target=_serve_once, args=(server,), daemon=True)
    thread.start()
    try:
        world.wait_column("fetch", "Completed")
    finally:
        server.close()
    assert logs(world, "fetch") == "hello from the host\n"


def bridge_of(world: World) -> str:
    return json.loads((world.root / "network" / "config.json").read_text())["bridge"]


def _serve_once(server: socket.socket) -> None:
    conn, _ = server.accept()
    with conn:
        conn.recv(4096)
        body = b"hello from the host\n"
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def test_service_env_vars_and_downward_api_pod_ip(world):
    create(world, WEB_SVC, "svc")
    ip = json.loads(world.nsrun("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    env = pod_yaml("env", "env | sort", extra="""
    env:
    - {name: MY_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
    - {name: URL, value: 'http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)'}""")
    create(world, env, "env")
    world.wait_column("env", "Completed")
    out = dict(line.split("=", 1) for line in logs(world, "env").splitlines())
    status = world.status("env")["status"]
    assert out["MY_IP"] == status["podIP"] and out["HOST_IP"] == status["hostIP"]
    assert out["WEB_SERVICE_HOST"] == ip and out["WEB_SERVICE_PORT"] == "80"
    assert out["WEB_PORT_80_TCP"] == f"tcp://{ip}:80" and out["URL"] == f"http://{ip}:80"
    no_links = pod_yaml("nolinks", "env | sort", extra="").replace(
        "restartPolicy: Never", "restartPolicy: Never\n  enableServiceLinks: false")
    create(world, no_links, "nolinks")
    world.wait_column("nolinks", "Completed")
    assert "WEB_SERVICE_HOST" not in logs(world, "nolinks")
    wide = world.nsrun("get", "pods", "env", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:7] == ["IP", "NODE"] and wide[1].split()[5] == status["podIP"]


def test_bad_services_create_nothing(world):
    bad = """kind: Service
apiVersion: v1
metadata: {name: ok}
spec:
  ports: [{port: 80}]
---
kind: Service
apiVersion: v1
metadata: {name: bad}
spec:
  clusterIP: 10.1.0.1
  ports: [{port: 70000}]
"""
    proc = world.nsrun("create", "-f", world.manifest("bad", bad))
    assert proc.returncode == 2 and proc.stdout == ""
    assert 'The Service "bad" is invalid' in proc.stderr
    assert "spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535" in proc.stderr
    assert world.nsrun("get", "svc").stdout == ""
    create(world, WEB_SVC, "svc")
    taken = json.loads(world.nsrun("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    clash = WEB_SVC.replace("name: web", "name: web2").replace(
        "spec:\n", f"spec:\n  clusterIP: {taken}\n")
    proc = world.nsrun("create", "-f", world.manifest("clash", clash))
    assert proc.returncode == 2
    assert f"failed to allocate IP {taken}: provided IP is already allocated" in proc.stderr
    proc = world.nsrun("create", "-f", world.manifest("svc2", WEB_SVC))
    assert proc.returncode == 2 and 'services "web" already exists' in proc.stderr
    assert len(world.nsrun("get", "svc").stdout.splitlines()) == 2


def test_apply_services_created_unchanged_configured(world):
    path = world.manifest("svc", WEB_SVC)
    assert world.nsrun("apply", "-f", path, check=True).stdout == "service/web created\n"
    assert world.nsrun("apply", "-f", path, check=True).stdout == "service/web unchanged\n"
    world.manifest("svc", WEB_SVC.replace("port: 80", "port: 81"))
    assert world.nsrun("apply", "-f", path, check=True).stdout == "service/web configured\n"
    assert "81/TCP" in world.nsrun("get", "svc").stdout


def test_host_network_pod_sees_the_hosts_interfaces(world):
    """The pod is in the host's network namespace (same inode), so it sees the host's links.
    Other tests add and remove veths meanwhile: compare against the links that stayed."""
    before = socket.gethostname()
    host_before = set(_host_links())
    pod = pod_yaml("hn", "hostname; readlink /proc/self/ns/net; "
                   "cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' | sort; "
                   "head -1 /etc/hosts").replace("restartPolicy: Never",
                                                 "restartPolicy: Never\n  hostNetwork: true")
    create(world, pod, "hn")
    world.wait_column("hn", "Completed")
    lines = logs(world, "hn").splitlines()
    stable = host_before & set(_host_links())
    assert lines[0] == before == socket.gethostname()
    assert lines[1] == os.readlink("/proc/self/ns/net")
    assert stable <= set(lines[2:-1]) and "lo" in stable and len(stable) > 1
    assert lines[-1] == "# Kubernetes-managed hosts file (host network)."
    status = world.status("hn")["status"]
    assert status["podIP"] == status["hostIP"]
    ipam = world.root / "network" / "ipam.json"
    assert not ipam.exists() or json.loads(ipam.read_text())["pods"] == {}


def _host_links():
    with open("/proc/net/dev") as f:
        return [line.split(":")[0].strip() for line in f.readlines()[2:]]


def test_host_network_host_port_must_match(world):
    pod = pod_yaml("hp", "true", extra="\n    ports: [{containerPort: 80, hostPort: 81}]") \
        .replace("restartPolicy: Never", "restartPolicy: Never\n  hostNetwork: true")
    proc = world.nsrun("create", "-f", world.manifest("hp", pod))
    assert proc.returncode == 2
    assert ("spec.containers[0].ports[0].hostPort: Invalid value: 81: must match "
            "`containerPort` when `hostNetwork` is true") in proc.stderr


def test_udp_service_reaches_a_udp_server_in_the_pod(world):
    from dnslib import QTYPE, RR, A, DNSRecord


    create(world, """apiVersion: v1
kind: Service
metadata: {name: udpdns}
spec:
  selector: {app: udp}
  ports: [{port: 53, protocol: UDP, targetPort: 5353}]
""", "svc")
    create(world, pod_yaml("udp-server", "sleep 60", "{app: udp}"), "server")
    world.wait_column("udp-server", "Running")
    pause = int((world.root / "pods" / "udp-server" / "sandbox.pid").read_text())
    net = os.open(f"/proc/{pause}/ns/net", os.O_RDONLY)
    server = socket.socket(fileno=nsfds.socket_in_netns(net, socket.AF_INET, socket.SOCK_DGRAM))
    os.close(net)
    server.bind(("0.0.0.0", 5353))  # inside the server pod's network namespace

    def answer() -> None:
        data, client = server.recvfrom(512)
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.77"), ttl=5))
        server.sendto(reply.pack(), client)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        create(world, pod_yaml("udp-client", "nslookup -type=a foo.example $UDPDNS_SERVICE_HOST"),
               "client")
        world.wait_column("udp-client", "Completed")
    finally:
        server.close()
    assert "Address: 192.0.2.77" in logs(world, "udp-client")


def test_host_network_pod_with_cluster_first_with_host_net_resolves_services(world):
    create(world, WEB_SVC, "svc")
    pod = pod_yaml("hn", "nslookup web").replace(
        "restartPolicy: Never", "restartPolicy: Never\n  hostNetwork: true\n"
        "  dnsPolicy: ClusterFirstWithHostNet")
    create(world, pod, "hn")
    world.wait_column("hn", "Completed")
    ip = json.loads(world.nsrun("get", "svc", "web", "-o", "json").stdout)["spec"]["clusterIP"]
    out = logs(world, "hn")
    assert out.startswith("Server:\t\t127.254.") and f"Address: {ip}" in out
