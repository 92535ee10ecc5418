"""Pod networking when things go wrong: a SIGKILLed supervisor, an exhausted pod CIDR, many
create/delete cycles, names relayed to an upstream (a fake one on loopback: no query ever
leaves this host). Afterwards nothing of the world is left on the host."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from world import World

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, veths)")]


@pytest.fixture
def world(net_world):
    return net_world


def sleeper(name: str, labels: str = "{}") -> str:
    return (f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {labels}}}\nspec:\n"
            "  terminationGracePeriodSeconds: 1\n"
            "  containers: [{name: a, image: busybox, command: [sleep, '60']}]\n")


def create(world: World, text: str, name: str = "m") -> None:
    world.nsrun("create", "-f", world.manifest(name, text), "--cgroup-parent",
                world.cgroup_parent, "--backoff-initial", "0.2", "--backoff-max", "0.5",
                check=True)


def bridge_ports(world: World) -> list[str]:
    cfg = json.loads((world.root / "network" / "config.json").read_text())
    out = subprocess.run(["ip", "-o", "link", "show", "master", cfg["bridge"]],
                         capture_output=True, text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]


def allocations(world: World) -> dict:
    path = world.root / "network" / "ipam.json"
    return json.loads(path.read_text())["pods"] if path.exists() else {}


def ports_settle(world: World, count: int, timeout: float = 5) -> list[str]:
    """The bridge's ports once there are ``count`` (a pod's veth goes with its network
    namespace, which the kernel frees asynchronously)."""
    deadline = time.monotonic() + timeout
    while len(ports := bridge_ports(world)) != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return ports


def netns_holders(inode: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.readlink(f"/proc/{pid}/ns/net") == inode:
                    found.append(pid)
            except OSError:
                pass
    return found


def test_sigkilled_supervisor_then_delete_leaves_nothing(world):
    create(world, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
           "  selector: {app: a}\n  ports: [{port: 80}]\n", "svc")
    create(world, sleeper("p", "{app: a}"))
    world.wait_column("p", "Running")
    ip = world.status("p")["status"]["podIP"]
    pause = int((world.root / "pods" / "p" / "sandbox.pid").read_text())
    netns = os.readlink(f"/proc/{pause}/ns/net")
    assert len(bridge_ports(world)) == 1 and allocations(world) == {ip: "p"}
    supervisor = int((world.root / "pods" / "p" / "supervisor.pid").read_text())
    os.kill(supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{supervisor}") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert world.nsrun("delete", "p", check=True).stdout == 'pod "p" deleted\n'
    assert allocations(world) == {}
    assert not os.path.exists(f"/sys/class/net/{json.loads((world.root / 'network' / 'config.json').read_text())['bridge']}")
    assert "<none>" in world.nsrun("get", "ep", "s").stdout  # the dead pod serves nothing
    deadline = time.monotonic() + 5  # the namespace (and its DNS socket) goes asynchronously
    while netns_holders(netns) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert netns_holders(netns) == []


def test_exhausted_pod_cidr_waits_with_a_reason_and_recovers(world):
    world.pod_cidr = str(next(ipaddress.IPv4Network(world.pod_cidr).subnets(new_prefix=29)))
    create(world, "---\n".join(sleeper(f"p{i}") for i in range(5)), "five")
    for i in range(5):
        world.wait_column(f"p{i}", "Running")
    create(world, sleeper("late"), "late")
    time.sleep(0.5)
    assert world.column("late") == "ContainerCreating"
    events = world.nsrun("describe", "late").stdout
    assert "FailedCreatePodSandBox" in events
    assert "no IP addresses available in range set:" in events
    assert len(bridge_ports(world)) == 5  # no half-made veth for the sixth pod
    assert "podIP" not in world.status("late")["status"]
    world.nsrun("delete", "p2", "--grace-period", "0", check=True)
    world.wait_column("late", "Running", timeout=10)
    assert len(ports_settle(world, 5)) == 5 and len(set(allocations(world))) == 5


def test_many_create_delete_cycles_leave_nothing(world):
    create(world, sleeper("anchor"), "anchor")  # keeps the bridge between the rounds
    world.wait_column("anchor", "Running")
    batch = "---\n".join(sleeper(f"c{i}") for i in range(4))
    path = world.manifest("batch", batch)
    for _ in range(25):  # 100 pods, created four at a time
        world.nsrun("create", "-f", path, "--cgroups", "none", check=True)
        world.nsrun("delete", "-f", path, "--grace-period", "0", check=True)
    assert list(allocations(world).values()) == ["anchor"]
    assert len(ports_settle(world, 1)) == 1
    world.nsrun("delete", "anchor", "--grace-period", "0", check=True)
    assert allocations(world) == {}


class FakeUpstream:
    """A DNS server on a loopback address of the host that answers every A query with
    192.0.2.99 (TEST-NET-1: never contacted) and counts what it got."""

    def __init__(self) -> None:
        self.address = f"127.77.{os.getpid() % 250}.{threading.get_native_id() % 250 + 1}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.address, 53))
        self.names: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        from dnslib import QTYPE, RR, A, DNSRecord

        while True:
            try:
                data, client = self.sock.recvfrom(4096)
            except OSError:
                return
            request = DNSRecord.parse(data)
            self.names.append(str(request.q.qname))
            reply = request.reply()
            if request.q.qtype == QTYPE.A:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("192.0.2.99"), ttl=5))
            self.sock.sendto(reply.pack(), client)

    def close(self) -> None:
        self.sock.close()


def test_names_outside_the_cluster_are_relayed_to_the_upstream(world):
    upstream = FakeUpstream()
    try:
        world.resolv_conf.write_text(f"nameserver {upstream.address}\nsearch corp.example\n")
        create(world, "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n"
               "  ports: [{port: 80}]\n", "svc")
        script = ("nslookup outside.example; cat /etc/resolv.conf; nslookup s; echo s=$?")
        create(world, sleeper("q").replace("[sleep, '60']", f"[sh, -c, {json.dumps(script)}]")
               .replace("containers:", "restartPolicy: Never\n  containers:"))
        world.wait_column("q", "Completed")
        out = world.nsrun("logs", "q").stdout
    finally:
        upstream.close()
    assert "Name:\toutside.example\nAddress: 192.0.2.99" in out
    assert "search default.svc.cluster.local svc.cluster.local cluster.local corp.example" in out
    assert "s=0" in out  # s.corp.example was answered NODATA locally, never relayed
    assert all(not n.startswith("s.") and "cluster.local" not in n for n in upstream.names)
    assert "outside.example." in upstream.names


def test_a_dead_worlds_bridge_and_table_go_with_the_next_world(world, tmp_path):
    import shutil

    from nsrun.core import proxyrules
    from nsrun.core.netconfig import make_config
    from nsrun.host import network, nft

    dead = tmp_path / "dead" / "state"
    (dead / "network").mkdir(parents=True)
    (dead / "network" / "config.json").write_text("{}")
    first = [str(next(ipaddress.IPv4Network(c).subnets(new_prefix=28)))
             for c in (world.pod_cidr, world.service_cidr)]
    cfg = make_config(str(dead), *first)  # inside this world's range: it would block it
    try:
        network.ensure_bridge(cfg)
        nft.load(proxyrules.ruleset(cfg, []))
        shutil.rmtree(dead.parent)  # its state root is gone: nobody will ever clean it up
        create(world, sleeper("p"))
        world.wait_column("p", "Running")
        assert not os.path.exists(f"/sys/class/net/{cfg.bridge}")
        assert subprocess.run(["nft", "list", "table", "ip", cfg.table],
                              capture_output=True).returncode != 0
    finally:
        network.remove_bridge(cfg)
        nft.remove_table(cfg.table)
