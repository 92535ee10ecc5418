"""``nsrun-oci``'s lifecycle against the real kernel, each scenario also run with runc as the
reference: create leaves the init waiting before execve, start releases it, state is right at
every step (also after an exit nobody watched), kill/delete follow runc's rules and messages,
bad input leaves nothing behind. This process is the child subreaper (like a shim)."""

from __future__ import annotations

import json
import os
import time

import pytest
from ociworld import NSRUN_OCI, reap

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static")]
RUNTIMES = ("nsrun-oci", "runc")


def cmdline(pid: int) -> str:
    return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode().strip()


@pytest.mark.parametrize("name", RUNTIMES)
def test_create_start_kill_delete(oci, name: str) -> None:
    rt = oci.runtimes[name]
    bundle = oci.bundle("c1", ["sleep", "100"])
    pidfile = oci.tmp / "c1.pid"
    assert oci.create(rt, "c1", bundle, "--pid-file", str(pidfile)).returncode == 0
    state = rt.state("c1")
    assert state["status"] == "created" and state["id"] == "c1"
    assert int(pidfile.read_text()) == state["pid"] > 0
    assert state["bundle"] == str(bundle) and state["rootfs"] == str(oci.tmp / "rootfs")
    assert cmdline(state["pid"]) != "sleep 100"  # waiting before execve
    assert os.path.exists(f"/proc/{state['pid']}/root/bin/busybox")  # pivoted
    cgroup = open(f"/proc/{state['pid']}/cgroup").read()
    assert f"/{oci.parent}/c1\n" in cgroup  # in its cgroup already
    rt("start", "c1", check=True)
    assert rt.state("c1")["status"] == "running"
    assert cmdline(state["pid"]) == "sleep 100"
    rt("kill", "c1", "KILL", check=True)
    stopped = rt.wait_status("c1", "stopped")
    assert stopped["pid"] == 0 or name == "runc"  # runc shows the old pid
    out = rt("kill", "c1", "9")
    assert out.returncode == 1 and "container not running" in out.stderr
    rt("delete", "c1", check=True)
    out = rt("state", "c1")
    assert out.returncode == 1 and "does not exist" in out.stderr


@pytest.mark.parametrize("name", RUNTIMES)
def test_state_after_an_exit_nobody_watched(oci, name: str) -> None:
    rt = oci.runtimes[name]
    oci.create(rt, "c2", oci.bundle("c2", ["true"]))
    pid = rt.state("c2")["pid"]
    rt("start", "c2", check=True)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        reap()  # the init exits and is reaped by the subreaper; nobody tells the runtime
        time.sleep(0.01)
    assert rt.state("c2")["status"] == "stopped"
    rt("delete", "c2", check=True)


def test_a_reused_pid_is_not_the_container(oci) -> None:
    """nsrun-oci checks the init's identity (pid and start time): a pid now used by another
    process is a stopped container."""
    rt = oci.runtimes["nsrun-oci"]
    oci.create(rt, "c3", oci.bundle("c3", ["sleep", "100"]))
    record_file = rt.root / "c3" / "state.json"
    record = json.loads(record_file.read_text())
    real = record["pid"]
    record["pid"] = os.getpid()  # alive, but not the container
    record_file.write_text(json.dumps(record))
    assert rt.state("c3")["status"] == "stopped"
    record["pid"] = real
    record_file.write_text(json.dumps(record))
    assert rt.state("c3")["status"] == "created"
    rt("delete", "--force", "c3", check=True)


@pytest.mark.parametrize("name", RUNTIMES)
def test_run_output_and_exit_code(oci, name: str) -> None:
    rt = oci.runtimes[name]
    bundle = oci.bundle("c4", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    out = rt("run", "--bundle", str(bundle), "c4", stdin=open(os.devnull))
    assert (out.returncode, out.stdout, out.stderr) == (3, "out\n", "err\n")
    assert not (rt.root / "c4").exists()


@pytest.mark.parametrize("name", RUNTIMES)
def test_start_and_delete_refuse_with_state_unchanged(oci, name: str) -> None:
    rt = oci.runtimes[name]
    oci.create(rt, "c5", oci.bundle("c5", ["sleep", "100"]))
    rt("start", "c5", check=True)
    out = rt("start", "c5")
    assert out.returncode == 1 and "cannot start an already running container" in out.stderr
    out = rt("delete", "c5")
    assert out.returncode == 1
    assert "cannot delete container c5 that is not stopped: running" in out.stderr
    assert rt.state("c5")["status"] == "running"
    rt("delete", "--force", "c5", check=True)
    assert not (rt.root / "c5").exists()


@pytest.mark.parametrize("name", RUNTIMES)
def test_created_container_is_deleted_and_stopped_one_not_started(oci, name: str) -> None:
    rt = oci.runtimes[name]
    oci.create(rt, "c6", oci.bundle("c6", ["sleep", "100"]))
    pid = rt.state("c6")["pid"]
    rt("delete", "c6", check=True)  # runc and crun kill a created container on delete
    for _ in range(200):
        reap()
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{pid}")
    oci.create(rt, "c7", oci.bundle("c7", ["sleep", "100"]))
    rt("kill", "c7", "KILL", check=True)
    rt.wait_status("c7", "stopped")
    out = rt("start", "c7")
    assert out.returncode == 1 and "cannot start a container that has stopped" in out.stderr
    rt("delete", "c7", check=True)


def _one_line_error(out) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1 and len(lines) == 1, out
    return lines[0]


def test_bad_input_is_one_line_and_leaves_nothing(oci) -> None:
    rt = oci.runtimes["nsrun-oci"]
    empty = oci.tmp / "empty"
    empty.mkdir()
    assert "config.json not found" in _one_line_error(oci.create(rt, "b1", empty))
    bundle = oci.bundle("b2", ["true"], ociVersion="2.0.0")
    assert "unsupported ociVersion '2.0.0'" in _one_line_error(oci.create(rt, "b2", bundle))
    good = oci.bundle("good", ["sleep", "100"])
    for bad in ("a/b", "..", "."):
        assert f"invalid id format: {bad}" in _one_line_error(oci.create(rt, bad, good))
    assert not rt.root.exists() or os.listdir(rt.root) == []
    assert oci.create(rt, "b3", good).returncode == 0
    assert "container with id exists: b3" in _one_line_error(oci.create(rt, "b3", good))
    assert rt.state("b3")["status"] == "created"  # the first one untouched
    rt("delete", "--force", "b3", check=True)
    missing = oci.bundle("b4", ["no-such-program"])
    line = _one_line_error(oci.create(rt, "b4", missing))  # runc's words (podman: exit 127)
    assert 'no-such-program\\": executable file not found in $PATH' in line
    assert os.listdir(rt.root) == []


def test_unknown_verb_and_version() -> None:
    import subprocess

    out = subprocess.run([NSRUN_OCI, "frobnicate"], capture_output=True, text=True)
    assert out.returncode == 3 and "No help topic for 'frobnicate'" in out.stderr
    out = subprocess.run([NSRUN_OCI, "--version"], capture_output=True, text=True)
    assert out.stdout.startswith("nsrun-oci version ") and "\nspec: 1." in out.stdout
