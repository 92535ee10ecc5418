"""What a launcher and a kubectl user rely on, through the real CLI with real pods:
readiness on a real ``NOTIFY_SOCKET``, ``wait``, ``events -w -o json`` and ``get -w -o json``
as streams of parseable documents, the foreground report, ``--systemd`` without systemd."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from world import World, leftovers, work_pod

pytestmark = pytest.mark.root("namespaces, mounts")


def inits_then_app(name: str, app: str, first: str = "sleep 0.3", image: str = "busybox") -> str:
    """Two init containers leaving their work on a shared volume, then ``app``."""
    return work_pod(name, [f"{first}; touch /work/one", "sleep 0.5; touch /work/two"], app,
                    labels={"app": "notify"}, image=image)


def popen(world: World, *args: str, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "nsrun", *world.global_args(), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_ready_reaches_notify_socket_only_after_the_last_init_container(world, tmp_path):
    path = str(tmp_path / "notify.sock")
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(path)
    rx.settimeout(30)
    manifest = world.manifest("n", inits_then_app("n", "sleep 2"))
    proc = popen(world, *world.run_args("--sdnotify=initialized", manifest),
                 env={**os.environ, "NOTIFY_SOCKET": path})
    try:
        messages = []
        while "READY=1" not in messages:
            messages += rx.recv(4096).decode().splitlines()
        # at READY=1 both init containers have exited 0: their work is on the volume
        status = world.status("n")["status"]
        assert [s["state"]["terminated"]["exitCode"] for s in status["initContainerStatuses"]] \
            == [0, 0]
        statuses = [m for m in messages if m.startswith("STATUS=")]
        assert statuses[:2] == ["STATUS=Init:0/2", "STATUS=Init:1/2"], messages
        assert messages.index("READY=1") > messages.index("STATUS=Init:1/2")
        assert proc.wait(30) == 0
        rest = []
        rx.settimeout(0.5)
        try:
            while True:
                rest += rx.recv(4096).decode().splitlines()
        except TimeoutError:
            pass
        assert "STATUS=Completed" in rest and "READY=1" not in rest
    finally:
        proc.kill() if proc.poll() is None else None
        rx.close()


def test_get_watch_json_and_events_watch_json_are_streams_of_documents(world):
    text = inits_then_app("s", "sleep 1", first="sleep 3")
    world.nsrun(*world.run_args("-d", world.manifest("s", text)), check=True)
    get = popen(world, "get", "s", "-w", "-o", "json")
    events = popen(world, "events", "s", "-w", "-o", "json")
    try:
        world.wait_column("s", "Completed", timeout=30)
        time.sleep(0.5)
        world.nsrun("delete", "s", check=True)
        out, _ = get.communicate(timeout=30)
        ev_out, _ = events.communicate(timeout=30)
    finally:
        for p in (get, events):
            p.kill() if p.poll() is None else None
    pods = [json.loads(line) for line in out.splitlines()]  # every line parses alone
    phases = [p["status"].get("phase") for p in pods]
    assert phases[0] == "Pending" and phases[-1] == "Succeeded", phases
    assert {p["kind"] for p in pods} == {"Pod"}
    evs = [json.loads(line) for line in ev_out.splitlines()]
    assert {e["kind"] for e in evs} == {"Event"}
    started = [e["involvedObject"].get("fieldPath") for e in evs if e["reason"] == "Started"]
    assert started == ["spec.initContainers{init-0}", "spec.initContainers{init-1}",
                       "spec.containers{app}"]
    assert all(e["involvedObject"]["name"] == "s" and e["count"] == 1 for e in evs)


def test_wait_for_initialized_ready_jsonpath_and_delete(world):
    manifest = world.manifest("w", inits_then_app("w", "sleep 30"))
    world.nsrun(*world.run_args("-d", manifest), check=True)
    short = world.nsrun("wait", "w", "--for=jsonpath={.status.phase}=Succeeded",
                        "--timeout=0.2s")  # the app sleeps 30 s: never within the timeout
    assert (short.returncode, short.stderr) == (
        1, "error: timed out waiting for the condition on pods/w\n")
    init = world.nsrun("wait", "pod/w", "--for=condition=Initialized", "--timeout=30s")
    assert (init.returncode, init.stdout) == (0, "pod/w condition met\n")
    status = world.status("w")["status"]
    assert all(s["state"].get("terminated", {}).get("exitCode") == 0
               for s in status["initContainerStatuses"])
    assert world.nsrun("wait", "-l", "app=notify", "--for=jsonpath={.status.phase}=Running",
                       "--timeout", "30s").returncode == 0
    waiter = popen(world, "wait", "w", "--for=delete", "--timeout=60s")
    world.nsrun("delete", "w", "--now", check=True)
    assert waiter.communicate(timeout=30)[0] == "pod/w deleted\n" and waiter.returncode == 0


def test_foreground_run_tells_rows_failure_and_phase_on_stderr(world):
    manifest = world.manifest("f", inits_then_app("f", "echo first; echo last words; exit 3"))
    proc = world.nsrun(*world.run_args("-w", "--rm", manifest))
    assert proc.returncode == 1
    rows = [line.split()[2] for line in proc.stdout.splitlines()]
    assert rows[0] == "Init:0/2" and rows[-1] == "Error"
    assert 'container "app" failed: Error, exit code 3' in proc.stderr
    assert "    last words" in proc.stderr  # the log survives in the report, not on disk
    assert proc.stderr.rstrip().endswith('pod "f" Failed (exit code 1)')
    assert not (world.root / "pods" / "f").exists()
    plain = world.nsrun(*world.run_args("--rm", manifest))  # not a terminal: no rows
    assert (plain.returncode, plain.stdout) == (1, "")
    assert 'container "app" failed: Error, exit code 3' in plain.stderr
    assert "Init:0/2" not in plain.stderr and "    last words" in plain.stderr
    assert plain.stderr.rstrip().endswith('pod "f" Failed (exit code 1)')
    quiet = world.nsrun(*world.run_args("--quiet", "--rm", manifest))
    assert (quiet.returncode, quiet.stdout) == (1, "")
    assert "failed" not in quiet.stderr and "Failed" not in quiet.stderr
    fine = world.nsrun(*world.run_args("--rm", world.manifest("g", inits_then_app("g", "true"))))
    assert fine.returncode == 0 and "Succeeded" not in fine.stderr  # a script's run: silent


def test_kubectl_words_selectors_formats_and_several_names(world):
    for name in ("k1", "k2"):
        world.nsrun(*world.run_args("-d", world.manifest(name, inits_then_app(
            name, "sleep 30"))), check=True)
    assert world.nsrun("get", "pods", "-l", "app=notify", "-o", "name").stdout == \
        "pod/k1\npod/k2\n"
    assert world.nsrun("get", "pod/k1", "-o", "jsonpath={.metadata.name}").stdout == "k1"
    logs = world.nsrun("logs", "k1", "-c", "nosuch")
    assert (logs.returncode, logs.stderr) == (
        4, "Error from server (BadRequest): container nosuch is not valid for pod k1\n")
    restarted = json.loads(world.nsrun("restart", "k1", "-o", "json", check=True).stdout)
    assert (restarted["kind"], restarted["metadata"]["name"]) == ("Pod", "k1")
    import yaml

    gone = world.nsrun("delete", "pod/k2", "-o", "yaml", "--now", check=True).stdout
    assert [(d["kind"], d["metadata"]["name"], d["status"]["phase"] in ("Pending", "Running"))
            for d in yaml.safe_load_all(gone)] == [("Pod", "k2", True)]
    out = world.nsrun("delete", "pod", "k1", "k2", "nope", "--now")
    assert out.stdout == 'pod "k1" deleted\n'
    assert (out.returncode, out.stderr) == (4, 'Error from server (NotFound): pods "k2" not '
                                            'found\nError from server (NotFound): pods "nope" '
                                            'not found\n')


def test_run_systemd_without_systemd_is_a_clear_host_error(world):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs this host (the VM ring tests the units)")
    proc = world.nsrun(*world.run_args("--systemd", world.manifest(
        "x", inits_then_app("x", "true"))))
    assert proc.returncode == 3
    assert "systemd is not running on this host" in proc.stderr
    assert leftovers(world.tmp, world.cgroup_dirs) == []


def test_a_detached_pods_warnings_become_events_and_reach_describe(world):
    labelled = world.image_variant("labelled", lambda config, rootfs: config["linux"].update(
        mountLabel="system_u:object_r:container_file_t:s0"))
    text = inits_then_app("d", "sleep 30", image=labelled)
    world.nsrun(*world.run_args("-d", world.manifest("d", text)), check=True)
    world.nsrun("wait", "d", "--for=condition=Ready", "--timeout=30s", check=True)
    events = [json.loads(line) for line in world.nsrun("events", "d", "-o", "json").stdout
              .splitlines()]
    warned = [e for e in events if e["type"] == "Warning" and e["reason"] == "NsrunWarning"]
    assert warned and "linux.mountLabel ignored" in warned[0]["message"]
    described = world.nsrun("describe", "pod", "d", check=True).stdout
    assert "NsrunWarning" in described and "Service Account:  default" in described
    assert "linux.mountLabel ignored" in (world.root / "pods" / "d" /
                                          "supervisor.log").read_text()
