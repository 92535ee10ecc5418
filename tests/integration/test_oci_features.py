"""``nsrun-oci``'s other verbs and options against the real kernel, with runc as the reference
where both apply: the console socket (a pty of the container's devpts, one fd, its name as
payload), exec (arguments, ``--process``, ``--tty``), hooks at the spec's points, ``--preserve-fds``,
the JSON log, pause/resume/ps/list/``kill --all``, the CRI sandbox annotations, features and
spec."""

from __future__ import annotations

import array
import json
import os
import socket
import subprocess
import time

import pytest

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups"),
              pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox-static")]
RUNTIMES = ("nsrun-oci", "runc")


def receive_console(listener: socket.socket) -> tuple[int, bytes]:
    """Accept the runtime's connection: exactly one fd and the payload (go-runc's check)."""
    conn, _ = listener.accept()
    with conn:
        fds = array.array("i")
        msg, anc, _, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4 * fds.itemsize))
    assert len(anc) == 1 and anc[0][:2] == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    fds.frombytes(anc[0][2])
    assert len(fds) == 1
    return fds[0], msg


def read_until(fd: int, want: bytes, timeout: float = 10) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    os.set_blocking(fd, False)
    while want not in data and time.monotonic() < deadline:
        try:
            data += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    return data


