"""Integration-test helpers: Pod manifests built from a few words (``pod``, ``ctr``,
``work_pod``), reaping by pidfd, and a throwaway nsrun world (its own state dir, image store
and cgroup parent, the real ``nsrun`` CLI run as a subprocess, and a check that nothing is
left behind)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsrun.core.netconfig import make_config, world_name
from nsrun.exitstatus import exit_code
from nsrun.host import cgroupdriver
from nsrun.host.cgroupfs import CgroupFs, find_cgroup2_mount
from nsrun.host.preflight import CgroupHost

from netslot import claim

WORK = {"name": "work", "emptyDir": {}}
AT_WORK = [{"name": "work", "mountPath": "/work"}]


def ctr(name: str, script: str, image: str = "busybox", **fields: Any) -> dict[str, Any]:
    """A container running ``sh -c script``; ``fields``: any other container field."""
    return {"name": name, "image": image, "command": ["sh", "-c", script], **fields}


def pod(name: str, containers: list[dict], inits: list[dict] | None = None,
        labels: dict[str, str] | None = None, **spec: Any) -> str:
    """A Pod manifest's text (JSON, which nsrun reads as it reads YAML); ``spec``: any other
    spec field (``restartPolicy="Never"``, ``volumes=[WORK]``…)."""
    meta = {"name": name, **({"labels": labels} if labels else {})}
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                       "spec": {**spec, "initContainers": inits or [],
                                "containers": containers}}, indent=1)


def work_pod(name: str, inits: list[str], app: str, policy: str = "Never",
             labels: dict[str, str] | None = None, image: str = "busybox", **spec: Any) -> str:
    """Init containers ``init-0``, ``init-1``… running ``inits``, then the container ``app``
    (of ``image``) running ``app``; all share the emptyDir ``work`` at ``/work``."""
    return pod(name, [ctr("app", app, image, volumeMounts=AT_WORK)],
               [ctr(f"init-{i}", script, volumeMounts=AT_WORK) for i, script in enumerate(inits)],
               labels, restartPolicy=policy, terminationGracePeriodSeconds=2, volumes=[WORK],
               **spec)


def wait(pidfd: int) -> int:
    """Reap a process through its pidfd (and close it): the exit code, or 128+signal."""
    try:
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    finally:
        os.close(pidfd)
    assert info is not None
    return exit_code(info)


def leftovers(tmp: Path, cgroup_dirs: list[Path]) -> list[str]:
    """Mounts, cgroups, processes, the world's bridge and nftables table a test may have
    left behind (the world's state root is ``tmp/state``)."""
    found = network_leftovers(tmp / "state")
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line.split()[4]}" for line in f if str(tmp) in line]
    found += [f"cgroup {d}" for d in cgroup_dirs if d.exists()]
    logs = tmp / "logs"
    found += [f"log dir {d}" for d in sorted(logs.iterdir())] if logs.is_dir() else []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                root = os.readlink(f"/proc/{pid}/root")
            except OSError:
                continue
            if str(tmp) in root:
                found.append(f"process {pid} rooted at {root}")
    return found


def v1_parents(host: CgroupHost, parent: str | None, default: str = "nsrun") -> list[Path]:
    """``parent`` (None: the default one, named ``default``) in each cgroup v1 hierarchy
    nsrun uses (see ``podcgroupv1``)."""
    if not cgroupdriver.v1_hierarchies(host):
        return []
    from nsrun.host.podcgroupv1 import V1Driver

    driver = V1Driver(host, default_parent=default)
    return list(dict.fromkeys(driver.parent(parent, c) for c in driver.controllers))


def network_leftovers(root: Path) -> list[str]:
    """The bridge and table of the world at ``root``, if they are still there."""
    cfg = make_config(os.path.normpath(os.path.abspath(root)))
    found = []
    if os.path.exists(f"/sys/class/net/{cfg.bridge}"):
        found.append(f"bridge {cfg.bridge}")
    table = subprocess.run(["nft", "list", "table", "ip", cfg.table], capture_output=True)
    if table.returncode == 0:
        found.append(f"nftables table ip {cfg.table}")
    return found


