"""podman (conmon) driving ``nsrun-oci`` through ``--runtime``, every scenario also with runc
as the reference: run with output and exit code, run -d with logs, exec, top, pause/unpause,
stop, kill, rm, run -t through the console socket, and a runtime podman sends JSON logs to.

Each test has its own podman store (``--root``/``--runroot``/``--tmpdir`` in tmp, vfs), the
runtime's state under ``--runtime-flag root=…``, ``--cgroup-manager cgroupfs`` with a
``--cgroup-parent`` of its own (podman leaves it at the root of every v1 hierarchy: removed
after the test), ``--network none`` and explicit ``--ulimit`` values (podman's defaults exceed
this machine's hard limits)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from ociworld import NSRUN_OCI, RUNC, leftovers, make_rootfs, processes_under, remove_cgroups

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups"),
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman not installed"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static")]
RUNTIMES = {"nsrun-oci": NSRUN_OCI, "runc": RUNC}
STATE_ROOTS = ("/run/nsrun/oci", "/run/runc")  # the runtimes' default --root


class Podman:
    def __init__(self, tmp, runtime: str, conf: str | None = None) -> None:
        # podman refuses a runroot longer than 50 characters: its store lives in a short
        # directory of its own (removed with the test)
        self.tmp, self.runtime = Path(tempfile.mkdtemp(prefix="nsrun-pm.", dir="/tmp")), runtime
        self.parent = f"nsrun-podman-{os.getpid()}-{tmp.name}"[:80]
        self.rootfs = make_rootfs(tmp / "rootfs")
        self.env = {**os.environ, "CONTAINERS_CONF": conf} if conf else None

    def runtime_state(self) -> list[str]:
        """Containers of this test in the runtimes' default roots (their state names the
        bundle, which is in this test's store)."""
        found = []
        for root in STATE_ROOTS:
            for cid in os.listdir(root) if os.path.isdir(root) else []:
                try:
                    text = Path(root, cid, "state.json").read_text()
                except OSError:
                    text = ""
                if str(self.tmp) in text:
                    found.append(f"runtime state {root}/{cid}")
        return found

    def close(self) -> list[str]:
        """Remove every container, the cgroup parent and the store; what was left. The
        runtime's state is in its default root: podman's cleanup process calls ``delete``
        without ``--runtime-flag`` (podman 4.3), so a private root would not be cleaned."""
        self("rm", "--all", "--force", "--time", "0")
        deadline = time.monotonic() + 15  # conmon's exit command (podman's cleanup) may
        while time.monotonic() < deadline:  # still be deleting the last container
            left = self.runtime_state()
            if not left and not processes_under(self.tmp):
                break
            time.sleep(0.05)
        remove_cgroups(self.parent)
        left += leftovers(self.tmp, self.parent)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return left

    def __call__(self, *args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        cmd = ["podman", "--root", str(self.tmp / "store"), "--runroot", str(self.tmp / "run"),
               "--tmpdir", str(self.tmp / "ptmp"), "--storage-driver", "vfs",
               "--cgroup-manager", "cgroupfs", "--events-backend", "file",
               "--runtime", self.runtime, *args]
        kw.setdefault("capture_output", True)
        return subprocess.run(cmd, text=True, timeout=timeout, env=self.env,
                              stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        """``podman run`` with this test's options; ``args``: podman flags, then ``--`` and
        the command (``--rootfs`` takes the first argument after the flags)."""
        split = args.index("--")
        opts = ["--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit",
                "nproc=4096:4096", "--cgroup-parent", f"/{self.parent}"]
        return self("run", *opts, *args[:split], "--rootfs", str(self.rootfs), *args[split + 1:],
                    **kw)


@pytest.fixture(params=list(RUNTIMES))
def podman(request, tmp_path):
    p = Podman(tmp_path, RUNTIMES[request.param])
    try:
        yield p
    finally:
        left = p.close() + leftovers(tmp_path, p.parent)
    assert left == []


def test_run_output_and_exit_code(podman) -> None:
    out = podman.run("--rm", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n"), out.stderr


def test_detached_logs_exec_top_pause_stop_rm(podman) -> None:
    script = "echo started; trap 'echo term; exit 7' TERM; while true; do sleep 0.1; done"
    assert podman.run("-d", "--name", "d1", "--", "sh", "-c", script).returncode == 0
    out = podman("exec", "d1", "sh", "-c", "echo in-exec; exit 4")
    assert (out.returncode, out.stdout) == (4, "in-exec\n")
    assert podman("exec", "d1", "no-such-program").returncode == 127
    top = podman("top", "d1")
    assert top.returncode == 0 and "sh -c echo started" in top.stdout, top
    assert podman("pause", "d1").returncode == 0
    assert podman("inspect", "d1", "--format", "{{.State.Status}}").stdout.strip() == "paused"
    assert podman("unpause", "d1").returncode == 0
    assert podman("logs", "d1").stdout.startswith("started\n")
    assert podman("stop", "--time", "10", "d1").returncode == 0
    assert podman("inspect", "d1", "--format", "{{.State.ExitCode}}").stdout.strip() == "7"
    assert podman("logs", "d1").stdout == "started\nterm\n"
    assert podman("rm", "d1").returncode == 0


def test_kill_and_rm(podman) -> None:
    assert podman.run("-d", "--name", "k1", "--", "sleep", "100").returncode == 0
    assert podman("kill", "k1").returncode == 0
    assert podman("wait", "k1").stdout.strip() == "137"
    assert podman("rm", "k1").returncode == 0


def test_run_tty_through_the_console_socket(podman) -> None:
    out = podman.run("--rm", "-t", "--", "sh", "-c", "tty; test -t 0 && echo stdin-tty; exit 5")
    assert out.returncode == 5
    assert out.stdout.replace("\r", "") == "/dev/pts/0\nstdin-tty\n"


def test_a_runtime_podman_sends_json_logs_to(tmp_path) -> None:
    """podman passes --log-format=json --log F only to the runtimes named in
    runtime_supports_json: name nsrun-oci there and a failing create comes back with its
    message (and podman's exit code for a missing program)."""
    conf = tmp_path / "containers.conf"
    conf.write_text('[engine]\nruntime_supports_json = ["crun", "runc", "nsrun-oci"]\n')
    p = Podman(tmp_path, NSRUN_OCI, str(conf))
    try:
        out = p.run("--rm", "--", "no-such-program")
        assert out.returncode == 127, out
        assert "executable file not found in $PATH" in out.stderr
        assert p.run("--rm", "--", "sh", "-c", "exit 2").returncode == 2
    finally:
        left = p.close() + leftovers(tmp_path, p.parent)
    assert left == []