@pytest.mark.parametrize("name", RUNTIMES)
def test_console_socket_gets_a_pty_of_the_containers_devpts(oci, name: str) -> None:
    rt = oci.runtimes[name]
    path = str(oci.tmp / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        bundle = oci.bundle("t1", ["sh", "-c", "tty; stat -c %u:%g /dev/pts/0; sleep 100"],
                            process_terminal=True, process_user={"uid": 1000, "gid": 1000})
        assert oci.create(rt, "t1", bundle, "--console-socket", path).returncode == 0
        master, name_sent = receive_console(listener)
    try:
        # runc sends the master's name; nsrun-oci the slave's, which names the terminal (the
        # shims read only the fd)
        assert name_sent == (b"/dev/ptmx" if name == "runc" else b"/dev/pts/0")
        rt("start", "t1", check=True)
        out = read_until(master, b"1000:").replace(b"\r", b"")
        assert out.startswith(b"/dev/pts/0\n1000:"), out  # its own devpts, owned by its user
    finally:
        os.close(master)
    rt("delete", "--force", "t1", check=True)


@pytest.mark.parametrize("name", RUNTIMES)
def test_exec(oci, name: str) -> None:
    rt = oci.runtimes[name]
    oci.create(rt, "x1", oci.bundle("x1", ["sleep", "100"], process_env=["PATH=/bin", "A=1"]))
    rt("start", "x1", check=True)
    out = rt("exec", "--env", "B=2", "x1", "sh", "-c", "echo $A$B; exit 4")
    assert (out.returncode, out.stdout) == (4, "12\n")
    out = rt("exec", "x1", "no-such-program")
    assert out.returncode != 0 and "executable file not found in $PATH" in out.stderr
    process = {"args": ["sh", "-c", "id -u > /proc/1/root/tmp/x; sleep 1"], "cwd": "/",
               "env": ["PATH=/bin"], "user": {"uid": 1234, "gid": 1234}}
    (oci.tmp / "process.json").write_text(json.dumps(process))
    pidfile = oci.tmp / "exec.pid"
    with open(os.devnull, "w") as null:
        rt("exec", "--process", str(oci.tmp / "process.json"), "--detach", "--pid-file",
           str(pidfile), "x1", stdout=null, stderr=null, capture_output=False, check=True)
    pid = int(pidfile.read_text())
    status = open(f"/proc/{pid}/status").read()
    assert "\nUid:\t1234\t" in status  # a process of the container, as its user
    init = rt.state("x1")["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    assert open(f"/proc/{pid}/cgroup").read() == open(f"/proc/{init}/cgroup").read()
    os.waitpid(pid, 0)  # we are its subreaper, as a shim is (runc delete waits for that too)
    rt("delete", "--force", "x1", check=True)


def test_exec_tty_relayed_and_through_socket(oci) -> None:
    rt = oci.runtimes["nsrun-oci"]
    oci.create(rt, "x2", oci.bundle("x2", ["sleep", "100"]))
    rt("start", "x2", check=True)
    out = rt("exec", "--tty", "x2", "sh", "-c", "tty", stdin=subprocess.DEVNULL)
    assert (out.returncode, out.stdout.replace("\r", "")) == (0, "/dev/pts/0\n")
    path = str(oci.tmp / "exec.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        rt("exec", "-t", "-d", "--console-socket", path, "x2", "sh", "-c", "tty; sleep 5",
           check=True)
        master, _ = receive_console(listener)
    try:
        assert b"/dev/pts/" in read_until(master, b"\n")
    finally:
        os.close(master)
    rt("delete", "--force", "x2", check=True)


HOOK = ("echo {stage} $(cat | sed -n 's/.*\"status\":\"\\([a-z]*\\)\".*/\\1/p') "
        "$(readlink /proc/self/ns/mnt) >> {log}")


def _hooks(oci, log: str) -> dict:
    stages = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")
    hooks = {}
    for stage in stages:
        # startContainer's path resolves in the container (busybox sh, logging to /out)
        target = "/out/hooks.log" if stage == "startContainer" else log
        script = HOOK.format(stage=stage, log=target)
        hooks[stage] = [{"path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 10}]
    return hooks


@pytest.mark.parametrize("name", RUNTIMES)
def test_hooks_run_at_the_specs_points(oci, name: str) -> None:
    rt = oci.runtimes[name]
    out_dir = oci.tmp / "out"
    out_dir.mkdir()
    log = str(out_dir / "hooks.log")
    bundle = oci.bundle("h1", ["sh", "-c", "exit 0"], hooks=_hooks(oci, log))
    config = json.loads((bundle / "config.json").read_text())
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out_dir),
                             "options": ["rbind", "rw"]})
    config["root"]["readonly"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    assert oci.create(rt, "h1", bundle).returncode == 0, oci.output("h1")
    rt("start", "h1", check=True)
    rt.wait_status("h1", "stopped")
    rt("delete", "h1", check=True)
    lines = [line.split() for line in open(log).read().splitlines()]
    stages = [line[0] for line in lines]
    assert stages[:3] == ["prestart", "createRuntime", "createContainer"], lines
    assert stages[5:] == ["poststop"], lines
    # nsrun-oci runs startContainer before it releases the init, so strictly before
    # poststart; runc's init runs it after the release, racing runc start's poststart
    expected = ["startContainer", "poststart"]
    assert (stages[3:5] if name == "nsrun-oci" else sorted(stages[3:5])) == (
        expected if name == "nsrun-oci" else sorted(expected)), lines
    host_mnt = os.readlink("/proc/self/ns/mnt")
    by_stage = {line[0]: line for line in lines}
    for stage in ("prestart", "createRuntime", "poststart", "poststop"):
        assert by_stage[stage][-1] == host_mnt, lines  # the runtime's namespace
    for stage in ("createContainer", "startContainer"):
        assert by_stage[stage][-1] != host_mnt, lines  # the container's
    if name == "nsrun-oci":
        assert [line[1] for line in lines] == ["creating", "creating", "creating", "created",
                                                "running", "stopped"], lines


def test_a_failing_create_hook_fails_create_and_leaves_nothing(oci) -> None:
    rt = oci.runtimes["nsrun-oci"]
    hooks = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 9"]}]}
    out = oci.create(rt, "h2", oci.bundle("h2", ["true"], hooks=hooks))
    assert out.returncode == 1 and "createRuntime hook /bin/sh: exited with 9" in out.stderr
    assert os.listdir(rt.root) == []


@pytest.mark.parametrize("name", RUNTIMES)
def test_preserve_fds_and_json_log(oci, name: str) -> None:
    rt = oci.runtimes[name]
    r, w = os.pipe()
    try:
        bundle = oci.bundle("f1", ["sh", "-c", "echo through-fd-3 >&3"])
        with open(os.devnull, "w") as null:
            proc = subprocess.run([rt.binary, "--root", str(rt.root), "run", "--preserve-fds",
                                   "1", "--bundle", str(bundle), "f1"], close_fds=False,
                                  stdin=subprocess.DEVNULL, stdout=null, stderr=null,
                                  preexec_fn=lambda: os.dup2(w, 3), timeout=30)
        assert proc.returncode == 0
        os.close(w)
        w = -1
        assert os.read(r, 100) == b"through-fd-3\n"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    log, empty = oci.tmp / f"{name}.log", oci.tmp / "empty"
    empty.mkdir()
    out = rt("--log", str(log), "--log-format", "json", "create", "--bundle", str(empty), "f2")
    assert out.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["time"]
    assert "JSON specification file config.json not found" in entry["msg"]


@pytest.mark.parametrize("name", RUNTIMES)
def test_pause_resume_ps_list_and_kill_all(oci, name: str) -> None:
    rt = oci.runtimes[name]
    oci.create(rt, "p1", oci.bundle("p1", ["sh", "-c", "sleep 100 & sleep 100"]))
    rt("start", "p1", check=True)
    init = rt.state("p1")["pid"]
    deadline = time.monotonic() + 10
    while len(json.loads(rt("ps", "--format", "json", "p1", check=True).stdout)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pids = json.loads(rt("ps", "--format", "json", "p1", check=True).stdout)
    assert init in pids and len(pids) == 2
    table = rt("ps", "p1", check=True).stdout.splitlines()
    assert table[0].split()[:2] == ["UID", "PID"] and len(table) == 3
    rt("pause", "p1", check=True)
    assert rt.state("p1")["status"] == "paused"
    assert all(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0] in "DS"
               for p in pids)
    out = rt("pause", "p1")
    assert out.returncode == 1
    rt("resume", "p1", check=True)
    assert rt.state("p1")["status"] == "running"
    listed = json.loads(rt("list", "--format", "json", check=True).stdout)
    assert [(c["id"], c["status"], c["pid"]) for c in listed] == [("p1", "running", init)]
    rt("kill", "--all", "p1", "KILL", check=True)
    rt.wait_status("p1", "stopped")
    rt("delete", "p1", check=True)


def test_cri_container_joins_its_sandbox(oci) -> None:
    rt = oci.runtimes["nsrun-oci"]
    oci.create(rt, "sandbox", oci.bundle("sandbox", ["sleep", "100"], hostname="pod-a"))
    rt("start", "sandbox", check=True)
    notes = {"io.kubernetes.cri.container-type": "container",
             "io.kubernetes.cri.sandbox-id": "sandbox"}
    bundle = oci.bundle("app", ["sh", "-c", "hostname; sleep 100"], annotations=notes)
    oci.create(rt, "app", bundle)
    rt("start", "app", check=True)
    sandbox, app = rt.state("sandbox")["pid"], rt.state("app")["pid"]
    for ns in ("net", "ipc", "uts"):
        assert os.readlink(f"/proc/{app}/ns/{ns}") == os.readlink(f"/proc/{sandbox}/ns/{ns}")
    for ns in ("mnt", "pid"):
        assert os.readlink(f"/proc/{app}/ns/{ns}") != os.readlink(f"/proc/{sandbox}/ns/{ns}")
    assert os.readlink(f"/proc/{app}/ns/net") != os.readlink("/proc/self/ns/net")
    assert rt.state("app")["annotations"] == notes
    for cid in ("app", "sandbox"):
        rt("delete", "--force", cid, check=True)
    notes["io.kubernetes.cri.sandbox-id"] = "gone"
    bundle = oci.bundle("orphan", ["true"], annotations=notes)
    out = oci.create(rt, "orphan", bundle)
    assert out.returncode == 1 and "sandbox container gone" in out.stderr


def test_features_and_spec(oci) -> None:
    rt = oci.runtimes["nsrun-oci"]
    features = json.loads(rt("features", check=True).stdout)
    assert features["ociVersionMin"] == "1.0.0" and "startContainer" in features["hooks"]
    assert {"pid", "network", "mount"} <= set(features["linux"]["namespaces"])
    assert "rbind" in features["mountOptions"]
    rt("spec", "--bundle", str(oci.tmp), check=True)
    spec = json.loads((oci.tmp / "config.json").read_text())
    assert spec["ociVersion"].startswith("1.") and spec["process"]["args"] == ["sh"]
    out = rt("spec", "--bundle", str(oci.tmp))
    assert out.returncode == 1 and "exists" in out.stderr


def _limit_files(pid: int) -> dict[str, str]:
    """pids.max and the memory limit of the cgroups ``pid`` is in (v2 or v1)."""
    out = {}
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            base = next(p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                        if os.path.exists(f"{p}/cgroup.controllers"))
            names = ("pids.max", "memory.max")
        elif controllers in ("pids", "memory"):
            base, names = f"/sys/fs/cgroup/{controllers}", ("pids.max", "memory.limit_in_bytes")
        else:
            continue
        for name in names:
            if os.path.exists(f"{base}{path}/{name}"):
                out[name.split(".")[0]] = open(f"{base}{path}/{name}").read().strip()
    return out


@pytest.mark.parametrize("name", RUNTIMES)
def test_resources_are_enforced(oci, name: str) -> None:
    """pids and memory limits land in the container's cgroups (the v1 hierarchies on a
    hybrid host, as runc puts them) and hold: the sixth process cannot be forked."""
    rt = oci.runtimes[name]
    resources = {"pids": {"limit": 5}, "memory": {"limit": 64 << 20}}
    bundle = oci.bundle("r1", ["sh", "-c", "for i in 1 2 3 4 5 6; do sleep 100 & done; wait"],
                        linux_resources=resources)
    oci.create(rt, "r1", bundle)
    init = rt.state("r1")["pid"]
    assert _limit_files(init) == {"pids": "5", "memory": str(64 << 20)}
    rt("start", "r1", check=True)
    deadline = time.monotonic() + 10
    while "can't fork" not in oci.output("r1")[1]:
        assert time.monotonic() < deadline, oci.output("r1")
        time.sleep(0.02)
    rt("delete", "--force", "r1", check=True)
