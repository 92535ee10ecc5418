"""The pod network's numbers (run by ``bench/bench.py``; root).

* a world's first pod: ``nsrun run --rm`` of a lone pod, which creates the bridge (pyroute2,
  imported for it) and the table and removes them at its end, vs the same pod while another
  pod keeps the bridge up;
* pyroute2: its import, and attaching a pod (veth with its peer in the pod's namespace,
  link up, two addresses, default route) with nsrun's rtnetlink requests vs pyroute2's
  ``IPRoute``, in a throwaway network namespace of this benchmark (``unshare -n``);
* DNS: 1,000 queries for a Service name from inside a pod's network namespace;
* 50 pods at once, each behind its own Service, each reaching the next one's Service by
  name: distinct IPs, and the time until all 50 got their answer.

Every address is link-local (pods 169.254.110.0/24, Services 169.254.210.0/24, as in
``bench.py``); the cluster DNS relays nothing (no resolver file).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NSRUN = [sys.executable, "-m", "nsrun"]
SLEEP_POD = ("apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, labels: {{app: {name}}}}}\n"
             "spec:\n  terminationGracePeriodSeconds: 1\n"
             "  containers:\n  - {{name: app, image: busybox, command: [sleep, '3600']}}\n")


class World:
    def __init__(self, tmp: Path) -> None:
        self.base = NSRUN + ["--root", str(tmp / "state"), "--images", str(tmp / "images")]
        self.root, self.tmp = tmp / "state", tmp

    def __call__(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(self.base + list(args), capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise SystemExit(f"nsrun {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def manifest(self, name: str, text: str) -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        return str(path)

    def status(self, pod: str) -> dict:
        return json.loads((self.root / "pods" / pod / "status.json").read_text())


def _timed_run(world: World, path: str) -> float:
    start = time.perf_counter()
    world("run", "--rm", path)
    return time.perf_counter() - start


def first_pod(world: World, runs: int) -> tuple[float, float]:
    """Median seconds of a lone pod (bridge and table made and removed) and of the same pod
    while another keeps the bridge up."""
    path = world.manifest("true", "apiVersion: v1\nkind: Pod\nmetadata: {name: t}\nspec:\n"
                          "  restartPolicy: Never\n  containers:\n"
                          "  - {name: app, image: busybox, command: [/bin/true]}\n")
    lone = [_timed_run(world, path) for _ in range(runs)]
    world("run", "-d", world.manifest("keep", SLEEP_POD.format(name="keep")))
    try:
        steady = [_timed_run(world, path) for _ in range(runs)]
    finally:
        world("delete", "keep", "--grace-period", "0")
    return statistics.median(lone), statistics.median(steady)


def pyroute2_import(runs: int = 5) -> float:
    """Median ms that ``import pyroute2`` adds to an interpreter's start."""
    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start
    with_it = statistics.median(once("import pyroute2") for _ in range(runs))
    without = statistics.median(once("pass") for _ in range(runs))
    return (with_it - without) * 1000


ATTACH = r"""
import os, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from nsrun.core.netconfig import make_config
from nsrun.host import network, nsfds
cfg = make_config("/nsrun-bench", "169.254.110.0/24", "169.254.210.0/24")
network.ensure_bridge(cfg)
def rtnl(fd, veth, ip):
    network.attach(cfg, fd, veth, ip)
def pyroute(fd, veth, ip):
    from pyroute2 import IPRoute
    with IPRoute() as host:
        host.link("add", ifname=veth, kind="veth", peer={"ifname": "eth0", "net_ns_fd": fd})
        i = host.link_lookup(ifname=veth)[0]
        host.link("set", index=i, master=host.link_lookup(ifname=cfg.bridge)[0], state="up")
    with IPRoute(netns=f"/proc/self/fd/{fd}", flags=0) as pod:
        e = pod.link_lookup(ifname="eth0")[0]
        pod.link("set", index=e, state="up")
        pod.addr("add", index=e, address=ip, prefixlen=cfg.prefixlen)
        pod.addr("add", index=1, address=cfg.cluster_dns, prefixlen=32)
        pod.route("add", dst="0.0.0.0/0", gateway=cfg.gateway)
out = {}
for name, attach in (("rtnl", rtnl), ("pyroute2", pyroute)):
    times = []
    for i in range(int(sys.argv[2])):
        sb = nsfds.create_sandbox("b")
        start = time.perf_counter()
        attach(sb["net"], f"nsrunbench{i}", f"169.254.110.{i + 2}")
        times.append(time.perf_counter() - start)
        network.detach(f"nsrunbench{i}")
        for fd in sb.values():
            os.close(fd)
    out[name] = statistics.median(times) * 1000
import tempfile
from pathlib import Path
from nsrun.core.manifest import load_pods
from nsrun.host.sandbox import Sandbox
from nsrun.runtime.networking import Networking
from nsrun.state import StateRoot
root = Path(tempfile.mkdtemp(prefix="nsrun-netbench-", dir="/run"))
def networking(name):
    pod = load_pods(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, uid: {name}}}\n"
                    "spec:\n  containers: [{name: a, image: i}]\n")[0]
    paths = StateRoot(root).pod(name)
    paths.dir.mkdir(parents=True)
    sb = nsfds.create_sandbox("b")
    return Networking(root, cfg, pod, paths, ""), Sandbox(ns_fds=sb, volume_paths={}, pod=pod)
keep, keep_sandbox = networking("keep")  # another pod keeps the bridge up meanwhile
keep.start(keep_sandbox)
ups, downs = [], []
for i in range(int(sys.argv[2])):
    net, sandbox = networking(f"p{i}")
    sb = sandbox.ns_fds
    start = time.perf_counter()
    net.start(sandbox)
    ups.append(time.perf_counter() - start)
    start = time.perf_counter()
    net.close()
    downs.append(time.perf_counter() - start)
    for fd in sb.values():
        os.close(fd)
keep.close()
import shutil
shutil.rmtree(root)
print(out["rtnl"], out["pyroute2"], statistics.median(ups) * 1000,
      statistics.median(downs) * 1000)
"""


