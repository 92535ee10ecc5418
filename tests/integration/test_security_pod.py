"""Isolation end to end, through the real ``nsrun`` CLI as root: secrets visible only where
mounted, containers blind to each other's mounts and processes, the default confinement of
an ``nsrun image busybox`` bundle, symlinked image paths that cannot reach the host, and bad
bundles refused with the field and the container named. Nothing may be left behind."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from nsrun.bundle.security import DEFAULT_CAPABILITIES, cap_mask

from world import World, leftovers

pytestmark = pytest.mark.root("namespaces, mounts")

SECRET = "TOPSECRET-42"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secrets, configmaps = tmp_path / "secrets", tmp_path / "configmaps"
    (secrets / "mysecret").mkdir(parents=True)
    (secrets / "mysecret" / "password").write_text(SECRET)
    (secrets / "mysecret" / "user").write_text("admin")
    (configmaps / "mycfg").mkdir(parents=True)
    (configmaps / "mycfg" / "app.conf").write_text("x=1\n")
    monkeypatch.setenv("NSRUN_SECRETS", str(secrets))
    monkeypatch.setenv("NSRUN_CONFIGMAPS", str(configmaps))
    w = World(tmp_path)
    w.nsrun("image", "busybox", check=True)
    yield w
    for pod in (w.root / "pods").glob("*") if (w.root / "pods").exists() else []:
        w.nsrun("delete", pod.name, "--timeout", "10")
    assert leftovers(tmp_path, w.cgroup_dirs) == []


def run_pod(world: World, text: str, *extra: str) -> tuple[int, str]:
    proc = world.nsrun(*world.run_args("--cgroups", "none", *extra,
                                       world.manifest("p", text)), timeout=60)
    return proc.returncode, proc.stderr


def log(world: World, container: str) -> str:
    return world.nsrun("logs", "p", "-c", container, check=True).stdout


def waiting(world: World, timeout: float = 20) -> dict:
    """The first container's waiting state once it has a message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = world.status("p")["status"]
        except (OSError, ValueError, KeyError):
            status = {}
        for key in ("initContainerStatuses", "containerStatuses"):
            for s in status.get(key, []):
                w = s.get("state", {}).get("waiting", {})
                if w.get("message"):
                    return w
        time.sleep(0.05)
    raise AssertionError("no waiting message")


# ---- secrets -----------------------------------------------------------------------------

SECRET_POD = f"""apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: Never
  initContainers:
  - name: init-creds
    image: busybox
    command: [sh, -c, 'cat /etc/creds/password | grep -qx {SECRET} && echo match;
      stat -c "%a %U" /etc/creds/password /etc/pw/nested/pw; cat /etc/cfg/app.conf;
      ls /etc/pw/nested; touch /etc/creds/x 2>/dev/null || echo read-only; id -u']
    securityContext: {{runAsUser: 1000}}
    volumeMounts:
    - {{name: creds, mountPath: /etc/creds}}
    - {{name: pw-only, mountPath: /etc/pw}}
    - {{name: cfg, mountPath: /etc/cfg}}
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'ls -A /etc/creds /etc/pw | grep -v -e ":$" -e "^$" | grep -c .;
      grep -c -e volumes/creds -e volumes/pw-only /proc/self/mountinfo;
      grep -rl {SECRET} /bin /etc /tmp /root /var /run /usr /work 2>/dev/null;
      echo done']
    volumeMounts: [{{name: work, mountPath: /work}}]
  securityContext: {{fsGroup: 2000}}
  volumes:
  - {{name: work, emptyDir: {{}}}}
  - name: creds
    secret: {{secretName: mysecret, defaultMode: 0400}}
  - name: pw-only
    secret:
      secretName: mysecret
      items: [{{key: password, path: nested/pw, mode: 0440}}]
  - name: cfg
    configMap: {{name: mycfg}}
"""


def test_secret_is_readable_only_in_the_container_that_mounts_it(world: World) -> None:
    code, err = run_pod(world, SECRET_POD)
    assert code == 0, err
    # fsGroup: group-readable by 2000, so uid 1000 (in group 2000) can read a 0400 file
    assert log(world, "init-creds").splitlines() == [
        "match", "440 root", "440 root", "x=1", "pw", "read-only", "1000"]
    # (the mount points the init container needed may exist in the shared image: empty)
    assert log(world, "app").splitlines() == ["0", "0", "done"]


def test_secret_key_ref_in_env(world: World) -> None:
    text = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'echo "$USER_NAME $LEVEL"']
    env:
    - name: USER_NAME
      valueFrom: {secretKeyRef: {name: mysecret, key: user}}
    - name: LEVEL
      valueFrom: {configMapKeyRef: {name: mycfg, key: app.conf}}