class World:
    """``nsrun`` with ``--root``/``--images`` in ``tmp``, a private cgroup parent, a network
    of its own (pod and service CIDRs no other live world uses) and an empty resolver file
    (the cluster DNS relays nothing: no test query ever leaves this host)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root, self.images = tmp / "state", tmp / "images"
        self.pod_cidr, self.service_cidr = claim()
        self.resolv_conf = tmp / "resolv.conf"
        self.resolv_conf.write_text("")
        mount = find_cgroup2_mount()
        self.cgroup_parent = f"nsrun-test-{os.getpid()}-{tmp.name}"
        host = CgroupHost.probe()
        self.driver = cgroupdriver.auto_kind(host, CgroupFs())[0]  # what --cgroups auto uses
        # the private parent in every hierarchy (none may be left behind)
        self.cgroup_dirs = [Path(mount) / self.cgroup_parent] if mount else []
        self.cgroup_dirs += v1_parents(host, self.cgroup_parent)

    def default_parents(self) -> list[Path]:
        """Where this world's pods go without ``--cgroup-parent`` (every hierarchy)."""
        name = world_name(os.path.normpath(os.path.abspath(self.root)))
        mount = find_cgroup2_mount()
        return ([Path(mount) / name] if mount else []) + \
            v1_parents(CgroupHost.probe(), None, name)

    def nsrun(self, *args: str, check: bool = False, timeout: float = 60,
              input: str | None = None) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "nsrun", *self.global_args(), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} exited {proc.returncode}: {proc.stderr}")
        return proc

    def clean(self) -> list[str]:
        """Delete every pod (at once) and Service of the world; what is left on the host."""
        pods = self.root / "pods"
        for pod in sorted(pods.iterdir()) if pods.exists() else []:
            self.nsrun("delete", pod.name, "--grace-period", "0", "--timeout", "10")
        services = self.root / "services"
        for path in sorted(services.glob("*/*.json")) if services.exists() else []:
            self.nsrun("delete", "svc", path.stem)
        return leftovers(self.tmp, self.cgroup_dirs)

    def global_args(self) -> list[str]:
        return ["--root", str(self.root), "--images", str(self.images),
                "--pod-cidr", self.pod_cidr, "--service-cidr", self.service_cidr,
                "--resolv-conf", str(self.resolv_conf),
                "--log-dir", str(self.tmp / "logs")]

    def run_args(self, *extra: str) -> list[str]:
        return ["run", "--cgroup-parent", self.cgroup_parent, "--backoff-initial", "0.2",
                "--backoff-max", "1", *extra]

    def manifest(self, name: str, text: str) -> str:
        path = self.tmp / f"{name}.yaml"
        path.write_text(text)
        return str(path)

    def image_variant(self, name: str, change: Callable[[dict, Path], None]) -> str:
        """A copy of the busybox image as ``name``, ``change(config, rootfs)`` applied to its
        config.json (as a dict) and rootfs."""
        import shutil

        src, dst = self.images / "busybox" / "latest", self.images / name / "latest"
        shutil.copytree(src, dst, symlinks=True)
        config = json.loads((dst / "config.json").read_text())
        change(config, dst / "rootfs")
        (dst / "config.json").write_text(json.dumps(config))
        return name

    def status(self, pod: str) -> dict:
        return json.loads((self.root / "pods" / pod / "status.json").read_text())

    def column(self, pod: str) -> str:
        """The pod's STATUS column ("" while the pod has no status yet)."""
        out = self.nsrun("get", pod).stdout.splitlines()
        return out[1].split()[2] if len(out) > 1 else ""

    def wait_column(self, pod: str, want: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.column(pod)
            if seen == want:
                return
            time.sleep(0.05)
        raise AssertionError(f"{pod}: STATUS {seen!r}, wanted {want!r}")


def scrub(cgroup_dirs: list[Path]) -> list[str]:
    """After a failed test: SIGKILL what is left in the test's own parent cgroups (only
    processes the test started can be there) and remove them, leaves first; returns what
    was left."""
    import errno
    import signal

    left = []
    for top in cgroup_dirs:
        if not top.exists():
            continue
        left.append(str(top))
        for cg in sorted((p for p in [top, *top.rglob("*")] if p.is_dir()),
                         key=lambda p: len(p.parts), reverse=True):
            if (cg / "freezer.state").exists():
                (cg / "freezer.state").write_text("THAWED")
            for _ in range(200):
                for pid in (cg / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                try:
                    cg.rmdir()
                    break
                except OSError as err:
                    if err.errno != errno.EBUSY:
                        raise
                    time.sleep(0.01)
    return left

