"""The kubelet's lifecycle end to end, as root, with real processes: deadlines, graceful and
forced termination, sidecars, pod restarts and updates. Every test checks nothing is left."""

from __future__ import annotations

import json
import os
import time

import pytest

from world import World, leftovers

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, mounts)")]


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    w.nsrun("image", "busybox", check=True)
    w.nsrun("image", "busybox", "busybox:v2", check=True)
    yield w
    for pod in (w.root / "pods").glob("*") if (w.root / "pods").exists() else []:
        w.nsrun("delete", pod.name, "--grace-period", "0", "--timeout", "10")
    assert leftovers(tmp_path, w.cgroup_dirs) == []


def container(name: str, script: str, image: str = "busybox", extra: str = "") -> str:
    return f"""
  - name: {name}
    image: {image}
    command: [sh, -c, {script!r}]
    volumeMounts: [{{name: work, mountPath: /work}}]{extra}"""


def pod(inits: str, apps: str, policy: str = "Always", extra_spec: str = "") -> str:
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: {policy}
  terminationGracePeriodSeconds: 2{extra_spec}
  initContainers:{inits or ' []'}
  containers:{apps}
  volumes:
  - {{name: work, emptyDir: {{}}}}
"""


def work(world: World) -> str:
    return str(world.root / "pods" / "p" / "volumes" / "work")


def read(world: World, name: str) -> str:
    with open(os.path.join(work(world), name)) as f:
        return f.read()


def detach(world: World, text: str) -> None:
    world.nsrun("run", "-d", "--cgroup-parent", world.cgroup_parent, "--backoff-initial",
                "0.2", "--backoff-max", "1", world.manifest("p", text), check=True)


def wait_for(predicate, timeout: float = 20) -> None:
    """Until ``predicate()``; a status not written yet (``run -d`` returns once the
    containers can start, before the first status) counts as false."""
    deadline = time.monotonic() + timeout
    while not _holds(predicate):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _holds(predicate) -> bool:
    try:
        return bool(predicate())
    except (FileNotFoundError, KeyError, IndexError):
        return False


def test_deadline_during_init_fails_the_pod(world):
    text = pod(container("slow", "sleep 60"), container("app", "true"), "Always",
               "\n  activeDeadlineSeconds: 1")
    start = time.monotonic()
    proc = world.nsrun(*world.run_args(world.manifest("p", text)))
    elapsed = time.monotonic() - start
    assert proc.returncode == 1
    status = world.status("p")["status"]
    assert (status["phase"], status["reason"], status["message"]) == (
        "Failed", "DeadlineExceeded",
        "Pod was active on the node longer than the specified deadline")
    # sleep as PID 1 ignores SIGTERM: SIGKILL after the 2 s grace period
    term = status["initContainerStatuses"][0]["state"]["terminated"]
    assert (term["exitCode"], term.get("signal")) == (137, 9)
    assert 2.5 < elapsed < 10
    reasons = [json.loads(line)["reason"] for line in world.root.joinpath(
        "pods", "p", "events.jsonl").read_text().splitlines()]
    assert "DeadlineExceeded" in reasons and "Killing" in reasons


@pytest.mark.parametrize("script,graceful", [
    ("trap 'exit 0' TERM; while true; do sleep 0.05; done", True),
    ("sleep 60", False),
])
def test_graceful_and_forced_termination(world, script, graceful):
    detach(world, pod("", container("app", script)))
    world.wait_column("p", "Running")
    start = time.monotonic()
    world.nsrun("delete", "p", check=True)
    elapsed = time.monotonic() - start
    if graceful:
        assert elapsed < 2.0  # well inside the 2 s grace period
    else:
        assert 2.0 <= elapsed < 10  # the 2 s grace period, then SIGKILL through the cgroup


def test_sidecar_runs_beside_later_init_containers_and_stops_last(world):
    sidecar = container("logger", "trap 'test -e /work/app-done && echo ok > /work/sidecar-order;"
                        " exit 0' TERM; touch /work/sidecar-up; while true; do sleep 0.05; done",
                        extra="\n    restartPolicy: Always")
    # "started" is the sidecar's process running, not its first line done: give it 5 s
    inits = sidecar + container("setup", "for i in $(seq 100); do test -e /work/sidecar-up "
                                         "&& break; sleep 0.05; done; "
                                         "test -e /work/sidecar-up && touch /work/setup-saw-sidecar")
    text = pod(inits, container("app", "touch /work/app-done"), "Never")
    proc = world.nsrun(*world.run_args(world.manifest("p", text)), timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(os.path.join(work(world), "setup-saw-sidecar"))
    assert read(world, "sidecar-order") == "ok\n"  # stopped after the app had finished
    assert world.status("p")["status"]["phase"] == "Succeeded"


def idempotent_pod() -> str:
    # The document's warning: init code must be idempotent, its outputs may already exist.
    inits = (container("a", "echo a >> /work/order; mkdir -p /work/data")
             + container("b", "echo b >> /work/order; test -d /work/data"))
    app = container("app", "echo app >> /work/order; trap 'exit 0' TERM; "
                    "while true; do sleep 0.05; done")
    return pod(inits, app)


def test_restart_reruns_every_init_container_in_order(world):
    detach(world, idempotent_pod())
    world.wait_column("p", "Running")
    world.nsrun("restart", "p", check=True)
    wait_for(lambda: read(world, "order").count("app") == 2)
    assert read(world, "order") == "a\nb\napp\na\nb\napp\n"
    world.wait_column("p", "Running")
    events = world.root.joinpath("pods", "p", "events.jsonl").read_text()
    assert "SandboxChanged" in events


def test_apply_init_image_restarts_pod_app_image_restarts_only_the_app(world):
    detach(world, idempotent_pod())
    world.wait_column("p", "Running")
    app_changed = idempotent_pod().replace("- name: app\n    image: busybox",
                                           "- name: app\n    image: busybox:v2")
    out = world.nsrun("apply", world.manifest("p2", app_changed), check=True).stdout
    assert out == "pod/p configured\n"
    wait_for(lambda: read(world, "order").count("app") == 2)
    assert read(world, "order") == "a\nb\napp\napp\n"
    init_changed = app_changed.replace("- name: a\n    image: busybox",
                                       "- name: a\n    image: busybox:v2")
    world.nsrun("apply", world.manifest("p3", init_changed), check=True)
    wait_for(lambda: read(world, "order").count("app") == 3)
    assert read(world, "order") == "a\nb\napp\napp\na\nb\napp\n"
    assert world.nsrun("apply", world.manifest("p4", init_changed), check=True).stdout == \
        "pod/p unchanged\n"


def test_apply_refuses_other_changes_with_kubernetes_message(world):
    detach(world, idempotent_pod())
    changed = idempotent_pod().replace("echo app >>", "echo APP >>")
    proc = world.nsrun("apply", world.manifest("p2", changed))
    assert proc.returncode == 2
    assert "pod updates may not change fields other than `spec.containers[*].image`" in proc.stderr
    deadline = idempotent_pod().replace("terminationGracePeriodSeconds: 2",
                                        "terminationGracePeriodSeconds: 2\n  activeDeadlineSeconds: 100")
    world.nsrun("apply", world.manifest("p3", deadline), check=True)
    higher = deadline.replace("activeDeadlineSeconds: 100", "activeDeadlineSeconds: 200")
    proc = world.nsrun("apply", world.manifest("p4", higher))
    assert proc.returncode == 2
    assert "must be less than or equal to previous value" in proc.stderr


def test_describe_shows_kubectl_layout(world):
    detach(world, pod(container("init", "echo hi"), container("app", "sleep 60")))
    world.wait_column("p", "Running")
    text = world.nsrun("describe", "p", check=True).stdout
    for line in ("Name:             p", "Init Containers:", "  init:", "Containers:",
                 "    State:          Terminated", "      Reason:       Completed",
                 "      Exit Code:    0", "    State:          Running", "Conditions:",
                 "  Initialized                 True", "Events:", "Started container app"):
        assert line in text, line


def test_termination_message_file_and_fallback_to_logs(world):
    apps = (container("file", "echo 'all done' > /dev/termination-log; exit 0")
            + container("fallback", "echo first line; echo last words; exit 3",
                        extra="\n    terminationMessagePolicy: FallbackToLogsOnError")
            + container("custom", "echo custom > /tmp/msg; exit 0",
                        extra="\n    terminationMessagePath: /tmp/msg"))
    proc = world.nsrun(*world.run_args(world.manifest("p", pod("", apps, "Never"))))
    assert proc.returncode == 1
    states = {s["name"]: s["state"]["terminated"]
              for s in world.status("p")["status"]["containerStatuses"]}
    assert states["file"]["message"] == "all done\n"
    assert states["fallback"]["message"] == "first line\nlast words"
    assert states["custom"]["message"] == "custom\n"


def test_every_attempt_log_is_kept_within_the_cap(world):
    text = pod(container("flaky", "echo attempt; n=$(cat /work/n 2>/dev/null || echo 0); "
                         "echo $((n+1)) > /work/n; [ $n -ge 4 ]"), container("app", "true"),
               "OnFailure")
    proc = world.nsrun(*world.run_args("--log-max-attempts", "3", world.manifest("p", text)))
    assert proc.returncode == 0, proc.stderr
    logs = sorted(p.name for p in (world.root / "pods" / "p" / "logs" / "flaky").iterdir())
    assert logs == ["2.log", "3.log", "4.log"]
    out = world.nsrun("logs", "p", "-c", "flaky", "--attempt", "2", check=True).stdout
    assert out == "attempt\n"
    assert world.nsrun("logs", "p", "-c", "flaky", "--attempt", "0").returncode == 4


def test_liveness_failure_restarts_and_readiness_gates_ready(world):
    probes = """
    livenessProbe:
      exec: {command: [sh, -c, 'test ! -e /work/sick']}
      periodSeconds: 1
      failureThreshold: 1
    readinessProbe:
      exec: {command: [test, -e, /work/ready]}
      periodSeconds: 1"""
    detach(world, pod("", container("app", "trap 'exit 0' TERM; while true; do sleep 0.05; done",
                                    extra=probes)))
    world.wait_column("p", "Running")
    status = world.status("p")["status"]
    assert status["containerStatuses"][0]["ready"] is False
    assert world.nsrun("get", "p", check=True).stdout.splitlines()[1].split()[1] == "0/1"
    open(os.path.join(work(world), "ready"), "w").close()
    wait_for(lambda: world.status("p")["status"]["containerStatuses"][0]["ready"])
    ready = {c["type"]: c["status"] for c in world.status("p")["status"]["conditions"]}
    assert ready["Ready"] == ready["ContainersReady"] == "True"
    open(os.path.join(work(world), "sick"), "w").close()
    wait_for(lambda: world.status("p")["status"]["containerStatuses"][0]["restartCount"] == 1)
    os.unlink(os.path.join(work(world), "sick"))
    events = world.root.joinpath("pods", "p", "events.jsonl").read_text()
    assert "Container app failed liveness probe, will be restarted" in events
    assert "Liveness probe failed: command" in events


def test_post_start_and_pre_stop_hooks_run_inside_the_container(world):
    evidence = world.tmp / "evidence"
    hooks = """
    lifecycle:
      postStart: {exec: {command: [sh, -c, 'hostname > /work/post-start']}}
      preStop: {exec: {command: [sh, -c, 'echo bye > /evidence/pre-stop']}}"""
    app = ("trap 'test -e /evidence/pre-stop && echo after-pre-stop > /evidence/term; exit 0' "
           "TERM; while true; do sleep 0.05; done")
    text = pod("", container("app", app, extra=hooks))
    text = text.replace("volumeMounts: [{name: work, mountPath: /work}]",
                        "volumeMounts: [{name: work, mountPath: /work}, "
                        "{name: evidence, mountPath: /evidence}]")
    text += f"  - {{name: evidence, hostPath: {{path: {evidence}, type: DirectoryOrCreate}}}}\n"
    detach(world, text)
    world.wait_column("p", "Running")
    wait_for(lambda: os.path.exists(os.path.join(work(world), "post-start")))
    assert read(world, "post-start") == "p\n"
    # the hook's file exists before the supervisor has recorded the hook's end
    wait_for(lambda: world.status("p")["status"]["containerStatuses"][0]["started"] is True)
    world.nsrun("delete", "p", "--timeout", "10", check=True)
    assert (evidence / "pre-stop").read_text() == "bye\n"
    assert (evidence / "term").read_text() == "after-pre-stop\n"  # SIGTERM came after preStop


def test_tcp_and_http_probes_connect_inside_the_pod_network(world):
    server = "mkdir -p /tmp/www && echo ok > /tmp/www/healthz && exec httpd -f -p 8080 -h /tmp/www"
    probes = """
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
    startupProbe:
      tcpSocket: {port: 8080}
      periodSeconds: 1
      failureThreshold: 10"""
    detach(world, pod("", container("app", server, extra=probes)))
    wait_for(lambda: world.status("p")["status"]["containerStatuses"][0]["ready"])
    cs = world.status("p")["status"]["containerStatuses"][0]
    assert cs["started"] is True and cs["restartCount"] == 0


def test_lost_sandbox_restarts_the_pod_from_the_first_init_container(world):
    detach(world, idempotent_pod())
    world.wait_column("p", "Running")
    pause = int((world.root / "pods" / "p" / "sandbox.pid").read_text())
    os.kill(pause, 9)  # the pause process holding the pod's namespaces dies
    wait_for(lambda: read(world, "order").count("app") == 2)
    assert read(world, "order") == "a\nb\napp\na\nb\napp\n"
    new_pause = int((world.root / "pods" / "p" / "sandbox.pid").read_text())
    assert new_pause != pause and os.path.exists(f"/proc/{new_pause}")
    world.wait_column("p", "Running")
    assert "SandboxChanged" in world.root.joinpath("pods", "p", "events.jsonl").read_text()


def test_logs_follow_and_get_watch_track_the_pod_until_it_ends(world):
    import subprocess
    import sys

    detach(world, pod(container("init", "sleep 1.5"),
                      container("app", "for i in 1 2 3; do echo line $i; sleep 0.3; done"),
                      "Never"))
    watcher = subprocess.Popen(
        [sys.executable, "-m", "nsrun", "--root", str(world.root), "get", "p", "-w"],
        stdout=subprocess.PIPE, text=True)
    world.wait_column("p", "Running")  # the app runs: follow it from here
    follow = world.nsrun("logs", "p", "-c", "app", "-f", timeout=30)
    assert follow.stdout == "line 1\nline 2\nline 3\n"
    rows = [r for r in watcher.communicate(timeout=30)[0].splitlines() if r.startswith("p ")]
    statuses = [row.split()[2] for row in rows]
    assert statuses[-1] == "Completed" and "Running" in statuses
    assert statuses.index("Running") > 0  # a row per change: Init:0/1 or PodInitializing first