"""
    code, err = run_pod(world, text)
    assert code == 0, err
    assert log(world, "app") == "admin x=1\n\n"


def test_missing_secret_stops_the_pod_before_anything_starts(world: World) -> None:
    text = SECRET_POD.replace("secretName: mysecret, defaultMode", "secretName: nosuch, "
                                                                    "defaultMode")
    code, err = run_pod(world, text)
    assert code == 5, err
    said, failure = err.splitlines()  # --cgroups none says what containers then lack
    assert said.startswith("nsrun: cgroup driver none: no device cgroup"), err
    assert failure.startswith('nsrun: MountVolume.SetUp failed for volume "creds" : secret '
                              '"nosuch" not found'), err
    assert not (world.root / "pods" / "p").exists()


# ---- isolation between containers ------------------------------------------------------------


def test_containers_do_not_see_each_others_mounts_or_processes(world: World) -> None:
    text = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  containers:
  - name: a
    image: busybox
    command: [sh, -c, 'sleep 0.2 & echo $$ > /work/a-ready;
      while ! test -e /work/b-done; do sleep 0.05; done']
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: creds, mountPath: /etc/creds}
  - name: b
    image: busybox
    command: [sh, -c, 'while ! test -e /work/a-ready; do sleep 0.05; done;
      ls /proc | grep -c "^[0-9]"; grep -c volumes/creds /proc/self/mountinfo;
      ls -A /etc/creds 2>/dev/null | grep -c .; touch /work/b-done']
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - {name: work, emptyDir: {}}
  - name: creds
    secret: {secretName: mysecret}
"""
    code, err = run_pod(world, text)
    assert code == 0, err
    # b's pid namespace: its sh, ls and grep; not a's sh and sleep
    count, mounts, creds = log(world, "b").splitlines()
    assert int(count) <= 3 and (mounts, creds) == ("0", "0")


# ---- the default confinement of an nsrun-made image -------------------------------------------


def test_busybox_image_runs_confined_by_default(world: World) -> None:
    text = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: busybox
    command: [sh, -c, 'grep -E "^(CapBnd|CapEff|NoNewPrivs)" /proc/self/status; ls /proc/1/fd;
      wc -c < /proc/keys; touch /x 2>/dev/null || echo ro-root; true']
"""
    code, err = run_pod(world, text)
    assert code == 0, err
    lines = log(world, "app").split()
    # --cgroups none (run_pod): no device cgroup, so no CAP_MKNOD
    default = f"{cap_mask(DEFAULT_CAPABILITIES) & ~cap_mask(['CAP_MKNOD']):016x}"
    assert lines == ["CapEff:", default, "CapBnd:", default, "NoNewPrivs:", "1",
                     "0", "1", "2", "0", "ro-root"]


def test_symlinked_image_paths_cannot_write_to_the_host(world: World, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "victim").write_text("original\n")

    def symlink_data(config: dict, rootfs: Path) -> None:
        (rootfs / "data").symlink_to(str(host))
        (rootfs / "logs").symlink_to("../../../../../../../../../" + str(host).lstrip("/"))

    image = world.image_variant("evil", symlink_data)
    text = f"""apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: Never
  containers:
  - name: app
    image: {image}
    command: [sh, -c, 'echo pwned > /data/out/f; echo pwned > /logs/sub/g && echo wrote']
    volumeMounts:
    - {{name: work, mountPath: /data/out}}
    - {{name: work, mountPath: /logs/sub, subPath: s}}
  volumes:
  - {{name: work, emptyDir: {{}}}}
"""
    code, err = run_pod(world, text)
    assert code == 0, err
    assert log(world, "app") == "wrote\n"
    assert sorted(os.listdir(host)) == ["victim"]
    assert (host / "victim").read_text() == "original\n"
    work = world.root / "pods" / "p" / "volumes" / "work"
    assert (work / "f").read_text() == (work / "s" / "g").read_text() == "pwned\n"


# ---- bad input: the field and the container are named, nothing starts -----------------------


def _set(path: str, value) -> Callable[[dict, Path], None]:
    def change(config: dict, rootfs: Path) -> None:
        node = config
        *parents, last = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return change


BAD = {
    "unknown capability": (_set("process.capabilities", {"bounding": ["CAP_FLY"]}),
                           'process.capabilities.bounding[0]: unknown capability "CAP_FLY"'),
    "invalid seccomp action": (_set("linux.seccomp", {"defaultAction": "SCMP_ACT_MAYBE"}),
                               'linux.seccomp.defaultAction: invalid seccomp action '
                               '"SCMP_ACT_MAYBE"'),
    "rlimit above the host": (_set("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 1,
                                                        "hard": 2**64 - 1}]),
                              "process.rlimits[0]: RLIMIT_NOFILE hard limit unlimited is above"),
    "malformed mapping": (_set("linux.uidMappings", [{"containerID": 0, "hostID": -1,
                                                      "size": 1}]),
                          "linux.uidMappings[0].hostID: expected an unsigned 32-bit integer"),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_bundle_names_field_and_container_and_nothing_runs(world: World, case: str) -> None:
    change, message = BAD[case]
    image = world.image_variant("bad", change)
    text = f"""apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  restartPolicy: Never
  initContainers:
  - {{name: init, image: busybox, command: [sh, -c, 'echo init-ran']}}
  containers:
  - {{name: app, image: {image}, command: [sh, -c, 'echo app-ran']}}
"""
    proc = world.nsrun(*world.run_args("-d", "--cgroups", "none", world.manifest("p", text)))
    bundle = world.images / "bad" / "latest" / "config.json"
    expected = f'container "app": {bundle}: {message}'
    if proc.returncode == 2:  # the supervisor checks every bundle before the pod starts
        assert proc.stderr.startswith(f"nsrun: {expected}"), proc.stderr
        assert not (world.root / "pods" / "p").exists()
        return
    assert proc.returncode == 0, proc.stderr  # else: the container waits, never started
    state = waiting(world)
    assert state["message"].startswith(expected), state
    assert world.nsrun("logs", "p", "-c", "app").stdout == ""  # the app never ran
    world.nsrun("delete", "p", check=True)