def attach_costs(runs: int) -> list[float]:
    """Median ms to attach a pod with nsrun's rtnetlink requests and with pyroute2 (imported
    before), and of a supervisor's whole network set-up (address, veth, files, DNS socket)
    and tear-down beside a running pod (the bridge exists), in a private namespace."""
    src = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", ATTACH, src, str(runs)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"bench: attach costs: {proc.stderr.strip()}")
    return [float(x) for x in proc.stdout.split()]


def dns_latency(world: World, queries: int = 1000) -> float:
    """Median ms of a Service-name query from inside a pod's network namespace."""
    from dnslib import DNSRecord

    from nsrun.host import nsfds

    world("create", "-f", world.manifest("svc", "apiVersion: v1\nkind: Service\n"
                                         "metadata: {name: target}\nspec:\n"
                                         "  ports: [{port: 80}]\n"))
    world("run", "-d", world.manifest("dns", SLEEP_POD.format(name="dns")))
    try:
        pause = int((world.root / "pods" / "dns" / "sandbox.pid").read_text())
        cfg = json.loads((world.root / "network" / "config.json").read_text())
        net = os.open(f"/proc/{pause}/ns/net", os.O_RDONLY)
        sock = socket.socket(fileno=nsfds.socket_in_netns(net, socket.AF_INET,
                                                           socket.SOCK_DGRAM))
        os.close(net)
        sock.settimeout(2)
        query = DNSRecord.question("target.default.svc.cluster.local").pack()
        times = []
        for _ in range(queries):
            start = time.perf_counter()
            sock.sendto(query, (cfg["cluster_dns"], 53))
            sock.recv(512)
            times.append(time.perf_counter() - start)
        sock.close()
    finally:
        world("delete", "dns", "--grace-period", "0")
        world("delete", "svc", "target")
    return statistics.median(times) * 1000


def fifty_pods(world: World, count: int = 50) -> tuple[float, int]:
    """Seconds until every pod got the next pod's answer through its Service; distinct IPs."""
    docs = []
    for i in range(count):
        nxt = (i + 1) % count
        script = (f"echo p{i} > /www/index.html; httpd -p 8080 -h /www; "
                  f"until printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 1 s{nxt} 80 | "
                  f"grep -q p{nxt}; do sleep 0.5; done; echo reached s{nxt}; sleep 3600")
        docs.append(f"apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}}}\nspec:\n"
                    f"  selector: {{app: p{i}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n")
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {{app: p{i}}}}}"
                    "\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n"
                    f"  - name: app\n    image: busybox\n    command: [sh, -c, {json.dumps(script)}]"
                    "\n    volumeMounts: [{name: www, mountPath: /www}]\n"
                    "  volumes: [{name: www, emptyDir: {}}]\n")
    path = world.manifest("fifty", "---\n".join(docs))
    start = time.perf_counter()
    world("create", "-f", path, "--cgroups", "none")
    try:
        pending = set(range(count))
        while pending and time.perf_counter() - start < 600:
            pending = {i for i in pending if "reached" not in world(
                "logs", f"p{i}", check=False)}
            time.sleep(0.5)
        elapsed = time.perf_counter() - start
        ips = {world.status(f"p{i}")["status"].get("podIP") for i in range(count)}
        if pending:
            raise SystemExit(f"bench: pods {sorted(pending)} never reached their neighbour")
    finally:
        world("delete", "-f", path, "--grace-period", "0", check=False)
    return elapsed, len(ips - {None})


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="nsrun-netbench.", dir="/run") as tmp:
        world = World(Path(tmp))
        world("image", "busybox")
        lone, steady = first_pod(world, max(5, runs // 2))
        print(f"\nthe world's first pod (bridge + table made, then removed): {lone * 1000:.1f} ms;"
              f" the same pod beside a running one: {steady * 1000:.1f} ms (medians)")
        imp = pyroute2_import()
        ours, theirs, up, down = attach_costs(20)
        print(f"pyroute2: import {imp:.1f} ms; attaching a pod (veth into its namespace, up, "
              f"2 addresses, route): nsrun's rtnetlink {ours:.2f} ms, pyroute2 {theirs:.2f} ms "
              "after its import (medians)")
        print(f"a supervisor's network work for one pod (address, veth, /etc/hosts, "
              f"resolv.conf, DNS socket): set-up {up:.2f} ms, tear-down {down:.2f} ms")
        print(f"cluster DNS: median answer {dns_latency(world):.3f} ms over 1,000 queries for a "
              "Service name from inside a pod")
        elapsed, distinct = fifty_pods(world)
        print(f"50 pods at once, each behind a Service, each reaching the next pod's Service "
              f"by name: {distinct} distinct IPs, all answered after {elapsed:.1f} s")


if __name__ == "__main__":
    os.environ.update({"NSRUN_POD_CIDR": "169.254.110.0/24",
                       "NSRUN_SERVICE_CIDR": "169.254.210.0/24", "NSRUN_RESOLV_CONF": ""})
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
