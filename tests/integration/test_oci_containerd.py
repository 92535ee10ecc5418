"""containerd's runc shim (containerd-shim-runc-v2) driving ``nsrun-oci`` through
``ctr run --runc-binary``, every scenario also with runc as the reference: run with output and
exit code; run -d, exec, ps, pause, resume, kill, delete.

A private containerd per test: its own root, state and socket under tmp, the CRI plugin off,
a namespace of its own (the shim gives the runtime ``--root /run/containerd/runc/<ns>`` and
the container the cgroup ``/<ns>/<id>``: both removed after the test)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from ociworld import NSRUN_OCI, RUNC, leftovers, make_rootfs, processes_under, remove_cgroups

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups"),
              pytest.mark.skipif(shutil.which("containerd") is None or
                                 shutil.which("ctr") is None, reason="containerd not installed"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static")]
RUNTIMES = {"nsrun-oci": NSRUN_OCI, "runc": RUNC}
CONFIG = """version = 2
root = "{tmp}/root"
state = "{tmp}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{tmp}/ctd.sock"
[ttrpc]
  address = "{tmp}/ctd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"""


class Containerd:
    def __init__(self, tmp: Path, runtime: str) -> None:
        self.tmp, self.runtime = tmp, runtime
        self.ns = f"nsrun-{os.getpid()}-{tmp.name}"[:60]
        self.rootfs = make_rootfs(tmp / "rootfs")
        (tmp / "config.toml").write_text(CONFIG.format(tmp=tmp))
        self.log = open(tmp / "containerd.log", "w")
        self.daemon = subprocess.Popen(["containerd", "--config", str(tmp / "config.toml")],
                                       stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while self.ctr("version").returncode != 0:
            assert time.monotonic() < deadline, (tmp / "containerd.log").read_text()
            time.sleep(0.1)

    def ctr(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        return subprocess.run(["ctr", "--address", str(self.tmp / "ctd.sock"), "-n", self.ns,
                               *args], text=True, timeout=timeout,
                              stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """``ctr run [flags] --rootfs DIR ID CMD…`` with this test's runtime; ``args``: flags,
        then ``--``, the id and the command."""
        split = args.index("--")
        # ctr gives a container without an image no PATH: runc would find no "sh" (nsrun-oci
        # looks in the default PATH then, as a shell does)
        return self.ctr("run", "--runc-binary", self.runtime, "--env", "PATH=/bin",
                        *args[:split], "--rootfs",
                        str(self.rootfs), *args[split + 1:], **kw)

    def close(self) -> list[str]:
        for line in self.ctr("task", "ls", "-q").stdout.split():
            self.ctr("task", "kill", "-s", "SIGKILL", line)
            self.ctr("task", "delete", "--force", line)
        for line in self.ctr("container", "ls", "-q").stdout.split():
            self.ctr("container", "rm", line)
        self.daemon.terminate()
        self.daemon.wait(timeout=30)
        self.log.close()
        deadline = time.monotonic() + 10
        while processes_under(self.tmp) and time.monotonic() < deadline:
            time.sleep(0.05)
        state = Path("/run/containerd/runc") / self.ns
        left = [f"runtime state {state}/{c}" for c in os.listdir(state)] if state.is_dir() else []
        if state.is_dir():
            state.rmdir()
        remove_cgroups(self.ns)
        return left + leftovers(self.tmp, self.ns)


@pytest.fixture(params=list(RUNTIMES))
def ctd(request, tmp_path):
    c = Containerd(tmp_path, RUNTIMES[request.param])
    try:
        yield c
    finally:
        left = c.close()
    assert left == []


def test_run_output_and_exit_code(ctd) -> None:
    out = ctd.run("--rm", "--", "r1", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n"), out


def test_exec_ps_pause_resume_kill_delete(ctd) -> None:
    assert ctd.run("-d", "--", "d1", "sleep", "100").returncode == 0
    tasks = ctd.ctr("task", "ls").stdout
    assert "d1" in tasks and "RUNNING" in tasks
    out = ctd.ctr("task", "exec", "--exec-id", "e1", "d1", "sh", "-c", "echo in-exec; exit 4")
    assert (out.returncode, out.stdout) == (4, "in-exec\n"), out
    ps = ctd.ctr("task", "ps", "d1")
    assert ps.returncode == 0 and len(ps.stdout.splitlines()) == 2, ps
    assert ctd.ctr("task", "pause", "d1").returncode == 0
    assert "PAUSED" in ctd.ctr("task", "ls").stdout
    assert ctd.ctr("task", "resume", "d1").returncode == 0
    assert "RUNNING" in ctd.ctr("task", "ls").stdout
    assert ctd.ctr("task", "kill", "-s", "SIGKILL", "d1").returncode == 0
    deadline = time.monotonic() + 10
    while "STOPPED" not in ctd.ctr("task", "ls").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert ctd.ctr("task", "delete", "d1").returncode == 0
    assert ctd.ctr("container", "rm", "d1").returncode == 0
