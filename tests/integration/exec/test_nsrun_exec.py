"""``nsrun exec`` (``runtime.execcmd.exec_in_pod``) against a detached pod: it runs like
the container, in its cgroup and pid namespace, with its exit codes, stdin and tty, and
refuses what it must. Root only; nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from world import World, leftovers

pytestmark = [pytest.mark.root, pytest.mark.usefixtures("no_leftovers"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, cgroups")]


# ---- nsrun exec: execcmd.exec_in_pod against a detached pod ------------------------------------

POD = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - {name: setup, image: busybox, command: [sh, -c, "echo set-up > /work/setup"],
     volumeMounts: [{name: work, mountPath: /work}]}
  containers:
  - name: app
    image: busybox
    command: [sh, -c, "echo only-here > /tmp/marker; exec sleep 3600"]
    env: [{name: FOO, value: bar}]
    securityContext: {runAsUser: 1000, runAsGroup: 1000}
    volumeMounts: [{name: work, mountPath: /work}]
  - {name: side, image: busybox, command: [sleep, "3600"]}
  volumes:
  - {name: work, emptyDir: {}}
"""

# nsrun exec as the CLI will run it: errors → "nsrun: ..." and their exit code
DRIVER = """
import sys
from nsrun.errors import NsrunError
from nsrun.runtime.execcmd import exec_in_pod
root, images, container, tty, *argv = sys.argv[1:]
try:
    sys.exit(exec_in_pod(root, "p", container or None, argv, tty=tty == "1", images=images))
except NsrunError as err:
    print(f"nsrun: {err}", file=sys.stderr)
    sys.exit(err.exit_code)
"""


@pytest.fixture(scope="module")
def pod_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One detached pod for the nsrun exec tests (module scope: it takes ~0.5 s to start)."""
    tmp = tmp_path_factory.mktemp("execpod")
    w = World(tmp)
    w.nsrun("image", "busybox", check=True)
    w.nsrun("run", "-d", "--cgroup-parent", w.cgroup_parent, w.manifest("p", POD), check=True)
    try:
        deadline = time.monotonic() + 20
        while w.column("p") != "Running" or not all(
                cs.get("state", {}).get("running")
                for cs in w.status("p")["status"]["containerStatuses"]):
            assert time.monotonic() < deadline, w.nsrun("describe", "p").stdout
            time.sleep(0.05)
        yield w
    finally:
        w.nsrun("delete", "p", "--grace-period", "0", "--timeout", "10")
        assert leftovers(tmp, w.cgroup_dirs) == []


def nsrun_exec(w: World, container: str, *argv: str, tty: bool = False,
               stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", DRIVER, str(w.root), str(w.images), container,
                           "1" if tty else "0", *argv], capture_output=True, text=True,
                          timeout=30, input=stdin)


def test_nsrun_exec_runs_like_the_container(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "app", "sh", "-c",
                     'id; hostname; cat /tmp/marker /work/setup; echo "$FOO"; pwd')
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["uid=1000 gid=1000", "p", "only-here",
                                       "set-up", "bar", "/"]
    assert out.stderr == ""


def test_nsrun_exec_is_in_the_containers_cgroup_and_pid_namespace(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "side", "sh", "-c", "cat /proc/1/cmdline; echo; "
                                                   "cat /proc/self/cgroup")
    assert out.returncode == 0, out.stderr
    cmdline, *cgroups = out.stdout.splitlines()
    assert cmdline.split("\0") == ["sleep", "3600", ""]  # the container's init is pid 1
    where = {line.split(":")[1]: line.split(":", 2)[2] for line in cgroups}
    wanted = [""] if pod_world.driver == "v2" else ["cpu", "cpuacct", "memory", "pids",
                                                    "freezer", "devices"]
    for hierarchy in wanted:  # every hierarchy the driver uses: the container's leaf
        assert f"/{pod_world.cgroup_parent}/" in where[hierarchy], cgroups
        assert where[hierarchy].endswith("/side"), cgroups


def test_nsrun_exec_exit_codes(pod_world: World) -> None:
    assert nsrun_exec(pod_world, "app", "sh", "-c", "exit 7").returncode == 7
    assert nsrun_exec(pod_world, "app", "sh", "-c", "kill -9 $$").returncode == 137
    out = nsrun_exec(pod_world, "app", "no-such-command")
    assert out.returncode == 127
    assert out.stderr == 'nsrun: exec "no-such-command" in container "app" in pod "p": ' \
                         "executable file not found in $PATH\n"
    out = nsrun_exec(pod_world, "app", "/etc")
    assert out.returncode == 126 and "Permission denied" in out.stderr


def test_nsrun_exec_stdin_and_default_container(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "", "cat", stdin="through stdin\n")
    assert (out.returncode, out.stdout) == (0, "through stdin\n")
    assert out.stderr == 'Defaulted container "app" out of: app, side, setup (init)\n'


def test_nsrun_exec_tty(pod_world: World) -> None:
    out = nsrun_exec(pod_world, "app", "sh", "-c", "test -t 0 && test -t 1 && echo tty; cat",
                     tty=True, stdin="typed\n")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.replace("\r", "").splitlines()
    # "typed" twice: the pty echoes it (as a terminal does), then cat prints it
    assert sorted(lines) == ["tty", "typed", "typed"], lines


@pytest.mark.parametrize("container, message", [
    ("nope", 'container "nope" not found in pod "p" (containers: app, side, setup)'),
    ("setup", 'container "setup" in pod "p" is not running (terminated: Completed, exit code 0)'),
])
def test_nsrun_exec_errors(pod_world: World, container: str, message: str) -> None:
    out = nsrun_exec(pod_world, container, "true")
    assert (out.returncode, out.stderr) == (4, f"nsrun: {message}\n")


def test_nsrun_exec_no_such_pod(tmp_path: Path) -> None:
    from nsrun.errors import StateError
    from nsrun.runtime import execcmd

    with pytest.raises(StateError, match='pods "nope" not found'):
        execcmd.exec_in_pod(tmp_path, "nope", None, ["true"])


def test_nsrun_exec_refuses_a_pid_that_is_not_the_pods(pod_world: World) -> None:
    pids = pod_world.root / "pods" / "p" / "pids.json"
    pids.write_text(f'{{"app": {os.getpid()}}}')
    try:
        out = nsrun_exec(pod_world, "app", "true")
    finally:
        pids.unlink()
    assert out.returncode == 4
    assert f"process {os.getpid()} is not the pod's" in out.stderr
